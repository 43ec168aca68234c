# SPDX-License-Identifier: MIT
"""Shared helpers of the gRPC/TLS integration tests: start the real jobworkerd
on a free loopback port with the development certificates, generate Python
stubs from the proto at test time, and make grpcio channels with their own
TLS. Every wait is bounded and the daemon is killed on every exit path.

Environment (set by tests/integration/meson.build):
  JW_JOBWORKERD   path of the jobworkerd binary
  JW_SOURCE_ROOT  top of the source tree (certs/, conf/, proto/)
"""

import atexit
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SKIP = 77
SRC = os.environ.get("JW_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
SRC = os.path.abspath(SRC)
CERTS = os.path.join(SRC, "certs")
JOBWORKERD = os.environ.get("JW_JOBWORKERD", "")

_daemons = []
_tmpdirs = []


def skip(why):
    print("SKIP: " + why)
    sys.exit(SKIP)


def fail(msg):
    raise AssertionError(msg)


def _cleanup():
    for d in list(_daemons):
        d.kill()
    for t in _tmpdirs:
        shutil.rmtree(t, ignore_errors=True)


atexit.register(_cleanup)


def _on_signal(signo, frame):
    # meson's timeout sends SIGTERM: run the cleanup through SystemExit
    sys.exit(128 + signo)


signal.signal(signal.SIGTERM, _on_signal)


def tmpdir():
    t = tempfile.mkdtemp(prefix="jw-rpc-test-")
    os.chmod(t, 0o755)
    _tmpdirs.append(t)
    return t


def read(path):
    with open(path, "rb") as f:
        return f.read()


_stubs = None


def stubs():
    """(pb2, pb2_grpc) generated from proto/ into a temporary directory."""
    global _stubs
    if _stubs:
        return _stubs
    try:
        import grpc  # noqa: F401
        from grpc_tools import protoc
    except ImportError as e:
        skip("python3-grpcio / python3-grpc-tools missing: %s" % e)
    out = tmpdir()
    rc = protoc.main(["protoc", "-I" + os.path.join(SRC, "proto"), "--python_out=" + out,
                      "--grpc_python_out=" + out, os.path.join(SRC, "proto/jobworker/v1/jobworker.proto")])
    if rc != 0:
        fail("protoc failed: %d" % rc)
    sys.path.insert(0, out)
    from jobworker.v1 import jobworker_pb2, jobworker_pb2_grpc
    _stubs = (jobworker_pb2, jobworker_pb2_grpc)
    return _stubs


def check_prerequisites():
    if not JOBWORKERD or not os.access(JOBWORKERD, os.X_OK):
        skip("jobworkerd binary not found (JW_JOBWORKERD=%r)" % JOBWORKERD)
    for f in ("ca.pem", "server.pem", "server-key.pem", "alice.pem", "bob.pem", "charlie.pem"):
        if not os.path.exists(os.path.join(CERTS, f)):
            skip("development certificate certs/%s missing" % f)
    stubs()


class Daemon:
    """A jobworkerd on 127.0.0.1:<free port>."""

    def __init__(self, policy=None, args=(), state_dir=None, wait=True, env=None, pass_fds=(), preexec_fn=None,
                 listen=True):
        self.dir = tmpdir()
        self.state_dir = state_dir or os.path.join(self.dir, "state")
        if policy is None:
            policy = read(os.path.join(SRC, "conf/policy.conf")).decode()
        self.policy_path = os.path.join(self.dir, "policy.conf")
        with open(self.policy_path, "w") as f:
            f.write(policy)
        self.log_path = os.path.join(self.dir, "jobworkerd.log")
        self.argv = [JOBWORKERD,
                     "--config", "/dev/null",
                     "--cert", os.path.join(CERTS, "server.pem"),
                     "--key", os.path.join(CERTS, "server-key.pem"),
                     "--ca", os.path.join(CERTS, "ca.pem"),
                     "--policy", self.policy_path,
                     "--state-dir", self.state_dir,
                     "--log-level", "debug"] + (["--listen", "127.0.0.1:0"] if listen else []) + list(args)
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
                                     env=env, pass_fds=pass_fds, preexec_fn=preexec_fn)
        _daemons.append(self)
        self.port = None
        if wait:
            self.wait_ready()

    def logtext(self):
        return read(self.log_path).decode(errors="replace")

    def wait_log(self, pattern, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.logtext())
            if m:
                return m
            if self.proc.poll() is not None:
                m = re.search(pattern, self.logtext())
                if m:
                    return m
                fail("jobworkerd exited with %s while waiting for %r; log:\n%s"
                     % (self.proc.returncode, pattern, self.logtext()))
            time.sleep(0.02)
        fail("timed out waiting for %r in the log:\n%s" % (pattern, self.logtext()))

    def wait_ready(self):
        # bounded generously: start-up is quick, but not on a loaded machine
        m = self.wait_log(r"listening on 127\.0\.0\.1:(\d+)", timeout=30)
        self.port = int(m.group(1))
        self.wait_log(r"ready:", timeout=30)

    @property
    def target(self):
        # The server certificate has IP:127.0.0.1 as a SAN.
        return "127.0.0.1:%d" % self.port

    def channel(self, user, own_connection=True):
        import grpc
        creds = grpc.ssl_channel_credentials(read(os.path.join(CERTS, "ca.pem")),
                                             read(os.path.join(CERTS, user + "-key.pem")),
                                             read(os.path.join(CERTS, user + ".pem")))
        opts = [("grpc.use_local_subchannel_pool", 1)] if own_connection else []
        opts.append(("grpc.max_receive_message_length", 16 * 1024 * 1024))
        opts.append(("grpc.max_send_message_length", 16 * 1024 * 1024))
        return grpc.secure_channel(self.target, creds, options=opts)

    def stub(self, user):
        _, pbg = stubs()
        return pbg.JobWorkerStub(self.channel(user))

    def holds(self, sock):
        """True once the daemon has accepted the TCP connection whose client
        end is sock: it holds a descriptor of the server end (found by its
        inode in /proc/net/tcp)."""
        cport = sock.getsockname()[1]
        inode = None
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                local, remote = fields[1], fields[2]
                if int(local.split(":")[1], 16) == self.port and int(remote.split(":")[1], 16) == cport:
                    inode = fields[9]
        if inode is None or inode == "0":
            return False
        fddir = "/proc/%d/fd" % self.proc.pid
        for fd in os.listdir(fddir):
            try:
                if os.readlink(os.path.join(fddir, fd)) == "socket:[%s]" % inode:
                    return True
            except OSError:
                pass
        return False

    def signal(self, signo):
        self.proc.send_signal(signo)

    def stop(self, timeout=20.0):
        """SIGTERM, wait; returns the exit status. Kills it if it hangs."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                fail("jobworkerd did not exit within %.0fs of SIGTERM; log:\n%s" % (timeout, self.logtext()))
        if self in _daemons:
            _daemons.remove(self)
        self.check_sanitizers()
        return self.proc.returncode

    def check_sanitizers(self):
        log = self.logtext()
        if "Sanitizer" in log or "runtime error:" in log:
            fail("sanitizer report in the daemon's log:\n%s" % log)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        if self in _daemons:
            _daemons.remove(self)


def stable_port():
    """A free port on 127.0.0.1 that the kernel never hands out by itself:
    below its ephemeral range (or above it, where that starts too low).
    A port the kernel gave a daemon at bind(port 0) is ephemeral: once the
    daemon is killed it may be taken at once as the source port of any
    connection on the machine, or by another test's daemon, and a restart on
    the same address then fails with EADDRINUSE (seen once in a loaded run
    of test-jwctl-reconnect)."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        lo, hi = (int(x) for x in f.read().split())
    span = (max(1024, lo - 16384), lo) if lo - 1024 >= 4096 else (hi + 1, 65536)
    for _ in range(200):
        port = random.randrange(*span)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    fail("no free port in %d..%d" % span)


