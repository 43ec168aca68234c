#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The daemon's TLS as seen by openssl s_client and gnutls-cli: TLS 1.3 with
TLS_AES_256_GCM_SHA384 and ALPN h2 for a good client certificate; refused:
TLS 1.2, AES-128-GCM only, ChaCha20 only, no client certificate, an
untrusted, an expired and a server-as-client certificate. Each refusal is
checked on both sides: the client sees the alert, the daemon logs why."""

import os
import re
import shutil
import subprocess
import time

import rpcharness as h

C = h.CERTS


def run(argv, timeout=10):
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout)
    except subprocess.TimeoutExpired as e:
        h.fail("%s did not finish within %ds: %s" % (argv[0], timeout, e.output))
    return p.returncode, p.stdout.decode(errors="replace")


def count(d, pattern):
    return len(re.findall(pattern, d.logtext()))


def refused(d, argv, client_says, daemon_says):
    before = count(d, r"refused connection from")
    accepted = count(d, r"connection \d+ from \S+: client ")
    rc, out = run(argv)
    if rc == 0:
        h.fail("%s was not refused:\n%s" % (" ".join(argv), out))
    if not re.search(client_says, out, re.I):
        h.fail("%s: expected %r in the client's output:\n%s" % (" ".join(argv), client_says, out))
    deadline = time.monotonic() + 5
    while count(d, r"refused connection from") == before:
        if time.monotonic() > deadline:
            h.fail("the daemon did not log the refusal of %s" % " ".join(argv))
        time.sleep(0.02)
    last = re.findall(r"refused connection from [^\n]*", d.logtext())[-1]
    if not re.search(daemon_says, last):
        h.fail("daemon logged %r, expected %r" % (last, daemon_says))
    if count(d, r"connection \d+ from \S+: client ") != accepted:
        h.fail("the daemon accepted a connection it should have refused")


def main():
    have_openssl = shutil.which("openssl")
    have_gnutls = shutil.which("gnutls-cli")
    if not have_openssl and not have_gnutls:
        h.skip("neither openssl nor gnutls-cli is installed")
    d = h.Daemon()
    port = str(d.port)
    alice = ["-cert", C + "/alice.pem", "-key", C + "/alice-key.pem"]

    if have_openssl:
        base = ["openssl", "s_client", "-connect", "127.0.0.1:" + port, "-CAfile", C + "/ca.pem",
                "-alpn", "h2", "-brief"]
        rc, out = run(base + alice)
        assert rc == 0, out
        assert "Protocol version: TLSv1.3" in out, out
        assert "Ciphersuite: TLS_AES_256_GCM_SHA384" in out, out
        assert "Verification: OK" in out, out
        d.wait_log(r"connection \d+ from 127\.0\.0\.1:\d+: client alice")

        refused(d, base + alice + ["-tls1_2"], r"alert handshake failure|no protocols available",
                r"protocol/cipher")
        refused(d, base + alice + ["-ciphersuites", "TLS_AES_128_GCM_SHA256"], r"alert handshake failure",
                r"protocol/cipher")
        refused(d, base + alice + ["-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"], r"alert handshake failure",
                r"protocol/cipher")
        # TLS 1.3: client-certificate problems arrive after the client thinks it is
        # connected, so keep reading (-ign_eof) until the server's alert.
        refused(d, base + ["-ign_eof"], r"alert certificate required", r"no client certificate")
        refused(d, base + ["-ign_eof", "-cert", C + "/bad/untrusted.pem", "-key", C + "/bad/untrusted-key.pem"],
                r"alert unknown ca", r"not trusted")
        refused(d, base + ["-ign_eof", "-cert", C + "/bad/expired.pem", "-key", C + "/bad/expired-key.pem"],
                r"alert certificate expired", r"expired")
        refused(d, base + ["-ign_eof", "-cert", C + "/bad/server-as-client.pem",
                           "-key", C + "/bad/server-as-client-key.pem"],
                r"alert unsupported certificate", r"client authentication")

    if have_gnutls:
        base = ["gnutls-cli", "--x509cafile", C + "/ca.pem", "-p", port, "localhost"]
        galice = ["--x509certfile", C + "/alice.pem", "--x509keyfile", C + "/alice-key.pem"]
        rc, out = run(base + galice + ["--alpn", "h2"])
        assert "(TLS1.3-X.509)" in out and "(AES-256-GCM)" in out, out
        assert "Handshake was completed" in out, out
        assert "Application protocol: h2" in out, out
        refused(d, base + galice + ["--priority", "NORMAL:-VERS-ALL:+VERS-TLS1.2"], r"alert|handshake failed",
                r"protocol/cipher")
        refused(d, base + galice + ["--priority", "NORMAL:-CIPHER-ALL:+AES-128-GCM"], r"Handshake failed",
                r"protocol/cipher")
        refused(d, base + galice + ["--priority", "NORMAL:-CIPHER-ALL:+CHACHA20-POLY1305"], r"Handshake failed",
                r"protocol/cipher")
        refused(d, base, r"Certificate is required", r"no client certificate")
        refused(d, base + ["--x509certfile", C + "/bad/expired.pem", "--x509keyfile", C + "/bad/expired-key.pem"],
                r"alert|terminated", r"expired")

    # still serving a real client
    pb, _ = h.stubs()
    s = d.stub("bob")
    assert isinstance(list(s.List(pb.ListRequest(), timeout=10).jobs), list)
    assert d.stop() == 0


h.run_main(main)
