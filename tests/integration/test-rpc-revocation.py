#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Revoked client certificates: a CRL made by `jobworker-certs revoke` (in a
temporary copy of the development CA; certs/ is not touched) makes the daemon
refuse alice's certificate with its own reason, on both sides (the daemon's
log names alice and the serial; jwctl says the certificate was revoked),
the CRL being found beside the CA file (no `crl =` given),
while bob is served; after bob is revoked too and the daemon gets SIGHUP, a
new connection of bob's is refused. A CRL that is out of date or not the
CA's keeps the daemon from starting."""

import os
import re
import shutil
import signal
import subprocess

import rpcharness as h

C = h.CERTS
TOOL = os.path.join(h.SRC, "tools", "jobworker-certs")
JWCTL = os.path.join(os.path.dirname(h.JOBWORKERD), "jwctl")


def certs_tool(tls_dir, *args):
    p = subprocess.run([TOOL, "--dir", tls_dir] + list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    out = p.stdout.decode(errors="replace")
    if p.returncode != 0:
        h.fail("jobworker-certs %s failed (%d):\n%s" % (" ".join(args), p.returncode, out))
    return out


def ca_copy():
    """A directory holding a copy of the development CA (certificate and key)."""
    d = h.tmpdir()
    for f in ("ca.pem", "ca-key.pem"):
        shutil.copy(os.path.join(C, f), os.path.join(d, f))
    return d


def serial_of(user):
    out = subprocess.run(["certtool", "-i", "--infile", os.path.join(C, user + ".pem")], stdout=subprocess.PIPE,
                         timeout=30).stdout.decode()
    return re.search(r"Serial Number \(hex\): ([0-9a-f]+)", out).group(1)


def jwctl(d, user, *args):
    env = dict(os.environ, XDG_CONFIG_HOME=os.path.join(d.dir, "noconfig"))
    p = subprocess.run([JWCTL, "--server", d.target, "--ca", os.path.join(C, "ca.pem"),
                        "--cert", os.path.join(C, user + ".pem"), "--key", os.path.join(C, user + "-key.pem")]
                       + list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=env, timeout=60)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def list_ok(d, user):
    """One new connection of user's makes a call: True, or False when refused."""
    import grpc
    pb, _ = h.stubs()
    try:
        d.stub(user).List(pb.ListRequest(), timeout=10)
        return True
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.UNAVAILABLE:
            h.fail("%s: expected UNAVAILABLE (refused handshake), got %s: %s" % (user, e.code(), e.details()))
        return False


def revoked_logged(d, user):
    return d.wait_log(r"refused connection from [^\n]*: client certificate of '%s' \(serial %s\) is revoked"
                      % (user, serial_of(user)), timeout=20)


def test_revoked_alice_refused_bob_served(tls):
    certs_tool(tls, "revoke", "alice", "--cert", os.path.join(C, "alice.pem"))
    # no crl = PATH: the daemon finds ca-crl.pem beside the CA file
    d = h.Daemon(args=["--ca", os.path.join(tls, "ca.pem")])

    rc, out, err = jwctl(d, "alice", "list")
    if rc == 0:
        h.fail("alice's revoked certificate was accepted (jwctl list exit 0):\n%s" % out)
    d.wait_log(r"certificate revocation list \S+ca-crl\.pem: 1 revoked certificate,")
    if "revoked" not in err:
        h.fail("jwctl does not say the certificate was revoked: %r" % err)
    revoked_logged(d, "alice")
    if list_ok(d, "alice"):
        h.fail("grpcio with alice's revoked certificate was served")
    if not list_ok(d, "bob"):
        h.fail("bob was refused while only alice is revoked:\n%s" % d.logtext())
    rc, out, err = jwctl(d, "bob", "list")
    if rc != 0:
        h.fail("jwctl as bob failed (%d): %s" % (rc, err))
    return d


def test_reload_revokes_bob(d, tls):
    certs_tool(tls, "revoke", "bob", "--cert", os.path.join(C, "bob.pem"))
    d.signal(signal.SIGHUP)
    d.wait_log(r"certificate revocation list \S+ca-crl\.pem: 2 revoked certificates,")
    d.wait_log(r"certificates reloaded")
    if list_ok(d, "bob"):
        h.fail("bob's new connection was served after his certificate was revoked and the daemon reloaded")
    revoked_logged(d, "bob")
    if not list_ok(d, "charlie"):
        h.fail("charlie was refused after the reload:\n%s" % d.logtext())


def test_broken_crl_on_reload_keeps_the_old_one(d, tls):
    with open(os.path.join(tls, "ca-crl.pem"), "w") as f:
        f.write("not a CRL\n")
    before = d.logtext().count("reload: keeping the previous certificates")
    d.signal(signal.SIGHUP)
    h.wait_until(lambda: d.logtext().count("reload: keeping the previous certificates") > before,
                 "the reload to keep the previous certificates")
    if "not a PEM certificate revocation list" not in d.logtext():
        h.fail("the broken CRL was not named in the log:\n%s" % d.logtext())
    if list_ok(d, "bob"):
        h.fail("bob was served after a broken CRL replaced the one revoking him")
    # the old CRL kept, not every client refused: charlie is still served
    if not list_ok(d, "charlie"):
        h.fail("charlie was refused after a broken CRL's reload:\n%s" % d.logtext())
    assert d.stop() == 0


def test_bad_crl_refuses_start(tls):
    # out of date: a CRL whose next update has passed (made with certtool directly)
    tmpl = os.path.join(tls, "old.tmpl")
    with open(tmpl, "w") as f:
        f.write('crl_this_update_date = "2020-01-01 00:00:00"\ncrl_next_update_date = "2020-02-01 00:00:00"\n')
    old = os.path.join(tls, "old-crl.pem")
    subprocess.run(["certtool", "--generate-crl", "--load-ca-privkey", os.path.join(tls, "ca-key.pem"),
                    "--load-ca-certificate", os.path.join(tls, "ca.pem"), "--template", tmpl, "--outfile", old],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, timeout=30)
    for path, says in ((old, "out of date since 2020-02-01"),
                       (os.path.join(tls, "missing.pem"), "missing.pem: No such file or directory"),
                       (os.path.join(C, "bad", "other-ca.pem"), "not a PEM certificate revocation list")):
        d = h.Daemon(args=["--crl", path], wait=False)
        try:
            rc = d.proc.wait(30)
        except subprocess.TimeoutExpired:
            h.fail("jobworkerd started with the CRL %s:\n%s" % (path, d.logtext()))
        if rc == 0 or says not in d.logtext():
            h.fail("jobworkerd with CRL %s: exit %d, log lacks %r:\n%s" % (path, rc, says, d.logtext()))
        h._daemons.remove(d)


def main():
    if not os.access(JWCTL, os.X_OK):
        h.skip("jwctl was not built (%s)" % JWCTL)
    if not shutil.which("certtool"):
        h.skip("certtool missing (gnutls-bin)")
    tls = ca_copy()
    d = test_revoked_alice_refused_bob_served(tls)
    test_reload_revokes_bob(d, tls)
    test_broken_crl_on_reload_keeps_the_old_one(d, tls)
    test_bad_crl_refuses_start(ca_copy())


h.run_main(main)
