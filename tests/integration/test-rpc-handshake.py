#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Clients that connect and never handshake are dropped after the handshake
deadline while other clients are served meanwhile; handshaking connections
over --max-startups-per-source are refused at once without disturbing the
others."""

import socket
import time

import rpcharness as h


def recv_eof(sock, timeout):
    """Seconds until the server closed sock (EOF/reset), or None on timeout."""
    t0 = time.monotonic()
    sock.settimeout(timeout)
    try:
        while True:
            b = sock.recv(4096)
            if not b:
                break
    except socket.timeout:
        return None
    except ConnectionResetError:
        pass
    return time.monotonic() - t0


def still_open(sock):
    """True while the server has not closed sock (nothing to read, no EOF)."""
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except ConnectionResetError:
        return False
    finally:
        sock.setblocking(True)


def main():
    pb, _ = h.stubs()

    # --- the handshake deadline ---------------------------------------------
    d = h.Daemon(args=["--handshake-timeout", "3s"])
    t0 = time.monotonic()
    silent = [socket.create_connection(("127.0.0.1", d.port), timeout=5) for _ in range(20)]
    # others are served while the silent ones wait: the call completes while
    # every silent connection is still open
    s = d.stub("alice")
    r = s.Start(pb.StartRequest(argv=["/bin/echo", "served"]), timeout=5)
    assert h.collect_output(s, r.job_id, timeout=5)[0] == b"served\n"
    for i, sk in enumerate(silent):
        assert still_open(sk), "silent client %d was dropped before a call was served (%.2fs)" % (
            i, time.monotonic() - t0)
    for i, sk in enumerate(silent):
        left = max(0.1, 15 - (time.monotonic() - t0))
        if recv_eof(sk, left) is None:
            h.fail("silent client %d was not dropped within 15 s" % i)
        sk.close()
    # each was accepted after t0, so none may go before 3 s after t0
    elapsed = time.monotonic() - t0
    assert elapsed >= 2.9, "silent clients dropped too early (%.2fs)" % elapsed
    d.wait_log(r"refused connection from 127\.0\.0\.1:\d+: handshake timed out")
    # a slow-but-alive TLS client is not affected afterwards
    r = s.Start(pb.StartRequest(argv=["/bin/echo", "again"]), timeout=5)
    assert h.collect_output(s, r.job_id, timeout=5)[0] == b"again\n"
    assert d.stop() == 0

    # --- the bound on one address's handshaking connections -------------------
    d = h.Daemon(args=["--handshake-timeout", "5s", "--max-startups-per-source", "4"])
    held = [socket.create_connection(("127.0.0.1", d.port), timeout=5) for _ in range(4)]
    # all four take their places before the fifth comes
    h.wait_until(lambda: all(d.holds(sk) for sk in held), "the daemon to accept 4 connections")
    extra = socket.create_connection(("127.0.0.1", d.port), timeout=5)
    dt = recv_eof(extra, 4.5)  # well before the handshake deadline
    assert dt is not None, "a connection over the limit was not closed"
    extra.close()
    d.wait_log(r"refused connection from 127\.0\.0\.1:\d+: too many unauthenticated connections from this address")
    assert all(still_open(sk) for sk in held), "a connection within the limit was dropped with the extra one"
    for sk in held:
        assert recv_eof(sk, 20) is not None
        sk.close()
    # capacity is back: a real client is served
    s = d.stub("charlie")
    r = s.Start(pb.StartRequest(argv=["/bin/echo", "capacity"]), timeout=5)
    assert h.collect_output(s, r.job_id, timeout=5)[0] == b"capacity\n"
    assert d.stop() == 0


h.run_main(main)
