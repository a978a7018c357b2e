#!/usr/bin/python3
# sfs: own-daemon
"""Cluster repair (docs/CLUSTER.md, "Repair and rebalance"): a node that was down catches up
from the others' repair passes. Three storagefsd --cluster (R=3, W=2, map written by hand as
test_cluster_s3.py, whose set-up helpers are copied here: that script runs its cases at
import) with --cluster-repair-s 1.

1. 10 objects written via node 1 (every node holds them); node 3 stopped with SIGTERM.
2. 30 objects written and 5 of the first 10 deleted via node 1 (nodes 1 and 2 hold them).
   Meanwhile bucket 'born' is created and bucket 'doomed' deleted via node 1.
3. Node 3 started again: within 45 s (a few seconds on an idle machine) its OWN store (its
   internal row listing, asked with a node certificate) holds every key at node 1's version,
   the 5 deletes as tombstones; from the bucket logs it learns 'born' and forgets 'doomed',
   which stays gone on every node.
4. Every read via node 3 returns the right bytes (404 for the deleted keys), and every node
   logged cluster_repair_pass lines.
5. The map changed to R=2 (every node restarted with it): within 45 s each key (tombstones
   too) is on exactly 2 nodes at the same version (the non-owner dropped its copy once both
   owners held it), and reads via every node stay right. Every daemon stops cleanly.
"""
import os
import time

from common import (Daemon, Env, Suite, check, eq, free_port, log, s3client)
import cluster_harness as H

E = Env()
T = Suite("cluster_repair")
ROOT = E.root
PKI = os.path.join(ROOT, "pki")
AK, SK = "AKCLUSTERREPAIR001", "cluster-repair-secret-key-000000000"
IDS = ["node-0001", "node-0002", "node-0003"]
NODES = {}
OBJS = {}          # key -> bytes, what the cluster holds now
GONE = []          # deleted keys
BUCKET = "repair-bkt"







def make_ca():
    return H.make_ca(PKI)


def make_node(ca, cn):
    return H.make_node(PKI, ca, cn)


def cluster_dir(root, nid, cert, ca_crt):
    return H.cluster_dir(root, nid, cert, ca_crt, "5eed" * 8, 3)


def write_map(dirs, version=5, replicas=3):
    H.write_map(dirs, {nid: NODES[nid]["addr"] for nid in IDS}, "5eed" * 8, version, replicas, 2,
                {nid: 0x5151 * (i + 1) for i, nid in enumerate(IDS)})


def rows_of(nid):
    """nid's own rows of BUCKET (asked as node 1): key -> (version, tomb)."""
    return H.own_rows(PKI, IDS[0], NODES[nid]["addr"], BUCKET, missing_ok=False)


status_of = H.status_of


def client(nid):
    return s3client(NODES[nid]["daemon"].endpoint, AK, SK)



def start(nid):
    d = NODES[nid].get("daemon") or Daemon(
        NODES[nid]["root"], ak=AK, sk=SK, ndirs=1, pids_root=ROOT,
        extra=["--cluster", NODES[nid]["dir"], "--internal-listen", NODES[nid]["addr"],
               "--cluster-repair-s", "1"])
    d.start(timeout=30)
    NODES[nid]["daemon"] = d


@T.case("setup: three storagefsd --cluster --cluster-repair-s 1, R=3 W=2")
def _():
    os.makedirs(PKI)
    ca = make_ca()
    dirs = []
    for nid in IDS:
        root = os.path.join(ROOT, nid)
        os.makedirs(root)
        NODES[nid] = {"addr": "127.0.0.1:%d" % free_port(), "root": root}
        make_node(ca, nid)
        cert = (os.path.join(PKI, nid + ".key"), os.path.join(PKI, nid + ".crt"))
        NODES[nid]["dir"] = cluster_dir(root, nid, cert, ca[1])
        dirs.append(NODES[nid]["dir"])
    write_map(dirs)
    for nid in IDS:
        start(nid)
    client(IDS[0]).create_bucket(Bucket=BUCKET)
    client(IDS[1]).create_bucket(Bucket="doomed")


def buckets_via(nid):
    """The buckets node nid's own store holds (ListBuckets answers from it)."""
    return sorted(b["Name"] for b in client(nid).list_buckets()["Buckets"])


@T.case("10 objects on every node; node 3 stopped; 30 written and 5 deleted via node 1; "
        "bucket 'born' made and 'doomed' deleted while it is down")
