#!/usr/bin/python3
"""tests/bench/cluster.py — the cluster section's helper for tests/bench/run.sh: node
identities and maps (tests/integration/cluster_harness.py: a test CA made with openssl, map
R=3 W=2 written by hand, no controller), and the rebalance poll.

  cluster.py setup DIR N            DIR/pki, DIR/nodeK/cluster for K = 1..N
  cluster.py map DIR VERSION P1 P2 ...   map.json (nodes 1..len(P) at 127.0.0.1:Pk, R=3 W=2)
                                    into every listed node's cluster dir
  cluster.py placed DIR BUCKET P1 P2 ... prints `misplaced=M keys=K` (keys not on exactly their
                                    3 owners by the map of those nodes); exit 0 when M == 0
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import cluster_harness as H  # noqa: E402

CLUSTER_ID = "be4c" * 8


def node_id(k):
    return "node-%04d" % k


def seed(k):
    return (0x9e3779b97f4a7c15 * (k + 40)) & H.M64


def setup(d, n):
    pki = os.path.join(d, "pki")
    os.makedirs(pki, exist_ok=True)
    ca = H.make_ca(pki)
    for k in range(1, n + 1):
        key, crt = H.make_node(pki, ca, node_id(k))
        H.cluster_dir(os.path.join(d, "node%d" % k), node_id(k), (key, crt), ca[1], CLUSTER_ID, 3)


def write_map(d, version, ports):
    ids = [node_id(k) for k in range(1, len(ports) + 1)]
    H.write_map([os.path.join(d, "node%d" % k, "cluster") for k in range(1, len(ports) + 1)],
                {nid: "127.0.0.1:%s" % p for nid, p in zip(ids, ports)}, CLUSTER_ID, version,
                3, 2, {nid: seed(k) for k, nid in enumerate(ids, 1)})


def placed(d, bucket, ports):
    ids = [node_id(k) for k in range(1, len(ports) + 1)]
    placement = [(nid, seed(k), 1, False) for k, nid in enumerate(ids, 1)]
    holders = {}
    for nid, p in zip(ids, ports):
        for key in H.own_rows(os.path.join(d, "pki"), ids[0], "127.0.0.1:%s" % p, bucket,
                              missing_ok=True):
            holders.setdefault(key, []).append(nid)
    bad = sum(sorted(h) != H.owners(bucket, k, placement, 3) for k, h in holders.items())
    print("misplaced=%d keys=%d" % (bad, len(holders)))
    return bad == 0


def main(argv):
    if len(argv) >= 3 and argv[1] == "setup":
        setup(argv[2], int(argv[3]))
    elif len(argv) >= 4 and argv[1] == "map":
        write_map(argv[2], int(argv[3]), argv[4:])
    elif len(argv) >= 4 and argv[1] == "placed":
        return 0 if placed(argv[2], argv[3], argv[4:]) else 1
    else:
        sys.exit(__doc__)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
