#!/usr/bin/python3
"""boto3 (Debian's python3-boto3) and raw signed requests: presigned URLs, conditional GETs,
auth failures, virtual-host addressing, digests, odd keys, key length, aws-chunked
streaming uploads, Expect: 100-continue."""
import base64
import concurrent.futures
import contextlib
import datetime
import hashlib
import os
import socket
import types
import urllib.error
import urllib.request
from unittest import mock

from common import (Env, Fail, Suite, QUICK, check, eq, expect_error, expect_xml_error, log,
                    md5_hex, raw_request, s3client, sha256, sign_headers, signing_key, xml_field,
                    EMPTY_SHA)
import hmac

E = Env()
T = Suite("boto3")
c = s3client(E.endpoint, E.ak, E.sk)
B = "boto3-bucket"


def urlopen(url, method="GET", data=None, headers=None):
    """(status, body) without raising on 4xx/5xx; no auth headers ever added."""
    req = urllib.request.Request(url, method=method, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@T.case("create bucket and round-trip objects of 0 B, 1 KiB, 16 KiB, 16 KiB+1, 300 KiB")
def _():
    c.create_bucket(Bucket=B)
    for size in (0, 1024, 16 * 1024, 16 * 1024 + 1, 300 * 1024):
        data = os.urandom(size)
        r = c.put_object(Bucket=B, Key="rt/%d" % size, Body=data)
        eq(r["ETag"], '"%s"' % md5_hex(data), "ETag of %d B" % size)
        g = c.get_object(Bucket=B, Key="rt/%d" % size)
        body = g["Body"].read()
        eq(len(body), size, "length")
        eq(sha256(body), sha256(data), "sha256 of %d B" % size)
        eq(g["ContentLength"], size, "Content-Length")
        h = c.head_object(Bucket=B, Key="rt/%d" % size)
        eq(h["ContentLength"], size, "HEAD Content-Length")
        eq(h["ETag"], '"%s"' % md5_hex(data), "HEAD ETag")


@T.case("overwrite switches between inline and file storage and keeps the newest")
def _():
    for size in (100, 200 * 1024, 50, 70 * 1024, 0):
        data = os.urandom(size)
        c.put_object(Bucket=B, Key="ow", Body=data)
        eq(sha256(c.get_object(Bucket=B, Key="ow")["Body"].read()), sha256(data),
           "after overwrite with %d B" % size)


@T.case("PUT of an empty file then of a non-empty file on one connection (Expect: 100-continue)")
def _():
    # botocore sends Expect: 100-continue for file bodies; after a final response without a
    # 100 it keeps that status for the connection's next Expect request (awscli `s3 sync`
    # of a tree with empty files times out). S3 sends 100 Continue even for Content-Length: 0.
    one = s3client(E.endpoint, E.ak, E.sk, read_timeout=5)
    paths = []
    for name, data in (("empty", b""), ("full", os.urandom(5000)), ("full2", os.urandom(70000))):
        p = os.path.join(E.work, name)
        with open(p, "wb") as f:
            f.write(data)
        paths.append((name, p, data))
    for name, p, data in paths:
        with open(p, "rb") as f:
            one.put_object(Bucket=B, Key="expect/" + name, Body=f)
    for name, p, data in paths:
        eq(c.get_object(Bucket=B, Key="expect/" + name)["Body"].read(), data, name)


@T.case("delete then GET -> NoSuchKey 404; HEAD -> 404")
def _():
    c.put_object(Bucket=B, Key="del-me", Body=b"x")
    c.delete_object(Bucket=B, Key="del-me")
    expect_error(lambda: c.get_object(Bucket=B, Key="del-me"), "NoSuchKey", 404)
    expect_error(lambda: c.head_object(Bucket=B, Key="del-me"), "404", 404)


DATA = os.urandom(20000)
c.put_object(Bucket=B, Key="obj", Body=DATA, ContentType="application/x-cairn")
ETAG = md5_hex(DATA)


@T.case("presigned GET URL via urllib without auth headers")
def _():
    url = c.generate_presigned_url("get_object", Params={"Bucket": B, "Key": "obj"}, ExpiresIn=300)
    check("X-Amz-Signature=" in url, "not a SigV4 presigned URL: %s" % url)
    st, body = urlopen(url)
    eq(st, 200, "status")
    eq(sha256(body), sha256(DATA), "body sha256")


@T.case("presigned PUT URL via urllib, then GET returns the bytes")
def _():
    data = os.urandom(40000)
    url = c.generate_presigned_url("put_object", Params={"Bucket": B, "Key": "presigned-put"},
                                   ExpiresIn=300)
    st, body = urlopen(url, method="PUT", data=data)
    eq(st, 200, "PUT status (body %r)" % body[:200])
    eq(sha256(c.get_object(Bucket=B, Key="presigned-put")["Body"].read()), sha256(data), "sha256")


@T.case("expired presigned URL -> 403 AccessDenied")
def _():
    past = datetime.datetime.utcnow() - datetime.timedelta(hours=2)
    # botocore signs with awscrt when python3-awscrt is installed: patch both clocks
    import botocore.auth
    targets = ["botocore.auth.datetime"]
    if getattr(botocore.auth, "HAS_CRT", False):
        targets.append("botocore.crt.auth.datetime")

    class Past(datetime.datetime):
        @classmethod
        def utcnow(cls):
            return past
    fake = types.SimpleNamespace(**{k: getattr(datetime, k) for k in dir(datetime)
                                    if not k.startswith("__")})
    fake.datetime = Past
    with contextlib.ExitStack() as stack:
        for t in targets:
            stack.enter_context(mock.patch(t, fake))
        url = c.generate_presigned_url("get_object", Params={"Bucket": B, "Key": "obj"},
                                       ExpiresIn=60)
    check(past.strftime("%Y%m%dT%H") in url, "mocked date not used: %s" % url)
    st, body = urlopen(url)
    expect_xml_error(st, body, 403, "AccessDenied")


@T.case("presigned URL with a tampered signature -> 403 SignatureDoesNotMatch")
def _():
    url = c.generate_presigned_url("get_object", Params={"Bucket": B, "Key": "obj"}, ExpiresIn=300)
    i = url.index("X-Amz-Signature=") + len("X-Amz-Signature=")
    bad = url[:i] + ("0" if url[i] != "0" else "1") + url[i + 1:]
    st, body = urlopen(bad)
    expect_xml_error(st, body, 403, "SignatureDoesNotMatch")


@T.case("presigned GET URL for another key than signed -> 403 SignatureDoesNotMatch")
def _():
    url = c.generate_presigned_url("get_object", Params={"Bucket": B, "Key": "obj"}, ExpiresIn=300)
    st, body = urlopen(url.replace("/obj?", "/presigned-put?"))
    expect_xml_error(st, body, 403, "SignatureDoesNotMatch")


@T.case("conditional GET: If-Match / If-None-Match -> 200, 412, 304")
def _():
    r = c.get_object(Bucket=B, Key="obj", IfMatch='"%s"' % ETAG)
    eq(sha256(r["Body"].read()), sha256(DATA), "If-Match matching body")
    expect_error(lambda: c.get_object(Bucket=B, Key="obj", IfMatch='"0123456789abcdef0123456789abcdef"'),
                 "PreconditionFailed", 412)
    expect_error(lambda: c.get_object(Bucket=B, Key="obj", IfNoneMatch='"%s"' % ETAG), "304", 304)
    r = c.get_object(Bucket=B, Key="obj", IfNoneMatch='"0123456789abcdef0123456789abcdef"')
    eq(sha256(r["Body"].read()), sha256(DATA), "If-None-Match other body")
    expect_error(lambda: c.head_object(Bucket=B, Key="obj", IfNoneMatch='"%s"' % ETAG), "304", 304)
    expect_error(lambda: c.head_object(Bucket=B, Key="obj", IfMatch='"nope"'), "412", 412)


@T.case("conditional GET: If-Modified-Since / If-Unmodified-Since -> 200, 304, 412")
def _():
    lm = c.head_object(Bucket=B, Key="obj")["LastModified"]
    day = datetime.timedelta(days=1)
    expect_error(lambda: c.get_object(Bucket=B, Key="obj", IfModifiedSince=lm), "304", 304)
    r = c.get_object(Bucket=B, Key="obj", IfModifiedSince=lm - day)
    eq(sha256(r["Body"].read()), sha256(DATA), "modified since yesterday")
    expect_error(lambda: c.get_object(Bucket=B, Key="obj", IfUnmodifiedSince=lm - day),
                 "PreconditionFailed", 412)
    r = c.get_object(Bucket=B, Key="obj", IfUnmodifiedSince=lm)
    eq(r["ResponseMetadata"]["HTTPStatusCode"], 200, "unmodified since LastModified")
    r["Body"].read()


@T.case("response-content-type / response-content-disposition overrides")
def _():
    r = c.get_object(Bucket=B, Key="obj")
    eq(r["ContentType"], "application/x-cairn", "stored Content-Type")
    r["Body"].read()
    r = c.get_object(Bucket=B, Key="obj", ResponseContentType="text/x-override",
                     ResponseContentDisposition='attachment; filename="x.bin"',
                     ResponseCacheControl="no-cache")
    eq(r["ContentType"], "text/x-override", "overridden Content-Type")
    eq(r.get("ContentDisposition"), 'attachment; filename="x.bin"', "Content-Disposition")
    eq(r.get("CacheControl"), "no-cache", "Cache-Control")
    eq(sha256(r["Body"].read()), sha256(DATA), "body")


@T.case("wrong secret key -> 403 SignatureDoesNotMatch")
def _():
    bad = s3client(E.endpoint, E.ak, E.sk + "x")
    expect_error(lambda: bad.get_object(Bucket=B, Key="obj"), "SignatureDoesNotMatch", 403)
    expect_error(lambda: bad.put_object(Bucket=B, Key="wrong-secret", Body=b"x"),
                 "SignatureDoesNotMatch", 403)
    expect_error(lambda: c.head_object(Bucket=B, Key="wrong-secret"), "404", 404)


@T.case("unknown access key -> 403 InvalidAccessKeyId")
def _():
    bad = s3client(E.endpoint, "AKNOSUCHKEY000000000", E.sk)
    expect_error(lambda: bad.list_objects_v2(Bucket=B), "InvalidAccessKeyId", 403)
    expect_error(lambda: bad.list_buckets(), "InvalidAccessKeyId", 403)


@T.case("anonymous requests (plain urllib) -> 403 AccessDenied")
def _():
    for path in ("/%s/obj" % B, "/%s" % B, "/"):
        st, body = urlopen(E.endpoint + path)
        expect_xml_error(st, body, 403, "AccessDenied")
    st, body = urlopen(E.endpoint + "/%s/anon-put" % B, method="PUT", data=b"hello")
    expect_xml_error(st, body, 403, "AccessDenied")
    expect_error(lambda: c.head_object(Bucket=B, Key="anon-put"), "404", 404)


@T.case("request signed 20 minutes in the past -> 403 RequestTimeTooSkewed")
def _():
    when = datetime.datetime.utcnow() - datetime.timedelta(minutes=20)
    path = "/%s/obj" % B
    h, _, _, _ = sign_headers("GET", path, [], {"Host": "127.0.0.1:%d" % E.port}, EMPTY_SHA,
                              E.ak, E.sk, when=when)
    st, _, body = raw_request(E.port, "GET", path, headers=h)
    expect_xml_error(st, body, 403, "RequestTimeTooSkewed")


def vhost_resolves():
    try:
        return socket.gethostbyname("%s.localhost" % B) == "127.0.0.1"
    except OSError:
        return False


@T.case("virtual-host-style addressing (Host: bucket.localhost:PORT)")
def _():
    data = os.urandom(30000)
    host = "%s.localhost:%d" % (B, E.port)
    if vhost_resolves():
        v = s3client("http://localhost:%d" % E.port, E.ak, E.sk, addressing="virtual")
        v.put_object(Bucket=B, Key="vhost/obj", Body=data)
        eq(sha256(v.get_object(Bucket=B, Key="vhost/obj")["Body"].read()), sha256(data), "vhost GET")
        keys = [o["Key"] for o in v.list_objects_v2(Bucket=B, Prefix="vhost/")["Contents"]]
        eq(keys, ["vhost/obj"], "vhost listing")
    else:
        log("*.localhost does not resolve; using raw signed requests with Host: %s" % host)
        st, _, body = raw_request(E.port, "PUT", "/vhost/obj", body=data, ak=E.ak, sk=E.sk, host=host)
        eq(st, 200, "vhost PUT status (%r)" % body[:300])
        st, _, body = raw_request(E.port, "GET", "/vhost/obj", ak=E.ak, sk=E.sk, host=host)
        eq(st, 200, "vhost GET status (%r)" % body[:300])
        eq(sha256(body), sha256(data), "vhost GET body")
        st, _, body = raw_request(E.port, "GET", "/", query=[("list-type", "2"), ("prefix", "vhost/")],
                                  ak=E.ak, sk=E.sk, host=host)
        eq(st, 200, "vhost list status (%r)" % body[:300])
        check(b"<Key>vhost/obj</Key>" in body, "vhost listing lacks the key: %r" % body[:500])
    # and the same object through path-style
    eq(sha256(c.get_object(Bucket=B, Key="vhost/obj")["Body"].read()), sha256(data), "path-style GET")


@T.case("Content-MD5 mismatch -> 400 BadDigest, object not created")
def _():
    wrong = base64.b64encode(hashlib.md5(b"something else").digest()).decode()
    expect_error(lambda: c.put_object(Bucket=B, Key="bad-md5", Body=b"the body", ContentMD5=wrong),
                 "BadDigest", 400)
    expect_error(lambda: c.head_object(Bucket=B, Key="bad-md5"), "404", 404)
    good = base64.b64encode(hashlib.md5(b"the body").digest()).decode()
    c.put_object(Bucket=B, Key="good-md5", Body=b"the body", ContentMD5=good)
    eq(c.get_object(Bucket=B, Key="good-md5")["Body"].read(), b"the body", "with correct MD5")


@T.case("malformed Content-MD5 -> 400 InvalidDigest")
def _():
    expect_error(lambda: c.put_object(Bucket=B, Key="bad-md5-2", Body=b"x", ContentMD5="notbase64!!"),
                 "InvalidDigest", 400)


@T.case("x-amz-content-sha256 not matching the body -> 400 XAmzContentSHA256Mismatch")
def _():
    st, _, body = raw_request(E.port, "PUT", "/%s/sha-mismatch" % B, body=b"actual body",
                              ak=E.ak, sk=E.sk, payload_hash=sha256(b"other body"))
    expect_xml_error(st, body, 400, "XAmzContentSHA256Mismatch")
    expect_error(lambda: c.head_object(Bucket=B, Key="sha-mismatch"), "404", 404)


@T.case("UNSIGNED-PAYLOAD PUT works")
def _():
    data = os.urandom(70000)
    st, _, body = raw_request(E.port, "PUT", "/%s/unsigned" % B, body=data, ak=E.ak, sk=E.sk,
                              payload_hash="UNSIGNED-PAYLOAD")
    eq(st, 200, "status (%r)" % body[:300])
    eq(sha256(c.get_object(Bucket=B, Key="unsigned")["Body"].read()), sha256(data), "body")


ESCAPE = "cairn-escape-%d" % os.getpid()
ODD_KEYS = [
    "../" + ESCAPE, "../../../../../../../../tmp/" + ESCAPE, "a/../../" + ESCAPE,
    "..", ".", "./dot", "a/./b", "a//b", "//lead", "trail/", "a///b//",
    "per%cent", "per%2Fcent", "100%", "%00nul", "sp ace", " lead-space", "trail-space ",
    "plus+sign", "q?mark", "hash#x", "amp&x=y", "back\\slash", "semi;colon",
    "unicode-ü-日本-😀", "tilde~", "star*", "quote\"x", "lt<gt>", "data/xx/fake",
    ".cairn/index.db", "tmp/../../x",
]


@T.case("odd keys (../, //, %, spaces, unicode) round-trip and list exactly")
def _():
    c.create_bucket(Bucket="odd-keys")
    want = {}
    for i, k in enumerate(ODD_KEYS):
        data = ("%d:%s" % (i, k)).encode() * (1 + (i % 3) * 4000)  # inline and file objects
        c.put_object(Bucket="odd-keys", Key=k, Body=data)
        want[k] = sha256(data)
    for k, h in want.items():
        eq(sha256(c.get_object(Bucket="odd-keys", Key=k)["Body"].read()), h, "GET %r" % k)
        eq(c.head_object(Bucket="odd-keys", Key=k)["ContentLength"] > 0, True, "HEAD %r" % k)
    got = []
    for page in c.get_paginator("list_objects_v2").paginate(Bucket="odd-keys", PaginationConfig={"PageSize": 7}):
        got += [o["Key"] for o in page.get("Contents", [])]
    eq(got, sorted(want, key=lambda s: s.encode()), "listing (binary order)")
    # raw listing without encoding-type: XML-escaped keys
    st, _, body = raw_request(E.port, "GET", "/odd-keys", query=[("list-type", "2"), ("prefix", "lt<")],
                              ak=E.ak, sk=E.sk)
    eq(st, 200, "raw list status")
    check(b"<Key>lt&lt;gt&gt;</Key>" in body, "key not XML-escaped in listing: %r" % body[:600])


@T.case("odd keys: nothing created outside the data dirs")
def _():
    expected = {"data1", "data2", "cwd", "work", "daemon-1.log", "pids", "stderr.txt"}
    extra = sorted(set(os.listdir(E.root)) - expected)
    eq(extra, [], "unexpected entries in the temp root")
    eq(os.listdir(os.path.join(E.root, "cwd")), [], "daemon cwd must stay empty")
    for p in ("/tmp/" + ESCAPE, os.path.join(os.path.dirname(E.root), ESCAPE),
              os.path.join(E.root, ESCAPE), "/" + ESCAPE, "/x"):
        check(not os.path.lexists(p), "%s exists: a key escaped the data dirs" % p)
    # no file or directory anywhere under the data dirs is named after a key component
    for d in E.data:
        for dp, dn, fn in os.walk(d):
            for n in dn + fn:
                check(ESCAPE not in n, "key stored as a path: %s" % os.path.join(dp, n))


@T.case("1024-byte key works; 1025-byte key -> 400 KeyTooLongError")
def _():
    k1024 = "k/" + "x" * 1022
    k_utf8 = "é" * 512  # 1024 bytes, 512 characters
    for k in (k1024, k_utf8):
        eq(len(k.encode()), 1024, "test key length")
        c.put_object(Bucket=B, Key=k, Body=b"long key " + k.encode()[:8])
        eq(c.get_object(Bucket=B, Key=k)["Body"].read(), b"long key " + k.encode()[:8], "GET long key")
    keys = [o["Key"] for o in c.list_objects_v2(Bucket=B, Prefix="k/")["Contents"]]
    eq(keys, [k1024], "listing of the 1024-byte key")
    expect_error(lambda: c.put_object(Bucket=B, Key="k/" + "x" * 1023, Body=b"x"), "KeyTooLongError", 400)
    expect_error(lambda: c.put_object(Bucket=B, Key="é" * 512 + "x", Body=b"x"), "KeyTooLongError", 400)


def chunked_body(data, chunk, sk, amz_date, scope, seed_sig, tamper=False):
    key = signing_key(sk, amz_date[:8])
    out = []
    prev = seed_sig
    pieces = [data[i:i + chunk] for i in range(0, len(data), chunk)] + [b""]
    for n, piece in enumerate(pieces):
        sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, prev, EMPTY_SHA, sha256(piece)])
        sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
        if tamper and n == 1:
            sig = "0" * 64
        out.append(b"%x;chunk-signature=%s\r\n%s\r\n" % (len(piece), sig.encode(), piece))
        prev = sig
    return b"".join(out)


