#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Issue 12, the crash path on this host: jobworkerd runs under
fakesystemd.FakeSystemd (socket activation and systemd 252's fd store,
emulated), is SIGKILLed five times at random moments and started again each
time, as Restart=on-failure would. Jobs: one writes a known sequence all the
time, one sleeps, one exits with code 42 while no daemon runs. Afterwards:
the writer's log is byte-exact (a prefix of the sequence, and it grew after
the last restart), the job that ended during the outage shows exit code 42
(this kernel has PIDFD_INFO_EXIT; without it, the documented "exit code
unknown" state), no job is lost, and Stop works on the survivors.

Before issue 12 it failed (the first crash left every job lost). The seed of the random moments is printed (JW_FDSTORE_SEED=
repeats a run)."""

import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rpcharness as h  # noqa: E402
from survive_util import (Client, WRITER, check_daemon_stops_clean, expected, fake_daemon, finish,  # noqa: E402
                          jwctl, kernel_has_pidfd_info_exit, kill_all, one_line, process_gone)

CRASHES = 5
STUBBORN_GRACE_MS = 2500
COUNTED_LINES = 60000
COUNTED = ("import sys, time\n"
           "for i in range(%d):\n"
           "    sys.stdout.write('%%08d\\n' %% i)\n"
           "    if i %% 200 == 0:\n"
           "        sys.stdout.flush()\n"
           "        time.sleep(0.01)\n"
           "sys.stdout.flush()\n"
           "sys.exit(3)\n" % COUNTED_LINES)
GATE_CRASH = 2          # during which outage the exit-42 job ends (0-based)


def daemon_under_fake():
    fake = fake_daemon(h.JOBWORKERD, h.tmpdir(), debug=True)
    fake.start()
    fake.wait_ready(30)
    return fake, Client(fake.port())


class Run:
    def __init__(self):
        self.pb, _ = h.stubs()
        self.fake, self.client = daemon_under_fake()
        self.gate = os.path.join(h.tmpdir(), "gate")
        s = self.stub()
        pb = self.pb
        self.writer = s.Start(pb.StartRequest(argv=["python3", "-c", WRITER]), timeout=10).job_id
        self.sleeper = s.Start(pb.StartRequest(argv=["sleep", "600"]), timeout=10).job_id
        self.ender = s.Start(pb.StartRequest(argv=["sh", "-c", "while [ ! -e %s ]; do sleep 0.05; done; exit 42"
                                                   % self.gate]), timeout=10).job_id
        # A finite writer, followed by jwctl through the crashes (logs -f
        # for the bytes, wait for the code).
        self.counted = s.Start(pb.StartRequest(argv=["python3", "-c", COUNTED]), timeout=10).job_id
        # A job that ignores SIGTERM, stopped just before the first crash:
        # the kill at the end of its grace is a promise the next daemon keeps.
        self.stubborn = s.Start(pb.StartRequest(argv=["sh", "-c", "trap '' TERM; echo ready; "
                                                      "while :; do sleep 0.1; done"]), timeout=10).job_id
        self.pids = {j: h.wait_state(s, j, [pb.JOB_STATE_RUNNING]).pid
                     for j in (self.writer, self.sleeper, self.ender, self.counted, self.stubborn)}
        h.wait_stdout(s, self.stubborn, at_least=6)
        self.follow = jwctl(self.client.target, "logs", "-f", self.counted)
        self.wait = jwctl(self.client.target, "wait", self.counted, stdout=subprocess.DEVNULL)
        # pidfds, so that the clean-up can never signal a reused pid
        self.pidfds = [os.pidfd_open(p) for p in self.pids.values()]
        h.wait_stdout(s, self.writer, at_least=9)
        self.seed = int(os.environ.get("JW_FDSTORE_SEED", str(int(time.time()))))
        print("seed %d (JW_FDSTORE_SEED=%d repeats the moments)" % (self.seed, self.seed))

    def stub(self):
        return self.client.stub("alice")

    def status(self, job):
        return self.stub().Status(self.pb.StatusRequest(job_id=job), timeout=10).status

    def crash_five_times(self):
        rnd = random.Random(self.seed)
        self.stub().Stop(self.pb.StopRequest(job_id=self.stubborn, use_grace=True, grace_ms=STUBBORN_GRACE_MS),
                         timeout=10)
        self.stop_sent = time.time()
        for i in range(CRASHES):
            time.sleep(rnd.uniform(0.05, 1.5))   # a random moment of the daemon's life
            self.fake.kill9()
            if i == GATE_CRASH:
                # the job ends while no daemon runs; PID 1 reaps it (late)
                open(self.gate, "w").close()
                h.wait_until(lambda: process_gone(self.pids[self.ender]),
                             "the exit-42 job to end and be reaped during the outage", timeout=20)
            time.sleep(self.fake.restart_sec)
            self.fake.start()
            self.fake.wait_ready(30)
        print("stored fds after %d crashes: %s" % (CRASHES, [n for n, _ in self.fake.stored_fds()]))


def check_writer_byte_exact(run):
    pb = run.pb
    st = run.status(run.writer)
    if st.state != pb.JOB_STATE_RUNNING:
        h.fail("the writer is not running after the crashes: %s" % one_line(st))
    # it streams again: its log grows past what it had at the last restart
    h.wait_stdout(run.stub(), run.writer, at_least=st.stdout_bytes + 4096, timeout=30)
    data, _, end = h.collect_output(run.stub(), run.writer, stream=pb.STREAM_STDOUT, follow=False)
    if data != expected(len(data)):
        bad = next(i for i in range(len(data)) if data[i:i + 1] != expected(len(data))[i:i + 1])
        h.fail("the writer's log differs from the sequence at byte %d of %d: %r" % (bad, len(data), data[bad - 20:bad + 20]))
    if end.stdout_bytes != len(data):
        h.fail("status says %d stdout bytes, the log has %d" % (end.stdout_bytes, len(data)))
    if end.stderr_bytes != 0:
        h.fail("the writer wrote %d bytes to stderr (EPIPE? SIGPIPE?)" % end.stderr_bytes)


def check_exit_code_across_outage(run):
    pb = run.pb
    st = h.wait_state(run.stub(), run.ender, [pb.JOB_STATE_EXITED, pb.JOB_STATE_KILLED, pb.JOB_STATE_LOST,
                                              pb.JOB_STATE_ENDED], timeout=40)
    if kernel_has_pidfd_info_exit():
        if st.state != pb.JOB_STATE_EXITED or st.exit_code != 42:
            h.fail("the job that exited 42 while the daemon was down shows %s" % one_line(st))
        return
    st = h.wait_state(run.stub(), run.ender, [pb.JOB_STATE_ENDED], timeout=40)
    if st.exit_code != 0 or st.signal != 0:
        h.fail("without PIDFD_INFO_EXIT the job should be 'ended, code unknown': %s" % one_line(st))


def check_followers(run):
    pb = run.pb
    st = h.wait_state(run.stub(), run.counted, [pb.JOB_STATE_EXITED, pb.JOB_STATE_KILLED, pb.JOB_STATE_ENDED,
                                                pb.JOB_STATE_LOST], timeout=60)
    if st.state != pb.JOB_STATE_EXITED or st.exit_code != 3:
        h.fail("the finite writer ended as %s (expected exit 3)" % one_line(st))
    rc, out, err = finish(run.follow)
    want = expected(COUNTED_LINES * 9)
    if rc != 0 or out != want:
        h.fail("jwctl logs -f through the crashes: exit %d, %d of %d bytes, same prefix %s; stderr %r"
               % (rc, len(out), len(want), want.startswith(out), err[-300:]))
    rc, _, err = finish(run.wait)
    if rc != 3:
        h.fail("jwctl wait through the crashes exited %d, not the job's 3; stderr %r" % (rc, err[-300:]))


def check_pending_stop_kept(run):
    pb = run.pb
    st = h.wait_state(run.stub(), run.stubborn, [pb.JOB_STATE_KILLED, pb.JOB_STATE_EXITED, pb.JOB_STATE_ENDED],
                      timeout=30)
    waited = st.end_time_us / 1e6 - run.stop_sent
    if st.state != pb.JOB_STATE_KILLED or st.signal != 9 or not st.stop_requested:
        h.fail("the job that ignores SIGTERM, stopped before the crashes: %s" % one_line(st))
    if waited < STUBBORN_GRACE_MS / 1000 - 0.2:
        h.fail("it was killed %.2f s after the Stop, before its grace of %.1f s" % (waited, STUBBORN_GRACE_MS / 1000))


def check_nothing_lost(run):
    pb = run.pb
    jobs = run.stub().List(pb.ListRequest(), timeout=10).jobs
    if len(jobs) != 5:
        h.fail("List shows %d jobs, expected 5: %s" % (len(jobs), [one_line(j) for j in jobs]))
    lost = [j for j in jobs if j.state == pb.JOB_STATE_LOST]
    if lost:
        h.fail("jobs lost across the crashes: %s" % [one_line(j) for j in lost])
    for j in (run.writer, run.sleeper):
        st = run.status(j)
        if st.state != pb.JOB_STATE_RUNNING or st.pid != run.pids[j] or process_gone(st.pid):
            h.fail("job %s should still run as pid %d: %s" % (j, run.pids[j], one_line(st)))


def check_stop_survivors(run):
    pb = run.pb
    for j in (run.writer, run.sleeper):
        run.stub().Stop(pb.StopRequest(job_id=j, use_grace=True, grace_ms=300), timeout=10)
        st = h.wait_state(run.stub(), j, [pb.JOB_STATE_KILLED, pb.JOB_STATE_EXITED], timeout=15)
        if st.state != pb.JOB_STATE_KILLED or st.signal != 15:
            h.fail("job %s after Stop: %s (expected killed by SIGTERM)" % (j, one_line(st)))
        h.wait_until(lambda: process_gone(run.pids[j]), "job %s's process to end" % j, timeout=15)


def main():
    run = Run()
    failures = []
    try:
        run.crash_five_times()
        for check in (check_writer_byte_exact, check_exit_code_across_outage, check_followers,
                      check_pending_stop_kept, check_nothing_lost, check_stop_survivors):
            try:
                check(run)
                print("ok   %s" % check.__name__)
            except Exception as e:  # noqa: BLE001 - an RpcError fails the check, the rest still run
                print("FAIL %s: %s" % (check.__name__, str(e).splitlines()[0] if str(e) else repr(e)))
                failures.append(check.__name__)
        try:
            check_daemon_stops_clean(run.fake)
        except Exception as e:  # noqa: BLE001
            failures.append(str(e).splitlines()[0])
    finally:
        if failures:
            print("daemon log (last 60 lines):\n" + "\n".join(run.fake.logtext().splitlines()[-60:]))
        kill_all(run.pidfds)
        run.fake.close()
    if failures:
        h.fail("; ".join(failures))


h.run_main(main)
