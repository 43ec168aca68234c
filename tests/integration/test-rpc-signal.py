#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Signals (issue 14, item 2), against the real daemon:
- Signal reaches the job's main process (a trap prints it), the job keeps
  running and is not marked stop_requested; with all=true a child's trap
  runs too;
- authorization as Stop: the owner (alice, self task-manager) and charlie
  (all task-manager) may; bob (analyst) gets PERMISSION_DENIED; alice does
  not see charlie's job (NOT_FOUND); an unknown signal number is
  INVALID_ARGUMENT naming it; an ended job FAILED_PRECONDITION;
- each Signal and Stop carried out is in the daemon's log: the job, its
  owner, the signal or the grace, and who;
- jwctl kill -s USR1 reaches the job and prints nothing; jwctl kill (TERM)
  ends it killed by signal 15, not as a stop; unknown names are refused by
  jwctl itself (exit 2); jwctl kill -l lists and translates names without
  a server;
- all of the above without cgroups (--cgroup off: the process group), and
  all=true again with a cgroup per job where one can be made here (its
  cgroup.events says frozen 0 afterwards)."""

import os
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rpcharness as h  # noqa: E402
from survive_util import finish, jwctl, one_line  # noqa: E402

ENDED = None  # set in main: the ended states

# The main shell and its child trap USR1 and say so; "ready" once both traps are set.
FAMILY = ["sh", "-c",
          "trap 'echo main-usr1' USR1; "
          "sh -c 'trap \"echo child-usr1\" USR1; echo ready; while :; do sleep 0.05; done' & "
          "while :; do sleep 0.05; done"]


def fresh_cgroup():
    """A new cgroup v2 directory for a daemon's jobs, or (None, why)."""
    with open("/proc/self/mountinfo") as f:
        mnt = next((ln.split()[4] for ln in f if ln.split()[ln.split().index("-") + 1] == "cgroup2"), None)
    if not mnt:
        return None, "no cgroup2 file system is mounted"
    path = os.path.join(mnt, "jw-test-signal-%s" % uuid.uuid4().hex[:12])
    try:
        os.mkdir(path)
    except OSError as e:
        return None, "cannot create %s: %s" % (path, e)
    return path, None


def remove_cgroup(path):
    """Kills and removes what a failed test left in path, then path (bounded)."""
    for _ in range(50):
        try:
            for sub in os.listdir(path):
                p = os.path.join(path, sub)
                if os.path.isdir(p):
                    for name, value in (("cgroup.freeze", "0"), ("cgroup.kill", "1")):
                        try:
                            with open(os.path.join(p, name), "w") as f:
                                f.write(value)
                        except OSError:
                            pass
                    try:
                        os.rmdir(p)
                    except OSError:
                        pass
            os.rmdir(path)
            return
        except OSError:
            time.sleep(0.1)


def output_has(stub, jid, text, timeout=20.0):
    """Waits until the job's output so far holds text."""
    pb, _ = h.stubs()

    def has():
        data, _, _ = h.collect_output(stub, jid, follow=False, timeout=10)
        return text in data
    return h.wait_until(has, "%r in the output of job %s" % (text, jid), timeout)


def start_family(stub, pb):
    jid = stub.Start(pb.StartRequest(argv=FAMILY), timeout=10).job_id
    output_has(stub, jid, b"ready")
    return jid


def test_main_process(d, pb, C):
    alice = d.stub("alice")
    jid = start_family(alice, pb)
    resp = alice.Signal(pb.SignalRequest(job_id=jid, signal=10), timeout=10)
    if resp.status.job_id != jid or resp.status.state != pb.JOB_STATE_RUNNING or resp.status.stop_requested:
        h.fail("Signal's answer: %s" % one_line(resp.status))
    output_has(alice, jid, b"main-usr1")
    st = alice.Status(pb.StatusRequest(job_id=jid), timeout=10).status
    if st.state != pb.JOB_STATE_RUNNING or st.stop_requested:
        h.fail("after USR1 to the main process: %s" % one_line(st))
    # the journal says who did what to which job
    d.wait_log(r"job %s of alice: signal USR1 \(10\) sent to its main process, by alice" % jid)
    alice.Stop(pb.StopRequest(job_id=jid, use_grace=True, grace_ms=0), timeout=10)
    d.wait_log(r"job %s of alice: stop requested with a grace of 0s, by alice" % jid)


