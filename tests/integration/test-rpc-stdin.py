#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Standard input (issue 14, item 4), against the real daemon:
- jwctl run forwards a piped stdin byte for byte (sort, a 16 MiB random file
  through sha256sum) and closes it at its EOF; -n, a stdin that is /dev/null
  and jwctl start give the job /dev/null;
- the Input call: backpressure (a job that reads nothing holds the writer
  back while the daemon's memory stays bounded; then all 64 MiB arrive in
  order), a second writer, a job without stdin, an ended job and an analyst
  are refused; a writer that goes away (cancel, or a half-close without
  eof) gives the job EOF; a job that closes its stdin ends the call with
  FAILED_PRECONDITION and the daemon lives on; SIGTERM with a writer held
  back ends the call and the daemon exits cleanly;
- Ctrl-C during a forwarding jwctl run still stops the job and exits 130."""

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rpcharness as h  # noqa: E402
from survive_util import JWCTL, one_line  # noqa: E402

ENDED = None


def jwctl_in(d, stdin, *args):
    """(exit code, stdout, stderr) of a jwctl run as alice with the given
    stdin (a file object, subprocess.DEVNULL, or bytes), bounded."""
    env = dict(os.environ, JWCTL_SERVER=d.target, JWCTL_CA=os.path.join(h.CERTS, "ca.pem"),
               JWCTL_CERT=os.path.join(h.CERTS, "alice.pem"), JWCTL_KEY=os.path.join(h.CERTS, "alice-key.pem"),
               XDG_CONFIG_HOME=h.tmpdir())
    data = stdin if isinstance(stdin, bytes) else None
    p = subprocess.Popen([JWCTL, *args], env=env, stdin=subprocess.PIPE if data is not None else stdin,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(input=data, timeout=120)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        h.fail("jwctl %s did not exit within 120 s" % (args,))
    if b"Sanitizer" in err or b"runtime error:" in err:
        h.fail("sanitizer report from jwctl: %r" % err[-2000:])
    return p.returncode, out, err


def rss_kib(pid):
    for line in h.read("/proc/%d/status" % pid).decode().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    h.fail("no VmRSS for %d" % pid)


def start(stub, pb, argv, stdin_open=True):
    return stub.Start(pb.StartRequest(argv=argv, stdin_open=stdin_open), timeout=10).job_id


def stdout_of(stub, jid):
    data, _, end = h.collect_output(stub, jid, stream=1)
    return data, end


# jwctl --------------------------------------------------------------------------

def test_jwctl_sort(d, pb, C):
    code, out, err = jwctl_in(d, b"pear\napple\nfig\n", "run", "--", "sort")
    if code != 0 or out != b"apple\nfig\npear\n":
        h.fail("printf ... | jwctl run -- sort: exit %d, out %r, err %r" % (code, out, err))


def test_jwctl_16mib_sha256(d, pb, C):
    path = os.path.join(h.tmpdir(), "random")
    data = os.urandom(16 << 20)
    with open(path, "wb") as f:
        f.write(data)
    with open(path, "rb") as f:
        code, out, err = jwctl_in(d, f, "run", "--", "sha256sum")
    want = hashlib.sha256(data).hexdigest().encode() + b"  -\n"
    if code != 0 or out != want:
        h.fail("jwctl run -- sha256sum < 16 MiB: exit %d, out %r (want %r), err %r" % (code, out, want, err))


def test_jwctl_no_stdin(d, pb, C):
    script = ["sh", "-c", "wc -c; readlink /proc/self/fd/0"]
    code, out, err = jwctl_in(d, b"not for the job\n", "run", "-n", "--", *script)
    if code != 0 or out != b"0\n/dev/null\n":
        h.fail("jwctl run -n with a pipe on stdin: exit %d, out %r, err %r" % (code, out, err))
    code, out, err = jwctl_in(d, subprocess.DEVNULL, "run", "--", *script)
    if code != 0 or out != b"0\n/dev/null\n":
        h.fail("jwctl run with stdin /dev/null: exit %d, out %r, err %r" % (code, out, err))
    # start never forwards: the job's stdin is /dev/null
    code, out, err = jwctl_in(d, b"x\n", "start", "--", "sleep", "30")
    jid = out.decode().strip()
    st = d.stub("alice").Status(pb.StatusRequest(job_id=jid), timeout=10).status
    if code != 0 or st.stdin_state != pb.STDIN_STATE_NULL:
        h.fail("jwctl start with a pipe on stdin: exit %d, %s" % (code, one_line(st)))
    d.stub("alice").Stop(pb.StopRequest(job_id=jid), timeout=10)


def test_jwctl_job_stops_reading(d, pb, C):
    """The job reads two lines of an endless stdin and exits: jwctl exits
    with its code at once, not when its own stdin ends."""
    yes = subprocess.Popen(["yes"], stdout=subprocess.PIPE)
    try:
        code, out, err = jwctl_in(d, yes.stdout, "run", "--", "sh", "-c", "head -n 2; exit 7")
    finally:
        yes.kill()
        yes.wait()
    if code != 7 or out != b"y\ny\n":
        h.fail("yes | jwctl run -- head -n 2: exit %d, out %r, err %r" % (code, out, err))


def test_jwctl_ctrl_c(d, pb, C):
    """Ctrl-C keeps its meaning while stdin is forwarded: the job is
    stopped, jwctl exits 130."""
    r, w = os.pipe()   # our end stays open: the forwarder waits on it
    env = dict(os.environ, JWCTL_SERVER=d.target, JWCTL_CA=os.path.join(h.CERTS, "ca.pem"),
               JWCTL_CERT=os.path.join(h.CERTS, "alice.pem"), JWCTL_KEY=os.path.join(h.CERTS, "alice-key.pem"),
               XDG_CONFIG_HOME=h.tmpdir())
    p = subprocess.Popen([JWCTL, "run", "--", "sh", "-c", "echo ready; cat"], env=env, stdin=r,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.close(r)
    try:
        line = p.stdout.readline()
        if line != b"ready\n":
            h.fail("expected the job's first line, got %r" % line)
        os.write(w, b"some input\n")
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
    finally:
        os.close(w)
        if p.poll() is None:
            p.kill()
            p.wait()
    if p.returncode != 130:
        h.fail("Ctrl-C of a forwarding jwctl run: exit %d, err %r" % (p.returncode, err))
    alice = d.stub("alice")
    jobs = [j for j in alice.List(pb.ListRequest(), timeout=10).jobs if j.command == "sh -c echo ready; cat"]
    st = h.wait_state(alice, jobs[-1].job_id, ENDED, timeout=20)
    if not st.stop_requested:
        h.fail("the job was not stopped: %s" % one_line(st))


# the Input call ----------------------------------------------------------------

def data_messages(pb, jid, total, block, counter, eof=True):
    first = True
    sent = 0
    while sent < total:
        n = min(block, total - sent)
        chunk = pattern(sent, n)
        m = pb.InputRequest(data=chunk)
        if first:
            m.job_id = jid
            first = False
        sent += n
        counter[0] = sent
        yield m
    if eof:
        yield pb.InputRequest(eof=True)


_PATTERN = bytes(range(256)) * 1024  # 256 KiB, a repeating sequence


def pattern(offset, n):
    out = bytearray()
    while len(out) < n:
        start = (offset + len(out)) % len(_PATTERN)
        out += _PATTERN[start:start + (n - len(out))]
    return bytes(out)


def test_backpressure(d, pb, C):
    """A job that reads nothing until told: the writer is held back and the
    daemon's memory stays bounded; then all 64 MiB arrive, in order."""
    total, block = 64 << 20, 256 << 10
    flag = os.path.join(h.tmpdir(), "go")
    alice = d.stub("alice")
    jid = start(alice, pb, ["sh", "-c", "while [ ! -e %s ]; do sleep 0.05; done; exec sha256sum" % flag])
    rss0 = rss_kib(d.proc.pid)
    counter = [0]
    result = {}

    def call():
        try:
            result["resp"] = alice.Input(data_messages(pb, jid, total, block, counter), timeout=120)
        except Exception as e:  # noqa: BLE001
            result["error"] = e
    t = threading.Thread(target=call)
    t.start()
    # the writer stops advancing: held back by the job that does not read
    last = [-1, time.monotonic()]

    def still():
        now = counter[0]
        if now != last[0]:
            last[0], last[1] = now, time.monotonic()
            return False
        return time.monotonic() - last[1] > 1.0
    h.wait_until(still, "the writer to be held back", timeout=30, interval=0.05)
    held, rss1 = counter[0], rss_kib(d.proc.pid)
    st = alice.Status(pb.StatusRequest(job_id=jid), timeout=10).status
    if held >= 32 << 20:
        h.fail("the writer got %d bytes out while the job read nothing" % held)
    if rss1 - rss0 > 48 * 1024:
        h.fail("the daemon grew by %d KiB while the job read nothing" % (rss1 - rss0))
    if st.stdin_state != pb.STDIN_STATE_WRITING:
        h.fail("stdin state while written: %s" % one_line(st))
    with open(flag, "w"):
        pass
    t.join(120)
    if t.is_alive() or "error" in result:
        h.fail("Input did not complete: %r" % result.get("error"))
    if result["resp"].bytes_written != total:
        h.fail("bytes_written %d, want %d" % (result["resp"].bytes_written, total))
    want = hashlib.sha256(pattern(0, total)).hexdigest().encode() + b"  -\n"
    out, end = stdout_of(alice, jid)
    if out != want or end.exit_code != 0 or end.stdin_state != pb.STDIN_STATE_CLOSED:
        h.fail("job's sha256 %r, want %r; %s" % (out, want, one_line(end)))
    print("     backpressure: held after %d KiB, daemon RSS +%d KiB" % (held >> 10, rss1 - rss0))


