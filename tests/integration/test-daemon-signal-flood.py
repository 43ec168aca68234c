#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Signals that arrive while the daemon finishes its shutdown are harmless:
SIGTERM and SIGHUP sent without pause from the first SIGTERM on until the
process is gone; it must exit 0 every round, without a crash or a
sanitizer report. (A closure posted by the signal thread late in the
shutdown used to reach the freed gRPC server: SIGSEGV.)"""

import os
import signal
import time

import rpcharness as h

ROUNDS = 12


def flood(d, signals):
    """Sends signals round-robin until the daemon exited (bounded)."""
    deadline = time.monotonic() + 20
    i = 0
    while d.proc.poll() is None:
        if time.monotonic() > deadline:
            d.kill()
            h.fail("jobworkerd did not exit within 20 s of SIGTERM; log:\n%s" % d.logtext())
        try:
            os.kill(d.proc.pid, signals[i % len(signals)])
        except ProcessLookupError:
            break
        i += 1
        time.sleep(0.0005)
    d.proc.wait(5)
    return d.proc.returncode


def main():
    for r in range(ROUNDS):
        d = h.Daemon()
        # a connection, so that gRPC has something to shut down
        d.stub("alice").List(h.stubs()[0].ListRequest(), timeout=5)
        sigs = [signal.SIGTERM] if r % 2 == 0 else [signal.SIGTERM, signal.SIGHUP]
        rc = flood(d, sigs)
        if rc != 0:
            h.fail("round %d (%s): exit status %s; log:\n%s"
                   % (r, "+".join(s.name for s in sigs), rc, d.logtext()[-3000:]))
        d.check_sanitizers()
        if d in h._daemons:
            h._daemons.remove(d)


if __name__ == "__main__":
    h.run_main(main)
