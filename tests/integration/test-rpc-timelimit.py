#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Time limits (issue 14, item 1), against the real daemon:
- a Start with max_runtime_ms: past it the job is stopped as by Stop (SIGTERM,
  the grace, then killed), its status says timed_out and not stop_requested;
- a job that ignores SIGTERM is killed after the daemon's stop grace;
- above the policy's max-runtime= the Start is PERMISSION_DENIED with the
  bound in the message; nothing asked gives default-max-runtime=;
- jwctl run --max-runtime exits 128+signal and says on stderr that the job
  timed out; jwctl status shows it;
- the limit outlives the daemon: under fakesystemd.FakeSystemd, a daemon
  SIGKILLed while jobs with limits run; a job whose deadline passed while no
  daemon ran is stopped at once by the next daemon, one whose deadline is
  still ahead at its deadline (never earlier)."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rpcharness as h  # noqa: E402
from survive_util import Client, fake_daemon, finish, jwctl, one_line  # noqa: E402

POLICY = ("alice self task-manager max-runtime=1h\n"
          "charlie all task-manager default-max-runtime=0.4s\n")
ENDED = None  # set in main: the ended states


def elapsed(st):
    return (st.end_time_us - st.start_time_us) / 1e6


def test_limit_stops_job(d, pb, C):
    alice = d.stub("alice")
    jid = alice.Start(pb.StartRequest(argv=["sleep", "60"], max_runtime_ms=500), timeout=10).job_id
    st = alice.Status(pb.StatusRequest(job_id=jid), timeout=10).status
    assert st.max_runtime_ms == 500 and not st.timed_out, one_line(st)
    st = h.wait_state(alice, jid, ENDED, timeout=15)
    if not (st.state == pb.JOB_STATE_KILLED and st.signal == 15 and st.timed_out and not st.stop_requested):
        h.fail("sleep 60 with a 500 ms limit: %s" % one_line(st))
    if not 0.45 <= elapsed(st) < 5:
        h.fail("it ran %.3f s, expected about 0.5 s" % elapsed(st))


def test_stubborn_killed_after_grace(d, pb, C):
    alice = d.stub("alice")
    jid = alice.Start(pb.StartRequest(argv=["sh", "-c", "trap '' TERM; while :; do sleep 0.05; done"],
                                      max_runtime_ms=300), timeout=10).job_id
    st = h.wait_state(alice, jid, ENDED, timeout=15)
    if not (st.state == pb.JOB_STATE_KILLED and st.signal == 9 and st.timed_out):
        h.fail("a job that ignores SIGTERM, 300 ms limit: %s" % one_line(st))
    if elapsed(st) < 0.3 + 0.5 - 0.05:   # the limit, then the daemon's --stop-grace 0.5s
        h.fail("killed after %.3f s, before the limit and the grace" % elapsed(st))


def test_above_bound_refused(d, pb, C):
    alice = d.stub("alice")
    h.expect_code(lambda: alice.Start(pb.StartRequest(argv=["true"], max_runtime_ms=2 * 3600 * 1000), timeout=10),
                  C.PERMISSION_DENIED, "alice may run a job for at most 1h (max-runtime=1h; asked 2h)")
    # at the bound is fine, and so is asking nothing (alice has no default)
    jid = alice.Start(pb.StartRequest(argv=["true"], max_runtime_ms=3600 * 1000), timeout=10).job_id
    st = h.wait_state(alice, jid, ENDED)
    assert st.state == pb.JOB_STATE_EXITED and st.max_runtime_ms == 3600 * 1000 and not st.timed_out, one_line(st)
    jid = alice.Start(pb.StartRequest(argv=["true"]), timeout=10).job_id
    st = h.wait_state(alice, jid, ENDED)
    assert st.state == pb.JOB_STATE_EXITED and st.max_runtime_ms == 0 and not st.timed_out, one_line(st)


def test_default_applied(d, pb, C):
    charlie = d.stub("charlie")
    jid = charlie.Start(pb.StartRequest(argv=["sleep", "60"]), timeout=10).job_id
    st = h.wait_state(charlie, jid, ENDED, timeout=15)
    if not (st.max_runtime_ms == 400 and st.timed_out and st.state == pb.JOB_STATE_KILLED and st.signal == 15):
        h.fail("charlie's job with default-max-runtime=0.4s: %s" % one_line(st))
    # what he asks for replaces the default
    jid = charlie.Start(pb.StartRequest(argv=["sleep", "0.6"], max_runtime_ms=30000), timeout=10).job_id
    st = h.wait_state(charlie, jid, ENDED, timeout=15)
    if not (st.state == pb.JOB_STATE_EXITED and st.exit_code == 0 and not st.timed_out):
        h.fail("charlie's job asking 30 s: %s" % one_line(st))