def streaming_put(key, data, chunk=65536, tamper=False):
    path = "/%s/%s" % (B, key)
    # The Content-Length of the encoded body must be known before signing.
    probe = chunked_body(data, chunk, E.sk, "20000101T000000Z", "x", "0" * 64)
    headers = {"Host": "127.0.0.1:%d" % E.port, "Content-Encoding": "aws-chunked",
               "x-amz-decoded-content-length": str(len(data)), "Content-Length": str(len(probe))}
    headers, seed, scope, amz_date = sign_headers("PUT", path, [], headers,
                                                  "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", E.ak, E.sk)
    body = chunked_body(data, chunk, E.sk, amz_date, scope, seed, tamper)
    eq(len(body), len(probe), "encoded length")
    return raw_request(E.port, "PUT", path, headers=headers, body=body)


@T.case("STREAMING-AWS4-HMAC-SHA256-PAYLOAD (aws-chunked) upload")
def _():
    data = os.urandom(3 * 65536 + 1000)
    st, hdrs, body = streaming_put("streamed", data)
    eq(st, 200, "status (%r)" % body[:300])
    eq(hdrs.get("etag"), '"%s"' % md5_hex(data), "ETag of the decoded payload")
    g = c.get_object(Bucket=B, Key="streamed")
    eq(sha256(g["Body"].read()), sha256(data), "stored bytes are the decoded payload")
    eq(g.get("ContentEncoding") in (None, ""), True, "aws-chunked must not be stored as Content-Encoding")
    small = b"tiny streamed"
    st, _, body = streaming_put("streamed-small", small, chunk=8192)
    eq(st, 200, "small status (%r)" % body[:300])
    eq(c.get_object(Bucket=B, Key="streamed-small")["Body"].read(), small, "small body")


