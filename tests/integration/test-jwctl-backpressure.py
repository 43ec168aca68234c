#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A slow consumer does not make jwctl's memory grow (issue 16): a job
writes 1 GiB while `jwctl logs -f` writes into a pipe nobody reads; once the
job has ended (the daemon holds all of it), jwctl's peak RSS is still a few
MiB (11.7 MiB measured; 17 MiB for the gRPC C core jwctl before it;
42-50 MiB, and failing, with nghttp2's automatic window updates on), because HTTP/2 flow control stopped the daemon instead
of jwctl buffering what it could not write. Then the pipe is drained and
every byte arrives. JW_JWCTL runs another jwctl (an older build, to compare)."""

import os
import subprocess

import rpcharness as h

BUILD = os.environ.get("JW_BUILD_ROOT", "")
JWCTL = os.environ.get("JW_JWCTL") or os.path.join(BUILD, "jwctl")
SIZE = 1 << 30
# jwctl's peak RSS while the daemon holds 1 GiB for it (flow-control
# windows, the message it holds, TLS buffers, the program itself).
RSS_PEAK_MAX = 32 << 20


def sanitized():
    """A jwctl built with AddressSanitizer: its quarantine and shadow memory
    make RSS say nothing about our buffers, so only the bytes are checked."""
    out = subprocess.run([JWCTL, "--version"], env=dict(os.environ, LD_TRACE_LOADED_OBJECTS="1"),
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
    return b"libasan" in out


def vm_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    h.fail("no %s in /proc/%d/status" % (field, pid))


def test_slow_pipe_keeps_rss_bounded():
    d = h.Daemon()
    pb, _ = h.stubs()
    stub = d.stub("alice")
    job = stub.Start(pb.StartRequest(argv=["/bin/sh", "-c", "sleep 0.5; head -c %d /dev/zero; exit 3" % SIZE]),
                     timeout=10).job_id
    env = dict(os.environ, JWCTL_SERVER=d.target, JWCTL_CA=os.path.join(h.CERTS, "ca.pem"),
               JWCTL_CERT=os.path.join(h.CERTS, "alice.pem"), JWCTL_KEY=os.path.join(h.CERTS, "alice-key.pem"),
               XDG_CONFIG_HOME=h.tmpdir())
    errpath = os.path.join(h.tmpdir(), "stderr")
    err = open(errpath, "wb")
    p = subprocess.Popen([JWCTL, "logs", "-f", job], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=err)
    try:
        h.wait_state(stub, job, [pb.JOB_STATE_EXITED], timeout=300)
        peak = vm_kib(p.pid, "VmHWM")
        print("jwctl's peak RSS with 1 GiB waiting for it: %d KiB" % peak, flush=True)
        if peak * 1024 > RSS_PEAK_MAX and not sanitized():
            h.fail("jwctl's RSS grew to %d KiB behind a pipe nobody read" % peak)
        total = 0
        while True:
            b = p.stdout.read(1 << 20)
            if not b:
                break
            if b.count(0) != len(b):
                h.fail("non-zero byte in the output near offset %d" % total)
            total += len(b)
        code = p.wait(60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(10)
    if total != SIZE or code != 0:
        h.fail("got %d bytes and exit %d, expected %d and 0; stderr %r"
               % (total, code, SIZE, h.read(errpath)))
    d.stop()


def main():
    if not os.access(JWCTL, os.X_OK):
        h.skip("jwctl was not built (%s)" % JWCTL)
    test_slow_pipe_keeps_rss_bounded()


h.run_main(main)
