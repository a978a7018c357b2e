#!/usr/bin/python3
"""Raw HTTP over sockets: malformed requests get S3 error XML, oversized heads are refused,
pipelining, keep-alive, and slow or broken clients never block the others."""
import os
import re
import socket
import threading
import time

from common import (Env, Fail, Reader, Suite, check, eq, raw_request, s3client, sha256, signed_head_bytes,
                    xml_field, EMPTY_SHA)

E = Env()
T = Suite("raw_http")
c = s3client(E.endpoint, E.ak, E.sk, read_timeout=10)
B = "raw-bucket"
c.create_bucket(Bucket=B)
OBJ_A = os.urandom(5000)
OBJ_B = os.urandom(100000)
c.put_object(Bucket=B, Key="a", Body=OBJ_A)
c.put_object(Bucket=B, Key="b", Body=OBJ_B)
HOST = "127.0.0.1:%d" % E.port


def connect(timeout=10):
    return socket.create_connection(("127.0.0.1", E.port), timeout=timeout)


def send_raw(data, timeout=10):
    s = connect(timeout)
    s.sendall(data)
    return s, Reader(s)


ERROR_XML = re.compile(rb"<Error>\s*<Code>[A-Za-z]+</Code>")


def signed_head(method, path, query=(), extra=None, payload=EMPTY_SHA):
    return signed_head_bytes(E.port, E.ak, E.sk, method, path, query, extra, payload)


def still_serving(what):
    r = c.get_object(Bucket=B, Key="a")
    if sha256(r["Body"].read()) != sha256(OBJ_A):
        raise Fail("after %s: GET returned other bytes" % what)


