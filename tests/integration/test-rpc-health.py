#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""grpc.health.v1.Health and server reflection (v1, v1alpha) of jobworkerd,
driven by Python grpcio with stubs compiled at test time from Debian's
grpc-proto: Check and Watch answers, NOT_SERVING while the daemon drains
and the end of Watch streams at shutdown; reflection's list, file and symbol
answers, and a JobWorker call made from reflected descriptors alone; who may
call what; no client certificate, no call."""

import os
import signal
import threading
import time

import rpcharness as h

GRPC_PROTO = os.environ.get("JW_GRPC_PROTO_DIR", "/usr/share/grpc-proto")
SERVICES = {"jobworker.v1.JobWorker", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection"}
# the policy without charlie: an authenticated identity the policy does not know
POLICY_NO_CHARLIE = "alice self task-manager\nbob all analyst\n"

_std = None


def std_stubs():
    """The health and reflection modules, compiled from grpc-proto."""
    global _std
    if _std:
        return _std
    from grpc_tools import protoc
    if not os.path.exists(os.path.join(GRPC_PROTO, "grpc/health/v1/health.proto")):
        h.skip("grpc-proto is not installed (%s)" % GRPC_PROTO)
    out = h.tmpdir()
    for f in ("grpc/health/v1/health.proto", "grpc/reflection/v1/reflection.proto",
              "grpc/reflection/v1alpha/reflection.proto"):
        rc = protoc.main(["protoc", "-I" + GRPC_PROTO, "--python_out=" + out, "--grpc_python_out=" + out,
                          os.path.join(GRPC_PROTO, f)])
        if rc != 0:
            h.fail("protoc failed on %s: %d" % (f, rc))
    # the generated modules live in package grpc, which is grpcio's: extend it
    import grpc
    grpc.__path__.append(os.path.join(out, "grpc"))
    from grpc.health.v1 import health_pb2, health_pb2_grpc
    from grpc.reflection.v1 import reflection_pb2 as r1, reflection_pb2_grpc as r1g
    from grpc.reflection.v1alpha import reflection_pb2 as ra, reflection_pb2_grpc as rag
    _std = (health_pb2, health_pb2_grpc, {"v1": (r1, r1g), "v1alpha": (ra, rag)})
    return _std


def health(d, user):
    hp, hg, _ = std_stubs()
    return hp, hg.HealthStub(d.channel(user))


def reflect(d, user, requests, version="v1", timeout=10):
    """Sends requests (ServerReflectionRequest field dicts) on one stream;
    returns the responses, one per request."""
    _, _, refl = std_stubs()
    rp, rg = refl[version]
    stub = rg.ServerReflectionStub(d.channel(user))
    reqs = [rp.ServerReflectionRequest(**r) for r in requests]
    out = list(stub.ServerReflectionInfo(iter(reqs), timeout=timeout))
    assert len(out) == len(reqs), "%d answers to %d requests" % (len(out), len(reqs))
    return out


def file_protos(resp):
    from google.protobuf import descriptor_pb2
    files = []
    for b in resp.file_descriptor_response.file_descriptor_proto:
        fd = descriptor_pb2.FileDescriptorProto()
        fd.ParseFromString(b)
        files.append(fd)
    return files


def test_check(d):
    import grpc
    hp, stub = health(d, "alice")
    for name in ("", "jobworker.v1.JobWorker"):
        r = stub.Check(hp.HealthCheckRequest(service=name), timeout=5)
        assert r.status == hp.HealthCheckResponse.SERVING, (name, r)
    h.expect_code(lambda: stub.Check(hp.HealthCheckRequest(service="no.such.Service"), timeout=5),
                  grpc.StatusCode.NOT_FOUND, "unknown service 'no.such.Service'")


def test_watch_unknown_stays_open(d):
    import grpc
    hp, stub = health(d, "bob")
    call = stub.Watch(hp.HealthCheckRequest(service="no.such.Service"), timeout=30)
    first = next(call)
    assert first.status == hp.HealthCheckResponse.SERVICE_UNKNOWN, first
    # still open: nothing more within a second, no end
    got = []

    def read_next():
        try:
            got.append(next(call, "END"))
        except grpc.RpcError as e:
            got.append(e.code())

    t = threading.Thread(target=read_next, daemon=True)
    t.start()
    t.join(1.0)
    assert t.is_alive() and not got, "the SERVICE_UNKNOWN watch ended: %r" % got
    call.cancel()
    t.join(5)
    assert not t.is_alive(), "a cancelled watch did not end"
    assert got == [grpc.StatusCode.CANCELLED], got


def test_reflection_lists_services(d):
    for version in ("v1", "v1alpha"):
        r = reflect(d, "alice", [{"list_services": "*"}], version)[0]
        names = {s.name for s in r.list_services_response.service}
        assert names == SERVICES, (version, names)
        assert r.original_request.list_services == "*", r


def test_reflection_symbol_and_generic_call(d):
    """The JobWorker descriptor from reflection alone is enough to call List."""
    from google.protobuf import descriptor_pool
    from google.protobuf import message_factory
    pb, _ = h.stubs()
    for version in ("v1", "v1alpha"):
        r = reflect(d, "alice", [{"file_containing_symbol": "jobworker.v1.JobWorker"}], version)[0]
        assert r.WhichOneof("message_response") == "file_descriptor_response", r
        files = file_protos(r)
        assert files[0].name == "jobworker/v1/jobworker.proto", [f.name for f in files]
        svc = [s for s in files[0].service if s.name == "JobWorker"]
        assert svc, files[0].service
        methods = {m.name for m in svc[0].method}
        assert {"Start", "Stop", "Status", "List", "Output"} <= methods, methods

        pool = descriptor_pool.DescriptorPool()
        for f in reversed(files):
            pool.Add(f)
        mdesc = pool.FindServiceByName("jobworker.v1.JobWorker").FindMethodByName("List")
        factory = message_factory.MessageFactory(pool)
        req_cls = factory.GetPrototype(mdesc.input_type)
        resp_cls = factory.GetPrototype(mdesc.output_type)
        # a job to see, started with the compiled stubs
        s = d.stub("alice")
        job = s.Start(pb.StartRequest(argv=["/bin/true"]), timeout=5).job_id
        call = d.channel("alice").unary_unary("/jobworker.v1.JobWorker/List",
                                              request_serializer=req_cls.SerializeToString,
                                              response_deserializer=resp_cls.FromString)
        resp = call(req_cls(), timeout=5)
        ids = [j.job_id for j in resp.jobs]
        assert job in ids, (job, ids)


def test_reflection_lookups(d):
    reqs = [{"file_by_filename": "grpc/health/v1/health.proto"},
            {"file_containing_symbol": "jobworker.v1.JobWorker.Output"},
            {"file_containing_symbol": "jobworker.v1.StartRequest"},
            {"file_containing_symbol": "grpc.health.v1.HealthCheckResponse.ServingStatus"},
            {"file_containing_symbol": "grpc.reflection.v1alpha.ServerReflection"},
            {"file_containing_symbol": "no.such.Symbol"},
            {"file_by_filename": "no/such.proto"},
            {"file_containing_extension": {"containing_type": "jobworker.v1.StartRequest", "extension_number": 100}},
            {"all_extension_numbers_of_type": "jobworker.v1.StartRequest"}]
    out = reflect(d, "bob", reqs)
    want_files = ["grpc/health/v1/health.proto", "jobworker/v1/jobworker.proto", "jobworker/v1/jobworker.proto",
                  "grpc/health/v1/health.proto", "grpc/reflection/v1alpha/reflection.proto"]
    for i, name in enumerate(want_files):
        files = file_protos(out[i])
        assert files and files[0].name == name, (reqs[i], [f.name for f in files], out[i])
    for r in out[len(want_files):]:
        assert r.WhichOneof("message_response") == "error_response", r
        assert r.error_response.error_code == 5, r  # NOT_FOUND
    assert "no.such.Symbol" in out[5].error_response.error_message, out[5]


def test_roles(d):
    """Health for any verified client, reflection for identities the policy
    knows: charlie is missing from this daemon's policy."""
    import grpc
    hp, stub = health(d, "charlie")
    assert stub.Check(hp.HealthCheckRequest(), timeout=5).status == hp.HealthCheckResponse.SERVING
    for version in ("v1", "v1alpha"):
        h.expect_code(lambda: reflect(d, "charlie", [{"list_services": ""}], version),
                      grpc.StatusCode.PERMISSION_DENIED, "client 'charlie' is not in the policy")
    # bob, an analyst, may reflect (test_reflection_lookups), as may alice


