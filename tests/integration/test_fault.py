#!/usr/bin/python3
# sfs: own-daemon
"""Crash consistency and corruption detection.

1. Four boto3 writers PUT a bounded stream of objects (new keys and overwrites of their own
   keys, inline and file-backed sizes) and record every acknowledged key + sha256 and the
   PUT in flight. The daemon is killed with SIGKILL mid-stream and restarted on the same
   data dirs: every acknowledged object must read back intact (or as the overwrite that
   was in flight for it), and no key that was never written shows up.
2. One byte of a stored object's data file is flipped on disk: GET must fail (error status
   or an aborted body, never the full corrupted bytes with 200) and the log must name a
   CRC mismatch."""
import os
import random
import re
import threading
import time

from botocore.exceptions import ClientError

from common import (Daemon, Env, Fail, Suite, check, eq, log, md5_hex, multipart_etag,
                    s3client, sha256)

E = Env()
T = Suite("fault")
d = Daemon(E.root)
d.start()
B = "fault"
KiB, MiB = 1024, 1024 * 1024
SIZES = [0, 100, 5000, 16 * KiB, 16 * KiB + 1, 70 * KiB, 300 * KiB, MiB]
NTHREADS = 4
MAX_PUTS = 400          # per writer: bounds the stream even if the kill never came

lock = threading.Lock()
acked = {}              # key -> sha256 of the last acknowledged PUT
inflight = {}           # key -> sha256 of the PUT sent but not acknowledged
stop = threading.Event()
killing = threading.Event()     # set just before the kill: errors after it are expected
errors = []


def writer(t):
    c = s3client(d.endpoint, d.ak, d.sk, read_timeout=20)
    rnd = random.Random(t)
    mine = []
    for j in range(MAX_PUTS):
        if stop.is_set():
            return
        if mine and rnd.random() < 0.25:
            key = rnd.choice(mine)
        else:
            key = "w%d/%05d" % (t, j)
        data = os.urandom(rnd.choice(SIZES))
        h = sha256(data)
        with lock:
            inflight[key] = h
        try:
            r = c.put_object(Bucket=B, Key=key, Body=data)
        except Exception as e:  # noqa: BLE001 — the kill cuts the request
            if not killing.is_set():
                errors.append("writer %d: %s before the kill" % (t, e))
            return
        if r["ETag"] != '"%s"' % md5_hex(data):
            errors.append("writer %d: ETag %s for %s" % (t, r["ETag"], key))
        with lock:
            acked[key] = h
            del inflight[key]
        if key not in mine:
            mine.append(key)


c = s3client(d.endpoint, d.ak, d.sk)
c.create_bucket(Bucket=B)
MP_PARTS = [os.urandom(5 * MiB), os.urandom(100 * KiB)]
OPEN_UP, OPEN_PARTS = None, []


@T.case("before the crash: a completed multipart object and an open upload with 2 parts")
def _():
    up = c.create_multipart_upload(Bucket=B, Key="mp/done")["UploadId"]
    parts = [{"PartNumber": n, "ETag": c.upload_part(Bucket=B, Key="mp/done", UploadId=up,
                                                       PartNumber=n, Body=p)["ETag"]}
             for n, p in enumerate(MP_PARTS, 1)]
    r = c.complete_multipart_upload(Bucket=B, Key="mp/done", UploadId=up,
                                    MultipartUpload={"Parts": parts})
    eq(r["ETag"], '"%s"' % multipart_etag(MP_PARTS), "ETag")
    global OPEN_UP, OPEN_PARTS
    OPEN_UP = c.create_multipart_upload(Bucket=B, Key="mp/open")["UploadId"]
    OPEN_PARTS = [{"PartNumber": n, "ETag": c.upload_part(Bucket=B, Key="mp/open", UploadId=OPEN_UP,
                                                            PartNumber=n, Body=p)["ETag"]}
                  for n, p in enumerate(MP_PARTS, 1)]


