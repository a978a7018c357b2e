"""ctl_harness.py — what the controller tests share (test_join.py, test_map.py): a
cairn-controller on 127.0.0.1 with a temporary state directory, an HTTPS client that trusts
only the cluster CA and checks the controller's CN, cairn-nodectl, and CSRs made by the
openssl command. Not a test itself."""
import http.client
import json
import os
import re
import signal
import ssl
import subprocess
import time

from common import REPO, Fail, check, log

CTL_BIN = os.path.join(REPO, os.environ.get("CAIRN_CONTROLLER") or "build/host/cairn-controller")
NODECTL_BIN = os.path.join(REPO, os.environ.get("CAIRN_NODECTL") or "build/host/cairn-nodectl")
PROVD_BIN = os.path.join(REPO, os.environ.get("CAIRN_PROVD") or "build/host/cairn-provd")


class Controller:
    """cairn-controller on 127.0.0.1 (ports chosen by the kernel, read from 'ready').
    root: where daemon-N.log go (the harness scans them for sanitizer reports) and the pids
    file; args: flags beyond --state and --listen."""

    def __init__(self, root, state, args=()):
        self.root, self.state, self.args = root, state, list(args)
        self.proc = None
        self.nstarts = 0
        self.port = self.boot_port = None
        self.logpath = None

    def start(self, timeout=15.0):
        self.nstarts += 1
        self.logpath = os.path.join(self.root, "daemon-%d.log" % self.nstarts)
        logf = open(self.logpath, "ab")
        self.proc = subprocess.Popen([CTL_BIN, "--state", self.state, "--listen", "127.0.0.1:0"]
                                     + self.args, stdin=subprocess.DEVNULL, stdout=logf,
                                     stderr=logf, start_new_session=True)
        logf.close()
        with open(os.path.join(self.root, "pids"), "a") as f:
            f.write("%d\n" % self.proc.pid)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(r"ready listen=127\.0\.0\.1:(\d+) (?:boot=127\.0\.0\.1:(\d+))?",
                          self.log())
            if m:
                self.port = int(m.group(1))
                self.boot_port = int(m.group(2)) if m.group(2) else None
                return
            if self.proc.poll() is not None:
                raise Fail("controller exited with %s: %s" % (self.proc.returncode, self.log()[-800:]))
            time.sleep(0.02)
        self.kill9()
        raise Fail("controller not ready: %s" % self.log()[-800:])

    def log(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(20)

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def state_file(self, name):
        return os.path.join(self.state, name)

    def admin_token(self):
        with open(self.state_file("admin.token")) as f:
            return f.read().strip()

    def tls_context(self, cert=None, key=None, ca=None):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False      # the controller is named by its CN, checked in request
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(ca or self.state_file("ca.crt"))
        if cert:
            ctx.load_cert_chain(cert, key)
        return ctx

    def request(self, method, path, body=None, bearer=None, cert=None, key=None, raw=None,
                timeout=15):
        """One HTTPS request; returns (status, parsed JSON or raw bytes, seconds taken)."""
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout,
                                           context=self.tls_context(cert, key))
        headers = {}
        if bearer:
            headers["Authorization"] = "Bearer " + bearer
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if data is not None:
            headers["Content-Type"] = "application/json"
        t0 = time.monotonic()
        try:
            conn.request(method, path, body=data, headers=headers)
            peer = conn.sock.getpeercert()
            cn = dict(x[0] for x in peer["subject"]).get("commonName")
            if cn != "cairn-controller":
                raise Fail("server certificate CN %r, want cairn-controller" % cn)
            r = conn.getresponse()
            out = r.read()
        finally:
            conn.close()
        took = time.monotonic() - t0
        if r.getheader("Content-Type", "").startswith("application/json"):
            return r.status, json.loads(out), took
        return r.status, out, took

    def nodectl(self, *args, check_rc=True):
        p = subprocess.run([NODECTL_BIN, "--controller", "127.0.0.1:%d" % self.port, "--state",
                            self.state] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        out, err = p.stdout.decode(), p.stderr.decode()
        log("$ nodectl %s [rc=%d] %s %s" % (" ".join(args), p.returncode, out.strip()[:600],
                                            err.strip()[:300]))
        if check_rc and p.returncode != 0:
            raise Fail("nodectl %s: rc=%d %s" % (" ".join(args), p.returncode, err))
        return p.returncode, out, err


def expect_error(got, status, code):
    """got: (status, body, ...) of a request that must fail with this status and error code."""
    st, body = got[0], got[1]
    if st != status or not isinstance(body, dict) or body.get("error") != code:
        raise Fail("expected %d %s, got %d %r" % (status, code, st, body))
    check(body.get("message"), "error without a message: %r" % body)


def new_csr(work, name):
    """A new EC P-256 key and CSR (openssl); returns (key path, CSR PEM)."""
    key, csr = os.path.join(work, name + ".key"), os.path.join(work, name + ".csr")
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=x",
                    "-keyout", key, "-out", csr], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    with open(csr) as f:
        return key, f.read()
