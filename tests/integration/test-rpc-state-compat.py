#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Issue 12, item 8: this daemon takes over the state directory of release
0.1.0 (tests/fixtures/state-0.1.0.tar.gz, made by make-state-0.1.0.py with
a jobworkerd built from the tag v0.1.0): every job listed with its state
and exit code, every log byte-exact; the job that was running when that
daemon was SIGKILLed is lost (0.1.0 kept no fds). A record of a newer
format than this daemon knows is still loaded, and the journal says so."""

import json
import os
import shutil
import sys
import tarfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rpcharness as h  # noqa: E402

FIXTURE = os.path.join(h.SRC, "tests/fixtures/state-0.1.0.tar.gz")


def main():
    pb, _ = h.stubs()
    d = h.tmpdir()
    with tarfile.open(FIXTURE) as t:
        t.extractall(d)
    state = os.path.join(d, "state")
    ids = json.load(open(os.path.join(state, "ids.json")))
    # A copy of a finished job with its record claiming a newer version.
    newer = "00000000-0000-4000-8000-00000000abcd"
    shutil.copytree(os.path.join(state, "jobs", ids["exit3"]), os.path.join(state, "jobs", newer))
    path = os.path.join(state, "jobs", newer, "status")
    text = open(path).read()
    text = "\n".join("version=99" if ln.startswith("version=") else ("id=" + newer if ln.startswith("id=") else ln)
                     for ln in text.splitlines()) + "\nsome_future_key=1\n"
    open(path, "w").write(text)

    daemon = h.Daemon(state_dir=state)
    s = daemon.stub("alice")
    st = {k: s.Status(pb.StatusRequest(job_id=v), timeout=10).status for k, v in ids.items()}
    if st["exit3"].state != pb.JOB_STATE_EXITED or st["exit3"].exit_code != 3:
        h.fail("exit3: %s" % st["exit3"])
    if st["seq"].state != pb.JOB_STATE_EXITED or st["seq"].exit_code != 0:
        h.fail("seq: %s" % st["seq"])
    if st["stopped"].state != pb.JOB_STATE_KILLED or st["stopped"].signal != 15 or not st["stopped"].stop_requested:
        h.fail("stopped: %s" % st["stopped"])
    if st["running"].state != pb.JOB_STATE_LOST:
        h.fail("running (its daemon SIGKILLed, 0.1.0 kept no fds): %s" % st["running"])
    out, _, _ = h.collect_output(s, ids["exit3"], stream=pb.STREAM_STDOUT, follow=False)
    err, _, _ = h.collect_output(s, ids["exit3"], stream=pb.STREAM_STDERR, follow=False)
    if out != b"out-a\n" or err != b"err-a\n":
        h.fail("exit3's output: %r / %r" % (out, err))
    out, _, _ = h.collect_output(s, ids["seq"], stream=pb.STREAM_STDOUT, follow=False)
    if out != b"".join(b"%d\n" % i for i in range(1, 20001)):
        h.fail("seq's output is not seq 1 20000 (%d bytes)" % len(out))
    nst = s.Status(pb.StatusRequest(job_id=newer), timeout=10).status
    if nst.state != pb.JOB_STATE_EXITED or nst.exit_code != 3:
        h.fail("the record of a newer version: %s" % nst)
    daemon.wait_log(r"1 job record is of a newer format \(version 99\) than this daemon's \(2\)", timeout=10)
    # New jobs run beside the old ones.
    j = s.Start(pb.StartRequest(argv=["true"]), timeout=10).job_id
    if h.wait_state(s, j, [pb.JOB_STATE_EXITED]).exit_code != 0:
        h.fail("a new job beside the old ones")


h.run_main(main)
