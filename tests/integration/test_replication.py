#!/usr/bin/python3
# sfs: own-daemon
"""Replication over the node's disks (docs/ARCHITECTURE.md, "Replication over the node's disks").

Every case starts its own daemon(s) with --replicas 3 --write-quorum 2 on 127.0.0.1.

1. Placement: 40 objects (0 B, 100 B, 20 KiB, 300 KiB) on 5 disks; every object > 16 KiB
   is a data file on exactly 3 distinct disks (found by the sha256 of the files: a data
   file holds the raw bytes of a single PUT); all read back.
2. kill -9 during a stream of PUTs from 4 writers: after restart every acknowledged object
   reads back intact (or as its in-flight overwrite).
3. A disk renamed away during a PUT/GET load: every GET of an acknowledged object and every
   PUT succeeds (4 disks >= W); renamed back (the probe picks it up), every object is again
   on exactly 3 disks and reads back.
4. Bitrot: one byte flipped in one replica of each of 30 objects: every GET returns the
   original bytes; after the repair/scrub every data file holds the original bytes again.
5. Three disks, two renamed away: GET still returns the bytes of the remaining replica,
   PUT answers 503; renamed back, PUTs work again.
"""
import json
import os
import random
import shutil
import subprocess
import threading
import time

from botocore.exceptions import ClientError

from common import (Daemon, Env, Fail, Suite, check, eq, log, md5_hex, raw_request,
                    s3client, sha256, sha256_file)

E = Env()
T = Suite("replication")
KiB = 1024
B = "repl"
ALL = []            # every daemon started, killed at the end


class RDaemon(Daemon):
    """common.Daemon with R=3-style flags, remembered for the final clean-up."""

    def __init__(self, root, ndirs=5, extra=None):
        os.makedirs(root, exist_ok=True)
        # the harness kills what is listed in $SFS_ROOT/pids (matching the root in cmdline)
        super().__init__(root, ndirs=ndirs, extra=extra, pids_root=E.root)
        ALL.append(self)

    def client(self, **kw):
        return s3client(self.endpoint, self.ak, self.sk, **kw)

    def status(self):
        st, _, body = raw_request(self.port, "GET", "/", query=[("cairn-status", "")],
                                  ak=self.ak, sk=self.sk, timeout=10)
        check(st == 200, "GET /?cairn-status: %d %r" % (st, body[:300]))
        return json.loads(body)


def new_daemon(name, ndirs=5, extra=()):
    # daemon-*.log files must sit directly in E.root for the harness's sanitizer check,
    # so each case gets its own subdir as root and its logs are checked at the end here.
    d = RDaemon(os.path.join(E.root, name), ndirs=ndirs,
                extra=["--replicas", "3", "--write-quorum", "2"] + list(extra))
    d.start(timeout=20)
    d.client().create_bucket(Bucket=B)
    return d


def copies(dirs):
    """sha256 of each data file -> list of the data dirs holding it (one entry per file)."""
    out = {}
    for dd in dirs:
        for dp, _, fn in os.walk(os.path.join(dd, "data")):
            for n in fn:
                p = os.path.join(dp, n)
                try:
                    h = sha256_file(p)
                except OSError:
                    continue    # removed by the daemon while walking
                out.setdefault(h, []).append(dd)
    return out


def nfiles(dirs):
    return sum(len(fn) for dd in dirs for _, _, fn in os.walk(os.path.join(dd, "data")))


def placement_problems(dirs, objs, min_size=16 * KiB + 1):
    """objs: key -> bytes. Problems with 'each big object on exactly 3 distinct dirs'."""
    cp = copies(dirs)
    big = {k: v for k, v in objs.items() if len(v) >= min_size}
    probs = []
    for k, v in sorted(big.items()):
        where = cp.get(sha256(v), [])
        if len(where) != 3 or len(set(where)) != 3:
            probs.append("%s: %d files on dirs %s" % (k, len(where),
                                                      sorted(os.path.basename(x) for x in where)))
    n = nfiles(dirs)
    if n != 3 * len(big):
        probs.append("%d data files for %d objects > 16 KiB (want %d)" % (n, len(big), 3 * len(big)))
    return probs


def durability_problems(dirs, objs, min_size=16 * KiB + 1):
    cp = copies(dirs)
    return ["%s: on %d distinct dirs" % (k, len(set(cp.get(sha256(v), []))))
            for k, v in sorted(objs.items())
            if len(v) >= min_size and len(set(cp.get(sha256(v), []))) < 3]


