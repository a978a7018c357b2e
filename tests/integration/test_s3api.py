#!/usr/bin/python3
"""`aws s3api` (awscli 2.9): objects with metadata, ranges, copies, batch deletes, listings
(v1/v2, prefix, delimiter, pagination, encoding-type url), multipart uploads, bucket
sub-resources, and the exact S3 error codes."""
import json
import os
import urllib.parse

from common import (Clients, Env, Suite, check, eq, md5_hex, multipart_etag,
                    raw_request, sha256, xml_field)

E = Env()
T = Suite("s3api")
C = Clients(os.path.join(E.work, "conf"), E.endpoint, E.ak, E.sk)
W = E.work
B = "api-bucket"
MiB = 1024 * 1024


def api(*args):
    return C.aws("s3api", *args, json_out=True)


def err(code, *args):
    return C.aws_err(code, "s3api", *args)


def wfile(name, data):
    p = os.path.join(W, name)
    with open(p, "wb") as f:
        f.write(data)
    return p


def rfile(name):
    with open(os.path.join(W, name), "rb") as f:
        return f.read()


DATA = os.urandom(50000)
SRC = wfile("src.bin", DATA)


@T.case("create-bucket, head-bucket, list-buckets")
def _():
    api("create-bucket", "--bucket", B)
    api("head-bucket", "--bucket", B)
    names = [b["Name"] for b in api("list-buckets")["Buckets"]]
    check(B in names, "bucket not listed: %r" % names)


@T.case("put-object with metadata and content-type; head-object returns them")
def _():
    r = api("put-object", "--bucket", B, "--key", "meta/obj", "--body", SRC,
            "--metadata", "color=blue,Shape=Round", "--content-type", "text/x-cairn",
            "--cache-control", "max-age=60")
    eq(r["ETag"], '"%s"' % md5_hex(DATA), "ETag")
    h = api("head-object", "--bucket", B, "--key", "meta/obj")
    eq(h["Metadata"], {"color": "blue", "shape": "Round"}, "user metadata (names lower-cased)")
    eq(h["ContentType"], "text/x-cairn", "Content-Type")
    eq(h["ContentLength"], len(DATA), "Content-Length")
    eq(h["ETag"], '"%s"' % md5_hex(DATA), "ETag")
    eq(h.get("CacheControl"), "max-age=60", "Cache-Control")
    check("LastModified" in h, "no LastModified")
    g = api("get-object", "--bucket", B, "--key", "meta/obj", os.path.join(W, "meta.out"))
    eq(g["Metadata"], {"color": "blue", "shape": "Round"}, "GET metadata")
    eq(sha256(rfile("meta.out")), sha256(DATA), "GET body")


@T.case("get-object --range bytes=0-9, bytes=-5, bytes=10-, bytes=100-199")
def _():
    for rng, want in (("bytes=0-9", DATA[0:10]), ("bytes=-5", DATA[-5:]), ("bytes=10-", DATA[10:]),
                      ("bytes=100-199", DATA[100:200]), ("bytes=49990-60000", DATA[49990:])):
        g = api("get-object", "--bucket", B, "--key", "meta/obj", "--range", rng,
                os.path.join(W, "range.out"))
        got = rfile("range.out")
        eq(got, want, "bytes for %s" % rng)
        eq(g["ContentLength"], len(want), "Content-Length for %s" % rng)
        start = len(DATA) - len(want) if rng.startswith("bytes=-") else int(rng[6:].split("-")[0])
        eq(g["ContentRange"], "bytes %d-%d/%d" % (start, start + len(want) - 1, len(DATA)),
           "Content-Range for %s" % rng)


@T.case("get-object --range beyond the end -> InvalidRange (416)")
def _():
    err("InvalidRange", "get-object", "--bucket", B, "--key", "meta/obj", "--range",
            "bytes=60000-60010", os.path.join(W, "x.out"))
    st, h, body = raw_request(E.port, "GET", "/%s/meta/obj" % B, headers={"Range": "bytes=60000-"},
                              ak=E.ak, sk=E.sk)
    eq((st, xml_field(body, "Code")), (416, "InvalidRange"), "raw status/code")


