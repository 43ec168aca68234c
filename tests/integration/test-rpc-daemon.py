#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""jobworkerd as a process: clean shutdown on SIGTERM/SIGINT that stops
running jobs (grace, then kill) and records their final status (seen by a
following client and after a restart); a second SIGTERM kills at once;
clear one-line start-up errors (missing/mismatched cert or key, bad policy,
bad flags, nothing to listen on); SIGHUP with a broken certificate keeps
the old one; socket activation (LISTEN_FDS)."""

import os
import shutil
import signal
import socket
import subprocess
import threading
import time

import rpcharness as h


def start_error(args, expect_rc, expect_msg):
    d = h.Daemon(args=args, wait=False)
    try:
        rc = d.proc.wait(10)
    except subprocess.TimeoutExpired:
        d.kill()
        h.fail("jobworkerd %s did not exit" % args)
    log = d.logtext()
    if rc != expect_rc:
        h.fail("jobworkerd %s: exit status %s, expected %s; log:\n%s" % (args, rc, expect_rc, log))
    lines = [l for l in log.splitlines() if l.strip()]
    if len(lines) != 1 or expect_msg not in lines[0]:
        h.fail("jobworkerd %s: expected one line with %r, got:\n%s" % (args, expect_msg, log))
    h._daemons.remove(d) if d in h._daemons else None


def main():
    pb, pbg = h.stubs()
    C = h.CERTS

    # --- SIGTERM: running jobs are stopped, followers see the end, status is kept
    d = h.Daemon(args=["--shutdown-grace", "300ms"])
    s = d.stub("alice")
    j1 = s.Start(pb.StartRequest(argv=["/bin/sleep", "60"]), timeout=10).job_id
    j2 = s.Start(pb.StartRequest(argv=["/bin/sh", "-c", "trap '' TERM; echo x; while :; do sleep 0.1; done"]),
                 timeout=10).job_id
    h.wait_state(s, j1, [pb.JOB_STATE_RUNNING])
    h.wait_stdout(s, j2)  # "x": its trap is in place
    followed = {}
    subscribed = threading.Event()

    def follow():
        # like h.collect_output, and says when the first chunk arrived: from
        # then on the stream is subscribed and sees the shutdown
        try:
            data, end = bytearray(), None
            for m in d.stub("bob").Output(pb.OutputRequest(job_id=j2, follow=True), timeout=30):
                if m.HasField("chunk"):
                    assert end is None and m.chunk.offset == len(data), m
                    data += m.chunk.data
                    subscribed.set()
                else:
                    end = m.end
            followed["r"] = (bytes(data), end)
        except Exception as e:
            followed["r"] = e
        subscribed.set()

    t = threading.Thread(target=follow, daemon=True)
    t.start()
    if not subscribed.wait(20):
        h.fail("the follower got no output within 20 s")
    t0 = time.monotonic()
    assert d.stop(timeout=20) == 0
    assert time.monotonic() - t0 < 10
    t.join(10)
    r = followed.get("r")
    assert not isinstance(r, Exception) and r is not None, r
    data, end = r
    assert end is not None and data == b"x\n" and end.state == pb.JOB_STATE_KILLED and end.signal == 9, (data, end)
    log = d.logtext()
    assert "shutting down: stopping 2 running jobs" in log, log
    assert "shutdown complete" in log, log

    # the final statuses survive a restart on the same state directory
    d2 = h.Daemon(state_dir=d.state_dir)
    s = d2.stub("alice")
    st1 = s.Status(pb.StatusRequest(job_id=j1), timeout=10).status
    st2 = s.Status(pb.StatusRequest(job_id=j2), timeout=10).status
    assert st1.state == pb.JOB_STATE_KILLED and st1.signal == 15 and st1.stop_requested, st1
    assert st2.state == pb.JOB_STATE_KILLED and st2.signal == 9, st2

    # --- a second SIGINT does not wait for the grace period
    d2.proc.wait(0) if d2.proc.poll() is not None else None
    # The job says "ready" once its trap is in place: before that, the
    # first signal's SIGTERM could end it and leave nothing to kill.
    j3 = s.Start(pb.StartRequest(argv=["/bin/sh", "-c", "trap '' TERM INT; echo ready; while :; do sleep 0.1; done"]),
                 timeout=10).job_id
    h.wait_stdout(s, j3)
    d2.signal(signal.SIGINT)
    # the first signal is handled once this is logged; the second is then a second one
    d2.wait_log(r"shutting down: stopping 1 running job")
    t0 = time.monotonic()
    d2.signal(signal.SIGINT)
    assert d2.stop(timeout=10) == 0
    assert time.monotonic() - t0 < 5
    assert "shutting down: killing 1 job now" in d2.logtext(), d2.logtext()
    d3 = h.Daemon(state_dir=d2.state_dir)
    st3 = d3.stub("alice").Status(pb.StatusRequest(job_id=j3), timeout=10).status
    assert st3.state == pb.JOB_STATE_KILLED and st3.signal == 9, st3
    assert d3.stop() == 0

    # --- a follower that stopped reading delays the shutdown by 5 s at most -------
    d = h.Daemon()
    s = d.stub("charlie")
    j = s.Start(pb.StartRequest(argv=["/bin/sh", "-c", "head -c 67108864 /dev/zero; exec sleep 60"]),
                timeout=10).job_id
    h.wait_stdout(s, j, 67108864, timeout=60)
    stuck = s.Output(pb.OutputRequest(job_id=j, follow=True), timeout=60)
    next(stuck)  # one chunk received (so subscribed), then never read again
    t0 = time.monotonic()
    assert d.stop(timeout=20) == 0
    elapsed = time.monotonic() - t0
    assert 4 <= elapsed < 12, elapsed
    assert "cutting the output streams still open" in d.logtext()
    stuck.cancel()

    # --- start-up errors: one clear line, non-zero exit ------------------------
    start_error(["--cert", "/nonexistent/server.pem"], 1, "/nonexistent/server.pem")
    start_error(["--key", C + "/alice-key.pem"], 1, "does not match")
    start_error(["--key", "/nonexistent/key.pem"], 1, "/nonexistent/key.pem")
    start_error(["--ca", "/nonexistent/ca.pem"], 1, "/nonexistent/ca.pem")
    start_error(["--policy", "/nonexistent/policy.conf"], 1, "policy file /nonexistent/policy.conf")
    start_error(["--bogus"], 2, "unknown option --bogus")
    start_error(["--log-level", "loud"], 2, "unknown log level 'loud'")
    start_error(["--tls-priority", "NONE:+BOGUS"], 1, "priority")
    d = h.Daemon(policy="alice self task-manager\nbob everything analyst\n", wait=False)
    assert d.proc.wait(10) == 1
    assert "policy.conf:2: unknown entity 'everything'" in d.logtext(), d.logtext()
    h._daemons.remove(d)
    d = h.Daemon(policy="alice self task-manager no-such-user-here\n", wait=False)
    assert d.proc.wait(10) == 1
    assert "account 'no-such-user-here'" in d.logtext(), d.logtext()
    h._daemons.remove(d)
    d = h.Daemon(listen=False, wait=False, env={k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")})
    assert d.proc.wait(10) == 1
    assert "nothing to listen on" in d.logtext()
    h._daemons.remove(d)

    # --- SIGHUP with a broken certificate keeps the previous one ------------------
    tmp = h.tmpdir()
    shutil.copy(C + "/server.pem", tmp + "/server.pem")
    d = h.Daemon(args=["--cert", tmp + "/server.pem"])
    with open(tmp + "/server.pem", "w") as f:
        f.write("not a certificate\n")
    d.signal(signal.SIGHUP)
    d.wait_log(r"reload: keeping the previous certificates")
    d.wait_log(r"policy reloaded")
    s = d.stub("charlie")
    j = s.Start(pb.StartRequest(argv=["/bin/echo", "after reload"]), timeout=10).job_id
    assert h.collect_output(s, j)[0] == b"after reload\n"
    # a good certificate again: reloaded
    shutil.copy(C + "/server.pem", tmp + "/server.pem")
    d.signal(signal.SIGHUP)
    d.wait_log(r"certificates reloaded")
    s = d.stub("charlie")
    assert s.Status(pb.StatusRequest(job_id=j), timeout=10).status.exit_code == 0
    assert d.stop() == 0

    # --- socket activation: LISTEN_FDS ----------------------------------------------
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    port = lsock.getsockname()[1]
    fd = lsock.fileno()

    def as_fd3():
        os.dup2(fd, 3)
        os.environ["LISTEN_FDS"] = "1"
        os.environ["LISTEN_PID"] = str(os.getpid())

    d = h.Daemon(listen=False, wait=False, pass_fds=(fd, 3), preexec_fn=as_fd3)
    d.wait_log(r"socket activation: 1 listening socket")
    d.wait_log(r"ready:")
    d.port = port
    lsock.close()
    s = d.stub("alice")
    j = s.Start(pb.StartRequest(argv=["/bin/sh", "-c", "echo ${LISTEN_FDS:-clean}; ls /proc/self/fd | wc -l"]),
                timeout=10).job_id
    data, _, _ = h.collect_output(s, j)
    # no LISTEN_FDS in the job's environment; only 0, 1, 2 (+ the fd ls opens) inherited
    assert data == b"clean\n4\n", data
    assert d.stop() == 0


h.run_main(main)