def test_no_client_certificate(d):
    import grpc
    hp, hg, refl = std_stubs()
    creds = grpc.ssl_channel_credentials(h.read(os.path.join(h.CERTS, "ca.pem")))
    ch = grpc.secure_channel(d.target, creds)
    h.expect_code(lambda: hg.HealthStub(ch).Check(hp.HealthCheckRequest(), timeout=5), grpc.StatusCode.UNAVAILABLE)
    rp, rg = refl["v1"]
    h.expect_code(lambda: list(rg.ServerReflectionStub(ch).ServerReflectionInfo(
        iter([rp.ServerReflectionRequest(list_services="")]), timeout=5)), grpc.StatusCode.UNAVAILABLE)


def test_watch_through_shutdown():
    """Watch: SERVING, then NOT_SERVING as soon as SIGTERM starts the drain
    (a job still stopping: Check says NOT_SERVING too), then the stream ends
    with OK and the daemon exits in bounded time."""
    import grpc
    pb, _ = h.stubs()
    d = h.Daemon(args=["--shutdown-grace", "5s"])
    s = d.stub("alice")
    # ignores SIGTERM: the drain lasts the grace period
    job = s.Start(pb.StartRequest(argv=["/bin/sh", "-c", "trap '' TERM; sleep 60"]), timeout=5).job_id
    hp, stub = health(d, "alice")
    watch = stub.Watch(hp.HealthCheckRequest(service=""), timeout=60)
    other = stub.Watch(hp.HealthCheckRequest(service="jobworker.v1.JobWorker"), timeout=60)
    unknown = stub.Watch(hp.HealthCheckRequest(service="x"), timeout=60)
    assert next(watch).status == hp.HealthCheckResponse.SERVING
    assert next(other).status == hp.HealthCheckResponse.SERVING
    assert next(unknown).status == hp.HealthCheckResponse.SERVICE_UNKNOWN

    d.signal(signal.SIGTERM)
    assert next(watch).status == hp.HealthCheckResponse.NOT_SERVING
    assert next(other).status == hp.HealthCheckResponse.NOT_SERVING
    # still draining (the job has not been killed yet): Check agrees
    r = stub.Check(hp.HealthCheckRequest(), timeout=5)
    assert r.status == hp.HealthCheckResponse.NOT_SERVING, r
    st = s.Status(pb.StatusRequest(job_id=job), timeout=5).status
    assert st.state == pb.JOB_STATE_RUNNING, "the drain ended before Check was answered: %s" % st
    for w in (watch, other, unknown):
        assert next(w, "END") == "END", "a watch got more than its last update"
        assert w.code() == grpc.StatusCode.OK, (w.code(), w.details())
    # the one SIGTERM is enough: it exits by itself (grace 5 s, then the kill)
    try:
        rc = d.proc.wait(15)
    except Exception:
        h.fail("jobworkerd did not exit within 15 s of SIGTERM; log:\n%s" % d.logtext())
    assert rc == 0, (rc, d.logtext())
    assert d.stop() == 0


