#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Terminals (issue 14, item 5): `jwctl run -t` inside a pseudo-terminal of a
known size made by this test, against the real daemon:
- the job's terminal has our size and TERM, is a /dev/pts path, sees what
  we type;
- a resize of our terminal reaches the job (its WINCH trap prints the size);
- Ctrl-C (the byte 0x03) interrupts the job's foreground program on its
  terminal without stopping the job from jwctl's side: the job goes on and
  its exit code is jwctl's;
- our terminal's settings are as before afterwards, also after a SIGTERM
  (which stops the job; exit 130);
- what the job wrote to its terminal is its stdout in the log;
- -t with a pipe on stdin is refused (exit 2) with a clear message."""

import fcntl
import os
import select
import struct
import subprocess
import sys
import termios
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rpcharness as h  # noqa: E402
from survive_util import JWCTL  # noqa: E402

SCRIPT = ("trap 'echo INT-caught' INT; trap 'stty size' WINCH; "
          "stty size; tty; echo T=$TERM; echo ready; "
          "until read x; do :; done; echo got $x; "
          "echo sleeping; sleep 31.25; echo slept $?; exit 3")


def env_for(d):
    return dict(os.environ, JWCTL_SERVER=d.target, JWCTL_CA=os.path.join(h.CERTS, "ca.pem"),
                JWCTL_CERT=os.path.join(h.CERTS, "alice.pem"), JWCTL_KEY=os.path.join(h.CERTS, "alice-key.pem"),
                XDG_CONFIG_HOME=h.tmpdir(), TERM="xterm-256color")


def set_size(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class Screen:
    """What jwctl wrote to its terminal, read from the master side."""

    def __init__(self, master):
        self.master = master
        self.data = b""

    def wait_for(self, needle, timeout=20.0):
        deadline = time.monotonic() + timeout
        while needle not in self.data:
            left = deadline - time.monotonic()
            if left <= 0:
                h.fail("no %r on the terminal within %.0fs; it shows %r" % (needle, timeout, self.data[-400:]))
            r, _, _ = select.select([self.master], [], [], left)
            if r:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    h.fail("the terminal closed before %r; it shows %r" % (needle, self.data[-400:]))
                self.data += chunk

    def drain(self):
        while True:
            r, _, _ = select.select([self.master], [], [], 0)
            if not r:
                return
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.data += chunk


def sleep_pid():
    """The job's `sleep 31.25` once it runs (the daemon runs on this host)."""
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    if f.read() == b"sleep\x0031.25\x00":
                        return int(pid)
            except OSError:
                pass
    return None


def test_interactive(d, pb):
    master, slave = os.openpty()
    set_size(slave, 31, 97)
    before = termios.tcgetattr(slave)

    def child_setup():
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    p = subprocess.Popen([JWCTL, "run", "-t", "--", "sh", "-c", SCRIPT], env=env_for(d), stdin=slave, stdout=slave,
                         stderr=slave, preexec_fn=child_setup)
    screen = Screen(master)
    try:
        screen.wait_for(b"ready\r\n")
        if b"31 97\r\n/dev/pts/" not in screen.data or b"T=xterm-256color\r\n" not in screen.data:
            h.fail("the job's terminal: %r (want size 31 97, a /dev/pts path, our TERM)" % screen.data)
        # a resize of ours reaches the job's terminal (SIGWINCH to jwctl, then to the job)
        set_size(slave, 40, 101)
        screen.wait_for(b"40 101\r\n")
        os.write(master, b"hello\r")
        screen.wait_for(b"got hello\r\n")
        screen.wait_for(b"sleeping\r\n")
        h.wait_until(sleep_pid, "the job's sleep to run")
        os.write(master, b"\x03")   # Ctrl-C: a key for the job's terminal
        screen.wait_for(b"slept 130\r\n")
        code = p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    screen.drain()
    if b"INT-caught" not in screen.data:
        h.fail("the job's shell did not see SIGINT: %r" % screen.data)
    if code != 3:
        h.fail("jwctl run -t exit %d, want the job's 3; terminal %r" % (code, screen.data[-400:]))
    after = termios.tcgetattr(slave)
    if after != before:
        h.fail("the terminal settings were not restored: before %r after %r" % (before, after))
    os.close(master)
    os.close(slave)
    # the job's terminal output is its stdout in the log
    alice = d.stub("alice")
    jobs = [j for j in alice.List(pb.ListRequest(), timeout=10).jobs if j.tty]
    if not jobs:
        h.fail("no job with tty in the list")
    st = jobs[-1]
    data, _, end = h.collect_output(alice, st.job_id, stream=0)
    if b"got hello\r\n" not in data or b"slept 130\r\n" not in data or end.stderr_bytes != 0:
        h.fail("the log of the terminal job: %r, %d bytes on stderr" % (data, end.stderr_bytes))
    if end.stop_requested or end.exit_code != 3:
        h.fail("the job was stopped or ended otherwise: %s" % end)


def test_sigterm_restores(d, pb):
    """SIGTERM to jwctl run -t: the job is stopped, jwctl exits 130, and
    our terminal is as it was."""
    master, slave = os.openpty()
    set_size(slave, 24, 80)
    before = termios.tcgetattr(slave)

    def child_setup():
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    p = subprocess.Popen([JWCTL, "run", "-t", "--", "sh", "-c", "echo ready; sleep 30"], env=env_for(d), stdin=slave,
                         stdout=slave, stderr=slave, preexec_fn=child_setup)
    screen = Screen(master)
    try:
        screen.wait_for(b"ready\r\n")
        if termios.tcgetattr(slave) == before:
            h.fail("jwctl run -t did not put the terminal in raw mode")
        p.terminate()
        code = p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    screen.drain()
    after = termios.tcgetattr(slave)
    os.close(master)
    os.close(slave)
    if code != 130:
        h.fail("SIGTERM to jwctl run -t: exit %d, terminal %r" % (code, screen.data[-300:]))
    if after != before:
        h.fail("the terminal settings were not restored after SIGTERM")


def test_refused_without_terminal(d, pb):
    p = subprocess.run([JWCTL, "run", "-t", "--", "true"], env=env_for(d), input=b"", capture_output=True,
                       timeout=60)
    if p.returncode != 2 or b"-t needs a terminal on standard input" not in p.stderr:
        h.fail("jwctl run -t with a pipe on stdin: exit %d, stderr %r" % (p.returncode, p.stderr))


def main():
    pb, _ = h.stubs()
    d = h.Daemon()
    failures = []
    for t in (test_interactive, test_sigterm_restores, test_refused_without_terminal):
        try:
            t(d, pb)
            print("ok   %s" % t.__name__)
        except Exception as e:  # noqa: BLE001 - one failure does not hide the others
            print("FAIL %s: %s" % (t.__name__, str(e).splitlines()[0] if str(e) else repr(e)))
            failures.append(t.__name__)
    d.stop()
    d.check_sanitizers()
    if failures:
        h.fail("; ".join(failures))


if __name__ == "__main__":
    h.run_main(main)
