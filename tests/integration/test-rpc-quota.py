#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Per-identity bounds of the policy (issue 13, item 12), against the real
daemon:
- max-jobs=N: a Start while N of the identity's jobs run is refused with
  RESOURCE_EXHAUSTED naming the bound; other identities are not affected;
  once one of the jobs ended, a Start succeeds again;
- max-output=SIZE: the output all of an identity's jobs keep (running and
  retained) is bounded: a job that reaches the bound keeps no more (its
  status says truncated) and the next Start is refused naming the bound;
- a reload's cost is bounded: a policy of more than 100,000 rules is refused
  naming the limit, and the previous policy stays in force."""

import signal

import rpcharness as h


def test_max_jobs(pb, C):
    d = h.Daemon(policy="alice self task-manager max-jobs=2\ncharlie all task-manager\n")
    alice, charlie = d.stub("alice"), d.stub("charlie")

    def start(stub):
        return stub.Start(pb.StartRequest(argv=["/bin/sleep", "60"]), timeout=10).job_id

    a1, a2 = start(alice), start(alice)
    h.expect_code(lambda: start(alice), C.RESOURCE_EXHAUSTED, "alice already runs 2 jobs (max-jobs=2)")
    # charlie has no bound, and alice's does not touch him
    c1 = start(charlie)
    # one of alice's ends: she may start again, and again up to the bound
    alice.Stop(pb.StopRequest(job_id=a1), timeout=10)
    h.wait_state(alice, a1, (pb.JOB_STATE_EXITED, pb.JOB_STATE_KILLED))
    a3 = start(alice)
    h.expect_code(lambda: start(alice), C.RESOURCE_EXHAUSTED, "(max-jobs=2)")
    for stub, jid in ((alice, a2), (alice, a3), (charlie, c1)):
        stub.Stop(pb.StopRequest(job_id=jid), timeout=10)
    d.stop()


def test_max_output(pb, C):
    d = h.Daemon(policy="alice self task-manager max-output=4K\n")
    alice = d.stub("alice")

    def run(nbytes):
        jid = alice.Start(pb.StartRequest(argv=["/usr/bin/head", "-c", str(nbytes), "/dev/zero"]),
                          timeout=10).job_id
        data, _, end = h.collect_output(alice, jid, timeout=20)
        return data, end

    data, end = run(3000)
    assert len(data) == 3000 and not end.output_truncated, (len(data), end)
    # the second job may keep only what is left of the 4096 bytes
    data, end = run(3000)
    assert end.state == pb.JOB_STATE_EXITED and end.exit_code == 0, end
    assert len(data) == 1096 and end.output_truncated, (len(data), end)
    # the identity is at its bound: no new job until retention frees output
    h.expect_code(lambda: alice.Start(pb.StartRequest(argv=["/bin/true"]), timeout=10), C.RESOURCE_EXHAUSTED,
                  "the jobs of alice already keep 4096 bytes of output (max-output=4K")
    d.stop()


def test_policy_rules_limit(pb, C):
    d = h.Daemon()
    with open(d.policy_path, "w") as f:
        f.write("".join("u%07d self analyst\n" % i for i in range(100001)))
    d.signal(signal.SIGHUP)
    d.wait_log(r"policy\.conf:100001: too many rules \(the limit is 100000 lines with a rule\)")
    d.wait_log(r"reload: keeping the previous policy")
    # the example policy still holds: charlie may start
    d.stub("charlie").Start(pb.StartRequest(argv=["/bin/true"]), timeout=10)
    d.stop()


def main():
    import grpc
    pb, _ = h.stubs()
    test_max_jobs(pb, grpc.StatusCode)
    test_max_output(pb, grpc.StatusCode)
    test_policy_rules_limit(pb, grpc.StatusCode)


if __name__ == "__main__":
    h.run_main(main)
