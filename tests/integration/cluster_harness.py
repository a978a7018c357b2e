"""cluster_harness.py — what the cluster tests share (test_cluster_*.py, tests/bench/run.sh's
cluster section): a test CA and node certificates made with the openssl command (both
serverAuth and clientAuth, as the controller issues them), a node's --cluster directory, a
hand-written map.json (the controller's map format, docs/CLUSTER.md), a node's own rows, the
key placement over nodes (cmap_owners), and a small keep-alive S3 client for bulk loads.
Not a test itself."""
import hashlib
import http.client
import json
import math
import os
import ssl
import subprocess
import urllib.parse

from botocore.exceptions import ClientError

from common import Fail, sign_headers


def openssl(*args):
    p = subprocess.run(["openssl"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    if p.returncode != 0:
        raise Fail("openssl %s: %s" % (" ".join(args[:3]), p.stderr.decode()[-300:]))


def make_ca(pki, name="ca"):
    """A CA key and self-signed certificate in pki; returns (key, crt) paths."""
    key, crt = os.path.join(pki, name + ".key"), os.path.join(pki, name + ".crt")
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key)
    openssl("req", "-x509", "-new", "-key", key, "-subj", "/CN=cairn-ca", "-days", "2",
            "-sha256", "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", crt)
    return key, crt


def make_node(pki, ca, cn, name=None):
    """A node key and certificate (CN cn) signed by ca; returns (key, crt) paths."""
    name = name or cn
    key, csr = os.path.join(pki, name + ".key"), os.path.join(pki, name + ".csr")
    crt, ext = os.path.join(pki, name + ".crt"), os.path.join(pki, name + ".ext")
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key)
    openssl("req", "-new", "-key", key, "-subj", "/CN=" + cn, "-out", csr)
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth,clientAuth\n")
    openssl("x509", "-req", "-in", csr, "-CA", ca[1], "-CAkey", ca[0], "-CAcreateserial",
            "-days", "2", "-sha256", "-extfile", ext, "-out", crt)
    return key, crt


def cluster_dir(root, node_id, cert, ca_crt, cluster_id, replicas, controller=None):
    """root/cluster as cairn-provd leaves it: node.json, node.key (0600), node.crt, ca.crt."""
    d = os.path.join(root, "cluster")
    os.makedirs(d, exist_ok=True)
    node = {"node_id": node_id, "cluster_id": cluster_id, "access_key": "x", "secret_key": "y",
            "replicas": replicas, "heartbeat_s": 10}
    if controller:
        node["controller"] = controller
    with open(os.path.join(d, "node.json"), "w") as f:
        json.dump(node, f)
    for src, dst in ((cert[0], "node.key"), (cert[1], "node.crt"), (ca_crt, "ca.crt")):
        with open(src) as f, open(os.path.join(d, dst), "w") as g:
            g.write(f.read())
    os.chmod(os.path.join(d, "node.key"), 0o600)
    return d


def write_map(dirs, addrs, cluster_id, version, replicas, write_quorum, seeds):
    """map.json into each cluster dir: addrs node id -> internal address, seeds node id ->
    64-bit seed; every node up with weight 1."""
    m = {"version": version, "cluster_id": cluster_id, "replicas": replicas,
         "write_quorum": write_quorum,
         "nodes": [{"node_id": nid, "state": "up", "seed": "%016x" % seeds[nid], "weight": 1,
                    "internal_addr": addrs[nid], "s3_endpoint": ""} for nid in sorted(addrs)]}
    for d in dirs:
        with open(os.path.join(d, "map.json"), "w") as f:
            json.dump(m, f)


def own_rows(pki, asker, addr, bucket, missing_ok=False, timeout=30):
    """The rows of bucket that the node at addr holds itself (its internal listing, asked with
    asker's certificate, every page): key -> (version, tomb). missing_ok: {} when it lacks the
    bucket."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(os.path.join(pki, "ca.crt"))
    ctx.check_hostname = False
    ctx.load_cert_chain(os.path.join(pki, asker + ".crt"), os.path.join(pki, asker + ".key"))
    host, port = addr.rsplit(":", 1)
    rows, after = {}, None
    while True:
        conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=timeout)
        try:
            q = "max=1000" + ("&after=" + urllib.parse.quote(after, safe="") if after else "")
            conn.request("GET", "/i/v1/l/%s?%s" % (bucket, q))
            r = conn.getresponse()
            body = r.read()
            if missing_ok and r.status == 404 and b"no_such_bucket" in body:
                return {}
            if r.status != 200:
                raise Fail("row listing of %s: %d %s" % (addr, r.status, body[:200]))
        finally:
            conn.close()
        page = json.loads(body)
        rows.update((row["key"], (row["version"], row["tomb"])) for row in page["rows"])
        if not page["truncated"]:
            return rows
        if not page["rows"]:
            raise Fail("row listing of %s: an empty page marked truncated" % addr)
        after = page["rows"][-1]["key"]


M64 = 2 ** 64 - 1


def fnv1a(h, data):
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & M64
    return h


def fmix64(h):
    h ^= h >> 33
    h = (h * 0xff51afd7ed558ccd) & M64
    h ^= h >> 33
    h = (h * 0xc4ceb9fe1a85ec53) & M64
    return h ^ (h >> 33)


def owners(bucket, key, nodes, replicas):
    """cmap_owners (storagefs/cluster/cmap.c over store/place.c): nodes in map order as
    (node_id, seed, weight, draining); returns the key's first `replicas` node ids, sorted."""
    h = fnv1a(fnv1a(0xcbf29ce484222325, bucket.encode() + b"\0"), key.encode())

    def score(i):
        x = fmix64(h ^ fmix64(nodes[i][1]))
        u = ((x >> 11) + 0.5) / 9007199254740992.0
        return -float(nodes[i][2] or 1) / math.log(u)

    rank = sorted(range(len(nodes)), key=lambda i: (-score(i), i))   # ties keep map order
    order = [nodes[i][0] for i in rank if not nodes[i][3]] + \
            [nodes[i][0] for i in rank if nodes[i][3]]
    return sorted(order[:replicas])


class S3Conn:
    """One keep-alive HTTP connection to a node's S3 endpoint, requests signed with common's
    SigV4 (the body's SHA-256): cheaper per request than boto3 for thousands of small
    objects. Methods return (status, body); a broken connection is reopened once."""

    def __init__(self, host, port, ak, sk, timeout=60):
        self.host, self.port, self.ak, self.sk, self.timeout = host, port, ak, sk, timeout
        self.conn = None

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method, bucket, key, body=b""):
        path = "/%s/%s" % (bucket, urllib.parse.quote(key, safe="/-_.~"))
        hdrs = {"Host": "%s:%d" % (self.host, self.port)}
        if body or method == "PUT":
            hdrs["Content-Length"] = str(len(body))
        hdrs, _, _, _ = sign_headers(method, path, (), hdrs, hashlib.sha256(body).hexdigest(),
                                     self.ak, self.sk)
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=body, headers=hdrs)
                r = self.conn.getresponse()
                data = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.close()
                return r.status, data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()   # a keep-alive connection the server had closed: once more
                if attempt:
                    raise
        raise Fail("unreachable")

    def put(self, bucket, key, body):
        return self.request("PUT", bucket, key, body)

    def get(self, bucket, key):
        return self.request("GET", bucket, key)


def status_of(fn):
    """The HTTP status of an S3 call: 200, or the error's."""
    try:
        fn()
        return 200
    except ClientError as e:
        return int(e.response["ResponseMetadata"]["HTTPStatusCode"])