MALFORMED = [
    ("garbage request line", b"GARBAGE\r\n\r\n"),
    ("no HTTP version", b"GET /\r\nHost: x\r\n\r\n"),
    ("space inside the target", b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("header without colon", b"GET / HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n"),
    ("NUL in a header", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n"),
    ("non-numeric Content-Length", b"PUT /raw-bucket/x HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"),
    ("negative Content-Length", b"PUT /raw-bucket/x HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"),
    ("two different Content-Lengths", b"PUT /raw-bucket/x HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
                                      b"Content-Length: 2\r\n\r\nab"),
    ("space before the colon", b"GET / HTTP/1.1\r\nHost : x\r\n\r\n"),
]

for label, req in MALFORMED:
    @T.case("malformed request (%s) -> 400 with S3 error XML, connection closed" % label)
    def _(req=req):
        s, r = send_raw(req)
        try:
            st, hdrs, body = r.response()
            eq(st, 400, "status (body %r)" % body[:200])
            check(ERROR_XML.search(body), "no <Error><Code> XML body: %r" % body[:300])
            check(r.closed_soon(), "connection left open after a malformed request")
        finally:
            s.close()


@T.case("malformed requests did not disturb the daemon")
def _():
    still_serving("malformed requests")


@T.case("HTTP/2.0 request line -> 505 (or 400) with error XML")
def _():
    s, r = send_raw(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n")
    try:
        st, _, body = r.response()
        check(st in (505, 400), "status %d" % st)
        check(ERROR_XML.search(body), "no error XML: %r" % body[:300])
    finally:
        s.close()


@T.case("header block > 16 KiB -> 431 (or 400), daemon keeps serving")
def _():
    req = b"GET /raw-bucket/a HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"a" * 20000 + b"\r\n\r\n"
    s = connect()
    try:
        try:
            s.sendall(req)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the daemon may refuse and close before we finish sending
        st, _, body = Reader(s).response()
        check(st in (431, 400), "status %d" % st)
        check(ERROR_XML.search(body), "no error XML: %r" % body[:300])
    finally:
        s.close()
    still_serving("a huge header")


@T.case("many small headers totalling > 16 KiB -> 431 (or 400)")
def _():
    req = b"GET /raw-bucket/a HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"X-H%d: %s\r\n" % (i, b"v" * 150) for i in range(150)) + b"\r\n"
    s = connect()
    try:
        try:
            s.sendall(req)
        except (BrokenPipeError, ConnectionResetError):
            pass
        st, _, body = Reader(s).response()
        check(st in (431, 400), "status %d" % st)
    finally:
        s.close()


@T.case("more than 100 headers -> 431 (or 400)")
def _():
    req = b"GET /raw-bucket/a HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"X-H%d: v\r\n" % i for i in range(120)) + b"\r\n"
    s, r = send_raw(req)
    try:
        st, _, body = r.response()
        check(st in (431, 400), "status %d" % st)
    finally:
        s.close()


@T.case("request target > 8 KiB -> 414 (or 400)")
def _():
    s, r = send_raw(b"GET /raw-bucket/" + b"x" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        st, _, body = r.response()
        check(st in (414, 400), "status %d" % st)
        check(ERROR_XML.search(body), "no error XML: %r" % body[:300])
    finally:
        s.close()


@T.case("Content-Length with Transfer-Encoding: chunked -> 400 (or 501), connection closed")
def _():
    req = (b"PUT /raw-bucket/smuggle HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    s, r = send_raw(req)
    try:
        st, _, body = r.response()
        check(st in (400, 501), "status %d" % st)
        check(r.closed_soon(), "connection left open")
    finally:
        s.close()


@T.case("pipelined GET, HEAD, GET on one connection answered in order")
def _():
    reqs = (signed_head("GET", "/raw-bucket/a") + signed_head("HEAD", "/raw-bucket/b") +
            signed_head("GET", "/raw-bucket/b") + signed_head("GET", "/raw-bucket/missing"))
    s, r = send_raw(reqs)
    try:
        st, h, body = r.response()
        eq((st, sha256(body)), (200, sha256(OBJ_A)), "1st response")
        st, h, body = r.response(head_request=True)
        eq((st, h.get("content-length")), (200, str(len(OBJ_B))), "2nd (HEAD) response")
        st, h, body = r.response()
        eq((st, sha256(body)), (200, sha256(OBJ_B)), "3rd response")
        st, h, body = r.response()
        eq((st, xml_field(body, "Code")), (404, "NoSuchKey"), "4th response")
    finally:
        s.close()


@T.case("pipelined PUT with body followed by GET of the same key")
def _():
    data = os.urandom(30000)
    put = signed_head("PUT", "/raw-bucket/piped", extra={"Content-Length": str(len(data))},
                      payload=sha256(data)) + data
    s, r = send_raw(put + signed_head("GET", "/raw-bucket/piped"))
    try:
        st, _, body = r.response()
        eq(st, 200, "PUT status (%r)" % body[:200])
        st, _, body = r.response()
        eq((st, sha256(body)), (200, sha256(data)), "GET after pipelined PUT")
    finally:
        s.close()


@T.case("pipelined requests sent one byte at a time")
def _():
    reqs = signed_head("GET", "/raw-bucket/a") + signed_head("GET", "/raw-bucket/a")
    s = connect()
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        for i in range(len(reqs)):
            s.send(reqs[i:i + 1])
        r = Reader(s)
        for n in (1, 2):
            st, _, body = r.response()
            eq((st, sha256(body)), (200, sha256(OBJ_A)), "response %d" % n)
    finally:
        s.close()


@T.case("keep-alive: 20 sequential requests on one connection")
def _():
    s = connect()
    r = Reader(s)
    try:
        for i in range(20):
            s.sendall(signed_head("GET", "/raw-bucket/a"))
            st, h, body = r.response()
            eq((st, sha256(body)), (200, sha256(OBJ_A)), "response %d" % i)
    finally:
        s.close()


@T.case("HTTP/1.0 request: answered and the connection closed")
def _():
    req = signed_head("GET", "/raw-bucket/a").replace(b"HTTP/1.1", b"HTTP/1.0", 1)
    s, r = send_raw(req)
    try:
        st, _, body = r.response()
        eq((st, sha256(body)), (200, sha256(OBJ_A)), "HTTP/1.0 response")
        check(r.closed_soon(), "HTTP/1.0 connection left open")
    finally:
        s.close()


@T.case("a slow client holding half a header does not block other clients")
def _():
    slow = connect()
    try:
        slow.sendall(b"GET /raw-bucket/a HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Partial: ")
        time.sleep(0.2)
        t0 = time.monotonic()
        still_serving("a slow client")
        dt = time.monotonic() - t0
        check(dt < 3, "a normal GET took %.1fs while a slow client was open" % dt)
    finally:
        slow.close()


@T.case("32 slow clients (half headers, half bodies) do not block other clients")
def _():
    socks = []
    try:
        for i in range(32):
            s = connect()
            if i % 2:
                s.sendall(b"GET /raw-bucket/a HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            else:
                s.sendall(signed_head("PUT", "/raw-bucket/slow%d" % i,
                                      extra={"Content-Length": "1000000"}, payload="UNSIGNED-PAYLOAD")
                          + b"x" * 1000)
            socks.append(s)
        time.sleep(0.2)
        t0 = time.monotonic()
        done = []

        def worker():
            still_serving("32 slow clients")
            done.append(1)
        ts = [threading.Thread(target=worker) for _ in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(10)
        eq(len(done), 4, "normal GETs finished within 10 s")
        check(time.monotonic() - t0 < 5, "normal GETs took %.1fs" % (time.monotonic() - t0))
    finally:
        for s in socks:
            s.close()
    # the half-sent PUTs must not have created objects
    keys = [o["Key"] for o in c.list_objects_v2(Bucket=B, Prefix="slow").get("Contents", [])]
    eq(keys, [], "objects from unfinished PUTs")


@T.case("client disconnecting mid-body leaves no object and the daemon serving")
def _():
    for i in range(5):
        s = connect()
        s.sendall(signed_head("PUT", "/raw-bucket/cut%d" % i, extra={"Content-Length": "500000"},
                              payload="UNSIGNED-PAYLOAD") + os.urandom(100000 * i + 10))
        s.close()
    time.sleep(0.3)
    still_serving("cut uploads")
    keys = [o["Key"] for o in c.list_objects_v2(Bucket=B, Prefix="cut").get("Contents", [])]
    eq(keys, [], "objects from cut uploads")


@T.case("client disconnecting mid-download does not disturb the daemon")
def _():
    big = os.urandom(3 * 1024 * 1024)
    c.put_object(Bucket=B, Key="big", Body=big)
    for i in range(5):
        s = connect()
        s.sendall(signed_head("GET", "/raw-bucket/big"))
        s.recv(1000)
        s.close()
    still_serving("cut downloads")
    eq(sha256(c.get_object(Bucket=B, Key="big")["Body"].read()), sha256(big), "big object")


@T.case("300 idle connections at once; the daemon still serves")
def _():
    socks = []
    try:
        for _ in range(300):
            socks.append(connect())
        t0 = time.monotonic()
        still_serving("300 idle connections")
        check(time.monotonic() - t0 < 3, "GET took %.1fs" % (time.monotonic() - t0))
    finally:
        for s in socks:
            s.close()


@T.case("unsupported method (signed) -> 405/501 with error XML")
def _():
    s, r = send_raw(signed_head("BREW", "/raw-bucket/a"))
    try:
        st, _, body = r.response()
        check(st in (405, 501), "status %d, body %r" % (st, body[:200]))
        check(ERROR_XML.search(body), "no error XML: %r" % body[:300])
    finally:
        s.close()


@T.case("error responses carry x-amz-request-id and Content-Type xml")
def _():
    st, h, body = raw_request(E.port, "GET", "/raw-bucket/nope", ak=E.ak, sk=E.sk)
    eq((st, xml_field(body, "Code")), (404, "NoSuchKey"), "status/code")
    check("x-amz-request-id" in h, "no x-amz-request-id header: %r" % h)
    check("xml" in h.get("content-type", ""), "Content-Type %r" % h.get("content-type"))
    eq(xml_field(body, "Key"), "nope", "<Key> in the error")


T.done()
