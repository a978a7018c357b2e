#!/usr/bin/python3
# sfs: own-daemon
"""S3 over TLS (docs/TLS.md): the second listener, --tls-listen with --tls-cert/--tls-key.

The test makes its own CA and a server certificate for 127.0.0.1/localhost (subjectAltName)
with the openssl CLI, starts a daemon serving S3 on both a plain and a TLS port (header
timeout 3 s), and checks:

1. --check: a good pair passes; a key of another certificate, a file that is not a
   certificate, a missing file, --tls-listen without a certificate, and the cluster default
   (DIR/node.crt + DIR/ca.crt, DIR/node.key) each get their clear message; the TLS port equal
   to the plain one is refused at start.
2. boto3 over https with verify=<the CA>: put/get of 1 byte, 1 MiB and 20 MiB (multipart),
   ranged gets (block-unaligned starts and ends), list, delete; the same objects read back
   over the plain port; a presigned URL over https (urllib trusting the CA); the aws CLI
   (--ca-bundle) copying a file up and down.
3. Raw TLS: three signed GETs pipelined in one write get three answers in order; a 20 MiB GET
   (streamed from the store) and a 200 KiB one (sent from memory) read through a 4 KiB
   receive buffer with pauses (partial TLS writes) arrive intact.
4. Plain HTTP sent to the TLS port is refused (connection closed), logged as
   tls_handshake_failed with the peer; a client that stalls mid-handshake, or sends nothing,
   is dropped after the header timeout; the daemon keeps serving both ports.
5. 32 threads x 20 requests over TLS (each thread: a handshake per request for a quarter,
   keep-alive for the rest) all succeed with the right bytes.
6. An EC P-256 certificate (ECDHE-ECDSA) serves as well (curl).
7. Two cluster nodes (R=1) started with --cluster and --tls-listen but no --tls-cert serve
   their node certificate (chained to ca.crt); an object only node 2 holds reads whole and by
   range over node 1's TLS port (the coordinator's spool file through the buffer path).
"""
import hashlib
import io
import os
import re
import socket
import ssl
import subprocess
import threading
import time
import urllib.request

from common import (REGION, Clients, Daemon, Env, Fail, Reader, Suite, check, eq, free_port, log,
                    sha256, sha256_file, signed_head_bytes, write_random_file)

E = Env()
T = Suite("tls")
B = "tls-bucket"
PKI = os.path.join(E.root, "pki")
HEADER_TIMEOUT_MS = 3000
STARTED = []