@T.case("kill -9 in the middle of a stream of PUTs from 4 writers")
def _():
    threads = [threading.Thread(target=writer, args=(t,)) for t in range(NTHREADS)]
    for th in threads:
        th.start()
    # kill after 150 acknowledged PUTs or 8 s, whichever comes first (a loaded machine is slow)
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        with lock:
            n = len(acked)
        if n >= 150:
            break
        time.sleep(0.05)
    running = sum(th.is_alive() for th in threads)
    killing.set()
    d.kill9()
    stop.set()
    for th in threads:
        th.join(30)
    log("killed with %d acknowledged keys, %d PUTs in flight, %d writers running"
        % (len(acked), len(inflight), running))
    eq(errors, [], "writer errors before the kill")
    check(running == NTHREADS, "writers had finished before the kill (%d running)" % running)
    check(len(acked) >= 10, "only %d PUTs acknowledged in 8 s" % len(acked))


@T.case("restart on the same data dirs after SIGKILL")
def _():
    d.start(timeout=20)


@T.case("every acknowledged object reads back intact (or as its in-flight overwrite)")
def _():
    c2 = s3client(d.endpoint, d.ak, d.sk)
    bad = []
    for key, h in sorted(acked.items()):
        ok = {h, inflight.get(key)}
        try:
            body = c2.get_object(Bucket=B, Key=key)["Body"].read()
        except ClientError as e:
            bad.append("%s: %s" % (key, e.response["Error"]["Code"]))
            continue
        if sha256(body) not in ok:
            bad.append("%s: content differs (%d bytes)" % (key, len(body)))
    eq(bad[:10], [], "%d of %d acknowledged objects bad" % (len(bad), len(acked)))
    body = c2.get_object(Bucket=B, Key="mp/done")["Body"].read()
    eq(sha256(body), sha256(b"".join(MP_PARTS)), "multipart object")


@T.case("listing holds only written keys; in-flight new keys are absent or complete")
def _():
    c2 = s3client(d.endpoint, d.ak, d.sk)
    listed = {}
    for page in c2.get_paginator("list_objects_v2").paginate(Bucket=B):
        for o in page.get("Contents", []):
            listed[o["Key"]] = o["Size"]
    never = sorted(k for k in listed if k not in acked and k not in inflight and k != "mp/done")
    eq(never, [], "keys never written")
    missing = sorted(k for k in acked if k not in listed)
    eq(missing, [], "acknowledged keys missing from the listing")
    for key, h in inflight.items():
        if key in acked or key not in listed:
            continue
        body = c2.get_object(Bucket=B, Key=key)["Body"].read()
        eq(sha256(body), h, "in-flight key %s present with other content" % key)
        eq(listed[key], len(body), "listed size of %s" % key)
    log("%d keys listed; %d in-flight keys, %d of them present"
        % (len(listed), len(inflight), sum(1 for k in inflight if k in listed)))


@T.case("an upload open at the crash keeps its acknowledged parts and completes")
def _():
    c2 = s3client(d.endpoint, d.ak, d.sk)
    check(OPEN_UP, "no upload was opened before the crash")
    parts = c2.list_parts(Bucket=B, Key="mp/open", UploadId=OPEN_UP).get("Parts", [])
    eq([(p["PartNumber"], p["ETag"]) for p in parts],
       [(p["PartNumber"], p["ETag"]) for p in OPEN_PARTS], "parts after restart")
    c2.complete_multipart_upload(Bucket=B, Key="mp/open", UploadId=OPEN_UP,
                                 MultipartUpload={"Parts": OPEN_PARTS})
    body = c2.get_object(Bucket=B, Key="mp/open")["Body"].read()
    eq(sha256(body), sha256(b"".join(MP_PARTS)), "completed object")


@T.case("new writes work after recovery")
def _():
    c2 = s3client(d.endpoint, d.ak, d.sk)
    data = os.urandom(200 * KiB)
    c2.put_object(Bucket=B, Key="after-crash", Body=data)
    eq(sha256(c2.get_object(Bucket=B, Key="after-crash")["Body"].read()), sha256(data), "body")