@T.case("copy-object: metadata COPY (default) keeps metadata and content-type")
def _():
    r = api("copy-object", "--bucket", B, "--key", "meta/copy1", "--copy-source", "%s/meta/obj" % B)
    eq(r["CopyObjectResult"]["ETag"], '"%s"' % md5_hex(DATA), "copy ETag")
    h = api("head-object", "--bucket", B, "--key", "meta/copy1")
    eq(h["Metadata"], {"color": "blue", "shape": "Round"}, "copied metadata")
    eq(h["ContentType"], "text/x-cairn", "copied Content-Type")
    api("get-object", "--bucket", B, "--key", "meta/copy1", os.path.join(W, "copy.out"))
    eq(sha256(rfile("copy.out")), sha256(DATA), "copied bytes")


@T.case("copy-object: --metadata-directive REPLACE")
def _():
    api("copy-object", "--bucket", B, "--key", "meta/copy2", "--copy-source", "%s/meta/obj" % B,
        "--metadata-directive", "REPLACE", "--metadata", "fresh=yes", "--content-type", "image/x-new")
    h = api("head-object", "--bucket", B, "--key", "meta/copy2")
    eq(h["Metadata"], {"fresh": "yes"}, "replaced metadata")
    eq(h["ContentType"], "image/x-new", "replaced Content-Type")
    api("get-object", "--bucket", B, "--key", "meta/copy2", os.path.join(W, "copy2.out"))
    eq(sha256(rfile("copy2.out")), sha256(DATA), "copied bytes")


@T.case("copy-object onto itself with REPLACE updates metadata only")
def _():
    api("copy-object", "--bucket", B, "--key", "meta/copy2", "--copy-source", "%s/meta/copy2" % B,
        "--metadata-directive", "REPLACE", "--metadata", "again=1")
    h = api("head-object", "--bucket", B, "--key", "meta/copy2")
    eq(h["Metadata"], {"again": "1"}, "metadata after self-copy")
    eq(h["ContentLength"], len(DATA), "length after self-copy")


@T.case("copy-object of a key with spaces and %; across buckets; missing source -> NoSuchKey")
def _():
    api("create-bucket", "--bucket", B + "-2")
    api("put-object", "--bucket", B, "--key", "odd name %+ü", "--body", SRC)
    api("copy-object", "--bucket", B + "-2", "--key", "copied", "--copy-source",
        "%s/odd name %%+ü" % B)
    api("get-object", "--bucket", B + "-2", "--key", "copied", os.path.join(W, "c3.out"))
    eq(sha256(rfile("c3.out")), sha256(DATA), "copied bytes")
    err("NoSuchKey", "copy-object", "--bucket", B, "--key", "x", "--copy-source", "%s/no/such" % B)
    err("NoSuchBucket", "copy-object", "--bucket", B, "--key", "x", "--copy-source", "no-such-bkt/x")
    api("delete-object", "--bucket", B + "-2", "--key", "copied")
    api("delete-bucket", "--bucket", B + "-2")


@T.case("delete-objects (verbose): reports every key, including a missing one")
def _():
    for k in ("del/1", "del/2", "del/3"):
        api("put-object", "--bucket", B, "--key", k, "--body", SRC)
    r = api("delete-objects", "--bucket", B, "--delete",
            json.dumps({"Objects": [{"Key": "del/1"}, {"Key": "del/2"}, {"Key": "del/none"}]}))
    eq(sorted(d["Key"] for d in r.get("Deleted", [])), ["del/1", "del/2", "del/none"], "Deleted")
    eq(r.get("Errors", []), [], "Errors")
    keys = [o["Key"] for o in api("list-objects-v2", "--bucket", B, "--prefix", "del/").get("Contents", [])]
    eq(keys, ["del/3"], "remaining keys")


@T.case("delete-objects (quiet): no Deleted entries, objects gone")
def _():
    for k in ("delq/1", "delq/2"):
        api("put-object", "--bucket", B, "--key", k, "--body", SRC)
    r = api("delete-objects", "--bucket", B, "--delete",
            json.dumps({"Objects": [{"Key": "delq/1"}, {"Key": "delq/2"}], "Quiet": True}))
    eq(r.get("Deleted", []), [], "Deleted in quiet mode")
    eq(r.get("Errors", []), [], "Errors")
    eq(api("list-objects-v2", "--bucket", B, "--prefix", "delq/").get("Contents", []), [], "remaining")


LB = "list-bucket"
LKEYS = sorted(["dir1/a", "dir1/b", "dir1/sub/c", "dir1/sub/d", "dir2/e", "f", "g h", "i+j", "k%l",
                "m/n", "zz", "é-accent", "~tilde"], key=lambda s: s.encode())


@T.case("list setup: 13 keys")
def _():
    api("create-bucket", "--bucket", LB)
    small = wfile("small", b"x")
    for k in LKEYS:
        api("put-object", "--bucket", LB, "--key", k, "--body", small)


