#!/usr/bin/python3
# sfs: own-daemon
"""A network cut between one node and the rest (issue 6), in network namespaces this script
makes: needs root and iproute2 (CI runs as root; without them every case FAILs, never skips).

The script first moves itself into a fresh network namespace of its own (unshare(2)), so the
host's interfaces and routes are never touched. There it makes two bridges: brc, the
cluster network 10.231.1.0/24 (no address of its own: nothing is routed across it), and brs,
the client network 10.231.2.0/24 (10.231.2.254 is this script). Each of three nodes is a
named namespace `cairnit<pid>n<k>` with one veth on each bridge: 10.231.1.k (the map's
internal_addr, port 7480) and 10.231.2.k (S3 on port 9000; the internal API listens on
0.0.0.0, so this script can read a node's own rows over the client network even while its
cluster link is cut). storagefsd runs in its namespace through `ip netns exec`, map R=3 W=2
written by hand, --cluster-repair-s 1. Everything (daemons, namespaces) is removed at exit,
also on a failure.

1. 30 objects written via node 1; every node holds all of them.
2. Node 3's cluster link cut (its veth's bridge end set down; the client link stays):
   - writes via node 1 (the majority side) succeed: 200 each, within 10 s each;
   - reads of the old objects via nodes 1 and 2 are right;
   - writes via node 3 never succeed: each PUT (and a DELETE) answers 503 ServiceUnavailable
     (no W=2 reachable owners) within 45 s (the peer timeout is 30 s); node 3 still holds its
     own copy (the unacknowledged version stays, docs/CLUSTER.md "Write, read, list");
   - some keys are written on both sides: first via node 3 then via node 1 (the majority's
     version is the newer), or the other way round.
3. The cut healed (the veth up again): within 60 s every key is on all 3 nodes at one
   version, the newest one that was written (node 3's unacknowledged writes too, where they
   are the newest: last writer wins), and every read via every node returns its bytes (404
   for the key node 3 deleted).
4. Every node stops cleanly; the namespaces are deleted.
"""
import atexit
import ctypes
import hashlib
import os
import shutil
import subprocess
import threading
import time

from common import Daemon, Env, Fail, Suite, check, default_bin, eq, log
import cluster_harness as H

E = Env()
T = Suite("cluster_netcut")
ROOT = E.root
PKI = os.path.join(ROOT, "pki")
AK, SK = "AKCLUSTERNETCUT001", "cluster-netcut-secret-key-0000000000"
CLUSTER_ID = "c07c" * 8
BUCKET = "netcut-bkt"
IDS = ["node-0001", "node-0002", "node-0003"]
NS_PREFIX = "cairnit"
NS = {nid: "%s%dn%d" % (NS_PREFIX, os.getpid(), i + 1) for i, nid in enumerate(IDS)}
CNET, SNET = "10.231.1.", "10.231.2."
S3_PORT, IAPI_PORT = 9000, 7480
CLONE_NEWNET = 0x40000000
NODES = {}
OBJS = {}        # key -> bytes the cluster must hold once converged
GONE = []        # keys deleted
CUT_503_S = 45
HEAL_S = 60


