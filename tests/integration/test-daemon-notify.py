#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""sd_notify from jobworkerd, read from a test NOTIFY_SOCKET: READY=1 with a
STATUS, STATUS= changing as jobs run (rate-limited), WATCHDOG=1 when
WATCHDOG_USEC is set, RELOADING=1 (with MONOTONIC_USEC) then READY=1 on
SIGHUP, STOPPING=1 on SIGTERM."""

import os
import re
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rpcharness as h  # noqa: E402


class NotifySocket:
    def __init__(self):
        self.path = os.path.join(h.tmpdir(), "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []

    def wait_for(self, pred, what, timeout=10.0):
        """Reads datagrams until pred(message) holds; returns that message."""
        for m in self.messages:
            if pred(m):
                return m
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                m = self.sock.recv(4096).decode()
            except socket.timeout:
                break
            self.messages.append(m)
            if pred(m):
                return m
        h.fail("no %s within %.0fs; got %r" % (what, timeout, self.messages))


def fields(m):
    return dict(line.split("=", 1) for line in m.split("\n") if "=" in line)


def main():
    h.check_prerequisites()
    pb, _ = h.stubs()
    ns = NotifySocket()
    env = dict(os.environ, NOTIFY_SOCKET=ns.path, WATCHDOG_USEC="400000")
    env.pop("WATCHDOG_PID", None)
    d = h.Daemon(env=env)

    ready = ns.wait_for(lambda m: "READY=1" in m, "READY=1")
    status = fields(ready).get("STATUS", "")
    if not re.match(r"0 running, 0 finished, \d+ connections, 0 subscribers", status):
        h.fail("unexpected first STATUS=%r" % status)

    # The watchdog pings at half the interval: several within a second.
    t0 = time.monotonic()
    ns.wait_for(lambda m: m == "WATCHDOG=1", "WATCHDOG=1", timeout=2)
    if time.monotonic() - t0 > 1.0:
        h.fail("first WATCHDOG=1 came too late")

    # A running job shows up in STATUS=, then its end.
    stub = d.stub("alice")
    # The job runs until the test has seen it counted (a file tells it to end):
    # a timed job could end before the rate-limited update.
    gate = os.path.join(h.tmpdir(), "go")
    job = stub.Start(pb.StartRequest(argv=["sh", "-c", "while [ ! -e %s ]; do sleep 0.02; done" % gate]),
                     timeout=10).job_id
    ns.wait_for(lambda m: "STATUS=1 running" in m, "STATUS with 1 running")
    open(gate, "w").close()
    h.wait_state(stub, job, [pb.JOB_STATE_EXITED], timeout=10)
    ns.wait_for(lambda m: "STATUS=0 running, 1 finished" in m, "STATUS with 1 finished", timeout=5)

    # Rate limit: 20 quick jobs (40 changes) produce at most one STATUS
    # update a second. The bound follows the time they took, which load
    # stretches: a fixed count would fail on a slow machine.
    before = sum(1 for m in ns.messages if m.startswith("STATUS="))
    t0 = time.monotonic()
    ids = [stub.Start(pb.StartRequest(argv=["true"]), timeout=10).job_id for _ in range(20)]
    for i in ids:
        h.wait_state(stub, i, [pb.JOB_STATE_EXITED], timeout=10)
    ns.wait_for(lambda m: "STATUS=0 running, 21 finished" in m, "STATUS with 21 finished", timeout=5)
    elapsed = time.monotonic() - t0
    updates = sum(1 for m in ns.messages if m.startswith("STATUS=")) - before
    if updates > int(elapsed) + 2:
        h.fail("%d STATUS updates for 20 jobs within %.1f s: not rate-limited" % (updates, elapsed))
    if elapsed > 15:
        print("note: the 20 jobs took %.1f s; the rate-limit check was weak" % elapsed)

    # SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1.
    n = len(ns.messages)
    d.signal(signal.SIGHUP)
    rel = ns.wait_for(lambda m: "RELOADING=1" in m, "RELOADING=1")
    if not re.search(r"MONOTONIC_USEC=\d+", rel):
        h.fail("RELOADING=1 without MONOTONIC_USEC: %r" % rel)
    idx = ns.messages.index(rel)
    ns.wait_for(lambda m: "READY=1" in m and ns.messages.index(m) > idx, "READY=1 after the reload")
    if len(ns.messages) <= n:
        h.fail("no messages after SIGHUP")

    # SIGTERM: STOPPING=1, then a clean exit.
    job = stub.Start(pb.StartRequest(argv=["sleep", "30"]), timeout=10).job_id
    d.signal(signal.SIGTERM)
    ns.wait_for(lambda m: "STOPPING=1" in m, "STOPPING=1")
    rc = d.stop()
    if rc != 0:
        h.fail("jobworkerd exited %d after SIGTERM" % rc)
    print("ok: READY, STATUS, WATCHDOG, RELOADING, STOPPING")


h.run_main(main)
