#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Followers that never read, for bench/run's figure 9: opens N Output
streams (follow) of JOB over connections of PER streams each, with HTTP/2
windows left at the default 64 KiB (no BDP probing) so that each stream
stalls the daemon's sends as soon as its window is full; prints "ready
followers=N" once every stream has had its first chunk sent (its initial
metadata arrived), then holds them until stdin closes.

usage: stall-followers.py PORT CERT KEY CA JOB N PER
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
import rpcharness as h  # noqa: E402  (the stubs generated from proto/)


def main():
    port, cert, key, ca, job = sys.argv[1:6]
    n, per = int(sys.argv[6]), int(sys.argv[7])
    import grpc
    pb, pbg = h.stubs()
    creds = grpc.ssl_channel_credentials(h.read(ca), h.read(key), h.read(cert))
    opts = [("grpc.use_local_subchannel_pool", 1), ("grpc.http2.bdp_probe", 0)]
    chans = [grpc.secure_channel("127.0.0.1:%s" % port, creds, options=opts) for _ in range((n + per - 1) // per)]
    calls = [pbg.JobWorkerStub(chans[i // per]).Output(pb.OutputRequest(job_id=job, follow=True), timeout=600)
             for i in range(n)]
    for c in calls:
        c.initial_metadata()
    print("ready followers=%d" % n, flush=True)
    sys.stdin.read()
    for c in calls:
        c.cancel()


main()