@T.case("aws-chunked upload with a bad chunk signature -> 403 SignatureDoesNotMatch, nothing stored")
def _():
    st, _, body = streaming_put("streamed-bad", os.urandom(3 * 65536), tamper=True)
    expect_xml_error(st, body, 403, "SignatureDoesNotMatch")
    expect_error(lambda: c.head_object(Bucket=B, Key="streamed-bad"), "404", 404)


def read_response_head(sock, timeout=5.0):
    sock.settimeout(timeout)
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = sock.recv(4096)
        if not d:
            break
        buf += d
    return buf


def expect_continue_put(key, data, sk):
    path = "/%s/%s" % (B, key)
    headers = {"Host": "127.0.0.1:%d" % E.port, "Content-Length": str(len(data)),
               "Expect": "100-continue"}
    headers, _, _, _ = sign_headers("PUT", path, [], headers, sha256(data), E.ak, sk)
    s = socket.create_connection(("127.0.0.1", E.port), timeout=10)
    head = "PUT %s HTTP/1.1\r\n%s\r\n" % (path, "".join("%s: %s\r\n" % kv for kv in headers.items()))
    s.sendall(head.encode())
    return s


def read_full_response(sock):
    sock.settimeout(10)
    buf = read_response_head(sock, 10)
    head, _, rest = buf.partition(b"\r\n\r\n")
    cl = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            cl = int(v)
    while len(rest) < cl:
        d = sock.recv(65536)
        if not d:
            break
        rest += d
    return head, rest


