# SPDX-License-Identifier: MIT
"""A test service manager that runs one service the way systemd 252 runs a
Type=notify unit with socket activation and a file-descriptor store, so that
the restart paths of jobworkerd can be tested on a host without systemd as
PID 1. Standard library only.

The one idea: the fake keeps, in this process, what systemd keeps in PID 1 -
the listening sockets, the notify socket and the stored fds - and hands them
to every new main process exactly as systemd would (LISTEN_FDS from fd 3,
LISTEN_PID = the new process's own pid, LISTEN_FDNAMES), so that a test can
SIGKILL the service and start it again and see what a crash under systemd
would leave.

What is emulated (systemd 252, src/core/service.c and manager.c):
- Start: the service runs in a session of its own (systemd calls setsid()),
  stdin /dev/null, stdout+stderr to a log file (the journal), with
  NOTIFY_SOCKET and, when there are fds to pass, LISTEN_FDS, LISTEN_PID and
  LISTEN_FDNAMES. LISTEN_PID must be the pid of the process that gets them;
  a small exec wrapper (Python, run before the service and replaced by it,
  so the pid does not change) moves the fds to 3, 4, ... and sets it.
  Python ignores SIGPIPE and SIGXFSZ at start; the wrapper puts them back
  to the default before exec, as systemd hands a clean disposition table.
- Order of the passed fds: the socket fds first (in listen_socks order),
  then the fd store. systemd's service_collect_fds() walks its fd-store list
  from the head, and service_add_fd_store() adds with LIST_PREPEND: the most
  recently stored fd comes first. (Within one message the fds come out of an
  FDSet, a hash set: no order is promised at all.) fd_order="systemd" (the
  default) reproduces newest-first; "store" gives the order of arrival,
  "shuffle" a random order each start - a service must go by the names.
- Notify messages (sd_notify(3)): one datagram of at most 4096 bytes, lines
  KEY=VALUE, credentials required (SO_PASSCRED), up to 768 fds per message
  accepted (the kernel sends at most 253 per sendmsg). A message with
  truncated data or control data is ignored and its fds closed, as systemd
  does. With notify_access="main" (NotifyAccess=main, the unit's setting)
  only the main pid is heard; "all" hears every process. READY=1,
  RELOADING=1, STOPPING=1, STATUS=, MAINPID= (recorded, not followed),
  ERRNO=, WATCHDOG=1, WATCHDOG_USEC=, EXTEND_TIMEOUT_USEC=, MONOTONIC_USEC=
  and BARRIER=1 (its fd is closed) are understood.
- The fd store: FDSTORE=1 keeps the message's fds under FDNAME= ("stored"
  when missing or invalid: an FDNAME must be printable ASCII without ':' and
  at most 255 characters); FDPOLL=0 keeps an fd even when it reports
  POLLHUP/POLLERR, any other fd is dropped when it does. systemd watches
  that with epoll all the time; the fake checks with poll() every
  poll_interval (100 ms), and also whenever the main process has exited and
  before each start. An fd that refers to the same open file description as
  one already stored (kcmp(KCMP_FILE)) is not stored twice. Past
  fd_store_max (FileDescriptorStoreMax=) the rest of the message's fds are
  closed and counted in fds_over_max. FDSTOREREMOVE=1 with FDNAME= closes
  every stored fd of that name (systemd handles FDSTOREREMOVE=1 and does not
  then look at FDSTORE=1 in the same message). fds sent without FDSTORE=1
  are closed (counted in fds_unexpected).
- The store survives a crash (kill9()/restart("crash"), Restart= would
  restart it) and restart("restart") (systemctl restart); stop() flushes it
  (a stop followed by a start: FileDescriptorStorePreserve= is 254+). If the
  service exits by itself the store is kept until the next start() or
  stop(): the fake never restarts on its own.
- Messages the service sent before it died are read before its death is
  acted on (systemd gives the notify socket priority over SIGCHLD), so an
  fd stored just before a crash is not lost.

What is not emulated: the FDSTORE= environment variable (systemd 254+
tells the service its FileDescriptorStoreMax= that way; 252 does not), cgroups (KillMode= is always "process": stop and
restart signal the main pid only; the service's children stay), the start
rate limit, timeouts of the start, the watchdog's action, D-Bus.

Reaping: the fake is the parent of the main process only. A job the service
started is the service's child; when the service dies it is reparented to
the nearest subreaper or to PID 1, as under systemd. The fake is NOT a
subreaper unless subreaper=True: then this whole Python process becomes
one (prctl(PR_SET_CHILD_SUBREAPER) cannot be undone for a part of it), and
the fake reaps exited orphans that belong to one of the sessions its
services ran in (a job that calls setsid() itself is not recognised). On
this host PID 1 reaps orphans about 1.6 s late, so exit information of an
orphaned job (a pidfd's PIDFD_INFO_EXIT) appears only then: tests wait for
it with a bound.
"""