def openssl(*args):
    p = subprocess.run(["openssl"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       cwd=PKI)
    if p.returncode != 0:
        raise Fail("openssl %s: %s" % (" ".join(args[:3]), p.stderr.decode()[-400:]))


def make_pki():
    """A CA, then RSA and EC server certificates for 127.0.0.1 and localhost."""
    os.makedirs(PKI, exist_ok=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.crt", "-days", "2", "-subj", "/CN=cairn-test-ca")
    with open(os.path.join(PKI, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    for name, keyargs in (("rsa", ["-newkey", "rsa:2048"]),
                          ("ec", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"])):
        openssl("req", *keyargs, "-nodes", "-keyout", name + ".key", "-out", name + ".csr",
                "-subj", "/CN=localhost")
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", name + ".crt", "-days", "2", "-extfile", "ext.cnf")


def pki(name):
    return os.path.join(PKI, name)


def start(name, cert="rsa", extra=()):
    root = os.path.join(E.root, name)
    os.makedirs(root, exist_ok=True)
    d = Daemon(root, ndirs=2, pids_root=E.root,
               extra=["--tls-listen", "127.0.0.1:0", "--tls-cert", pki(cert + ".crt"),
                      "--tls-key", pki(cert + ".key"),
                      "--header-timeout-ms", str(HEADER_TIMEOUT_MS)] + list(extra))
    STARTED.append(d)
    d.start(timeout=20)
    m = re.search(r"ready listen=\S+ tls=127\.0\.0\.1:(\d+) ", d.log_text())
    check(m, "no tls=ADDR in the ready line: %s" % d.log_text()[-400:])
    d.tls_port = int(m.group(1))
    d.https = "https://127.0.0.1:%d" % d.tls_port
    return d


def client(d, endpoint=None, verify=None):
    import boto3
    from botocore.config import Config
    conf = Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1},
                  connect_timeout=5, read_timeout=60, signature_version="s3v4",
                  max_pool_connections=4)
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint or d.https, aws_access_key_id=d.ak,
        aws_secret_access_key=d.sk, region_name=REGION, config=conf,
        verify=pki("ca.crt") if verify is None else verify)


def tls_context():
    return ssl.create_default_context(cafile=pki("ca.crt"))


def tls_socket(d, rcvbuf=None, timeout=10):
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    raw.settimeout(timeout)
    raw.connect(("127.0.0.1", d.tls_port))
    return tls_context().wrap_socket(raw, server_hostname="127.0.0.1")


def run_check(args):
    p = subprocess.run([os.environ["SFS_BIN"]] + args +
                       ["--data", os.path.join(E.root, "chk"), "--access-key", "AKCHECK",
                        "--secret-key", "SKCHECK12345", "--check"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")


def refused_msg(rc, out, want):
    check(rc == 2, "--check exited %d, expected 2: %s" % (rc, out))
    check(want in out, "expected %r in: %s" % (want, out))


os.makedirs(os.path.join(E.root, "chk"), exist_ok=True)
make_pki()
D = start("main")
S3 = client(D)
PLAIN = client(D, endpoint=D.endpoint, verify=False)
BODIES = {"one": b"x", "mib": os.urandom(1 << 20), "big": os.urandom(20 << 20)}


@T.case("--check: a good certificate and key pass, bad ones are named")
def _():
    rc, out = run_check(["--tls-listen", "127.0.0.1:0", "--tls-cert", pki("rsa.crt"),
                         "--tls-key", pki("rsa.key")])
    check(rc == 0 and "tls=127.0.0.1:0" in out, "good pair: rc=%d %s" % (rc, out))
    rc, out = run_check(["--tls-listen", "127.0.0.1:0", "--tls-cert", pki("rsa.crt"),
                         "--tls-key", pki("ec.key")])
    refused_msg(rc, out, "is not the key of the certificate")
    rc, out = run_check(["--tls-listen", "127.0.0.1:0", "--tls-cert", pki("rsa.key"),
                         "--tls-key", pki("rsa.key")])
    refused_msg(rc, out, "not a certificate")
    rc, out = run_check(["--tls-listen", "127.0.0.1:0", "--tls-cert", pki("rsa.crt"),
                         "--tls-key", pki("ext.cnf")])
    refused_msg(rc, out, "not a private key")
    rc, out = run_check(["--tls-listen", "127.0.0.1:0", "--tls-cert", pki("nope.crt"),
                         "--tls-key", pki("rsa.key")])
    refused_msg(rc, out, "cannot read")
    rc, out = run_check(["--tls-listen", "127.0.0.1:0"])
    refused_msg(rc, out, "--tls-listen needs --tls-cert")
    rc, out = run_check(["--tls-cert", pki("rsa.crt"), "--tls-key", pki("rsa.key")])
    refused_msg(rc, out, "--tls-cert needs --tls-listen")


@T.case("--check with --cluster DIR: node.crt + ca.crt and node.key by default")
def _():
    cdir = os.path.join(E.root, "cluster-dir")
    os.makedirs(cdir, exist_ok=True)
    for src, dst in (("ec.crt", "node.crt"), ("ca.crt", "ca.crt"), ("ec.key", "node.key")):
        with open(pki(src), "rb") as f, open(os.path.join(cdir, dst), "wb") as g:
            g.write(f.read())
    rc, out = run_check(["--cluster", cdir, "--tls-listen", "127.0.0.1:0"])
    check(rc == 0, "cluster default: rc=%d %s" % (rc, out))
    with open(pki("rsa.key"), "rb") as f, open(os.path.join(cdir, "node.key"), "wb") as g:
        g.write(f.read())
    rc, out = run_check(["--cluster", cdir, "--tls-listen", "127.0.0.1:0"])
    refused_msg(rc, out, "node.key is not the key of the certificate")


@T.case("the TLS port may not be the plain port (SO_REUSEPORT would split them)")
def _():
    port = free_port()
    p = subprocess.run([os.environ["SFS_BIN"], "--listen", "127.0.0.1:%d" % port, "--tls-listen",
                        "127.0.0.1:%d" % port, "--tls-cert", pki("rsa.crt"), "--tls-key",
                        pki("rsa.key"), "--data", os.path.join(E.root, "chk"), "--access-key",
                        "AKCHECK", "--secret-key", "SKCHECK12345"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    out = p.stdout.decode("utf-8", "replace")
    check(p.returncode == 1 and "same port as listen" in out,
          "rc=%d: %s" % (p.returncode, out[-400:]))


@T.case("boto3 over https: put and get 1 B, 1 MiB, 20 MiB (multipart)")
def _():
    from boto3.s3.transfer import TransferConfig
    S3.create_bucket(Bucket=B)
    S3.put_object(Bucket=B, Key="one", Body=BODIES["one"])
    S3.put_object(Bucket=B, Key="mib", Body=BODIES["mib"])
    tc = TransferConfig(multipart_threshold=8 << 20, multipart_chunksize=8 << 20)
    S3.upload_fileobj(io.BytesIO(BODIES["big"]), B, "big", Config=tc)
    head = S3.head_object(Bucket=B, Key="big")
    check(head["ETag"].strip('"').endswith("-3"), "20 MiB in 8 MiB parts: etag %s" % head["ETag"])
    for k, body in BODIES.items():
        got = S3.get_object(Bucket=B, Key=k)["Body"].read()
        eq(len(got), len(body), "%s length" % k)
        check(got == body, "%s: the bytes read over TLS differ" % k)


@T.case("ranged gets over https (block-unaligned starts and ends)")
def _():
    body = BODIES["big"]
    for a, b in ((0, 0), (1, 65536), (65535, 65537), (100000, 5 << 20), (8 << 20, (8 << 20) + 3),
                 (len(body) - 70000, len(body) - 1)):
        r = S3.get_object(Bucket=B, Key="big", Range="bytes=%d-%d" % (a, b))
        eq(r["ResponseMetadata"]["HTTPStatusCode"], 206, "status of %d-%d" % (a, b))
        got = r["Body"].read()
        check(got == body[a:b + 1], "range %d-%d: %d bytes, wrong content" % (a, b, len(got)))
    got = S3.get_object(Bucket=B, Key="mib", Range="bytes=-1000")["Body"].read()
    check(got == BODIES["mib"][-1000:], "suffix range")


@T.case("list and delete over https; the plain port sees the same objects")
def _():
    keys = sorted(o["Key"] for o in S3.list_objects_v2(Bucket=B).get("Contents", []))
    eq(keys, ["big", "mib", "one"], "listing")
    check(PLAIN.get_object(Bucket=B, Key="mib")["Body"].read() == BODIES["mib"],
          "plain port: 1 MiB differs")
    S3.put_object(Bucket=B, Key="gone", Body=b"bye")
    S3.delete_object(Bucket=B, Key="gone")
    keys = sorted(o["Key"] for o in PLAIN.list_objects_v2(Bucket=B).get("Contents", []))
    eq(keys, ["big", "mib", "one"], "listing after delete")


@T.case("presigned URL over https (urllib trusting the CA)")
def _():
    url = S3.generate_presigned_url("get_object", Params={"Bucket": B, "Key": "mib"},
                                    ExpiresIn=300)
    check(url.startswith("https://127.0.0.1:%d/" % D.tls_port), "url %s" % url[:80])
    with urllib.request.urlopen(url, context=tls_context(), timeout=30) as r:
        eq(r.status, 200, "status")
        check(r.read() == BODIES["mib"], "presigned body differs")


@T.case("aws cli --ca-bundle: cp up and down")
def _():
    cl = Clients(os.path.join(E.root, "cli"), D.https, D.ak, D.sk)
    src = os.path.join(E.work, "cli-up.bin")
    dst = os.path.join(E.work, "cli-down.bin")
    write_random_file(src, 3 << 20)
    cl.aws("--ca-bundle", pki("ca.crt"), "s3", "cp", src, "s3://%s/cli.bin" % B)
    cl.aws("--ca-bundle", pki("ca.crt"), "s3", "cp", "s3://%s/cli.bin" % B, dst)
    eq(sha256_file(dst), sha256_file(src), "sha256 of the copy")
    rc, out, err = cl.aws("s3", "ls", "s3://%s/" % B, check=False)
    check(rc != 0 and "CERTIFICATE_VERIFY_FAILED" in err,
          "without --ca-bundle the CLI must refuse the certificate: rc=%d %s" % (rc, err[-300:]))


@T.case("raw TLS: three pipelined GETs in one write, answered in order")
def _():
    s = tls_socket(D)
    try:
        heads = b"".join(signed_head_bytes(D.tls_port, D.ak, D.sk, "GET", "/%s/%s" % (B, k))
                         for k in ("one", "mib", "one"))
        s.sendall(heads)
        rd = Reader(s)
        for k in ("one", "mib", "one"):
            status, hdrs, body = rd.response()
            eq(status, 200, "status of %s" % k)
            check(body == BODIES[k], "%s: body differs" % k)
    finally:
        s.close()


def slow_get(key):
    """GETs key through a 4 KiB receive buffer, pausing at first: the daemon's sends block."""
    s = tls_socket(D, rcvbuf=4096, timeout=30)
    try:
        s.sendall(signed_head_bytes(D.tls_port, D.ak, D.sk, "GET", "/%s/%s" % (B, key)))
        h = hashlib.sha256()
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += s.recv(4096)
        head, rest = buf.split(b"\r\n\r\n", 1)
        check(head.startswith(b"HTTP/1.1 200"), "status line %r" % head[:40])
        got = len(rest)
        h.update(rest)
        n = 0
        while got < len(BODIES[key]):
            d = s.recv(4096)
            if not d:
                raise Fail("%s: closed after %d bytes" % (key, got))
            h.update(d)
            got += len(d)
            n += 1
            if n < 50:
                time.sleep(0.02)
        eq(h.hexdigest(), sha256(BODIES[key]), "sha256 of the slow read of %s" % key)
    finally:
        s.close()


@T.case("raw TLS: 20 MiB (streamed) and 200 KiB (from memory) GETs through a 4 KiB receive buffer")
def _():
    BODIES["200k"] = os.urandom(200 * 1024)
    S3.put_object(Bucket=B, Key="200k", Body=BODIES["200k"])
    slow_get("big")
    slow_get("200k")


def closed_within(s, seconds):
    """True when the daemon ends the connection (EOF, reset or a TLS alert) in time."""
    s.settimeout(seconds)
    try:
        while True:
            if not s.recv(4096):
                return True
    except (ConnectionResetError, ssl.SSLError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


@T.case("plain HTTP to the TLS port is refused and logged; the daemon keeps serving")
def _():
    s = socket.create_connection(("127.0.0.1", D.tls_port), timeout=5)
    s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    check(closed_within(s, 5), "the TLS port kept a plain HTTP connection open")
    s.close()
    time.sleep(0.2)
    m = re.search(r"tls_handshake_failed peer=127\.0\.0\.1:\d+ reason=error error=\"mbedtls=-0x[0-9a-f]+ [^\"]+\"",
                  D.log_text())
    check(m, "no tls_handshake_failed line with peer and mbedtls error: %s" % D.log_text()[-600:])
    check(S3.get_object(Bucket=B, Key="one")["Body"].read() == b"x", "TLS after the refusal")
    check(PLAIN.get_object(Bucket=B, Key="one")["Body"].read() == b"x", "plain after the refusal")


@T.case("a client stalled mid-handshake (or silent) is dropped after the header timeout")
def _():
    # A ClientHello record header announcing 512 bytes, and only 10 of them.
    partial = bytes([0x16, 0x03, 0x01, 0x02, 0x00]) + b"\x01\x00\x01\xfc\x03\x03" + b"\0" * 4
    stalled = socket.create_connection(("127.0.0.1", D.tls_port), timeout=5)
    stalled.sendall(partial)
    silent = socket.create_connection(("127.0.0.1", D.tls_port), timeout=5)
    t0 = time.monotonic()
    for name, s in (("stalled", stalled), ("silent", silent)):
        left = HEADER_TIMEOUT_MS / 1000.0 + 3 - (time.monotonic() - t0)
        check(closed_within(s, max(left, 0.1)), "%s client still connected after %.1fs"
              % (name, time.monotonic() - t0))
        s.close()
    took = time.monotonic() - t0
    check(took >= HEADER_TIMEOUT_MS / 1000.0 - 0.3, "dropped too early (%.2fs)" % took)
    time.sleep(0.2)
    check("reason=timeout" in D.log_text(), "no tls_handshake_failed reason=timeout line")
    check(S3.get_object(Bucket=B, Key="one")["Body"].read() == b"x", "TLS after the stall")


@T.case("32 threads x 20 requests over TLS")
def _():
    errors = []
    heads = {k: signed_head_bytes(D.tls_port, D.ak, D.sk, "GET", "/%s/%s" % (B, k))
             for k in ("one", "mib")}

    def worker(i):
        s = rd = None
        try:
            for j in range(20):
                if rd is None or i % 4 == 0:
                    if s:
                        s.close()
                    s = tls_socket(D, timeout=60)   # a quarter: a handshake per request
                    rd = Reader(s)
                k = "one" if (i + j) % 3 else "mib"
                s.sendall(heads[k])
                status, _, body = rd.response()
                if status != 200 or body != BODIES[k]:
                    errors.append("thread %d request %d: %s: status %d, %d bytes"
                                  % (i, j, k, status, len(body)))
            S3.put_object(Bucket=B, Key="t%d" % i, Body=b"%d" % i)
        except Exception as e:  # noqa: BLE001 — each failure is reported
            errors.append("thread %d: %s: %s" % (i, type(e).__name__, e))
        finally:
            if s:
                s.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(32)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    log("640 requests over TLS in %.1fs" % (time.monotonic() - t0))
    check(not errors, "%d failures, first: %s" % (len(errors), errors[:3]))
    for i in range(32):
        eq(S3.get_object(Bucket=B, Key="t%d" % i)["Body"].read(), b"%d" % i, "t%d" % i)


@T.case("an EC P-256 certificate serves too (ECDHE-ECDSA, curl)")
def _():
    d = start("ec", cert="ec")
    src = os.path.join(E.work, "ec-up.bin")
    write_random_file(src, 300000)
    c = client(d)
    c.create_bucket(Bucket="ecb")
    with open(src, "rb") as f:
        c.put_object(Bucket="ecb", Key="k", Body=f.read())
    url = c.generate_presigned_url("get_object", Params={"Bucket": "ecb", "Key": "k"})
    out = os.path.join(E.work, "ec-down.bin")
    p = subprocess.run(["curl", "-sS", "-v", "--cacert", pki("ca.crt"), "-o", out, url],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    err = p.stderr.decode("utf-8", "replace")
    check(p.returncode == 0, "curl rc=%d: %s" % (p.returncode, err[-400:]))
    check("ECDHE-ECDSA" in err, "expected an ECDHE-ECDSA suite: %s" %
          "".join(l for l in err.splitlines(True) if "SSL connection" in l))
    eq(sha256_file(out), sha256_file(src), "sha256 over the EC listener")


@T.case("--cluster without --tls-cert: the node certificate serves; a peer's object via TLS")
def _():
    import cluster_harness as H
    cpki = os.path.join(E.root, "cpki")
    os.makedirs(cpki)
    ca = H.make_ca(cpki)
    ids = ["node-0001", "node-0002"]
    addrs = {nid: "127.0.0.1:%d" % free_port() for nid in ids}
    seeds = {nid: 0x7171 * (i + 1) for i, nid in enumerate(ids)}
    dirs, nodes = [], []
    for nid in ids:
        root = os.path.join(E.root, "c-" + nid)
        os.makedirs(root)
        cert = H.make_node(cpki, ca, nid)
        dirs.append(H.cluster_dir(root, nid, cert, ca[1], "7e57" * 8, 1))
    H.write_map(dirs, addrs, "7e57" * 8, 3, 1, 1, seeds)
    for nid, cdir in zip(ids, dirs):
        d = Daemon(os.path.dirname(cdir), ak=D.ak, sk=D.sk, ndirs=1, pids_root=E.root,
                   extra=["--cluster", cdir, "--internal-listen", addrs[nid],
                          "--tls-listen", "127.0.0.1:0"])
        STARTED.append(d)
        d.start(timeout=30)
        m = re.search(r"ready listen=\S+ tls=127\.0\.0\.1:(\d+) ", d.log_text())
        check(m, "no tls= in the ready line of %s: %s" % (nid, d.log_text()[-300:]))
        d.tls_port = int(m.group(1))
        nodes.append(d)
    # A key that only node 2 owns (R=1), written through node 1's plain port.
    order = [(nid, seeds[nid], 1, False) for nid in sorted(ids)]
    key = next("k%d" % i for i in range(1000)
               if H.owners("cbk", "k%d" % i, order, 1) == ["node-0002"])
    body = os.urandom(700000)
    c1 = client(nodes[0], endpoint=nodes[0].endpoint, verify=False)
    c1.create_bucket(Bucket="cbk")
    c1.put_object(Bucket="cbk", Key=key, Body=body)
    # Node 1's TLS port: its cluster certificate (CN node-0001, no SAN) chained to ca.crt.
    ctx = ssl.create_default_context(cafile=ca[1])
    ctx.check_hostname = False
    raw = socket.create_connection(("127.0.0.1", nodes[0].tls_port), timeout=30)
    s = ctx.wrap_socket(raw)
    try:
        cn = dict(x[0] for x in s.getpeercert()["subject"]).get("commonName")
        eq(cn, "node-0001", "certificate CN")
        rd = Reader(s)
        s.sendall(signed_head_bytes(nodes[0].tls_port, D.ak, D.sk, "GET", "/cbk/" + key))
        status, _, got = rd.response()
        eq(status, 200, "GET of node 2's object via node 1 over TLS")
        check(got == body, "the peer's object read over TLS differs (%d bytes)" % len(got))
        s.sendall(signed_head_bytes(nodes[0].tls_port, D.ak, D.sk, "GET", "/cbk/" + key,
                                    extra={"Range": "bytes=65530-300000"}))
        status, _, got = rd.response()
        eq(status, 206, "ranged GET status")
        check(got == body[65530:300001], "ranged peer read over TLS differs")
    finally:
        s.close()


@T.case("daemons stop cleanly (SIGTERM -> 0, no sanitizer report)")
def _():
    problems = []
    for d in STARTED:
        try:
            d.check_clean_stop()
        except Fail as e:
            problems.append(str(e)[:500])
    check(not problems, "; ".join(problems))


T.done()
