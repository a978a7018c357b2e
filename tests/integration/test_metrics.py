#!/usr/bin/python3
# sfs: own-daemon
"""Prometheus metrics (docs/ARCHITECTURE.md, "Status and metrics").

The daemon runs with --metrics-listen 127.0.0.1:<port>, a second listener that serves only
GET /metrics, unauthenticated, in Prometheus text format.

1. boto3 requests (bucket, PUTs, GETs, a HEAD, a missing key, a listing) move
   cairn_http_requests_total{op,code} by exactly the requests made, per operation and status
   class; each latency histogram is cumulative, monotone, +Inf == _count == the operation's
   requests; per-disk lines name every data directory and the disks' write counters moved.
2. Raw signed requests (exact bodies) move cairn_http_bytes_total{dir="in"} by the request
   body bytes and {dir="out"} by the response body bytes, exactly.
3. Anything but GET /metrics on the metrics address is 404; the S3 port still refuses the
   unsigned request (403) and serves the same families signed as GET /?cairn-metrics.
4. The option from a config file works; the S3 port given as --metrics-listen is refused.
"""
import http.client
import os
import re

from common import (Daemon, Env, Fail, Suite, check, eq, expect_error, free_port, log,
                    raw_request, s3client)

E = Env()
T = Suite("metrics")
B = "metrics"
SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL_RE = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
STARTED = []


def start(extra, name):
    root = os.path.join(E.root, name)
    os.makedirs(root, exist_ok=True)
    d = Daemon(root, ndirs=2, extra=extra, pids_root=E.root)
    STARTED.append(d)
    d.start(timeout=20)
    m = re.search(r"ready listen=\S+ .* metrics=(\S+)", d.log_text())
    check(m, "no metrics= in the ready line: %s" % d.log_text()[-400:])
    d.metrics = m.group(1)
    return d


def http_get(addr, path, method="GET"):
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request(method, path)
        r = conn.getresponse()
        return r.status, r.getheader("Content-Type"), r.read()
    finally:
        conn.close()


def parse(text):
    """Prometheus text -> ({(name, frozenset(labels)): value}, {family: type})."""
    samples, types = {}, {}
    for ln in text.splitlines():
        if ln.startswith("# TYPE "):
            _, _, fam, typ = ln.split(" ", 3)
            check(fam not in types, "TYPE of %s given twice" % fam)
            types[fam] = typ
            continue
        if not ln or ln.startswith("#"):
            continue
        m = SAMPLE_RE.match(ln)
        check(m, "malformed sample line %r" % ln)
        labels = frozenset(LABEL_RE.findall(m.group(2) or ""))
        key = (m.group(1), labels)
        check(key not in samples, "sample given twice: %r" % ln)
        samples[key] = float(m.group(3))
    for name, _ in samples:
        fam = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
        check(fam in types, "sample %s has no # TYPE line" % name)
    return samples, types


def scrape(d):
    st, ctype, body = http_get(d.metrics, "/metrics")
    eq(st, 200, "GET /metrics status")
    eq(ctype, "text/plain; version=0.0.4", "GET /metrics Content-Type")
    return parse(body.decode())[0]


def val(s, name, **labels):
    return s.get((name, frozenset(labels.items())), 0.0)


def requests(s, op):
    return sum(v for (n, lb), v in s.items()
               if n == "cairn_http_requests_total" and ("op", op) in lb)


def histogram_problems(s):
    """Every operation's histogram: monotone buckets, +Inf == _count == its requests."""
    probs = []
    ops = {dict(lb)["op"] for (n, lb) in s if n == "cairn_http_request_duration_seconds_count"}
    for op in sorted(ops):
        buckets = sorted((float(dict(lb)["le"]), v) for (n, lb), v in s.items()
                         if n == "cairn_http_request_duration_seconds_bucket" and ("op", op) in lb)
        count = val(s, "cairn_http_request_duration_seconds_count", op=op)
        total = val(s, "cairn_http_request_duration_seconds_sum", op=op)
        if len(buckets) < 10 or buckets[-1][0] != float("inf"):
            probs.append("%s: %d buckets, last le=%s" % (op, len(buckets), buckets[-1:]))
        if any(b[1] > a[1] for b, a in zip(buckets, buckets[1:])):
            probs.append("%s: buckets not monotone: %s" % (op, buckets))
        if buckets and buckets[-1][1] != count:
            probs.append("%s: +Inf %s != _count %s" % (op, buckets[-1][1], count))
        if count != requests(s, op):
            probs.append("%s: _count %s != requests_total %s" % (op, count, requests(s, op)))
        if not 0 < total < count * 60:
            probs.append("%s: _sum %s for %s requests" % (op, total, count))
    return probs


