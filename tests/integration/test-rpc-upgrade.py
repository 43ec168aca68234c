#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Issue 12, the upgrade in place: jobworkerd runs from a copy of its binary
under fakesystemd (socket activation and fd store as systemd 252 does); the
copy is replaced by rename (as dpkg does) and the daemon gets SIGHUP (as
`systemctl reload` sends it). It must exec the new binary in place: the
same PID (so the jobs stay its children and their exit codes are exact on
every kernel), the jobs keep running, a job that ends during the upgrade
has its exact exit code, the writer's log is byte-exact and grows again,
no job is lost, Stop works afterwards, and a SIGHUP without a replaced
binary is still only a reload (same image, no exec)."""

import os
import shutil
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rpcharness as h  # noqa: E402
from survive_util import Client, WRITER, check_daemon_stops_clean, expected, fake_daemon, kill_all, one_line  # noqa: E402

def exe_of(pid):
    return os.readlink("/proc/%d/exe" % pid)


def main():
    pb, _ = h.stubs()
    d = h.tmpdir()
    bindir = os.path.join(d, "bin")
    os.mkdir(bindir)
    binary = os.path.join(bindir, "jobworkerd")
    shutil.copy2(h.JOBWORKERD, binary)
    fake = fake_daemon(binary, d, debug=True)
    fake.start()
    fake.wait_ready(30)
    client = Client(fake.port())
    pidfds = []
    ok = False
    try:
        s = client.stub("alice")
        gate = os.path.join(d, "gate")
        writer = s.Start(pb.StartRequest(argv=["python3", "-c", WRITER]), timeout=10).job_id
        sleeper = s.Start(pb.StartRequest(argv=["sleep", "600"]), timeout=10).job_id
        ender = s.Start(pb.StartRequest(argv=["sh", "-c", "while [ ! -e %s ]; do sleep 0.01; done; exit 7"
                                          % gate]), timeout=10).job_id
        pids = {j: h.wait_state(s, j, [pb.JOB_STATE_RUNNING]).pid for j in (writer, sleeper, ender)}
        pidfds = [os.pidfd_open(p) for p in pids.values()]
        h.wait_stdout(s, writer, at_least=9)
        main_pid = fake.main_pid

        # A reload without a new binary: no exec.
        os.kill(main_pid, signal.SIGHUP)
        h.wait_until(lambda: "policy reloaded" in fake.logtext(), "the policy reload", timeout=20)
        if "upgrading in place" in fake.logtext():
            h.fail("a SIGHUP with the binary unchanged upgraded")

        # The package replaces the binary (rename over it), then reloads.
        shutil.copy2(h.JOBWORKERD, binary + ".dpkg-new")
        os.rename(binary + ".dpkg-new", binary)
        if not exe_of(main_pid).endswith("(deleted)"):
            h.fail("the test's rename did not replace the running binary: %s" % exe_of(main_pid))
        open(gate, "w").close()   # the ender exits during the upgrade
        os.kill(main_pid, signal.SIGHUP)
        h.wait_until(lambda: not exe_of(main_pid).endswith("(deleted)"), "the exec of the new binary",
                     timeout=30)
        if fake.main_pid != main_pid:
            h.fail("the main PID changed: %r -> %r" % (main_pid, fake.main_pid))
        h.wait_until(lambda: "took over" in fake.logtext(), "the new image to take the jobs over", timeout=30)
        s = h.wait_until(lambda: _stub_ok(client), "the new image to answer", timeout=30)

        st = h.wait_state(s, ender, [pb.JOB_STATE_EXITED, pb.JOB_STATE_KILLED, pb.JOB_STATE_ENDED,
                                     pb.JOB_STATE_LOST], timeout=20)
        if st.state != pb.JOB_STATE_EXITED or st.exit_code != 7:
            h.fail("the job that exited 7 during the upgrade shows %s" % one_line(st))
        for j in (writer, sleeper):
            st = s.Status(pb.StatusRequest(job_id=j), timeout=10).status
            if st.state != pb.JOB_STATE_RUNNING or st.pid != pids[j]:
                h.fail("job %s should still run as pid %d: %s" % (j, pids[j], one_line(st)))
        st = s.Status(pb.StatusRequest(job_id=writer), timeout=10).status
        h.wait_stdout(s, writer, at_least=st.stdout_bytes + 4096, timeout=30)
        data, _, _ = h.collect_output(s, writer, stream=pb.STREAM_STDOUT, follow=False)
        if data != expected(len(data)):
            h.fail("the writer's log is not the sequence after the upgrade (%d bytes)" % len(data))
        for j in (writer, sleeper):
            s.Stop(pb.StopRequest(job_id=j, use_grace=True, grace_ms=300), timeout=10)
            st = h.wait_state(s, j, [pb.JOB_STATE_KILLED, pb.JOB_STATE_EXITED], timeout=15)
            if st.state != pb.JOB_STATE_KILLED or st.signal != 15:
                h.fail("job %s after Stop: %s" % (j, one_line(st)))
        check_daemon_stops_clean(fake)
        ok = True
    finally:
        if not ok or os.environ.get("JW_SHOW_LOG"):
            print("daemon log (last 60 lines):\n" + "\n".join(fake.logtext().splitlines()[-60:]))
        kill_all(pidfds)
        fake.close()


def _stub_ok(client):
    pb, _ = h.stubs()
    s = client.stub("alice")
    try:
        s.List(pb.ListRequest(), timeout=2)
        return s
    except Exception:  # noqa: BLE001 - not answering yet
        return None


h.run_main(main)
