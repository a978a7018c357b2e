#!/usr/bin/python3
# sfs: own-daemon
"""The cluster at 3 and at 5 nodes (issue 6): separate storagefsd --cluster processes with
their own data directory each, on loopback, map R=3 W=2 written by hand (no controller, as
test_cluster_s3.py), scrubber off. For each size (3, then 5; SFS_CLUSTER_SIZES="3" runs one)
on a fresh cluster:

1. 2000 objects written via node 1 (8 threads, keep-alive SigV4 connections): 0-byte, small,
   up to 200 KiB, and 10 of 1.1-3 MiB; every PUT 200.
2. Every object read back via every other node, its MD5 equal to what was written.
3. The last node killed with SIGKILL while a writer PUTs new keys via node 2 and a reader GETs
   old ones via nodes 1 and 2: no PUT and no GET fails during the outage, and every
   acknowledged PUT reads back byte-exact via node 1 and node 2 while the node is down.
4. The node restarted: within CATCH_UP_S every key (old and new) is held by exactly its 3
   owners (cluster_harness.owners, the placement of cmap_owners) at one version (hinted
   copies moved back and dropped, the node's missing writes pushed to it); then every key
   written during its outage, and a sample of the old ones, read right via it.
5. Every node stops cleanly (SIGTERM, exit 0, no sanitizer report).

Repair passes (--cluster-repair-s 1) run only from step 4 on: the survivors are restarted
with them (SIGTERM, exit 0 checked) when the killed node comes back. Each internal request
is one mutual-TLS handshake (about 10 ms of server CPU measured on the CI-sized VM), and a
pass asks every other owner of every row, so passes over 2000+ rows on every node would take
most of two CPUs for the whole bulk phase. For the same reason the keys written during the
outage are named live/NNNNN, which sorts before the 2000 o/NNNNN: a pass walks its rows in
key order, so the survivors' first pass pushes them early and the catch-up is bounded by
the start of a pass, not by a whole one. A full pass over 2000 unchanged rows took 5 min on
the shared 2-CPU VM at load 12-15 (about 6 rows/s per node: two HEADs per row, each a new
TLS connection); keys late in the order catch up only that late. tests/bench/run.sh's
rebalance figure is that cost.
"""
import hashlib
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from common import Daemon, Env, Suite, check, eq, free_port, log
import cluster_harness as H

E = Env()
T = Suite("cluster_scale")
AK, SK = "AKCLUSTERSCALE0001", "cluster-scale-secret-key-000000000000"
CLUSTER_ID = "5ca1" * 8
BUCKET = "scale-bkt"
NOBJ = 2000
THREADS = 8
CATCH_UP_S = 120
SIZES = [int(n) for n in os.environ.get("SFS_CLUSTER_SIZES", "3 5").split()]


def obj_size(rng, i):
    if i % 200 == 7:
        return rng.randrange(1100 * 1024, 3 * 1024 * 1024)   # 10 objects > 1 MiB
    if i % 50 == 3:
        return 0
    return rng.choice([1, 100, 1000, 4096, 4097, 16 * 1024, 65536, 200 * 1024])


