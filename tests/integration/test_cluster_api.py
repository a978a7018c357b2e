#!/usr/bin/python3
# sfs: own-daemon
"""The internal API of docs/CLUSTER.md between two real storagefsd processes started with
--cluster and --internal-listen, spoken to by a Python TLS client holding a node's
certificate: a replica PUT with a version and read back byte-exact with its headers (and a
range), an older version refused with the held one, a tombstone, a listing page that shows
it, bucket create/list/delete; clients without a certificate, with one from another CA, or
with one for a node that is not in the map are refused.

Certificates come from openssl (EC P-256, the cluster CA's shape), with extendedKeyUsage
serverAuth + clientAuth: a node is both server and client of this API. The map is written
by hand as <cluster dir>/map.json (the format of docs/CLUSTER.md)."""
import base64
import hashlib
import http.client
import json
import os
import ssl
import subprocess

from common import (Daemon, Env, Suite, check, default_bin, eq, free_port, log)
import cluster_harness as H

E = Env()
T = Suite("cluster_api")
ROOT = E.root
PKI = os.path.join(ROOT, "pki")
NODES = {}







def make_ca(name):
    return H.make_ca(PKI, name)


def make_node(ca, cn, name=None):
    """A node key and certificate signed by ca; returns (key, crt) paths."""
    return H.make_node(PKI, ca, cn, name)


def cluster_dir(name, node_id, cert, ca_crt, controller):
    return H.cluster_dir(os.path.join(ROOT, name), node_id, cert, ca_crt, "c0ffee" * 5 + "00", 2,
                         controller)


def write_map(dirs, addrs):
    H.write_map(dirs, addrs, "c0ffee" * 5 + "00", 3, 2, 2,
                {nid: 0xa1 + i for i, nid in enumerate(sorted(addrs))})


