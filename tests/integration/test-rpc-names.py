#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Names, labels, List filters and request ids (issue 14, item 3), against
the real daemon through grpcio and jwctl:
- a Start with a name and labels: Status and List show them, in order;
- the rules: a hex word ("deadbeef") or a character outside [A-Za-z0-9._-]
  is INVALID_ARGUMENT, so are a 17th label, a key given twice, a value or
  a request id over its bound (each message names the rule or bound);
- a name is unique per owner among running jobs: a second Start with it
  is ALREADY_EXISTS naming the running job; charlie may use alice's name;
  once the job ended the name is free, and jwctl resolves it to the newest;
- jwctl start --name/--label, status/stop/wait by name, list --name,
  --label (AND), --state, --owner;
- List filters on the server: states, owner, name, labels;
- a retried Start with the same request id returns the same job, also
  eight at once (one job), and also after a daemon restart; names and
  labels survive the restart; a named job that outlives a crash of the
  daemon (fd store, fakesystemd) still holds its name in the next one;
- charlie (sees all) naming a name that both alice and he use gets an
  error listing owner and id of each, never a guess."""

import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rpcharness as h  # noqa: E402
from survive_util import Client, fake_daemon, finish, jwctl, one_line  # noqa: E402

ENDED = None


def as_user(user):
    return dict(JWCTL_CERT=os.path.join(h.CERTS, user + ".pem"), JWCTL_KEY=os.path.join(h.CERTS, user + "-key.pem"))


def labels_of(st):
    return [(l.key, l.value) for l in st.labels]


def start(pb, stub, argv, **kw):
    labels = [pb.Label(key=k, value=v) for k, v in kw.pop("labels", [])]
    return stub.Start(pb.StartRequest(argv=argv, labels=labels, **kw), timeout=10).job_id


def test_status_shows_name_and_labels(d, pb, C):
    alice = d.stub("alice")
    jid = start(pb, alice, ["sleep", "60"], name="web-1", labels=[("team", "web"), ("tier", "1"), ("empty", "")])
    st = alice.Status(pb.StatusRequest(job_id=jid), timeout=10).status
    if st.name != "web-1" or labels_of(st) != [("team", "web"), ("tier", "1"), ("empty", "")]:
        h.fail("status of a named, labelled job: %s" % one_line(st))
    listed = [j for j in alice.List(pb.ListRequest(), timeout=10).jobs if j.job_id == jid]
    if len(listed) != 1 or listed[0].name != "web-1" or labels_of(listed[0])[0] != ("team", "web"):
        h.fail("list of a named job: %s" % listed)
    alice.Stop(pb.StopRequest(job_id=jid), timeout=10)
    h.wait_state(alice, jid, ENDED)


def test_rules_refused(d, pb, C):
    alice = d.stub("alice")
    cases = [
        (dict(name="deadbeef"), "could be read as a job id"),
        (dict(name="0123-abcd"), "could be read as a job id"),
        (dict(name="web:1"), "not allowed at position 4"),
        (dict(name="a b"), "not allowed"),
        (dict(name="a/b"), "not allowed"),
        (dict(name="-web"), "must begin with a letter or a digit"),
        (dict(name="x" * 65), "at most 64"),
        (dict(labels=[("k%d" % i, "v") for i in range(17)]), "too many labels: 17 (at most 16)"),
        (dict(labels=[("team", "a"), ("team", "b")]), "label key 'team' is given twice"),
        (dict(labels=[("team", "v" * 64)]), "at most 63"),
        (dict(labels=[("", "v")]), "label key is empty"),
        (dict(labels=[("te=am", "v")]), "not allowed"),
        (dict(request_id="r" * 65), "request id"),
    ]
    for kw, text in cases:
        h.expect_code(lambda: start(pb, alice, ["true"], **kw), C.INVALID_ARGUMENT, text)
    # names at the bounds are fine: 64 characters, one non-hex letter
    jid = start(pb, alice, ["true"], name="g" + "0" * 63)
    h.wait_state(alice, jid, ENDED)


def test_running_name_unique_per_owner(d, pb, C):
    alice, charlie = d.stub("alice"), d.stub("charlie")
    first = start(pb, alice, ["sleep", "60"], name="dup")
    details = h.expect_code(lambda: start(pb, alice, ["true"], name="dup"), C.ALREADY_EXISTS, first)
    if "dup" not in details:
        h.fail("ALREADY_EXISTS does not name the name: %r" % details)
    # charlie's jobs are his own namespace
    theirs = start(pb, charlie, ["sleep", "60"], name="dup")
    # once alice's job ended, the name is free again
    alice.Stop(pb.StopRequest(job_id=first), timeout=10)
    h.wait_state(alice, first, ENDED)
    second = start(pb, alice, ["sleep", "60"], name="dup")
    if second == first:
        h.fail("a new job got the old id")
    for s, j in ((alice, second), (charlie, theirs)):
        s.Stop(pb.StopRequest(job_id=j), timeout=10)
        h.wait_state(s, j, ENDED)


def test_list_filters(d, pb, C):
    alice, charlie = d.stub("alice"), d.stub("charlie")
    a1 = start(pb, alice, ["sleep", "60"], name="flt-a", labels=[("team", "web"), ("env", "prod")])
    a2 = start(pb, alice, ["true"], name="flt-b", labels=[("team", "web"), ("env", "dev")])
    c1 = start(pb, charlie, ["sleep", "60"], name="flt-a", labels=[("team", "db")])
    h.wait_state(alice, a2, ENDED)

    def ids(stub, **kw):
        labels = [pb.Label(key=k, value=v) for k, v in kw.pop("labels", [])]
        return [j.job_id for j in stub.List(pb.ListRequest(labels=labels, **kw), timeout=10).jobs]

    mine = {a1, a2, c1}
    checks = [
        (charlie, dict(name="flt-a"), [a1, c1]),
        (alice, dict(name="flt-a"), [a1]),                  # alice sees only hers
        (charlie, dict(name="flt-a", owner="alice"), [a1]),
        (charlie, dict(labels=[("team", "web")]), [a1, a2]),
        (charlie, dict(labels=[("team", "web"), ("env", "dev")]), [a2]),   # AND
        (charlie, dict(labels=[("team", "web")], states=[pb.JOB_STATE_RUNNING]), [a1]),
        (charlie, dict(labels=[("team", "web")], running_only=True), [a1]),
        (charlie, dict(labels=[("team", "web")], states=[pb.JOB_STATE_EXITED]), [a2]),
        (charlie, dict(labels=[("team", "nope")]), []),
        (charlie, dict(owner="charlie", states=[pb.JOB_STATE_RUNNING]), [c1]),
    ]
    for stub, kw, want in checks:
        got = [i for i in ids(stub, **kw) if i in mine]
        if got != want:
            h.fail("List(%s): got %s, expected %s" % (kw, got, want))
    h.expect_code(lambda: alice.List(pb.ListRequest(name="deadbeef"), timeout=10), C.INVALID_ARGUMENT, "job id")
    for s, j in ((alice, a1), (charlie, c1)):
        s.Stop(pb.StopRequest(job_id=j), timeout=10)
        h.wait_state(s, j, ENDED)


def test_request_id_retry(d, pb, C):
    alice = d.stub("alice")
    first = start(pb, alice, ["sleep", "60"], request_id="retry-1")
    again = start(pb, alice, ["sleep", "60"], request_id="retry-1")
    if again != first:
        h.fail("a retried Start got %s, expected %s" % (again, first))
    # another owner with the same request id is another request
    theirs = start(pb, d.stub("charlie"), ["true"], request_id="retry-1")
    if theirs == first:
        h.fail("charlie's request id matched alice's job")
    # eight at once, one request id: one job
    results, errors = [], []

    def one():
        try:
            results.append(start(pb, d.stub("alice"), ["sleep", "60", "0"], request_id="conc-1"))
        except Exception as e:  # noqa: BLE001
            errors.append(e)
    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    if errors or len(results) != 8 or len(set(results)) != 1:
        h.fail("eight Starts with one request id: %s %s" % (results, errors))
    conc = [j for j in alice.List(pb.ListRequest(), timeout=10).jobs if j.command == "sleep 60 0"]
    if len(conc) != 1:
        h.fail("eight Starts with one request id made %d jobs" % len(conc))
    for j in (first, results[0]):
        alice.Stop(pb.StopRequest(job_id=j), timeout=10)
        h.wait_state(alice, j, ENDED)
    return first


def test_jwctl(d, pb, C):
    env = as_user("alice")
    code, out, err = finish(jwctl(d.target, "start", "--name", "svc", "--label", "team=web", "--label", "tier=2",
                                  "--", "sleep", "60", **env))
    first = out.decode().strip()
    if code != 0 or not first:
        h.fail("jwctl start --name svc: exit %d, stderr %r" % (code, err))
    code, out, err = finish(jwctl(d.target, "status", "svc", **env))
    if code != 0 or ("Job:      %s\nName:     svc\nLabels:   team=web, tier=2\n" % first).encode() not in out:
        h.fail("jwctl status svc: exit %d, out %r, err %r" % (code, out, err))
    code, out, err = finish(jwctl(d.target, "start", "--name", "svc", "--", "true", **env))
    if code == 0 or b"named 'svc' is running: " + first.encode() not in err:
        h.fail("a second running svc: exit %d, stderr %r" % (code, err))
    code, out, err = finish(jwctl(d.target, "list", "--name", "svc", "--label", "team=web", "--state", "running",
                                  **env))
    lines = out.decode().splitlines()
    if code != 0 or len(lines) != 2 or not lines[0].startswith("JOB ID  ") or "NAME" not in lines[0] \
            or "LABELS" not in lines[0] or first not in lines[1] or "team=web,tier=2" not in lines[1]:
        h.fail("jwctl list --name svc --label team=web --state running: %r" % out)
    code, out, err = finish(jwctl(d.target, "stop", "svc", **env))
    if code != 0:
        h.fail("jwctl stop svc: exit %d, stderr %r" % (code, err))
    code, out, err = finish(jwctl(d.target, "wait", "svc", **env))
    if code != 128 + 15:
        h.fail("jwctl wait svc after a stop: exit %d, stderr %r" % (code, err))
    code, out, err = finish(jwctl(d.target, "start", "--name", "svc", "--", "sleep", "60", **env))
    second = out.decode().strip()
    if code != 0 or not second or second == first:
        h.fail("jwctl start --name svc after the first ended: exit %d, %r, stderr %r" % (code, out, err))
    code, out, err = finish(jwctl(d.target, "status", "--json", "svc", **env))
    if code != 0 or ('"job_id":"%s"' % second).encode() not in out or b'"name":"svc"' not in out:
        h.fail("jwctl status svc resolves to the newest: %r, stderr %r" % (out, err))
    code, out, err = finish(jwctl(d.target, "list", "--name", "svc", "--state", "finished", **env))
    if code != 0 or first.encode() not in out or second.encode() in out:
        h.fail("jwctl list --state finished: %r" % out)
    code, out, err = finish(jwctl(d.target, "status", "nosuchjob", **env))
    if code != 1 or b"job nosuchjob not found" not in err:
        h.fail("jwctl status of an unknown name: exit %d, stderr %r" % (code, err))
    code, out, err = finish(jwctl(d.target, "start", "--name", "deadbeef", "--", "true", **env))
    if code != 2 or b"could be read as a job id" not in err:
        h.fail("jwctl start --name deadbeef: exit %d, stderr %r" % (code, err))
    code, out, err = finish(jwctl(d.target, "stop", "svc", **env))
    if code != 0:
        h.fail("jwctl stop svc (the second): exit %d, stderr %r" % (code, err))


def test_admin_ambiguous(d, pb, C):
    alice, charlie = d.stub("alice"), d.stub("charlie")
    a = start(pb, alice, ["sleep", "60"], name="shared")
    c = start(pb, charlie, ["sleep", "60"], name="shared")
    code, out, err = finish(jwctl(d.target, "status", "shared", **as_user("charlie")))
    if code != 2 or b"ambiguous" not in err or ("alice %s" % a).encode() not in err \
            or ("charlie %s" % c).encode() not in err:
        h.fail("charlie naming a name of alice's and his: exit %d, stderr %r" % (code, err))
    code, out, err = finish(jwctl(d.target, "status", "--json", "shared", **as_user("alice")))
    if code != 0 or ('"job_id":"%s"' % a).encode() not in out:
        h.fail("alice naming her own 'shared': exit %d, %r, stderr %r" % (code, out, err))
    for s, j in ((alice, a), (charlie, c)):
        s.Stop(pb.StopRequest(job_id=j), timeout=10)
        h.wait_state(s, j, ENDED)


def test_restart(pb, C):
    d = h.Daemon(args=["--stop-grace", "0.5s"])
    alice = d.stub("alice")
    jid = start(pb, alice, ["true"], name="kept", labels=[("a", "1")], request_id="across-restart")
    h.wait_state(alice, jid, ENDED)
    d.stop()
    d2 = h.Daemon(args=["--stop-grace", "0.5s"], state_dir=d.state_dir)
    alice = d2.stub("alice")
    st = alice.Status(pb.StatusRequest(job_id=jid), timeout=10).status
    if st.name != "kept" or labels_of(st) != [("a", "1")]:
        h.fail("name and labels after a restart: %s" % one_line(st))
    again = start(pb, alice, ["true"], request_id="across-restart")
    if again != jid:
        h.fail("a retried Start after a restart got %s, expected %s" % (again, jid))
    d2.stop()


def test_adopted_keeps_name(pb, C):
    """A running named job adopted by the next daemon after a SIGKILL keeps
    its name: a Start with it is still refused, a retry of its request id
    still answers with it."""
    fake = fake_daemon(h.JOBWORKERD, h.tmpdir())
    fake.start()
    fake.wait_ready(30)
    try:
        s = Client(fake.port()).stub("alice")
        jid = start(pb, s, ["sleep", "60"], name="survivor", request_id="adopt-1")
        fake.kill9()
        fake.start()
        fake.wait_ready(30)
        s = Client(fake.port()).stub("alice")
        st = s.Status(pb.StatusRequest(job_id=jid), timeout=10).status
        if st.state != pb.JOB_STATE_RUNNING or st.name != "survivor":
            h.fail("the adopted job: %s" % one_line(st))
        h.expect_code(lambda: start(pb, s, ["true"], name="survivor"), C.ALREADY_EXISTS, jid)
        again = start(pb, s, ["true"], request_id="adopt-1")
        if again != jid:
            h.fail("a retry after the crash got %s, expected %s" % (again, jid))
        s.Stop(pb.StopRequest(job_id=jid), timeout=10)
        h.wait_state(s, jid, ENDED)
        rc = fake.stop(20)
        if rc != 0:
            h.fail("daemon exit %r after SIGTERM" % rc)
    finally:
        fake.close()


def main():
    global ENDED
    import grpc
    pb, _ = h.stubs()
    C = grpc.StatusCode
    ENDED = [pb.JOB_STATE_EXITED, pb.JOB_STATE_KILLED, pb.JOB_STATE_ENDED, pb.JOB_STATE_LOST]
    d = h.Daemon(args=["--stop-grace", "0.5s"])
    failures = []
    for t in (test_status_shows_name_and_labels, test_rules_refused, test_running_name_unique_per_owner,
              test_list_filters, test_request_id_retry, test_jwctl, test_admin_ambiguous):
        try:
            t(d, pb, C)
            print("ok   %s" % t.__name__)
        except Exception as e:  # noqa: BLE001 - one failure does not hide the others
            why = e.details() if hasattr(e, "details") else str(e).splitlines()[0] if str(e) else repr(e)
            print("FAIL %s: %s" % (t.__name__, why))
            failures.append(t.__name__)
    d.stop()
    for t in (test_restart, test_adopted_keeps_name):
        try:
            t(pb, C)
            print("ok   %s" % t.__name__)
        except Exception as e:  # noqa: BLE001
            why = e.details() if hasattr(e, "details") else str(e).splitlines()[0] if str(e) else repr(e)
            print("FAIL %s: %s" % (t.__name__, why))
            failures.append(t.__name__)
    if failures:
        h.fail("; ".join(failures))


if __name__ == "__main__":
    h.run_main(main)
