#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Restarts and upgrades (issue 12), on this host under the fake systemd of
the tests (socket activation and fd store as systemd 252 does them).

With N sleeping jobs and one writer (a line every millisecond) running:
  crash_stream_ms   kill -9 of the daemon -> the writer's next byte reaches
                    a follower of the new daemon (RestartSec=0 here; the
                    unit adds its RestartSec=200ms)
  upgrade_serve_ms  SIGHUP with the binary replaced -> the new image answers
baselines in the same run:
  cold_ready_ms     a first start with no jobs -> READY=1
  reload_ms         SIGHUP with the binary unchanged -> the policy reloaded
Prints key=value lines (medians of RUNS; *_min/_max too).

usage: bench/restart.py JOBWORKERD N RUNS"""

import os
import shutil
import signal
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
os.environ.setdefault("JW_SOURCE_ROOT", os.path.join(HERE, ".."))

import rpcharness as h  # noqa: E402
from survive_util import Client, fake_daemon, kill_all  # noqa: E402

# One line per millisecond: the CLOCK_MONOTONIC nanoseconds it was written at.
WRITER = ("import time, sys\nwhile True:\n"
          "    sys.stdout.write('%d\\n' % time.monotonic_ns()); sys.stdout.flush(); time.sleep(0.001)\n")


def first_line_after(client, job, offset, t_ns, pb, timeout=30):
    """Follows job from offset on a fresh channel (retrying while the daemon
    is down) until a line written after t_ns (monotonic) arrives: output
    made after the crash, captured and streamed by the new daemon."""
    deadline = time.monotonic() + timeout
    tail = b""
    while time.monotonic() < deadline:
        try:
            for resp in client.stub("alice").Output(pb.OutputRequest(job_id=job, offset=offset, follow=True),
                                                     timeout=max(0.1, deadline - time.monotonic())):
                if not resp.HasField("chunk"):
                    continue
                offset += len(resp.chunk.data)
                lines = (tail + resp.chunk.data).split(b"\n")
                tail = lines.pop()
                if any(int(x) > t_ns for x in lines if x):
                    return time.monotonic()
        except Exception:  # noqa: BLE001 - the daemon is not up yet
            time.sleep(0.002)
    raise RuntimeError("no new line within %ds" % timeout)


def answers(client, pb):
    try:
        client.stub("alice").List(pb.ListRequest(), timeout=1)
        return True
    except Exception:  # noqa: BLE001
        return False


def main():
    binary_src, n, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    pb, _ = h.stubs()
    res = {k: [] for k in ("cold_ready_ms", "crash_stream_ms", "upgrade_serve_ms", "reload_ms")}
    for _ in range(runs):
        d = h.tmpdir()
        binary = os.path.join(d, "jobworkerd")
        shutil.copy2(binary_src, binary)
        fake = fake_daemon(binary, d, restart_sec=0)
        pidfds = []
        try:
            t0 = time.monotonic()
            fake.start()
            fake.wait_ready(30)
            res["cold_ready_ms"].append((time.monotonic() - t0) * 1000)
            client = Client(fake.port())
            s = client.stub("alice")
            writer = s.Start(pb.StartRequest(argv=["python3", "-c", WRITER]), timeout=10).job_id
            for _ in range(n):
                s.Start(pb.StartRequest(argv=["sleep", "600"]), timeout=30)
            pidfds.append(os.pidfd_open(h.wait_state(s, writer, [pb.JOB_STATE_RUNNING]).pid))
            h.wait_stdout(s, writer, at_least=2)

            st = s.Status(pb.StatusRequest(job_id=writer), timeout=10).status
            t0, t0_ns = time.monotonic(), time.monotonic_ns()
            fake.kill9()
            fake.start()
            t1 = first_line_after(client, writer, st.stdout_bytes, t0_ns, pb)
            res["crash_stream_ms"].append((t1 - t0) * 1000)
            fake.wait_ready(30)

            t0 = time.monotonic()
            os.kill(fake.main_pid, signal.SIGHUP)
            h.wait_until(lambda: fake.logtext().count("policy reloaded") >= 1, "the reload", timeout=30,
                         interval=0.002)
            res["reload_ms"].append((time.monotonic() - t0) * 1000)

            shutil.copy2(binary_src, binary + ".new")
            os.rename(binary + ".new", binary)
            t0 = time.monotonic()
            os.kill(fake.main_pid, signal.SIGHUP)
            h.wait_until(lambda: "executing" in fake.logtext().split("upgrading in place")[-1], "the exec",
                         timeout=60, interval=0.001)
            t_exec = time.monotonic()
            h.wait_until(lambda: "took over" in fake.logtext().split("upgrading in place")[-1], "the take-over",
                         timeout=60, interval=0.001)
            t_took = time.monotonic()
            h.wait_until(lambda: answers(client, pb), "the new image to serve", timeout=60, interval=0.002)
            if os.environ.get("JW_BENCH_VERBOSE"):
                print("upgrade: exec after %.0f ms, took over after %.0f ms" % ((t_exec - t0) * 1000, (t_took - t0) * 1000))
            res["upgrade_serve_ms"].append((time.monotonic() - t0) * 1000)
            jobs = client.stub("alice").List(pb.ListRequest(), timeout=30).jobs
            if sum(1 for j in jobs if j.state == pb.JOB_STATE_RUNNING) != n + 1:
                raise RuntimeError("not every job runs after the upgrade")
        finally:
            # SIGTERM without systemd stops every job (not only the writer
            # whose pidfd we hold), also after a failure half way.
            try:
                fake.stop(120)
            except Exception:  # noqa: BLE001 - not running any more
                pass
            kill_all(pidfds)
            fake.close()
    print("jobs=%d" % n)
    for k, v in res.items():
        print("%s=%.1f" % (k, statistics.median(v)))
        print("%s_min=%.1f" % (k, min(v)))
        print("%s_max=%.1f" % (k, max(v)))


if __name__ == "__main__":
    main()
