#!/usr/bin/python3
# sfs: own-daemon
"""test_join.py — the join protocol (docs/PROVISIONING.md) against a real cairn-controller
on 127.0.0.1 with a temporary state directory: a Python client (ssl, trusting only the
cluster CA), CSRs made by the openssl command, admin calls with the bearer token and through
cairn-nodectl. Every rejected join must leave the state as it was.

Run directly:  /usr/bin/python3 tests/integration/test_join.py
Binaries: CAIRN_CONTROLLER, CAIRN_NODECTL (default build/host/cairn-controller, cairn-nodectl).
"""
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
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Fail, Suite, check, eq, log  # noqa: E402

import ctl_harness as H  # noqa: E402

CTL_BIN, NODECTL_BIN = H.CTL_BIN, H.NODECTL_BIN
OWN_ROOT = "SFS_ROOT" not in os.environ
ROOT = tempfile.mkdtemp(prefix="cairn-join-") if OWN_ROOT else os.environ["SFS_ROOT"]
STATE = os.path.join(ROOT, "state")
WORK = os.path.join(ROOT, "join-work")
os.makedirs(WORK, exist_ok=True)

CTL = H.Controller(ROOT, STATE, ["--boot-listen", "127.0.0.1:0", "--log-level", "info"])
state_file, admin_token, tls_context = CTL.state_file, CTL.admin_token, CTL.tls_context
expect_error = H.expect_error


def request(method, path, body=None, bearer=None, cert=None, key=None, raw=None):
    """One HTTPS request; returns (status, parsed JSON or raw bytes)."""
    return CTL.request(method, path, body, bearer, cert, key, raw)[:2]


def nodectl(*args, check_rc=True):
    return CTL.nodectl(*args, check_rc=check_rc)


def new_token(ttl="1h", uses=1):
    _, out, _ = nodectl("token", "create", "--ttl", ttl, "--uses", str(uses))
    tok = out.strip()
    check(re.fullmatch(r"cjt1\.[0-9a-f]{16}\.[0-9a-f]{32}", tok), "token format: %r" % tok)
    return tok


def new_csr(name):
    return H.new_csr(WORK, name)


def inventory(mid, **over):
    inv = {"machine_id": mid, "hostname": "host-" + mid[:8],
           "dmi_serial": "S123", "cpu_model": "QEMU Virtual CPU", "cpus": 2,
           "mem_bytes": 2 << 30, "nics": [{"name": "eth0", "mac": "52:54:00:12:34:56"}],
           "disks": [{"name": "vdb", "size_bytes": 8 << 30, "model": "QEMU HARDDISK",
                      "serial": "d1", "rotational": False}]}
    inv.update(over)
    return inv


def join(token, machine_id, csr=None, inv=None):
    if csr is None:
        _, csr = new_csr(machine_id)
    return request("POST", "/v1/join", {"token": token, "csr": csr,
                                        "inventory": inv or inventory(machine_id)})


def nodes():
    st, body = request("GET", "/v1/nodes", bearer=admin_token())
    eq(st, 200, "GET /v1/nodes status")
    return body["nodes"]


def snapshot():
    """What a rejected join must not change: the node list and the journal."""
    with open(state_file("journal.log"), "rb") as f:
        journal = f.read()
    return [(n["node_id"], n["state"], n["machine_id"]) for n in nodes()], journal


def write_cert(name, pem):
    path = os.path.join(WORK, name + ".crt")
    with open(path, "w") as f:
        f.write(pem)
    return path


def openssl_out(*args):
    return subprocess.run(["openssl"] + list(args), check=True, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT).stdout.decode()


suite = Suite("test_join")
S = {}      # what the cases share


@suite.case("controller starts, makes its state (0700 dir, 0600 secrets) and logs ready")
def _():
    CTL.start()
    eq(os.stat(STATE).st_mode & 0o777, 0o700, "state dir mode")
    for name in ("admin.token", "ca.key", "server.key", "cluster.json"):
        eq(os.stat(state_file(name)).st_mode & 0o777, 0o600, name + " mode")
    check(re.fullmatch(r"[0-9a-f]{64}", admin_token()), "admin token: 64 hex")
    with open(state_file("cluster.json")) as f:
        S["cluster"] = json.load(f)
    eq(S["cluster"]["replicas"], 3, "replicas")


