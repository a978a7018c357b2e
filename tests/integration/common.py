#!/usr/bin/python3
"""common.py — shared helpers for the Cairn integration suites.

Two roles:
  * a library imported by every test_*.py: the daemon (start/stop/kill), case counting
    (`ok - name` / `FAIL - name: reason`), boto3 clients, a small SigV4 signer for raw
    requests, and helpers to run the CLI clients with a private config.
  * `common.py run SCRIPT` — the per-script harness used by run.sh: makes a temp root,
    starts a fresh daemon (unless the script says `# sfs: own-daemon`), runs the script
    with SFS_* in its environment, stops the daemon (SIGTERM → exit 0, no sanitizer
    report in its log) and cleans up.

Only loopback (127.0.0.1) is ever contacted.
"""
import datetime
import hashlib
import hmac
import http.client
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
REGION = "us-east-1"
QUICK = os.environ.get("SFS_QUICK") == "1"
SANITIZER_RE = re.compile(r"AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|"
                          r"runtime error|ThreadSanitizer")


def log(msg):
    """Diagnostics go to stderr (never counted); run.sh shows them on failure."""
    print("# " + str(msg).replace("\n", "\n# "), file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- cases

class Fail(Exception):
    pass


class Suite:
    """Each @suite.case("name") runs the function at once and prints ok/FAIL."""

    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = 0

    def case(self, name):
        def deco(fn):
            t0 = time.monotonic()
            try:
                fn()
            except Exception as e:  # noqa: BLE001 — every error is a failed case
                self.failed += 1
                reason = "%s: %s" % (type(e).__name__, e) if not isinstance(e, Fail) else str(e)
                reason = " ".join(reason.split())[:600]
                print("FAIL - %s: %s" % (name, reason), flush=True)
                if not isinstance(e, (Fail, AssertionError)):
                    log(traceback.format_exc())
            else:
                self.passed += 1
                print("ok - %s" % name, flush=True)
            log("%s took %.2fs" % (name, time.monotonic() - t0))
            return fn
        return deco

    def done(self):
        log("%s: %d passed, %d failed" % (self.name, self.passed, self.failed))
        sys.exit(1 if self.failed else 0)


def eq(got, want, what="value"):
    if got != want:
        raise Fail("%s: expected %r, got %r" % (what, want, got))


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for blk in iter(lambda: f.read(1 << 20), b""):
            h.update(blk)
    return h.hexdigest()


def md5_hex(data):
    return hashlib.md5(data).hexdigest()


def multipart_etag(parts):
    """The S3 ETag of a multipart object made of these part bodies (no quotes)."""
    return "%s-%d" % (hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest(),
                      len(parts))


def write_random_file(path, size, seed=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 1 << 20)
            f.write(os.urandom(n))
            left -= n


# --------------------------------------------------------------------------- the daemon

def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def default_bin():
    b = os.environ.get("SFS_BIN") or os.path.join(REPO, "build/host/storagefsd")
    return os.path.abspath(b)


class Daemon:
    """One storagefsd on 127.0.0.1 with ndirs data directories under root.

    Logs go to root/daemon-N.log (N counts starts); pids are appended to root/pids so the
    harness can kill anything a crashed test left behind."""

    def __init__(self, root, ak=None, sk=None, ndirs=2, binpath=None, extra=None, pids_root=None):
        self.root = root
        self.extra = list(extra or [])          # more storagefsd flags
        self.pids_root = pids_root or root      # where the harness looks for leftover pids
        self.bin = binpath or default_bin()
        # SFS_TEST_AK/SFS_TEST_SK pin the keys (to replay a failure); random otherwise
        self.ak = ak or os.environ.get("SFS_TEST_AK") or "AK" + secrets.token_hex(8).upper()
        self.sk = sk or os.environ.get("SFS_TEST_SK") or secrets.token_urlsafe(30)
        self.dirs = [os.path.join(root, "data%d" % (i + 1)) for i in range(ndirs)]
        self.cwd = os.path.join(root, "cwd")
        self.proc = None
        self.port = None
        self.logpath = None
        self.nstarts = 0
        for d in self.dirs + [self.cwd]:
            os.makedirs(d, exist_ok=True)

    @property
    def endpoint(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self, timeout=10.0, port=None):
        last = None
        for attempt in range(3):
            try:
                return self._start_once(timeout, port or free_port())
            except Fail as e:
                last = e
                # A port race (someone grabbed it) is the only reason to retry.
                if "in use" not in str(e).lower():
                    raise
        raise last

    def _start_once(self, timeout, port):
        self.nstarts += 1
        self.port = port
        self.logpath = os.path.join(self.root, "daemon-%d.log" % self.nstarts)
        args = [self.bin, "--listen", "127.0.0.1:%d" % port]
        for d in self.dirs:
            args += ["--data", d]
        args += ["--access-key", self.ak, "--secret-key", self.sk, "--region", REGION]
        args += self.extra
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        logf = open(self.logpath, "ab")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                     cwd=self.cwd, env=env, start_new_session=True)
        logf.close()
        with open(os.path.join(self.pids_root, "pids"), "a") as f:
            f.write("%d\n" % self.proc.pid)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "ready listen=" in self.log_text():
                return self
            rc = self.proc.poll()
            if rc is not None:
                raise Fail("daemon exited with %s before ready; log tail: %s"
                           % (rc, self.log_text()[-800:]))
            time.sleep(0.02)
        self.kill9()
        raise Fail("daemon not ready within %.0fs; log tail: %s" % (timeout, self.log_text()[-800:]))

    def log_text(self, all_logs=False):
        paths = ([os.path.join(self.root, "daemon-%d.log" % i) for i in range(1, self.nstarts + 1)]
                 if all_logs else [self.logpath])
        out = []
        for p in paths:
            try:
                with open(p, "rb") as f:
                    out.append(f.read().decode("utf-8", "replace"))
            except OSError:
                pass
        return "".join(out)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=30.0):
        """SIGTERM and wait; returns the exit status (negative: killed by that signal)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill9()
                raise Fail("daemon did not exit within %.0fs of SIGTERM" % timeout)
        return self.proc.returncode

    def kill9(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def check_clean_stop(self):
        """Raises Fail unless SIGTERM → exit 0 and the logs hold no sanitizer report."""
        rc = self.stop()
        problems = []
        if rc != 0:
            problems.append("exit status %s after SIGTERM" % rc)
        m = SANITIZER_RE.search(self.log_text(all_logs=True))
        if m:
            txt = self.log_text(all_logs=True)
            problems.append("sanitizer report in log: %s" % txt[max(0, m.start() - 200):m.start() + 600])
        if problems:
            raise Fail("; ".join(problems) + "; log tail: " + self.log_text()[-600:])


class Env:
    """What a test script gets from the harness (its daemon)."""

    def __init__(self):
        e = os.environ
        if "SFS_PORT" not in e and "SFS_ROOT" not in e:
            sys.exit("run me through tests/integration/run.sh (or common.py run SCRIPT)")
        self.root = e["SFS_ROOT"]
        self.work = e["SFS_WORK"]
        self.ak = e.get("SFS_AK")
        self.sk = e.get("SFS_SK")
        self.port = int(e["SFS_PORT"]) if e.get("SFS_PORT") else None
        self.endpoint = "http://127.0.0.1:%d" % self.port if self.port else None
        self.data = e.get("SFS_DATA", "").split(":") if e.get("SFS_DATA") else []
        self.log = e.get("SFS_LOG")
        self.pid = int(e["SFS_PID"]) if e.get("SFS_PID") else None

    def log_text(self):
        with open(self.log, "rb") as f:
            return f.read().decode("utf-8", "replace")


# --------------------------------------------------------------------------- boto3

def s3client(endpoint, ak, sk, addressing="path", **cfg):
    import boto3
    from botocore.config import Config
    conf = Config(s3={"addressing_style": addressing}, retries={"total_max_attempts": 1},
                  connect_timeout=5, read_timeout=cfg.pop("read_timeout", 60),
                  signature_version="s3v4", **cfg)
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint, aws_access_key_id=ak, aws_secret_access_key=sk,
        region_name=REGION, config=conf)


def expect_error(fn, code, status=None):
    """fn() must raise a botocore ClientError with this S3 error code (and HTTP status)."""
    from botocore.exceptions import ClientError
    try:
        r = fn()
    except ClientError as e:
        got = e.response.get("Error", {}).get("Code")
        st = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if got != code or (status is not None and st != status):
            raise Fail("expected %s/%s, got %s/%s (%s)" % (code, status, got, st,
                                                           e.response.get("Error")))
        return e
    raise Fail("expected error %s, but the call succeeded: %r" % (code, _short(r)))


def _short(r):
    if isinstance(r, dict):
        r = {k: v for k, v in r.items() if k != "ResponseMetadata"}
    return str(r)[:300]


# --------------------------------------------------------------------------- raw SigV4

EMPTY_SHA = hashlib.sha256(b"").hexdigest()


def _hmac(key, msg):
    return hmac.new(key, msg.encode() if isinstance(msg, str) else msg, hashlib.sha256).digest()


def signing_key(sk, date, region=REGION):
    k = _hmac(("AWS4" + sk).encode(), date)
    k = _hmac(k, region)
    k = _hmac(k, "s3")
    return _hmac(k, "aws4_request")


def uri_encode(s, safe_slash=True):
    return urllib.parse.quote(s, safe="/-_.~" if safe_slash else "-_.~")


def canonical_query(query):
    """query: list of (name, value) pairs, unencoded."""
    pairs = sorted((uri_encode(k, False), uri_encode(v, False)) for k, v in query)
    return "&".join("%s=%s" % kv for kv in pairs)


def sign_headers(method, path, query, headers, payload_hash, ak, sk, region=REGION, when=None):
    """Adds x-amz-date, x-amz-content-sha256 and Authorization to headers (a dict whose
    keys are used as given; 'Host' must be present). path is the raw, already-encoded path
    exactly as it will be sent. Returns (headers, signature, scope, amz_date)."""
    when = when or datetime.datetime.utcnow()
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    date = amz_date[:8]
    headers = dict(headers)
    headers["x-amz-date"] = amz_date
    headers["x-amz-content-sha256"] = payload_hash
    canon = sorted((k.lower(), " ".join(str(v).strip().split())) for k, v in headers.items())
    signed = ";".join(k for k, _ in canon)
    creq = "\n".join([method, path, canonical_query(query),
                      "".join("%s:%s\n" % kv for kv in canon), signed, payload_hash])
    scope = "%s/%s/s3/aws4_request" % (date, region)
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, sha256(creq.encode())])
    sig = hmac.new(signing_key(sk, date, region), sts.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = ("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s"
                                % (ak, scope, signed, sig))
    return headers, sig, scope, amz_date


def raw_request(port, method, path, query=(), headers=None, body=b"", ak=None, sk=None,
                host=None, payload_hash=None, timeout=30):
    """One request on a fresh connection to 127.0.0.1:port; signed when ak is given.
    path: raw encoded path. Returns (status, headers-dict-lowercase, body)."""
    headers = dict(headers or {})
    headers.setdefault("Host", host or "127.0.0.1:%d" % port)
    if ak:
        ph = payload_hash or sha256(body)
        headers, _, _, _ = sign_headers(method, path, query, headers, ph, ak, sk)
    target = path
    if query:
        target += "?" + "&".join(uri_encode(k, False) + ("=" + uri_encode(v, False) if v != "" else "")
                                 for k, v in query)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, target, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        conn.close()


def xml_field(body, tag):
    m = re.search(r"<%s>(.*?)</%s>" % (tag, tag), body.decode("utf-8", "replace"), re.S)
    return m.group(1) if m else None


def expect_xml_error(status, body, want_status, want_code):
    if isinstance(want_status, int):
        want_status = (want_status,)
    code = xml_field(body, "Code")
    if status not in want_status or code != want_code:
        raise Fail("expected %s %s, got %s %s; body: %r" % (want_status, want_code, status, code,
                                                          body[:300]))
    check(b"<Error>" in body, "error body has no <Error> element: %r" % body[:300])


# --------------------------------------------------------------------------- raw HTTP responses

class Reader:
    """Parses HTTP/1.1 responses from a socket, one after the other."""

    def __init__(self, sock):
        self.s = sock
        self.buf = b""

    def _fill(self):
        d = self.s.recv(65536)
        if not d:
            raise Fail("connection closed by the daemon (have %r)" % self.buf[:200])
        self.buf += d

    def response(self, head_request=False):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
        if not m:
            raise Fail("bad status line %r" % lines[0])
        status = int(m.group(1))
        hdrs = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        if head_request or status in (100, 204, 304):
            return status, hdrs, b""
        if "content-length" in hdrs:
            n = int(hdrs["content-length"])
            while len(self.buf) < n:
                self._fill()
            body, self.buf = self.buf[:n], self.buf[n:]
            return status, hdrs, body
        if hdrs.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                while b"\r\n" not in self.buf:
                    self._fill()
                line, self.buf = self.buf.split(b"\r\n", 1)
                n = int(line.split(b";")[0], 16)
                while len(self.buf) < n + 2:
                    self._fill()
                body += self.buf[:n]
                self.buf = self.buf[n + 2:]
                if n == 0:
                    return status, hdrs, body
        # no length: body runs to EOF
        try:
            while True:
                self._fill()
        except Fail:
            pass
        body, self.buf = self.buf, b""
        return status, hdrs, body

    def closed_soon(self, timeout=5.0):
        """True when the daemon closes the connection within timeout."""
        self.s.settimeout(timeout)
        try:
            while True:
                d = self.s.recv(65536)
                if not d:
                    return True
                self.buf += d
        except (socket.timeout, ConnectionResetError):
            return False


def signed_head_bytes(port, ak, sk, method, path, query=(), extra=None, payload=EMPTY_SHA):
    """The bytes of a signed request head (request line + headers + blank line)."""
    h = {"Host": "127.0.0.1:%d" % port}
    h.update(extra or {})
    h, _, _, _ = sign_headers(method, path, list(query), h, payload, ak, sk)
    target = path
    if query:
        target += "?" + "&".join("%s=%s" % kv for kv in query)
    return ("%s %s HTTP/1.1\r\n" % (method, target) +
            "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n").encode()


# --------------------------------------------------------------------------- CLI clients

class Clients:
    """Private configs for aws, s3cmd and rclone under a directory; nothing read from ~."""

    def __init__(self, confdir, endpoint, ak, sk):
        self.dir = confdir
        self.endpoint = endpoint
        self.ak, self.sk = ak, sk
        os.makedirs(confdir, exist_ok=True)
        self.home = os.path.join(confdir, "home")
        os.makedirs(self.home, exist_ok=True)
        host = endpoint.split("//", 1)[1]
        self.aws_config = os.path.join(confdir, "aws.config")
        with open(self.aws_config, "w") as f:
            f.write("[default]\nregion = %s\noutput = json\ns3 =\n    addressing_style = path\n"
                    % REGION)
        self.aws_creds = os.path.join(confdir, "aws.credentials")
        with open(self.aws_creds, "w") as f:
            f.write("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n" % (ak, sk))
        self.s3cfg = os.path.join(confdir, "s3cfg")
        with open(self.s3cfg, "w") as f:
            f.write("[default]\naccess_key = %s\nsecret_key = %s\nhost_base = %s\n"
                    "host_bucket = %s\nuse_https = False\nsignature_v2 = False\n"
                    "bucket_location = %s\ncheck_ssl_certificate = False\nproxy_host =\n"
                    "progress_meter = False\n" % (ak, sk, host, host, REGION))
        self.rclone_conf = os.path.join(confdir, "rclone.conf")
        with open(self.rclone_conf, "w") as f:
            f.write("[cairn]\ntype = s3\nprovider = Other\nenv_auth = false\n"
                    "access_key_id = %s\nsecret_access_key = %s\nendpoint = %s\n"
                    "region = %s\nforce_path_style = true\n" % (ak, sk, endpoint, REGION))

    def env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RCLONE_"))}
        env.update({
            "HOME": self.home,
            "AWS_CONFIG_FILE": self.aws_config,
            "AWS_SHARED_CREDENTIALS_FILE": self.aws_creds,
            "AWS_ACCESS_KEY_ID": self.ak,
            "AWS_SECRET_ACCESS_KEY": self.sk,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_PAGER": "",
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_RETRY_MODE": "standard",
            "LC_ALL": "C.UTF-8",
            "no_proxy": "*", "NO_PROXY": "*",
        })
        for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
            env.pop(k, None)
        return env

    def run(self, args, check=True, timeout=300, cwd=None, input=None):
        t0 = time.monotonic()
        try:
            p = subprocess.run(args, env=self.env(), cwd=cwd, input=input, timeout=timeout,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except subprocess.TimeoutExpired:
            raise Fail("timed out after %ss: %s" % (timeout, " ".join(args)[:300]))
        out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
        log("$ %s  [rc=%d %.1fs]" % (" ".join(args)[:300], p.returncode, time.monotonic() - t0))
        if check and p.returncode != 0:
            raise Fail("rc=%d: %s :: %s %s" % (p.returncode, " ".join(args)[:200], err[-500:],
                                              out[-200:]))
        return p.returncode, out, err

    def aws(self, *args, check=True, timeout=300, json_out=False):
        # a 30 s read timeout (default 60 s) keeps a hung request from eating the time budget
        rc, out, err = self.run(["/usr/bin/aws", "--endpoint-url", self.endpoint,
                                 "--cli-read-timeout", "30"] + list(args),
                                check=check, timeout=timeout)
        if json_out:
            import json
            return json.loads(out) if out.strip() else {}
        return rc, out, err

    def aws_err(self, code, *args):
        """The aws command must fail with this S3 error code."""
        rc, out, err = self.aws(*args, check=False)
        if rc == 0:
            raise Fail("expected %s, the command succeeded: %s" % (code, out[:300]))
        if "(%s)" % code not in err:
            raise Fail("expected (%s) in stderr, got: %s" % (code, err.strip()[-400:]))
        return err

    def s3cmd(self, *args, check=True, timeout=300):
        return self.run(["/usr/bin/s3cmd", "-c", self.s3cfg, "--no-progress"] + list(args),
                        check=check, timeout=timeout)

    def rclone(self, *args, check=True, timeout=300):
        return self.run(["/usr/bin/rclone", "--config", self.rclone_conf, "--s3-force-path-style",
                         "--retries", "1", "--low-level-retries", "1"] + list(args),
                        check=check, timeout=timeout)


def compare_trees(a, b):
    """Returns a list of differences between two directory trees (names and contents)."""
    def walk(root):
        out = {}
        for dp, dn, fn in os.walk(root):
            for n in fn:
                p = os.path.join(dp, n)
                out[os.path.relpath(p, root)] = sha256_file(p)
        return out
    ta, tb = walk(a), walk(b)
    diffs = []
    for k in sorted(set(ta) | set(tb)):
        if k not in ta:
            diffs.append("only in copy: %r" % k)
        elif k not in tb:
            diffs.append("missing in copy: %r" % k)
        elif ta[k] != tb[k]:
            diffs.append("content differs: %r" % k)
    return diffs


ODD_NAMES = [
    "plain.txt", "with space.txt", "per%cent.bin", "per%25cent-literal.bin", "plus+sign.dat",
    "a+b c%d.txt", "unicodé-ñ.txt", "日本語ファイル.txt", "emoji-😀.bin", "tilde~x",
    "semi;colon", "comma,x", "eq=sign", "amp&x", "hash#x", "quote'x", "paren(1)", "at@x",
    "dollar$x", "bang!x", "brackets[1]", "curly{x}", "caret^x", "backtick`x", "dots...x",
    ".hidden", "-leadingdash", "UPPER.TXT", "x" * 200,
]


def make_tree(root, nfiles=50, max_size=40000):
    """A tree of nfiles files with nested paths and odd names; returns the relative paths."""
    import random
    rnd = random.Random(1234)
    dirs = ["", "sub", "sub/deeper", "sp ace dir", "sub/ü nested/x+y", "a%20b", "z/y/x/w/v"]
    paths = []
    i = 0
    while len(paths) < nfiles:
        d = dirs[i % len(dirs)]
        n = ODD_NAMES[i % len(ODD_NAMES)]
        rel = os.path.join(d, "%02d-%s" % (i, n)) if d else "%02d-%s" % (i, n)
        full = os.path.join(root, rel)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        size = rnd.choice([0, 1, 100, 4096, 16384, 16385, rnd.randint(0, max_size)])
        with open(full, "wb") as f:
            f.write(os.urandom(size))
        paths.append(rel)
        i += 1
    return paths


# --------------------------------------------------------------------------- harness

def harness(script, timeout):
    """Runs one test script against a fresh daemon; prints its case lines plus harness
    cases; returns 0/1."""
    name = os.path.basename(script)
    with open(script, encoding="utf-8") as f:
        head = f.read(2000)
    own = "# sfs: own-daemon" in head
    root = tempfile.mkdtemp(prefix="cairn-it-")
    work = os.path.join(root, "work")
    os.makedirs(work)
    failed = False
    d = None

    def fail(msg):
        nonlocal failed
        failed = True
        print("FAIL - %s: %s" % (name, " ".join(msg.split())[:1500]), flush=True)

    env = dict(os.environ)
    env.update({"SFS_ROOT": root, "SFS_WORK": work, "SFS_BIN": default_bin(),
                "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": HERE})
    try:
        if not own:
            d = Daemon(root)
            try:
                d.start()
            except Fail as e:
                fail("daemon start: %s" % e)
                return 1
            env.update({"SFS_PORT": str(d.port), "SFS_AK": d.ak, "SFS_SK": d.sk,
                        "SFS_DATA": ":".join(d.dirs), "SFS_LOG": d.logpath,
                        "SFS_PID": str(d.proc.pid)})
        t0 = time.monotonic()
        # stdout (case lines) goes straight through; stderr (diagnostics) to a file
        errpath = os.path.join(root, "stderr.txt")
        with open(errpath, "wb") as errf:
            p = subprocess.Popen(["/usr/bin/python3", script], stdout=sys.stdout, stderr=errf,
                                 cwd=work, env=env, start_new_session=True)
            try:
                rc = p.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
                rc = None
        elapsed = time.monotonic() - t0
        with open(errpath, "rb") as f:
            errtxt = f.read().decode("utf-8", "replace")
        if rc is None:
            fail("script timed out after %ds" % timeout)
        elif rc not in (0, 1):
            fail("script crashed (exit %s): %s" % (rc, errtxt[-1200:]))
        if rc != 0 or os.environ.get("SFS_VERBOSE") == "1":
            sys.stderr.write(errtxt[-20000:])
        if d is not None:
            alive = d.alive()
            try:
                d.check_clean_stop()
                if not alive:
                    raise Fail("daemon was not running at the end of the script (crashed?)")
                print("ok - %s: daemon stopped cleanly (SIGTERM -> exit 0, no sanitizer report)"
                      % name, flush=True)
            except Fail as e:
                fail("daemon stop: %s" % e)
        else:
            # own-daemon scripts check their daemons; here only the sanitizer logs.
            for lp in sorted(os.listdir(root)):
                if lp.startswith("daemon-") and lp.endswith(".log"):
                    with open(os.path.join(root, lp), "rb") as f:
                        txt = f.read().decode("utf-8", "replace")
                    m = SANITIZER_RE.search(txt)
                    if m:
                        fail("sanitizer report in %s: %s" % (lp, txt[max(0, m.start() - 200):m.start() + 800]))
        if failed or rc != 0:
            for lp in sorted(os.listdir(root)):
                if lp.startswith("daemon-") and lp.endswith(".log"):
                    with open(os.path.join(root, lp), "rb") as f:
                        txt = f.read().decode("utf-8", "replace")
                    sys.stderr.write("# --- %s (last 3000 bytes) ---\n%s\n" % (lp, txt[-3000:]))
        log("%s finished in %.1fs" % (name, elapsed))
        return 1 if (failed or rc != 0) else 0
    finally:
        if d is not None:
            d.kill9()
        # anything a crashed script left running
        try:
            with open(os.path.join(root, "pids")) as f:
                for line in f:
                    try:
                        pid = int(line)
                        with open("/proc/%d/cmdline" % pid, "rb") as c:
                            mine = root.encode() in c.read()  # guards against pid reuse
                        if mine:
                            os.kill(pid, signal.SIGKILL)
                    except (OSError, ValueError):
                        pass
        except OSError:
            pass
        if os.environ.get("SFS_KEEP") == "1":
            log("kept %s" % root)
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "run":
        sys.exit(harness(os.path.abspath(sys.argv[2]),
                         int(sys.argv[3]) if len(sys.argv) > 3 else 900))
    sys.exit("usage: common.py run SCRIPT [TIMEOUT_S]")
