#!/usr/bin/python3
# sfs: own-daemon
"""Any node serves any S3 request (docs/CLUSTER.md, "Write, read, list"): three storagefsd
started with --cluster (R=3, W=2 in the map) behind one set of keys, spoken to with boto3.

Certificates come from openssl (the cluster CA's shape, as test_cluster_api.py) and the map
is written by hand as <cluster dir>/map.json with the three nodes' internal addresses; no
controller runs (node.json names none), so the map stays as written.

1. A bucket created on node 1 exists on nodes 2 and 3.
2. 200 objects written via node 1 read back byte-exact via nodes 2 and 3 (ETag, metadata,
   a range); every node holds a copy (R=3 of 3 nodes).
3. Listing via node 3 (v2 paged by 37, v1, a delimiter) equals the set.
4. Deletes via node 2 hide the keys via node 1 (GET 404, listing).
5. A multipart upload made on node 1 reads back via nodes 2 and 3.
6. Node 3 killed with SIGKILL: every object still reads via nodes 1 and 2 and PUTs succeed
   (W=2 of the two live owners); node 3 restarted reads the objects written while it was
   down (it has no row: the read falls through to the owners that have one).
7. Every daemon stops cleanly on SIGTERM (no sanitizer report).
"""
import os
import random

from common import (Daemon, Env, Suite, check, eq, free_port, md5_hex, s3client)
import cluster_harness as H

E = Env()
T = Suite("cluster_s3")
ROOT = E.root
PKI = os.path.join(ROOT, "pki")
AK, SK = "AKCLUSTERTEST0001", "cluster-secret-key-for-the-test-000"
IDS = ["node-0001", "node-0002", "node-0003"]
NODES = {}
OBJS = {}          # key -> bytes, what the cluster holds now
BUCKET = "cluster-bkt"
RNG = random.Random(7)







def make_ca():
    return H.make_ca(PKI)


def make_node(ca, cn):
    return H.make_node(PKI, ca, cn)


def cluster_dir(root, nid, cert, ca_crt):
    return H.cluster_dir(root, nid, cert, ca_crt, "5eed" * 8, 3)


def write_map(dirs):
    H.write_map(dirs, {nid: NODES[nid]["addr"] for nid in IDS}, "5eed" * 8, 5, 3, 2,
                {nid: 0x5151 * (i + 1) for i, nid in enumerate(IDS)})


status_of = H.status_of


def client(nid):
    return s3client(NODES[nid]["daemon"].endpoint, AK, SK)


def body_of(c, key, **kw):
    return c.get_object(Bucket=BUCKET, Key=key, **kw)["Body"].read()



def list_v2(c, page=1000, **kw):
    keys, prefixes, tok = [], [], None
    while True:
        args = dict(Bucket=BUCKET, MaxKeys=page, **kw)
        if tok:
            args["ContinuationToken"] = tok
        r = c.list_objects_v2(**args)
        keys += [o["Key"] for o in r.get("Contents", [])]
        prefixes += [p["Prefix"] for p in r.get("CommonPrefixes", [])]
        if not r["IsTruncated"]:
            return keys, prefixes
        tok = r["NextContinuationToken"]


@T.case("setup: CA, three node identities, map R=3 W=2, three storagefsd --cluster")
def _():
    os.makedirs(PKI)
    ca = make_ca()
    dirs = []
    for nid in IDS:
        root = os.path.join(ROOT, nid)
        os.makedirs(root)
        NODES[nid] = {"addr": "127.0.0.1:%d" % free_port(), "root": root}
        cert = (os.path.join(PKI, nid + ".key"), os.path.join(PKI, nid + ".crt"))
        make_node(ca, nid)
        NODES[nid]["dir"] = cluster_dir(root, nid, cert, ca[1])
        dirs.append(NODES[nid]["dir"])
    write_map(dirs)
    for nid in IDS:
        d = Daemon(NODES[nid]["root"], ak=AK, sk=SK, ndirs=1, pids_root=ROOT,
                   extra=["--cluster", NODES[nid]["dir"], "--internal-listen", NODES[nid]["addr"]])
        d.start(timeout=30)
        NODES[nid]["daemon"] = d
        check("replicas=1" in d.log_text(), "a cluster node keeps one copy on its disks: %s"
              % d.log_text()[-400:])


