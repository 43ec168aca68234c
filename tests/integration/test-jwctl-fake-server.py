#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""jwctl against a scripted fake server (Python grpcio with mutual TLS).

The real daemon cannot be made to answer late, send overlapping or missing
output chunks, report a lost job, return ids that share a prefix or send
control characters in a command; this server can. It also checks what jwctl
sends (the Output request's stream/offset/follow, Stop's grace) and that
jwctl's GnuTLS client interoperates with grpcio's TLS (ALPN h2, TLS 1.3).

Usage: test-jwctl-fake-server.py [JWCTL]   (default $JW_BUILD_ROOT/jwctl). Exits 77 if
jwctl was not built or grpcio is missing.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

SKIP = 77
build = os.environ.get("JW_BUILD_ROOT", os.getcwd())
src = os.environ.get("JW_SOURCE_ROOT", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
jwctl = sys.argv[1] if len(sys.argv) > 1 else os.path.join(build, "jwctl")
certs = os.path.join(src, "certs")

if not os.access(jwctl, os.X_OK):
    print(f"SKIP: jwctl was not built ({jwctl})")
    sys.exit(SKIP)
try:
    import grpc
except ImportError:
    print("SKIP: python3-grpcio is not installed (Debian: python3-grpcio)")
    sys.exit(SKIP)
from concurrent import futures

# ---- protobuf wire format, by hand (no generated code needed) ----------------


def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def fv(num, v):  # varint field
    return varint(num << 3) + varint(v) if v else b""


def fb(num, b):  # length-delimited field
    if isinstance(b, str):
        b = b.encode()
    return varint((num << 3) | 2) + varint(len(b)) + b if b else b""


def decode(data):
    """{field number: [values]} of one message (varints as int, others bytes)."""
    fields, i = {}, 0
    while i < len(data):
        key, i = read_varint(data, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = read_varint(data, i)
        elif wt == 2:
            n, i = read_varint(data, i)
            v, i = data[i:i + n], i + n
        else:
            raise ValueError("unexpected wire type")
        fields.setdefault(num, []).append(v)
    return fields


def read_varint(data, i):
    v = shift = 0
    while True:
        b = data[i]
        i += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, i


RUNNING, EXITED, KILLED, LOST = 1, 2, 3, 4
STDOUT, STDERR, BOTH = 1, 2, 3


def job_status(job_id, state, exit_code=0, signal=0, owner="alice", command="cmd", stop_requested=False,
               start=1700000000000000, end=0, out=0, err=0, dropped=0):
    return (fb(1, job_id) + fv(2, state) + fv(3, exit_code) + fv(4, signal) + fv(5, int(stop_requested)) + fv(6, 4242)
            + fb(7, owner) + fb(8, command) + fv(9, start) + fv(10, end) + fv(11, out) + fv(12, err)
            + fv(14, dropped) + fv(13, int(dropped > 0)))


def chunk(stream, offset, data):
    return fb(1, fv(1, stream) + fv(2, offset) + fb(3, data))


def end(status):
    return fb(2, status)


# ---- the fake service ----------------------------------------------------------

ID_A = "abcdef01-0000-4000-8000-00000000000a"
ID_B = "abcdef01-0000-4000-8000-00000000000b"
ID_C = "12345678-0000-4000-8000-00000000000c"
BIG_JOBS = 20000     # ~7.5 MB in one List answer
MANY_CHUNKS = 3000   # 12 MB of Output


class Fake:
    def __init__(self):
        self.mode = None
        self.start_lost = False
        self.requests = []   # (method, decoded request)
        self.lock = threading.Lock()
        self.reset_input()

    def reset_input(self):
        self.input_data = bytearray()   # what Input calls delivered
        self.input_eof = False
        self.input_done = threading.Event()

    def record(self, method, req):
        with self.lock:
            self.requests.append((method, decode(req)))

    def last(self, method):
        with self.lock:
            return [r for m, r in self.requests if m == method][-1]

    def List(self, req, ctx):
        self.record("List", req)
        if self.mode == "slow":
            time.sleep(5)
            return b""
        if self.mode == "weird":
            return fb(1, job_status(ID_C, RUNNING, owner='bo"b\\', command="a\x1b[31mb\n\t\u00e9\u20ac|\x7f"))
        if self.mode == "big":  # one answer larger than gRPC's default 4 MiB cap and than jwctl's window
            return b"".join(fb(1, job_status("%08x-0000-4000-8000-%012x" % (i, i), EXITED, command="c" * 300))
                            for i in range(BIG_JOBS))
        return fb(1, job_status(ID_A, EXITED)) + fb(1, job_status(ID_B, RUNNING)) + fb(1, job_status(ID_C, EXITED))

    def Start(self, req, ctx):
        self.record("Start", req)
        if self.mode == "start-lost-once" and not self.start_lost:
            self.start_lost = True
            ctx.abort(grpc.StatusCode.UNAVAILABLE, "the server is shutting down")
        return fb(1, ID_C)

    def Stop(self, req, ctx):
        self.record("Stop", req)
        codes = {"stop-invalid": (grpc.StatusCode.INVALID_ARGUMENT, "grace period too long: at most 1 hour"),
                 "stop-denied": (grpc.StatusCode.PERMISSION_DENIED, "no"),
                 "stop-ended": (grpc.StatusCode.FAILED_PRECONDITION, "job has ended"),
                 "stop-busy": (grpc.StatusCode.RESOURCE_EXHAUSTED, "too many requests"),
                 "stop-internal": (grpc.StatusCode.INTERNAL, "disk on fire"),
                 "stop-percent": (grpc.StatusCode.INTERNAL, "100% on fire")}
        if self.mode in codes:
            ctx.abort(*codes[self.mode])
        return fb(1, job_status(ID_C, RUNNING, stop_requested=True))

    def Input(self, reqs, ctx):
        """input-cut: the call ends UNAVAILABLE after the first data, as when the
        server goes down; else it takes everything up to eof."""
        ctx.add_callback(self.input_done.set)   # the call is over, status sent
        for raw_req in reqs:
            m = decode(raw_req)
            self.input_data += b"".join(m.get(2, []))
            if m.get(3):
                self.input_eof = True
            if self.mode == "input-cut":
                ctx.abort(grpc.StatusCode.UNAVAILABLE, "the server is shutting down")
        return fv(1, len(self.input_data))

    def Output(self, req, ctx):
        self.record("Output", req)
        if self.mode in ("input-cut", "input-whole"):
            # The job's end only once its stdin call is over (both orders
            # of the end and the cut are not under test here).
            self.input_done.wait(30)
            yield chunk(STDOUT, 0, b"sorted\n")
            yield end(job_status(ID_C, EXITED))
            return
        if self.mode == "gaps":
            yield chunk(STDOUT, 0, b"abc")
            yield chunk(STDOUT, 2, b"cdef")          # overlaps one byte
            yield chunk(STDERR, 10, b"XY")           # 4 bytes dropped before it
            yield end(job_status(ID_C, EXITED, dropped=4))
        elif self.mode == "killed":
            yield chunk(STDOUT, 0, b"\x00\xffbinary\n")
            yield end(job_status(ID_C, KILLED, signal=9))
        elif self.mode == "lost":
            yield end(job_status(ID_C, LOST))
        elif self.mode == "no-end":
            yield chunk(STDOUT, 0, b"partial")
        elif self.mode == "garbage":
            yield b"\xff\xff\xff"
        elif self.mode == "exit":
            yield end(job_status(ID_C, EXITED, exit_code=200))
        elif self.mode == "many":  # more messages than fit in jwctl's flow-control window
            for i in range(MANY_CHUNKS):
                yield chunk(STDOUT, i * 4096, bytes([i % 251]) * 4096)
            yield end(job_status(ID_C, EXITED, exit_code=0))


fake = Fake()


def raw(fn, streaming=False):
    kind = grpc.unary_stream_rpc_method_handler if streaming else grpc.unary_unary_rpc_method_handler
    return kind(fn, request_deserializer=None, response_serializer=None)


def read(name):
    with open(os.path.join(certs, name), "rb") as f:
        return f.read()


server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("jobworker.v1.JobWorker", {
    "List": raw(fake.List), "Start": raw(fake.Start), "Stop": raw(fake.Stop),
    "Output": raw(fake.Output, streaming=True),
    "Input": grpc.stream_unary_rpc_method_handler(fake.Input, request_deserializer=None, response_serializer=None),
    # no Status: grpcio answers UNIMPLEMENTED
})])
creds = grpc.ssl_server_credentials([(read("server-key.pem"), read("server.pem"))],
                                    root_certificates=read("ca.pem"), require_client_auth=True)