@T.case("Expect: 100-continue: 100 before the body, then 200")
def _():
    data = os.urandom(200000)
    s = expect_continue_put("expect-100", data, E.sk)
    try:
        head = read_response_head(s)
        check(head.startswith(b"HTTP/1.1 100"), "expected an interim 100 Continue, got %r" % head[:200])
        eq(head.split(b"\r\n\r\n", 1)[1], b"", "bytes after the 100 before the body was sent")
        s.sendall(data)
        h2, body = read_full_response(s)
        check(h2.startswith(b"HTTP/1.1 200"), "final response: %r %r" % (h2[:200], body[:200]))
    finally:
        s.close()
    eq(sha256(c.get_object(Bucket=B, Key="expect-100")["Body"].read()), sha256(data), "body")


@T.case("Expect: 100-continue with a bad signature -> 403 without waiting for the body")
def _():
    s = expect_continue_put("expect-100-bad", os.urandom(100000), E.sk + "x")
    try:
        head, body = read_full_response(s)
    except socket.timeout:
        raise Fail("no response within 10 s: the daemon waits for a body it should refuse")
    finally:
        s.close()
    check(head.startswith(b"HTTP/1.1 403"), "expected 403, got %r" % head[:200])
    eq(xml_field(body, "Code"), "SignatureDoesNotMatch", "error code")


