#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Per-job resource limits and isolation through the gRPC API, against the
real daemon:
- requests are validated (INVALID_ARGUMENT with the field named);
- the policy's bounds (example policy: alice cpu=1 memory=1G pids=256) refuse
  what is above them with PERMISSION_DENIED naming the bound; charlie has
  none; authorization comes first (bob may not start at all);
- limits the host cannot enforce are FAILED_PRECONDITION with the engine's
  message: without cgroups ("need cgroup v2"), and with a cgroup v2 directory
  that has no controllers (this machine) naming the controller; a policy
  default is applied to a request that gives none;
- isolation pid/net/tmp works end to end, and a daemon without
  CAP_SYS_ADMIN refuses it with FAILED_PRECONDITION;
- status reports has_cgroup and the CPU time of a CPU-burning job.
The limits being enforced is tested in a VM (tests/vm/)."""

import os
import time
import uuid

import rpcharness as h


def cgroup2_mount():
    """The cgroup2 mount point from /proc/self/mountinfo, or None."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            if fields[sep + 1] == "cgroup2":
                return fields[4]
    return None


def fresh_cgroup():
    """A new, empty cgroup v2 directory for a daemon's jobs, or None (with why)."""
    mnt = cgroup2_mount()
    if not mnt:
        return None, "no cgroup2 file system is mounted"
    path = os.path.join(mnt, "jw-test-limits-%s" % uuid.uuid4().hex[:12])
    try:
        os.mkdir(path)
    except OSError as e:
        return None, "cannot create %s: %s" % (path, e)
    return path, None


def remove_cgroup(path):
    """Removes the directory and the job cgroups the daemon left (it removes
    them itself; this only cleans up after a failure)."""
    for _ in range(50):
        try:
            for sub in os.listdir(path):
                p = os.path.join(path, sub)
                if os.path.isdir(p):
                    try:
                        with open(os.path.join(p, "cgroup.kill"), "w") as f:
                            f.write("1")
                    except OSError:
                        pass
                    try:
                        os.rmdir(p)
                    except OSError:
                        pass
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)


