#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""No client-chosen path blocks the daemon (issue 11, point 4), end to end:
a Start whose cwd, and one whose io device, are in a FUSE mount that never
answers (tests/helpers/jw-fuse-stall) stay pending while other jobs start,
exit and stream their output; released, the pending Starts fail with
INVALID_ARGUMENT naming the path. Skips where FUSE cannot be mounted."""

import os
import select
import signal
import subprocess
import threading

import rpcharness as h


def start_stall(mnt):
    tool = os.environ.get("JW_FUSE_STALL")
    if not tool or not os.access(tool, os.X_OK):
        h.skip("jw-fuse-stall not built (JW_FUSE_STALL=%r)" % tool)
    p = subprocess.Popen([tool, mnt], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    r, _, _ = select.select([p.stdout], [], [], 5.0)
    if r and p.stdout.readline() == b"ready\n":
        return p
    p.kill()
    code = p.wait(5)
    if code == 77:
        h.skip("FUSE cannot be mounted here")
    h.fail("jw-fuse-stall failed to start (exit %s)" % code)


def syscall_of(path):
    """The number of the system call a task is blocked in, or None."""
    try:
        with open(path) as f:
            first = f.read().split()[0]
        return int(first) if first.lstrip("-").isdigit() else None
    except (OSError, IndexError):
        return None


def ppid_of(pid):
    try:
        with open("/proc/%s/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


STAT_CALLS = (4, 6, 262, 332)  # x86_64 stat, lstat, newfstatat, statx
CHDIR = 80


def wait_stalled(pid, timeout=10.0):
    """Until a thread of pid sits in the io device's stat() and a child of
    pid (the job's process, before exec) in its chdir(), both on the mount."""
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stat = any(syscall_of("/proc/%d/task/%s/syscall" % (pid, t)) in STAT_CALLS
                   for t in os.listdir("/proc/%d/task" % pid))
        chdir = any(syscall_of("/proc/%s/syscall" % p) == CHDIR for p in os.listdir("/proc")
                    if p.isdigit() and ppid_of(p) == pid)
        if stat and chdir:
            return
        time.sleep(0.02)
    h.fail("the two Starts did not reach the stalled mount within %.0fs" % timeout)


def main():
    h.check_prerequisites()
    pb, _ = h.stubs()
    import grpc
    mnt = os.path.join(h.tmpdir(), "mnt")
    os.mkdir(mnt)
    tool = start_stall(mnt)
    try:
        d = h.Daemon()
        s = d.stub("charlie")
        results = {}

        def pending(name, req):
            try:
                s.Start(req, timeout=60)
                results[name] = ("ok", None)
            except grpc.RpcError as e:
                results[name] = (e.code(), e.details())

        cwd_req = pb.StartRequest(argv=["/bin/true"], cwd=os.path.join(mnt, "hung-dir"))
        io_req = pb.StartRequest(argv=["/bin/true"])
        io = io_req.limits.io.add()
        io.device = os.path.join(mnt, "hung-dev")
        io.read_bps = 1 << 20
        threads = [threading.Thread(target=pending, args=("cwd", cwd_req)),
                   threading.Thread(target=pending, args=("io", io_req))]
        for t in threads:
            t.start()
        wait_stalled(d.proc.pid)

        for k in range(5):
            r = s.Start(pb.StartRequest(argv=["/bin/sh", "-c", "echo hello-%d; exit %d" % (k, 10 + k)]), timeout=10)
            data, _, end = h.collect_output(s, r.job_id, timeout=10)
            if data != b"hello-%d\n" % k:
                h.fail("job %d wrote %r" % (k, data))
            st = h.wait_state(s, r.job_id, [pb.JOB_STATE_EXITED], timeout=10)
            if st.exit_code != 10 + k:
                h.fail("job %d exit code %d" % (k, st.exit_code))
        if results:
            h.fail("a stalled Start was answered before the release: %r" % results)

        tool.send_signal(signal.SIGUSR1)
        for t in threads:
            t.join(15)
        for name, want in (("cwd", "hung-dir"), ("io", "hung-dev")):
            code, details = results.get(name, (None, None))
            if code != grpc.StatusCode.INVALID_ARGUMENT or want not in (details or ""):
                h.fail("%s start: %s %r" % (name, code, details))
        d.stop()
    finally:
        tool.send_signal(signal.SIGTERM)
        tool.wait(10)


h.run_main(main)