if CTL.port is None:     # nothing else can run
    suite.done()


@suite.case("the CA pin: --print-pin = nodectl pin = sha256 of ca.crt's DER = GET /v1/ca")
def _():
    with open(state_file("ca.crt")) as f:
        pem = f.read()
    pin = "sha256:" + hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()
    p = subprocess.run([CTL_BIN, "--state", STATE, "--print-pin"], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, timeout=30)
    eq(p.stdout.decode().strip(), pin, "--print-pin")
    eq(nodectl("pin")[1].strip(), pin, "nodectl pin")
    st, body = request("GET", "/v1/ca")
    eq(st, 200, "GET /v1/ca")
    eq(hashlib.sha256(ssl.PEM_cert_to_DER_cert(body.decode())).hexdigest(), pin[7:], "served CA")
    S["pin"] = pin


@suite.case("a client trusting another CA refuses the controller")
def _():
    other = os.path.join(WORK, "other-ca")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=other", "-days", "1",
                    "-keyout", other + ".key", "-out", other + ".crt"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    conn = http.client.HTTPSConnection("127.0.0.1", CTL.port, timeout=10,
                                       context=tls_context(ca=other + ".crt"))
    try:
        conn.request("GET", "/v1/ca")
        raise Fail("the handshake succeeded with the wrong CA")
    except ssl.SSLError as e:
        check("CERTIFICATE_VERIFY_FAILED" in str(e), "unexpected TLS error: %s" % e)
    finally:
        conn.close()
    rc, _, err = nodectl("--ca", other + ".crt", "nodes", check_rc=False)
    eq(rc, 1, "nodectl with the wrong CA: exit status")


@suite.case("admin endpoints need the bearer token")
def _():
    expect_error(request("GET", "/v1/nodes"), 401, "bad_admin_token")
    expect_error(request("GET", "/v1/nodes", bearer="0" * 64), 401, "bad_admin_token")
    expect_error(request("POST", "/v1/tokens", {"ttl_s": 60}, bearer=admin_token()[:-1]), 401,
                 "bad_admin_token")
    expect_error(request("GET", "/v1/nope"), 404, "not_found")
    expect_error(request("PUT", "/v1/join", {}), 405, "method_not_allowed")


@suite.case("good join: a certificate signed by the CA, CN = node id, cluster settings")
def _():
    S["tok1"] = tok = new_token()
    S["machine1"] = m = "uuid-" + secrets.token_hex(8)
    key, csr = new_csr("node1")
    st, body = join(tok, m, csr)
    eq(st, 200, "join status (%r)" % (body,))
    eq(body["node_id"], "node-0001", "node id")
    for k in ("cluster_id", "access_key", "secret_key", "replicas", "heartbeat_s"):
        eq(body[k], S["cluster"][k], k)
    with open(state_file("ca.crt")) as f:
        eq(body["ca"], f.read(), "ca in the reply")
    crt = write_cert("node1", body["cert"])
    out = openssl_out("verify", "-CAfile", state_file("ca.crt"), crt)
    check(out.strip().endswith("OK"), "openssl verify: %s" % out)
    out = openssl_out("x509", "-in", crt, "-noout", "-subject", "-serial", "-enddate")
    check(re.search(r"subject=\s*CN\s*=\s*node-0001", out), "subject: %s" % out)
    check(re.search(r"serial=0*1\b", out), "serial: %s" % out)
    years = int(re.search(r"notAfter=\w+\s+\d+ [\d:]+ (\d+)", out).group(1)) - time.gmtime().tm_year
    check(9 <= years <= 10, "validity ~10 years: %s" % out)
    S["node1"] = (crt, key)
    n = [x for x in nodes() if x["node_id"] == "node-0001"][0]
    eq((n["state"], n["machine_id"], n["addr"], n["hostname"]), ("joining", m, "127.0.0.1", "host-" + m[:8]), "node")
    eq(n["inventory"]["disks"][0]["name"], "vdb", "inventory kept")
    check(re.search(r"ctl_join node=node-0001 machine=%s .*addr=127\.0\.0\.1" % m, CTL.log()), "join log line")


