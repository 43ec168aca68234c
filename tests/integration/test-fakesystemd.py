#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Self-test of fakesystemd.py, the fake systemd that the restart tests run
jobworkerd under. A tiny Python service stores fds in the fake's fd store
and writes, at every start, a report of what it found in LISTEN_FDS /
LISTEN_FDNAMES and what it read through those fds. Checked: after SIGKILL
and a new start the service gets its listening socket at fd 3 and, after it,
a pipe's read end (FDPOLL=0) and a socketpair end with a queued SCM_RIGHTS
message, and reads the expected bytes through them; LISTEN_PID is the
service's own pid; an fd stored without FDPOLL=0 whose writer is gone is
dropped, one whose writer lives on in an orphaned child is kept until that
child ends; FDSTOREREMOVE removes; FileDescriptorStoreMax is enforced;
systemctl restart keeps the store; STOPPING=1 + exit under stop() flushes
it; NotifyAccess=main ignores another process. Each check is a function of
its own, so a failure names what broke."""

import json
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakesystemd  # noqa: E402

SERVICE = r'''
import json, os, signal, socket, stat, subprocess, sys, time
work = sys.argv[1]
plan = json.load(open(os.path.join(work, "plan.json")))
n = len([f for f in os.listdir(work) if f.startswith("report-")])
keep = []   # write ends and peers that live (and die) with this process

def notify(msg, fds=()):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, bytes(memoryview(__import__("array").array("i", fds))))] if fds else []
    s.sendmsg([msg.encode()], anc, 0, os.environ["NOTIFY_SOCKET"])
    s.close()

def drain(fd):
    os.set_blocking(fd, False)
    out = b""
    while True:
        try:
            b = os.read(fd, 65536)
        except BlockingIOError:
            return out, False
        if not b:
            return out, True
        out += b

def describe(fd, name):
    st = os.fstat(fd)
    d = {"fd": fd, "name": name, "cloexec": bool(__import__("fcntl").fcntl(fd, 1) & 1)}
    if stat.S_ISFIFO(st.st_mode):
        data, eof = drain(fd)
        d.update(kind="fifo", data=data.decode(), eof=eof)
    elif stat.S_ISSOCK(st.st_mode):
        s = socket.socket(fileno=os.dup(fd))
        if s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            d.update(kind="listen", port=s.getsockname()[1])
        else:
            s.setblocking(False)
            msgs = []
            while True:
                try:
                    data, fds, _, _ = socket.recv_fds(s, 4096, 16)
                except BlockingIOError:
                    break
                if not data:
                    break
                msgs.append({"data": data.decode(), "fds": [drain(f)[0].decode() for f in fds]})
            d.update(kind="socket", messages=msgs)
        s.close()
    return d

nfds = int(os.environ.get("LISTEN_FDS", "0"))
names = os.environ.get("LISTEN_FDNAMES", "").split(":") if nfds else []
report = {"pid": os.getpid(), "listen_pid": os.environ.get("LISTEN_PID"), "listen_fds": nfds,
          "names": names, "fds": [describe(3 + i, names[i]) for i in range(nfds)],
          "fd_after_last_open": os.path.exists("/proc/self/fd/%d" % (3 + nfds)), "children": []}

def store(name, fds, poll):
    notify("FDSTORE=1\nFDNAME=%s%s" % (name, "" if poll else "\nFDPOLL=0"), fds)

for a in (plan[n] if n < len(plan) else []):
    if a[0] == "pipe":          # ["pipe", name, text, poll]
        r, w = os.pipe()
        os.write(w, a[2].encode())
        keep.append(w)
        store(a[1], [r], a[3])
        os.close(r)
    elif a[0] == "chan":        # ["chan", name, text, inner text]
        mine, peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        r, w = os.pipe()
        os.write(w, a[3].encode())
        os.close(w)
        socket.send_fds(peer, [a[2].encode()], [r])
        os.close(r)
        keep.append(peer)
        store(a[1], [mine.fileno()], False)
        mine.close()
    elif a[0] == "many":        # ["many", name, count]: count pipes in one message
        pairs = [os.pipe() for _ in range(a[2])]
        keep.extend(w for _, w in pairs)
        store(a[1], [r for r, _ in pairs], False)
        for r, _ in pairs:
            os.close(r)
    elif a[0] == "job_pipe":    # ["job_pipe", name]: the write end lives in a child
        r, w = os.pipe()
        child = subprocess.Popen(["sleep", "120"], stdout=w, start_new_session=False)
        os.close(w)
        report["children"].append(child.pid)
        store(a[1], [r], True)
        os.close(r)
    elif a[0] == "remove":      # ["remove", name]
        notify("FDSTOREREMOVE=1\nFDNAME=%s" % a[1])
    elif a[0] == "child_notify":  # ["child_notify", message]: sent by another process
        subprocess.run([sys.executable, "-c", "import socket,os,sys; s=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.sendto(sys.argv[1].encode(), os.environ['NOTIFY_SOCKET'])", a[1]], check=True)

tmp = os.path.join(work, ".report")
with open(tmp, "w") as f:
    json.dump(report, f)
os.rename(tmp, os.path.join(work, "report-%d.json" % n))

def on_term(signo, frame):
    notify("STOPPING=1")
    sys.exit(0)

signal.signal(signal.SIGTERM, on_term)
if ["die"] in plan[n] if n < len(plan) else False:
    os.kill(os.getpid(), signal.SIGKILL)   # a crash right after storing: before READY=1
notify("READY=1\nSTATUS=start %d" % n)
while True:
    signal.pause()
'''


class Service:
    """The test service under a FakeSystemd, with a work directory."""

    def __init__(self, plan, **kw):
        self.work = tempfile.mkdtemp(prefix="fakesd-test-")
        with open(os.path.join(self.work, "plan.json"), "w") as f:
            json.dump(plan, f)
        script = os.path.join(self.work, "svc.py")
        with open(script, "w") as f:
            f.write(SERVICE)
        self.fake = fakesystemd.FakeSystemd([sys.executable, script, self.work],
                                            listen_socks=["svc.socket"], **kw)

    def report(self, n):
        with open(os.path.join(self.work, "report-%d.json" % n)) as f:
            return json.load(f)

    def start_ready(self):
        self.fake.start()
        self.fake.wait_ready(30)

    def close(self):
        self.fake.close()
        shutil.rmtree(self.work, ignore_errors=True)


def names(fake):
    return [n for n, _ in fake.stored_fds()]


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def pid_gone(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def test_crash_hands_fds_back():
    s = Service([[["pipe", "pipe", "pipe-bytes\n", False],
                  ["chan", "chan", "queued message", "inner-bytes"],
                  ["pipe", "hup", "x", True]], []])
    try:
        s.start_ready()
        first = s.report(0)
        check(first["listen_fds"] == 1 and first["names"] == ["svc.socket"], first)
        check(first["listen_pid"] == str(first["pid"]) == str(s.fake.main_pid), first)
        check(first["fds"][0]["kind"] == "listen" and first["fds"][0]["port"] == s.fake.port(), first)
        check(not first["fd_after_last_open"], "an fd beyond LISTEN_FDS leaked into the service")
        check(sorted(names(s.fake)) == ["chan", "hup", "pipe"], names(s.fake))
        rc = s.fake.kill9()
        check(rc == -signal.SIGKILL, rc)
        # the writer of "hup" died with the service: dropped; FDPOLL=0 ones stay
        check(sorted(names(s.fake)) == ["chan", "pipe"], names(s.fake))
        check(("hup", "POLLHUP/POLLERR") in s.fake.dropped, s.fake.dropped)
        s.start_ready()
        r = s.report(1)
        check(r["listen_pid"] == str(r["pid"]), r)
        # systemd's order: socket fds, then the store newest first
        check(r["names"] == ["svc.socket", "chan", "pipe"], r["names"])
        check(r["listen_fds"] == 3 and [f["fd"] for f in r["fds"]] == [3, 4, 5], r)
        check(not any(f["cloexec"] for f in r["fds"]), r)
        check(r["fds"][0]["kind"] == "listen" and r["fds"][0]["port"] == s.fake.port(), r)
        chan, pipe = r["fds"][1], r["fds"][2]
        check(pipe["kind"] == "fifo" and pipe["data"] == "pipe-bytes\n" and pipe["eof"], pipe)
        check(chan["kind"] == "socket" and chan["messages"] == [{"data": "queued message", "fds": ["inner-bytes"]}],
              chan)
        check(s.fake.status == "start 1", s.fake.status)
    finally:
        s.close()


def test_fds_stored_just_before_a_crash_are_kept():
    """The messages a service sent before it died are heard before its death
    is acted on, as systemd reads the notify socket before SIGCHLD."""
    s = Service([[["many", "last", 20], ["die"]], []])
    try:
        s.fake.start()
        s.fake.wait_until(lambda f: len(f.exits) == 1, "the service to crash", 10)
        check(s.fake.exits == [-signal.SIGKILL], s.fake.exits)
        check(names(s.fake) == ["last"] * 20, (names(s.fake), s.fake.ignored))
        s.start_ready()
        check(s.report(1)["names"] == ["svc.socket"] + ["last"] * 20, s.report(1)["names"])
    finally:
        s.close()


def test_order_remove_and_many():
    s = Service([[["many", "m", 3], ["pipe", "victim", "v", False], ["pipe", "keep", "k", False],
                  ["remove", "victim"]]], fd_order="store")
    try:
        s.start_ready()
        check(names(s.fake) == ["m", "m", "m", "keep"], names(s.fake))
        s.fake.restart("crash")
        s.fake.wait_ready(30)
        check(s.report(1)["names"] == ["svc.socket", "m", "m", "m", "keep"], s.report(1)["names"])
    finally:
        s.close()


def test_store_max():
    s = Service([[["many", "m", 5]]], fd_store_max=3)
    try:
        s.start_ready()
        check(names(s.fake) == ["m"] * 3 and s.fake.fds_over_max == 2, (names(s.fake), s.fake.fds_over_max))
    finally:
        s.close()


def test_restart_keeps_stop_flushes():
    s = Service([[["pipe", "p", "kept\n", False]], [], []])
    try:
        s.start_ready()
        s.fake.restart("restart")          # SIGTERM: STOPPING=1, exit 0, start
        s.fake.wait_ready(30)
        check(s.fake.exits == [0], s.fake.exits)
        check(s.report(1)["names"] == ["svc.socket", "p"], s.report(1)["names"])
        check(s.report(1)["fds"][1]["data"] == "kept\n", s.report(1))
        rc = s.fake.stop()
        s.fake.wait_stopping(5)
        check(rc == 0 and s.fake.state == "inactive", (rc, s.fake.state))
        check(s.fake.stored_fds() == [], s.fake.stored_fds())
        s.start_ready()
        check(s.report(2)["names"] == ["svc.socket"], s.report(2)["names"])
    finally:
        s.close()


def test_writer_in_orphaned_child_keeps_fd():
    """A polled pipe whose writer is a child of the service (a job) stays
    across the crash while the child runs, and goes when it ends."""
    s = Service([[["job_pipe", "job"]]])
    try:
        s.start_ready()
        child = s.report(0)["children"][0]
        s.fake.kill9()
        check(names(s.fake) == ["job"], names(s.fake))
        os.kill(child, signal.SIGKILL)
        s.fake.wait_until(lambda f: names(f) == [], "the job pipe to be dropped after its writer died", 5)
        check(("job", "POLLHUP/POLLERR") in s.fake.dropped, s.fake.dropped)
    finally:
        s.close()


def test_clean_signals():
    """The exec wrapper is Python, which ignores SIGPIPE and SIGXFSZ: the
    service must not inherit that (nor a blocked signal)."""
    f = fakesystemd.FakeSystemd(["sh", "-c", "grep -E '^Sig(Ign|Blk)' /proc/self/status; exec sleep 60"])
    try:
        f.start()
        f.wait_until(lambda f: "SigBlk" in f.logtext() and "SigIgn" in f.logtext(), "the signal masks in the log", 10)
        masks = dict(line.split(":\t") for line in f.logtext().splitlines() if line.startswith("Sig"))
        check(int(masks["SigIgn"], 16) == 0 and int(masks["SigBlk"], 16) == 0, masks)
        check(f.stop() == -signal.SIGTERM and f.exits == [-signal.SIGTERM], f.exits)
    finally:
        f.close()


def test_notify_access_main():
    s = Service([[["child_notify", "STATUS=from a child"]]])
    try:
        s.start_ready()
        check(s.fake.status == "start 0", s.fake.status)
        check(any(r == "not from the main pid" for r, _ in s.fake.ignored), s.fake.ignored)
    finally:
        s.close()


def test_subreaper_reaps_orphans():
    """Last: makes this whole process a subreaper."""
    s = Service([[["job_pipe", "job"]]], subreaper=True)
    try:
        s.start_ready()
        child = s.report(0)["children"][0]
        s.fake.kill9()
        with open("/proc/%d/status" % child) as f:
            ppid = [int(line.split()[1]) for line in f if line.startswith("PPid:")][0]
        check(ppid == os.getpid(), "orphan went to %d, not to the subreaper %d" % (ppid, os.getpid()))
        os.kill(child, signal.SIGKILL)
        s.fake.wait_until(lambda f: not os.path.exists("/proc/%d" % child), "the orphan to be reaped", 5)
    finally:
        s.close()


def main():
    failed = []
    for name, fn in [(k, v) for k, v in globals().items() if k.startswith("test_")]:
        t0 = time.monotonic()
        try:
            fn()
            print("ok   %s (%.1fs)" % (name, time.monotonic() - t0))
        except Exception:  # noqa: BLE001 - report every failure, run the rest
            traceback.print_exc()
            print("FAIL %s" % name)
            failed.append(name)
    if failed:
        print("FAIL: %s" % ", ".join(failed))
        sys.exit(1)
    print("PASS")


if __name__ == "__main__":
    main()
