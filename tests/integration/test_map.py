#!/usr/bin/python3
# sfs: own-daemon
"""test_map.py — the cluster map (docs/CLUSTER.md, "The cluster map") against a real
cairn-controller on 127.0.0.1 run with a 1 s heartbeat period and a 3 s long poll: three
nodes joined with CSRs made by the openssl command, heartbeats that move the map (an
internal address, a weight beyond 10 %, up and down), GET /v1/map and its long poll (at
once, woken, 304, the cap on polls held, SIGTERM), a restart that keeps version and seeds,
cairn-nodectl map, and cairn-provd's --internal-port.

Run directly:  /usr/bin/python3 tests/integration/test_map.py
Binaries: CAIRN_CONTROLLER, CAIRN_NODECTL, CAIRN_PROVD (default build/host/cairn-*).
"""
import concurrent.futures
import hashlib
import http.client
import json
import os
import re
import secrets
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import SANITIZER_RE, Fail, Suite, check, eq, log  # noqa: E402

import ctl_harness as H  # noqa: E402

CTL_BIN, NODECTL_BIN, PROVD_BIN = H.CTL_BIN, H.NODECTL_BIN, H.PROVD_BIN
OWN_ROOT = "SFS_ROOT" not in os.environ
ROOT = tempfile.mkdtemp(prefix="cairn-map-") if OWN_ROOT else os.environ["SFS_ROOT"]
STATE = os.path.join(ROOT, "state")
WORK = os.path.join(ROOT, "map-work")
os.makedirs(WORK, exist_ok=True)

HEARTBEAT_S = 1         # --heartbeat-s: a silent node is down after 3 s
POLL_S = 3              # --map-poll-s
POLLERS_MAX = 24        # CTL_MAP_POLLERS_MAX
GIB = 1 << 30


CTL = H.Controller(ROOT, STATE, ["--heartbeat-s", str(HEARTBEAT_S), "--map-poll-s", str(POLL_S),
                                 "--log-level", "debug"])
state_file, admin_token = CTL.state_file, CTL.admin_token
expect_error = H.expect_error


def request(method, path, body=None, bearer=None, node=None, timeout=15):
    """One HTTPS request; node = (cert, key). Returns (status, JSON or raw bytes, seconds)."""
    cert, key = node or (None, None)
    return CTL.request(method, path, body, bearer, cert, key, timeout=timeout)


def get_map(since=None, node=None, timeout=15):
    path = "/v1/map" if since is None else "/v1/map?since=%d" % since
    return request("GET", path, bearer=None if node else admin_token(), node=node,
                   timeout=timeout)


def the_map():
    st, body, _ = get_map()
    eq(st, 200, "GET /v1/map (%r)" % (body,))
    return body


def version():
    return the_map()["version"]


def by_id(m):
    return {n["node_id"]: n for n in m["nodes"]}




def nodectl(*args, check_rc=True):
    return CTL.nodectl(*args, check_rc=check_rc)


def new_csr(name):
    return H.new_csr(WORK, name)


def new_token(uses=1):
    tok = nodectl("token", "create", "--uses", str(uses))[1].strip()
    check(re.fullmatch(r"cjt1\.[0-9a-f]{16}\.[0-9a-f]{32}", tok), "token format: %r" % tok)
    return tok



def inventory(mid, disk_gib=8):
    return {"machine_id": mid, "hostname": "host-" + mid[:8], "cpus": 2, "mem_bytes": 2 << 30,
            "nics": [{"name": "eth0", "mac": "52:54:00:12:34:56"}],
            "disks": [{"name": "vdb", "size_bytes": disk_gib * GIB}]}


def join_node(token, name):
    """Joins a new machine; returns (node_id, (cert, key))."""
    key, csr = new_csr(name)
    st, body, _ = request("POST", "/v1/join", {"token": token, "csr": csr,
                                               "inventory": inventory("uuid-" + secrets.token_hex(8))})
    eq(st, 200, "join %s (%r)" % (name, body))
    crt = os.path.join(WORK, name + ".crt")
    with open(crt, "w") as f:
        f.write(body["cert"])
    return body["node_id"], (crt, key)