def keys_of(r):
    return [o["Key"] for o in r.get("Contents", [])]


def prefixes_of(r):
    return [p["Prefix"] for p in r.get("CommonPrefixes", [])]


@T.case("list-objects-v2: all keys in binary order, KeyCount")
def _():
    r = api("list-objects-v2", "--bucket", LB, "--no-paginate")  # the CLI paginator drops KeyCount
    eq(keys_of(r), LKEYS, "keys")
    eq(r["KeyCount"], len(LKEYS), "KeyCount")
    eq(r["Contents"][0]["Size"], 1, "Size")
    eq(r["Contents"][0]["ETag"], '"%s"' % md5_hex(b"x"), "ETag")


@T.case("list-objects-v2: prefix + delimiter")
def _():
    r = api("list-objects-v2", "--bucket", LB, "--delimiter", "/")
    eq(keys_of(r), ["f", "g h", "i+j", "k%l", "zz", "~tilde", "é-accent"], "top-level keys")
    eq(prefixes_of(r), ["dir1/", "dir2/", "m/"], "common prefixes")
    r = api("list-objects-v2", "--bucket", LB, "--prefix", "dir1/", "--delimiter", "/", "--no-paginate")
    eq(keys_of(r), ["dir1/a", "dir1/b"], "keys under dir1/")
    eq(prefixes_of(r), ["dir1/sub/"], "prefixes under dir1/")
    eq(r.get("KeyCount"), 3, "KeyCount counts keys and prefixes")
    r = api("list-objects-v2", "--bucket", LB, "--prefix", "dir1/s")
    eq(keys_of(r), ["dir1/sub/c", "dir1/sub/d"], "prefix without delimiter")
    r = api("list-objects-v2", "--bucket", LB, "--prefix", "nothing-here")
    eq(keys_of(r), [], "empty prefix match")


@T.case("list-objects-v2: max-keys pagination with continuation tokens")
def _():
    got, token, pages = [], None, 0
    while True:
        args = ["list-objects-v2", "--bucket", LB, "--max-keys", "4", "--no-paginate"]
        if token:
            args += ["--continuation-token", token]
        r = api(*args)
        pages += 1
        check(len(keys_of(r)) <= 4, "page with %d keys" % len(keys_of(r)))
        got += keys_of(r)
        if not r.get("IsTruncated"):
            check("NextContinuationToken" not in r, "token on the last page")
            break
        token = r["NextContinuationToken"]
        check(pages < 10, "pagination does not end")
    eq(got, LKEYS, "keys over all pages")
    eq(pages, 4, "pages of 4 for 13 keys")


@T.case("list-objects-v2: pagination with delimiter counts prefixes")
def _():
    got, token = [], None
    for _ in range(10):
        args = ["list-objects-v2", "--bucket", LB, "--max-keys", "2", "--delimiter", "/", "--no-paginate"]
        if token:
            args += ["--continuation-token", token]
        r = api(*args)
        got += keys_of(r) + prefixes_of(r)
        check(len(keys_of(r)) + len(prefixes_of(r)) <= 2, "page too big: %r" % r)
        if not r.get("IsTruncated"):
            break
        token = r["NextContinuationToken"]
    eq(sorted(got, key=lambda s: s.encode()),
       ["dir1/", "dir2/", "f", "g h", "i+j", "k%l", "m/", "zz", "~tilde", "é-accent"],
       "entries over all pages")


@T.case("list-objects-v2: start-after")
def _():
    r = api("list-objects-v2", "--bucket", LB, "--start-after", "dir2/e")
    eq(keys_of(r), LKEYS[LKEYS.index("dir2/e") + 1:], "keys after dir2/e")
    r = api("list-objects-v2", "--bucket", LB, "--start-after", "dir1/sub/")
    eq(keys_of(r)[:2], ["dir1/sub/c", "dir1/sub/d"], "start-after a non-existent key")


