#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""What jobworkerd writes to its log when a client sends hostile text: a
job's argv with terminal escape sequences and other control bytes reaches
the daemon's stderr escaped (\\xNN), never as raw bytes, and a valid
multibyte argv reads as it was sent. A Start on a full disk is logged
naming the disk of the state directory (not the process or fd limits)."""

import errno
import os
import re
import subprocess

import rpcharness as h


def test_argv_control_bytes_escaped(d, pb):
    s = d.stub("alice")
    argv = ["/bin/echo", "\x1b[31mred\x1b[0m", "bell\x07", "del\x7f", "c1\u009b2J"]
    j = s.Start(pb.StartRequest(argv=argv), timeout=10).job_id
    h.wait_state(s, j, [pb.JOB_STATE_EXITED])
    d.wait_log(r"job %s started by alice" % re.escape(j))
    d.wait_log(r"job %s of alice exited" % re.escape(j))
    raw = h.read(d.log_path)
    for b in (b"\x1b", b"\x07", b"\x7f", "\u009b".encode()):
        assert b not in raw, "raw %r in the daemon's log:\n%r" % (b, raw)
    line = [l for l in raw.splitlines() if ("job %s started" % j).encode() in l]
    assert len(line) == 1, raw
    assert b"\\x1b[31mred\\x1b[0m" in line[0] and b"bell\\x07" in line[0], line[0]
    assert b"del\\x7f" in line[0] and b"c1\\xc2\\x9b2J" in line[0], line[0]


def test_argv_utf8_kept(d, pb):
    s = d.stub("alice")
    j = s.Start(pb.StartRequest(argv=["/bin/echo", "zoë-日本"]), timeout=10).job_id
    h.wait_state(s, j, [pb.JOB_STATE_EXITED])
    m = d.wait_log(r"job %s started by alice[^\n]*" % re.escape(j))
    assert "zoë-日本" in m.group(0), m.group(0)


class SmallDisk:
    """A 1 MiB tmpfs (needs root and mount(2)); None when it cannot be had."""

    def __init__(self):
        self.path = os.path.join(h.tmpdir(), "small")
        os.mkdir(self.path)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", self.path],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.mounted = r.returncode == 0

    def fill(self):
        """Takes every block left (not the inodes: a connection needs one
        for its socket in the state directory)."""
        with open(os.path.join(self.path, "filler"), "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e

    def unmount(self):
        if self.mounted:
            subprocess.run(["umount", "-l", self.path])
            self.mounted = False


def test_start_on_full_disk_names_the_disk(pb):
    import grpc  # importable once h.stubs() ran
    disk = SmallDisk()
    if not disk.mounted:
        print("SKIP test_start_on_full_disk_names_the_disk: cannot mount a tmpfs (not root?)")
        return
    try:
        state = os.path.join(disk.path, "state")
        d = h.Daemon(state_dir=state)
        disk.fill()
        s = d.stub("alice")
        h.expect_code(lambda: s.Start(pb.StartRequest(argv=["/bin/true"]), timeout=10),
                      grpc.StatusCode.RESOURCE_EXHAUSTED)
        line = d.wait_log(r"cannot start a job for alice[^\n]*").group(0)
        # the disk of the state directory, by name; not the process or fd limits
        assert "disk" in line and state in line, line
        assert "TasksMax" not in line and "LimitNOFILE" not in line, line
        assert d.stop() == 0
    finally:
        disk.unmount()


def main():
    pb, _ = h.stubs()
    d = h.Daemon()
    for t in (test_argv_control_bytes_escaped, test_argv_utf8_kept):
        print("--", t.__name__, flush=True)
        t(d, pb)
    assert d.stop() == 0
    d.check_sanitizers()
    test_start_on_full_disk_names_the_disk(pb)


h.run_main(main)