def read_problems(c, objs):
    bad = []
    for k, v in sorted(objs.items()):
        try:
            body = c.get_object(Bucket=B, Key=k)["Body"].read()
        except ClientError as e:
            bad.append("%s: %s %s" % (k, e.response["ResponseMetadata"]["HTTPStatusCode"],
                                      e.response["Error"].get("Code")))
            continue
        except Exception as e:  # noqa: BLE001
            bad.append("%s: %s" % (k, e))
            continue
        if sha256(body) != sha256(v):
            bad.append("%s: wrong bytes (%d of %d)" % (k, len(body), len(v)))
    return bad


def poll(fn, timeout, step=0.5):
    """Calls fn() until it returns a falsy value (no problems) or timeout; returns the last."""
    deadline = time.monotonic() + timeout
    while True:
        r = fn()
        if not r or time.monotonic() >= deadline:
            return r
        time.sleep(step)


def finish(d):
    d.check_clean_stop()


# ------------------------------------------------------------------ 1. placement

@T.case("R=3 placement: 40 objects on 5 disks, each object > 16 KiB on exactly 3 distinct disks")
def _():
    d = new_daemon("placement")
    c = d.client()
    sizes = [0, 100, 20 * KiB, 300 * KiB]
    objs = {}
    for i in range(40):
        data = os.urandom(sizes[i % 4])
        r = c.put_object(Bucket=B, Key="p/%02d" % i, Body=data)
        eq(r["ETag"], '"%s"' % md5_hex(data), "ETag of p/%02d" % i)
        objs["p/%02d" % i] = data
    # W=2: the third copy lands in the background
    probs = poll(lambda: placement_problems(d.dirs, objs), 10)
    eq(probs[:8], [], "placement (%d problems)" % len(probs))
    per_dir = [nfiles([x]) for x in d.dirs]
    log("data files per dir: %s" % per_dir)
    eq(read_problems(c, objs)[:8], [], "read back")
    st = d.status()
    eq((st.get("disks_total"), st.get("disks_online"), st.get("replicas"), st.get("write_quorum")),
       (5, 5, 3, 2), "status disks_total/online/replicas/write_quorum")
    finish(d)


# ------------------------------------------------------------------ 2. kill -9

@T.case("kill -9 during a PUT stream of 4 writers (R=3 on 5 disks): acknowledged objects intact")
def _():
    d = new_daemon("kill9")
    lock = threading.Lock()
    acked, inflight, errors = {}, {}, []
    stop, killing = threading.Event(), threading.Event()
    sizes = [0, 100, 5000, 16 * KiB + 1, 70 * KiB, 300 * KiB]

    def writer(t):
        c = d.client(read_timeout=20)
        rnd = random.Random(t)
        mine = []
        for j in range(300):
            if stop.is_set():
                return
            key = rnd.choice(mine) if mine and rnd.random() < 0.25 else "w%d/%05d" % (t, j)
            data = os.urandom(rnd.choice(sizes))
            with lock:
                inflight.setdefault(key, set()).add(sha256(data))
            try:
                c.put_object(Bucket=B, Key=key, Body=data)
            except Exception as e:  # noqa: BLE001
                if not killing.is_set():
                    errors.append("writer %d: %s before the kill" % (t, e))
                return
            with lock:
                acked[key] = sha256(data)
                inflight[key].discard(sha256(data))
            if key not in mine:
                mine.append(key)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline and len(acked) < 150:
        time.sleep(0.05)
    running = sum(th.is_alive() for th in threads)
    killing.set()
    d.kill9()
    stop.set()
    for th in threads:
        th.join(30)
    log("killed with %d acknowledged keys, %d writers running" % (len(acked), running))
    eq(errors[:5], [], "writer errors before the kill")
    check(running == 4, "writers had finished before the kill (%d running)" % running)
    check(len(acked) >= 10, "only %d PUTs acknowledged in 8 s" % len(acked))
    d.start(timeout=20)
    c = d.client()
    bad = []
    for key, h in sorted(acked.items()):
        try:
            body = c.get_object(Bucket=B, Key=key)["Body"].read()
        except ClientError as e:
            bad.append("%s: %s" % (key, e.response["Error"]["Code"]))
            continue
        if sha256(body) != h and sha256(body) not in inflight.get(key, ()):
            bad.append("%s: content differs (%d bytes)" % (key, len(body)))
    eq(bad[:10], [], "%d of %d acknowledged objects bad after restart" % (len(bad), len(acked)))
    finish(d)


# ------------------------------------------------------------------ 3. a disk removed