D = start(["--metrics-listen", "127.0.0.1:%d" % free_port()], "main")
C = s3client(D.endpoint, D.ak, D.sk)


@T.case("boto3 requests move requests_total by operation and status class, and the histograms")
def _():
    before = scrape(D)
    C.create_bucket(Bucket=B)
    for i in range(3):
        C.put_object(Bucket=B, Key="k%d" % i, Body=os.urandom(100000))
    for i in range(2):
        eq(len(C.get_object(Bucket=B, Key="k%d" % i)["Body"].read()), 100000, "GET length")
    C.head_object(Bucket=B, Key="k2")
    expect_error(lambda: C.get_object(Bucket=B, Key="nope"), "NoSuchKey", 404)
    eq(len(C.list_objects_v2(Bucket=B)["Contents"]), 3, "listing")
    after = scrape(D)
    want = [("CreateBucket", "2xx", 1), ("PutObject", "2xx", 3), ("GetObject", "2xx", 2),
            ("GetObject", "4xx", 1), ("HeadObject", "2xx", 1), ("ListObjectsV2", "2xx", 1)]
    for op, code, n in want:
        d = (val(after, "cairn_http_requests_total", op=op, code=code) -
             val(before, "cairn_http_requests_total", op=op, code=code))
        eq(d, n, "requests_total{op=%s,code=%s} delta" % (op, code))
    for op, n in (("PutObject", 3), ("GetObject", 3)):
        d = (val(after, "cairn_http_request_duration_seconds_count", op=op) -
             val(before, "cairn_http_request_duration_seconds_count", op=op))
        eq(d, n, "duration_seconds_count{op=%s} delta" % op)
    probs = histogram_problems(after)
    eq(probs, [], "histograms")
    ops = {dict(lb)["op"] for (n, lb) in after if n == "cairn_http_request_duration_seconds_count"}
    log("operations with a histogram: %s" % sorted(ops))


@T.case("per-disk and node lines: every data directory, online, writes counted")
def _():
    s = scrape(D)
    eq(val(s, "cairn_disks_online"), 2.0, "cairn_disks_online")
    check(("cairn_heal_queue", frozenset()) in s, "no cairn_heal_queue")
    check(("cairn_healed_total", frozenset()) in s, "no cairn_healed_total")
    for name in ("cairn_disk_online", "cairn_disk_errors_total", "cairn_disk_writes_total",
                 "cairn_disk_free_bytes", "cairn_disk_read_bytes_total"):
        paths = sorted(dict(lb)["path"] for (n, lb) in s if n == name)
        eq(paths, sorted(D.dirs), "paths of %s" % name)
    for (n, lb), v in s.items():
        if n == "cairn_disk_online":
            eq(v, 1.0, "cairn_disk_online %s" % dict(lb)["path"])
        if n == "cairn_disk_writes_total":     # R=2 on 2 disks: each took the 3 PUTs
            check(v >= 3, "cairn_disk_writes_total %s = %s" % (dict(lb)["path"], v))


@T.case("bytes_total: in = request body bytes, out = response body bytes, exactly")
def _():
    before = scrape(D)
    bodies = [os.urandom(n) for n in (1, 5000, 300000)]
    sent = got = 0
    for i, b in enumerate(bodies):
        st, _, rb = raw_request(D.port, "PUT", "/%s/raw%d" % (B, i), body=b, ak=D.ak, sk=D.sk)
        eq(st, 200, "PUT raw%d" % i)
        sent += len(b)
        got += len(rb)
    for i, b in enumerate(bodies):
        st, _, rb = raw_request(D.port, "GET", "/%s/raw%d" % (B, i), ak=D.ak, sk=D.sk)
        eq((st, rb == b), (200, True), "GET raw%d" % i)
        got += len(rb)
    st, _, rb = raw_request(D.port, "GET", "/%s/missing" % B, ak=D.ak, sk=D.sk)
    eq(st, 404, "GET missing")
    got += len(rb)
    st, _, rb = raw_request(D.port, "HEAD", "/%s/raw2" % B, ak=D.ak, sk=D.sk)
    eq((st, rb), (200, b""), "HEAD raw2")
    after = scrape(D)
    eq(val(after, "cairn_http_bytes_total", dir="in") - val(before, "cairn_http_bytes_total", dir="in"),
       float(sent), "bytes in delta")
    eq(val(after, "cairn_http_bytes_total", dir="out") - val(before, "cairn_http_bytes_total", dir="out"),
       float(got), "bytes out delta")


