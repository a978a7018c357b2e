#!/usr/bin/python3
# sfs: own-daemon
"""cairn-provd against the real cairn-controller on 127.0.0.1: a node joins with a token and
the CA pin (state + storagefsd config written, listed `up` with its inventory), restarts
without a token on its saved identity, and refuses a wrong pin, a bad token or a missing one;
drain and removal reach it through the heartbeat reply.

Binaries: CAIRN_CONTROLLER, CAIRN_NODECTL, CAIRN_PROVD (default build/host/cairn-*)."""
import hashlib
import json
import os
import re
import signal
import ssl
import stat
import subprocess
import time
import http.client

from common import REPO, SANITIZER_RE, Env, Fail, Suite, check, eq, free_port, log

E = Env()
T = Suite("provd")


def binpath(env, name):
    """A relative path is taken from the repository root (the script runs elsewhere)."""
    return os.path.join(REPO, os.environ.get(env) or os.path.join("build/host", name))


CONTROLLER = binpath("CAIRN_CONTROLLER", "cairn-controller")
NODECTL = binpath("CAIRN_NODECTL", "cairn-nodectl")
PROVD = binpath("CAIRN_PROVD", "cairn-provd")
ROOT = E.root
CSTATE = os.path.join(ROOT, "controller-state")
PINS = os.path.join(ROOT, "pids")
UUID1 = "6a1b2c3d-0000-4000-8000-00000000c0de"


class Controller:
    def __init__(self):
        self.port = None
        self.proc = None
        self.logpath = os.path.join(ROOT, "daemon-controller.log")

    def start(self, timeout=20):
        self.port = free_port()
        logf = open(self.logpath, "ab")
        self.proc = subprocess.Popen([CONTROLLER, "--state", CSTATE, "--listen",
                                      "127.0.0.1:%d" % self.port],
                                     stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                     start_new_session=True)
        logf.close()
        with open(PINS, "a") as f:
            f.write("%d\n" % self.proc.pid)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "ready listen=" in self.log():
                return
            if self.proc.poll() is not None:
                raise Fail("controller exited %s: %s" % (self.proc.returncode, self.log()[-800:]))
            time.sleep(0.05)
        raise Fail("controller not ready in %ds: %s" % (timeout, self.log()[-800:]))

    def log(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise Fail("controller ignored SIGTERM")
        return self.proc.returncode if self.proc else None

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port


C = Controller()


def pin():
    with open(os.path.join(CSTATE, "ca.crt")) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    return "sha256:" + hashlib.sha256(der).hexdigest()


def api(method, path, body=None):
    """An admin request straight to the API (TLS trusting only the cluster CA)."""
    ctx = ssl.create_default_context(cafile=os.path.join(CSTATE, "ca.crt"))
    ctx.check_hostname = False  # the controller's certificate names cairn-controller
    with open(os.path.join(CSTATE, "admin.token")) as f:
        tok = f.read().strip()
    conn = http.client.HTTPSConnection("127.0.0.1", C.port, context=ctx, timeout=10)
    hdrs = {"Authorization": "Bearer " + tok}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=hdrs)
    r = conn.getresponse()
    out = r.read()
    conn.close()
    return r.status, (json.loads(out) if out.strip() else None)


