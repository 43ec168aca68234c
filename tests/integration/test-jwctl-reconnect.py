#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""jwctl's followers (logs -f, run, wait) across a daemon restart (issue 12,
item 5): the daemon is killed in the middle of a stream and a new one is
started on the same state directory and address; the follower reconnects,
resumes from its byte offset (byte-exact: nothing lost, nothing twice) and
exits with the code jwctl documents for the job's final state as the new
daemon knows it. Also: an outage under 3 s prints nothing on stderr; a
longer one prints one line when lost and one when back; an outage past the
bound (--reconnect-timeout / JWCTL_RECONNECT_TIMEOUT) gives up with exit 3
and a message naming the server and the time; Ctrl-C during an outage ends
the follower at once.

Until the daemon keeps jobs across a restart (issue 12, items 1-2), a job
running when its daemon dies becomes "lost" in the next one: the jobs here
write all their output before the kill, and the expected exit codes are
computed from the final status the new daemon reports."""

import fcntl
import os
import re
import select
import signal
import socket
import subprocess
import termios
import time

import rpcharness as h
from survive_util import finish

BUILD = os.environ.get("JW_BUILD_ROOT", "")
JWCTL = os.path.join(BUILD, "jwctl")
CERTS = h.CERTS

# A known byte sequence, large enough that a follower whose stdout is not
# read holds only part of it when the daemon dies.
LINES = 1000000
EXPECTED = b"".join(b"%d\n" % i for i in range(1, LINES + 1))
WRITER = "seq 1 %d; sleep %%s; exit %%d" % LINES


def env(daemon, **extra):
    e = dict(os.environ, JWCTL_SERVER=daemon.target, JWCTL_CA=os.path.join(CERTS, "ca.pem"),
             JWCTL_CERT=os.path.join(CERTS, "alice.pem"), JWCTL_KEY=os.path.join(CERTS, "alice-key.pem"),
             XDG_CONFIG_HOME=h.tmpdir())
    e.pop("JWCTL_RECONNECT_TIMEOUT", None)
    e.update(extra)
    return e


def jwctl(daemon, *args, stdout=subprocess.PIPE, **extra):
    """A jwctl follower in the background; stderr to a file read at the end."""
    errpath = os.path.join(h.tmpdir(), "stderr")
    err = open(errpath, "wb")
    p = subprocess.Popen([JWCTL, *args], env=env(daemon, **extra), stdin=subprocess.DEVNULL, stdout=stdout,
                         stderr=err)
    err.close()
    p.errpath = errpath
    return p


def subscribed_daemon(n):
    """A daemon that tells its live counts on a test NOTIFY_SOCKET, and a
    function that waits until it has at least n Output subscribers: how a
    test knows a follower is in its stream (and not still connecting)."""
    path = os.path.join(h.tmpdir(), "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    d = h.daemon_on_stable_port(env=dict(os.environ, NOTIFY_SOCKET=path))

    def wait_subscribers(timeout=20.0):
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                m = sock.recv(4096).decode(errors="replace")
            except socket.timeout:
                break
            seen.append(m)
            k = re.search(r"(\d+) subscribers", m)
            if k and int(k.group(1)) >= n:
                return
        h.fail("the daemon did not report %d subscribers within %.0fs: %r" % (n, timeout, seen[-3:]))
    return d, wait_subscribers


def read_exact(p, want, timeout=20.0):
    """Reads len(want) bytes of p's stdout within timeout and checks them."""
    got = b""
    deadline = time.monotonic() + timeout
    while len(got) < len(want):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([p.stdout], [], [], left)[0]:
            h.fail("jwctl %s wrote %r within %.0fs, expected %r" % (p.args[1:], got, timeout, want))
        chunk = os.read(p.stdout.fileno(), len(want) - len(got))
        if not chunk:
            h.fail("jwctl %s ended after %r, expected %r" % (p.args[1:], got, want))
        got += chunk
    if got != want:
        h.fail("jwctl %s wrote %r, expected %r" % (p.args[1:], got, want))