@T.case("a disk renamed away under PUT/GET load: no request fails; renamed back: 3 copies again")
def _():
    d = new_daemon("diskout", extra=["--scrub-budget-pct", "100"])
    c = d.client()
    objs = {}
    for i in range(30):
        data = os.urandom(random.choice([100, 40 * KiB, 200 * KiB]))
        c.put_object(Bucket=B, Key="pre/%02d" % i, Body=data)
        objs["pre/%02d" % i] = data
    probs = poll(lambda: placement_problems(d.dirs, objs), 10)
    eq(probs[:5], [], "placement before the disk is removed")
    lock = threading.Lock()
    errors = []
    stop = threading.Event()
    renamed = threading.Event()
    during = [0]        # requests answered after the rename
    pre = dict(objs)

    def worker(t):
        cw = d.client(read_timeout=20)
        rnd = random.Random(100 + t)
        for j in range(3000):      # bounded; normally stopped long before
            if stop.is_set():
                return
            try:
                if t % 2 == 0:
                    key = "load%d/%04d" % (t, j)
                    data = os.urandom(rnd.choice([100, 30 * KiB, 150 * KiB]))
                    cw.put_object(Bucket=B, Key=key, Body=data)
                    with lock:
                        objs[key] = data
                else:
                    key = rnd.choice(sorted(pre))
                    body = cw.get_object(Bucket=B, Key=key)["Body"].read()
                    if body != pre[key]:
                        errors.append("GET %s: wrong bytes (%d)" % (key, len(body)))
                if renamed.is_set():
                    with lock:
                        during[0] += 1
            except ClientError as e:
                errors.append("%s %s: %s %s" % ("PUT" if t % 2 == 0 else "GET", key,
                                                e.response["ResponseMetadata"]["HTTPStatusCode"],
                                                e.response["Error"].get("Code")))
            except Exception as e:  # noqa: BLE001
                errors.append("%s: %s" % (key, e))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    time.sleep(1.0)
    victim = d.dirs[2]
    away = victim + ".away"
    os.rename(victim, away)
    renamed.set()
    log("renamed %s away" % victim)
    # the probe (every 2 s) must mark it offline; the load goes on meanwhile
    offline = poll(lambda: d.status().get("disks_online") != 4, 8)
    time.sleep(2.0)
    running = sum(th.is_alive() for th in threads)
    stop.set()
    for th in threads:
        th.join(60)
    check(running == 4, "load threads ended before the disk was seen offline (%d running)" % running)
    check(not any(th.is_alive() for th in threads), "load threads hung")
    eq(errors[:8], [], "%d failed requests with one disk of 5 removed" % len(errors))
    log("%d requests answered after the rename" % during[0])
    check(during[0] >= 20, "only %d requests answered after the rename" % during[0])
    check(not offline, "status never showed 4 disks online after the rename: %s" % d.status())
    check("store_disk_offline" in d.log_text(), "no store_disk_offline line in the log")
    # writes while it is away
    for i in range(10):
        data = os.urandom(50 * KiB)
        c.put_object(Bucket=B, Key="during/%02d" % i, Body=data)
        objs["during/%02d" % i] = data
    eq(read_problems(c, objs)[:8], [], "reads with the disk away")
    os.rename(away, victim)
    log("renamed %s back; %d objects" % (victim, len(objs)))
    back = poll(lambda: d.status().get("disks_online") != 5, 10)
    check(not back, "disk not back online within 10 s: %s" % d.status())
    # durability: every object on at least 3 distinct disks, and readable
    probs = poll(lambda: durability_problems(d.dirs, objs), 10, step=1.0)
    eq(probs[:6], [], "objects on < 3 disks after the disk came back (%d problems)" % len(probs))
    eq(read_problems(c, objs)[:8], [], "read back after the disk came back")
    # exactly 3: copies made on other disks while it was away must go. Nothing reconciles
    # at once when a disk returns (no repair is queued; the scrubber rests 60 s after a
    # pass), so this waits a few seconds, then restarts the daemon: a scrub pass starts
    # 5 s after open (budget 100%) and must leave every object on exactly its 3 disks.
    probs = poll(lambda: placement_problems(d.dirs, objs), 5, step=1.0)
    if probs:
        log("%d objects not on exactly 3 disks 5 s after the disk returned (e.g. %s); "
            "restarting for a scrub pass" % (len(probs), probs[:2]))
        d.check_clean_stop()
        d.start(timeout=20)
        c = d.client()
        probs = poll(lambda: placement_problems(d.dirs, objs), 20, step=1.0)
        if probs:
            log("status: %s" % json.dumps(d.status()))
    eq(probs[:6], [], "exactly 3 copies per object after a scrub pass (%d problems)" % len(probs))
    eq(read_problems(c, objs)[:8], [], "read back after the scrub pass")
    finish(d)


# ------------------------------------------------------------------ 4. bitrot

