#!/usr/bin/python3
# sfs: own-daemon
"""SIGTERM drains: a request in flight (upload or download) completes, then the daemon exits
0; idle keep-alive connections do not hold it up; what was acknowledged survives a restart."""
import os
import socket
import time

from common import (Daemon, Env, Fail, Reader, Suite, QUICK, check, eq, s3client, sha256,
                    signed_head_bytes)

E = Env()
T = Suite("sigterm")
d = Daemon(E.root)
MiB = 1024 * 1024
PUT_DATA = os.urandom(4 * MiB)
GET_DATA = os.urandom((8 if QUICK else 32) * MiB)


def client():
    return s3client(d.endpoint, d.ak, d.sk)


def wait_exit(timeout):
    try:
        return d.proc.wait(timeout)
    except Exception:
        raise Fail("daemon still running %ss after SIGTERM" % timeout)


def clean_exit(timeout=15):
    rc = wait_exit(timeout)
    eq(rc, 0, "exit status after SIGTERM")
    d.check_clean_stop()


@T.case("SIGTERM during an upload: the PUT completes with 200, then exit 0")
def _():
    d.start()
    c = client()
    c.create_bucket(Bucket="drain")
    s = socket.create_connection(("127.0.0.1", d.port), timeout=20)
    try:
        s.sendall(signed_head_bytes(d.port, d.ak, d.sk, "PUT", "/drain/put-in-flight",
                                    extra={"Content-Length": str(len(PUT_DATA))},
                                    payload=sha256(PUT_DATA)))
        half = len(PUT_DATA) // 2
        s.sendall(PUT_DATA[:half])
        time.sleep(0.3)
        d.proc.terminate()
        time.sleep(1.0)
        check(d.alive(), "daemon exited with an upload in flight (rc=%s)" % d.proc.poll())
        for i in range(half, len(PUT_DATA), 256 * 1024):
            s.sendall(PUT_DATA[i:i + 256 * 1024])
            time.sleep(0.02)
        st, h, body = Reader(s).response()
        eq(st, 200, "PUT status (%r)" % body[:200])
    finally:
        s.close()
    clean_exit()


@T.case("after restart the drained upload is stored intact")
def _():
    d.start()
    c = client()
    eq(sha256(c.get_object(Bucket="drain", Key="put-in-flight")["Body"].read()), sha256(PUT_DATA),
       "object uploaded during the drain")


@T.case("SIGTERM during a download: the GET completes, then exit 0")
def _():
    c = client()
    c.put_object(Bucket="drain", Key="big", Body=GET_DATA)
    s = socket.create_connection(("127.0.0.1", d.port), timeout=20)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    try:
        s.sendall(signed_head_bytes(d.port, d.ak, d.sk, "GET", "/drain/big"))
        r = Reader(s)
        while len(r.buf) < 256 * 1024:
            r._fill()
        d.proc.terminate()
        time.sleep(1.0)
        check(d.alive(), "daemon exited with a download in flight (rc=%s)" % d.proc.poll())
        st, h, body = r.response()
        eq((st, len(body)), (200, len(GET_DATA)), "status/length")
        eq(sha256(body), sha256(GET_DATA), "downloaded bytes")
    finally:
        s.close()
    clean_exit()


@T.case("SIGTERM with idle keep-alive connections open: exit 0 within 10 s")
def _():
    d.start()
    c = client()
    socks = []
    try:
        for i in range(5):
            s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
            s.sendall(signed_head_bytes(d.port, d.ak, d.sk, "GET", "/drain/put-in-flight"))
            st, _, body = Reader(s).response()
            eq(st, 200, "GET on connection %d" % i)
            socks.append(s)  # left open, idle
        half = socket.create_connection(("127.0.0.1", d.port), timeout=10)
        half.sendall(b"GET /drain/big HTTP/1.1\r\nHost: x\r\n")  # a head that never ends
        socks.append(half)
        c.list_buckets()
        t0 = time.monotonic()
        d.proc.terminate()
        rc = wait_exit(10)
        eq(rc, 0, "exit status")
        log_t = time.monotonic() - t0
        check(log_t < 10, "exit took %.1fs" % log_t)
    finally:
        for s in socks:
            s.close()
    d.check_clean_stop()


@T.case("SIGTERM when idle: exit 0 within 5 s; restart serves the data")
def _():
    d.start()
    eq(sha256(client().get_object(Bucket="drain", Key="big")["Body"].read()), sha256(GET_DATA),
       "object after restarts")
    t0 = time.monotonic()
    d.proc.terminate()
    eq(wait_exit(5), 0, "exit status")
    check(time.monotonic() - t0 < 5, "exit took too long")
    d.check_clean_stop()


d.kill9()
T.done()