port = server.add_secure_port("127.0.0.1:0", creds)
server.start()

env = dict(os.environ, JWCTL_SERVER=f"localhost:{port}", JWCTL_CA=os.path.join(certs, "ca.pem"),
           JWCTL_CERT=os.path.join(certs, "alice.pem"), JWCTL_KEY=os.path.join(certs, "alice-key.pem"),
           XDG_CONFIG_HOME=tempfile.mkdtemp(prefix="test-jwctl-fake."))

failures = 0
checks = 0


def jw(*args, mode=None, stdin=None):
    fake.mode = mode
    fake.reset_input()
    p = subprocess.run([jwctl, *args], env=env, input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    return p.returncode, p.stdout, p.stderr


def check(cond, what, detail=""):
    global failures, checks
    checks += 1
    if not cond:
        failures += 1
        print(f"FAIL: {what} {detail}")


def check_error(result, code, text, what):
    rc, out, err = result
    ok = rc == code and err.startswith(b"jwctl: ") and err.count(b"\n") == 1 and text.encode() in err
    check(ok, what, f"(exit {rc}, stderr {err!r}, expected {code} and {text!r})")


try:
    # Interop, and a late answer: --timeout bounds a unary call.
    t0 = time.monotonic()
    check_error(jw("--timeout", "1", "list", mode="slow"), 3, "did not answer within 1.000 s", "unary call timeout")
    check(time.monotonic() - t0 < 4, "timeout took too long")

    # A method the server lacks.
    check_error(jw("status", ID_A), 1, "does not support", "UNIMPLEMENTED")

    # Prefixes: ambiguous (exit 2, both candidates named), unique, unknown.
    r = jw("stop", "abcdef01")
    check_error(r, 2, "'abcdef01' is ambiguous: it matches 2 jobs: " + ID_A + ", " + ID_B, "ambiguous prefix")
    check(not any(m == "Stop" for m, _ in fake.requests), "a Stop was sent for an ambiguous prefix")
    rc, out, err = jw("stop", "--grace", "2.5", "abcdef01-0000-4000-8000-00000000000B")
    check(rc == 0 and err == b"", "stop by unique prefix", (rc, err))
    st = fake.last("Stop")
    check(st[1] == [ID_B.encode()] and st.get(2) == [1] and st.get(3) == [2500], "Stop request", st)
    rc, out, err = jw("stop", ID_C)
    st = fake.last("Stop")
    check(rc == 0 and st[1] == [ID_C.encode()] and 2 not in st and 3 not in st, "Stop without --grace", st)
    check_error(jw("stop", "99999999"), 1, "job 99999999 not found", "unknown prefix")

    # Server statuses in words.
    check_error(jw("stop", ID_C, mode="stop-invalid"), 1, "jwctl: grace period too long: at most 1 hour", "INVALID_ARGUMENT")
    check_error(jw("stop", ID_C, mode="stop-denied"), 1, f"permission denied for user alice to stop job {ID_C}",
                "PERMISSION_DENIED")
    check_error(jw("stop", ID_C, mode="stop-ended"), 1, f"job {ID_C} is not running", "FAILED_PRECONDITION")
    check_error(jw("stop", ID_C, mode="stop-busy"), 1, "out of resources", "RESOURCE_EXHAUSTED")
    check_error(jw("stop", ID_C, mode="stop-internal"), 1, "INTERNAL: disk on fire", "INTERNAL")

    # Output: overlapping chunks are written once, a gap is reported.
    rc, out, err = jw("logs", ID_C, mode="gaps")
    check(rc == 0 and out == b"abcdef", "logs with overlap", (rc, out))
    check(err.startswith(b"XYjwctl: warning: the server dropped 4 bytes") and err.count(b"\n") == 1,
          "logs with a gap", err)
    o = fake.last("Output")
    check(o[1] == [ID_C.encode()] and o.get(2) == [BOTH] and 3 not in o and 4 not in o, "Output request", o)
    jw("logs", "-f", "--stderr", "--offset", "7", ID_C, mode="exit")
    o = fake.last("Output")
    check(o.get(2) == [STDERR] and o.get(3) == [7] and o.get(4) == [1], "Output request -f --stderr --offset", o)
    jw("logs", "--stdout", ID_C, mode="exit")
    check(fake.last("Output").get(2) == [STDOUT], "Output request --stdout")

    # run: start, then the job's end decides the exit code.
    rc, out, err = jw("run", "--env", "A=1", "--cwd", "/w", "--", "prog", "-x", mode="killed")
    check(rc == 137 and out == b"\x00\xffbinary\n" and err == b"", "run killed by 9", (rc, out, err))
    s = fake.last("Start")
    check(s.get(1) == [b"prog", b"-x"] and s.get(2) == [b"A=1"] and s.get(3) == [b"/w"], "Start request", s)
    o = fake.last("Output")
    check(o[1] == [ID_C.encode()] and o.get(4) == [1] and 3 not in o, "run's Output request", o)
    rc, out, err = jw("run", "--", "prog", mode="exit")
    check(rc == 200, "run exit 200", rc)
    check_error(jw("run", "--", "prog", mode="lost"), 1, f"job {ID_C} was lost", "lost job")
    r = jw("run", "--", "prog", mode="no-end")
    check(r[1] == b"partial", "partial output before a missing end", r[1])
    check_error(r, 1, "without its status", "stream without end")
    check_error(jw("logs", ID_C, mode="garbage"), 1, "does not parse", "unparsable message")
    rc, out, err = jw("start", "--", "prog")
    check(rc == 0 and out == (ID_C + "\n").encode(), "start prints the id", (rc, out))

    # Every Start carries a new request id (a UUID); a Start whose connection
    # is lost is made again, with the same one, on a new connection.
    first = fake.last("Start").get(12, [b""])[0]
    jw("start", "--name", "web", "--label", "team=web", "--", "prog")
    s = fake.last("Start")
    check(len(first) == 36 and s.get(12) and s[12][0] != first and len(s[12][0]) == 36, "request ids", (first, s))
    check(s.get(10) == [b"web"] and s.get(11) and decode(s[11][0]).get(1) == [b"team"], "Start name and label", s)
    n = sum(1 for m, _ in fake.requests if m == "Start")
    rc, out, err = jw("start", "--", "prog", mode="start-lost-once")
    starts = [r for m, r in fake.requests if m == "Start"][n:]
    check(rc == 0 and out == (ID_C + "\n").encode(), "start after a lost Start", (rc, out, err))
    check(len(starts) == 2 and starts[0].get(12) == starts[1].get(12) and len(starts[0].get(12, [b""])[0]) == 36,
          "the repeated Start has the first one's request id", starts)

    # Untrusted text from the server: escaped in JSON, neutralized on the terminal.
    rc, out, err = jw("list", "--json", mode="weird")
    try:
        jobs = json.loads(out)
        check(jobs[0]["command"] == "a\x1b[31mb\n\t\u00e9\u20ac|\x7f" and jobs[0]["owner"] == 'bo"b\\',
              "JSON strings round-trip", jobs[0])
    except ValueError as e:
        check(False, "list --json is not JSON", f"{e}: {out!r}")
    rc, out, err = jw("list", mode="weird")
    check(rc == 0 and b"\x1b" not in out and b"\x7f" not in out and "a?[31mb??\u00e9\u20ac|?".encode() in out,
          "list text neutralizes control characters", out)

    # Large answers: no receive cap, and a message larger than the flow-control window completes.
    rc, out, err = jw("list", "--json", mode="big")
    try:
        jobs = json.loads(out) if rc == 0 else []
    except ValueError:
        jobs = []
    check(rc == 0 and len(jobs) == BIG_JOBS and jobs[-1]["job_id"] == "%08x-0000-4000-8000-%012x" % (BIG_JOBS - 1, BIG_JOBS - 1),
          "a List answer of %d jobs" % BIG_JOBS, (rc, len(jobs), err[:200]))
    rc, out, err = jw("logs", ID_C, mode="many")
    want = b"".join(bytes([i % 251]) * 4096 for i in range(MANY_CHUNKS))
    check(rc == 0 and out == want and err == b"", "an Output stream larger than the window, byte-exact",
          (rc, len(out), err[:200]))
    # Standard input cut short by the server going down: the job read EOF
    # early and its output may look whole, so jwctl says so; the exit code
    # stays the job's. Forwarded whole: not a word.
    data = bytes(range(256)) * 4096   # 1 MiB: more than one Input message
    rc, out, err = jw("run", "--", "sort", mode="input-whole", stdin=data)
    check(rc == 0 and out == b"sorted\n" and err == b"" and bytes(fake.input_data) == data and fake.input_eof,
          "stdin forwarded whole, no warning", (rc, out, err[:300], len(fake.input_data), fake.input_eof))
    rc, out, err = jw("run", "--", "sort", mode="input-cut", stdin=data)
    sent = len(fake.input_data)
    check(rc == 0 and out == b"sorted\n" and 0 < sent < len(data) and err.count(b"\n") == 1 and
          err.startswith(b"jwctl: warning: standard input to job " + ID_C.encode() + b" was cut after at most ") and
          b"(the server is shutting down); the job read end-of-file there\n" in err,
          "stdin cut short: said once, exit code the job's", (rc, out, err[:300], sent))
    m = re.search(rb"at most (\d+) bytes", err)
    # jwctl may have queued all of it before the cut reached it: the bound
    # is what it handed over, at most all of stdin.
    check(m is not None and sent <= int(m.group(1)) <= len(data), "the bytes said bound what the server got",
          (err[:300], sent))

    # grpc-message is percent-encoded on the wire
    check_error(jw("stop", ID_C, mode="stop-percent"), 1, "INTERNAL: 100% on fire", "percent-encoded message")
finally:
    server.stop(0)

print(f"{checks} checks, {failures} failed")
sys.exit(1 if failures else 0)
