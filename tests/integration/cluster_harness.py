"""cluster_harness.py — what the cluster tests share (test_cluster_api.py, test_cluster_s3.py,
test_cluster_repair.py): a test CA and node certificates made with the openssl command (both
serverAuth and clientAuth, as the controller issues them), a node's --cluster directory, and
a hand-written map.json (the controller's map format, docs/CLUSTER.md). Not a test itself."""
import http.client
import json
import os
import ssl
import subprocess

from botocore.exceptions import ClientError

from common import Fail


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


def own_rows(pki, asker, addr, bucket, missing_ok=False):
    """The rows of bucket that the node at addr holds itself (its internal listing, asked with
    asker's certificate): key -> (version, tomb). missing_ok: {} when it lacks the bucket."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(os.path.join(pki, "ca.crt"))
    ctx.check_hostname = False
    ctx.load_cert_chain(os.path.join(pki, asker + ".crt"), os.path.join(pki, asker + ".key"))
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=30)
    try:
        conn.request("GET", "/i/v1/l/%s?max=1000" % bucket)
        r = conn.getresponse()
        body = r.read()
        if missing_ok and r.status == 404 and b"no_such_bucket" in body:
            return {}
        if r.status != 200:
            raise Fail("row listing of %s: %d %s" % (addr, r.status, body[:200]))
    finally:
        conn.close()
    page = json.loads(body)
    if page["truncated"]:
        raise Fail("row listing of %s: more than one page" % addr)
    return {row["key"]: (row["version"], row["tomb"]) for row in page["rows"]}


def status_of(fn):
    """The HTTP status of an S3 call: 200, or the error's."""
    try:
        fn()
        return 200
    except ClientError as e:
        return int(e.response["ResponseMetadata"]["HTTPStatusCode"])