def heartbeat(node, body):
    st, reply, _ = request("POST", "/v1/heartbeat", body, node=NODES[node])
    eq(st, 200, "heartbeat of %s (%r)" % (node, reply))
    return reply


def beat_body(node, addr=None, cap=8 * GIB):
    return {"health": "ok", "uptime_s": 5, "s3_endpoint": "http://127.0.0.1:9000",
            "capacity_bytes": cap, "free_bytes": cap // 2,
            "internal_addr": addr or ADDRS[node]}


class Beater(threading.Thread):
    """Heartbeats for the nodes it is given, every 0.3 s, with the body it holds for each:
    nodes that should stay up while the cases run. Errors (a restart) are ignored."""

    def __init__(self):
        super().__init__(daemon=True)
        self.lock = threading.Lock()
        self.bodies = {}
        self.stopped = threading.Event()

    def set(self, node, body):
        with self.lock:
            self.bodies[node] = body

    def drop(self, node):
        with self.lock:
            self.bodies.pop(node, None)

    def run(self):
        while not self.stopped.wait(0.3):
            with self.lock:
                todo = list(self.bodies.items())
            for node, body in todo:
                try:
                    request("POST", "/v1/heartbeat", body, node=NODES[node], timeout=5)
                except (OSError, ssl.SSLError, http.client.HTTPException):
                    pass


suite = Suite("test_map")
NODES = {}      # node id -> (cert, key)
ADDRS = {}      # node id -> the internal address its heartbeats report
S = {}
BEATER = Beater()


@suite.case("controller starts with --heartbeat-s 1 --map-poll-s 3; an empty map at version 0")
def _():
    CTL.start()
    m = the_map()
    with open(state_file("cluster.json")) as f:
        cluster = json.load(f)
    eq((m["version"], m["nodes"], m["cluster_id"], m["replicas"], m["write_quorum"]),
       (0, [], cluster["cluster_id"], 3, 2), "the empty map")


if CTL.port is None:     # nothing else can run
    suite.done()


@suite.case("three joins: the map lists them joining, distinct seeds, weight from the inventory")
def _():
    tok = new_token(uses=3)
    for i in range(3):
        nid, node = join_node(tok, "n%d" % (i + 1))
        NODES[nid] = node
        ADDRS[nid] = "127.0.0.1:%d" % (7481 + i)
    m = the_map()
    eq(m["version"], 3, "version after three joins")
    eq(sorted(by_id(m)), sorted(NODES), "node ids")
    seeds = [n["seed"] for n in m["nodes"]]
    for s in seeds:
        check(re.fullmatch(r"[0-9a-f]{16}", s), "seed format: %r" % s)
    eq(len(set(seeds)), 3, "distinct seeds")
    for n in m["nodes"]:
        eq((n["state"], n["weight"], n["internal_addr"], n["s3_endpoint"]),
           ("joining", 8, "", ""), "map entry of %s" % n["node_id"])
    S["ids"] = sorted(NODES)
    S["seeds"] = {n["node_id"]: n["seed"] for n in m["nodes"]}


@suite.case("nodectl map prints the version and one line per node; map --json is the reply")
def _():
    m = the_map()
    _, out, _ = nodectl("map")
    lines = out.strip().splitlines()
    eq(lines[0], "version %d" % m["version"], "first line")
    want = ["%s %s %d %s %s" % (n["node_id"], n["state"], n["weight"], n["internal_addr"] or "-",
                                n["seed"]) for n in m["nodes"]]
    eq(lines[1:], want, "node lines")
    eq(json.loads(nodectl("map", "--json")[1]), m, "map --json")