import atexit
import ctypes
import os
import random
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

NOTIFY_BUFFER_MAX = 4096
NOTIFY_FD_MAX = 768
FDNAME_MAX = 255
PR_SET_CHILD_SUBREAPER = 36
KCMP_FILE = 0
_SYS_KCMP = {"x86_64": 312, "aarch64": 272, "riscv64": 272, "ppc64le": 341, "s390x": 343}

# Runs in the service's pid before the service: moves the fds named in
# argv[1] to 3, 4, ..., sets LISTEN_PID / WATCHDOG_PID to its own pid,
# resets the signals Python ignores, closes every other fd, execs argv[2:].
_WRAPPER = r"""
import fcntl, os, signal, sys
src = [int(x) for x in sys.argv[1].split(",") if x]
n = len(src)
base = max(src + [2 + n]) + 1
tmp = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, base) for fd in src]
for i, fd in enumerate(tmp):
    os.dup2(fd, 3 + i, inheritable=True)
os.closerange(3 + n, os.sysconf("SC_OPEN_MAX"))
if n:
    os.environ["LISTEN_PID"] = str(os.getpid())
if "WATCHDOG_USEC" in os.environ:
    os.environ["WATCHDOG_PID"] = str(os.getpid())
# systemd starts a service with every signal at its default: Python's own
# ignores (SIGPIPE, SIGXFSZ) and whatever the test's shell ignored (a
# background job of a non-interactive shell ignores SIGINT and SIGQUIT).
for sig in range(1, signal.NSIG):
    try:
        if signal.getsignal(sig) == signal.SIG_IGN:
            signal.signal(sig, signal.SIG_DFL)
    except (OSError, ValueError):
        pass
signal.pthread_sigmask(signal.SIG_SETMASK, [])
os.execvp(sys.argv[2], sys.argv[2:])
"""

_instances = []


class FakeSystemdError(AssertionError):
    """A bounded wait ran out or the service did something a test forbids
    (an AssertionError, so the test harnesses report it as a failure)."""


class StoredFd:
    __slots__ = ("fd", "name", "poll")

    def __init__(self, fd, name, poll):
        self.fd, self.name, self.poll = fd, name, poll


def fdname_is_valid(name):
    """systemd's fdname_is_valid(): printable ASCII, no ':', 1..255 chars."""
    if not name or len(name) > FDNAME_MAX:
        return False
    return all(" " <= c <= "~" and c != ":" for c in name)


