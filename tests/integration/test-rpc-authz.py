#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The authorization matrix over the real daemon with the example policy:
alice (self task-manager), bob (all analyst), charlie (all task-manager) x
start, stop, status, output, list x own job / another user's job, each cell
asserted (bob's own jobs were started under a policy that briefly let him).
Then: an identity missing from the policy is denied everything,
RUN-AS is honoured, and SIGHUP reloads the policy (a broken file keeps the
old one)."""

import os
import pwd
import signal
import uuid

import rpcharness as h


def main():
    import grpc
    pb, _ = h.stubs()
    C = grpc.StatusCode
    # bob may not start jobs under the example policy; so that he has an own job
    # for the matrix, the daemon starts with bob also "self task-manager", bob
    # starts a job, and then the example policy is loaded (SIGHUP).
    example = h.read(os.path.join(h.SRC, "conf/policy.conf")).decode()
    d = h.Daemon(policy=example + "bob self task-manager\n")
    alice, bob, charlie = d.stub("alice"), d.stub("bob"), d.stub("charlie")

    def start(stub, who):
        return stub.Start(pb.StartRequest(argv=["/bin/sh", "-c", "echo out-%s; exec sleep 60" % who]),
                          timeout=10).job_id

    def status(stub, jid):
        return stub.Status(pb.StatusRequest(job_id=jid), timeout=10).status

    def output(stub, jid):
        return h.collect_output(stub, jid, follow=False, timeout=10)

    def stop(stub, jid):
        return stub.Stop(pb.StopRequest(job_id=jid, use_grace=True, grace_ms=200), timeout=10).status

    def listed(stub):
        return {j.job_id: j.owner for j in stub.List(pb.ListRequest(), timeout=10).jobs}

    b1, b2 = start(bob, "bob"), start(bob, "bob")
    with open(d.policy_path, "w") as f:
        f.write(example)
    d.signal(signal.SIGHUP)
    d.wait_log(r"policy reloaded: 3 rules")

    # --- start -----------------------------------------------------------
    a1, a2, a3 = start(alice, "alice"), start(alice, "alice"), start(alice, "alice")
    c1, c2 = start(charlie, "charlie"), start(charlie, "charlie")
    h.expect_code(lambda: start(bob, "bob"), C.PERMISSION_DENIED, "'bob' may not start jobs")
    for j in (a1, c1):
        h.wait_state(alice if j == a1 else charlie, j, [pb.JOB_STATE_RUNNING])
    # wait until the echo is in the log, so that output cells have data
    for stub, j in ((alice, a1), (charlie, c1), (bob, b1), (bob, b2)):
        h.wait_stdout(stub, j)

    missing = str(uuid.uuid4())
    not_found_missing = h.expect_code(lambda: status(alice, missing), C.NOT_FOUND)

    # --- alice: own job ----------------------------------------------------
    st = status(alice, a1)
    assert st.owner == "alice" and st.state == pb.JOB_STATE_RUNNING, st
    data, _, end = output(alice, a1)
    assert data == b"out-alice\n", data
    assert end.state == pb.JOB_STATE_RUNNING
    ls = listed(alice)
    assert a1 in ls and a2 in ls and ls[a1] == "alice", ls
    assert stop(alice, a2).job_id == a2
    # --- alice: another user's job: hidden, exactly like a missing one --------
    for fn in (lambda: status(alice, c1), lambda: output(alice, c1), lambda: stop(alice, c1)):
        msg = h.expect_code(fn, C.NOT_FOUND)
        assert msg.replace(c1, "ID") == not_found_missing.replace(missing, "ID"), (msg, not_found_missing)
    assert c1 not in ls and c2 not in ls and b1 not in ls, ls
    assert set(ls.values()) == {"alice"}, ls
    h.expect_code(lambda: status(alice, b1), C.NOT_FOUND)

    # --- bob: own job: sees it, may not stop it (analyst) ----------------------
    st = status(bob, b1)
    assert st.owner == "bob" and st.state == pb.JOB_STATE_RUNNING, st
    data, _, _ = output(bob, b1)
    assert data == b"out-bob\n", data
    ls = listed(bob)
    assert ls.get(b1) == "bob", ls
    h.expect_code(lambda: stop(bob, b1), C.PERMISSION_DENIED, "'bob' may not stop job " + b1)
    assert status(bob, b1).state == pb.JOB_STATE_RUNNING
    # --- bob: other users' jobs: sees all, stops none --------------------------
    assert status(bob, a1).owner == "alice"
    assert status(bob, c1).owner == "charlie"
    data, _, _ = output(bob, c1)
    assert data == b"out-charlie\n", data
    assert {a1, a2, a3, c1, c2, b1, b2} <= set(ls), ls
    h.expect_code(lambda: stop(bob, a1), C.PERMISSION_DENIED, "'bob' may not stop job " + a1)
    h.expect_code(lambda: stop(bob, c1), C.PERMISSION_DENIED)
    assert status(bob, a1).state == pb.JOB_STATE_RUNNING
    # bob asking for a job that does not exist: NOT_FOUND (not PERMISSION_DENIED)
    h.expect_code(lambda: status(bob, missing), C.NOT_FOUND)

    # --- charlie: own job -------------------------------------------------------
    st = status(charlie, c1)
    assert st.owner == "charlie"
    data, _, _ = output(charlie, c1)
    assert data == b"out-charlie\n"
    ls = listed(charlie)
    assert c1 in ls and a1 in ls and b1 in ls, ls
    assert stop(charlie, c2).job_id == c2
    # --- charlie: another user's job ------------------------------------------
    assert status(charlie, a1).owner == "alice"
    data, _, _ = output(charlie, a1)
    assert data == b"out-alice\n"
    assert stop(charlie, a3).job_id == a3
    assert status(charlie, b2).owner == "bob"
    assert output(charlie, b2)[0] == b"out-bob\n"
    assert stop(charlie, b2).job_id == b2
    st = h.wait_state(charlie, a3, [pb.JOB_STATE_KILLED, pb.JOB_STATE_EXITED])
    assert st.stop_requested

    # stopping a finished job: FAILED_PRECONDITION
    h.wait_state(alice, a2, [pb.JOB_STATE_KILLED, pb.JOB_STATE_EXITED])
    h.expect_code(lambda: stop(alice, a2), C.FAILED_PRECONDITION, "is not running")

    # jobs run as the default unprivileged account
    nobody = pwd.getpwnam("nobody")
    j = alice.Start(pb.StartRequest(argv=["/bin/sh", "-c", "id -u; id -g"]), timeout=10).job_id
    data, _, end = h.collect_output(alice, j)
    assert data == b"%d\n%d\n" % (nobody.pw_uid, nobody.pw_gid), data
    assert end.state == pb.JOB_STATE_EXITED and end.exit_code == 0

    # --- reload: charlie removed, alice runs as daemon --------------------------
    with open(d.policy_path, "w") as f:
        f.write("alice self task-manager daemon\nbob all analyst\n")
    d.signal(signal.SIGHUP)
    d.wait_log(r"policy reloaded: 2 rules")
    for fn in (lambda: start(charlie, "charlie"), lambda: status(charlie, c1), lambda: output(charlie, c1),
               lambda: stop(charlie, c1), lambda: listed(charlie), lambda: status(charlie, missing)):
        h.expect_code(fn, C.PERMISSION_DENIED, "client 'charlie' is not in the policy")
    daemon = pwd.getpwnam("daemon")
    j = alice.Start(pb.StartRequest(argv=["/bin/sh", "-c", "id -u"]), timeout=10).job_id
    data, _, _ = h.collect_output(alice, j)
    assert data == b"%d\n" % daemon.pw_uid, data

    # --- a broken policy is refused, the previous one stays ---------------------
    with open(d.policy_path, "w") as f:
        f.write("alice self task-manager\ncharlie all superuser\n")
    d.signal(signal.SIGHUP)
    d.wait_log(r"policy.conf:2: unknown role 'superuser'")
    d.wait_log(r"reload: keeping the previous policy")
    h.expect_code(lambda: listed(charlie), C.PERMISSION_DENIED)
    assert status(alice, a1).state == pb.JOB_STATE_RUNNING

    # still serving, and a clean shutdown stops the remaining jobs
    assert d.stop() == 0
    log = d.logtext()
    assert "shutting down: stopping" in log, log


h.run_main(main)