@T.case("list-objects (v1): marker pagination and NextMarker with delimiter")
def _():
    got, marker = [], None
    for _ in range(10):
        args = ["list-objects", "--bucket", LB, "--max-keys", "5", "--no-paginate"]
        if marker:
            args += ["--marker", marker]
        r = api(*args)
        got += keys_of(r)
        if not r.get("IsTruncated"):
            break
        marker = r.get("NextMarker") or keys_of(r)[-1]
    eq(got, LKEYS, "keys over v1 pages")
    r = api("list-objects", "--bucket", LB, "--delimiter", "/", "--max-keys", "2", "--no-paginate")
    eq(r.get("IsTruncated"), True, "IsTruncated")
    eq(keys_of(r) + prefixes_of(r), ["dir1/", "dir2/"], "first page with delimiter")
    eq(r.get("NextMarker"), "dir2/", "NextMarker")
    r = api("list-objects", "--bucket", LB, "--prefix", "dir1/", "--delimiter", "/")
    eq((keys_of(r), prefixes_of(r)), (["dir1/a", "dir1/b"], ["dir1/sub/"]), "v1 prefix+delimiter")


@T.case("list-objects-v2 / list-objects --encoding-type url return percent-encoded keys")
def _():
    for op in ("list-objects-v2", "list-objects"):
        r = api(op, "--bucket", LB, "--encoding-type", "url", "--no-paginate")
        eq(r.get("EncodingType"), "url", "%s EncodingType" % op)
        raw = keys_of(r)
        for k in raw:
            check(" " not in k, "%s: unencoded space in %r" % (op, k))
        eq([urllib.parse.unquote_plus(k) for k in raw], LKEYS, "%s decoded keys" % op)
        check("i%2Bj" in raw, "%s: '+' must be %%2B, got %r" % (op, raw))
        check("k%25l" in raw, "%s: '%%' must be %%25, got %r" % (op, raw))
    # prefix/delimiter are encoded too
    r = api("list-objects-v2", "--bucket", LB, "--encoding-type", "url", "--delimiter", "/",
            "--prefix", "dir1/", "--no-paginate")
    eq(prefixes_of(r), ["dir1/sub/"], "encoded common prefixes")


@T.case("multipart: create, upload-part x3 (one replaced), list-parts, complete -> ETag -N")
def _():
    p1, p2, p2b, p3 = (os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(5 * MiB),
                       os.urandom(MiB + 123))
    up = api("create-multipart-upload", "--bucket", B, "--key", "mp/obj", "--content-type",
             "application/x-mp", "--metadata", "mp=yes")["UploadId"]
    etags = {}
    for n, data in ((1, p1), (2, p2), (3, p3), (2, p2b)):
        r = api("upload-part", "--bucket", B, "--key", "mp/obj", "--upload-id", up,
                "--part-number", str(n), "--body", wfile("part", data))
        eq(r["ETag"], '"%s"' % md5_hex(data), "part %d ETag" % n)
        etags[n] = r["ETag"]
    lp = api("list-parts", "--bucket", B, "--key", "mp/obj", "--upload-id", up)
    eq([(p["PartNumber"], p["Size"], p["ETag"]) for p in lp["Parts"]],
       [(1, 5 * MiB, etags[1]), (2, 5 * MiB, etags[2]), (3, MiB + 123, etags[3])], "list-parts")
    eq(etags[2], '"%s"' % md5_hex(p2b), "replaced part 2")
    r = api("complete-multipart-upload", "--bucket", B, "--key", "mp/obj", "--upload-id", up,
            "--multipart-upload", json.dumps({"Parts": [{"PartNumber": n, "ETag": etags[n]}
                                                         for n in (1, 2, 3)]}))
    want = multipart_etag([p1, p2b, p3])
    eq(r["ETag"], '"%s"' % want, "complete ETag")
    h = api("head-object", "--bucket", B, "--key", "mp/obj")
    eq((h["ETag"], h["ContentLength"]), ('"%s"' % want, 11 * MiB + 123), "HEAD")
    eq((h["ContentType"], h["Metadata"]), ("application/x-mp", {"mp": "yes"}), "metadata from create")
    api("get-object", "--bucket", B, "--key", "mp/obj", os.path.join(W, "mp.out"))
    eq(sha256(rfile("mp.out")), sha256(p1 + p2b + p3), "assembled bytes")
    api("get-object", "--bucket", B, "--key", "mp/obj", "--range", "bytes=5242870-5242889",
            os.path.join(W, "mpr.out"))
    eq(rfile("mpr.out"), (p1 + p2b)[5242870:5242890], "range across the part boundary")
    err("NoSuchUpload", "list-parts", "--bucket", B, "--key", "mp/obj", "--upload-id", up)