@T.case("a bucket created via node 1 exists on nodes 2 and 3")
def _():
    client(IDS[0]).create_bucket(Bucket=BUCKET)
    for nid in IDS[1:]:
        eq(status_of(lambda: client(nid).head_bucket(Bucket=BUCKET)), 200, "HEAD bucket on " + nid)
    names = [b["Name"] for b in client(IDS[2]).list_buckets()["Buckets"]]
    eq(names, [BUCKET], "buckets listed by node 3")


def rand_obj(i):
    size = RNG.choice([0, 1, 100, 5000, 16 * 1024, 16 * 1024 + 1, 70000, 300 * 1024])
    return RNG.randbytes(size) if hasattr(RNG, "randbytes") else os.urandom(size)


@T.case("200 objects written via node 1 read back byte-exact via nodes 2 and 3")
def _():
    c1 = client(IDS[0])
    for i in range(200):
        key = ("d%d/" % (i // 2 % 4) if i % 2 else "") + "obj-%03d" % i
        data = rand_obj(i)
        r = c1.put_object(Bucket=BUCKET, Key=key, Body=data, ContentType="text/x-%d" % i,
                          Metadata={"n": str(i)})
        eq(r["ETag"], '"%s"' % md5_hex(data), "ETag of " + key)
        OBJS[key] = data
    for nid in IDS[1:]:
        c = client(nid)
        for key, data in OBJS.items():
            check(body_of(c, key) == data, "%s via %s differs" % (key, nid))
    h = client(IDS[2]).head_object(Bucket=BUCKET, Key="obj-010")
    eq((h["ContentType"], h["Metadata"], h["ContentLength"], h["ETag"]),
       ("text/x-10", {"n": "10"}, len(OBJS["obj-010"]), '"%s"' % md5_hex(OBJS["obj-010"])),
       "HEAD via node 3")
    big = next(k for k, v in OBJS.items() if len(v) == 300 * 1024)
    got = body_of(client(IDS[1]), big, Range="bytes=1000-70999")
    check(got == OBJS[big][1000:71000], "range via node 2 differs")
    eq(status_of(lambda: client(IDS[1]).get_object(Bucket=BUCKET, Key="nope")), 404,
       "a missing key via node 2")


@T.case("every node holds a copy of a key (R=3 of 3 nodes)")
def _():
    big = [k for k, v in OBJS.items() if len(v) == 300 * 1024]
    check(len(big) > 5, "too few 300 KiB objects: %d" % len(big))
    for nid in IDS:
        found = 0
        for dp, _, files in os.walk(NODES[nid]["daemon"].dirs[0]):
            for f in files:
                p = os.path.join(dp, f)
                if os.path.getsize(p) == 300 * 1024:
                    found += 1
        check(found >= len(big), "%s holds %d of the %d 300 KiB bodies" % (nid, found, len(big)))


@T.case("listing via node 3 (v2 paged, v1, delimiter) equals the set")
def _():
    c = client(IDS[2])
    keys, _ = list_v2(c, page=37)
    eq(keys, sorted(OBJS), "v2 keys")
    r = c.list_objects(Bucket=BUCKET, MaxKeys=1000)
    eq([o["Key"] for o in r["Contents"]], sorted(OBJS), "v1 keys")
    keys, prefixes = list_v2(c, page=3, Delimiter="/")
    eq(prefixes, ["d0/", "d1/", "d2/", "d3/"], "common prefixes")
    eq(keys, sorted(k for k in OBJS if "/" not in k), "top-level keys")
    keys, _ = list_v2(c, Prefix="d1/")
    eq(keys, sorted(k for k in OBJS if k.startswith("d1/")), "prefix d1/")


@T.case("deletes via node 2 are seen via node 1 (GET 404, listing)")
def _():
    c2, c1 = client(IDS[1]), client(IDS[0])
    gone = sorted(OBJS)[::10]
    for key in gone:
        c2.delete_object(Bucket=BUCKET, Key=key)
        del OBJS[key]
    for key in gone:
        eq(status_of(lambda: c1.get_object(Bucket=BUCKET, Key=key)), 404, "GET deleted " + key)
    keys, _ = list_v2(c1)
    eq(keys, sorted(OBJS), "listing via node 1 after deletes")
    eq(status_of(lambda: client(IDS[2]).delete_bucket(Bucket=BUCKET)), 409,
       "deleting the non-empty bucket")


@T.case("a multipart upload on node 1 (all its requests there) reads back via nodes 2 and 3")
def _():
    c1 = client(IDS[0])
    parts = [os.urandom(5 * 1024 * 1024), os.urandom(1234)]
    up = c1.create_multipart_upload(Bucket=BUCKET, Key="mpu-obj")["UploadId"]
    etags = [c1.upload_part(Bucket=BUCKET, Key="mpu-obj", UploadId=up, PartNumber=i + 1,
                            Body=p)["ETag"] for i, p in enumerate(parts)]
    c1.complete_multipart_upload(Bucket=BUCKET, Key="mpu-obj", UploadId=up, MultipartUpload={
        "Parts": [{"PartNumber": i + 1, "ETag": e} for i, e in enumerate(etags)]})
    OBJS["mpu-obj"] = b"".join(parts)
    for nid in IDS[1:]:
        check(body_of(client(nid), "mpu-obj") == OBJS["mpu-obj"], "mpu-obj via %s differs" % nid)


@T.case("one multipart upload through every node: created via 1, parts via 2 and 3, "
        "ListParts via 2, Complete via 3; Abort and NoSuchUpload forwarded too")
def _():
    c1, c2, c3 = (client(n) for n in IDS)
    up = c1.create_multipart_upload(Bucket=BUCKET, Key="spread-mpu")["UploadId"]
    check(len(up) == 48, "a cluster upload id names its home node: %r" % up)
    parts = [os.urandom(5 * 1024 * 1024 + 7), os.urandom(5 * 1024 * 1024), os.urandom(999)]
    etags = []
    for i, (c, p) in enumerate(zip((c2, c3, c2), parts)):
        etags.append(c.upload_part(Bucket=BUCKET, Key="spread-mpu", UploadId=up,
                                   PartNumber=i + 1, Body=p)["ETag"])
    eq(etags[0].strip('"'), md5_hex(parts[0]), "part 1's ETag (sent via node 2)")
    lp = c2.list_parts(Bucket=BUCKET, Key="spread-mpu", UploadId=up)
    eq([(x["PartNumber"], x["ETag"], x["Size"]) for x in lp["Parts"]],
       [(i + 1, etags[i], len(p)) for i, p in enumerate(parts)], "ListParts via node 2")
    eq(lp["Key"], "spread-mpu", "ListParts key")
    lp = c3.list_parts(Bucket=BUCKET, Key="spread-mpu", UploadId=up, MaxParts=1,
                       PartNumberMarker=1)
    eq(([x["PartNumber"] for x in lp["Parts"]], lp["IsTruncated"]), ([2], True),
       "ListParts page via node 3")
    ups = [u["UploadId"] for u in c1.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])]
    check(up in ups, "ListMultipartUploads via node 1 (the home) lists %s: %r" % (up, ups))
    eq(status_of(lambda: c3.complete_multipart_upload(
        Bucket=BUCKET, Key="spread-mpu", UploadId=up, MultipartUpload={"Parts": [
            {"PartNumber": 2, "ETag": etags[1]}, {"PartNumber": 1, "ETag": etags[0]}]})),
       400, "Complete with parts out of order, via node 3")
    c3.complete_multipart_upload(Bucket=BUCKET, Key="spread-mpu", UploadId=up,
                                 MultipartUpload={"Parts": [{"PartNumber": i + 1, "ETag": e}
                                                            for i, e in enumerate(etags)]})
    OBJS["spread-mpu"] = b"".join(parts)
    for nid in IDS:
        check(body_of(client(nid), "spread-mpu") == OBJS["spread-mpu"],
              "spread-mpu via %s differs" % nid)
    eq(status_of(lambda: c2.list_parts(Bucket=BUCKET, Key="spread-mpu", UploadId=up)), 404,
       "ListParts of the completed upload")
    up3 = c3.create_multipart_upload(Bucket=BUCKET, Key="aborted")["UploadId"]
    c1.upload_part(Bucket=BUCKET, Key="aborted", UploadId=up3, PartNumber=1, Body=b"x" * 100)
    c2.abort_multipart_upload(Bucket=BUCKET, Key="aborted", UploadId=up3)
    eq(status_of(lambda: c3.list_parts(Bucket=BUCKET, Key="aborted", UploadId=up3)), 404,
       "ListParts after Abort via another node")
    ghost = "f" * 16 + up[16:]
    eq(status_of(lambda: c2.upload_part(Bucket=BUCKET, Key="x", UploadId=ghost, PartNumber=1,
                                        Body=b"y")), 404, "UploadPart to an unknown home")