def _():
    c1 = client(IDS[0])
    for i in range(10):
        key = "old-%02d" % i
        OBJS[key] = os.urandom(100 + 3000 * i)
        c1.put_object(Bucket=BUCKET, Key=key, Body=OBJS[key])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(rows_of(IDS[2])) < 10:
        time.sleep(0.2)   # the third push finishes in the background
    eq(sorted(rows_of(IDS[2])), sorted(OBJS), "node 3's rows before it stops")
    eq(NODES[IDS[2]]["daemon"].stop(), 0, "node 3 exit status after SIGTERM")
    for i in range(30):
        key = "new-%02d" % i
        OBJS[key] = os.urandom(1 + 7919 * i)
        c1.put_object(Bucket=BUCKET, Key=key, Body=OBJS[key])
    for i in range(0, 10, 2):
        key = "old-%02d" % i
        c1.delete_object(Bucket=BUCKET, Key=key)
        GONE.append(key)
        del OBJS[key]
    c1.create_bucket(Bucket="born")
    c1.delete_bucket(Bucket="doomed")
    eq(buckets_via(IDS[1]), ["born", BUCKET], "node 2's buckets")


@T.case("node 3 restarted: its own store catches up (every version, 5 tombstones) within 45 s")
def _():
    want = rows_of(IDS[0])
    eq(sorted(k for k, (_, tomb) in want.items() if tomb), sorted(GONE), "node 1's tombstones")
    eq(sorted(k for k, (_, tomb) in want.items() if not tomb), sorted(OBJS), "node 1's live rows")
    start(IDS[2])
    t0 = time.monotonic()
    have = {}
    while time.monotonic() - t0 < 45:
        have = rows_of(IDS[2])
        if have == want:
            break
        time.sleep(0.3)
    missing = sorted(k for k in want if have.get(k) != want[k])
    eq(missing, [], "rows node 3 lacks or holds at another version")
    eq(have, want, "node 3's rows")
    log("node 3 caught up in %.1f s" % (time.monotonic() - t0))
    # The bucket log: node 3 learns the create it missed, and forgets the deleted bucket it
    # still had instead of bringing it back to the others.
    while time.monotonic() - t0 < 45 and buckets_via(IDS[2]) != ["born", BUCKET]:
        time.sleep(0.3)
    eq(buckets_via(IDS[2]), ["born", BUCKET], "node 3's buckets after it caught up")
    time.sleep(2.5)      # two more repair passes on every node
    for nid in IDS:
        eq(buckets_via(nid), ["born", BUCKET], nid + "'s buckets (no resurrection)")
    check("cluster_bucket_forgot bucket=doomed" in NODES[IDS[2]]["daemon"].log_text(),
          "node 3 did not log forgetting 'doomed'")


@T.case("every read via node 3 returns the right bytes; deleted keys are 404")
def _():
    c3 = client(IDS[2])
    for key, data in sorted(OBJS.items()):
        got = c3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        check(got == data, "%s via node 3 differs (%d bytes, want %d)" % (key, len(got), len(data)))
    for key in GONE:
        eq(status_of(lambda: c3.get_object(Bucket=BUCKET, Key=key)), 404, key + " via node 3")
    for nid in IDS:
        check("cluster_repair_pass buckets_changed=" in NODES[nid]["daemon"].log_text(all_logs=True),
              "%s logged no repair pass" % nid)


@T.case("map changed to R=2: each key ends on exactly 2 nodes (non-owners drop theirs), reads right")
def _():
    for nid in IDS:
        eq(NODES[nid]["daemon"].stop(), 0, nid + " exit status after SIGTERM")
    write_map([NODES[nid]["dir"] for nid in IDS], version=6, replicas=2)
    for nid in IDS:
        start(nid)
    want = rows_of(IDS[0])
    want.update(rows_of(IDS[1]))
    t0, holders = time.monotonic(), {}
    while time.monotonic() - t0 < 45:
        holders = {k: [] for k in want}
        for nid in IDS:
            for k, row in rows_of(nid).items():
                eq(row, want[k], "%s's row of %s" % (nid, k))
                holders[k].append(nid)
        if all(len(h) == 2 for h in holders.values()):
            break
        time.sleep(0.3)
    bad = sorted(k for k, h in holders.items() if len(h) != 2)
    eq(bad, [], "keys not on exactly 2 nodes")
    for nid in IDS:
        c = client(nid)
        for key, data in sorted(OBJS.items()):
            check(c.get_object(Bucket=BUCKET, Key=key)["Body"].read() == data,
                  "%s via %s differs after the drop" % (key, nid))
        for key in GONE:
            eq(status_of(lambda: c.get_object(Bucket=BUCKET, Key=key)), 404, key + " via " + nid)
    check(any("dropped=0 " not in line for nid in IDS
              for line in NODES[nid]["daemon"].log_text().splitlines()
              if "cluster_repair_pass" in line), "no pass logged a drop")


@T.case("every node stops cleanly on SIGTERM")
def _():
    for nid in IDS:
        NODES[nid]["daemon"].check_clean_stop()


T.done()