@T.case("multipart: list-multipart-uploads and abort-multipart-upload")
def _():
    u1 = api("create-multipart-upload", "--bucket", B, "--key", "mpu/x")["UploadId"]
    u2 = api("create-multipart-upload", "--bucket", B, "--key", "mpu/y")["UploadId"]
    check(u1 != u2, "upload ids are equal")
    api("upload-part", "--bucket", B, "--key", "mpu/x", "--upload-id", u1, "--part-number", "1",
        "--body", wfile("p", b"abc"))
    ups = api("list-multipart-uploads", "--bucket", B).get("Uploads", [])
    eq(sorted((u["Key"], u["UploadId"]) for u in ups), sorted([("mpu/x", u1), ("mpu/y", u2)]),
       "uploads listed")
    ups = api("list-multipart-uploads", "--bucket", B, "--prefix", "mpu/y").get("Uploads", [])
    eq([u["Key"] for u in ups], ["mpu/y"], "uploads with prefix")
    api("abort-multipart-upload", "--bucket", B, "--key", "mpu/x", "--upload-id", u1)
    api("abort-multipart-upload", "--bucket", B, "--key", "mpu/y", "--upload-id", u2)
    eq(api("list-multipart-uploads", "--bucket", B).get("Uploads", []), [], "after abort")
    err("NoSuchUpload", "upload-part", "--bucket", B, "--key", "mpu/x", "--upload-id", u1,
        "--part-number", "2", "--body", wfile("p", b"abc"))
    err("NoSuchUpload", "abort-multipart-upload", "--bucket", B, "--key", "mpu/x", "--upload-id", u1)
    eq(keys_of(api("list-objects-v2", "--bucket", B, "--prefix", "mpu/")), [], "no objects")


def mpu_with_parts(key, sizes):
    up = api("create-multipart-upload", "--bucket", B, "--key", key)["UploadId"]
    parts = []
    for n, size in enumerate(sizes, 1):
        r = api("upload-part", "--bucket", B, "--key", key, "--upload-id", up, "--part-number",
                str(n), "--body", wfile("p%d" % n, os.urandom(size)))
        parts.append({"PartNumber": n, "ETag": r["ETag"]})
    return up, parts


def complete(key, up, parts):
    return ["complete-multipart-upload", "--bucket", B, "--key", key, "--upload-id", up,
            "--multipart-upload", json.dumps({"Parts": parts})]


@T.case("complete with a small non-last part -> EntityTooSmall")
def _():
    up, parts = mpu_with_parts("mp/small", [1024, 1024])
    err("EntityTooSmall", *complete("mp/small", up, parts))
    err("NoSuchKey", "get-object", "--bucket", B, "--key", "mp/small", os.path.join(W, "x"))
    api("abort-multipart-upload", "--bucket", B, "--key", "mp/small", "--upload-id", up)


@T.case("complete with a wrong ETag or a missing part -> InvalidPart; out of order -> InvalidPartOrder")
def _():
    up, parts = mpu_with_parts("mp/bad", [5 * MiB, 1000])
    bad = [dict(parts[0]), dict(parts[1])]
    bad[1]["ETag"] = '"%s"' % ("0" * 32)
    err("InvalidPart", *complete("mp/bad", up, bad))
    err("InvalidPart", *complete("mp/bad", up, parts + [{"PartNumber": 7, "ETag": parts[1]["ETag"]}]))
    err("InvalidPartOrder", *complete("mp/bad", up, [parts[1], parts[0]]))
    # the upload is still usable after the failed completions
    r = api(*complete("mp/bad", up, parts))
    check(r["ETag"].endswith('-2"'), "ETag %r" % r["ETag"])
    err("NoSuchUpload", *complete("mp/bad", up, parts))


@T.case("upload-part / complete with an unknown upload id -> NoSuchUpload")
def _():
    err("NoSuchUpload", "upload-part", "--bucket", B, "--key", "mp/x", "--upload-id", "no-such-upload",
        "--part-number", "1", "--body", wfile("p", b"abc"))
    err("NoSuchUpload", *complete("mp/x", "no-such-upload", [{"PartNumber": 1, "ETag": '"%s"' % ("0" * 32)}]))


@T.case("get-bucket-location")
def _():
    r = api("get-bucket-location", "--bucket", B)
    check(r.get("LocationConstraint") in (None, "", "us-east-1"), "LocationConstraint %r" % r)
    st, _, body = raw_request(E.port, "GET", "/" + B, query=[("location", "")], ak=E.ak, sk=E.sk)
    eq(st, 200, "raw status")
    check(b"LocationConstraint" in body, "body %r" % body[:300])