@suite.case("GET /v1/map: a node certificate or the admin token; otherwise 401")
def _():
    st, body, _ = get_map(node=NODES[S["ids"][0]])
    eq((st, body), (200, the_map()), "with a node certificate")
    expect_error(request("GET", "/v1/map"), 401, "no_client_cert")
    expect_error(request("GET", "/v1/map", bearer="0" * 64), 401, "bad_admin_token")
    expect_error(request("GET", "/v1/map?since=x", bearer=admin_token()), 400, "bad_request")
    expect_error(request("POST", "/v1/map", {}, bearer=admin_token()), 405, "method_not_allowed")


@suite.case("heartbeats: up and internal_addr move the version once each; repeats do not")
def _():
    n1 = S["ids"][0]
    v = version()
    heartbeat(n1, {"health": "ok"})
    eq(version(), v + 1, "joining -> up")
    heartbeat(n1, {"health": "ok"})
    eq(version(), v + 1, "a heartbeat that changes nothing the map shows")
    heartbeat(n1, {"internal_addr": ADDRS[n1]})
    m = the_map()
    eq((m["version"], by_id(m)[n1]["internal_addr"]), (v + 2, ADDRS[n1]), "internal_addr reported")
    heartbeat(n1, {"internal_addr": ADDRS[n1]})
    eq(version(), v + 2, "the same internal_addr again")
    for bad in ("nope", "127.0.0.1:0", "127.0.0.1:99999", "a b:1", 7480):
        expect_error(request("POST", "/v1/heartbeat", {"internal_addr": bad}, node=NODES[n1]),
                     400, "bad_request")
    eq(version(), v + 2, "refused heartbeats")
    # weight: the map follows capacity only beyond 10 %
    heartbeat(n1, {"capacity_bytes": int(7.6 * GIB)})
    m = the_map()
    eq((m["version"], by_id(m)[n1]["weight"]), (v + 2, 8), "-5 %: no new map")
    heartbeat(n1, {"capacity_bytes": 12 * GIB})
    m = the_map()
    eq((m["version"], by_id(m)[n1]["weight"]), (v + 3, 12), "+50 %: a new map")
    # joining -> up with everything at once: one new version
    n2 = S["ids"][1]
    heartbeat(n2, beat_body(n2))
    m = the_map()
    eq((m["version"], by_id(m)[n2]["state"], by_id(m)[n2]["internal_addr"]), (v + 4, "up", ADDRS[n2]),
       "one heartbeat, one version")
    for nid in S["ids"]:
        BEATER.set(nid, beat_body(nid))
    BEATER.start()
    time.sleep(1.0)
    m = the_map()
    eq([by_id(m)[nid]["state"] for nid in S["ids"]], ["up"] * 3, "all up")
    S["v"] = m["version"]
    time.sleep(1.0)
    eq(version(), S["v"], "steady heartbeats do not move the map")


@suite.case("long poll: an older version answers at once")
def _():
    v = version()
    for since in (v - 1, 0):
        st, body, took = get_map(since=since)
        eq((st, body["version"]), (200, v), "since=%d" % since)
        check(took < 1.0, "since=%d took %.2fs" % (since, took))


def poll_after(action, delay, since, node=None):
    """Holds a long poll since `since`, runs action after delay s; returns the poll's result."""
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        fut = ex.submit(get_map, since, node)
        time.sleep(delay)
        if fut.done():
            raise Fail("the poll answered before the change: %r" % (fut.result()[:2],))
        action()
        return fut.result(timeout=10)


@suite.case("long poll: held while unchanged, woken by another node's heartbeat")
def _():
    n2, n3 = S["ids"][1], S["ids"][2]
    v = version()
    ADDRS[n2] = "127.0.0.1:7499"
    st, body, took = poll_after(lambda: BEATER.set(n2, beat_body(n2)), 1.0, v, node=NODES[n3])
    eq((st, body["version"], by_id(body)[n2]["internal_addr"]), (200, v + 1, ADDRS[n2]), "woken poll")
    check(1.0 <= took < POLL_S, "the poll took %.2fs" % took)