def main():
    import grpc
    pb, _ = h.stubs()
    C = grpc.StatusCode

    def req(argv=("/bin/true",), cpu=0, memory=0, pids=0, io=(), isolate=()):
        limits = pb.Limits(cpu_millis=cpu, memory_max_bytes=memory, pids_max=pids,
                           io=[pb.IoLimit(device=d, read_bps=r, write_bps=w) for d, r, w in io])
        return pb.StartRequest(argv=list(argv), limits=limits, isolate=list(isolate))

    def start(stub, **kw):
        return stub.Start(req(**kw), timeout=10).job_id

    def start_fails(stub, code, contains, **kw):
        return h.expect_code(lambda: start(stub, **kw), code, contains)

    def run(stub, argv, **kw):
        """(output bytes, end status) of a job that must start."""
        jid = start(stub, argv=argv, **kw)
        data, _, end = h.collect_output(stub, jid, timeout=20)
        return data, end

    G = 1 << 30
    M = 1 << 20
    root_has_disk = os.major(os.stat("/").st_dev) != 0

    # --- without cgroups (--cgroup off), the example policy ------------------
    d = h.Daemon(args=["--cgroup", "off"])
    alice, bob, charlie = d.stub("alice"), d.stub("bob"), d.stub("charlie")

    # request validation: INVALID_ARGUMENT naming the field
    start_fails(charlie, C.INVALID_ARGUMENT, "limits.cpu_millis 5 is out of range", cpu=5)
    start_fails(charlie, C.INVALID_ARGUMENT, "limits.pids_max 4194305 is out of range", pids=4194305)
    start_fails(charlie, C.INVALID_ARGUMENT, "limits.io[0].device 'sda' is not an absolute path", io=[("sda", 1, 0)])
    start_fails(charlie, C.INVALID_ARGUMENT, "limits.io[0] for '/' sets neither read_bps nor write_bps",
                io=[("/", 0, 0)])
    start_fails(charlie, C.INVALID_ARGUMENT, "isolate[0]: unknown isolation 0", isolate=[0])
    start_fails(charlie, C.INVALID_ARGUMENT, "too many io limits", io=[("/", 1, 0)] * 17)
    # io devices are resolved on the server
    start_fails(charlie, C.INVALID_ARGUMENT, "io device '/dev/null' is a character device", io=[("/dev/null", M, 0)])
    start_fails(charlie, C.INVALID_ARGUMENT, "io device '/no/such/dev': No such file or directory",
                io=[("/no/such/dev", M, 0)])
    start_fails(charlie, C.INVALID_ARGUMENT, "on a file system without a block device", io=[("/proc", M, 0)])

    # authorization first: bob may not start, whatever the limits
    start_fails(bob, C.PERMISSION_DENIED, "'bob' may not start jobs", cpu=100)

    # above alice's bounds: PERMISSION_DENIED with the bound
    start_fails(alice, C.PERMISSION_DENIED, "alice may use at most 1 CPU (asked 2)", cpu=2000)
    start_fails(alice, C.PERMISSION_DENIED, "alice may use at most 1G bytes of memory (asked 1536M)",
                memory=G + G // 2)
    start_fails(alice, C.PERMISSION_DENIED, "alice may use at most 256 processes (asked 1000)", pids=1000)
    d.wait_log(r"permission denied: alice may not start a job with these limits")

    # within the bounds, or charlie without bounds: the host cannot enforce it
    need_v2 = "resource limits need cgroup v2, and no cgroup is set up for jobs on this host"
    start_fails(alice, C.FAILED_PRECONDITION, need_v2, cpu=1000, memory=G, pids=256)
    start_fails(alice, C.FAILED_PRECONDITION, need_v2, cpu=500)
    start_fails(charlie, C.FAILED_PRECONDITION, need_v2, cpu=64000, memory=64 * G, pids=100000)
    if root_has_disk:
        start_fails(charlie, C.FAILED_PRECONDITION, need_v2, io=[("/", 50 * M, 20 * M)])
    else:
        print("note: / has no block device; io limits not tried")

    # no limits asked (a bound alone does not limit): runs, no cgroup
    data, end = run(alice, ["/bin/sh", "-c", "echo plain"])
    assert data == b"plain\n" and end.state == pb.JOB_STATE_EXITED and end.exit_code == 0, (data, end)
    assert not end.has_cgroup and end.cpu_usec == 0 and end.memory_peak_bytes == 0, end
    assert end.oom_kills == 0 and not end.oom_killed, end

    # --- isolation, end to end ------------------------------------------------
    PID, NET, TMP = pb.ISOLATION_PID, pb.ISOLATION_NET, pb.ISOLATION_TMP
    try:
        data, end = run(charlie, ["/bin/sh", "-c", "echo $$"], isolate=[PID])
    except AssertionError as e:
        if "FAILED_PRECONDITION" in str(e) and os.geteuid() != 0:
            h.skip("this host refuses namespaces to a non-root daemon: %s" % e)
        raise
    assert data == b"1\n" and end.exit_code == 0, (data, end)
    # /proc is the new namespace's: only the job's own processes
    data, end = run(alice, ["/bin/sh", "-c", "ls /proc | grep -c '^[0-9]'"], isolate=[PID])
    assert end.exit_code == 0 and int(data) <= 3, data
    # without isolation the job is not PID 1
    data, _ = run(alice, ["/bin/sh", "-c", "echo $$"])
    assert data != b"1\n", data

    data, end = run(alice, ["/bin/cat", "/proc/net/dev"], isolate=[NET])
    ifaces = sorted(line.split(b":")[0].strip() for line in data.splitlines()[2:])
    assert end.exit_code == 0 and ifaces == [b"lo"], data
    # ... and loopback is up: a connection to 127.0.0.1 works
    data, end = run(alice, ["/usr/bin/python3", "-c",
                            "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); "
                            "socket.create_connection(s.getsockname()); print('up')"], isolate=[NET])
    assert data == b"up\n" and end.exit_code == 0, data

    # a private, empty /tmp: nothing of the host's, and nothing left behind
    marker = "jw-limits-test-%s" % uuid.uuid4().hex[:8]
    open(os.path.join("/tmp", marker), "w").close()
    try:
        data, end = run(alice, ["/bin/sh", "-c", "ls -A /tmp | wc -l; touch /tmp/inside && echo made"],
                        isolate=[TMP])
        assert end.exit_code == 0 and data.split() == [b"0", b"made"], data
        assert not os.path.exists("/tmp/inside")
    finally:
        os.unlink(os.path.join("/tmp", marker))

    # all three at once
    data, end = run(charlie, ["/bin/sh", "-c", "echo $$; ls -A /tmp | wc -l; cat /proc/net/dev | tail -n +3 | wc -l"],
                    isolate=[PID, NET, TMP])
    assert data.split() == [b"1", b"0", b"1"] and end.exit_code == 0, data

    # isolation and limits are independent: isolation does not need cgroups,
    # limits still do
    start_fails(alice, C.FAILED_PRECONDITION, need_v2, cpu=500, isolate=[PID])
    assert d.stop() == 0

    # --- isolation the host refuses: a daemon without CAP_SYS_ADMIN ----------
    if os.geteuid() == 0:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        PR_CAPBSET_DROP, CAP_SYS_ADMIN = 24, 21

        def drop_sys_admin():
            # root's capabilities after exec are its bounding set
            if libc.prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")

        d = h.Daemon(args=["--cgroup", "off"], preexec_fn=drop_sys_admin)
        charlie = d.stub("charlie")
        for iso, name in ((PID, "pid"), (NET, "net"), (TMP, "tmp")):
            msg = start_fails(charlie, C.FAILED_PRECONDITION, "refused by this host: Operation not permitted",
                              argv=["/bin/true"], isolate=[iso])
            assert name in msg, msg
        data, end = run(charlie, ["/bin/echo", "plain"])
        assert data == b"plain\n" and end.exit_code == 0, (data, end)
        assert d.stop() == 0
    else:
        print("note: not root; the refused-isolation case was not run")

    # --- with a cgroup v2 directory (no controllers on this machine) ---------
    path, why = fresh_cgroup()
    if not path:
        print("SKIP (part): %s; the cgroup part was not run" % why)
        return
    try:
        d = h.Daemon(args=["--cgroup", path])
        d.wait_log(r"jobs get their own cgroup under")
        alice, charlie = d.stub("alice"), d.stub("charlie")
        with open(os.path.join(path, "cgroup.controllers")) as f:
            available = f.read().split()

        def controller_case(name, **kw):
            if name in available:
                print("note: the %s controller is available here; not checking its refusal" % name)
                return
            start_fails(alice, C.FAILED_PRECONDITION,
                        "the %s controller is not available for jobs on this host" % name, **kw)

        controller_case("cpu", cpu=500)
        controller_case("memory", memory=256 * M)
        controller_case("pids", pids=64)
        if root_has_disk:
            controller_case("io", io=[("/", 50 * M, 0)])
        # above the bound is still PERMISSION_DENIED, before the host is asked
        start_fails(alice, C.PERMISSION_DENIED, "alice may use at most 1 CPU (asked 1.5)", cpu=1500)

        # status: a running job has a cgroup
        jid = start(charlie, argv=["/bin/sleep", "30"])
        st = h.wait_state(charlie, jid, [pb.JOB_STATE_RUNNING])
        assert st.has_cgroup and not st.oom_killed, st
        stopped = charlie.Stop(pb.StopRequest(job_id=jid, use_grace=True, grace_ms=100), timeout=10).status
        assert stopped.has_cgroup, stopped
        end = h.wait_state(charlie, jid, [pb.JOB_STATE_KILLED, pb.JOB_STATE_EXITED])
        assert end.has_cgroup and end.oom_kills == 0 and not end.oom_killed, end

        # the CPU time of a CPU-burning job (~0.15 s of CPU here), in Status and List
        loop = "i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done"
        jid = start(charlie, argv=["/bin/sh", "-c", loop])
        end = h.wait_state(charlie, jid, [pb.JOB_STATE_EXITED], timeout=60)
        assert end.has_cgroup and end.exit_code == 0, end
        assert end.cpu_usec > 20000, "a loop of 400000 iterations used only %d us of CPU" % end.cpu_usec
        assert end.oom_kills == 0 and not end.oom_killed, end
        listed = [j for j in charlie.List(pb.ListRequest(), timeout=10).jobs if j.job_id == jid]
        assert listed and listed[0].has_cgroup and listed[0].cpu_usec == end.cpu_usec, listed

        # a short job: has_cgroup, final stats
        data, end = run(alice, ["/bin/sh", "-c", "echo hi"])
        assert data == b"hi\n" and end.has_cgroup and end.exit_code == 0, end
        assert d.stop() == 0

        # a policy default is applied to a request without limits
        if "pids" not in available:
            d = h.Daemon(policy="charlie all task-manager default-pids=10\nalice self task-manager\n",
                         args=["--cgroup", path])
            start_fails(d.stub("charlie"), C.FAILED_PRECONDITION,
                        "the pids controller is not available for jobs on this host")
            # alice has no default: runs
            data, end = run(d.stub("alice"), ["/bin/echo", "ok"])
            assert data == b"ok\n" and end.has_cgroup, end
            assert d.stop() == 0
    finally:
        remove_cgroup(path)


h.run_main(main)