@T.case("get-bucket-versioning: never enabled")
def _():
    r = api("get-bucket-versioning", "--bucket", B)
    check(r.get("Status") is None, "Status %r" % r)
    st, _, body = raw_request(E.port, "GET", "/" + B, query=[("versioning", "")], ak=E.ak, sk=E.sk)
    eq(st, 200, "raw status")
    check(b"VersioningConfiguration" in body and b"<Status>" not in body, "body %r" % body[:300])


@T.case("list-object-versions: one null version per key")
def _():
    r = api("list-object-versions", "--bucket", LB, "--prefix", "dir1/")
    v = r.get("Versions", [])
    eq([x["Key"] for x in v], ["dir1/a", "dir1/b", "dir1/sub/c", "dir1/sub/d"], "version keys")
    eq({x.get("VersionId") for x in v}, {"null"}, "VersionId")
    eq({x.get("IsLatest") for x in v}, {True}, "IsLatest")
    eq(r.get("DeleteMarkers", []), [], "DeleteMarkers")


@T.case("NoSuchBucket from list, get, put, delete-bucket; head-bucket 404")
def _():
    err("NoSuchBucket", "list-objects-v2", "--bucket", "no-such-bucket")
    err("NoSuchBucket", "get-object", "--bucket", "no-such-bucket", "--key", "k", os.path.join(W, "x"))
    err("NoSuchBucket", "put-object", "--bucket", "no-such-bucket", "--key", "k", "--body", SRC)
    err("NoSuchBucket", "delete-bucket", "--bucket", "no-such-bucket")
    err("NoSuchBucket", "create-multipart-upload", "--bucket", "no-such-bucket", "--key", "k")
    err("404", "head-bucket", "--bucket", "no-such-bucket")


@T.case("NoSuchKey from get-object; 404 from head-object; delete of a missing key succeeds")
def _():
    err("NoSuchKey", "get-object", "--bucket", B, "--key", "no/such/key", os.path.join(W, "x"))
    err("404", "head-object", "--bucket", B, "--key", "no/such/key")
    api("delete-object", "--bucket", B, "--key", "no/such/key")


@T.case("create-bucket twice -> BucketAlreadyOwnedByYou (409)")
def _():
    err("BucketAlreadyOwnedByYou", "create-bucket", "--bucket", B)
    st, _, body = raw_request(E.port, "PUT", "/" + B, ak=E.ak, sk=E.sk)
    eq((st, xml_field(body, "Code")), (409, "BucketAlreadyOwnedByYou"), "raw status/code")


@T.case("invalid bucket names -> InvalidBucketName")
def _():
    for name in ("ab", "Bad_Name", "UPPER", "a..b", "-lead", "trail-", "192.168.5.4",
                 "x" * 64, "bad.-dots"):
        err("InvalidBucketName", "create-bucket", "--bucket=" + name)


@T.case("delete-bucket of a non-empty bucket -> BucketNotEmpty (409)")
def _():
    err("BucketNotEmpty", "delete-bucket", "--bucket", B)
    st, _, body = raw_request(E.port, "DELETE", "/" + B, ak=E.ak, sk=E.sk)
    eq((st, xml_field(body, "Code")), (409, "BucketNotEmpty"), "raw status/code")


@T.case("a bucket with only an in-progress multipart upload: delete-bucket")
def _():
    api("create-bucket", "--bucket", "mpu-only")
    up = api("create-multipart-upload", "--bucket", "mpu-only", "--key", "k")["UploadId"]
    rc, out, errtxt = C.aws("s3api", "delete-bucket", "--bucket", "mpu-only", check=False)
    if rc != 0:
        check("(BucketNotEmpty)" in errtxt, "unexpected error %s" % errtxt[-300:])
        api("abort-multipart-upload", "--bucket", "mpu-only", "--key", "k", "--upload-id", up)
        api("delete-bucket", "--bucket", "mpu-only")
    err("NoSuchBucket", "list-objects-v2", "--bucket", "mpu-only")


@T.case("empty the buckets and delete them; list-buckets no longer shows them")
def _():
    for b in (B, LB):
        for _ in range(5):
            keys = keys_of(api("list-objects-v2", "--bucket", b))
            if not keys:
                break
            api("delete-objects", "--bucket", b, "--delete",
                json.dumps({"Objects": [{"Key": k} for k in keys], "Quiet": True}))
        api("delete-bucket", "--bucket", b)
    names = [x["Name"] for x in api("list-buckets").get("Buckets", [])]
    check(B not in names and LB not in names, "buckets still listed: %r" % names)


T.done()