@suite.case("bad tokens are refused (401 bad_token) and change nothing")
def _():
    before = snapshot()
    good = new_token()
    after_token = snapshot()
    expect_error(join("cjt1.%s.%s" % (secrets.token_hex(8), secrets.token_hex(16)), "m-bad1"), 401, "bad_token")
    expect_error(join(good[:-1] + ("0" if good[-1] != "0" else "1"), "m-bad2"), 401, "bad_token")
    expect_error(join("not-a-token", "m-bad3"), 401, "bad_token")
    expect_error(join("x" * 300, "m-bad4"), 401, "bad_token")
    eq(snapshot(), after_token, "state after bad tokens")
    eq(before[0], after_token[0], "nodes")
    check("error=bad_token" in CTL.log(), "rejections are logged with error=")
    S["spare"] = good


@suite.case("malformed JSON, inventory and CSR are refused (400) and consume nothing")
def _():
    tok = S["spare"]
    before = snapshot()
    _, csr = new_csr("bad")
    bad_inv = [
        ({k: v for k, v in inventory("m-x").items() if k != "cpus"}, "missing cpus"),
        (inventory("m-x", machine_id=""), "empty machine_id"),
        (inventory("m-x", hostname="h" * 256), "hostname of 256 bytes"),
        (inventory("m-x", nics=[{"name": "e%d" % i, "mac": "m"} for i in range(65)]), "65 NICs"),
        (inventory("m-x", disks=[{"name": "d", "size_bytes": -5}]), "negative size"),
        (inventory("m-x", mem_bytes="lots"), "mem_bytes a string"),
    ]
    for inv, what in bad_inv:
        st, body = request("POST", "/v1/join", {"token": tok, "csr": csr, "inventory": inv})
        if st != 400 or body.get("error") != "bad_inventory":
            raise Fail("%s: expected 400 bad_inventory, got %d %r" % (what, st, body))
    for raw, what in ((b"{not json", "not JSON"), (b"[]", "an array"),
                      (json.dumps({"token": tok, "csr": csr}).encode(), "no inventory"),
                      (json.dumps({"token": 5, "csr": csr, "inventory": inventory("m-x")}).encode(), "token a number"),
                      (json.dumps({"token": tok, "inventory": inventory("m-x")}).encode(), "no csr")):
        st, body = request("POST", "/v1/join", raw=raw)
        if st != 400 or body.get("error") != "bad_request":
            raise Fail("%s: expected 400 bad_request, got %d %r" % (what, st, body))
    # a CSR whose signature does not verify: one byte of the signature flipped
    der = bytearray(ssl.PEM_cert_to_DER_cert(csr.replace("CERTIFICATE REQUEST", "CERTIFICATE")))
    der[-3] ^= 0x01
    broken = ssl.DER_cert_to_PEM_cert(bytes(der)).replace("CERTIFICATE", "CERTIFICATE REQUEST")
    for bad, what in (("garbage", "garbage"), (broken, "bad signature"),
                      ("\n".join(csr.splitlines()[:1] + csr.splitlines()[2:]) + "\n", "truncated DER")):
        st, body = request("POST", "/v1/join", {"token": tok, "csr": bad, "inventory": inventory("m-x")})
        if st != 400 or body.get("error") != "bad_csr":
            raise Fail("%s CSR: expected 400 bad_csr, got %d %r" % (what, st, body))
    st, body = request("POST", "/v1/join", raw=b"{" + b" " * (70 * 1024) + b"}")
    eq(st, 413, "64 KiB+ body (%r)" % (body,))
    eq(snapshot(), before, "state after malformed joins")
    # nothing was consumed: the single-use token still works
    st, body = join(tok, "uuid-" + secrets.token_hex(8))
    eq(st, 200, "join with the token the bad joins used (%r)" % (body,))
    eq(body["node_id"], "node-0002", "node id")


@suite.case("a replayed single-use token is refused (401 token_used)")
def _():
    before = snapshot()
    expect_error(join(S["tok1"], "uuid-" + secrets.token_hex(8)), 401, "token_used")
    eq(snapshot(), before, "state")


@suite.case("an expired token is refused (401 token_expired)")
def _():
    tok = new_token(ttl="1s", uses=5)
    time.sleep(1.3)
    before = snapshot()
    expect_error(join(tok, "uuid-" + secrets.token_hex(8)), 401, "token_expired")
    eq(snapshot(), before, "state")


