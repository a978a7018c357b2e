#!/usr/bin/python3
# sfs: own-daemon
"""A data disk running out of space (docs/ARCHITECTURE.md, "Replication over the node's disks").

One data directory is an 8 MiB tmpfs mounted in a private mount namespace: the daemon runs
as `unshare -m --propagation private sh -c 'mount -t tmpfs ... DIR && exec storagefsd ...'`,
so the mount never shows on the host (the test reads it through /proc/PID/root). Needs root
and unshare(1): without them the cases FAIL with the reason (never skipped).

1. R=2, W=2 on 2 disks, one the tmpfs (the other a plain directory): fill it; every write that cannot reach W fails with
   507 InsufficientStorage (or 503) and leaves nothing visible; everything acknowledged
   reads back byte-exact; the disk stays online and its index passes integrity_check;
   deletes work and free space; then writes succeed again.
2. R=2, W=2 over 3 disks, the tmpfs and two of 64 MiB (equal placement weights): once it is full, new objects go to the next disk
   by placement: only the write that finds it full may fail (507); every acknowledged
   object has 2 copies and reads back.
"""
import json
import os
import random
import shutil
import sqlite3
import subprocess
import tempfile
import time

from botocore.exceptions import ClientError

from common import (Daemon, Env, Suite, check, eq, log, sha256, sha256_file)

E = Env()
T = Suite("diskfull")
KiB = 1024
MiB = 1024 * KiB
B = "full"
ALL = []


def ns_problem():
    """Why a private mount namespace with a tmpfs cannot be made here (None: it can)."""
    if os.geteuid() != 0:
        return "not root (euid %d): mounting a tmpfs needs CAP_SYS_ADMIN" % os.geteuid()
    if not shutil.which("unshare"):
        return "unshare(1) not found (util-linux)"
    d = tempfile.mkdtemp(dir=E.root)
    try:
        p = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                            'mount -t tmpfs -o size=1m tmpfs "$1" && touch "$1/x" && umount "$1"',
                            "sh", d], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        if p.returncode != 0:
            return "unshare -m + mount tmpfs failed (rc %d): %s" % (p.returncode, p.stdout[-300:])
        if os.listdir(d):
            return "the tmpfs leaked to the host mount namespace"
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return None


class FullDaemon(Daemon):
    """A daemon whose data dir number `small` is an 8 MiB tmpfs in its own mount namespace
    (and, with big set, every other one a tmpfs of that size: below 2 GiB every disk has
    placement weight 1, so the small one gets its full share of the objects)."""

    def __init__(self, name, ndirs, small, extra, big=None):
        root = os.path.join(E.root, name)
        os.makedirs(root, exist_ok=True)
        super().__init__(root, ndirs=ndirs, extra=extra, pids_root=E.root)
        self.small = self.dirs[small]
        self.tmpfs = [x for x in self.dirs if big or x == self.small]
        mounts = " && ".join('mount -t tmpfs -o size=%s tmpfs "$%d"'
                             % ("8m" if x == self.small else big, i + 1)
                             for i, x in enumerate(self.tmpfs))
        real = self.bin
        self.bin = os.path.join(root, "in-namespace.sh")
        with open(self.bin, "w") as f:
            # unshare and sh exec in turn: the daemon keeps the pid the harness signals
            f.write("#!/bin/sh\nexec unshare -m --propagation private sh -c "
                    "'%s && shift %d && exec \"$@\"' sh %s '%s' \"$@\"\n"
                    % (mounts, len(self.tmpfs), " ".join("'%s'" % x for x in self.tmpfs), real))
        os.chmod(self.bin, 0o755)
        ALL.append(self)

    def client(self, **kw):
        from common import s3client
        return s3client(self.endpoint, self.ak, self.sk, **kw)

    def inside(self, path):
        """path as the daemon sees it (through its mount namespace)."""
        return "/proc/%d/root%s" % (self.proc.pid, os.path.abspath(path))

    def status(self):
        from common import raw_request
        st, _, body = raw_request(self.port, "GET", "/", query=[("cairn-status", "")],
                                  ak=self.ak, sk=self.sk, timeout=10)
        check(st == 200, "GET /?cairn-status: %d %r" % (st, body[:300]))
        return json.loads(body)


def start(name, ndirs, small, r, w, big=None):
    why = ns_problem()
    check(why is None, "cannot run the disk-full case: %s" % why)
    d = FullDaemon(name, ndirs, small, ["--replicas", str(r), "--write-quorum", str(w),
                                        "--scrub-budget-pct", "0"], big=big)
    d.start(timeout=30)
    for x in d.tmpfs:
        check(os.listdir(x) == [], "the tmpfs is visible on the host: %s" % os.listdir(x))
    check(os.path.isdir(d.inside(os.path.join(d.small, ".cairn"))),
          "the daemon's tmpfs is not reachable through /proc/PID/root")
    d.client().create_bucket(Bucket=B)
    return d