def ip(*args, check_rc=True):
    p = subprocess.run(["ip"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30)
    if check_rc and p.returncode != 0:
        raise Fail("ip %s: %s" % (" ".join(args), p.stderr.decode().strip()))
    return p


def drop_stale_namespaces():
    """Namespaces a killed earlier run left (its pid is in the name and gone)."""
    try:
        names = os.listdir("/run/netns")
    except OSError:
        return
    for name in names:
        if not name.startswith(NS_PREFIX) or "n" not in name[len(NS_PREFIX):]:
            continue
        pid = name[len(NS_PREFIX):].split("n")[0]
        if pid.isdigit() and not os.path.exists("/proc/" + pid):
            ip("netns", "del", name, check_rc=False)


def cleanup():
    for nid in IDS:
        d = NODES.get(nid, {}).get("daemon")
        if d is not None:
            d.kill9()
    for name in NS.values():
        if os.path.exists("/run/netns/" + name):
            ip("netns", "del", name, check_rc=False)


class NsDaemon(Daemon):
    """storagefsd in a node's namespace, S3 on its client address."""

    def __init__(self, nid, root):
        k = IDS.index(nid) + 1
        wrapper = os.path.join(ROOT, "in-%s.sh" % NS[nid])
        with open(wrapper, "w") as f:
            f.write('#!/bin/sh\nexec ip netns exec %s "%s" "$@"\n' % (NS[nid], H_BIN))
        os.chmod(wrapper, 0o755)
        super().__init__(root, ak=AK, sk=SK, ndirs=1, binpath=wrapper, pids_root=ROOT)
        self.host = SNET + str(k)

    @property
    def endpoint(self):
        return "http://%s:%d" % (self.host, S3_PORT)


H_BIN = default_bin()    # the storagefsd under test (SFS_BIN)


def client(nid):
    return H.S3Conn(SNET + str(IDS.index(nid) + 1), S3_PORT, AK, SK, timeout=90)


def rows_of(nid):
    """nid's own rows, read over the client network (its internal API listens on 0.0.0.0)."""
    return H.own_rows(PKI, IDS[0], "%s%d:%d" % (SNET, IDS.index(nid) + 1, IAPI_PORT), BUCKET,
                      missing_ok=True, timeout=20)


def put(nid, key, data):
    """PUT via nid: (status, body, seconds)."""
    t0 = time.monotonic()
    try:
        st, body = client(nid).put(BUCKET, key, data)
    except OSError as e:
        st, body = -1, repr(e).encode()
    return st, body, time.monotonic() - t0


def set_cut(nid, cut):
    ip("link", "set", "c%dh" % (IDS.index(nid) + 1), "down" if cut else "up")


@T.case("setup: own network namespace, bridges, 3 node namespaces, 3 storagefsd R=3 W=2")
def _():
    check(os.geteuid() == 0, "needs root (network namespaces): run as root, as CI does")
    check(shutil.which("ip") is not None, "needs iproute2's ip (apt-get install iproute2)")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        raise Fail("unshare(CLONE_NEWNET): errno %d" % ctypes.get_errno())
    atexit.register(cleanup)
    drop_stale_namespaces()
    ip("link", "set", "lo", "up")
    for br in ("brc", "brs"):
        ip("link", "add", br, "type", "bridge")
    ip("addr", "add", SNET + "254/24", "dev", "brs")
    for br in ("brc", "brs"):
        ip("link", "set", br, "up")
    for i, nid in enumerate(IDS):
        k, ns = i + 1, NS[nid]
        ip("netns", "add", ns)
        ip("-n", ns, "link", "set", "lo", "up")
        for net, br, pfx in (("c", "brc", CNET), ("s", "brs", SNET)):
            ip("link", "add", "%s%dh" % (net, k), "type", "veth", "peer", "name", "%s%dn" % (net, k))
            ip("link", "set", "%s%dn" % (net, k), "netns", ns)
            ip("link", "set", "%s%dh" % (net, k), "master", br, "up")
            ip("-n", ns, "addr", "add", "%s%d/24" % (pfx, k), "dev", "%s%dn" % (net, k))
            ip("-n", ns, "link", "set", "%s%dn" % (net, k), "up")
    os.makedirs(PKI)
    ca = H.make_ca(PKI)
    dirs = []
    for i, nid in enumerate(IDS):
        root = os.path.join(ROOT, nid)
        os.makedirs(root)
        key, crt = H.make_node(PKI, ca, nid)
        NODES[nid] = {"dir": H.cluster_dir(root, nid, (key, crt), ca[1], CLUSTER_ID, 3)}
        dirs.append(NODES[nid]["dir"])
        NODES[nid]["daemon"] = NsDaemon(nid, root)
    H.write_map(dirs, {nid: "%s%d:%d" % (CNET, i + 1, IAPI_PORT) for i, nid in enumerate(IDS)},
                CLUSTER_ID, 1, 3, 2, {nid: 0x1234567 * (i + 5) for i, nid in enumerate(IDS)})
    for i, nid in enumerate(IDS):
        d = NODES[nid]["daemon"]
        d.extra = ["--cluster", NODES[nid]["dir"], "--internal-listen", "0.0.0.0:%d" % IAPI_PORT,
                   "--cluster-repair-s", "1", "--listen", "%s%d:%d" % (SNET, i + 1, S3_PORT)]
        d.start(timeout=30, port=S3_PORT)
    st, body = client(IDS[0]).request("PUT", BUCKET, "")
    eq(st, 200, "bucket create via node 1: %r" % body[:200])


def converged():
    """{} when every key of OBJS (and every key any node holds) is on every node at one
    version; else key -> the rows per node."""
    rows = {nid: rows_of(nid) for nid in IDS}
    bad = {}
    for k in sorted(set(OBJS).union(*[set(r) for r in rows.values()])):
        got = [rows[nid].get(k) for nid in IDS]
        if None in got or len(set(got)) != 1:
            bad[k] = got
    return bad


@T.case("30 objects written via node 1; every node holds every one")
def _():
    c1 = client(IDS[0])
    for i in range(30):
        key = "old/%02d" % i
        OBJS[key] = os.urandom(100 + 5000 * i)
        st, body = c1.put(BUCKET, key, OBJS[key])
        eq(st, 200, "PUT %s via node 1: %r" % (key, body[:200]))
    t0, bad = time.monotonic(), None
    while time.monotonic() - t0 < 20:
        bad = converged()
        if not bad:
            break
        time.sleep(0.3)
    eq(bad, {}, "keys not on all three nodes")


CUT = {}     # key -> (node 1's row, node 3's row) after the cut's writes
CUT_T0 = []


@T.case("node 3 cut off: writes via node 1 succeed, reads via nodes 1 and 2 are right")
def _():
    set_cut(IDS[2], True)
    CUT_T0.append(time.monotonic())
    for i in range(12):
        key = "maj/%02d" % i
        data = os.urandom(3000 * i)
        st, body, secs = put(IDS[0], key, data)
        eq(st, 200, "PUT %s via node 1 during the cut: %r" % (key, body[:200]))
        check(secs < 10, "PUT %s via node 1 took %.1f s" % (key, secs))
        OBJS[key] = data
    for key in ("old/00", "old/01", "old/02"):       # overwritten by node 1 now, node 3 later
        OBJS[key] = os.urandom(777)
        st, body, secs = put(IDS[0], key, OBJS[key])
        eq(st, 200, "overwrite %s via node 1 during the cut: %r" % (key, body[:200]))
    c1, c2 = client(IDS[0]), client(IDS[1])
    for i, (key, data) in enumerate(sorted(OBJS.items())):
        st, body = (c1 if i % 2 else c2).get(BUCKET, key)
        check(st == 200 and body == data, "%s via node %d during the cut: %d, %d bytes"
              % (key, 1 if i % 2 else 2, st, len(body)))


@T.case("writes via the cut-off node 3 never succeed: 503 within %d s, its own copy stays"
        % CUT_503_S)
def _():
    keys = ["cut/%02d" % i for i in range(4)] + ["old/00", "old/01", "old/02",
                                                 "old/03", "old/04", "old/05"]
    mine = {k: os.urandom(1000 + 17 * i) for i, k in enumerate(keys)}
    res = {}

    def one(k):
        res[k] = put(IDS[2], k, mine[k])
    def delete():
        t0 = time.monotonic()
        try:
            st, body = client(IDS[2]).request("DELETE", BUCKET, "old/06")
        except OSError as e:
            st, body = -1, repr(e).encode()
        res["delete old/06"] = (st, body, time.monotonic() - t0)
    threads = [threading.Thread(target=one, args=(k,)) for k in keys]
    threads.append(threading.Thread(target=delete))
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    log("via the cut node: %s" % {k: (st, round(s, 1)) for k, (st, _, s) in sorted(res.items())})
    rows3 = rows_of(IDS[2])
    for k in keys:
        check(k in rows3, "node 3 holds no row of %s after its failed PUT" % k)
    # Node 3's unacknowledged versions of old/03..05 and cut/*: newest everywhere after the
    # heal (nothing newer is written); old/00..02 were written by node 1 before: node 3's
    # later stamp is the newer one too. Then node 1 overwrites old/04 and old/05 again.
    for k in keys:
        OBJS[k] = mine[k]
    del OBJS["old/06"]           # node 3's tombstone is the newest version
    GONE.append("old/06")
    for k in ("old/04", "old/05"):
        OBJS[k] = os.urandom(4321)
        st, body, _ = put(IDS[0], k, OBJS[k])
        eq(st, 200, "overwrite %s via node 1 after node 3's: %r" % (k, body[:200]))
    rows1 = rows_of(IDS[0])
    for k in keys + GONE:
        CUT[k] = (rows1.get(k), rows3[k])
    for k in ("old/04", "old/05"):
        check(rows1[k][0] > rows3[k][0], "node 1's later write of %s has an older version %s "
              "than node 3's %s" % (k, rows1[k], rows3[k]))
    for k in ("old/00", "old/01", "old/02"):
        check(rows3[k][0] > rows1[k][0], "node 3's later write of %s has an older version %s "
              "than node 1's %s" % (k, rows3[k], rows1[k]))
    # Checked last, so that the heal below still has the state it expects when these fail.
    check(rows3.get("old/06", (0, False))[1], "node 3 holds no tombstone of old/06")
    for k in keys + ["delete old/06"]:
        st, body, secs = res[k]
        # Fails with the build of 2026-11-28 03:15 UTC: cs_replicate returns STORE_ENOQUORUM
        # positive, so the S3 layer answers 200 after `cluster_write_no_quorum` (reported).
        check(st not in (200, 204), "%s via the cut-off node 3 was acknowledged (%.1f s) although it "
              "reached no other node" % (k, secs))
        check(st == 503 and b"ServiceUnavailable" in body,
              "%s via the cut-off node 3: %d %r (want 503 ServiceUnavailable)" % (k, st, body[:200]))
        check(secs < CUT_503_S, "%s via the cut-off node 3 answered after %.1f s" % (k, secs))
    log("cut for %.1f s" % (time.monotonic() - CUT_T0[0]))


@T.case("cut healed: within %d s every key is on all 3 nodes at the newest version; reads right"
        % HEAL_S)
def _():
    set_cut(IDS[2], False)
    t0, bad = time.monotonic(), None
    while time.monotonic() - t0 < HEAL_S:
        bad = converged()
        if not bad:
            break
        time.sleep(0.5)
    secs = time.monotonic() - t0
    eq(bad, {}, "keys not on all 3 nodes at one version %.0f s after the heal" % secs)
    log("converged %.1f s after the heal" % secs)
    rows = rows_of(IDS[1])
    for k, (v1, v3) in sorted(CUT.items()):
        want = max(v for v in (v1, v3) if v is not None)
        eq(rows[k], want, "the version of %s after the heal (node 1 had %s, node 3 %s)" % (k, v1, v3))
    for nid in IDS:
        c = client(nid)
        for key, data in sorted(OBJS.items()):
            st, body = c.get(BUCKET, key)
            check(st == 200 and hashlib.md5(body).digest() == hashlib.md5(data).digest(),
                  "%s via %s after the heal: %d, %d bytes (want %d)" % (key, nid, st, len(body), len(data)))
        for key in GONE:
            eq(c.get(BUCKET, key)[0], 404, "GET %s (deleted) via %s after the heal" % (key, nid))


@T.case("every node stops cleanly on SIGTERM; namespaces deleted")
def _():
    for nid in IDS:
        NODES[nid]["daemon"].check_clean_stop()
    cleanup()
    left = [n for n in NS.values() if os.path.exists("/run/netns/" + n)]
    eq(left, [], "namespaces left")


T.done()
