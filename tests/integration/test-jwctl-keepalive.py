#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Long quiet streams (issue 14, item 7), with short intervals: a follower
of a job silent for many of jwctl's ping intervals keeps its one stream and
gets the rest of the output and the exit code byte-exact, while pings
closer than the daemon's min-ping-interval end the connection with GOAWAY
too_many_pings; the daemon drops a client that stops answering (SIGSTOP)
within its keepalive bound, connection and subscriber counts back to 0;
jwctl notices a stopped daemon within its own bound and, failing to
reconnect, gives up with exit 3."""

import os
import re
import signal
import socket
import subprocess
import time

import rpcharness as h
from survive_util import finish

BUILD = os.environ.get("JW_BUILD_ROOT", "")
JWCTL = os.path.join(BUILD, "jwctl")
CERTS = h.CERTS


def env(daemon, **extra):
    e = dict(os.environ, JWCTL_SERVER=daemon.target, JWCTL_CA=os.path.join(CERTS, "ca.pem"),
             JWCTL_CERT=os.path.join(CERTS, "alice.pem"), JWCTL_KEY=os.path.join(CERTS, "alice-key.pem"),
             XDG_CONFIG_HOME=h.tmpdir())
    for k in ("JWCTL_RECONNECT_TIMEOUT", "JWCTL_KEEPALIVE"):
        e.pop(k, None)
    e.update(extra)
    return e


def jwctl(daemon, *args, **extra):
    errpath = os.path.join(h.tmpdir(), "stderr")
    err = open(errpath, "wb")
    p = subprocess.Popen([JWCTL, *args], env=env(daemon, **extra), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=err)
    err.close()
    p.errpath = errpath
    return p


class Counted:
    """A daemon that tells its live counts on a test NOTIFY_SOCKET."""

    def __init__(self, args=()):
        path = os.path.join(h.tmpdir(), "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.d = h.Daemon(args=args, env=dict(os.environ, NOTIFY_SOCKET=path))
        self.last = None

    def wait_counts(self, pred, what, timeout):
        """Waits for a STATUS= whose (connections, subscribers) satisfy pred."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                m = self.sock.recv(4096).decode(errors="replace")
            except socket.timeout:
                break
            k = re.search(r"(\d+) connections, (\d+) subscribers", m)
            if k:
                self.last = (int(k.group(1)), int(k.group(2)))
                if pred(*self.last):
                    return time.monotonic()
        h.fail("%s: not within %.0fs; last (connections, subscribers): %r" % (what, timeout, self.last))


def start_job(daemon, script):
    pb, _ = h.stubs()
    return daemon.stub("alice").Start(pb.StartRequest(argv=["/bin/sh", "-c", script]), timeout=10).job_id


def test_quiet_follower_keeps_its_stream():
    """jwctl run pings every 1 s for 8 s of silence; the daemon allows pings
    500 ms apart (room for a late ping on a loaded machine): no strike, no
    GOAWAY. Reconnecting is off, so any cut of
    the stream would end jwctl with exit 3 instead of the job's 7."""
    c = Counted(args=["--min-ping-interval", "500ms"])
    p = jwctl(c.d, "--keepalive", "1s", "--reconnect-timeout", "0", "run", "--",
              "/bin/sh", "-c", "printf 'before\\n'; sleep 8; printf 'after\\n'; exit 7")
    code, out, err = finish(p, timeout=40)
    if out != b"before\nafter\n" or code != 7:
        h.fail("quiet follower: exit %d, stdout %r, stderr %r (expected 7, b'before\\nafter\\n')" % (code, out, err))
    if err:
        h.fail("quiet follower: stderr %r" % err)
    log = c.d.logtext()
    if "too_many_pings" in log or "GOAWAY" in log:
        h.fail("the daemon's log tells of GOAWAY:\n%s" % log)
    c.d.stop()


def test_ping_flood_gets_goaway():
    """The same follower against a daemon that wants 10 s between pings:
    the third early ping is answered with GOAWAY and the stream is cut
    long before the job's silence ends."""
    c = Counted(args=["--min-ping-interval", "10s"])
    job = start_job(c.d, "printf 'before\\n'; sleep 30; printf 'after\\n'")
    t0 = time.monotonic()
    p = jwctl(c.d, "--keepalive", "1s", "--reconnect-timeout", "0", "logs", "-f", job)
    code, out, err = finish(p, timeout=40)
    took = time.monotonic() - t0
    if code != 3 or out != b"before\n" or took > 20:
        h.fail("ping flood: exit %d after %.1fs, stdout %r, stderr %r (expected 3 well before 20 s)"
               % (code, took, out, err))
    print("ping flood: jwctl ended after %.1fs: %r" % (took, err), flush=True)
    c.d.kill()


def test_dead_client_is_dropped():
    """A follower that stops answering (SIGSTOP) is dropped by the daemon
    within keepalive + timeout (1 s + 1 s here, 10 s allowed)."""
    c = Counted(args=["--keepalive", "1s"])
    job = start_job(c.d, "printf 'x\\n'; sleep 60")
    p = jwctl(c.d, "--keepalive", "0", "logs", "-f", job)
    c.wait_counts(lambda conns, subs: conns >= 1 and subs >= 1, "follower connected", 20)
    try:
        os.kill(p.pid, signal.SIGSTOP)
        t0 = time.monotonic()
        t1 = c.wait_counts(lambda conns, subs: conns == 0 and subs == 0, "stopped follower dropped", 15)
        print("stopped follower dropped after %.1fs" % (t1 - t0), flush=True)
        if t1 - t0 > 10:
            h.fail("the stopped follower was dropped only after %.1fs" % (t1 - t0))
    finally:
        p.kill()
        os.kill(p.pid, signal.SIGCONT)
        p.wait(10)
    c.d.kill()


def test_dead_daemon_is_noticed():
    """The daemon stops answering (SIGSTOP): jwctl's pings go unanswered
    (1 s + 1 s), it tries to reconnect (a stopped daemon never finishes a
    handshake) and gives up after --reconnect-timeout 2s: exit 3."""
    c = Counted()
    job = start_job(c.d, "printf 'x\\n'; sleep 60")
    p = jwctl(c.d, "--keepalive", "1s", "--timeout", "2s", "--reconnect-timeout", "2s", "logs", "-f", job)
    c.wait_counts(lambda conns, subs: conns >= 1 and subs >= 1, "follower connected", 20)
    target = c.d.target
    c.d.signal(signal.SIGSTOP)
    t0 = time.monotonic()
    try:
        code, out, err = finish(p, timeout=40)
    finally:
        c.d.kill()
    took = time.monotonic() - t0
    print("jwctl ended %.1fs after the daemon stopped: %r" % (took, err), flush=True)
    if code != 3 or out != b"x\n" or ("gave up reconnecting to %s" % target).encode() not in err:
        h.fail("stopped daemon: exit %d, stdout %r, stderr %r (expected 3 and a give-up message)" % (code, out, err))
    if took > 20:
        h.fail("jwctl noticed the stopped daemon only after %.1fs" % took)


def main():
    if not os.access(JWCTL, os.X_OK):
        h.skip("jwctl was not built (%s)" % JWCTL)
    only = os.environ.get("JW_TEST_ONLY")
    tests = [test_quiet_follower_keeps_its_stream, test_ping_flood_gets_goaway, test_dead_client_is_dropped,
             test_dead_daemon_is_noticed]
    failed = []
    for t in tests:
        if only and only != t.__name__:
            continue
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