@T.case("multipart upload (5 MiB + 5 MiB + 1 B), range across parts, abort, errors")
def _():
    MiB = 1024 * 1024
    parts_data = [os.urandom(5 * MiB), os.urandom(5 * MiB), b"z"]
    up = c.create_multipart_upload(Bucket=B, Key="mpu/obj", Metadata={"k": "v"})["UploadId"]
    parts = []
    for n, p in enumerate(parts_data, 1):
        r = c.upload_part(Bucket=B, Key="mpu/obj", UploadId=up, PartNumber=n, Body=p)
        eq(r["ETag"], '"%s"' % md5_hex(p), "part %d ETag" % n)
        parts.append({"PartNumber": n, "ETag": r["ETag"]})
    lst = c.list_parts(Bucket=B, Key="mpu/obj", UploadId=up)
    eq([(p["PartNumber"], p["Size"]) for p in lst["Parts"]], [(1, 5 * MiB), (2, 5 * MiB), (3, 1)], "parts")
    ups = c.list_multipart_uploads(Bucket=B, Prefix="mpu/").get("Uploads", [])
    eq([(u["Key"], u["UploadId"]) for u in ups], [("mpu/obj", up)], "uploads in progress")
    r = c.complete_multipart_upload(Bucket=B, Key="mpu/obj", UploadId=up, MultipartUpload={"Parts": parts})
    want = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts_data)).hexdigest() + "-3"
    eq(r["ETag"], '"%s"' % want, "multipart ETag")
    g = c.get_object(Bucket=B, Key="mpu/obj")
    eq((g["ContentLength"], g["Metadata"]), (10 * MiB + 1, {"k": "v"}), "length/metadata")
    eq(sha256(g["Body"].read()), sha256(b"".join(parts_data)), "assembled bytes")
    g = c.get_object(Bucket=B, Key="mpu/obj", Range="bytes=%d-%d" % (5 * MiB - 3, 10 * MiB))
    eq(g["Body"].read(), b"".join(parts_data)[5 * MiB - 3:], "range across the part boundaries")
    eq(g["ResponseMetadata"]["HTTPStatusCode"], 206, "range status")
    eq(c.list_multipart_uploads(Bucket=B, Prefix="mpu/").get("Uploads", []), [], "uploads after complete")
    up2 = c.create_multipart_upload(Bucket=B, Key="mpu/aborted")["UploadId"]
    c.upload_part(Bucket=B, Key="mpu/aborted", UploadId=up2, PartNumber=1, Body=b"abc")
    c.abort_multipart_upload(Bucket=B, Key="mpu/aborted", UploadId=up2)
    expect_error(lambda: c.upload_part(Bucket=B, Key="mpu/aborted", UploadId=up2, PartNumber=2, Body=b"x"),
                 "NoSuchUpload", 404)
    expect_error(lambda: c.head_object(Bucket=B, Key="mpu/aborted"), "404", 404)
    up3 = c.create_multipart_upload(Bucket=B, Key="mpu/small")["UploadId"]
    ps = [{"PartNumber": n, "ETag": c.upload_part(Bucket=B, Key="mpu/small", UploadId=up3, PartNumber=n,
                                                  Body=b"x" * 100)["ETag"]} for n in (1, 2)]
    expect_error(lambda: c.complete_multipart_upload(Bucket=B, Key="mpu/small", UploadId=up3,
                                                     MultipartUpload={"Parts": ps}), "EntityTooSmall", 400)
    expect_error(lambda: c.complete_multipart_upload(Bucket=B, Key="mpu/small", UploadId=up3,
                                                     MultipartUpload={"Parts": ps[::-1]}), "InvalidPartOrder", 400)
    expect_error(lambda: c.upload_part(Bucket=B, Key="mpu/small", UploadId=up3, PartNumber=10001, Body=b"x"),
                 "InvalidArgument", 400)
    c.abort_multipart_upload(Bucket=B, Key="mpu/small", UploadId=up3)