def blocking_messages(pb, jid, first_data, release):
    yield pb.InputRequest(job_id=jid, data=first_data)
    release.wait(30)


def test_refusals(d, pb, C):
    alice, bob = d.stub("alice"), d.stub("bob")
    jid = start(alice, pb, ["sleep", "60"])
    h.expect_code(lambda: bob.Input(iter([pb.InputRequest(job_id=jid, data=b"x")]), timeout=10),
                  C.PERMISSION_DENIED, "'bob' may not write the input of job %s" % jid)
    # a second writer while the first holds it
    release = threading.Event()
    first = alice.Input.future(blocking_messages(pb, jid, b"x", release), timeout=30)
    h.wait_until(lambda: alice.Status(pb.StatusRequest(job_id=jid), timeout=10).status.stdin_state ==
                 pb.STDIN_STATE_WRITING, "the first writer to attach")
    h.expect_code(lambda: alice.Input(iter([pb.InputRequest(job_id=jid, eof=True)]), timeout=10),
                  C.FAILED_PRECONDITION, "has a writer already")
    release.set()
    first.result(timeout=20)
    # its stdin had its writer: closed for good
    h.expect_code(lambda: alice.Input(iter([pb.InputRequest(job_id=jid, eof=True)]), timeout=10),
                  C.FAILED_PRECONDITION, "was closed already")
    alice.Stop(pb.StopRequest(job_id=jid), timeout=10)
    h.wait_state(alice, jid, ENDED)
    h.expect_code(lambda: alice.Input(iter([pb.InputRequest(job_id=jid, eof=True)]), timeout=10),
                  C.FAILED_PRECONDITION, "is not running")
    jid = start(alice, pb, ["sleep", "60"], stdin_open=False)
    h.expect_code(lambda: alice.Input(iter([pb.InputRequest(job_id=jid, data=b"x")]), timeout=10),
                  C.FAILED_PRECONDITION, "was started without standard input")
    alice.Stop(pb.StopRequest(job_id=jid), timeout=10)
    # charlie's job is not alice's to see
    jid = start(d.stub("charlie"), pb, ["sleep", "60"])
    h.expect_code(lambda: alice.Input(iter([pb.InputRequest(job_id=jid, data=b"x")]), timeout=10),
                  C.NOT_FOUND)
    d.stub("charlie").Stop(pb.StopRequest(job_id=jid), timeout=10)