@suite.case("a second join of the same machine is refused (409 duplicate_node)")
def _():
    tok = new_token(uses=2)
    before = snapshot()
    expect_error(join(tok, S["machine1"]), 409, "duplicate_node")
    eq(snapshot(), before, "state")
    S["tok2"] = tok   # two uses left


@suite.case("16 concurrent joins with a 16-use token: 16 distinct nodes, then token_used")
def _():
    import concurrent.futures
    tok = new_token(uses=16)
    before = len(nodes())
    csrs = [new_csr("conc%d" % i)[1] for i in range(17)]
    machines = ["uuid-conc-%02d-%s" % (i, secrets.token_hex(4)) for i in range(17)]
    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        got = list(ex.map(lambda i: join(tok, machines[i], csrs[i]), range(16)))
    eq(sorted(st for st, _ in got), [200] * 16, "statuses")
    ids = {body["node_id"] for _, body in got}
    eq(len(ids), 16, "distinct node ids")
    eq(len(nodes()), before + 16, "node count")
    expect_error(join(tok, machines[16], csrs[16]), 401, "token_used")


@suite.case("heartbeat with the node certificate: state up; without one: 401")
def _():
    crt, key = S["node1"]
    st, body = request("POST", "/v1/heartbeat", {"health": "ok", "uptime_s": 12,
                                                 "s3_endpoint": "http://127.0.0.1:9000",
                                                 "disks": [{"name": "vdb", "state": "ok"}],
                                                 "capacity_bytes": 1000, "free_bytes": 900},
                       cert=crt, key=key)
    eq((st, body), (200, {"state": "up", "heartbeat_s": S["cluster"]["heartbeat_s"]}), "heartbeat")
    st, n = request("GET", "/v1/nodes/node-0001", bearer=admin_token())
    eq((st, n["state"], n["s3_endpoint"], n["disks"][0]["name"], n["free_bytes"]),
       (200, "up", "http://127.0.0.1:9000", "vdb", 900), "node after heartbeat")
    expect_error(request("POST", "/v1/heartbeat", {"health": "ok"}), 401, "no_client_cert")
    expect_error(request("POST", "/v1/heartbeat", raw=b"nope", cert=crt, key=key), 400, "bad_request")
    # a certificate this CA did not sign is refused in the handshake or answered 401
    other = os.path.join(WORK, "other-ca")
    try:
        got = request("POST", "/v1/heartbeat", {}, cert=other + ".crt", key=other + ".key")
        expect_error(got, 401, "no_client_cert")
    except (ssl.SSLError, ConnectionError):
        pass


@suite.case("nodectl: token create, nodes, node, drain, remove; a removed node's cert gets 403")
def _():
    _, out, _ = nodectl("nodes")
    lines = out.strip().splitlines()
    check(lines[0].split()[:3] == ["ID", "STATE", "MACHINE"], "header: %r" % lines[0])
    check(any(l.split()[:2] == ["node-0001", "up"] for l in lines), "node-0001 up in: %s" % out)
    check(any(l.split()[:2] == ["node-0002", "joining"] for l in lines), "node-0002 joining in: %s" % out)
    _, out, _ = nodectl("node", "node-0001")
    eq(json.loads(out)["machine_id"], S["machine1"], "nodectl node")
    eq(nodectl("drain", "node-0001")[1].strip(), "node-0001 draining", "drain")
    crt, key = S["node1"]
    st, body = request("POST", "/v1/heartbeat", {}, cert=crt, key=key)
    eq((st, body.get("state")), (200, "draining"), "heartbeat of a draining node")
    eq(nodectl("remove", "node-0001")[1].strip(), "node-0001 gone", "remove")
    expect_error(request("POST", "/v1/heartbeat", {}, cert=crt, key=key), 403, "node_removed")
    rc, _, err = nodectl("drain", "node-0001", check_rc=False)
    check(rc == 1 and "node_removed" in err, "drain of a gone node: rc=%d %s" % (rc, err))
    rc, _, err = nodectl("remove", "node-0999", check_rc=False)
    check(rc == 1 and "no_such_node" in err, "remove of an unknown node: rc=%d %s" % (rc, err))
    # the removed machine may join again, under a new id
    highest = max(n["node_id"] for n in nodes())
    st, body = join(S["tok2"], S["machine1"])
    eq(st, 200, "re-join after remove (%r)" % (body,))
    check(body["node_id"] > highest, "a new id: %s after %s" % (body["node_id"], highest))
    check(re.search(r"ctl_node_remove node=node-0001", CTL.log()), "remove log line")


