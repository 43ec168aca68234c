#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Clients that connect and never handshake are dropped after the handshake
deadline while other clients are served meanwhile; connections over
--max-connections are refused at once without disturbing the others."""

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


def main():
    pb, _ = h.stubs()

    # --- the handshake deadline ---------------------------------------------
    d = h.Daemon(args=["--handshake-timeout", "1500ms"])
    silent = [socket.create_connection(("127.0.0.1", d.port), timeout=5) for _ in range(20)]
    t0 = time.monotonic()
    # others are served while the silent ones wait
    s = d.stub("alice")
    r = s.Start(pb.StartRequest(argv=["/bin/echo", "served"]), timeout=5)
    assert h.collect_output(s, r.job_id, timeout=5)[0] == b"served\n"
    assert time.monotonic() - t0 < 1.4, "a call was not served while silent clients waited"
    for i, sk in enumerate(silent):
        left = max(0.1, 6 - (time.monotonic() - t0))
        if recv_eof(sk, left) is None:
            h.fail("silent client %d was not dropped within 6 s" % i)
        sk.close()
    elapsed = time.monotonic() - t0
    assert elapsed >= 1.2, "silent clients dropped too early (%.2fs)" % elapsed
    d.wait_log(r"refused connection from 127\.0\.0\.1:\d+")
    # a slow-but-alive TLS client is not affected afterwards
    r = s.Start(pb.StartRequest(argv=["/bin/echo", "again"]), timeout=5)
    assert h.collect_output(s, r.job_id, timeout=5)[0] == b"again\n"
    assert d.stop() == 0

    # --- the connection limit --------------------------------------------------
    d = h.Daemon(args=["--handshake-timeout", "3s", "--max-connections", "4"])
    held = [socket.create_connection(("127.0.0.1", d.port), timeout=5) for _ in range(4)]
    time.sleep(0.3)
    extra = socket.create_connection(("127.0.0.1", d.port), timeout=5)
    dt = recv_eof(extra, 2.0)
    assert dt is not None, "a connection over the limit was not closed"
    extra.close()
    for sk in held:
        assert recv_eof(sk, 6) is not None
        sk.close()
    # capacity is back: a real client is served
    s = d.stub("charlie")
    r = s.Start(pb.StartRequest(argv=["/bin/echo", "capacity"]), timeout=5)
    assert h.collect_output(s, r.job_id, timeout=5)[0] == b"capacity\n"
    assert d.stop() == 0


h.run_main(main)