def put(c, key, data):
    """None when acknowledged, else (status, code)."""
    try:
        c.put_object(Bucket=B, Key=key, Body=data)
        return None
    except ClientError as e:
        return (e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"].get("Code"))


def read_problems(c, objs):
    bad = []
    for k, v in sorted(objs.items()):
        try:
            body = c.get_object(Bucket=B, Key=k)["Body"].read()
        except ClientError as e:
            bad.append("%s: %s" % (k, e.response["Error"].get("Code")))
            continue
        if sha256(body) != sha256(v):
            bad.append("%s: wrong bytes" % k)
    return bad


def absent_problems(c, keys):
    bad = []
    for k in keys:
        try:
            c.head_object(Bucket=B, Key=k)
            bad.append("%s: visible" % k)
        except ClientError as e:
            if e.response["ResponseMetadata"]["HTTPStatusCode"] != 404:
                bad.append("%s: %s" % (k, e.response["Error"].get("Code")))
    return bad


def bad_errors(fails):
    return ["%s: %s" % (k, e) for k, e in fails
            if e not in ((507, "InsufficientStorage"), (503, "ServiceUnavailable"))]


def integrity(d):
    """PRAGMA integrity_check of the tmpfs disk's index (a copy taken while idle)."""
    tmp = tempfile.mkdtemp(dir=E.root)
    try:
        for n in ("index.db", "index.db-wal"):
            src = d.inside(os.path.join(d.small, ".cairn", n))
            if os.path.exists(src):
                shutil.copy(src, os.path.join(tmp, n))
        db = sqlite3.connect(os.path.join(tmp, "index.db"))
        try:
            return db.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            db.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def idle(d, timeout=30):
    return not poll(lambda: d.status().get("heal_queue") != 0, timeout)


def poll(fn, timeout, step=0.5):
    deadline = time.monotonic() + timeout
    while True:
        r = fn()
        if not r or time.monotonic() >= deadline:
            return r
        time.sleep(step)


def fill(c, prefix, size, limit, stop_after):
    """PUTs until stop_after failures in a row (or limit); returns (acked, failures)."""
    acked, fails, row = {}, [], 0
    for i in range(limit):
        key = "%s/%03d" % (prefix, i)
        data = os.urandom(size)
        err = put(c, key, data)
        if err is None:
            acked[key] = data
            row = 0
        else:
            fails.append((key, err))
            row += 1
            if row >= stop_after:
                break
    return acked, fails


# ------------------------------------------------------------------ 1. W = R = 2, a disk full

@T.case("R=2 W=2, one disk an 8 MiB tmpfs: filled, writes fail 507 and leave nothing; reads intact; deletes free space; writes work again")
def _():
    d = start("twodisks", 2, 1, 2, 2)
    c = d.client()
    big, bfail = fill(c, "big", 256 * KiB, 60, 3)
    small, sfail = fill(c, "small", 8 * KiB, 400, 3)
    log("acknowledged %d big, %d small; refused %s" % (len(big), len(small), (bfail + sfail)[:4]))
    check(len(big) >= 10, "only %d objects of 256 KiB fit on an 8 MiB disk" % len(big))
    check(bfail and sfail, "the disk never filled up: big %d, small %d" % (len(bfail), len(sfail)))
    eq(bad_errors(bfail + sfail)[:5], [], "refused writes: want 507 InsufficientStorage (or 503)")
    eq(absent_problems(c, [k for k, _ in bfail + sfail])[:5], [],
       "refused writes left something visible")
    objs = dict(big)
    objs.update(small)
    eq(read_problems(c, objs)[:5], [], "acknowledged objects read back")
    st = d.status()
    eq(st.get("disks_online"), 2, "disks online with one full (ENOSPC is no disk fault)")
    check("store_disk_full vol=%s " % d.small in d.log_text(), "no store_disk_full line")
    check(idle(d), "repairs still queued: %s" % st)
    eq(integrity(d), "ok", "integrity_check of the full disk's index")
    # deletes need no space: they free it
    gone = sorted(big)[: len(big) // 2] + sorted(small)[: len(small) // 2]
    for k in gone:
        c.delete_object(Bucket=B, Key=k)
        objs.pop(k)
    eq(absent_problems(c, gone)[:5], [], "deleted objects")
    data = os.urandom(256 * KiB)
    err = poll(lambda: put(c, "again/big", data), 20, step=1.0)
    eq(err, None, "a 256 KiB PUT after the deletes freed space")
    objs["again/big"] = data
    more, mfail = fill(c, "again/small", 8 * KiB, 20, 1)
    eq(mfail, [], "small PUTs after the deletes")
    objs.update(more)
    eq(read_problems(c, objs)[:5], [], "everything reads back after the deletes")
    # someone else fills the disk to the last byte: the index itself meets ENOSPC
    filler = d.inside(os.path.join(d.small, "filler"))
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    err = put(c, "nospace/inline", b"x" * 2000)
    check(err in ((507, "InsufficientStorage"), (503, "ServiceUnavailable")),
          "inline PUT on a disk with 0 bytes free: %s" % (err,))
    victim = sorted(big)[-1]
    try:
        c.delete_object(Bucket=B, Key=victim)
        objs.pop(victim)
    except ClientError as e:
        # refused: the outcome is unknown, as in S3 (the tombstone may land on the other
        # disk after the answer): the key reads as before or as deleted, nothing else
        log("DELETE on a disk with 0 bytes free: %s" % e.response["Error"].get("Code"))
        was = objs.pop(victim)
        got = read_problems(c, {victim: was})
        check(got == [] or got == ["%s: NoSuchKey" % victim], "after a refused DELETE: %s" % got)
    eq(read_problems(c, objs)[:5], [], "everything reads back with the disk at 0 bytes free")
    eq(d.status().get("disks_online"), 2, "disks online at 0 bytes free (ENOSPC is no disk fault)")
    os.unlink(filler)
    data = os.urandom(100 * KiB)
    err = poll(lambda: put(c, "again/after-filler", data), 20, step=1.0)
    eq(err, None, "a PUT once the filler is gone")
    objs["again/after-filler"] = data
    eq(read_problems(c, objs)[:5], [], "everything reads back at the end")
    eq(d.status().get("disks_online"), 2, "disks online at the end")
    check(idle(d), "repairs still queued")
    eq(integrity(d), "ok", "integrity_check at the end")
    d.check_clean_stop()


# ------------------------------------------------------------------ 2. R = 2 over 3, one full

def data_copies(d):
    out = {}
    for dd in d.dirs:
        root = d.inside(dd) if dd in d.tmpfs else dd
        for dp, _, fn in os.walk(os.path.join(root, "data")):
            for n in fn:
                try:
                    out.setdefault(sha256_file(os.path.join(dp, n)), []).append(dd)
                except OSError:
                    pass
    return out


@T.case("R=2 W=2 over 3 disks, one an 8 MiB tmpfs: once it is full new objects go to the next disk; 2 copies each")
def _():
    d = start("threedisks", 3, 2, 2, 2, big="64m")
    c = d.client()
    rnd = random.Random(5)
    objs, fails, after = {}, [], 0
    # the tmpfs holds 2/3 of the copies: it fills after ~40 objects of 250 KiB; then 30 more
    for i in range(150):
        key = "o/%03d" % i
        data = os.urandom(rnd.choice([200 * KiB, 300 * KiB]))
        err = put(c, key, data)
        if err is None:
            objs[key] = data
            after += 1 if fails else 0
        else:
            fails.append((key, err))
        if after >= 30:
            break
    log("acknowledged %d (%d after the first refusal), refused %s" % (len(objs), after, fails[:5]))
    check("store_disk_full vol=%s " % d.small in d.log_text(),
          "the tmpfs never filled up (no store_disk_full line)")
    eq(bad_errors(fails), [], "refused writes: want 507 InsufficientStorage (or 503)")
    check(len(fails) <= 3, "%d writes refused: a full disk should yield to the next one" % len(fails))
    check(after >= 30, "only %d writes acknowledged after the disk filled up" % after)
    eq(absent_problems(c, [k for k, _ in fails]), [], "refused writes left something visible")
    eq(read_problems(c, objs)[:5], [], "acknowledged objects read back")
    cp = data_copies(d)
    probs = ["%s: on %s" % (k, cp.get(sha256(v))) for k, v in sorted(objs.items())
             if len(set(cp.get(sha256(v), []))) != 2]
    eq(probs[:5], [], "objects not on exactly 2 disks")
    full_dir = [x for x in d.status()["disks"] if x["path"] == d.small][0]
    check(full_dir["free_bytes"] < 3 * MiB, "the tmpfs is not nearly full: %s" % full_dir)
    eq(d.status().get("disks_online"), 3, "disks online")
    d.check_clean_stop()


for dm in ALL:
    dm.kill9()
for dm in ALL:
    for i in range(1, dm.nstarts + 1):
        src = os.path.join(dm.root, "daemon-%d.log" % i)
        if os.path.exists(src):
            shutil.copy(src, os.path.join(E.root, "daemon-%s-%d.log" % (os.path.basename(dm.root), i)))
T.done()