def daemon_on_stable_port(args=(), **kw):
    """A Daemon on a stable_port(), for a test that restarts it on the same
    address. Another test may probe the same port at the same moment: a
    start that finds it taken tries another (at most five)."""
    for attempt in range(5):
        try:
            return Daemon(listen=False, args=list(args) + ["--listen", "127.0.0.1:%d" % stable_port()], **kw)
        except AssertionError as e:
            if "Address already in use" not in str(e) or attempt == 4:
                raise


def expect_code(fn, code, contains=None):
    """Calls fn(), expects a grpc.RpcError with code; returns its details."""
    import grpc
    try:
        r = fn()
    except grpc.RpcError as e:
        if e.code() != code:
            fail("expected %s, got %s: %s" % (code, e.code(), e.details()))
        if contains and contains not in (e.details() or ""):
            fail("expected %r in the message, got %r" % (contains, e.details()))
        return e.details()
    fail("expected %s, got success: %r" % (code, r))


def wait_state(stub, job_id, states, timeout=10.0):
    pb, _ = stubs()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = stub.Status(pb.StatusRequest(job_id=job_id), timeout=5).status
        if st.state in states:
            return st
        time.sleep(0.02)
    fail("job %s did not reach %s within %.0fs (last %s)" % (job_id, states, timeout, st))


def wait_until(pred, what, timeout=20.0, interval=0.02):
    """Polls pred() until it returns something true (returned); fails after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            fail("timed out after %.0fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def wait_stdout(stub, job_id, at_least=1, timeout=20.0):
    """Waits until the job has written at least at_least bytes to stdout: the
    way a test knows a job has got past a point of its script (a trap
    installed, a file written) — the job says so with a line."""
    pb, _ = stubs()

    def enough():
        st = stub.Status(pb.StatusRequest(job_id=job_id), timeout=10).status
        return st if st.stdout_bytes >= at_least else None
    return wait_until(enough, "%d bytes of stdout from job %s" % (at_least, job_id), timeout)


def collect_output(stub, job_id, stream=0, offset=0, follow=True, timeout=30.0):
    """(bytes by view, [chunks], end status) of one Output call."""
    pb, _ = stubs()
    data = bytearray()
    chunks = []
    end = None
    for m in stub.Output(pb.OutputRequest(job_id=job_id, stream=stream, offset=offset, follow=follow),
                         timeout=timeout):
        if m.HasField("chunk"):
            if end is not None:
                fail("chunk after the end message")
            if m.chunk.offset != offset + len(data):
                fail("chunk offset %d, expected %d" % (m.chunk.offset, offset + len(data)))
            data += m.chunk.data
            chunks.append(m.chunk)
        elif m.HasField("end"):
            if end is not None:
                fail("two end messages")
            end = m.end
        else:
            fail("empty OutputResponse")
    if end is None:
        fail("stream ended without an end message")
    return bytes(data), chunks, end


def run_main(main):
    """Runs main(); prints the failure and exits 1, or exits 0."""
    try:
        check_prerequisites()
        main()
    except AssertionError as e:
        import traceback
        traceback.print_exc()
        print("FAIL: %s" % e)
        sys.exit(1)
    print("PASS")
    sys.exit(0)
