#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The gRPC client of bench/scale-vm: starts, stops and counts many jobs of a
jobworkerd over a few long-lived mTLS connections (grpcio; stubs generated
from proto/ at run time, as the integration tests do), so that the daemon, not
a client process per call, is what is measured. One idea: C connections, one
thread each, every call blocking, like bench-rpc's start mode; every wait is
bounded (a deadline for the whole run, a timeout per call).

usage: scale-vm-client.py --server H:P --cert F --key F --ca F MODE ARGS...
  start N C SECONDS CMD...  start N jobs on C connections; stop issuing new ones
                            after SECONDS; job ids to stdout, one a line; on
                            stderr a progress line per 1,000 and then
                            "started=.. errors=.. seconds=.. first1000=.." and
                            one "error=COUNT x CODE: DETAILS" line per kind
  stop IDFILE C SECONDS     Stop every job in IDFILE (grace: the server's
                            default) on C connections; "stopped=.. errors=.."
  list [--running]          List: "total=.. running=.. exited=.. killed=.. lost=..
                            killed_sigterm=.. with_cgroup=.. seconds=.."
Exit status 0, 1 when a call failed, 2 on usage errors.
"""

import collections
import os
import sys
import tempfile
import threading
import time

SRC = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def usage():
    sys.stderr.write(__doc__)
    sys.exit(2)


def stubs(tmp):
    from grpc_tools import protoc
    rc = protoc.main(["protoc", "-I" + os.path.join(SRC, "proto"), "--python_out=" + tmp,
                      "--grpc_python_out=" + tmp, os.path.join(SRC, "proto/jobworker/v1/jobworker.proto")])
    if rc != 0:
        sys.exit("scale-vm-client: protoc failed: %d" % rc)
    sys.path.insert(0, tmp)
    from jobworker.v1 import jobworker_pb2, jobworker_pb2_grpc
    return jobworker_pb2, jobworker_pb2_grpc


class Client:
    def __init__(self, args):
        import grpc
        self.grpc = grpc
        self.target = args["server"]
        with open(args["ca"], "rb") as f:
            ca = f.read()
        with open(args["key"], "rb") as f:
            key = f.read()
        with open(args["cert"], "rb") as f:
            cert = f.read()
        self.creds = grpc.ssl_channel_credentials(ca, key, cert)
        self.tmp = tempfile.TemporaryDirectory(prefix="jw-scale-vm-")
        self.pb, self.pbg = stubs(self.tmp.name)

    def stub(self):
        """A stub on a connection of its own."""
        opts = [("grpc.use_local_subchannel_pool", 1),
                ("grpc.max_receive_message_length", 64 * 1024 * 1024)]
        ch = self.grpc.secure_channel(self.target, self.creds, options=opts)
        return ch, self.pbg.JobWorkerStub(ch)


def error_text(e):
    try:
        return "%s: %s" % (e.code().name, e.details())
    except Exception:  # not an RpcError
        return repr(e)


def run_parallel(client, nconn, items, call, deadline, progress=None):
    """call(stub, item) for each item, nconn threads with a connection each,
    until the items or the time run out. Returns (results, errors Counter)."""
    lock = threading.Lock()
    nxt = [0]
    results = []
    errors = collections.Counter()
    done = [0]

    def worker():
        ch, stub = client.stub()
        try:
            while True:
                with lock:
                    i = nxt[0]
                    if i >= len(items) or time.monotonic() > deadline:
                        return
                    nxt[0] += 1
                try:
                    r = call(stub, items[i])
                    with lock:
                        results.append(r)
                except Exception as e:  # grpc.RpcError and friends: counted, reported
                    with lock:
                        errors[error_text(e)] += 1
                with lock:
                    done[0] += 1
                    if progress:
                        progress(done[0])
        finally:
            ch.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(nconn)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()) + 120)
    return results, errors


def print_errors(errors):
    for text, n in errors.most_common(5):
        sys.stderr.write("error=%d x %s\n" % (n, text.replace("\n", " ")))


def mode_start(client, n, nconn, seconds, argv):
    pb = client.pb
    t0 = time.monotonic()
    marks = {}

    def call(stub, _):
        return stub.Start(pb.StartRequest(argv=argv), timeout=60).job_id

    def progress(done):
        if done % 1000 == 0:
            marks[done] = time.monotonic() - t0
            sys.stderr.write("progress: %d calls in %.1f s\n" % (done, marks[done]))
            sys.stderr.flush()

    ids, errors = run_parallel(client, nconn, list(range(n)), call, t0 + seconds, progress)
    t1 = time.monotonic()
    for i in ids:
        print(i)
    sys.stdout.flush()
    print_errors(errors)
    sys.stderr.write("started=%d errors=%d seconds=%.3f first1000=%s rate=%.1f\n"
                     % (len(ids), sum(errors.values()), t1 - t0,
                        "%.3f" % marks[1000] if 1000 in marks else "-", len(ids) / (t1 - t0)))
    return 0 if not errors and len(ids) == n else 1


def mode_stop(client, idfile, nconn, seconds):
    pb = client.pb
    with open(idfile) as f:
        ids = [line.strip() for line in f if line.strip()]
    t0 = time.monotonic()

    def call(stub, job):
        return stub.Stop(pb.StopRequest(job_id=job), timeout=60)

    res, errors = run_parallel(client, nconn, ids, call, t0 + seconds)
    t1 = time.monotonic()
    print_errors(errors)
    print("stopped=%d errors=%d seconds=%.3f" % (len(res), sum(errors.values()), t1 - t0))
    return 0 if not errors and len(res) == len(ids) else 1


def mode_list(client, running):
    pb = client.pb
    ch, stub = client.stub()
    t0 = time.monotonic()
    try:
        resp = stub.List(pb.ListRequest(running_only=running), timeout=120)
    except Exception as e:
        print("total=- error=%s" % error_text(e).replace(" ", "_"))
        return 1
    t1 = time.monotonic()
    ch.close()
    c = collections.Counter()
    sigterm = cgroups = 0
    for j in resp.jobs:
        cgroups += 1 if j.has_cgroup else 0
        c[pb.JobState.Name(j.state)] += 1
        if j.state == pb.JOB_STATE_KILLED and getattr(j, "signal", 0) == 15:
            sigterm += 1
    print("total=%d running=%d exited=%d killed=%d lost=%d killed_sigterm=%d with_cgroup=%d seconds=%.3f"
          % (len(resp.jobs), c["JOB_STATE_RUNNING"], c["JOB_STATE_EXITED"], c["JOB_STATE_KILLED"],
             c["JOB_STATE_LOST"], sigterm, cgroups, t1 - t0))
    return 0


def main(argv):
    opts = {}
    i = 0
    while i < len(argv) and argv[i].startswith("--") and argv[i] in ("--server", "--cert", "--key", "--ca"):
        if i + 1 >= len(argv):
            usage()
        opts[argv[i][2:]] = argv[i + 1]
        i += 2
    rest = argv[i:]
    if set(opts) != {"server", "cert", "key", "ca"} or not rest:
        usage()
    try:
        import grpc  # noqa: F401
        import grpc_tools  # noqa: F401
    except ImportError as e:
        sys.stderr.write("scale-vm-client: python3-grpcio / python3-grpc-tools missing: %s\n" % e)
        return 77
    client = Client(opts)
    mode = rest[0]
    if mode == "start" and len(rest) >= 5:
        return mode_start(client, int(rest[1]), int(rest[2]), float(rest[3]), rest[4:])
    if mode == "stop" and len(rest) == 4:
        return mode_stop(client, rest[1], int(rest[2]), float(rest[3]))
    if mode == "list" and len(rest) <= 2:
        return mode_list(client, rest[1:] == ["--running"])
    usage()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
