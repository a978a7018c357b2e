#!/usr/bin/python3
# sfs: own-daemon
"""Cluster growth and drain (docs/CLUSTER.md, "Placement over nodes" and "Repair and
rebalance"): a map change moves keys to their new owners through the repair passes, and a
draining node is emptied. storagefsd --cluster with --cluster-repair-s 1, maps written by
hand (no controller: a node loads map.json at start, so every map change restarts them).
Owners are computed with cluster_harness.owners (cmap_owners over store/place.c's placement,
draining nodes last).

1. Three nodes, R=2 W=2: 60 objects written via every node in turn, 6 of them deleted; every
   key (tombstones too) is on exactly its 2 owners by this script's placement.
2. Node 4 added (new certificate and directory; map version 2 with 4 nodes, every node
   restarted with it): while the move is under way every object reads back (404 for the
   deleted ones) via each node in turn, one sweep per poll (node 4 only once it has the
   bucket, which it learns from the others' bucket logs at its first repair pass);
   within 45 s (about 5 s on the host build, 12 s under ASan) every key is on exactly its 2
   owners by the new map, node 4 holding its share (> 0, < all), then reads via all 4 nodes
   are right; GET /?cairn-status shows the map and the repair counters (pushed bytes).
3. Node 2 draining (map version 3): 5 new objects written via node 1 avoid node 2; within
   45 s node 2 holds no row of the bucket, every key is on exactly its 2 owners, every read
   via node 1 (during the drain too) and then via every node is right.
4. Pacing: 32 objects of 1 MiB written while node 2 drains; node 2 back up (map version 4)
   with --cluster-repair-mibs 1 on every node: its share moves to it, and every repair pass
   that pushed B >= 2 MiB took at least (B - 1 MiB) / (1 MiB/s) (a second's burst allowed).
   Clean stops.
"""
import json
import os
import re
import time

from common import (Daemon, Env, Suite, check, eq, free_port, log, raw_request, s3client)
import cluster_harness as H

E = Env()
T = Suite("cluster_grow")
ROOT = E.root
PKI = os.path.join(ROOT, "pki")
AK, SK = "AKCLUSTERGROW00001", "cluster-grow-secret-key-0000000000000"
IDS = ["node-0001", "node-0002", "node-0003", "node-0004"]
CLUSTER_ID = "96a0" * 8
SEEDS = {nid: (0x9e3779b97f4a7c15 * (i + 3)) & (2 ** 64 - 1) for i, nid in enumerate(IDS)}
NODES = {}
OBJS = {}          # key -> bytes, what the cluster holds now
GONE = []          # deleted keys
BUCKET = "grow-bkt"
CA = []


def owners(key, ids, draining=(), replicas=2, bucket=BUCKET):
    """The key's owners by cluster_harness.owners (cmap_owners), nodes in map order."""
    return H.owners(bucket, key, [(nid, SEEDS[nid], 1, nid in draining) for nid in ids],
                    replicas)


def owners_in(bucket, key):
    return owners(key, IDS, bucket=bucket)


def write_map(ids, version, draining=()):
    m = {"version": version, "cluster_id": CLUSTER_ID, "replicas": 2, "write_quorum": 2,
         "nodes": [{"node_id": nid, "state": "draining" if nid in draining else "up",
                    "seed": "%016x" % SEEDS[nid], "weight": 1,
                    "internal_addr": NODES[nid]["addr"], "s3_endpoint": ""} for nid in ids]}
    for nid in ids:
        with open(os.path.join(NODES[nid]["dir"], "map.json"), "w") as f:
            json.dump(m, f)


def add_node(nid):
    root = os.path.join(ROOT, nid)
    os.makedirs(root)
    NODES[nid] = {"addr": "127.0.0.1:%d" % free_port(), "root": root}
    key, crt = H.make_node(PKI, CA[0], nid)
    NODES[nid]["dir"] = H.cluster_dir(root, nid, (key, crt), CA[0][1], CLUSTER_ID, 2)


def start(nid):
    d = NODES[nid].get("daemon") or Daemon(
        NODES[nid]["root"], ak=AK, sk=SK, ndirs=1, pids_root=ROOT,
        extra=["--cluster", NODES[nid]["dir"], "--internal-listen", NODES[nid]["addr"],
               "--cluster-repair-s", "1"])
    d.start(timeout=30)
    NODES[nid]["daemon"] = d