@suite.case("long poll: woken by a drain")
def _():
    n2 = S["ids"][1]
    v = version()
    st, body, took = poll_after(lambda: nodectl("drain", n2), 0.8, v)
    eq((st, body["version"], by_id(body)[n2]["state"]), (200, v + 1, "draining"), "woken poll")
    check(0.8 <= took < POLL_S, "the poll took %.2fs" % took)


@suite.case("long poll: 304 without a body at the timeout (--map-poll-s 3), also for a newer version")
def _():
    v = version()
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        polls = [ex.submit(get_map, since) for since in (v, v + 100)]
        got = [f.result(timeout=POLL_S + 5) for f in polls]
    for (st, body, took), since in zip(got, (v, v + 100)):
        eq((st, body), (304, b""), "since=%d at version %d" % (since, v))
        check(POLL_S - 0.2 <= took < POLL_S + 2, "the poll took %.2fs" % took)
    eq(version(), v, "version")


@suite.case("a node that stops heartbeating goes down (the version moves once), and comes back")
def _():
    n3 = S["ids"][2]
    v = version()
    BEATER.drop(n3)
    t0 = time.monotonic()
    st, body, _ = get_map(since=v, timeout=15)
    for _ in range(3):          # a 304 while the 3 periods run out
        if st != 304:
            break
        st, body, _ = get_map(since=v, timeout=15)
    took = time.monotonic() - t0
    eq((st, body["version"], by_id(body)[n3]["state"]), (200, v + 1, "down"), "the map after silence")
    check(2.5 <= took < 3 * HEARTBEAT_S + 3, "down after %.2fs" % took)
    check(re.search(r"ctl_node_down node=%s " % n3, CTL.log()), "down logged")
    time.sleep(1.5)
    eq(version(), v + 1, "down moves the version once")
    BEATER.set(n3, beat_body(n3))
    time.sleep(1.0)
    m = the_map()
    eq((m["version"], by_id(m)[n3]["state"]), (v + 2, "up"), "back up")
    time.sleep(1.0)
    eq(version(), v + 2, "up moves the version once")


@suite.case("24 long polls held: the 25th gets 503 busy; joins and heartbeats still answer")
def _():
    v = version()
    mark = len(CTL.log())
    with concurrent.futures.ThreadPoolExecutor(POLLERS_MAX) as ex:
        polls = [ex.submit(get_map, v) for _ in range(POLLERS_MAX)]
        deadline = time.monotonic() + POLL_S - 0.5
        while CTL.log()[mark:].count("ctl_map_hold ") < POLLERS_MAX and time.monotonic() < deadline:
            time.sleep(0.02)
        eq(CTL.log()[mark:].count("ctl_map_hold "), POLLERS_MAX, "polls held")
        expect_error(get_map(since=v), 503, "busy")
        st, _, _ = request("GET", "/v1/nodes", bearer=admin_token())
        eq(st, 200, "GET /v1/nodes while the polls are held")
        tok = new_token()
        nid, node = join_node(tok, "n4")
        NODES[nid] = node
        got = [f.result(timeout=10) for f in polls]
    eq(sorted({(st, body["version"]) for st, body, _ in got}), [(200, v + 1)],
       "every held poll woken by the join")
    check(by_id(got[0][1])[nid]["state"] == "joining", "the new node in the map")


@suite.case("SIGTERM answers a held poll (304) and exits 0; after the restart: same version, seeds, map")
def _():
    before = the_map()
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        fut = ex.submit(get_map, before["version"])
        time.sleep(0.5)
        t0 = time.monotonic()
        eq(CTL.stop(), 0, "exit status after SIGTERM")
        check(time.monotonic() - t0 < 2.5, "stopping took %.2fs" % (time.monotonic() - t0))
        st, body, _ = fut.result(timeout=5)
        eq((st, body), (304, b""), "the held poll")
    CTL.start()
    after = the_map()
    eq(after, before, "the map after the restart")
    eq({n["node_id"]: n["seed"] for n in after["nodes"] if n["node_id"] in S["seeds"]}, S["seeds"],
       "seeds")
    time.sleep(3 * HEARTBEAT_S + 1)     # the beaten nodes stay up after the restart
    eq(the_map(), before, "the map once the nodes heartbeat again")