def test_jwctl(d, pb, C):
    code, out, err = finish(jwctl(d.target, "run", "--max-runtime", "0.5", "--", "sleep", "60"), timeout=30)
    if code != 128 + 15 or b"timed out after 500ms" not in err:
        h.fail("jwctl run --max-runtime 0.5 -- sleep 60: exit %d, stderr %r" % (code, err))
    code, out, err = finish(jwctl(d.target, "start", "--max-runtime", "1.5s", "--", "sleep", "60"))
    jid = out.decode().strip()
    assert code == 0 and jid, (code, err)
    code, out, err = finish(jwctl(d.target, "status", jid))
    if code != 0 or b"Limit:    runs at most 1500ms\n" not in out:
        h.fail("jwctl status of a running job with a limit: %r" % out)
    code, out, err = finish(jwctl(d.target, "wait", jid))
    if code != 128 + 15 or b"timed out after 1500ms" not in err:
        h.fail("jwctl wait: exit %d, stderr %r" % (code, err))
    code, out, err = finish(jwctl(d.target, "status", jid))
    if b"(timed out: its max runtime passed)" not in out or b"Limit:    timed out after 1500ms" not in out:
        h.fail("jwctl status of a timed-out job: %r" % out)
    code, out, err = finish(jwctl(d.target, "run", "--max-runtime", "2h", "--", "true"))
    if code == 0 or b"alice may run a job for at most 1h (max-runtime=1h; asked 2h)" not in err:
        h.fail("jwctl run above the bound: exit %d, stderr %r" % (code, err))


def test_limit_survives_crash(pb):
    """Two jobs with limits, the daemon SIGKILLed: `early`'s deadline passes
    while no daemon runs (the next one stops it as soon as it is up),
    `late`'s after the next daemon started (stopped at its deadline)."""
    fake = fake_daemon(h.JOBWORKERD, h.tmpdir(), debug=True)
    fake.start()
    fake.wait_ready(30)
    try:
        s = Client(fake.port()).stub("alice")
        early = s.Start(pb.StartRequest(argv=["sleep", "60"], max_runtime_ms=1000), timeout=10).job_id
        late = s.Start(pb.StartRequest(argv=["sleep", "60"], max_runtime_ms=4000), timeout=10).job_id
        started = time.monotonic()
        h.wait_state(s, late, [pb.JOB_STATE_RUNNING])
        fake.kill9()
        # no daemon until early's deadline has passed
        time.sleep(max(0.0, started + 1.5 - time.monotonic()))
        fake.start()
        fake.wait_ready(30)
        s = Client(fake.port()).stub("alice")
        st = h.wait_state(s, early, ENDED, timeout=40)
        if not st.timed_out or st.state not in (pb.JOB_STATE_KILLED, pb.JOB_STATE_ENDED) or elapsed(st) < 0.95:
            h.fail("the job whose limit passed during the outage: %s" % one_line(st))
        st = s.Status(pb.StatusRequest(job_id=late), timeout=10).status
        if st.state != pb.JOB_STATE_RUNNING:
            h.fail("the job whose limit is still ahead ended early: %s" % one_line(st))
        st = h.wait_state(s, late, ENDED, timeout=40)
        if not st.timed_out or st.state not in (pb.JOB_STATE_KILLED, pb.JOB_STATE_ENDED) or elapsed(st) < 3.95:
            h.fail("the job whose limit passed after the restart: %s" % one_line(st))
        if st.state == pb.JOB_STATE_KILLED and st.signal != 15:
            h.fail("expected SIGTERM: %s" % one_line(st))
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
    d = h.Daemon(policy=POLICY, args=["--stop-grace", "0.5s"])
    failures = []
    for t in (test_limit_stops_job, test_stubborn_killed_after_grace, test_above_bound_refused,
              test_default_applied, test_jwctl):
        try:
            t(d, pb, C)
            print("ok   %s" % t.__name__)
        except Exception as e:  # noqa: BLE001 - one failure does not hide the others
            print("FAIL %s: %s" % (t.__name__, str(e).splitlines()[0] if str(e) else repr(e)))
            failures.append(t.__name__)
    d.stop()
    try:
        test_limit_survives_crash(pb)
        print("ok   test_limit_survives_crash")
    except Exception as e:  # noqa: BLE001
        print("FAIL test_limit_survives_crash: %s" % (str(e).splitlines()[0] if str(e) else repr(e)))
        failures.append("test_limit_survives_crash")
    if failures:
        h.fail("; ".join(failures))


if __name__ == "__main__":
    h.run_main(main)