def restart_all(ids, version, draining=()):
    for nid in ids:
        if NODES[nid].get("daemon"):
            eq(NODES[nid]["daemon"].stop(), 0, nid + " exit status after SIGTERM")
    write_map(ids, version, draining)
    for nid in ids:
        start(nid)


def rows_of(nid):
    """nid's own rows of BUCKET (asked as node 1): key -> (version, tomb); {} while nid does not have the bucket."""
    return H.own_rows(PKI, IDS[0], NODES[nid]["addr"], BUCKET, missing_ok=True)


status_of = H.status_of


def client(nid):
    return s3client(NODES[nid]["daemon"].endpoint, AK, SK)



def holders_now(ids):
    """key -> sorted node ids holding a row, checking every copy is at the same version."""
    holders, seen = {}, {}
    for nid in ids:
        for k, row in rows_of(nid).items():
            eq(row, seen.setdefault(k, row), "%s's row of %s" % (nid, k))
            holders.setdefault(k, []).append(nid)
    return holders


def misplaced(ids, draining=()):
    """Keys (live and deleted) not on exactly their owners, as key -> (holders, owners)."""
    holders = holders_now(ids)
    bad = {}
    for k in sorted(set(OBJS) | set(GONE) | set(holders)):
        want = owners(k, ids, draining)
        if holders.get(k, []) != want:
            bad[k] = (holders.get(k, []), want)
    return bad


def read_all(nid):
    c = client(nid)
    for key, data in sorted(OBJS.items()):
        got = c.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        check(got == data, "%s via %s differs (%d bytes, want %d)" % (key, nid, len(got), len(data)))
    for key in GONE:
        eq(status_of(lambda: c.get_object(Bucket=BUCKET, Key=key)), 404, key + " via " + nid)


def cairn_status(nid):
    st, _, body = raw_request(NODES[nid]["daemon"].port, "GET", "/", query=[("cairn-status", "")],
                              ak=AK, sk=SK)
    eq(st, 200, "GET /?cairn-status via " + nid)
    return json.loads(body)


def has_bucket(nid):
    return status_of(lambda: client(nid).head_bucket(Bucket=BUCKET)) == 200


def converge(ids, readers, draining=(), limit=45):
    """Polls until misplaced() is empty, reading every object via the next of readers between
    two polls (a reader whose store has no bucket yet is passed over: a new node learns of a
    bucket from the first push into it); returns (seconds, {reader: sweeps while keys were
    still misplaced})."""
    t0, turn, sweeps, bad = time.monotonic(), 0, {}, None
    while time.monotonic() - t0 < limit:
        bad = misplaced(ids, draining)
        if not bad:
            break
        nid = readers[turn % len(readers)]
        turn += 1
        if has_bucket(nid):
            read_all(nid)
            sweeps[nid] = sweeps.get(nid, 0) + 1
        time.sleep(0.1)
    eq(bad, {}, "keys not on exactly their owners (holders, owners)")
    return time.monotonic() - t0, sweeps


@T.case("setup: three nodes R=2 W=2; 60 objects, 6 deleted; each key on exactly its 2 owners")
def _():
    os.makedirs(PKI)
    CA.append(H.make_ca(PKI))
    for nid in IDS[:3]:
        add_node(nid)
    restart_all(IDS[:3], 1)
    client(IDS[0]).create_bucket(Bucket=BUCKET)
    for i in range(60):
        key = "obj-%02d" % i
        OBJS[key] = os.urandom(1 + 4099 * i)
        client(IDS[i % 3]).put_object(Bucket=BUCKET, Key=key, Body=OBJS[key])
    for i in range(3, 60, 10):
        key = "obj-%02d" % i
        client(IDS[1]).delete_object(Bucket=BUCKET, Key=key)
        GONE.append(key)
        del OBJS[key]
    converge(IDS[:3], IDS[:3], limit=10)   # W=R: both copies were durable at the 200