def test_writer_gone_is_eof(d, pb, C):
    alice = d.stub("alice")
    # a writer that is cancelled
    jid = start(alice, pb, ["sh", "-c", "cat; echo EOF-SEEN"])
    release = threading.Event()
    call = alice.Input.future(blocking_messages(pb, jid, b"partial\n", release), timeout=30)
    h.wait_stdout(alice, jid, len(b"partial\n"))
    call.cancel()
    release.set()
    st = h.wait_state(alice, jid, ENDED, timeout=20)
    out, _ = stdout_of(alice, jid)
    if out != b"partial\nEOF-SEEN\n" or st.exit_code != 0:
        h.fail("a cancelled writer: out %r, %s" % (out, one_line(st)))
    # a writer that half-closes without eof: OK, and EOF for the job
    jid = start(alice, pb, ["sh", "-c", "cat; echo EOF-SEEN"])
    resp = alice.Input(iter([pb.InputRequest(job_id=jid, data=b"abc"), pb.InputRequest(data=b"def\n")]),
                       timeout=20)
    st = h.wait_state(alice, jid, ENDED, timeout=20)
    out, _ = stdout_of(alice, jid)
    if resp.bytes_written != 7 or out != b"abcdef\nEOF-SEEN\n":
        h.fail("a half-closed writer: %d bytes, out %r" % (resp.bytes_written, out))