class Cluster:
    """n nodes on loopback, their certificates under root/pki, map version 1."""

    def __init__(self, root, n):
        self.root, self.n = root, n
        self.pki = os.path.join(root, "pki")
        self.ids = ["node-%04d" % (i + 1) for i in range(n)]
        self.seeds = {nid: (0x9e3779b97f4a7c15 * (i + 11)) & H.M64 for i, nid in enumerate(self.ids)}
        self.nodes = {}
        self.objs = {}     # key -> md5 hex of what the cluster must hold
        self.lock = threading.Lock()
        os.makedirs(self.pki)
        ca = H.make_ca(self.pki)
        for nid in self.ids:
            nroot = os.path.join(root, nid)
            os.makedirs(nroot)
            key, crt = H.make_node(self.pki, ca, nid)
            self.nodes[nid] = {"addr": "127.0.0.1:%d" % free_port(), "root": nroot,
                               "dir": H.cluster_dir(nroot, nid, (key, crt), ca[1], CLUSTER_ID, 3)}
        H.write_map([self.nodes[nid]["dir"] for nid in self.ids],
                    {nid: self.nodes[nid]["addr"] for nid in self.ids}, CLUSTER_ID, 1, 3, 2,
                    self.seeds)
        self.placement = [(nid, self.seeds[nid], 1, False) for nid in sorted(self.ids)]

    def start(self, nid, repair_s):
        node = self.nodes[nid]
        d = node.get("daemon") or Daemon(node["root"], ak=AK, sk=SK, ndirs=1, pids_root=E.root)
        d.extra = ["--cluster", node["dir"], "--internal-listen", node["addr"],
                   "--cluster-repair-s", str(repair_s), "--scrub-budget-pct", "0"]
        d.start(timeout=30)
        node["daemon"] = d

    def conn(self, nid):
        return H.S3Conn("127.0.0.1", self.nodes[nid]["daemon"].port, AK, SK)

    def rows_of(self, nid):
        return H.own_rows(self.pki, self.ids[0], self.nodes[nid]["addr"], BUCKET, missing_ok=True)

    def misplaced(self):
        """Keys not on exactly their owners, or at different versions: key -> (holders, owners,
        versions)."""
        holders, versions = {}, {}
        for nid in self.ids:
            for k, row in self.rows_of(nid).items():
                holders.setdefault(k, []).append(nid)
                versions.setdefault(k, set()).add(row)
        bad = {}
        for k in sorted(set(self.objs) | set(holders)):
            want = H.owners(BUCKET, k, self.placement, 3)
            if holders.get(k, []) != want or len(versions.get(k, ())) != 1:
                bad[k] = (holders.get(k, []), want, sorted(versions.get(k, ())))
        return bad


def parallel(fn, items, threads=THREADS):
    """fn(conn_cache, item) over items with `threads` workers; returns the results in order."""
    local = threading.local()

    def run(item):
        if not hasattr(local, "conns"):
            local.conns = {}
        return fn(local.conns, item)

    with ThreadPoolExecutor(threads) as ex:
        return list(ex.map(run, items))


def read_check(c, nid, keys):
    """GETs keys via nid in parallel; returns the list of (key, why) that were wrong."""
    def one(conns, key):
        conn = conns.get(nid) or conns.setdefault(nid, c.conn(nid))
        st, body = conn.get(BUCKET, key)
        if st != 200:
            return (key, "status %d" % st)
        if hashlib.md5(body).hexdigest() != c.objs[key]:
            return (key, "md5 differs (%d bytes)" % len(body))
        return None
    return [r for r in parallel(one, keys) if r]