def nodectl(*args, check_rc=True):
    p = subprocess.run([NODECTL, "--controller", C.addr, "--state", CSTATE] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    out, err = p.stdout.decode(), p.stderr.decode()
    log("$ nodectl %s [rc=%d]\n%s%s" % (" ".join(args), p.returncode, out[-1500:], err[-500:]))
    if check_rc and p.returncode != 0:
        raise Fail("nodectl %s: rc=%d %s" % (" ".join(args), p.returncode, err[-300:]))
    return out


def new_token():
    out = nodectl("token", "create")
    m = re.search(r"cjt1\.[0-9a-f]{16}\.[0-9a-f]{32}", out)
    check(m, "no token in nodectl output: %r" % out[:300])
    return m.group(0)


def fake_node(name, uuid):
    """A fake sysfs + proc tree and two data directories for one node."""
    base = os.path.join(ROOT, name)
    files = {
        "sys/class/dmi/id/product_uuid": uuid.upper(),
        "sys/class/dmi/id/product_serial": "SER-" + name,
        "sys/devices/system/cpu/online": "0-1",
        "sys/class/net/eth0/address": "52:54:00:aa:bb:%02x" % (sum(map(ord, name)) % 256),
        "sys/class/net/eth0/device/vendor": "0x1af4",
        "sys/class/net/lo/address": "00:00:00:00:00:00",
        "sys/block/vdb/size": "16777216",
        "sys/block/vdb/device/model": "QEMU HARDDISK",
        "sys/block/vdb/device/serial": name + "-b",
        "sys/block/vdb/queue/rotational": "1",
        "sys/block/loop0/size": "8",
        "proc/cpuinfo": "processor\t: 0\nmodel name\t: Fake CPU\n\nprocessor\t: 1\nmodel name\t: Fake CPU\n",
        "proc/meminfo": "MemTotal:  1048576 kB\n",
        "proc/uptime": "123.45 67.0\n",
    }
    for rel, text in files.items():
        p = os.path.join(base, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text + "\n")
    dirs = [os.path.join(base, "d1"), os.path.join(base, "d2")]
    for d in dirs:
        os.makedirs(d, exist_ok=True)
    return base, dirs


def provd(base, dirs, cmdline, extra=(), timeout=60):
    cl = os.path.join(base, "cmdline")
    with open(cl, "w") as f:
        f.write(cmdline + "\n")
    args = [PROVD, "--once", "--cmdline", cl, "--sysfs-root", os.path.join(base, "sys"),
            "--proc-root", os.path.join(base, "proc"),
            "--sfs-conf", os.path.join(base, "storagefsd.conf"),
            "--ready-file", os.path.join(base, "provisioned"), "--s3-endpoint",
            "http://127.0.0.1:9000"]
    for d in dirs:
        args += ["--data-dir", d]
    args += list(extra)
    t0 = time.monotonic()
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    err = p.stderr.decode("utf-8", "replace")
    log("$ provd %s [rc=%d %.1fs]\n%s" % (os.path.basename(base), p.returncode,
                                         time.monotonic() - t0, err[-2500:]))
    m = SANITIZER_RE.search(err)
    if m:
        raise Fail("sanitizer report from provd: %s" % err[m.start():m.start() + 800])
    return p.returncode, err


def cmdline(token=None, ca_hash=None, controller=None):
    words = ["BOOT_IMAGE=/vmlinuz", "console=hvc0"]
    words.append("cairn.controller=%s" % (controller or C.addr))
    if token:
        words.append("cairn.token=%s" % token)
    words.append("cairn.ca-hash=%s" % (ca_hash or pin()))
    return " ".join(words)


def nodes():
    st, body = api("GET", "/v1/nodes")
    eq(st, 200, "GET /v1/nodes status")
    return body["nodes"]


def state_dir(dirs):
    return os.path.join(dirs[0], ".cairn-node", "provd")


N1 = {}


@T.case("controller starts; --print-pin matches the SHA-256 of ca.crt's DER")
def _():
    C.start()
    p = subprocess.run([CONTROLLER, "--print-pin", "--state", CSTATE], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    eq(p.stdout.decode().strip(), pin(), "--print-pin output")


@T.case("provd --once joins: identity saved (node.key 0600), storagefsd config + ready file written")
def _():
    base, dirs = fake_node("n1", UUID1)
    tok = new_token()
    rc, err = provd(base, dirs, cmdline(tok))
    eq(rc, 0, "provd exit status (log: %s)" % err[-600:])
    for step in ("step=inventory", "step=pin", "step=joined", "step=sfs_conf", "step=ready",
                 "step=heartbeat"):
        check("provd_step " + step in err, "no 'provd_step %s' log line" % step)
    sd = state_dir(dirs)
    for f in ("node.key", "node.crt", "ca.crt", "node.json"):
        check(os.path.isfile(os.path.join(sd, f)), "state file %s missing in %s" % (f, sd))
    eq(stat.S_IMODE(os.stat(os.path.join(sd, "node.key")).st_mode), 0o600, "node.key mode")
    with open(os.path.join(sd, "node.json")) as f:
        nj = json.load(f)
    with open(os.path.join(CSTATE, "cluster.json")) as f:
        cj = json.load(f)
    check(nj["node_id"].startswith("node-"), "node_id %r" % nj["node_id"])
    eq(nj["cluster_id"], cj["cluster_id"], "cluster_id in node.json")
    eq(nj["controller"], C.addr, "controller in node.json")
    with open(os.path.join(sd, "ca.crt")) as f, open(os.path.join(CSTATE, "ca.crt")) as g:
        eq(ssl.PEM_cert_to_DER_cert(f.read()), ssl.PEM_cert_to_DER_cert(g.read()), "saved CA")
    conf = os.path.join(base, "storagefsd.conf")
    eq(stat.S_IMODE(os.stat(conf).st_mode), 0o600, "storagefsd.conf mode")
    with open(conf) as f:
        lines = [ln.strip() for ln in f if ln.strip() and not ln.startswith("#")]
    kv = [tuple(x.strip() for x in ln.split("=", 1)) for ln in lines]
    check(("access-key", cj["access_key"]) in kv, "access-key line: %r" % lines)
    check(("secret-key", cj["secret_key"]) in kv, "secret-key line")
    eq([v for k, v in kv if k == "data"], dirs, "data lines")
    eq([v for k, v in kv if k == "cluster"], [sd], "cluster line (the identity directory)")
    eq([v for k, v in kv if k == "internal-listen"], ["0.0.0.0:7480"], "internal-listen line")
    with open(os.path.join(base, "provisioned")) as f:
        eq(f.read().split(), dirs, "ready file content")
    N1.update(base=base, dirs=dirs, node_id=nj["node_id"])


@T.case("the node is listed up with its inventory (API and cairn-nodectl nodes)")
def _():
    check(N1, "no node joined")
    ns = [n for n in nodes() if n["node_id"] == N1["node_id"]]
    eq(len(ns), 1, "nodes with our id")
    n = ns[0]
    eq(n["state"], "up", "state after a heartbeat")
    inv = n["inventory"]
    eq(inv["machine_id"], UUID1, "machine_id (DMI uuid, lowercase)")
    eq(inv["cpus"], 2, "cpus")
    eq(inv["mem_bytes"], 1048576 * 1024, "mem_bytes")
    eq([(x["name"], x["mac"]) for x in inv["nics"]], [("eth0", "52:54:00:aa:bb:%02x" %
                                                       (sum(map(ord, "n1")) % 256))], "nics")
    eq([(d["name"], d["size_bytes"], d["serial"]) for d in inv["disks"]],
       [("vdb", 16777216 * 512, "n1-b")], "inventory disks")
    eq(n.get("s3_endpoint"), "http://127.0.0.1:9000", "s3_endpoint from the heartbeat")
    check(len(n.get("disks") or []) == 2, "heartbeat disks: %r" % n.get("disks"))
    out = nodectl("nodes")
    line = [ln for ln in out.splitlines() if N1["node_id"] in ln]
    check(line and "up" in line[0], "nodectl nodes does not show %s up: %r" % (N1["node_id"], out[:500]))


@T.case("storagefsd started from provd's config serves S3 as a node of the cluster (map from the controller)")
def _():
    check(N1, "no node joined")
    from common import s3client
    with open(os.path.join(CSTATE, "cluster.json")) as f:
        cj = json.load(f)
    port, iport = free_port(), free_port()
    logpath = os.path.join(ROOT, "daemon-provd-sfs.log")
    # the config's internal-listen (0.0.0.0:7480) is overridden: tests run side by side
    args = [os.path.join(REPO, os.environ.get("SFS_BIN", "build/host/storagefsd")),
            "--config", os.path.join(N1["base"], "storagefsd.conf"),
            "--listen", "127.0.0.1:%d" % port, "--internal-listen", "127.0.0.1:%d" % iport]
    with open(logpath, "ab") as logf:
        p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                             start_new_session=True)
    with open(PINS, "a") as f:
        f.write("%d\n" % p.pid)

    def text():
        with open(logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")
    try:
        deadline = time.monotonic() + 20
        while "ready listen=" not in text() and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        check("ready listen=" in text(), "storagefsd not ready: %s" % text()[-1500:])
        check("cluster_node node=%s" % N1["node_id"] in text(), "no cluster_node line in the log: %s" % text()[-1500:])
        s3 = s3client("http://127.0.0.1:%d" % port, cj["access_key"], cj["secret_key"])
        # the map arrives by the long poll: until then a write has no owners (503)
        deadline = time.monotonic() + 20
        while True:
            try:
                s3.create_bucket(Bucket="provd-node")
                break
            except Exception as e:
                if time.monotonic() > deadline:
                    raise Fail("create_bucket never succeeded: %s; log: %s" % (e, text()[-1500:]))
                time.sleep(0.3)
        # a one-node cluster with replicas 3 acknowledges once its only node has the
        # copies: as many as its disks allow (2), not the one a node of a big cluster keeps
        s3.put_object(Bucket="provd-node", Key="k", Body=b"one node of a cluster")
        eq(s3.get_object(Bucket="provd-node", Key="k")["Body"].read(), b"one node of a cluster",
           "object read back")
        from common import raw_request
        st, _, body = raw_request(port, "GET", "/", query=[("cairn-status", "")],
                                  ak=cj["access_key"], sk=cj["secret_key"])
        eq(st, 200, "GET /?cairn-status")
        status = json.loads(body)
        eq((status["replicas"], status["write_quorum"]), (2, 2), "copies on the node's disks")
        eq((status["cluster"]["node"], status["cluster"]["nodes"], status["cluster"]["replicas"]),
           (N1["node_id"], 1, 3), "cluster status")
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
    eq(p.returncode, 0, "storagefsd exit status after SIGTERM (log: %s)" % text()[-800:])
    check(not SANITIZER_RE.search(text()), "sanitizer report: %s" % text()[-1500:])


@T.case("a restart reuses the saved identity: no token, no new node")
def _():
    check(N1, "no node joined")
    before = len(nodes())
    # an empty kernel line: the controller comes from node.json
    rc, err = provd(N1["base"], N1["dirs"], "quiet", extra=[])
    eq(rc, 0, "provd exit status without any cairn.* key (log: %s)" % err[-600:])
    check("source=saved" in err, "identity not reused: %s" % err[-600:])
    check("step=joined" not in err, "joined again")
    check("node_id=%s" % N1["node_id"] in err, "another node id")
    eq(len(nodes()), before, "node count")


@T.case("a wrong ca-hash: provd refuses (exit 3, provd_pin_mismatch), nothing joined")
def _():
    base, dirs = fake_node("n2", "6a1b2c3d-0000-4000-8000-0000000000b2")
    before = len(nodes())
    wrong = "sha256:" + "ab" * 32
    rc, err = provd(base, dirs, cmdline(new_token(), ca_hash=wrong))
    eq(rc, 3, "exit status")
    m = re.search(r"provd_pin_mismatch want=(\S+) got=(\S+)", err)
    check(m, "no provd_pin_mismatch line: %s" % err[-500:])
    eq((m.group(1), m.group(2)), (wrong, pin()), "want/got in the log")
    check("step=join " not in err, "a join request was sent")
    check(not os.path.exists(os.path.join(state_dir(dirs), "node.json")), "identity written")
    check(not os.path.exists(os.path.join(base, "storagefsd.conf")), "storagefsd.conf written")
    eq(len(nodes()), before, "node count")


@T.case("a bad token: clear error (bad_token), exit 4, nothing written")
def _():
    base, dirs = fake_node("n3", "6a1b2c3d-0000-4000-8000-0000000000b3")
    before = len(nodes())
    rc, err = provd(base, dirs, cmdline("cjt1.%s.%s" % ("0" * 16, "0" * 32)))
    eq(rc, 4, "exit status")
    check(re.search(r"provd_join_refused .*HTTP 401 bad_token", err),
          "no clear refusal in the log: %s" % err[-500:])
    check(not os.path.exists(os.path.join(state_dir(dirs), "node.json")), "identity written")
    eq(len(nodes()), before, "node count")


@T.case("no token and no identity: exit 2 naming the missing key")
def _():
    base, dirs = fake_node("n4", "6a1b2c3d-0000-4000-8000-0000000000b4")
    rc, err = provd(base, dirs, cmdline(None))
    eq(rc, 2, "exit status")
    check("provd_cannot_join" in err and "cairn.token" in err, "message: %s" % err[-400:])


@T.case("bad flags exit 2; --help exits 0")
def _():
    for args in (["--bogus"], ["--log-level", "loud"], ["--once", "extra-arg"],
                 ["--s3-port", "0"]):
        p = subprocess.run([PROVD] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=10)
        eq(p.returncode, 2, "exit status for %r" % args)
        check(p.stderr.strip(), "no message for %r" % args)
    p = subprocess.run([PROVD, "--help"], stdout=subprocess.PIPE, timeout=10)
    eq(p.returncode, 0, "--help exit status")
    check(b"--data-dir" in p.stdout and b"--once" in p.stdout, "--help text")


@T.case("unreachable controller: --once exits 1; without --once it backs off and stops on SIGTERM")
def _():
    base, dirs = fake_node("n5", "6a1b2c3d-0000-4000-8000-0000000000b5")
    dead = "127.0.0.1:%d" % free_port()
    rc, err = provd(base, dirs, cmdline("cjt1.%s.%s" % ("1" * 16, "1" * 32), controller=dead))
    eq(rc, 1, "exit status")
    cl = os.path.join(base, "cmdline")
    args = [PROVD, "--cmdline", cl, "--sysfs-root", os.path.join(base, "sys"), "--proc-root",
            os.path.join(base, "proc"), "--data-dir", dirs[0], "--sfs-conf",
            os.path.join(base, "c"), "--ready-file", os.path.join(base, "r")]
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    with open(PINS, "a") as f:
        f.write("%d\n" % p.pid)
    time.sleep(2.5)
    check(p.poll() is None, "provd gave up instead of retrying")
    p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        raise Fail("provd did not stop on SIGTERM while backing off")
    err = p.stderr.read().decode()
    log(err[-1500:])
    eq(rc, 0, "exit status after SIGTERM")
    check(len(re.findall(r"provd_retry in_ms=", err)) >= 2, "no backoff retries: %s" % err[-500:])


@T.case("drain shows in the heartbeat reply; removal stops the node (403 node_removed, exit 5)")
def _():
    check(N1, "no node joined")
    st, _ = api("POST", "/v1/nodes/%s/drain" % N1["node_id"])
    eq(st, 200, "drain status")
    rc, err = provd(N1["base"], N1["dirs"], "quiet")
    eq(rc, 0, "exit status while draining")
    check("provd_draining" in err and "state=draining" in err, "draining not logged: %s" % err[-500:])
    st, _ = api("DELETE", "/v1/nodes/%s" % N1["node_id"])
    eq(st, 200, "delete status")
    rc, err = provd(N1["base"], N1["dirs"], "quiet")
    eq(rc, 5, "exit status once removed")
    check("provd_node_removed" in err, "removal not logged: %s" % err[-500:])


@T.case("the controller stops cleanly")
def _():
    eq(C.stop(), 0, "controller exit status after SIGTERM")


T.done()
