# SPDX-License-Identifier: MIT
"""What the tests of jobs outliving the daemon share (issue 12): a writer
of a known sequence and its expected bytes, a kernel probe, a client for a
daemon run by fakesystemd."""

import fcntl
import os
import struct
import subprocess

import rpcharness as h

LINE = "%08d\n"
WRITER = ("import sys, time\n"
          "i = 0\n"
          "while True:\n"
          "    sys.stdout.write('%08d\\n' % i)\n"
          "    sys.stdout.flush()\n"
          "    i += 1\n"
          "    if i % 50 == 0:\n"
          "        time.sleep(0.01)\n")
PIDFD_GET_INFO = 0xC040FF0B   # _IOWR(0xFF, 11, struct pidfd_info), 64 bytes (VER0)
PIDFD_INFO_EXIT = 0x08


def one_line(msg):
    """A protobuf message's text on one line, for failure messages."""
    return " ".join(str(msg).split())


def expected(n):
    """The first n bytes the writer produces."""
    out = []
    size, i = 0, 0
    while size < n:
        out.append(LINE % i)
        size += 9
        i += 1
    return "".join(out).encode()[:n]


def kernel_has_pidfd_info_exit():
    """Probes PIDFD_GET_INFO with PIDFD_INFO_EXIT: a child's exit status read
    through its pidfd after it was reaped."""
    p = subprocess.Popen(["sh", "-c", "exit 42"])
    fd = os.pidfd_open(p.pid)
    try:
        p.wait(10)
        buf = bytearray(struct.pack("<Q", PIDFD_INFO_EXIT) + bytes(56))
        try:
            fcntl.ioctl(fd, PIDFD_GET_INFO, buf, True)
        except OSError:
            return False
        mask = struct.unpack_from("<Q", buf, 0)[0]
        status = struct.unpack_from("<i", buf, 60)[0]
        return bool(mask & PIDFD_INFO_EXIT) and os.WEXITSTATUS(status) == 42
    finally:
        os.close(fd)


class Client:
    """What the rpcharness helpers need of a daemon: a target and stubs."""
    channel = h.Daemon.channel
    stub = h.Daemon.stub

    def __init__(self, port):
        self.port = port

    @property
    def target(self):
        return "127.0.0.1:%d" % self.port


def process_gone(pid):
    """True once pid has been reaped (by PID 1 here, about 1.6 s late)."""
    return not os.path.exists("/proc/%d" % pid)
