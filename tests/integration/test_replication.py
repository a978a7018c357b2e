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
   PUT succeeds (4 disks >= W); renamed back (the probe picks it up and wakes the
   scrubber), every object is again on exactly 3 disks and reads back, without a restart.
4. A disk replaced at runtime: 300 objects (inline and file-backed) under a PUT/GET load;
   the disk is renamed away and an EMPTY directory made in its place: no request fails,
   the prober takes the new disk up (5 online, a new disk id, rebuild logged with its
   progress), and after the rebuild every object (inline ones counted in the indexes) is
   on exactly 3 disks, the new disk holds what the old one held (same placement), and
   everything reads back.
5. Bitrot: a random byte flipped in a random replica of each of 1000 objects: every GET
   returns the original bytes; after one scrub pass every data file holds the original
   bytes again.
6. Three disks, two renamed away: GET still returns the bytes of the remaining replica,
   PUT answers 503; renamed back, PUTs work again.
"""
import json
import os
import random
import shutil
import sqlite3
import threading
import time

from botocore.exceptions import ClientError

from common import (Daemon, Env, Suite, check, eq, log, md5_hex, raw_request,
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


def index_keys(dd, bucket=B):
    """Live keys (not tombstones) in the index of data dir dd (read while the daemon runs:
    WAL readers never block it)."""
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(dd, ".cairn", "index.db"), uri=True,
                         timeout=10)
    try:
        return {bytes(k).decode() for (k,) in
                db.execute("SELECT key FROM objects WHERE bucket=? AND nparts>=0", (bucket,))}
    finally:
        db.close()


def row_problems(dirs, objs):
    """Every key (inline or not) must have a live row on exactly 3 distinct disks."""
    count = {}
    for dd in dirs:
        for k in index_keys(dd):
            count[k] = count.get(k, 0) + 1
    return ["%s: rows on %d disks" % (k, count.get(k, 0)) for k in sorted(objs)
            if count.get(k, 0) != 3]


def put_many(d, objs, nthreads=4):
    """PUTs objs (key -> bytes) from nthreads clients; returns the failures."""
    items = sorted(objs.items())
    errs = []

    def run(part):
        c = d.client(read_timeout=30)
        for k, v in part:
            try:
                c.put_object(Bucket=B, Key=k, Body=v)
            except Exception as e:  # noqa: BLE001
                errs.append("PUT %s: %s" % (k, e))
    ths = [threading.Thread(target=run, args=(items[i::nthreads],)) for i in range(nthreads)]
    for th in ths:
        th.start()
    for th in ths:
        th.join(300)
    return errs


def read_many(d, objs, nthreads=4):
    """read_problems from nthreads clients."""
    items = sorted(objs)
    out = []

    def run(part):
        out.extend(read_problems(d.client(read_timeout=30), {k: objs[k] for k in part}))
    ths = [threading.Thread(target=run, args=(items[i::nthreads],)) for i in range(nthreads)]
    for th in ths:
        th.start()
    for th in ths:
        th.join(300)
    return sorted(out)


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
    # exactly 3: copies made on other disks while it was away must go. The disk's return
    # wakes the scrubber (budget 100%) from its 60 s rest: a pass starts at once and must
    # leave every object on exactly its 3 disks, with no restart.
    probs = poll(lambda: placement_problems(d.dirs, objs), 90, step=1.0)
    if probs:
        log("status: %s" % json.dumps(d.status()))
    eq(probs[:6], [], "exactly 3 copies per object after the woken scrub pass (%d problems)"
       % len(probs))
    check("store_scrub_pass_done" in d.log_text(), "no scrub pass logged after the return")
    eq(read_problems(c, objs)[:8], [], "read back after the scrub pass")
    finish(d)


# ------------------------------------------------------------------ 4. a disk replaced

def mixed_objects(prefix, n, rnd):
    sizes = [0, 100, 5000, 16 * KiB, 16 * KiB + 1, 40 * KiB, 200 * KiB]
    return {"%s/%03d" % (prefix, i): os.urandom(rnd.choice(sizes)) for i in range(n)}


@T.case("a disk replaced by an EMPTY directory under PUT/GET load: taken up at runtime, rebuilt to exactly 3 copies")
def _():
    d = new_daemon("replace", extra=["--scrub-budget-pct", "100"])
    rnd = random.Random(11)
    objs = mixed_objects("pre", 300, rnd)
    eq(put_many(d, objs)[:5], [], "PUTs of the 300 objects")
    probs = poll(lambda: row_problems(d.dirs, objs) + placement_problems(d.dirs, objs), 20)
    eq(probs[:5], [], "3 copies of each object before the replacement")
    lock = threading.Lock()
    errors = []
    stop = threading.Event()
    served = [0]
    pre = dict(objs)

    def load(t):
        cw = d.client(read_timeout=30)
        lr = random.Random(200 + t)
        for j in range(100000):
            if stop.is_set():
                return
            key = "load%d/%05d" % (t, j) if t == 0 else lr.choice(sorted(pre))
            try:
                if t == 0:
                    data = os.urandom(lr.choice([100, 10 * KiB, 30 * KiB, 120 * KiB]))
                    cw.put_object(Bucket=B, Key=key, Body=data)
                    with lock:
                        objs[key] = data
                else:
                    body = cw.get_object(Bucket=B, Key=key)["Body"].read()
                    if body != pre[key]:
                        errors.append("GET %s: wrong bytes (%d)" % (key, len(body)))
                with lock:
                    served[0] += 1
            except ClientError as e:
                errors.append("%s %s: %s %s" % ("PUT" if t == 0 else "GET", key,
                                                e.response["ResponseMetadata"]["HTTPStatusCode"],
                                                e.response["Error"].get("Code")))
            except Exception as e:  # noqa: BLE001
                errors.append("%s: %s" % (key, e))
            time.sleep(0.02)

    threads = [threading.Thread(target=load, args=(t,)) for t in range(3)]
    for th in threads:
        th.start()
    try:
        time.sleep(1.0)
        slot = 3
        victim = d.dirs[slot]
        old_id = d.status()["disks"][slot]["id"]
        os.rename(victim, victim + ".old")
        log("renamed %s away (disk id %s)" % (victim, old_id))
        off = poll(lambda: d.status().get("disks_online") != 4, 15)
        check(not off, "the disk was not seen offline within 15 s: %s" % d.status())
        os.mkdir(victim)            # the replacement: an empty directory in the same slot
        t0 = time.monotonic()

        def taken():
            st = d.status()
            return not (st.get("disks_online") == 5 and st["disks"][slot]["id"] != old_id)
        notyet = poll(taken, 15)
        check(not notyet, "the empty disk was not taken up within 15 s: %s" % d.status())
        log("taken up after %.1fs: %s" % (time.monotonic() - t0, d.status()["disks"][slot]))
        sd = d.status()["disks"][slot]
        if "rebuild" in sd:
            check(isinstance(sd["rebuild"], dict), "status rebuild field: %r" % sd)
        else:
            log("status has no per-disk 'rebuild' object yet (s3_status.c); the log is checked")
        done = poll(lambda: "store_rebuild_done vol=%s " % victim not in d.log_text(), 120, step=1.0)
        check(not done, "no store_rebuild_done for %s within 120 s" % victim)
        time.sleep(1.0)
    finally:
        stop.set()
        for th in threads:
            th.join(60)
    txt = d.log_text()
    check("store_disk_replaced vol=%s " % victim in txt, "no store_disk_replaced line")
    check("store_rebuild_start vol=%s " % victim in txt, "no store_rebuild_start line")
    m = [ln for ln in txt.splitlines() if "store_rebuild_done vol=%s " % victim in ln]
    log(m[-1])
    check(" copied=0 " not in m[-1] and " eta_s=" in m[-1] and " bytes=" in m[-1],
          "rebuild line without copies/bytes/eta: %s" % m[-1])
    eq(errors[:8], [], "%d failed requests while the disk was replaced" % len(errors))
    check(served[0] >= 20, "only %d requests served during the replacement" % served[0])
    log("%d requests served during the replacement; %d objects" % (served[0], len(objs)))
    # The load's last PUTs may have landed after the pass: their 3rd copy comes by the heal
    # queue. Then every object is on exactly 3 disks: data files and index rows (inline).
    probs = poll(lambda: row_problems(d.dirs, objs) + placement_problems(d.dirs, objs), 60,
                 step=1.0)
    if probs:
        log("status: %s" % json.dumps(d.status()))
    eq(probs[:6], [], "exactly 3 copies per object after the rebuild (%d problems)" % len(probs))
    # same placement seed: the new disk holds what the old one did (but deleted/overwritten)
    old_keys = index_keys(victim + ".old")
    new_keys = index_keys(victim)
    missing = sorted(old_keys - new_keys)
    eq(missing[:5], [], "keys of the replaced disk not on its replacement (%d)" % len(missing))
    log("old disk held %d keys, the new one %d" % (len(old_keys), len(new_keys)))
    check(len(new_keys) >= 0.4 * len(objs), "the new disk holds only %d keys of %d"
          % (len(new_keys), len(objs)))
    eq(read_many(d, objs)[:8], [], "read back after the rebuild")
    finish(d)


# ------------------------------------------------------------------ 5. bitrot

@T.case("bitrot in a random replica of 1000 objects: GETs return the original bytes; one scrub pass restores every file")
def _():
    # The scrubber off while the damage is done and read; then a restart with the budget
    # at 100% runs one pass from the start of every index.
    d = new_daemon("bitrot", extra=["--scrub-budget-pct", "0"])
    rnd = random.Random(7)
    objs = {"rot/%04d" % i: os.urandom(rnd.randint(16 * KiB + 1, 40 * KiB)) for i in range(1000)}
    eq(put_many(d, objs, nthreads=6)[:5], [], "PUTs of 1000 objects")
    probs = poll(lambda: placement_problems(d.dirs, objs), 30, step=1.0)
    eq(probs[:5], [], "placement before the corruption")
    files = {}
    for dd in d.dirs:
        for dp, _, fn in os.walk(os.path.join(dd, "data")):
            for n in fn:
                p = os.path.join(dp, n)
                files.setdefault(sha256_file(p), []).append(p)
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
            f.write(bytes([b[0] ^ (1 << rnd.randrange(8))]))
            f.flush()
            os.fsync(f.fileno())
        flipped[k] = p
    eq(read_many(d, objs, nthreads=6)[:8], [], "GET with one corrupted replica each")
    check("crc_mismatch" in d.log_text(), "no CRC mismatch logged")
    d.check_clean_stop()
    d.extra[d.extra.index("--scrub-budget-pct") + 1] = "100"
    d.start(timeout=30)

    def after():
        probs = placement_problems(d.dirs, objs)
        bad = 0
        for k, p in flipped.items():
            try:
                if sha256_file(p) != sha256(objs[k]):
                    bad += 1
            except OSError:
                pass    # replaced by a new file (placement_problems counts the copies)
        if bad:
            probs.append("%d corrupted files still there" % bad)
        return probs
    probs = poll(after, 120, step=2.0)
    if probs:
        log("status: %s" % json.dumps(d.status()))
    eq(probs[:6], [], "after one scrub pass (%d problems)" % len(probs))
    passes = [ln for ln in d.log_text().splitlines() if "store_scrub_pass_done" in ln]
    check(passes, "no scrub pass logged")
    eq(read_many(d, objs, nthreads=6)[:8], [], "read back after the scrub pass")
    finish(d)


# ------------------------------------------------------------------ 6. two disks of three down

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