@suite.case("boot.ipxe on the boot port names the controller, the pin and the boot token")
def _():
    _, out, _ = nodectl("token", "create", "--ttl", "2h", "--uses", "10", "--boot")
    tok = out.strip()
    conn = http.client.HTTPConnection("127.0.0.1", CTL.boot_port, timeout=10)
    conn.request("GET", "/boot.ipxe")
    r = conn.getresponse()
    text = r.read().decode()
    conn.close()
    eq(r.status, 200, "GET /boot.ipxe")
    check(text.startswith("#!ipxe\n"), "script: %r" % text[:50])
    check(re.search(r"^kernel http://127\.0\.0\.1:%d/xen " % CTL.boot_port, text, re.M), text)
    want = "cairn.controller=127.0.0.1:%d cairn.token=%s cairn.ca-hash=%s" % (CTL.port, tok, S["pin"])
    check(re.search(r"^module http://127\.0\.0\.1:%d/vmlinuz console=hvc0 .*%s$" % (CTL.boot_port, re.escape(want)), text, re.M), text)
    check("@" not in text, "a placeholder left: %s" % text)
    eq(os.stat(state_file("boot.token")).st_mode & 0o777, 0o600, "boot.token mode")


@suite.case("pxe-snippet prints a dnsmasq config that dnsmasq accepts")
def _():
    _, out, _ = nodectl("pxe-snippet", "--subnet", "10.9.8.7/24", "--http", "http://10.9.8.1:8080")
    check("dhcp-range=10.9.8.0,proxy,255.255.255.0" in out, out)
    check("chain http://10.9.8.1:8080/boot.ipxe" in out, out)
    dnsmasq = shutil.which("dnsmasq") or ("/usr/sbin/dnsmasq" if os.path.exists("/usr/sbin/dnsmasq") else None)
    if dnsmasq:
        conf = os.path.join(WORK, "dnsmasq.conf")
        with open(conf, "w") as f:
            f.write(out)
        p = subprocess.run([dnsmasq, "--test", "--conf-file=" + conf], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        eq(p.returncode, 0, "dnsmasq --test: %s" % p.stdout.decode())
    else:
        log("dnsmasq not installed: syntax not checked")
    rc, _, _ = nodectl("pxe-snippet", "--subnet", "10.9.8.7", "--http", "http://x", check_rc=False)
    eq(rc, 2, "bad subnet: exit status")


@suite.case("restart (SIGTERM -> exit 0): nodes and tokens kept, a used token still refused")
def _():
    before = snapshot()[0]
    eq(CTL.stop(), 0, "exit status after SIGTERM")
    CTL.start()
    eq(snapshot()[0], before, "nodes after restart")
    expect_error(join(S["tok1"], "uuid-" + secrets.token_hex(8)), 401, "token_used")
    # node-0002 never heartbeated, node-0001 is still gone
    crt, key = S["node1"]
    expect_error(request("POST", "/v1/heartbeat", {}, cert=crt, key=key), 403, "node_removed")
    st, body = join(S["spare"], "uuid-" + secrets.token_hex(8))
    eq(st, 401, "the spare token was used before the restart (%r)" % (body,))


@suite.case("kill -9 right after a join reply: the node is there after restart")
def _():
    tok = new_token()
    m = "uuid-" + secrets.token_hex(8)
    st, body = join(tok, m)
    eq(st, 200, "join (%r)" % (body,))
    CTL.kill9()
    CTL.start()
    got = [(n["node_id"], n["machine_id"]) for n in nodes() if n["machine_id"] == m]
    eq(got, [(body["node_id"], m)], "the node after kill -9")
    expect_error(join(tok, "uuid-" + secrets.token_hex(8)), 401, "token_used")


@suite.case("a torn journal tail (crash mid-append) is cut at start")
def _():
    before = snapshot()
    eq(CTL.stop(), 0, "exit status after SIGTERM")
    with open(state_file("journal.log"), "ab") as f:
        f.write(b'{"op":"token","id":"00000000')
    CTL.start()
    eq(snapshot(), before, "state and journal after the torn tail")
    check("ctl_journal_torn_tail" in CTL.log(), "torn tail logged")


try:
    pass
finally:
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