@T.case("list_objects_v2 pagination, delimiter, start-after; copy_object; delete_objects")
def _():
    c.create_bucket(Bucket="boto3-list")
    keys = sorted(["a/%03d" % i for i in range(25)] + ["b/x", "b/y/z", "c"])
    for k in keys:
        c.put_object(Bucket="boto3-list", Key=k, Body=k.encode())
    got, token, pages = [], None, 0
    while True:
        kw = {"ContinuationToken": token} if token else {}
        r = c.list_objects_v2(Bucket="boto3-list", MaxKeys=10, **kw)
        got += [o["Key"] for o in r.get("Contents", [])]
        pages += 1
        if not r["IsTruncated"]:
            break
        token = r["NextContinuationToken"]
    eq((got, pages), (keys, 3), "keys/pages")
    r = c.list_objects_v2(Bucket="boto3-list", Delimiter="/")
    eq(([o["Key"] for o in r.get("Contents", [])], [p["Prefix"] for p in r.get("CommonPrefixes", [])]),
       (["c"], ["a/", "b/"]), "delimiter")
    r = c.list_objects_v2(Bucket="boto3-list", StartAfter="a/023")
    eq([o["Key"] for o in r["Contents"]], ["a/024", "b/x", "b/y/z", "c"], "start-after")
    c.copy_object(Bucket="boto3-list", Key="copied", CopySource={"Bucket": "boto3-list", "Key": "b/y/z"})
    eq(c.get_object(Bucket="boto3-list", Key="copied")["Body"].read(), b"b/y/z", "copy")
    r = c.delete_objects(Bucket="boto3-list", Delete={"Objects": [{"Key": k} for k in keys + ["copied"]]})
    eq(len(r.get("Deleted", [])), len(keys) + 1, "deleted")
    eq(c.list_objects_v2(Bucket="boto3-list")["KeyCount"], 0, "empty after delete")
    c.delete_bucket(Bucket="boto3-list")
    expect_error(lambda: c.list_objects_v2(Bucket="boto3-list"), "NoSuchBucket", 404)


@T.case("concurrent PUT/GET from 8 threads keep objects apart")
def _():
    n = 8 if QUICK else 25

    def worker(t):
        for i in range(n):
            data = os.urandom(1000 + (t * 7919 + i * 104729) % 150000)
            k = "conc/%d/%d" % (t, i)
            c.put_object(Bucket=B, Key=k, Body=data)
            got = c.get_object(Bucket=B, Key=k)["Body"].read()
            if sha256(got) != sha256(data):
                raise Fail("thread %d object %d differs" % (t, i))
        return n

    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        total = sum(ex.map(worker, range(8)))
    keys = []
    for page in c.get_paginator("list_objects_v2").paginate(Bucket=B, Prefix="conc/"):
        keys += [o["Key"] for o in page.get("Contents", [])]
    eq(len(keys), total, "objects listed")


T.done()
