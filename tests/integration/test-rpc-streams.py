#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""200 concurrent Output streams (follow) of one running job over 20 TLS
connections: every stream receives the job's output byte-exact, in order,
then the final status."""

import random
import threading

import rpcharness as h

CONNECTIONS = 20
STREAMS_PER_CONNECTION = 10
SIZE = 4 * 1024 * 1024

GEN = ("import sys, time, random\n"
       "random.seed(11)\n"
       "data = random.randbytes(%d)\n"
       "for i in range(0, len(data), 65536):\n"
       "    sys.stdout.buffer.write(data[i:i + 65536]); sys.stdout.flush(); time.sleep(0.01)\n" % SIZE)


def main():
    pb, pbg = h.stubs()
    d = h.Daemon()
    random.seed(11)
    expected = b"R" + random.randbytes(SIZE)

    channels = [d.channel("bob" if i % 2 else "charlie") for i in range(CONNECTIONS)]
    starter = pbg.JobWorkerStub(d.channel("charlie"))
    # The job writes one byte, then waits for a go signal (a file): each
    # stream receives that byte, which shows it is subscribed, and the data
    # is released once all are.
    gate = h.tmpdir()
    job = starter.Start(pb.StartRequest(
        argv=["/usr/bin/python3", "-c",
              "import os, sys, time\nsys.stdout.buffer.write(b'R'); sys.stdout.flush()\n"
              "while not os.path.exists(%r): time.sleep(0.01)\n" % (gate + "/go") + GEN]),
        timeout=10).job_id

    results = [None] * (CONNECTIONS * STREAMS_PER_CONNECTION)
    started = threading.Barrier(len(results) + 1, timeout=60)

    def reader(i):
        stub = pbg.JobWorkerStub(channels[i % CONNECTIONS])
        try:
            data = bytearray()
            end = None
            subscribed = False
            it = stub.Output(pb.OutputRequest(job_id=job, follow=True), timeout=120)
            for m in it:
                if m.HasField("chunk"):
                    if m.chunk.offset != len(data):
                        raise AssertionError("stream %d: offset %d, expected %d" % (i, m.chunk.offset, len(data)))
                    data += m.chunk.data
                    if not subscribed:
                        subscribed = True
                        started.wait()  # subscribed: wait for the others
                else:
                    end = m.end
            results[i] = (bytes(data), end)
        except Exception as e:  # reported below
            results[i] = e
            try:
                started.abort()
            except Exception:
                pass

    threads = [threading.Thread(target=reader, args=(i,), daemon=True) for i in range(len(results))]
    for t in threads:
        t.start()
    try:
        started.wait()
    except threading.BrokenBarrierError:
        for t in threads:
            t.join(10)
        errors = ["stream %d: %r" % (i, r) for i, r in enumerate(results) if isinstance(r, Exception)]
        h.fail("a stream failed before all were subscribed:\n%s\ndaemon log (end):\n%s"
               % ("\n".join(errors[:10]), d.logtext()[-3000:]))
    # all 200 are subscribed; the rest of the data now
    open(gate + "/go", "w").close()
    for t in threads:
        t.join(180)
        if t.is_alive():
            h.fail("a stream did not finish within 180 s")

    bad = 0
    for i, r in enumerate(results):
        if isinstance(r, Exception):
            print("stream %d failed: %r" % (i, r))
            bad += 1
            continue
        data, end = r
        if data != expected or end is None or end.state != pb.JOB_STATE_EXITED or end.exit_code != 0:
            print("stream %d: %d bytes (expected %d), equal=%s, end=%s"
                  % (i, len(data), len(expected), data == expected, end))
            bad += 1
    assert bad == 0, "%d of %d streams wrong" % (bad, len(results))
    for c in channels:
        c.close()
    assert d.stop() == 0

    # --- the bound on simultaneous Output streams ---------------------------
    import grpc
    d = h.Daemon(args=["--max-output-streams", "2"])
    s = d.stub("charlie")
    job = s.Start(pb.StartRequest(argv=["/bin/sh", "-c", "echo x; exec sleep 60"]), timeout=10).job_id
    h.wait_stdout(s, job)
    held = [s.Output(pb.OutputRequest(job_id=job, follow=True), timeout=30) for _ in range(2)]
    for c in held:
        next(c)  # the first chunk: this stream holds its place
    h.expect_code(lambda: next(s.Output(pb.OutputRequest(job_id=job, follow=True), timeout=10)),
                  grpc.StatusCode.RESOURCE_EXHAUSTED, "too many output streams (at most 2)")
    for c in held:
        c.cancel()

    # cancelled streams free their places (once the server has seen the cancel)
    def collect_if_free():
        try:
            return h.collect_output(s, job, follow=False, timeout=10)
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e
            return None
    data, _, end = h.wait_until(collect_if_free, "the cancelled Output streams to be released")
    assert data == b"x\n" and end.state == pb.JOB_STATE_RUNNING, (data, end)
    assert d.stop() == 0


h.run_main(main)