def ctx_for(client=None, ca=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_verify_locations(ca or os.path.join(PKI, "ca.crt"))
    ctx.check_hostname = False   # the server is named by its CN (checked below), not a host
    if client:
        ctx.load_cert_chain(os.path.join(PKI, client + ".crt"), os.path.join(PKI, client + ".key"))
    return ctx


def call(node, method, path, body=None, headers=None, client="node-0002", want_cn=None):
    """One request to node's internal API; returns (status, headers (lowercase), body)."""
    host, port = NODES[node]["addr"].rsplit(":", 1)
    conn = http.client.HTTPSConnection(host, int(port), context=ctx_for(client), timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        cert = conn.sock.getpeercert()
        cn = dict(x[0] for x in cert["subject"])["commonName"]
        eq(cn, want_cn or node, "server certificate CN")
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


DATA = os.urandom(300 * 1024 + 17)
META = b"\x00\x01x-amz-meta-a: 1\n" * 10
HDRS = {"X-Cairn-Version": "1000", "X-Cairn-ETag": hashlib.md5(DATA).hexdigest(),
        "X-Cairn-Mtime-Ms": "1700000000999", "X-Cairn-Parts": "0",
        "X-Cairn-Meta": base64.b64encode(META).decode()}
KEY_PATH = "/i/v1/o/b/dir%2Fkey%20with%20space%E2%9C%93"


@T.case("setup: CA, node certificates, two storagefsd with --cluster and --internal-listen")
def _():
    os.makedirs(PKI)
    ca = make_ca("ca")
    other = make_ca("other-ca")
    for cn in ("node-0001", "node-0002", "node-0099"):
        make_node(ca, cn)
    make_node(other, "node-0002", "rogue-0002")
    addrs = {"node-0001": "127.0.0.1:%d" % free_port(), "node-0002": "127.0.0.1:%d" % free_port()}
    dead = "127.0.0.1:%d" % free_port()   # node A's controller: down (the fetcher backs off)
    dirs = []
    for i, nid in enumerate(sorted(addrs)):
        cert = (os.path.join(PKI, nid + ".key"), os.path.join(PKI, nid + ".crt"))
        cd = cluster_dir("n%d" % (i + 1), nid, cert, ca[1], dead if i == 0 else None)
        dirs.append(cd)
        NODES[nid] = {"addr": addrs[nid], "dir": cd}
    write_map(dirs, addrs)
    for nid in sorted(addrs):
        root = os.path.dirname(NODES[nid]["dir"])
        d = Daemon(root, extra=["--cluster", NODES[nid]["dir"], "--internal-listen",
                                NODES[nid]["addr"], "--scrub-budget-pct", "0"],
                   pids_root=ROOT)
        d.start(timeout=20)
        NODES[nid]["daemon"] = d
        check("internal=%s" % NODES[nid]["addr"] in d.log_text(),
              "no internal= in the ready line: %s" % d.log_text()[-500:])
        check("cluster_map_loaded" in d.log_text() and "version=3" in d.log_text(),
              "map.json not loaded: %s" % d.log_text()[-500:])


@T.case("bucket create on a node; again is 409 bucket_exists; GET /i/v1/b lists it")
def _():
    st, _, body = call("node-0001", "PUT", "/i/v1/b/b")
    eq(st, 200, "create status (%r)" % body)
    st, _, body = call("node-0001", "PUT", "/i/v1/b/b")
    eq((st, json.loads(body)["error"]), (409, "bucket_exists"), "second create")
    st, _, body = call("node-0001", "GET", "/i/v1/b")
    eq(st, 200, "list status")
    eq([b["name"] for b in json.loads(body)["buckets"]], ["b"], "buckets")


@T.case("PUT a replica with version 1000; GET returns it byte-exact with its headers")
def _():
    st, h, body = call("node-0001", "PUT", KEY_PATH, body=DATA, headers=HDRS)
    eq(st, 200, "PUT status (%r)" % body[:200])
    eq(h.get("x-cairn-version"), "1000", "held version in the reply")
    st, h, body = call("node-0001", "GET", KEY_PATH)
    eq(st, 200, "GET status")
    check(body == DATA, "body differs (%d bytes, want %d)" % (len(body), len(DATA)))
    for k, v in HDRS.items():
        eq(h.get(k.lower()), v, k)
    st, h, body = call("node-0001", "HEAD", KEY_PATH)
    eq((st, h.get("content-length"), h.get("x-cairn-version")), (200, str(len(DATA)), "1000"),
       "HEAD")
    st, h, body = call("node-0001", "GET", KEY_PATH, headers={"Range": "bytes=70000-70099"})
    eq((st, body, h.get("content-range")), (206, DATA[70000:70100],
                                            "bytes 70000-70099/%d" % len(DATA)), "range")


@T.case("an older version is refused with the held one; the data is unchanged")
def _():
    old = dict(HDRS, **{"X-Cairn-Version": "999", "X-Cairn-ETag": "0" * 32})
    st, h, _ = call("node-0001", "PUT", KEY_PATH, body=b"older bytes", headers=old)
    eq((st, h.get("x-cairn-version")), (200, "1000"), "older PUT")
    st, h, body = call("node-0001", "GET", KEY_PATH)
    check(st == 200 and body == DATA and h.get("x-cairn-etag") == HDRS["X-Cairn-ETag"],
          "data changed by an older version")


@T.case("a tombstone with a newer version: GET is 404 with X-Cairn-Tombstone and its version")
def _():
    st, h, _ = call("node-0001", "DELETE", KEY_PATH, headers={"X-Cairn-Version": "2000"})
    eq((st, h.get("x-cairn-version")), (200, "2000"), "DELETE")
    st, h, body = call("node-0001", "GET", KEY_PATH)
    eq((st, h.get("x-cairn-tombstone"), h.get("x-cairn-version")), (404, "1", "2000"), "GET")
    eq(json.loads(body)["error"], "no_such_key", "error code")
    st, h, _ = call("node-0001", "DELETE", KEY_PATH, headers={"X-Cairn-Version": "1500"})
    eq((st, h.get("x-cairn-version")), (200, "2000"), "an older DELETE")
    st, _, body = call("node-0001", "DELETE", KEY_PATH)
    eq((st, json.loads(body)["error"]), (400, "bad_request"), "DELETE without a version")


@T.case("the listing page shows rows in key order with versions, the tombstone included")
def _():
    small = dict(HDRS, **{"X-Cairn-Version": "3000", "X-Cairn-ETag": "ab" * 16})
    st, _, _ = call("node-0001", "PUT", "/i/v1/o/b/zzz", body=b"tiny", headers=small)
    eq(st, 200, "PUT zzz")
    st, _, body = call("node-0001", "GET", "/i/v1/l/b?max=1000")
    eq(st, 200, "list status")
    page = json.loads(body)
    rows = [(r["key"], r["version"], r["tomb"], r["size"]) for r in page["rows"]]
    eq(rows, [("dir/key with space\u2713", 2000, True, 0), ("zzz", 3000, False, 4)], "rows")
    eq(page["truncated"], False, "truncated")
    st, _, body = call("node-0001", "GET", "/i/v1/l/b?max=1&prefix=dir%2F")
    page = json.loads(body)
    eq(([r["key"] for r in page["rows"]], page["truncated"]),
       (["dir/key with space\u2713"], False), "prefix page")
    st, _, body = call("node-0001", "GET", "/i/v1/l/b?max=1&after=dir%2Fkey")
    page = json.loads(body)
    eq(([r["key"] for r in page["rows"]], page["truncated"]), (["dir/key with space\u2713"], True),
       "after + max page")


@T.case("bucket delete: 409 bucket_not_empty while a key lives, then 200")
def _():
    st, _, body = call("node-0001", "DELETE", "/i/v1/b/b")
    eq((st, json.loads(body)["error"]), (409, "bucket_not_empty"), "delete non-empty")
    st, _, _ = call("node-0001", "DELETE", "/i/v1/o/b/zzz", headers={"X-Cairn-Version": "4000"})
    eq(st, 200, "tombstone zzz")
    st, _, body = call("node-0001", "DELETE", "/i/v1/b/b")
    eq(st, 200, "delete (%r)" % body)
    st, _, body = call("node-0001", "GET", "/i/v1/b")
    eq(json.loads(body)["buckets"], [], "buckets after delete")
    st, _, body = call("node-0001", "GET", "/i/v1/l/b")
    eq((st, json.loads(body)["error"]), (404, "no_such_bucket"), "list a deleted bucket")


@T.case("refused: no client certificate (401), another CA's certificate, a node not in the map (403)")
def _():
    st, _, body = call("node-0001", "GET", "/i/v1/b", client=None)
    eq((st, json.loads(body)["error"]), (401, "no_client_cert"), "without a certificate")
    try:
        st, _, body = call("node-0001", "GET", "/i/v1/b", client="rogue-0002")
        eq((st, json.loads(body)["error"]), (401, "no_client_cert"), "another CA's certificate")
    except (ssl.SSLError, ConnectionError) as e:
        log("rogue certificate refused in the handshake: %s" % e)
    st, _, body = call("node-0001", "GET", "/i/v1/b", client="node-0099")
    eq((st, json.loads(body)["error"]), (403, "not_a_member"), "CN not in the map")


@T.case("the second node serves with its own certificate (CN node-0002) to node-0001")
def _():
    st, _, body = call("node-0002", "GET", "/i/v1/b", client="node-0001")
    eq((st, json.loads(body)), (200, {"buckets": []}), "node-0002's buckets")
    st, _, body = call("node-0002", "GET", "/i/v1/nothing", client="node-0001")
    eq((st, json.loads(body)["error"]), (404, "not_found"), "unknown route")
    st, _, body = call("node-0002", "POST", "/i/v1/b", client="node-0001")
    eq((st, json.loads(body)["error"]), (405, "method_not_allowed"), "wrong method")


@T.case("--internal-listen without --cluster is a usage error (exit 2)")
def _():
    p = subprocess.run([default_bin(), "--data", os.path.join(ROOT, "x"), "--access-key", "AKX",
                        "--secret-key", "12345678", "--internal-listen", "127.0.0.1:1"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    eq(p.returncode, 2, "exit status (%s)" % p.stderr.decode()[-200:])
    check(b"--cluster" in p.stderr, "message names --cluster")


@T.case("both daemons stop cleanly on SIGTERM (the map fetcher backing off included)")
def _():
    a = NODES["node-0001"]["daemon"]
    check("cluster_map_fetch_failed" in a.log_text(), "node-0001's fetcher did not try the controller")
    for nid in sorted(NODES):
        NODES[nid]["daemon"].check_clean_stop()


T.done()
