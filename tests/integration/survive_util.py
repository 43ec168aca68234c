# SPDX-License-Identifier: MIT
"""What the tests of jobs outliving the daemon share (issue 12): a writer
of a known sequence and its expected bytes, a kernel probe, a client for a
daemon run by fakesystemd."""

import fcntl
import os
import struct
import subprocess

import rpcharness as h

LINE = "%08d\n"
WRITER = ("import sys, time\n"
          "i = 0\n"
          "while True:\n"
          "    sys.stdout.write('%08d\\n' % i)\n"
          "    sys.stdout.flush()\n"
          "    i += 1\n"
          "    if i % 50 == 0:\n"
          "        time.sleep(0.01)\n")
PIDFD_GET_INFO = 0xC040FF0B   # _IOWR(0xFF, 11, struct pidfd_info), 64 bytes (VER0)
PIDFD_INFO_EXIT = 0x08


def one_line(msg):
    """A protobuf message's text on one line, for failure messages."""
    return " ".join(str(msg).split())


def expected(n):
    """The first n bytes the writer produces."""
    out = []
    size, i = 0, 0
    while size < n:
        out.append(LINE % i)
        size += 9
        i += 1
    return "".join(out).encode()[:n]


def kernel_has_pidfd_info_exit():
    """Probes PIDFD_GET_INFO with PIDFD_INFO_EXIT: a child's exit status read
    through its pidfd after it was reaped."""
    p = subprocess.Popen(["sh", "-c", "exit 42"])
    fd = os.pidfd_open(p.pid)
    try:
        p.wait(10)
        buf = bytearray(struct.pack("<Q", PIDFD_INFO_EXIT) + bytes(56))
        try:
            fcntl.ioctl(fd, PIDFD_GET_INFO, buf, True)
        except OSError:
            return False
        mask = struct.unpack_from("<Q", buf, 0)[0]
        status = struct.unpack_from("<i", buf, 60)[0]
        return bool(mask & PIDFD_INFO_EXIT) and os.WEXITSTATUS(status) == 42
    finally:
        os.close(fd)


class Client:
    """What the rpcharness helpers need of a daemon: a target and stubs."""
    channel = h.Daemon.channel
    stub = h.Daemon.stub

    def __init__(self, port):
        self.port = port

    @property
    def target(self):
        return "127.0.0.1:%d" % self.port


def process_gone(pid):
    """True once pid has been reaped (by PID 1 here, about 1.6 s late)."""
    return not os.path.exists("/proc/%d" % pid)


def fake_daemon(binary, d, restart_sec=0.1, debug=False):
    """A FakeSystemd (fakesystemd.py) that runs binary as jobworker.service
    would, its state, policy and log in the directory d; not started."""
    import shutil
    import fakesystemd
    policy = os.path.join(d, "policy.conf")
    shutil.copy(os.path.join(h.SRC, "conf/policy.conf"), policy)
    argv = [binary, "--config", "/dev/null",
            "--cert", os.path.join(h.CERTS, "server.pem"), "--key", os.path.join(h.CERTS, "server-key.pem"),
            "--ca", os.path.join(h.CERTS, "ca.pem"), "--policy", policy,
            "--state-dir", os.path.join(d, "state")] + (["--log-level", "debug"] if debug else [])
    return fakesystemd.FakeSystemd(argv, listen_socks=["jobworker.socket"], fd_store_max=4096,
                                   restart_sec=restart_sec, log_path=os.path.join(d, "jobworkerd.log"))


def kill_all(pidfds):
    """SIGKILLs the processes behind pidfds (never a reused pid) and closes them."""
    import signal
    for fd in pidfds:
        try:
            signal.pidfd_send_signal(fd, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.close(fd)


def check_daemon_stops_clean(fake):
    """SIGTERM: exit 0, and no sanitizer report in its log."""
    rc = fake.stop(20)
    if rc != 0:
        h.fail("daemon exit %r after SIGTERM" % rc)
    log = fake.logtext()
    if "Sanitizer" in log or "runtime error:" in log:
        h.fail("sanitizer report in the daemon's log")


def jwctl(target, *args, stdout=subprocess.PIPE, **extra_env):
    """A jwctl (of this build) as alice in the background; stderr to a file
    (p.errpath) read at the end."""
    errpath = os.path.join(h.tmpdir(), "stderr")
    env = dict(os.environ, JWCTL_SERVER=target, JWCTL_CA=os.path.join(h.CERTS, "ca.pem"),
               JWCTL_CERT=os.path.join(h.CERTS, "alice.pem"), JWCTL_KEY=os.path.join(h.CERTS, "alice-key.pem"),
               XDG_CONFIG_HOME=h.tmpdir())
    env.pop("JWCTL_RECONNECT_TIMEOUT", None)
    env.update(extra_env)
    with open(errpath, "wb") as err:
        p = subprocess.Popen([JWCTL, *args], env=env, stdin=subprocess.DEVNULL, stdout=stdout, stderr=err)
    p.errpath = errpath
    return p


def finish(p, timeout=60):
    """(exit code, stdout, stderr) of a jwctl started by jwctl(); bounded; a
    sanitizer report fails."""
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        h.fail("jwctl %s did not exit within %ds; stderr: %r" % (p.args[1:], timeout, h.read(p.errpath)))
    err = h.read(p.errpath)
    if b"Sanitizer" in err or b"runtime error:" in err:
        h.fail("sanitizer report from jwctl %s: %r" % (p.args[1:], err))
    return p.returncode, out or b"", err


JWCTL = os.path.join(os.environ.get("JW_BUILD_ROOT") or os.path.dirname(h.JOBWORKERD), "jwctl")
