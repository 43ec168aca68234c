#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""jobworkerd and its state directory (issue 13, items 2, 5, 10): a
read-only state directory is refused at start with one clear line; job
directories a crashed Start left are removed and counted in the log; after
kill -9 of the daemon a job without a cgroup that still runs is shown lost
with its process alive, and Stop reaches it. The read-only part needs the
right to mount a tmpfs (skipped without it, the rest still runs)."""

import os
import signal
import subprocess
import time
import uuid

import rpcharness as h


def pid_gone(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return ") Z " in f.read()
    except FileNotFoundError:
        return True


def readonly_state_dir():
    mnt = h.tmpdir()
    if subprocess.call(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt],
                       stderr=subprocess.DEVNULL) != 0:
        print("cannot mount a tmpfs: read-only state directory not tested")
        return
    try:
        os.mkdir(os.path.join(mnt, "jobs"), 0o700)
        subprocess.check_call(["mount", "-o", "remount,ro", mnt])
        d = h.Daemon(state_dir=mnt, wait=False)
        try:
            rc = d.proc.wait(10)
        except subprocess.TimeoutExpired:
            d.kill()
            h.fail("jobworkerd did not refuse a read-only state directory; log:\n%s" % d.logtext())
        log = d.logtext()
        assert rc == 1, (rc, log)
        assert "is read-only: refusing to start" in log, log
        assert "ready" not in log, log
        h._daemons.remove(d) if d in h._daemons else None
    finally:
        subprocess.call(["umount", "-l", mnt])


def main():
    pb, pbg = h.stubs()
    import grpc

    readonly_state_dir()

    # --- a Start the previous daemon died in: directory without a record -------
    state = os.path.join(h.tmpdir(), "state")
    leftover = os.path.join(state, "jobs", str(uuid.uuid4()))
    os.makedirs(leftover)
    open(os.path.join(leftover, "output"), "wb").close()
    d = h.Daemon(state_dir=state)
    d.wait_log(r"removed 1 job directory without a record")
    assert not os.path.exists(leftover)

    # --- kill -9: a job that does not write outlives it; lost, alive, stoppable --
    s = d.stub("alice")
    j = s.Start(pb.StartRequest(argv=["/bin/sleep", "60"]), timeout=10).job_id
    st = h.wait_state(s, j, [pb.JOB_STATE_RUNNING])
    pid = st.pid
    d.kill()
    assert not pid_gone(pid)

    # Retention of a second: the record stays only because its process runs.
    d = h.Daemon(state_dir=state, args=["--retain-age", "1s"])
    s = d.stub("alice")
    st = s.Status(pb.StatusRequest(job_id=j), timeout=10).status
    assert st.state == pb.JOB_STATE_LOST and st.process_alive, st
    # A job that ends now ages out after the lost one; once retention has
    # removed it, it has passed over the lost job, which must still be there.
    done = s.Start(pb.StartRequest(argv=["/bin/true"]), timeout=10).job_id
    h.wait_state(s, done, [pb.JOB_STATE_EXITED])

    def removed(job):
        try:
            s.Status(pb.StatusRequest(job_id=job), timeout=10)
            return False
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.NOT_FOUND:
                raise
            return True

    h.wait_until(lambda: removed(done), "retention to remove an ended job", timeout=15)
    st = s.Status(pb.StatusRequest(job_id=j), timeout=10).status
    assert st.state == pb.JOB_STATE_LOST and st.process_alive, st
    s.Stop(pb.StopRequest(job_id=j, use_grace=True, grace_ms=200), timeout=10)
    h.wait_until(lambda: pid_gone(pid), "the lost job's process to end", timeout=10)
    h.wait_until(lambda: not s.Status(pb.StatusRequest(job_id=j), timeout=10).status.process_alive,
                 "the lost job's status to say its process ended", timeout=10)
    assert d.stop() == 0


h.run_main(main)