@suite.case("a removed node leaves the map, and its certificate is refused (403)")
def _():
    n1 = S["ids"][0]
    BEATER.drop(n1)
    v = version()
    eq(nodectl("remove", n1)[1].strip(), "%s gone" % n1, "remove")
    m = the_map()
    eq(m["version"], v + 1, "version")
    check(n1 not in by_id(m), "%s still in the map" % n1)
    expect_error(get_map(node=NODES[n1]), 403, "node_removed")


@suite.case("cairn-provd --internal-port: the heartbeat reports <source address>:PORT")
def _():
    base = os.path.join(ROOT, "provd-node")
    files = {"sys/class/dmi/id/product_uuid": "6a1b2c3d-0000-4000-8000-%012x" % secrets.randbits(48),
             "sys/devices/system/cpu/online": "0-1",
             "sys/class/net/eth0/address": "52:54:00:aa:bb:cc",
             "sys/block/vdb/size": "16777216",
             "proc/cpuinfo": "processor\t: 0\nmodel name\t: Fake CPU\n",
             "proc/meminfo": "MemTotal:  1048576 kB\n", "proc/uptime": "12.0 1.0\n"}
    for rel, text in files.items():
        p = os.path.join(base, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text + "\n")
    data = os.path.join(base, "d1")
    os.makedirs(data, exist_ok=True)
    with open(state_file("ca.crt")) as f:
        pin = "sha256:" + hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest()
    cl = os.path.join(base, "cmdline")
    with open(cl, "w") as f:
        f.write("cairn.controller=127.0.0.1:%d cairn.token=%s cairn.ca-hash=%s\n"
                % (CTL.port, new_token(), pin))
    p = subprocess.run([PROVD_BIN, "--once", "--cmdline", cl, "--sysfs-root", os.path.join(base, "sys"),
                        "--proc-root", os.path.join(base, "proc"), "--data-dir", data,
                        "--sfs-conf", os.path.join(base, "storagefsd.conf"),
                        "--ready-file", os.path.join(base, "provisioned"),
                        "--internal-port", "7999"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    err = p.stderr.decode("utf-8", "replace")
    log("$ provd [rc=%d]\n%s" % (p.returncode, err[-1500:]))
    m = SANITIZER_RE.search(err)
    check(not m, "sanitizer report from provd: %s" % (err[m.start():m.start() + 800] if m else ""))
    eq(p.returncode, 0, "provd exit status")
    with open(os.path.join(data, ".cairn-node", "provd", "node.json")) as f:
        nid = json.load(f)["node_id"]
    n = by_id(the_map())[nid]
    eq((n["state"], n["internal_addr"], n["s3_endpoint"]),
       ("up", "127.0.0.1:7999", "http://127.0.0.1:9000"), "the provd node in the map")


try:
    pass
finally:
    BEATER.stopped.set()
    if CTL.proc and CTL.proc.poll() is None:
        try:
            rc = CTL.stop()
            if rc != 0:
                print("FAIL - controller stop: exit status %s after SIGTERM" % rc, flush=True)
                suite.failed += 1
        except subprocess.TimeoutExpired:
            CTL.kill9()
            print("FAIL - controller stop: no exit within 20 s of SIGTERM", flush=True)
            suite.failed += 1
    if suite.failed and CTL.logpath:
        log("controller log tail:\n" + CTL.log()[-3000:])
    if OWN_ROOT and os.environ.get("SFS_KEEP") != "1":
        shutil.rmtree(ROOT, ignore_errors=True)
suite.done()