@T.case("node 4 added: keys move to their new owners within 45 s, reads right during the move")
def _():
    add_node(IDS[3])
    share = sum(IDS[3] in owners(k, IDS) for k in list(OBJS) + GONE)
    check(0 < share < len(OBJS) + len(GONE), "node 4 owns %d keys by the new map" % share)
    restart_all(IDS, 2)
    secs, sweeps = converge(IDS, IDS[::-1])
    log("moved in %.1f s, read sweeps during the move %s; node 4 owns %d of %d keys"
        % (secs, sweeps, share, len(OBJS) + len(GONE)))
    check(sweeps, "no read sweep while keys were still moving")
    eq(sorted(rows_of(IDS[3])), sorted(k for k in list(OBJS) + GONE if IDS[3] in owners(k, IDS)),
       "node 4's rows")
    for nid in IDS:
        read_all(nid)
    check(any("dropped=0 " not in line for nid in IDS[:3]
              for line in NODES[nid]["daemon"].log_text().splitlines()
              if "cluster_repair_pass" in line), "no old node logged a drop")
    pushed = 0
    for nid in IDS:
        cl = cairn_status(nid)["cluster"]
        eq((cl["node"], cl["map_version"], cl["nodes"], cl["up"], cl["replicas"]),
           (nid, 2, 4, 4, 2), nid + "'s cluster status")
        eq(cl["repair"]["rate_limit_bytes_s"], 100 << 20, "default repair rate cap")
        check(cl["repair"]["on"] and cl["repair"]["passes"] >= 1, "%s repair status %r" % (nid, cl))
        pushed += cl["repair"]["pushed_bytes_total"]
    check(pushed > 0, "no node reports pushed bytes after the move")


@T.case("node 2 draining: new writes avoid it, it is emptied within 45 s, reads right")
def _():
    drain = (IDS[1],)
    restart_all(IDS, 3, drain)
    for i in range(5):
        key = "late-%d" % i
        OBJS[key] = os.urandom(5000 + i)
        client(IDS[0]).put_object(Bucket=BUCKET, Key=key, Body=OBJS[key])
    late = sorted(k for k in rows_of(IDS[1]) if k.startswith("late-"))
    eq(late, [], "new keys on the draining node")
    secs, sweeps = converge(IDS, IDS[:1], drain)
    log("drained in %.1f s, read sweeps during the drain %s" % (secs, sweeps))
    eq(rows_of(IDS[1]), {}, "the draining node's rows")
    for nid in IDS:
        read_all(nid)


@T.case("a repair rate cap (--cluster-repair-mibs 1) paces the move of 32 MiB to node 2")
def _():
    c1 = client(IDS[0])
    c1.create_bucket(Bucket="paced")
    for i in range(32):
        c1.put_object(Bucket="paced", Key="mib-%02d" % i, Body=os.urandom(1 << 20))
    eq(sorted(H.own_rows(PKI, IDS[0], NODES[IDS[1]]["addr"], "paced", missing_ok=True)), [],
       "paced keys on the draining node")
    for nid in IDS:
        NODES[nid]["daemon"].extra += ["--cluster-repair-mibs", "1"]
    restart_all(IDS, 4)
    t0, want = time.monotonic(), sum(IDS[1] in owners_in("paced", "mib-%02d" % i) for i in range(32))
    have = 0
    while time.monotonic() - t0 < 90:
        have = len(H.own_rows(PKI, IDS[0], NODES[IDS[1]]["addr"], "paced", missing_ok=True))
        if have >= want:
            break
        time.sleep(0.5)
    eq(have, want, "paced keys node 2 owns and holds")
    log("%d MiB reached node 2 in %.1f s at 1 MiB/s per pushing node" % (want, time.monotonic() - t0))
    # A pass logs its line when it ends, which may be after the last key arrived.
    passes, deadline = [], time.monotonic() + 30
    while not passes and time.monotonic() < deadline:
        time.sleep(0.5)
        for nid in IDS:
            for line in NODES[nid]["daemon"].log_text().splitlines():
                m = re.search(r"cluster_repair_pass .* bytes=(\d+) .* elapsed_ms=(\d+)", line)
                if m and int(m.group(1)) >= 2 << 20:
                    passes.append((nid, int(m.group(1)), int(m.group(2))))
    check(passes, "no repair pass pushed 2 MiB or more (nothing to check the pace on)")
    for nid, b, ms in passes:
        # (B - the second's burst) at 1 MiB/s, less 10 % for clock and rounding slack:
        # unpaced, these bytes move in a few tens of ms.
        floor = (b - (1 << 20)) * 1000 // (1 << 20)
        check(ms >= floor * 0.9 - 100, "%s pushed %d bytes in %d ms: faster than 1 MiB/s "
              "(floor %d ms)" % (nid, b, ms, floor))


@T.case("every node stops cleanly on SIGTERM")
def _():
    for nid in IDS:
        NODES[nid]["daemon"].check_clean_stop()


T.done()