def test_all_reaches_child(d, pb, C):
    alice = d.stub("alice")
    jid = start_family(alice, pb)
    alice.Signal(pb.SignalRequest(job_id=jid, signal=10, all=True), timeout=10)
    output_has(alice, jid, b"main-usr1")
    output_has(alice, jid, b"child-usr1")
    st = alice.Status(pb.StatusRequest(job_id=jid), timeout=10).status
    if st.state != pb.JOB_STATE_RUNNING:
        h.fail("after USR1 to all: %s" % one_line(st))
    alice.Stop(pb.StopRequest(job_id=jid, use_grace=True, grace_ms=0), timeout=10)


def test_authorization(d, pb, C):
    alice, bob, charlie = d.stub("alice"), d.stub("bob"), d.stub("charlie")
    jid = alice.Start(pb.StartRequest(argv=["sleep", "60"]), timeout=10).job_id
    h.expect_code(lambda: bob.Signal(pb.SignalRequest(job_id=jid, signal=15), timeout=10),
                  C.PERMISSION_DENIED, "'bob' may not signal job %s" % jid)
    # charlie (all task-manager) may: CONT changes nothing for a sleep
    charlie.Signal(pb.SignalRequest(job_id=jid, signal=18, all=True), timeout=10)
    d.wait_log(r"job %s of alice: signal CONT \(18\) sent to all its processes, by charlie" % jid)
    cj = charlie.Start(pb.StartRequest(argv=["sleep", "60"]), timeout=10).job_id
    h.expect_code(lambda: alice.Signal(pb.SignalRequest(job_id=cj, signal=15), timeout=10),
                  C.NOT_FOUND, "no job %s" % cj)
    for bad in (0, 65, -1):
        h.expect_code(lambda: alice.Signal(pb.SignalRequest(job_id=jid, signal=bad), timeout=10),
                      C.INVALID_ARGUMENT, "signal %d is out of range (1 to 64)" % bad)
    for s, j in ((alice, jid), (charlie, cj)):
        s.Signal(pb.SignalRequest(job_id=j, signal=9), timeout=10)
        st = h.wait_state(s, j, ENDED)
        if not (st.state == pb.JOB_STATE_KILLED and st.signal == 9 and not st.stop_requested):
            h.fail("KILL through Signal: %s" % one_line(st))
    h.expect_code(lambda: alice.Signal(pb.SignalRequest(job_id=jid, signal=15), timeout=10),
                  C.FAILED_PRECONDITION, "job %s has ended" % jid)
    # bob is denied before he could learn that the job ended
    h.expect_code(lambda: bob.Signal(pb.SignalRequest(job_id=jid, signal=15), timeout=10), C.PERMISSION_DENIED)


