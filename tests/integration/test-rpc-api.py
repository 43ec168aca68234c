#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The API through an independent gRPC client (Python grpcio with its own
TLS): start, output (byte-exact, stream selection, offsets, follow), status,
stop, list; exec failures; malformed requests (garbage bytes, oversized argv,
an over-size message, NUL bytes, bad ids) get INVALID_ARGUMENT (or
RESOURCE_EXHAUSTED for a message over the size limit) and the daemon keeps
serving; an unknown method is UNIMPLEMENTED."""

import time

import rpcharness as h


def main():
    import grpc
    pb, _ = h.stubs()
    C = grpc.StatusCode
    d = h.Daemon()
    ch = d.channel("charlie")
    s = h.stubs()[1].JobWorkerStub(ch)

    # --- start / output byte-exact / status --------------------------------
    # Every byte value, on both streams, interleaved in a known order.
    script = ("printf 'out1\\n'; printf 'err1\\n' >&2; "
              "head -c 4096 /dev/zero | tr '\\0' 'A'; printf 'err2' >&2; "
              "printf '\\000\\001\\377binary'; exit 3")
    r = s.Start(pb.StartRequest(argv=["/bin/sh", "-c", script], env=["FOO=bar"]), timeout=10)
    data, chunks, end = h.collect_output(s, r.job_id, timeout=30)
    expected_out = b"out1\n" + b"A" * 4096 + b"\x00\x01\xffbinary"
    expected_err = b"err1\nerr2"
    assert end.state == pb.JOB_STATE_EXITED and end.exit_code == 3, end
    assert end.stdout_bytes == len(expected_out) and end.stderr_bytes == len(expected_err), end
    out = b"".join(c.data for c in chunks if c.stream == pb.STREAM_STDOUT)
    err = b"".join(c.data for c in chunks if c.stream == pb.STREAM_STDERR)
    assert out == expected_out, out
    assert err == expected_err, err
    assert len(data) == len(expected_out) + len(expected_err)
    # stream selection and offsets
    o, _, _ = h.collect_output(s, r.job_id, stream=pb.STREAM_STDOUT)
    assert o == expected_out
    e, _, _ = h.collect_output(s, r.job_id, stream=pb.STREAM_STDERR)
    assert e == expected_err
    o, _, _ = h.collect_output(s, r.job_id, stream=pb.STREAM_STDOUT, offset=4000)
    assert o == expected_out[4000:]
    o, _, _ = h.collect_output(s, r.job_id, stream=pb.STREAM_BOTH, offset=len(data) - 3)
    assert o == data[-3:]
    o, _, _ = h.collect_output(s, r.job_id, offset=len(data) + 100)
    assert o == b""
    st = s.Status(pb.StatusRequest(job_id=r.job_id), timeout=10).status
    assert st.state == pb.JOB_STATE_EXITED and st.exit_code == 3 and st.owner == "charlie"
    assert st.end_time_us >= st.start_time_us > 0
    # upper case ids are accepted
    assert s.Status(pb.StatusRequest(job_id=r.job_id.upper()), timeout=10).status.job_id == r.job_id

    # the environment: clean plus what we asked for
    r = s.Start(pb.StartRequest(argv=["/bin/sh", "-c", "echo $FOO; echo ${LISTEN_FDS:-none}"],
                                env=["FOO=bar baz"]), timeout=10)
    data, _, _ = h.collect_output(s, r.job_id)
    assert data == b"bar baz\nnone\n", data

    # a large output (8 MiB of seeded pseudo-random bytes on stderr), byte-exact through 1 MiB chunks
    import random
    gen = "import sys, random; random.seed(7); sys.stderr.buffer.write(random.randbytes(8388608))"
    r = s.Start(pb.StartRequest(argv=["/usr/bin/python3", "-c", gen]), timeout=10)
    data, chunks, end = h.collect_output(s, r.job_id, stream=pb.STREAM_STDERR, timeout=60)
    random.seed(7)
    assert len(data) == 8388608, len(data)
    assert data == random.randbytes(8388608)
    assert end.stderr_bytes == 8388608 and end.exit_code == 0, end
    assert max(len(c.data) for c in chunks) <= 1024 * 1024

    # follow a running job: data arrives as produced, then the end
    r = s.Start(pb.StartRequest(argv=["/bin/sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.2; done"]),
                timeout=10)
    t0 = time.monotonic()
    data, chunks, end = h.collect_output(s, r.job_id, follow=True)
    assert data == b"line1\nline2\nline3\n", data
    assert end.state == pb.JOB_STATE_EXITED and end.exit_code == 0
    assert time.monotonic() - t0 >= 0.3

    # --- stop: SIGTERM, grace, status ------------------------------------
    r = s.Start(pb.StartRequest(argv=["/bin/sleep", "60"]), timeout=10)
    h.wait_state(s, r.job_id, [pb.JOB_STATE_RUNNING])
    st = s.Stop(pb.StopRequest(job_id=r.job_id), timeout=10).status
    assert st.stop_requested
    st = h.wait_state(s, r.job_id, [pb.JOB_STATE_KILLED])
    assert st.signal == 15, st
    h.expect_code(lambda: s.Stop(pb.StopRequest(job_id=r.job_id), timeout=10), C.FAILED_PRECONDITION,
                  "is not running")
    # a job that ignores SIGTERM is killed after the grace period
    r = s.Start(pb.StartRequest(argv=["/bin/sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.1; done"]),
                timeout=10)
    h.wait_stdout(s, r.job_id)  # "ready": the trap is in place
    t0 = time.monotonic()
    s.Stop(pb.StopRequest(job_id=r.job_id, use_grace=True, grace_ms=300), timeout=10)
    st = h.wait_state(s, r.job_id, [pb.JOB_STATE_KILLED, pb.JOB_STATE_EXITED])
    assert st.state == pb.JOB_STATE_KILLED and st.signal == 9, st
    assert time.monotonic() - t0 >= 0.25

    # list, running_only
    r = s.Start(pb.StartRequest(argv=["/bin/sleep", "60"]), timeout=10)
    h.wait_state(s, r.job_id, [pb.JOB_STATE_RUNNING])
    jobs = s.List(pb.ListRequest(), timeout=10).jobs
    assert len(jobs) == 7, len(jobs)
    running = s.List(pb.ListRequest(running_only=True), timeout=10).jobs
    assert [j.job_id for j in running] == [r.job_id], running
    starts = [j.start_time_us for j in jobs]
    assert starts == sorted(starts)

    # --- exec failures are INVALID_ARGUMENT with the reason -------------------
    h.expect_code(lambda: s.Start(pb.StartRequest(argv=["/no/such/program"]), timeout=10),
                  C.INVALID_ARGUMENT, "/no/such/program")
    h.expect_code(lambda: s.Start(pb.StartRequest(argv=["no-such-program-in-path"]), timeout=10),
                  C.INVALID_ARGUMENT, "no-such-program-in-path")
    h.expect_code(lambda: s.Start(pb.StartRequest(argv=["/etc/hostname"]), timeout=10),
                  C.INVALID_ARGUMENT, "/etc/hostname")
    h.expect_code(lambda: s.Start(pb.StartRequest(argv=["/bin/true"], cwd="/no/such/dir"), timeout=10),
                  C.INVALID_ARGUMENT, "/no/such/dir")

    # --- malformed requests ---------------------------------------------------
    raw = {m: ch.unary_unary("/jobworker.v1.JobWorker/" + m, request_serializer=None,
                             response_deserializer=None)
           for m in ("Start", "Stop", "Status", "List")}
    h.expect_code(lambda: raw["Start"](b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", timeout=10),
                  C.INVALID_ARGUMENT, "malformed StartRequest")
    h.expect_code(lambda: raw["Status"](b"\x0a\x50garbage", timeout=10), C.INVALID_ARGUMENT, "malformed")
    h.expect_code(lambda: raw["List"](b"\x0b", timeout=10), C.INVALID_ARGUMENT, "malformed")
    h.expect_code(lambda: raw["Start"](b"\x0a\x06ls\x00-rf", timeout=10), C.INVALID_ARGUMENT, "NUL byte")
    # nested strings too: a label protobuf-c would have cut to "team"
    h.expect_code(lambda: s.Start(pb.StartRequest(argv=["true"], labels=[pb.Label(key="team\x00x", value="w")]),
                                  timeout=10), C.INVALID_ARGUMENT, "labels[0].key contains a NUL byte")
    h.expect_code(lambda: s.List(pb.ListRequest(labels=[pb.Label(key="team", value="w\x00b")]), timeout=10),
                  C.INVALID_ARGUMENT, "labels[0].value contains a NUL byte")
    h.expect_code(lambda: s.Start(pb.StartRequest(argv=[]), timeout=10), C.INVALID_ARGUMENT, "argv is empty")
    h.expect_code(lambda: s.Start(pb.StartRequest(argv=["x"] * 5000), timeout=10), C.INVALID_ARGUMENT,
                  "too many arguments: 5000")
    h.expect_code(lambda: s.Start(pb.StartRequest(argv=["echo", "y" * 70000]), timeout=10), C.INVALID_ARGUMENT,
                  "argv[1] is too long")
    h.expect_code(lambda: s.Start(pb.StartRequest(argv=["echo"], env=["NOEQUALS"]), timeout=10),
                  C.INVALID_ARGUMENT, "KEY=VALUE")
    h.expect_code(lambda: s.Start(pb.StartRequest(argv=["echo"], cwd="tmp"), timeout=10),
                  C.INVALID_ARGUMENT, "absolute")
    h.expect_code(lambda: s.Status(pb.StatusRequest(job_id="nope"), timeout=10), C.INVALID_ARGUMENT,
                  "malformed job id 'nope'")
    h.expect_code(lambda: s.Stop(pb.StopRequest(), timeout=10), C.INVALID_ARGUMENT, "job id is missing")
    h.expect_code(lambda: h.collect_output(s, "123"), C.INVALID_ARGUMENT, "malformed job id")
    # a message over the 2 MiB limit is refused by gRPC itself
    h.expect_code(lambda: s.Start(pb.StartRequest(argv=["echo"] + ["z" * 60000] * 40), timeout=10),
                  C.RESOURCE_EXHAUSTED)
    # an unknown method does not hang
    t0 = time.monotonic()
    h.expect_code(lambda: ch.unary_unary("/jobworker.v1.JobWorker/Nope")(b"", timeout=10), C.UNIMPLEMENTED,
                  "/jobworker.v1.JobWorker/Nope")
    h.expect_code(lambda: ch.unary_unary("/other.Service/X")(b"", timeout=10), C.UNIMPLEMENTED)
    assert time.monotonic() - t0 < 5

    # still serving, on the same and on a new connection
    r = s.Start(pb.StartRequest(argv=["/bin/echo", "still", "here"]), timeout=10)
    data, _, _ = h.collect_output(s, r.job_id)
    assert data == b"still here\n"
    s2 = d.stub("alice")
    r = s2.Start(pb.StartRequest(argv=["/bin/echo", "ok"]), timeout=10)
    assert h.collect_output(s2, r.job_id)[0] == b"ok\n"

    ch.close()
    assert d.stop() == 0


h.run_main(main)