def test_job_closes_stdin(d, pb, C):
    alice = d.stub("alice")
    jid = start(alice, pb, ["head", "-c", "5"])
    counter = [0]
    h.expect_code(lambda: alice.Input(data_messages(pb, jid, 8 << 20, 64 << 10, counter), timeout=30),
                  C.FAILED_PRECONDITION, "closed its standard input or ended")
    out, end = stdout_of(alice, jid)
    if out != pattern(0, 5) or end.exit_code != 0:
        h.fail("head -c 5: out %r, %s" % (out, one_line(end)))
    # the daemon is alive and well (no SIGPIPE)
    if d.proc.poll() is not None:
        h.fail("the daemon died: %r" % d.proc.returncode)
    alice.List(pb.ListRequest(), timeout=10)


def test_shutdown_with_writer(d, pb, C):
    """SIGTERM while a writer is held back by a job that reads nothing: the
    daemon ends the call and exits cleanly (no hang, no leak report)."""
    alice = d.stub("alice")
    jid = start(alice, pb, ["sleep", "60"])
    counter = [0]
    call = alice.Input.future(data_messages(pb, jid, 8 << 20, 256 << 10, counter), timeout=60)
    h.wait_until(lambda: alice.Status(pb.StatusRequest(job_id=jid), timeout=10).status.stdin_state ==
                 pb.STDIN_STATE_WRITING, "the writer to attach")
    h.wait_until(lambda: counter[0] >= 256 << 10, "the writer to send")
    rc = d.stop(30)
    if rc != 0:
        h.fail("daemon exit %r after SIGTERM with a writer" % rc)
    try:
        call.result(timeout=20)
        h.fail("the Input call succeeded although the daemon went away")
    except Exception as e:  # noqa: BLE001 - any RPC error is right here
        if not hasattr(e, "code"):
            raise


def main():
    global ENDED
    import grpc
    pb, _ = h.stubs()
    C = grpc.StatusCode
    ENDED = [pb.JOB_STATE_EXITED, pb.JOB_STATE_KILLED, pb.JOB_STATE_ENDED, pb.JOB_STATE_LOST]
    d = h.Daemon(args=["--stop-grace", "0.5s"])
    failures = []
    for t in (test_jwctl_sort, test_jwctl_16mib_sha256, test_jwctl_no_stdin, test_jwctl_job_stops_reading,
              test_jwctl_ctrl_c, test_backpressure, test_refusals, test_writer_gone_is_eof,
              test_job_closes_stdin):
        try:
            t(d, pb, C)
            print("ok   %s" % t.__name__)
        except Exception as e:  # noqa: BLE001 - one failure does not hide the others
            print("FAIL %s: %s" % (t.__name__, str(e).splitlines()[0] if str(e) else repr(e)))
            failures.append(t.__name__)
    try:
        test_shutdown_with_writer(d, pb, C)   # last: it stops the daemon
        print("ok   test_shutdown_with_writer")
    except Exception as e:  # noqa: BLE001
        print("FAIL test_shutdown_with_writer: %s" % (str(e).splitlines()[0] if str(e) else repr(e)))
        failures.append("test_shutdown_with_writer")
    d.stop()
    if failures:
        h.fail("; ".join(failures))


if __name__ == "__main__":
    h.run_main(main)
