#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""jwctl's fan-out (issue 15) beside the tools people use for the same.

On this host: N jobworkerd on loopback ports (one each, own state directory)
and N sshd on 127.0.0.1 .. 127.0.0.N (one port, throwaway ed25519 keys,
aes256-gcm). Then, RUNS times each (medians, with min-max):

  jwctl run --hosts h1,..,hN -- true              vs
  pdsh -w 127.0.0.[1-N] true                      (rcmd ssh)
  parallel-ssh -p N -H "127.0.0.1 .. 127.0.0.N" true
and the same with a command printing 10 MiB (short lines) on every host,
its output sent to /dev/null (jwctl prefixes lines as pdsh does).

For each: wall time, the client's CPU (user+sys of the client and its
children: pdsh and parallel-ssh run one ssh per host) and its peak memory
(sum of VmRSS over the client's process tree, sampled every 10 ms), both
also per host. With --scale 20,50,100,200 it measures `jwctl run -- true`
at those host counts (peak fds, peak RSS, time) and extrapolates each
linearly to 1,000 hosts.

Needs root (sshd; its jobs run as the policy's account). Installs pdsh, pssh
and openssh-server with apt-get when missing (services kept from starting
by a policy-rc.d), unless --no-install. Everything it starts is stopped on
exit, also on Ctrl-C; its work directory under /var/tmp is removed.

usage: bench/fanout.py [--hosts N] [--runs R] [--build DIR] [--scale LIST]
                       [--bytes N] [--no-install] [--keep]
"""

import argparse
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
CERTS = os.path.join(SRC, "certs")
PROCS = []  # everything we started, stopped in cleanup()


def log(msg):
    print("fanout: " + msg, file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def ensure_packages(no_install):
    need = [p for p, b in (("pdsh", "pdsh"), ("pssh", "parallel-ssh"), ("openssh-server", "sshd"),
                           ("openssh-client", "ssh")) if not shutil.which(b) and not os.path.exists("/usr/sbin/" + b)]
    if not need or no_install:
        return
    log("installing %s (apt-get; services kept from starting)" % " ".join(need))
    made = not os.path.exists("/usr/sbin/policy-rc.d")
    if made:
        with open("/usr/sbin/policy-rc.d", "w") as f:
            f.write("#!/bin/sh\nexit 101\n")
        os.chmod("/usr/sbin/policy-rc.d", 0o755)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        if subprocess.call(["apt-get", "install", "-y", "-q"] + need, env=env, stdout=subprocess.DEVNULL) != 0:
            subprocess.call(["apt-get", "update", "-q"], env=env, stdout=subprocess.DEVNULL)
            subprocess.call(["apt-get", "install", "-y", "-q"] + need, env=env, stdout=subprocess.DEVNULL)
    finally:
        if made:
            os.unlink("/usr/sbin/policy-rc.d")


def start_daemons(build, work, n):
    policy = os.path.join(work, "policy.conf")
    with open(policy, "w") as f:
        f.write("alice self task-manager\n")
    ports = []
    for i in range(n):
        state = os.path.join(work, "s%03d" % i)
        os.mkdir(state, 0o700)
        logf = open(os.path.join(work, "d%03d.log" % i), "w")
        p = subprocess.Popen([os.path.join(build, "jobworkerd"), "--listen", "127.0.0.1:0",
                              "--cert", os.path.join(CERTS, "server.pem"), "--key", os.path.join(CERTS, "server-key.pem"),
                              "--ca", os.path.join(CERTS, "ca.pem"), "--policy", policy, "--state-dir", state],
                             stdout=logf, stderr=subprocess.STDOUT)
        PROCS.append(p)
        ports.append((p, logf.name))
    out = []
    deadline = time.monotonic() + 60
    for p, name in ports:
        while True:
            text = open(name).read()
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", text)
            if m and "ready" in text:
                out.append(int(m.group(1)))
                break
            if p.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("jobworkerd did not start: " + text[-2000:])
            time.sleep(0.05)
    return out


def start_sshds(work, n):
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    if not os.path.exists(sshd):
        return None
    d = os.path.join(work, "ssh")
    os.mkdir(d)
    for k in ("host", "user"):
        subprocess.check_call(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(d, k)])
    shutil.copy(os.path.join(d, "user.pub"), os.path.join(d, "authorized_keys"))
    port = free_port()
    os.makedirs("/run/sshd", exist_ok=True)
    for i in range(n):
        conf = os.path.join(d, "sshd%03d.conf" % i)
        with open(conf, "w") as f:
            f.write("Port %d\nListenAddress 127.0.0.%d\nHostKey %s/host\nAuthorizedKeysFile %s/authorized_keys\n"
                    "PidFile %s/sshd%03d.pid\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n"
                    "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nCiphers aes256-gcm@openssh.com\n"
                    "MaxStartups 1000\nLogLevel ERROR\n" % (port, i + 1, d, d, d, i))
        PROCS.append(subprocess.Popen([sshd, "-D", "-e", "-f", conf], stderr=open(conf + ".log", "w")))
    cfg = os.path.join(d, "ssh_config")
    with open(cfg, "w") as f:
        f.write("Host *\n  Port %d\n  User root\n  IdentityFile %s/user\n  BatchMode yes\n  StrictHostKeyChecking no\n"
                "  UserKnownHostsFile /dev/null\n  Ciphers aes256-gcm@openssh.com\n  ControlMaster no\n"
                "  LogLevel ERROR\n" % (port, d))
    for i in range(n):  # each one answers before we measure
        deadline = time.monotonic() + 20
        while subprocess.call(["ssh", "-F", cfg, "127.0.0.%d" % (i + 1), "true"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) != 0:
            if time.monotonic() > deadline:
                raise RuntimeError("sshd on 127.0.0.%d does not answer" % (i + 1))
            time.sleep(0.1)
    return cfg


def tree_pids(root):
    children = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % p) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(p))
        except (OSError, ValueError, IndexError):
            pass
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def sample(pid, stop, peak):
    """Peak sum of VmRSS (KiB) over pid's tree, and peak fds of pid itself."""
    while not stop.is_set():
        rss = 0
        for p in tree_pids(pid):
            try:
                with open("/proc/%d/status" % p) as f:
                    m = re.search(r"VmRSS:\s+(\d+)", f.read())
                rss += int(m.group(1)) if m else 0
            except OSError:
                pass
        try:
            fds = len(os.listdir("/proc/%d/fd" % pid))
        except OSError:
            fds = 0
        peak["rss_kib"] = max(peak.get("rss_kib", 0), rss)
        peak["fds"] = max(peak.get("fds", 0), fds)
        stop.wait(0.01)


def measure(argv, env=None):
    """Runs argv with stdout to /dev/null: wall s, CPU s (with children), peak tree RSS KiB, peak fds, exit code."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    p = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    PROCS.append(p)
    stop, peak = threading.Event(), {}
    th = threading.Thread(target=sample, args=(p.pid, stop, peak))
    th.start()
    try:
        rc = p.wait(timeout=600)
    finally:
        stop.set()
        th.join()
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, peak.get("rss_kib", 0), peak.get("fds", 0), rc


def row(name, results, n):
    walls = [r[0] for r in results]
    cpus = [r[1] for r in results]
    rss = [r[2] for r in results]
    bad = [r[4] for r in results if r[4] != 0]
    print("%-44s %8.3f s (%.3f-%.3f)  cpu %7.3f s  %6.2f ms/host  rss %7.1f MiB  %6.0f KiB/host%s" % (
        name, statistics.median(walls), min(walls), max(walls), statistics.median(cpus),
        1000 * statistics.median(cpus) / n, statistics.median(rss) / 1024, statistics.median(rss) / n,
        "  EXIT %s" % bad[0] if bad else ""), flush=True)
    return statistics.median(walls)


def jwctl_env(work, ports):
    cfgdir = os.path.join(work, "config", "jwctl")
    os.makedirs(cfgdir, exist_ok=True)
    with open(os.path.join(cfgdir, "config"), "w") as f:
        f.write("ca = %s/ca.pem\ncert = %s/alice.pem\nkey = %s/alice-key.pem\nreconnect-timeout = 0\n" % (CERTS, CERTS, CERTS))
        for i, port in enumerate(ports):
            f.write("host h%03d = 127.0.0.1:%d\nhost h%03d tls-name = localhost\n" % (i, port, i))
    return dict(os.environ, XDG_CONFIG_HOME=os.path.join(work, "config"), XDG_STATE_HOME=os.path.join(work, "state"),
                NO_COLOR="1")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--build", default=os.path.join(SRC, "build"))
    ap.add_argument("--scale", default="")
    ap.add_argument("--bytes", type=int, default=10 << 20)
    ap.add_argument("--no-install", action="store_true")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/fanout.py: needs root (sshd, jobs run as the policy's account)")
    jwctl = os.path.join(a.build, "jwctl")
    lim = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lim[1], lim[1]))
    ensure_packages(a.no_install)
    work = tempfile.mkdtemp(prefix="jw-fanout.", dir="/var/tmp")
    os.chmod(work, 0o755)
    try:
        n = a.hosts
        big = "yes 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde | head -c %d" % a.bytes
        ports = start_daemons(a.build, work, max([n] + [int(x) for x in a.scale.split(",") if x]))
        env = jwctl_env(work, ports)
        names = ",".join("h%03d" % i for i in range(n))
        log("%d daemons up; %d runs each" % (len(ports), a.runs))
        print("%-44s %8s %17s  %s" % ("figure (%d hosts)" % n, "time", "min-max", "client CPU, peak RSS of its process tree"))
        t_jw = row("jwctl run --hosts ... -- true", [measure([jwctl, "run", "--hosts", names, "--", "true"], env)
                                                     for _ in range(a.runs)], n)
        row("jwctl run --hosts ... (%d MiB each)" % (a.bytes >> 20),
            [measure([jwctl, "run", "--hosts", names, "--", "sh", "-c", big], env) for _ in range(a.runs)], n)
        cfg = start_sshds(work, n)
        addrs = ["127.0.0.%d" % (i + 1) for i in range(n)]
        if cfg and shutil.which("pdsh"):
            penv = dict(os.environ, PDSH_RCMD_TYPE="ssh", PDSH_SSH_ARGS="-F %s %%h" % cfg)
            t = row("pdsh -w 127.0.0.[1-%d] true" % n, [measure(["pdsh", "-f", str(n), "-w", ",".join(addrs), "true"], penv)
                                                       for _ in range(a.runs)], n)
            print("  jwctl/pdsh for true: %.3f (goal <= 0.1)" % (t_jw / t))
            row("pdsh ... (%d MiB each)" % (a.bytes >> 20),
                [measure(["pdsh", "-f", str(n), "-w", ",".join(addrs), big], penv) for _ in range(a.runs)], n)
        else:
            print("pdsh: n/a (not installed or no sshd)")
        pssh = shutil.which("parallel-ssh") or shutil.which("pssh")
        if cfg and pssh:
            base = [pssh, "-p", str(n), "-t", "0", "-x", "-F %s" % cfg, "-H", " ".join(addrs)]
            t = row("parallel-ssh -H ... true", [measure(base + ["true"]) for _ in range(a.runs)], n)
            print("  jwctl/parallel-ssh for true: %.3f (goal <= 0.1)" % (t_jw / t))
            row("parallel-ssh -i ... (%d MiB each)" % (a.bytes >> 20),
                [measure(base + ["-i", big]) for _ in range(a.runs)], n)
        else:
            print("parallel-ssh: n/a (not installed or no sshd)")
        scale(a, jwctl, env)
    finally:
        cleanup(work, a.keep)


def scale(a, jwctl, env):
    counts = [int(x) for x in a.scale.split(",") if x]
    if not counts:
        return
    pts = []
    for c in counts:
        names = ",".join("h%03d" % i for i in range(c))
        res = [measure([jwctl, "run", "--parallel", str(max(c, 64)), "--hosts", names, "--", "true"], env)
               for _ in range(a.runs)]
        wall, rss, fds = (statistics.median(r[i] for r in res) for i in (0, 2, 3))
        pts.append((c, wall, rss, fds))
        print("scale %4d hosts: %.3f s, peak RSS %.1f MiB, peak fds %d" % (c, wall, rss / 1024, fds), flush=True)
    if len(pts) >= 2:
        def fit(i):
            xs, ys = [p[0] for p in pts], [p[i] for p in pts]
            mx, my = statistics.mean(xs), statistics.mean(ys)
            b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
            return my + b * (1000 - mx), b
        (t, bt), (r, br), (f, bf) = fit(1), fit(2), fit(3)
        print("1,000 hosts (linear fit): %.2f s (%.2f ms/host), %.0f MiB (%.0f KiB/host), %.0f fds (%.1f/host; "
              "with --parallel 1000)" % (t, bt * 1000, r / 1024, br, f, bf))


def cleanup(work, keep):
    for p in PROCS:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for p in PROCS:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if keep:
        log("kept " + work)
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    main()