def pipe_full(p):
    """True once p's stdout pipe is full: jwctl is blocked writing to it."""
    fd = p.stdout.fileno()
    size = fcntl.fcntl(fd, 1032)  # F_GETPIPE_SZ
    queued = int.from_bytes(fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"), "little")
    return queued >= size


def start_job(daemon, script):
    pb, _ = h.stubs()
    s = daemon.stub("alice")
    return s.Start(pb.StartRequest(argv=["/bin/sh", "-c", script]), timeout=10).job_id


def wait_captured(daemon, job, n):
    h.wait_stdout(daemon.stub("alice"), job, at_least=n, timeout=60)


def restart(daemon, pause=0.0, signo=signal.SIGKILL, policy=None):
    """Ends daemon with signo and starts a new one on its state directory
    and its address after pause seconds (with policy, if given)."""
    port, state = daemon.port, daemon.state_dir
    if signo == signal.SIGKILL:
        daemon.kill()
    else:
        daemon.stop()
    if pause:
        time.sleep(pause)  # the outage under test, not a wait for a condition
    d = h.Daemon(state_dir=state, listen=False, args=["--listen", "127.0.0.1:%d" % port], policy=policy)
    if d.port != port:
        h.fail("the new daemon listens on %d, not %d" % (d.port, port))
    return d


def expected_code(daemon, job):
    """The code jwctl documents for the job's final state (jwctl(1)): its
    exit code, 128+N for signal N, 1 for lost. Waits until it ended (a lost
    job has ended as far as the daemon knows)."""
    pb, _ = h.stubs()
    st = h.wait_state(daemon.stub("alice"), job, [pb.JOB_STATE_EXITED, pb.JOB_STATE_KILLED, pb.JOB_STATE_LOST],
                      timeout=60)
    if st.state == pb.JOB_STATE_EXITED:
        return st.exit_code & 0xFF, st
    if st.state == pb.JOB_STATE_KILLED:
        return 128 + st.signal, st
    return 1, st


def daemon_bytes(daemon, job):
    data, _, _ = h.collect_output(daemon.stub("alice"), job, follow=False)
    return data


def stop_job(daemon, job):
    """A lost job's process still runs: stop it so nothing outlives the test."""
    pb, _ = h.stubs()
    try:
        daemon.stub("alice").Stop(pb.StopRequest(job_id=job, use_grace=True, grace_ms=100), timeout=10)
    except Exception:
        pass  # it ended already


def check_follower(name, p, want_out, want_code, quiet=True):
    code, out, err = finish(p)
    if want_out is not None and out != want_out:
        h.fail("%s: %d bytes written, expected %d (first difference at %d)"
               % (name, len(out), len(want_out), next((i for i, (a, b) in enumerate(zip(out, want_out)) if a != b),
                                                       min(len(out), len(want_out)))))
    if code != want_code:
        h.fail("%s: exit code %d, expected %d; stderr %r" % (name, code, want_code, err))
    if quiet and b"reconnect" in err:
        h.fail("%s: a short outage was reported on stderr: %r" % (name, err))
    return err


def test_kill9_followers_resume_exact(signo=signal.SIGKILL):
    """logs -f, run and wait across kill -9 + restart within ~1 s: every
    byte once, then the code of the final state; nothing on stderr about the
    outage."""
    d, wait_subscribers = subscribed_daemon(3)
    job = start_job(d, WRITER % (30, 7))
    wait_captured(d, job, len(EXPECTED))
    # Followers whose stdout is not read yet: each holds part of the output.
    logs = jwctl(d, "logs", "-f", job)
    wait = jwctl(d, "wait", job, stdout=subprocess.DEVNULL)
    run = jwctl(d, "run", "--", "/bin/sh", "-c", WRITER % (30, 9))
    run_job = h.wait_until(lambda: next((j.job_id for j in d.stub("alice").List(h.stubs()[0].ListRequest(), timeout=10).jobs
                                         if j.job_id != job), None), "the job of jwctl run")
    wait_captured(d, run_job, len(EXPECTED))
    # Both writers block on their full stdout pipe with the rest of the
    # output unread: the kill comes in the middle of their streams.
    for p in (logs, run):
        h.wait_until(lambda: pipe_full(p), "jwctl %s to fill its stdout pipe" % p.args[1], timeout=30)
    wait_subscribers()
    d = restart(d, signo=signo)
    try:
        want, st = expected_code(d, job)
        have = daemon_bytes(d, job)
        if have != EXPECTED:
            h.fail("the new daemon has %d bytes of the job, expected %d" % (len(have), len(EXPECTED)))
        check_follower("logs -f", logs, have, 0)
        err = check_follower("wait", wait, b"", want, quiet=False)
        if b"reconnect" in err:
            h.fail("wait: a short outage was reported: %r" % err)
        run_want, _ = expected_code(d, run_job)
        err = check_follower("run", run, daemon_bytes(d, run_job), run_want, quiet=False)
        if b"reconnect" in err:
            h.fail("run: a short outage was reported: %r" % err)
        if daemon_bytes(d, run_job) != EXPECTED:
            h.fail("the new daemon does not have the run job's bytes")
    finally:
        stop_job(d, job)
        stop_job(d, run_job)
    d.stop()


def test_sigterm_followers_resume_exact():
    """The same with SIGTERM: today the daemon stops its jobs as it goes;
    the followers get the bytes once and the code of what the new daemon
    reports."""
    test_kill9_followers_resume_exact(signal.SIGTERM)


def test_job_ends_during_outage():
    """A job that ends while no daemon runs: the follower reconnects and exits
    with the code of what the new daemon knows about it."""
    pb, _ = h.stubs()
    d, wait_subscribers = subscribed_daemon(2)
    job = start_job(d, "printf 'before the outage\\n'; sleep 3; exit 5")
    wait_captured(d, job, len("before the outage\n"))
    pid = d.stub("alice").Status(pb.StatusRequest(job_id=job), timeout=10).status.pid
    run = jwctl(d, "logs", "-f", job)
    wait = jwctl(d, "wait", job, stdout=subprocess.DEVNULL)
    read_exact(run, b"before the outage\n")
    wait_subscribers()
    d.kill()

    def gone():
        try:
            with open("/proc/%d/stat" % pid) as f:
                return ") Z " in f.read()
        except FileNotFoundError:
            return True
    h.wait_until(gone, "the job to end while no daemon runs", timeout=20)
    d = restart(d)
    want, _ = expected_code(d, job)
    check_follower("logs -f", run, b"", 0)
    check_follower("wait", wait, b"", want)
    d.stop()


def test_long_outage_is_told():
    """An outage of ~4.5 s: one line when it passes 3 s, one when back; the
    bytes are still exact."""
    d = h.daemon_on_stable_port()
    job = start_job(d, "printf 'one\\n'; sleep 60")
    wait_captured(d, job, 4)
    logs = jwctl(d, "logs", "-f", job)
    read_exact(logs, b"one\n")
    t0 = time.monotonic()
    d = restart(d, pause=4.5)
    _, st = expected_code(d, job)
    code, out, err = finish(logs)
    elapsed = time.monotonic() - t0
    try:
        lines = err.decode(errors="replace").splitlines()
        lost = [l for l in lines if l.startswith("jwctl: lost the connection to %s (" % d.target)]
        back = [l for l in lines if l.startswith("jwctl: reconnected to %s after " % d.target)]
        if len(lost) != 1 or len(back) != 1 or len(lines) != 2:
            h.fail("expected one 'lost' and one 'reconnected' line, got %r" % err)
        n = int(back[0].split(" after ")[1].split(" s")[0])
        if not 3 <= n <= elapsed + 1:
            h.fail("reconnected after %d s, outage was about %.1f s" % (n, elapsed))
        if out != b"" or code != 0:
            h.fail("logs -f: code %d, extra output %r" % (code, out))
    finally:
        stop_job(d, job)
    d.stop()


def test_give_up_after_bound():
    """No daemon comes back: the follower gives up once the bound has passed
    (flag or environment), exit 3, naming the server and the time."""
    d, wait_subscribers = subscribed_daemon(2)
    job = start_job(d, "printf 'x\\n'; sleep 60")
    wait_captured(d, job, 2)
    logs = jwctl(d, "--reconnect-timeout", "2s", "logs", "-f", job)
    wait = jwctl(d, "wait", job, stdout=subprocess.DEVNULL, JWCTL_RECONNECT_TIMEOUT="1500ms")
    read_exact(logs, b"x\n")
    wait_subscribers()
    target, pid = d.target, d.stub("alice").Status(h.stubs()[0].StatusRequest(job_id=job), timeout=10).status.pid
    t0 = time.monotonic()
    d.kill()
    for name, p, secs in (("logs -f", logs, 2), ("wait", wait, 1)):
        code, out, err = finish(p, timeout=30)
        took = time.monotonic() - t0
        if code != 3:
            h.fail("%s: exit %d after giving up, expected 3: %r" % (name, code, err))
        if ("gave up reconnecting to %s after %d s" % (target, secs)).encode() not in err:
            h.fail("%s: no give-up message naming the server and the time: %r" % (name, err))
        if took > 15:
            h.fail("%s: gave up only after %.1f s" % (name, took))
    if b"resume with 'jwctl logs -f --offset 2 " not in h.read(logs.errpath):
        h.fail("logs -f: the give-up message does not say how to resume: %r" % h.read(logs.errpath))
    os.kill(pid, signal.SIGKILL)


def test_interrupt_during_outage():
    """Ctrl-C while reconnecting ends the follower at once with 130."""
    d = h.daemon_on_stable_port()
    job = start_job(d, "printf 'x\\n'; sleep 60")
    wait_captured(d, job, 2)
    pid = d.stub("alice").Status(h.stubs()[0].StatusRequest(job_id=job), timeout=10).status.pid
    logs = jwctl(d, "logs", "-f", job)
    read_exact(logs, b"x\n")
    d.kill()
    # Meant to land in the backoff; a signal that comes before jwctl saw the
    # connection go ends it the same way, so this pause cannot make it flaky.
    time.sleep(1.0)
    logs.send_signal(signal.SIGINT)
    code, _, err = finish(logs, timeout=5)
    if code != 130:
        h.fail("logs -f: exit %d on SIGINT during an outage, expected 130: %r" % (code, err))
    os.kill(pid, signal.SIGKILL)


def test_refusal_after_restart_is_final():
    """The new daemon's policy no longer knows alice: the resumed stream is
    refused, and the follower ends at once with that refusal (exit 1),
    instead of retrying until the bound."""
    d = h.daemon_on_stable_port()
    job = start_job(d, "printf 'x\\n'; sleep 60")
    wait_captured(d, job, 2)
    pid = d.stub("alice").Status(h.stubs()[0].StatusRequest(job_id=job), timeout=10).status.pid
    logs = jwctl(d, "logs", "-f", job)
    read_exact(logs, b"x\n")
    t0 = time.monotonic()
    d = restart(d, policy="bob all analyst\n")
    code, out, err = finish(logs, timeout=30)
    took = time.monotonic() - t0
    if code != 1 or b"permission denied for user alice" not in err or b"gave up" in err:
        h.fail("logs -f after the policy dropped alice: exit %d, %r" % (code, err))
    if took > 20:
        h.fail("logs -f took %.1f s to end on a refusal" % took)
    os.kill(pid, signal.SIGKILL)
    d.stop()


def test_reconnect_off():
    """--reconnect-timeout 0: the lost connection ends the follower at once
    with exit 3, as before."""
    d = h.daemon_on_stable_port()
    job = start_job(d, "printf 'x\\n'; sleep 60")
    wait_captured(d, job, 2)
    pid = d.stub("alice").Status(h.stubs()[0].StatusRequest(job_id=job), timeout=10).status.pid
    logs = jwctl(d, "logs", "-f", "--reconnect-timeout", "0", job)
    read_exact(logs, b"x\n")
    d.kill()
    code, _, err = finish(logs, timeout=10)
    if code != 3 or b"resume with 'jwctl logs --offset 2" not in err:
        h.fail("logs -f with reconnecting off: exit %d, %r" % (code, err))
    os.kill(pid, signal.SIGKILL)


def main():
    if not os.access(JWCTL, os.X_OK):
        h.skip("jwctl was not built (%s)" % JWCTL)
    tests = [test_kill9_followers_resume_exact, test_sigterm_followers_resume_exact, test_job_ends_during_outage, test_long_outage_is_told,
             test_give_up_after_bound, test_interrupt_during_outage, test_refusal_after_restart_is_final,
             test_reconnect_off]
    failed = []
    for t in tests:
        print("--- %s" % t.__name__, flush=True)
        try:
            t()
        except AssertionError as e:
            import traceback
            traceback.print_exc()
            failed.append("%s: %s" % (t.__name__, e))
        for dmn in list(h._daemons):
            dmn.kill()
    if failed:
        h.fail("; ".join(failed))


h.run_main(main)