def test_watch_does_not_hold_shutdown():
    """An idle watcher that no longer reads does not keep the daemon up."""
    d = h.Daemon()
    hp, stub = health(d, "bob")
    watch = stub.Watch(hp.HealthCheckRequest(), timeout=60)
    assert next(watch).status == hp.HealthCheckResponse.SERVING
    t0 = time.monotonic()
    assert d.stop(timeout=10) == 0
    assert time.monotonic() - t0 < 10
    assert "shutdown complete" in d.logtext()


def test_watch_through_upgrade():
    """An upgrade in place (fakesystemd, binary replaced, SIGHUP): an open
    Watch ends by the exec (NOT_SERVING first if anything), never holds it
    up, and the new image answers SERVING."""
    import shutil
    import grpc
    from survive_util import Client, check_daemon_stops_clean, fake_daemon, kill_all
    pb, _ = h.stubs()
    d = h.tmpdir()
    os.mkdir(os.path.join(d, "bin"))
    binary = os.path.join(d, "bin", "jobworkerd")
    shutil.copy2(h.JOBWORKERD, binary)
    fake = fake_daemon(binary, d)
    fake.start()
    fake.wait_ready(30)
    client = Client(fake.port())
    pidfds = []
    try:
        s = client.stub("alice")
        job = s.Start(pb.StartRequest(argv=["sleep", "600"]), timeout=10).job_id
        pidfds.append(os.pidfd_open(h.wait_state(s, job, [pb.JOB_STATE_RUNNING]).pid))
        hp, stub = health(client, "bob")
        watch = stub.Watch(hp.HealthCheckRequest(), timeout=60)
        assert next(watch).status == hp.HealthCheckResponse.SERVING
        main_pid = fake.main_pid
        shutil.copy2(h.JOBWORKERD, binary + ".new")
        os.rename(binary + ".new", binary)
        os.kill(main_pid, signal.SIGHUP)
        rest = []
        try:
            rest = [m.status for m in watch]
        except grpc.RpcError as e:
            assert e.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE), e
        assert rest in ([], [hp.HealthCheckResponse.NOT_SERVING]), rest
        print("   the watch saw %r, then its end" % rest, flush=True)
        h.wait_until(lambda: "took over" in fake.logtext(), "the new image to take the jobs over", timeout=30)
        hp, stub = health(client, "bob")
        h.wait_until(lambda: _serving(stub, hp), "the new image to answer SERVING", timeout=30)
        st = s.Status(pb.StatusRequest(job_id=job), timeout=10).status
        assert st.state == pb.JOB_STATE_RUNNING, st
        check_daemon_stops_clean(fake)
    finally:
        kill_all(pidfds)
        fake.close()


def _serving(stub, hp):
    try:
        return stub.Check(hp.HealthCheckRequest(), timeout=2).status == hp.HealthCheckResponse.SERVING
    except Exception:  # noqa: BLE001 - not answering yet
        return False


def main():
    std_stubs()
    d = h.Daemon(policy=POLICY_NO_CHARLIE)
    for t in (test_check, test_watch_unknown_stays_open, test_reflection_lists_services,
              test_reflection_symbol_and_generic_call, test_reflection_lookups, test_roles,
              test_no_client_certificate):
        print("--", t.__name__, flush=True)
        t(d)
    assert d.stop() == 0
    for t in (test_watch_through_shutdown, test_watch_does_not_hold_shutdown, test_watch_through_upgrade):
        print("--", t.__name__, flush=True)
        t()


if __name__ == "__main__":
    h.run_main(main)