@T.case("bitrot in one replica of 30 objects: GETs return the original bytes; repair restores every file")
def _():
    d = new_daemon("bitrot", extra=["--scrub-budget-pct", "100"])
    c = d.client()
    objs = {}
    for i in range(30):
        data = os.urandom(random.choice([70 * KiB, 130 * KiB, 300 * KiB]))
        c.put_object(Bucket=B, Key="rot/%02d" % i, Body=data)
        objs["rot/%02d" % i] = data
    probs = poll(lambda: placement_problems(d.dirs, objs), 10)
    eq(probs[:5], [], "placement before the corruption")
    # sha -> files
    files = {}
    for dd in d.dirs:
        for dp, _, fn in os.walk(os.path.join(dd, "data")):
            for n in fn:
                p = os.path.join(dp, n)
                files.setdefault(sha256_file(p), []).append(p)
    rnd = random.Random(7)
    flipped = {}
    for k, v in sorted(objs.items()):
        ps = files.get(sha256(v), [])
        eq(len(ps), 3, "replica files of %s" % k)
        p = rnd.choice(ps)
        off = rnd.randrange(len(v))
        with open(p, "r+b") as f:
            f.seek(off)
            b = f.read(1)
            f.seek(off)
            f.write(bytes([b[0] ^ 0x5A]))
            f.flush()
            os.fsync(f.fileno())
        check(sha256_file(p) != sha256(v), "flip did not change %s" % p)
        flipped[k] = p
    eq(read_problems(c, objs)[:8], [], "GET with one corrupted replica each")

    def after():
        probs = placement_problems(d.dirs, objs)
        for k, p in flipped.items():
            try:
                if sha256_file(p) != sha256(objs[k]):
                    probs.append("%s: corrupted file %s still there" % (k, p))
            except OSError:
                pass    # replaced by a new file (placement_problems counts the copies)
        return probs
    probs = poll(after, 20, step=1.0)
    if probs:
        log("status: %s" % json.dumps(d.status()))
    eq(probs[:6], [], "after repair/scrub (%d problems)" % len(probs))
    eq(read_problems(c, objs)[:8], [], "read back after repair")
    check("crc" in d.log_text().lower(), "no CRC mismatch logged")
    finish(d)


# ------------------------------------------------------------------ 5. two disks of three down

@T.case("3 disks, 2 renamed away: GET served by the last replica, PUT 503; renamed back: PUT works")
def _():
    d = new_daemon("twodown", ndirs=3)
    c = d.client()
    objs = {}
    for i in range(6):
        data = os.urandom([100, 50 * KiB, 300 * KiB][i % 3])
        c.put_object(Bucket=B, Key="x/%d" % i, Body=data)
        objs["x/%d" % i] = data
    probs = poll(lambda: placement_problems(d.dirs, objs), 10)
    eq(probs[:5], [], "3 copies on 3 disks")
    moved = [(x, x + ".away") for x in d.dirs[:2]]
    for a, b in moved:
        os.rename(a, b)
    down = poll(lambda: d.status().get("disks_online") != 1, 8)
    check(not down, "status does not show 1 disk online 8 s after 2 renames: %s" % d.status())
    eq(read_problems(c, objs)[:6], [], "GET with 2 of 3 disks away")
    acked = []
    for i in range(3):
        data = os.urandom([100, 50 * KiB, 300 * KiB][i])
        key = "down/%d" % i
        try:
            c.put_object(Bucket=B, Key=key, Body=data)
            acked.append(key)
        except ClientError as e:
            st = e.response["ResponseMetadata"]["HTTPStatusCode"]
            code = e.response["Error"].get("Code")
            check(st == 503 and code in ("ServiceUnavailable", "SlowDown"),
                  "PUT %s (%d B) with 1 of 3 disks: %s %s, want 503 ServiceUnavailable"
                  % (key, len(data), st, code))
    eq(acked, [], "PUTs acknowledged with 1 disk online and W=2")
    for a, b in moved:
        os.rename(b, a)
    up = poll(lambda: d.status().get("disks_online") != 3, 10)
    check(not up, "disks not back online within 10 s: %s" % d.status())
    data = os.urandom(100 * KiB)

    def put_ok():
        try:
            c.put_object(Bucket=B, Key="after", Body=data)
            return None
        except ClientError as e:
            return e.response["Error"].get("Code")
    err = poll(put_ok, 10)
    eq(err, None, "PUT after the disks came back")
    objs["after"] = data
    eq(read_problems(c, objs)[:6], [], "read back after the disks came back")
    finish(d)


for dm in ALL:
    dm.kill9()
# the harness checks sanitizer reports only in $SFS_ROOT/daemon-*.log: copy ours there
for dm in ALL:
    for i in range(1, dm.nstarts + 1):
        src = os.path.join(dm.root, "daemon-%d.log" % i)
        if os.path.exists(src):
            shutil.copy(src, os.path.join(E.root, "daemon-%s-%d.log" % (os.path.basename(dm.root), i)))
T.done()