def data_files():
    out = {}
    for dd in d.dirs:
        for dp, dn, fn in os.walk(os.path.join(dd, "data")):
            for n in fn:
                p = os.path.join(dp, n)
                out[p] = os.path.getsize(p)
    return out


CORRUPT = os.urandom(300 * KiB)


def flip_byte(path, off):
    with open(path, "r+b") as f:
        f.seek(off)
        b = f.read(1)
        f.seek(off)
        f.write(bytes([b[0] ^ 0x5A]))
        f.flush()
        os.fsync(f.fileno())


def put_and_find(c2, key, body):
    """PUTs body and returns its data files, one per replica, largest first."""
    before = data_files()
    c2.put_object(Bucket=B, Key=key, Body=body)
    time.sleep(0.3)  # the replicas beyond the write quorum land in the background
    after = data_files()
    new = sorted((p for p in after if p not in before), key=lambda p: -after[p])
    check(new, "no new file under DATA/data/ for a %d-byte object (files: %d)" % (len(body), len(after)))
    for p in new:
        check(after[p] >= len(body), "new file %s has only %d bytes" % (p, after[p]))
    return new, after


@T.case("a flipped byte in one replica: GET returns the original bytes from another replica")
def _():
    c2 = s3client(d.endpoint, d.ak, d.sk)
    body = os.urandom(300 * KiB)
    new, after = put_and_find(c2, "corrupt-one", body)
    if len(new) < 2:
        log("one copy only (R=1): nothing to fall back to; covered by the next case")
        return
    flip_byte(new[0], after[new[0]] // 2)
    eq(sha256(c2.get_object(Bucket=B, Key="corrupt-one")["Body"].read()), sha256(body),
       "GET after one replica was corrupted")


@T.case("a flipped byte in every replica: GET fails, never 200 with the full corrupted body")
def _():
    c2 = s3client(d.endpoint, d.ak, d.sk)
    new, after = put_and_find(c2, "corrupt-me", CORRUPT)
    off = after[new[0]] // 2
    for path in new:
        flip_byte(path, off)
    log("flipped byte %d of %s (%d bytes each)" % (off, ", ".join(new), after[new[0]]))
    path = new[0]
    try:
        r = c2.get_object(Bucket=B, Key="corrupt-me")
        body = r["Body"].read()
    except ClientError as e:
        st = e.response["ResponseMetadata"]["HTTPStatusCode"]
        check(st >= 500, "error status %d (%s)" % (st, e.response["Error"]))
        log("GET of the corrupted object: %d %s" % (st, e.response["Error"].get("Code")))
        return
    except Exception as e:  # noqa: BLE001 — an aborted body is the other acceptable outcome
        log("GET of the corrupted object aborted: %s: %s" % (type(e).__name__, e))
        return
    if sha256(body) == sha256(CORRUPT):
        raise Fail("GET returned the original bytes: the flipped byte was never read "
                   "(wrong file %s?)" % path)
    raise Fail("GET returned 200 with %d of %d bytes, corrupted, and no error" % (len(body), len(CORRUPT)))


@T.case("the corruption is logged as a CRC mismatch")
def _():
    time.sleep(0.2)
    lines = [ln for ln in d.log_text().splitlines() if re.search(r"crc", ln, re.I)
             and re.search(r"mismatch|corrupt|bad", ln, re.I)]
    check(lines, "no CRC mismatch line in the log; tail: %r" % d.log_text()[-600:])
    log("log: %s" % lines[0])


@T.case("a range GET inside an intact block of the corrupted object still works")
def _():
    c2 = s3client(d.endpoint, d.ak, d.sk)
    r = c2.get_object(Bucket=B, Key="corrupt-me", Range="bytes=0-999")
    eq(r["Body"].read(), CORRUPT[:1000], "first 1000 bytes")


@T.case("the daemon keeps serving other objects; SIGTERM -> exit 0")
def _():
    c2 = s3client(d.endpoint, d.ak, d.sk)
    body = c2.get_object(Bucket=B, Key="mp/done")["Body"].read()
    eq(sha256(body), sha256(b"".join(MP_PARTS)), "another object")
    d.check_clean_stop()


d.kill9()
T.done()