@T.case("CopyObject, UploadPartCopy and GetObjectAcl via node 3 of objects written via node 1")
def _():
    c3 = client(IDS[2])
    src = sorted(k for k in OBJS if k != "mpu-obj" and len(OBJS[k]) > 100)[0]
    c3.copy_object(Bucket=BUCKET, Key="copied", CopySource={"Bucket": BUCKET, "Key": src})
    OBJS["copied"] = OBJS[src]
    eq(body_of(client(IDS[0]), "copied"), OBJS[src], "the copy via node 1")
    up = c3.create_multipart_upload(Bucket=BUCKET, Key="part-copied")["UploadId"]
    etag = c3.upload_part_copy(Bucket=BUCKET, Key="part-copied", UploadId=up, PartNumber=1,
                               CopySource={"Bucket": BUCKET, "Key": "mpu-obj"},
                               CopySourceRange="bytes=10-1000009")["CopyPartResult"]["ETag"]
    c3.complete_multipart_upload(Bucket=BUCKET, Key="part-copied", UploadId=up,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    OBJS["part-copied"] = OBJS["mpu-obj"][10:1000010]
    eq(body_of(client(IDS[1]), "part-copied"), OBJS["part-copied"], "the part copy via node 2")
    eq(c3.get_object_acl(Bucket=BUCKET, Key=src)["ResponseMetadata"]["HTTPStatusCode"], 200,
       "GetObjectAcl")
    eq(status_of(lambda: c3.get_object_acl(Bucket=BUCKET, Key="no-such-key")), 404,
       "GetObjectAcl of a missing key")
    eq(status_of(lambda: c3.copy_object(Bucket=BUCKET, Key="x",
                                        CopySource={"Bucket": BUCKET, "Key": "no-such-key"})),
       404, "CopyObject of a missing key")


@T.case("node 3 killed: reads and writes go on via nodes 1 and 2; restarted, it reads them")
def _():
    n3 = NODES[IDS[2]]["daemon"]
    n3.kill9()
    c1, c2 = client(IDS[0]), client(IDS[1])
    for i, (key, data) in enumerate(sorted(OBJS.items())):
        check(body_of(c1 if i % 2 else c2, key) == data, "%s differs with node 3 down" % key)
    fresh = {}
    for i in range(20):
        key = "while-down-%02d" % i
        data = os.urandom(RNG.choice([10, 40000]))
        (c1 if i % 2 else c2).put_object(Bucket=BUCKET, Key=key, Body=data)
        fresh[key] = data
    OBJS.update(fresh)
    keys, _ = list_v2(c2)
    eq(keys, sorted(OBJS), "listing with node 3 down")
    n3.start(timeout=30)
    c3 = client(IDS[2])
    for key, data in fresh.items():
        check(body_of(c3, key) == data, "%s via the restarted node 3 differs" % key)
    keys, _ = list_v2(c3, page=50)
    eq(keys, sorted(OBJS), "listing via the restarted node 3")


@T.case("every node stops cleanly on SIGTERM")
def _():
    for nid in IDS:
        NODES[nid]["daemon"].check_clean_stop()


T.done()