@T.case("the metrics address: anything but GET /metrics is 404, HEAD /metrics has no body")
def _():
    for method, path in (("GET", "/"), ("GET", "/metrics/"), ("GET", "/metricsx"),
                         ("GET", "/%s/k0" % B), ("GET", "/?cairn-metrics"),
                         ("POST", "/metrics"), ("PUT", "/metrics"), ("DELETE", "/metrics")):
        st, _, body = http_get(D.metrics, path, method)
        eq(st, 404, "%s %s" % (method, path))
        check(b"cairn_" not in body, "%s %s leaked metrics" % (method, path))
    st, _, body = http_get(D.metrics, "/metrics?x=1")
    eq((st, body.startswith(b"# HELP")), (200, True), "GET /metrics?x=1")
    st, _, body = http_get(D.metrics, "/metrics", "HEAD")
    eq((st, body), (200, b""), "HEAD /metrics")


@T.case("the S3 port still refuses unsigned requests; signed /?cairn-metrics has the same families")
def _():
    before = scrape(D)
    for path, q in (("/", [("cairn-metrics", "")]), ("/metrics", []), ("/", [("cairn-status", "")])):
        st, _, body = raw_request(D.port, "GET", path, query=q)
        eq(st, 403, "unsigned GET %s%s on the S3 port" % (path, "?" + q[0][0] if q else ""))
        check(b"cairn_" not in body, "unsigned request got metrics")
    after = scrape(D)
    eq(requests(after, "none") - requests(before, "none"), 3.0, "op=none requests delta")
    st, hdrs, body = raw_request(D.port, "GET", "/", query=[("cairn-metrics", "")], ak=D.ak, sk=D.sk)
    eq((st, hdrs.get("content-type")), (200, "text/plain; version=0.0.4"), "signed /?cairn-metrics")
    signed, types = parse(body.decode())
    _, utypes = parse(http_get(D.metrics, "/metrics")[2].decode())
    eq(sorted(types.items()), sorted(utypes.items()), "families (signed vs /metrics)")
    for fam in ("cairn_http_requests_total", "cairn_http_bytes_total",
                "cairn_http_request_duration_seconds", "cairn_disk_errors_total", "cairn_heal_queue"):
        check(fam in types, "family %s missing" % fam)
    eq(histogram_problems(signed), [], "histograms of the signed text")


@T.case("metrics-listen from a config file; the S3 port as --metrics-listen is refused")
def _():
    root = os.path.join(E.root, "conf")
    os.makedirs(root, exist_ok=True)
    conf = os.path.join(root, "storagefsd.conf")
    with open(conf, "w") as f:
        f.write("# test_metrics.py\nmetrics-listen = 127.0.0.1:%d\n" % free_port())
    d = start(["--config", conf], "conf")
    st, _, body = http_get(d.metrics, "/metrics")
    eq((st, b"cairn_disks_online 2" in body), (200, True), "GET /metrics of the config-file daemon")
    d.check_clean_stop()
    port = free_port()
    bad = Daemon(os.path.join(E.root, "same"), ndirs=1, pids_root=E.root,
                 extra=["--metrics-listen", "127.0.0.1:%d" % port])
    STARTED.append(bad)
    try:
        bad.start(timeout=10, port=port)
    except Fail as e:
        check("metrics_listen_failed" in bad.log_text(), "refused, but not why: %s" % e)
    else:
        raise Fail("daemon started with --metrics-listen on its S3 port")


@T.case("clean stop with the metrics listener (SIGTERM -> exit 0, no sanitizer report)")
def _():
    # a keep-alive scrape connection left open must not hold up the drain
    host, port = D.metrics.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("GET", "/metrics")
    conn.getresponse().read()
    D.check_clean_stop()
    conn.close()


for dm in STARTED:
    dm.kill9()
# the harness checks sanitizer reports only in $SFS_ROOT/daemon-*.log: copy ours there
for dm in STARTED:
    for i in range(1, dm.nstarts + 1):
        src = os.path.join(dm.root, "daemon-%d.log" % i)
        if os.path.exists(src):
            with open(src, "rb") as f, open(os.path.join(
                    E.root, "daemon-%s-%d.log" % (os.path.basename(dm.root), i)), "wb") as g:
                g.write(f.read())
T.done()
