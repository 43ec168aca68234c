#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""No lock-out before authentication (issue 13, item 3).

A flood of plain TCP connections that never send a TLS byte, renewed as the
handshake deadline closes them, comes from 127.0.0.1; a real client from
127.0.0.2 keeps completing its handshake and being served meanwhile. One
identity holding its bound of connections is refused the next one (with the
reason in the log and from jwctl) while another identity still gets in."""

import os
import resource
import select
import socket
import ssl
import subprocess
import threading
import time

import rpcharness as h

FLOOD = 1100
FLOOD_SECONDS = 8.0
HANDSHAKE_TIMEOUT = "2s"
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # + empty SETTINGS


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, n)) if hard != resource.RLIM_INFINITY else max(soft, n)
    if want < n:
        h.skip("RLIMIT_NOFILE hard limit %d is below the %d descriptors the flood needs" % (hard, n))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def tls_context(user):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_verify_locations(os.path.join(h.CERTS, "ca.pem"))
    ctx.load_cert_chain(os.path.join(h.CERTS, user + ".pem"), os.path.join(h.CERTS, user + "-key.pem"))
    ctx.set_alpn_protocols(["h2"])
    return ctx


def served(port, user, source="127.0.0.1", timeout=5.0):
    """Connects from source as user; the TLS socket once the server's gRPC
    answered the HTTP/2 preface with a frame (so the bridge admitted the
    connection after checking the certificate), or raises. Under TLS 1.3 the
    server judges the client's certificate after the client's handshake is
    done: reading the server's first frame is what proves admission."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))
    s = tls_context(user).wrap_socket(raw, server_hostname="127.0.0.1")
    try:
        s.sendall(PREFACE)
        head = b""
        while len(head) < 9:
            b = s.recv(9 - len(head))
            if not b:
                raise ConnectionError("the server closed the connection before its first HTTP/2 frame")
            head += b
        if head[3] != 4:
            raise ConnectionError("the server's first HTTP/2 frame is of type %d, not SETTINGS" % head[3])
        return s
    except BaseException:
        s.close()
        raise


class Flood:
    """FLOOD silent connections from 127.0.0.1, each renewed when the server
    closes it (at accept, or at the handshake deadline). Renewals are paced
    (at most BATCH per TICK) so the flood does not take the test machine's
    cores from the daemon."""
    BATCH = 40
    TICK = 0.02

    def __init__(self, port):
        self.port = port
        self.socks = []
        self.renewed = 0
        self.stop = threading.Event()
        for _ in range(FLOOD):
            self.socks.append(self.connect())
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def connect(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", self.port))
        except BlockingIOError:
            pass
        return s

    def run(self):
        poller = select.poll()
        by_fd = {}
        for s in self.socks:
            poller.register(s, select.POLLIN)
            by_fd[s.fileno()] = s
        while not self.stop.is_set():
            gone = [by_fd[fd] for fd, ev in poller.poll(int(self.TICK * 1000))][:self.BATCH]
            for s in gone:
                try:
                    if s.recv(1) != b"":
                        continue  # a server that sends bytes: not what this flood meets
                except BlockingIOError:
                    continue
                except OSError:
                    pass
                poller.unregister(s)
                del by_fd[s.fileno()]
                s.close()
                n = self.connect()
                poller.register(n, select.POLLIN)
                by_fd[n.fileno()] = n
                self.renewed += 1
            time.sleep(self.TICK)
        for s in by_fd.values():
            s.close()

    def close(self):
        self.stop.set()
        self.thread.join(timeout=10)


def test_flood_from_one_address():
    """Silent connections from 127.0.0.1, more than --max-connections and
    renewed across two handshake deadlines: a client from 127.0.0.2 is
    admitted every time it tries."""
    raise_nofile(FLOOD + 1024)
    d = h.Daemon(args=["--handshake-timeout", HANDSHAKE_TIMEOUT, "--max-connections", "256"])
    flood = Flood(d.port)
    try:
        # the flood is in place once the daemon turns some of it away
        d.wait_log(r"refused connection from 127\.0\.0\.1:\d+: ", timeout=15)
        t0 = time.monotonic()
        attempts = 0
        while time.monotonic() - t0 < FLOOD_SECONDS:
            try:
                s = served(d.port, "alice", source="127.0.0.2")
            except (OSError, ssl.SSLError) as e:
                h.fail("a client from 127.0.0.2 was locked out by a flood from 127.0.0.1 after %.1fs "
                       "(attempt %d): %r" % (time.monotonic() - t0, attempts + 1, e))
            s.close()
            attempts += 1
            time.sleep(0.25)
        assert attempts >= 10, "only %d attempts in %.0fs" % (attempts, FLOOD_SECONDS)
        # the flood was being renewed (its log lines are rate-limited per
        # address, so the count of renewals is the evidence)
        assert flood.renewed > FLOOD, "the flood was renewed only %d times" % flood.renewed
        # turned away by the bound on one address's unauthenticated connections
        d.wait_log(r"refused connection from 127\.0\.0\.1:\d+: too many unauthenticated connections from "
                   r"this address", timeout=5)
    finally:
        flood.close()
    # the flood is over: 127.0.0.1 is served again, through grpcio
    pb, _ = h.stubs()
    s = d.stub("bob")
    deadline = time.monotonic() + 15
    while True:
        try:
            s.List(pb.ListRequest(), timeout=5)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert d.stop() == 0


def jwctl(port, user, *args):
    jw = os.path.join(os.environ.get("JW_BUILD_ROOT", ""), "jwctl")
    if not os.access(jw, os.X_OK):
        return None
    return subprocess.run([jw, "--server", "127.0.0.1:%d" % port,
                           "--cert", os.path.join(h.CERTS, user + ".pem"),
                           "--key", os.path.join(h.CERTS, user + "-key.pem"),
                           "--ca", os.path.join(h.CERTS, "ca.pem"), "--timeout", "10s"] + list(args),
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=30)


def test_flood_of_one_identity():
    """alice holds her bound of connections: her next one completes its
    handshake and is refused with access_denied (logged, and named by jwctl);
    bob still connects; alice gets a place back when one of hers closes."""
    d = h.Daemon(args=["--max-connections-per-identity", "3"])
    held = [served(d.port, "alice") for _ in range(3)]
    try:
        served(d.port, "alice").close()
        h.fail("alice's 4th connection was admitted over --max-connections-per-identity 3")
    except ssl.SSLError as e:
        assert "ACCESS_DENIED" in str(e).upper().replace(" ", "_"), "refused, but not with access_denied: %r" % e
    d.wait_log(r"refused connection from 127\.0\.0\.1:\d+: client alice: too many connections of this identity")
    r = jwctl(d.port, "alice", "list")
    if r is not None:
        err = r.stderr.decode(errors="replace")
        assert r.returncode != 0, "jwctl list as alice succeeded over her bound"
        assert "access denied" in err and "too many connections" in err, "jwctl did not name the cause: %r" % err
    served(d.port, "bob").close()
    pb, _ = h.stubs()
    r = d.stub("charlie").Start(pb.StartRequest(argv=["/bin/echo", "still served"]), timeout=10)
    assert h.collect_output(d.stub("charlie"), r.job_id, timeout=10)[0] == b"still served\n"
    held.pop().close()
    h.wait_until(lambda: try_served(d.port, "alice"), "alice to get a place back", timeout=10)
    for s in held:
        s.close()
    assert d.stop() == 0


def try_served(port, user):
    try:
        served(port, user).close()
        return True
    except (OSError, ssl.SSLError):
        return False


def main():
    test_flood_of_one_identity()
    test_flood_from_one_address()


h.run_main(main)