def scenario(n):
    c = {}
    tag = "%d nodes: " % n

    @T.case(tag + "setup: %d storagefsd --cluster on loopback, R=3 W=2" % n)
    def _():
        c["c"] = cl = Cluster(os.path.join(E.root, "n%d" % n), n)
        for nid in cl.ids:
            cl.start(nid, 0)
        st, body = cl.conn(cl.ids[0]).request("PUT", BUCKET, "")
        eq(st, 200, "create bucket: %r" % body[:200])

    @T.case(tag + "%d objects written via node 1 (0 bytes to 3 MiB), every PUT 200" % NOBJ)
    def _():
        cl = c["c"]
        t0 = time.monotonic()
        rng = random.Random(n)
        sizes = [obj_size(rng, i) for i in range(NOBJ)]

        def put(conns, i):
            conn = conns.get(0) or conns.setdefault(0, cl.conn(cl.ids[0]))
            key = "o/%05d" % i
            data = os.urandom(sizes[i])
            st, body = conn.put(BUCKET, key, data)
            if st == 200:
                with cl.lock:
                    cl.objs[key] = hashlib.md5(data).hexdigest()
            return None if st == 200 else (key, st, body[:200])
        bad = [r for r in parallel(put, range(NOBJ)) if r]
        eq(bad[:5], [], "failed PUTs (%d)" % len(bad))
        check(sum(s > 1 << 20 for s in sizes) >= 10 and sizes.count(0) >= 10,
              "sizes miss the 0-byte or > 1 MiB objects")
        log("%d PUTs (%.1f MiB) in %.1f s" % (NOBJ, sum(sizes) / 1048576.0, time.monotonic() - t0))

    @T.case(tag + "every object reads back byte-exact (MD5) via every other node")
    def _():
        cl = c["c"]
        for nid in cl.ids[1:]:
            t0 = time.monotonic()
            bad = read_check(cl, nid, sorted(cl.objs))
            eq(bad[:5], [], "wrong reads via %s (%d)" % (nid, len(bad)))
            log("%d GETs via %s in %.1f s" % (len(cl.objs), nid, time.monotonic() - t0))

    @T.case(tag + "last node killed (SIGKILL) under a PUT load via node 2: no failure, "
            "every acknowledged PUT reads back")
    def _():
        cl = c["c"]
        victim, w = cl.ids[-1], cl.ids[1]
        stop, acked, failed, reads, read_bad = threading.Event(), {}, [], [0], []
        old = sorted(cl.objs)

        def writer():
            conn, rng, i = cl.conn(w), random.Random(99), 0
            while not stop.is_set():
                # "live/" sorts before "o/": see the docstring (the pass walks in key order).
                key = "live/%05d" % i
                data = os.urandom(rng.choice([0, 10, 5000, 70000, 300000]))
                i += 1
                try:
                    st, body = conn.put(BUCKET, key, data)
                except OSError as e:
                    st, body = -1, repr(e).encode()
                if st == 200:
                    acked[key] = hashlib.md5(data).hexdigest()
                else:
                    failed.append((key, st, body[:200]))

        def reader():
            conns, rng = [cl.conn(cl.ids[0]), cl.conn(w)], random.Random(5)
            while not stop.is_set():
                key = rng.choice(old)
                try:
                    st, body = conns[reads[0] % 2].get(BUCKET, key)
                except OSError as e:
                    st, body = -1, repr(e).encode()
                reads[0] += 1
                if st != 200 or hashlib.md5(body).hexdigest() != cl.objs[key]:
                    read_bad.append((key, st))

        threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
        for t in threads:
            t.start()
        try:
            time.sleep(1.5)
            before = len(acked)
            cl.nodes[victim]["daemon"].kill9()
            time.sleep(5)
        finally:
            stop.set()
            for t in threads:
                t.join(60)
        log("outage: %d PUTs acknowledged (%d before the kill), %d failed; %d GETs, %d wrong"
            % (len(acked), before, len(failed), reads[0], len(read_bad)))
        cl.objs.update(acked)
        check(len(acked) - before > 10, "too few PUTs during the outage: %d" % (len(acked) - before))
        eq(failed[:5], [], "PUTs via %s that failed (%d)" % (w, len(failed)))
        eq(read_bad[:5], [], "GETs that failed during the outage (%d of %d)" % (len(read_bad), reads[0]))
        for nid in (cl.ids[0], w):
            bad = read_check(cl, nid, sorted(acked))
            eq(bad[:5], [], "acknowledged PUTs wrong via %s with %s down (%d)" % (nid, victim, len(bad)))

    @T.case(tag + "the node restarted (the others too, with repair passes on) catches up: every "
            "key on exactly its 3 owners within %d s" % CATCH_UP_S)
    def _():
        cl = c["c"]
        victim = cl.ids[-1]
        for nid in cl.ids[:-1]:
            eq(cl.nodes[nid]["daemon"].stop(), 0, nid + " exit status after SIGTERM")
            cl.start(nid, 1)
        cl.start(victim, 1)
        t0, bad = time.monotonic(), None
        while time.monotonic() - t0 < CATCH_UP_S:
            bad = cl.misplaced()
            if not bad:
                break
            time.sleep(1)
        secs = time.monotonic() - t0
        log("caught up in %.1f s (%d keys)" % (secs, len(cl.objs)))
        eq(len(bad), 0, "keys not on exactly their owners at one version after %.0f s, e.g. %r"
           % (secs, sorted(bad.items())[:3]))
        live = sorted(k for k in cl.objs if k.startswith("live/"))
        sample = sorted(random.Random(1).sample(sorted(k for k in cl.objs if k.startswith("o/")), 200))
        bad = read_check(cl, victim, live + sample)
        eq(bad[:5], [], "wrong reads via the restarted %s (%d)" % (victim, len(bad)))

    @T.case(tag + "every node stops cleanly on SIGTERM")
    def _():
        cl = c["c"]
        for nid in cl.ids:
            cl.nodes[nid]["daemon"].check_clean_stop()


for size in SIZES:
    t_size = time.monotonic()
    scenario(size)
    log("%d nodes: %.1f s" % (size, time.monotonic() - t_size))
T.done()