def _kcmp_same_file(fd_a, fd_b):
    """True when both fds are one open file description (kcmp KCMP_FILE);
    falls back to comparing device and inode where kcmp is missing."""
    nr = _SYS_KCMP.get(os.uname().machine)
    if nr is not None:
        libc = ctypes.CDLL(None, use_errno=True)
        pid = os.getpid()
        r = libc.syscall(ctypes.c_long(nr), ctypes.c_int(pid), ctypes.c_int(pid), ctypes.c_int(KCMP_FILE),
                         ctypes.c_ulong(fd_a), ctypes.c_ulong(fd_b))
        if r >= 0:
            return r == 0
    a, b = os.fstat(fd_a), os.fstat(fd_b)
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _hung_up(fds):
    """The subset of fds that report POLLHUP or POLLERR (or are invalid)."""
    if not fds:
        return set()
    p = select.poll()
    for fd in fds:
        p.register(fd, 0)
    return {fd for fd, ev in p.poll(0) if ev & (select.POLLHUP | select.POLLERR | select.POLLNVAL)}


class FakeSystemd:
    """One service under a fake systemd. argv: the service's command line;
    env: its environment (default: this process's, without the variables
    systemd sets); listen_socks: names of TCP listening sockets the fake
    opens on 127.0.0.1 (port(name) tells the port), or (name, socket)
    pairs of sockets the fake takes over. Every wait is bounded."""

    def __init__(self, argv, env=None, listen_socks=(), fd_store_max=1024, restart_sec=0.1,
                 notify_access="main", fd_order="systemd", subreaper=False, watchdog_usec=0,
                 log_path=None, poll_interval=0.1, stop_timeout=30.0):
        assert notify_access in ("main", "all")
        assert fd_order in ("systemd", "store", "shuffle")
        self.argv = list(argv)
        base = dict(os.environ if env is None else env)
        for k in ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "WATCHDOG_USEC",
                  "WATCHDOG_PID"):
            base.pop(k, None)
        if watchdog_usec:
            base["WATCHDOG_USEC"] = str(int(watchdog_usec))
        self.env = base
        self.fd_store_max = fd_store_max
        self.restart_sec = restart_sec
        self.notify_access = notify_access
        self.fd_order = fd_order
        self.poll_interval = poll_interval
        self.stop_timeout = stop_timeout
        self.dir = tempfile.mkdtemp(prefix="fakesystemd-")
        self.log_path = log_path or os.path.join(self.dir, "service.log")
        self.listen = []  # (name, socket)
        for item in listen_socks:
            if isinstance(item, str):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", 0))
                s.listen(socket.SOMAXCONN)
                self.listen.append((item, s))
            else:
                self.listen.append((item[0], item[1]))
        self.notify_path = os.path.join(self.dir, "notify")
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
        self.notify.bind(self.notify_path)
        self.notify.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        try:
            self.notify.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE, as systemd
        except OSError:
            pass
        self.subreaper = subreaper
        if subreaper:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
        self._sessions = set()
        self._cond = threading.Condition()
        self._store = []           # StoredFd, in order of arrival
        self.proc = None
        self._pidfd = -1
        self.state = "inactive"    # inactive, activating, active, reloading, deactivating
        self.status = ""           # the last STATUS=
        self.errno = None          # the last ERRNO=
        self.notified_mainpid = None
        self.watchdog_pings = 0
        self.watchdog_usec_notified = None
        self.messages = []         # (pid, [lines], number of fds) of every message heard
        self.ignored = []          # (reason, pid) of messages not heard
        self.dropped = []          # (name, reason) of fds the store closed on its own
        self.fds_over_max = 0
        self.fds_unexpected = 0
        self.fds_duplicate = 0
        self.starts = 0
        self.exits = []            # returncode of every main process (Popen style: -9 = SIGKILL)
        self._start_gen = 0
        self._ready_gen = -1
        self._stopping_gen = -1
        self._exited_gen = -1
        self._closing = False
        self._log = open(self.log_path, "ab")
        self._thread = threading.Thread(target=self._run, name="fakesystemd", daemon=True)
        self._thread.start()
        _instances.append(self)

    # ------------------------------------------------------------------ info
    def port(self, name=None):
        """The TCP port of the listening socket name (default: the first)."""
        for n, s in self.listen:
            if name is None or n == name:
                return s.getsockname()[1]
        raise KeyError(name)

    @property
    def main_pid(self):
        p = self.proc
        return p.pid if p is not None and p.returncode is None else None

    def stored_fds(self):
        """[(name, fd)] in the order the next start passes them (after the
        listening sockets). The fds stay the fake's: dup them to keep one."""
        with self._cond:
            return [(e.name, e.fd) for e in self._ordered()]

    def logtext(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def _ordered(self):
        if self.fd_order == "store":
            return list(self._store)
        if self.fd_order == "shuffle":
            s = list(self._store)
            random.shuffle(s)
            return s
        return list(reversed(self._store))

    # ----------------------------------------------------------- lifecycle
    def start(self):
        """Starts the main process with the listening sockets and the fd
        store; returns its pid. Does not wait for READY=1 (wait_ready)."""
        with self._cond:
            if self.main_pid is not None:
                raise FakeSystemdError("start: the service is running (pid %d)" % self.main_pid)
            self._drain()
            self._check_store()
            passed = [s.fileno() for _, s in self.listen]
            names = [n for n, _ in self.listen]
            for e in self._ordered():
                passed.append(e.fd)
                names.append(e.name)
            env = dict(self.env, NOTIFY_SOCKET=self.notify_path)
            if passed:
                env["LISTEN_FDS"] = str(len(passed))
                env["LISTEN_FDNAMES"] = ":".join(names)
            argv = [sys.executable, "-I", "-S", "-c", _WRAPPER, ",".join(map(str, passed))] + self.argv
            self._start_gen += 1
            self.proc = subprocess.Popen(argv, env=env, pass_fds=passed, stdin=subprocess.DEVNULL,
                                         stdout=self._log, stderr=self._log, start_new_session=True)
            self._sessions.add(self.proc.pid)
            try:
                self._pidfd = os.pidfd_open(self.proc.pid)
            except OSError:
                self._pidfd = -1
            self.starts += 1
            self.state = "activating"
            self._cond.notify_all()
            return self.proc.pid

    def wait_ready(self, timeout=30.0):
        """Waits for READY=1 from the current main process."""
        gen = self._start_gen
        self._wait(lambda: self._ready_gen == gen or self._exited_gen == gen, timeout, "READY=1")
        if self._ready_gen != gen:
            raise FakeSystemdError("the service exited (%s) before READY=1; log:\n%s"
                                   % (self.exits[-1] if self.exits else "?", self.logtext()))

    def wait_stopping(self, timeout=30.0):
        """Waits for STOPPING=1 from the current (or just ended) main process."""
        gen = self._start_gen
        self._wait(lambda: self._stopping_gen == gen, timeout, "STOPPING=1")

    def wait_exit(self, timeout=30.0):
        """Waits for the main process to end (reaped); returns its returncode."""
        p = self.proc
        if p is None:
            raise FakeSystemdError("wait_exit: never started")
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            raise FakeSystemdError("the service (pid %d) did not exit within %.0fs" % (p.pid, timeout))
        self._on_exit(p)
        return rc

    def wait_until(self, pred, what, timeout=10.0):
        """Waits until pred(self) is true: checked as messages arrive and at
        least every poll_interval."""
        self._wait(lambda: pred(self), timeout, what)

    def kill9(self):
        """SIGKILL to the main pid, which is reaped; returns its returncode."""
        p = self.proc
        if p is None or p.returncode is not None:
            raise FakeSystemdError("kill9: the service is not running")
        p.send_signal(signal.SIGKILL)
        return self.wait_exit(10.0)

    def terminate(self, timeout=None):
        """SIGTERM to the main pid, then a bounded wait for its exit; after
        stop_timeout (TimeoutStopSec=) SIGKILL, as systemd does. Returns the
        returncode. Keeps the fd store."""
        p = self.proc
        if p is None or p.returncode is not None:
            raise FakeSystemdError("terminate: the service is not running")
        with self._cond:
            self.state = "deactivating"
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(self.stop_timeout if timeout is None else timeout)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGKILL)
        return self.wait_exit(10.0)

    def restart(self, kind="crash", restart_sec=None):
        """crash: SIGKILL, RestartSec, start (Restart=on-failure after a
        crash). restart: SIGTERM, bounded wait, start (systemctl restart).
        The fd store is kept either way. Returns the new pid."""
        if kind == "crash":
            self.kill9()
            time.sleep(self.restart_sec if restart_sec is None else restart_sec)
        elif kind == "restart":
            self.terminate()
        else:
            raise ValueError(kind)
        return self.start()

    def stop(self, timeout=None):
        """systemctl stop: SIGTERM (SIGKILL after the timeout), then the fd
        store is flushed. Returns the returncode (None if it was not running)."""
        rc = None
        if self.main_pid is not None:
            rc = self.terminate(timeout)
        with self._cond:
            self._drain()
            self._flush()
        return rc

    def close(self):
        """Ends everything: kills a running service, closes all fds."""
        if self.main_pid is not None:
            try:
                self.kill9()
            except FakeSystemdError:
                pass
        self._closing = True
        self._thread.join(5)
        with self._cond:
            self._flush()
        for _, s in self.listen:
            s.close()
        self.notify.close()
        self._log.close()
        if self._pidfd >= 0:
            os.close(self._pidfd)
            self._pidfd = -1
        if self in _instances:
            _instances.remove(self)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------ internals
    def _wait(self, pred, timeout, what):
        with self._cond:
            if not self._cond.wait_for(pred, timeout):
                raise FakeSystemdError("no %s within %.1fs (state %s, status %r)"
                                       % (what, timeout, self.state, self.status))

    def _on_exit(self, p):
        """The main process p has been reaped: hear what it sent before it
        died, then check the store, then forget the pid."""
        with self._cond:
            if self._exited_gen == self._start_gen or p is not self.proc:
                return
            self._drain()
            self._check_store()
            self.exits.append(p.returncode)
            self._exited_gen = self._start_gen
            self.state = "inactive"
            if self._pidfd >= 0:
                os.close(self._pidfd)
                self._pidfd = -1
            self._cond.notify_all()

    def _run(self):
        while not self._closing:
            fds = [self.notify.fileno()]
            with self._cond:
                pidfd = self._pidfd
            if pidfd >= 0:
                fds.append(pidfd)
            try:
                readable, _, _ = select.select(fds, [], [], self.poll_interval)
            except (OSError, ValueError):
                readable = []
            if self._closing:
                break
            with self._cond:
                self._drain()
                self._check_store()
                p = self.proc
                self._cond.notify_all()  # wait_until() predicates look at more than messages
            if pidfd >= 0 and pidfd in readable and p is not None and p.poll() is not None:
                self._on_exit(p)
            if self.subreaper:
                self._reap_orphans()

    def _drain(self):
        """Reads every queued notify message (caller holds the lock)."""
        anc = socket.CMSG_SPACE(struct.calcsize("iII")) + socket.CMSG_SPACE(4 * NOTIFY_FD_MAX)
        while True:
            try:
                data, ancdata, flags, _ = self.notify.recvmsg(NOTIFY_BUFFER_MAX, anc, socket.MSG_CMSG_CLOEXEC)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            fds, pid = [], None
            for level, typ, cdata in ancdata:
                if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                    n = len(cdata) // 4
                    fds.extend(struct.unpack("%di" % n, cdata[:4 * n]))
                elif level == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("iII", cdata[:12])[0]
            reason = None
            if flags & socket.MSG_CTRUNC:
                reason = "truncated control data (too many fds)"
            elif flags & socket.MSG_TRUNC:
                reason = "message larger than %d bytes" % NOTIFY_BUFFER_MAX
            elif pid is None:
                reason = "no credentials"
            elif self.notify_access == "main" and pid != self.main_pid_unreaped():
                reason = "not from the main pid"
            if reason:
                self.ignored.append((reason, pid))
                for fd in fds:
                    os.close(fd)
                continue
            self._handle(pid, [l for l in data.decode(errors="replace").split("\n") if l], fds)
            self._cond.notify_all()

    def main_pid_unreaped(self):
        """The pid of the current main process until its exit is acted on
        (messages it sent before it died are still its own)."""
        p = self.proc
        if p is None or self._exited_gen == self._start_gen:
            return None
        return p.pid

    def _handle(self, pid, tags, fds):
        def first(prefix):
            for t in tags:
                if t.startswith(prefix):
                    return t[len(prefix):]
            return None
        self.messages.append((pid, tags, len(fds)))
        gen = self._start_gen
        if first("MAINPID=") is not None:
            self.notified_mainpid = first("MAINPID=")
        if "RELOADING=1" in tags:
            self.state = "reloading"
        if "READY=1" in tags:
            self.state = "active"
            self._ready_gen = gen
        if "STOPPING=1" in tags:
            self.state = "deactivating"
            self._stopping_gen = gen
        if first("STATUS=") is not None:
            self.status = first("STATUS=")
        if first("ERRNO=") is not None:
            try:
                self.errno = int(first("ERRNO="))
            except ValueError:
                pass
        if "WATCHDOG=1" in tags:
            self.watchdog_pings += 1
        if first("WATCHDOG_USEC=") is not None:
            self.watchdog_usec_notified = first("WATCHDOG_USEC=")
        if "BARRIER=1" in tags:
            for fd in fds:
                os.close(fd)
            return
        name = first("FDNAME=")
        if "FDSTOREREMOVE=1" in tags:
            if name is not None and fdname_is_valid(name):
                self._remove(name)
        elif "FDSTORE=1" in tags and self.fd_store_max > 0:
            self._add(fds, name if name is not None and fdname_is_valid(name) else "stored",
                      "FDPOLL=0" not in tags)
            return
        self.fds_unexpected += len(fds)
        for fd in fds:
            os.close(fd)

    def _add(self, fds, name, do_poll):
        for i, fd in enumerate(fds):
            if len(self._store) >= self.fd_store_max:
                for rest in fds[i:]:
                    os.close(rest)
                self.fds_over_max += len(fds) - i
                return
            if any(_kcmp_same_file(e.fd, fd) for e in self._store):
                self.fds_duplicate += 1
                os.close(fd)
                continue
            self._store.append(StoredFd(fd, name, do_poll))

    def _remove(self, name):
        keep = []
        for e in self._store:
            if e.name == name:
                os.close(e.fd)
            else:
                keep.append(e)
        self._store = keep

    def _check_store(self):
        """Drops every polled fd that reports POLLHUP/POLLERR."""
        hup = _hung_up([e.fd for e in self._store if e.poll])
        keep = []
        for e in self._store:
            if e.fd in hup:
                self.dropped.append((e.name, "POLLHUP/POLLERR"))
                os.close(e.fd)
            else:
                keep.append(e)
        if len(keep) != len(self._store):
            self._store = keep
            self._cond.notify_all()

    def _flush(self):
        for e in self._store:
            os.close(e.fd)
        self._store = []

    def _reap_orphans(self):
        """Subreaper mode: reaps exited children of this process that were
        orphaned out of one of the services' sessions."""
        me = os.getpid()
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    st = f.read()
            except OSError:
                continue
            fields = st[st.rfind(")") + 2:].split()
            state, ppid, session = fields[0], int(fields[1]), int(fields[3])
            pid = int(d)
            if state == "Z" and ppid == me and session in self._sessions and pid not in self._sessions:
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass


def _close_all():
    for f in list(_instances):
        try:
            f.close()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


atexit.register(_close_all)
