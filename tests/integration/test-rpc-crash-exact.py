#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Issue 12: no byte lost or written twice when the daemon dies in the
middle of capturing. Fast writers (seq, flat out, into 64 KiB and 1 MiB
pipes) run under fakesystemd while the daemon is SIGKILLed 20 times at
random moments a few tens of milliseconds apart, mostly while it is busy
copying their output; afterwards each log must be exactly the writer's
output. (A daemon that read() a chunk and died before writing it lost it:
that is why capture under a store goes through splice(), outlog.h.) The
seed is printed; JW_CRASH_SEED= repeats the moments."""

import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rpcharness as h  # noqa: E402
from survive_util import Client, check_daemon_stops_clean, fake_daemon, kill_all, one_line  # noqa: E402

KILLS = 20
LINES = (3000000, 1000000)   # 1..N, a line each: 23 MB and 6.9 MB
SEQ_LINES = 25000000         # seq, flat out: 214 MB, the daemon busy copying
# Flat out in 64 KiB writes, with a 2 ms pause between them, so that the
# writers are still busy when the last kill comes (seq alone would be done
# before the first).
WRITER = ("import sys, time\n"
          "n = int(sys.argv[1]); buf = []; size = 0\n"
          "for i in range(1, n + 1):\n"
          "    s = '%d\\n' % i; buf.append(s); size += len(s)\n"
          "    if size >= 65536:\n"
          "        sys.stdout.write(''.join(buf)); sys.stdout.flush(); buf = []; size = 0; time.sleep(0.002)\n"
          "sys.stdout.write(''.join(buf))\n")
# The second writer writes to stdout and stderr in turn.
TWO = "for i in $(seq 1 %d); do echo \"o$i\"; echo \"e$i\" >&2; done" % 20000


def seq_bytes(n):
    return b"".join(b"%d\n" % i for i in range(1, n + 1))


def main():
    pb, _ = h.stubs()
    fake = fake_daemon(h.JOBWORKERD, h.tmpdir(), restart_sec=0.02)
    seed = int(os.environ.get("JW_CRASH_SEED", str(int(time.time()))))
    print("seed %d (JW_CRASH_SEED=%d repeats the moments)" % (seed, seed))
    rnd = random.Random(seed)
    pidfds = []
    try:
        fake.start()
        fake.wait_ready(30)
        client = Client(fake.port())
        s = client.stub("alice")
        jobs = [s.Start(pb.StartRequest(argv=["python3", "-c", WRITER, str(n)]), timeout=10).job_id for n in LINES]
        jobs.append(s.Start(pb.StartRequest(argv=["seq", "1", str(SEQ_LINES)]), timeout=10).job_id)
        two = s.Start(pb.StartRequest(argv=["sh", "-c", TWO]), timeout=10).job_id
        for j in jobs + [two]:
            pid = h.wait_state(s, j, [pb.JOB_STATE_RUNNING, pb.JOB_STATE_EXITED]).pid
            try:
                pidfds.append(os.pidfd_open(pid))
            except ProcessLookupError:
                pass
        kills = 0
        for _ in range(KILLS):
            time.sleep(rnd.uniform(0.01, 0.12))
            fake.kill9()
            kills += 1
            fake.start()
            fake.wait_ready(30)
        s = client.stub("alice")
        running = sum(1 for j in jobs if s.Status(pb.StatusRequest(job_id=j), timeout=10).status.state ==
                      pb.JOB_STATE_RUNNING)
        print("%d kills; %d of %d writers still running after the last" % (kills, running, len(jobs)))
        for j, n in zip(jobs, LINES + (SEQ_LINES,)):
            st = h.wait_state(s, j, [pb.JOB_STATE_EXITED, pb.JOB_STATE_KILLED, pb.JOB_STATE_LOST, pb.JOB_STATE_ENDED],
                              timeout=120)
            if st.state != pb.JOB_STATE_EXITED or st.exit_code != 0:
                h.fail("the writer of 1..%d ended as %s" % (n, one_line(st)))
            data, _, _ = h.collect_output(s, j, stream=pb.STREAM_STDOUT, follow=False)
            want = seq_bytes(n)
            if data != want:
                bad = next((i for i in range(min(len(data), len(want))) if data[i] != want[i]), min(len(data), len(want)))
                h.fail("1..%d: the log has %d bytes, the writer wrote %d; first difference at byte %d: %r vs %r"
                       % (n, len(data), len(want), bad, data[bad - 16:bad + 16], want[bad - 16:bad + 16]))
        st = h.wait_state(s, two, [pb.JOB_STATE_EXITED, pb.JOB_STATE_KILLED, pb.JOB_STATE_LOST, pb.JOB_STATE_ENDED],
                          timeout=120)
        out, _, _ = h.collect_output(s, two, stream=pb.STREAM_STDOUT, follow=False)
        err, _, _ = h.collect_output(s, two, stream=pb.STREAM_STDERR, follow=False)
        if st.state != pb.JOB_STATE_EXITED or out != b"".join(b"o%d\n" % i for i in range(1, 20001)) or \
                err != b"".join(b"e%d\n" % i for i in range(1, 20001)):
            h.fail("the stdout+stderr writer: %s, stdout %d bytes, stderr %d bytes, not its output"
                   % (one_line(st), len(out), len(err)))
        check_daemon_stops_clean(fake)
    finally:
        kill_all(pidfds)
        fake.close()


h.run_main(main)