def test_jwctl_kill(d, pb, C):
    alice = d.stub("alice")
    jid = start_family(alice, pb)
    code, out, err = finish(jwctl(d.target, "kill", "-s", "usr1", jid[:8]))
    if code != 0 or out or err:
        h.fail("jwctl kill -s usr1: exit %d, stdout %r, stderr %r" % (code, out, err))
    output_has(alice, jid, b"main-usr1")
    code, out, err = finish(jwctl(d.target, "kill", "--all", "-s", "SIGUSR1", jid))
    if code != 0 or out or err:
        h.fail("jwctl kill --all: exit %d, stderr %r" % (code, err))
    output_has(alice, jid, b"child-usr1")
    code, out, err = finish(jwctl(d.target, "kill", "-s", "BOGUS", jid))
    if code != 2 or b"unknown signal 'BOGUS'" not in err:
        h.fail("jwctl kill -s BOGUS: exit %d, stderr %r" % (code, err))
    # kill -l: the table, and one signal either way, with no server at all
    nowhere = "127.0.0.1:1"
    code, out, err = finish(jwctl(nowhere, "kill", "-l"))
    lines = out.decode().splitlines()
    if code != 0 or err or len(lines) != 62 or lines[0].split() != ["1", "HUP"] or \
            "15 TERM" not in [ln.strip() for ln in lines] or lines[-1].split() != ["64", "RTMAX"]:
        h.fail("jwctl kill -l: exit %d, stdout %r, stderr %r" % (code, out[:200], err))
    for arg, want in (("15", b"TERM\n"), ("sigusr1", b"10\n"), ("RTMIN+2", b"36\n")):
        code, out, err = finish(jwctl(nowhere, "kill", "-l", arg))
        if code != 0 or out != want or err:
            h.fail("jwctl kill -l %s: exit %d, stdout %r, stderr %r" % (arg, code, out, err))
    code, out, err = finish(jwctl(nowhere, "kill", "-l", "BOGUS"))
    if code != 2 or b"unknown signal 'BOGUS'" not in err:
        h.fail("jwctl kill -l BOGUS: exit %d, stderr %r" % (code, err))
    alice.Stop(pb.StopRequest(job_id=jid, use_grace=True, grace_ms=0), timeout=10)
    # plain kill: TERM to the main process (a lone one: without a cgroup a
    # child would outlive it)
    jid = alice.Start(pb.StartRequest(argv=["sleep", "60"]), timeout=10).job_id
    code, out, err = finish(jwctl(d.target, "kill", jid))
    if code != 0 or out or err:
        h.fail("jwctl kill: exit %d, stderr %r" % (code, err))
    st = h.wait_state(alice, jid, ENDED)
    if not (st.state == pb.JOB_STATE_KILLED and st.signal == 15 and not st.stop_requested):
        h.fail("after jwctl kill (TERM): %s" % one_line(st))
    code, out, err = finish(jwctl(d.target, "kill", jid))
    if code != 1 or (b"job %s is not running" % jid.encode()) not in err:
        h.fail("jwctl kill of an ended job: exit %d, stderr %r" % (code, err))


def main():
    global ENDED
    import grpc
    pb, _ = h.stubs()
    C = grpc.StatusCode
    ENDED = [pb.JOB_STATE_EXITED, pb.JOB_STATE_KILLED, pb.JOB_STATE_ENDED, pb.JOB_STATE_LOST]
    failures = []

    def run(d, tests, label):
        for t in tests:
            try:
                t(d, pb, C)
                print("ok   %s%s" % (t.__name__, label))
            except Exception as e:  # noqa: BLE001 - one failure does not hide the others
                print("FAIL %s%s: %s" % (t.__name__, label, str(e).splitlines()[0] if str(e) else repr(e)))
                failures.append(t.__name__ + label)

    d = h.Daemon(args=["--cgroup", "off"])
    run(d, (test_main_process, test_all_reaches_child, test_authorization, test_jwctl_kill), " (no cgroups)")
    d.stop()

    path, why = fresh_cgroup()
    if not path:
        print("skip the cases with a cgroup per job: %s" % why)
    else:
        try:
            d = h.Daemon(args=["--cgroup", path])

            def test_all_with_cgroup(d, pb, C):
                alice = d.stub("alice")
                jid = alice.Start(pb.StartRequest(argv=["sleep", "60"]), timeout=10).job_id
                if not alice.Status(pb.StatusRequest(job_id=jid), timeout=10).status.has_cgroup:
                    h.fail("the daemon with --cgroup %s gave the job no cgroup" % path)
                alice.Stop(pb.StopRequest(job_id=jid, use_grace=True, grace_ms=0), timeout=10)
                test_all_reaches_child(d, pb, C)
                jid = start_family(alice, pb)
                alice.Signal(pb.SignalRequest(job_id=jid, signal=10, all=True), timeout=10)
                output_has(alice, jid, b"child-usr1")
                events = h.read(os.path.join(path, "job-" + jid, "cgroup.events")).decode()
                if "frozen 0" not in events:
                    h.fail("the job's cgroup after Signal(all): %r" % events)
                alice.Stop(pb.StopRequest(job_id=jid, use_grace=True, grace_ms=0), timeout=10)
            run(d, (test_all_with_cgroup, test_jwctl_kill), " (a cgroup per job)")
            d.stop()
        finally:
            remove_cgroup(path)
    if failures:
        h.fail("; ".join(failures))


if __name__ == "__main__":
    h.run_main(main)
