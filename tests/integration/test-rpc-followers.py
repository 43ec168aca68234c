#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Followers that stop reading do not pin memory (issue 13, item 11): 100
Output streams whose clients never read (HTTP/2 flow control holds the
daemon back) grow the daemon's RSS by less than 128 KiB each, while a
normal follower of the same job still gets every byte, and a stalled one
that starts reading again gets every byte too. (Before: about 280 KiB each,
a 256 KiB chunk held in gRPC per stream.)"""

import os
import time

import rpcharness as h

SIZE = 4 * 1024 * 1024
STALLED = 100
PER_CONNECTION = 10
BOUND_KIB = 128  # per stalled follower: generous, the measured cost is far below
GEN = "import sys, random; random.seed(11); sys.stdout.buffer.write(random.randbytes(%d))" % SIZE


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    h.fail("no VmRSS for pid %d" % pid)


def sanitized(pid):
    """AddressSanitizer keeps freed memory in quarantine and pads every
    allocation: the daemon's RSS says nothing about its own use there."""
    with open("/proc/%d/maps" % pid) as f:
        return "libasan" in f.read()


def stalling_channel(d):
    """A connection of its own whose HTTP/2 windows stay at the default 64 KiB
    (no BDP probing), so that a stream nobody reads stalls the daemon's sends
    after a few chunks, as a client that stops reading does."""
    import grpc
    creds = grpc.ssl_channel_credentials(h.read(os.path.join(h.CERTS, "ca.pem")),
                                         h.read(os.path.join(h.CERTS, "charlie-key.pem")),
                                         h.read(os.path.join(h.CERTS, "charlie.pem")))
    opts = [("grpc.use_local_subchannel_pool", 1), ("grpc.http2.bdp_probe", 0),
            ("grpc.max_receive_message_length", 16 * 1024 * 1024)]
    return grpc.secure_channel(d.target, creds, options=opts)


def read_all(calls_iter, want, what):
    data = bytearray()
    end = None
    for m in calls_iter:
        if m.HasField("chunk"):
            if m.chunk.offset != len(data):
                h.fail("%s: chunk at %d, expected %d" % (what, m.chunk.offset, len(data)))
            data += m.chunk.data
        elif m.HasField("end"):
            end = m.end
    if end is None:
        h.fail("%s: no end message" % what)
    if bytes(data) != want:
        h.fail("%s: %d bytes, not byte-exact with the job's %d" % (what, len(data), len(want)))


def main():
    pb, pbg = h.stubs()
    import random
    random.seed(11)
    want = random.randbytes(SIZE)

    d = h.Daemon()
    s = d.stub("charlie")
    job = s.Start(pb.StartRequest(argv=["/usr/bin/python3", "-c", GEN]), timeout=10).job_id
    h.wait_state(s, job, [pb.JOB_STATE_EXITED], timeout=30)
    # a normal follower first, so that what any reader allocates is in the baseline
    read_all(s.Output(pb.OutputRequest(job_id=job, follow=True), timeout=60), want, "warm-up follower")
    before = rss_kib(d.proc.pid)

    channels = [stalling_channel(d) for _ in range(STALLED // PER_CONNECTION)]
    stalled = []
    for i in range(STALLED):
        stub = pbg.JobWorkerStub(channels[i // PER_CONNECTION])
        stalled.append(stub.Output(pb.OutputRequest(job_id=job, follow=True), timeout=120))
    # initial metadata goes out with a stream's first chunk: every stalled
    # stream has had its sends started
    for c in stalled:
        c.initial_metadata()

    bound = before + STALLED * BOUND_KIB
    peak = rss_kib(d.proc.pid)
    # a normal follower meanwhile: byte-exact (its sends share the daemon
    # with the stalled ones); the RSS is sampled while it reads and after
    read_all(s.Output(pb.OutputRequest(job_id=job, follow=True), timeout=60), want, "normal follower")
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        peak = max(peak, rss_kib(d.proc.pid))
        if peak > bound:
            break
        time.sleep(0.05)
    grown = peak - before
    print("daemon RSS %d KiB before, peak %d KiB with %d stalled followers: %.1f KiB each (bound %d)"
          % (before, peak, STALLED, grown / STALLED, BOUND_KIB))
    if peak > bound and sanitized(d.proc.pid):
        print("built with AddressSanitizer: the RSS bound is not checked")
    elif peak > bound:
        h.fail("%d stalled followers grew the daemon's RSS by %d KiB (%.1f KiB each, bound %d KiB each)"
               % (STALLED, grown, grown / STALLED, BOUND_KIB))

    # a stalled follower that reads again gets every byte
    read_all(stalled[0], want, "stalled follower reading again")
    for c in stalled[1:]:
        c.cancel()
    d.stop()


h.run_main(main)
