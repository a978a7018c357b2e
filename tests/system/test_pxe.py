#!/usr/bin/python3
"""System test of provisioning (docs/ARCHITECTURE.md "Provisioning"): a diskless QEMU VM with
two blank virtual disks network-boots from a cairn-controller running on this host, joins,
formats its disks and serves S3; then it is power-cycled and must come back as the same node
with its data.

  1 pxe-join     BIOS PXE (QEMU's iPXE ROM) -> TFTP chain.ipxe -> the controller's boot.ipxe
                 over HTTP -> Xen + dom0 + initramfs -> cairn-provd: pin check, join, mkfs,
                 storagefsd; the controller lists the node `up` with its inventory (2 disks,
                 the VM's MAC); nothing but blank disks was formatted
  2 s3           put/get through the forwarded port with the cluster's keys
  3 rejoin       QEMU killed (power cut) and booted again the same way: same node id, no new
                 token used, objects intact
Environment: BUILD, BOARD (qemu-x86_64), BOOT_TIMEOUT (s, default 240). QEMU's user network
only: the guest reaches the host's loopback as 10.0.2.2, nothing else is touched.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# the same case/log/figures harness as test_node.py (one summary format)
from test_node import case, figures, free_port, log, results, sha  # noqa: E402
import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.abspath(os.environ.get("BUILD", os.path.join(REPO, "build")))
BOARD = os.environ.get("BOARD", "qemu-x86_64")
BOOT_TIMEOUT = float(os.environ.get("BOOT_TIMEOUT", "240"))
WORK = os.path.join(BUILD, "system-test-pxe")
PXE_DIR = os.path.join(BUILD, "image", BOARD, "pxe")
CONTROLLER = os.path.join(BUILD, "host", "cairn-controller")
NODECTL = os.path.join(BUILD, "host", "cairn-nodectl")
MAC = "52:54:00:c4:12:01"

state = {}






class Controller:
    def __init__(self):
        self.state = os.path.join(WORK, "ctl")
        self.port = free_port()
        self.boot_port = free_port()
        self.log = open(os.path.join(WORK, "controller.log"), "w+")
        self.proc = subprocess.Popen(
            [CONTROLLER, "--state", self.state, "--listen", "127.0.0.1:%d" % self.port,
             "--boot-listen", "127.0.0.1:%d" % self.boot_port, "--boot-dir", PXE_DIR,
             # what the guest must dial: QEMU's user network maps 10.0.2.2 to the host
             "--advertise", "10.0.2.2:%d" % self.port],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while "ready listen=" not in self.text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("controller did not start: %s" % self.text()[-2000:])
            time.sleep(0.1)

    def text(self):
        with open(self.log.name) as f:
            return f.read()

    def nodectl(self, *args):
        r = subprocess.run([NODECTL, "--controller", "127.0.0.1:%d" % self.port, "--state", self.state]
                           + list(args), capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError("nodectl %s: exit %d: %s" % (" ".join(args), r.returncode, r.stderr))
        return r.stdout

    def node(self, node_id):
        return json.loads(self.nodectl("node", node_id))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


class VM:
    """One power-on of the diskless VM: BIOS PXE through QEMU's TFTP, then HTTP."""

    def __init__(self, name, ctl):
        self.s3_port = free_port()
        self.console = os.path.join(WORK, "console-%s.log" % name)
        tftp = os.path.join(WORK, "tftp")
        os.makedirs(tftp, exist_ok=True)
        with open(os.path.join(tftp, "chain.ipxe"), "w") as f:
            f.write("#!ipxe\nchain http://10.0.2.2:%d/boot.ipxe\n" % ctl.boot_port)
        cmd = ["qemu-system-x86_64", "-machine", "q35", "-accel", "tcg,thread=multi", "-smp", "1",
               "-m", "1024", "-display", "none", "-monitor", "none", "-vga", "none",
               "-serial", "file:" + self.console, "-no-reboot", "-boot", "n",
               "-netdev", "user,id=n0,tftp=%s,bootfile=chain.ipxe,hostfwd=tcp:127.0.0.1:%d-:9000"
               % (tftp, self.s3_port),
               "-device", "virtio-net-pci,netdev=n0,mac=" + MAC, "-device", "virtio-rng-pci"]
        for i in (1, 2):
            cmd += ["-drive", "file=%s,format=raw,if=virtio,cache=writeback"
                    % os.path.join(WORK, "blank%d.img" % i)]
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=open(os.path.join(WORK, "qemu-%s.out" % name), "w"),
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def elapsed(self):
        return time.monotonic() - self.t0

    def text(self):
        try:
            with open(self.console, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_console(self, pattern, timeout):
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.text(), re.M)
            if m:
                return m
            if self.proc.poll() is not None:
                raise RuntimeError("QEMU exited (%s) before %r; console tail:\n%s"
                                   % (self.proc.returncode, pattern, self.text()[-3000:]))
            if time.monotonic() > deadline:
                raise RuntimeError("no %r on the console within %d s; tail:\n%s"
                                   % (pattern, timeout, self.text()[-3000:]))
            time.sleep(0.5)

    def s3(self, ak, sk):
        return boto3.client("s3", endpoint_url="http://127.0.0.1:%d" % self.s3_port,
                            aws_access_key_id=ak, aws_secret_access_key=sk, region_name="us-east-1",
                            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2},
                                          connect_timeout=5, read_timeout=60))

    def wait_s3(self, ak, sk, timeout):
        c = self.s3(ak, sk)
        deadline = time.monotonic() + timeout
        while True:
            try:
                c.list_buckets()
                return self.elapsed()
            except Exception:
                if time.monotonic() > deadline:
                    raise
                if self.proc.poll() is not None:
                    raise RuntimeError("QEMU exited (%s)" % self.proc.returncode)
                time.sleep(0.5)

    def kill(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def wait_node_up(ctl, timeout):
    deadline = time.monotonic() + timeout
    while True:
        out = ctl.nodectl("nodes")
        m = re.search(r"^(node-\d+)\s+up\b", out, re.M)
        if m:
            return m.group(1)
        if time.monotonic() > deadline:
            raise RuntimeError("no node up within %d s:\n%s" % (timeout, out))
        time.sleep(1)


OBJECTS = {"pxe/small.txt": b"joined over the network\n", "pxe/big.bin": os.urandom(2 * 1024 * 1024 + 5)}


def main():
    for f in (os.path.join(PXE_DIR, "xen"), os.path.join(PXE_DIR, "boot.ipxe.in"), CONTROLLER, NODECTL):
        if not os.path.exists(f):
            log("%s missing: run `make image host`" % f)
            print("0 passed, 1 failed")
            return 1
    if os.path.isdir(WORK):
        shutil.rmtree(WORK)
    os.makedirs(WORK)
    for i in (1, 2):    # blank disks: sparse zeros
        with open(os.path.join(WORK, "blank%d.img" % i), "wb") as f:
            f.truncate(2 << 30)
    ctl = Controller()
    cluster = json.load(open(os.path.join(ctl.state, "cluster.json")))
    ak, sk = cluster["access_key"], cluster["secret_key"]
    ctl.nodectl("token", "create", "--ttl", "30m", "--uses", "1", "--boot")
    vm = VM("boot1", ctl)

    def pxe_join():
        vm.wait_console(r"Xen version", BOOT_TIMEOUT)
        t_xen = vm.elapsed()
        vm.wait_console(r"provd_step step=identity node_id=(node-\d+) .*source=join", BOOT_TIMEOUT)
        t_join = vm.elapsed()
        node_id = wait_node_up(ctl, BOOT_TIMEOUT)
        state["node"] = node_id
        t_s3 = vm.wait_s3(ak, sk, BOOT_TIMEOUT)
        n = ctl.node(node_id)
        inv = n.get("inventory", {})
        names = sorted(d.get("name") for d in inv.get("disks", []))
        assert names == ["vda", "vdb"], "inventory disks %r" % names
        macs = [x.get("mac", "").lower() for x in inv.get("nics", [])]
        assert MAC in macs, "inventory NICs %r" % macs
        assert n.get("state") == "up", n.get("state")
        for i in (1, 2):
            with open(os.path.join(WORK, "blank%d.img" % i), "rb") as f:
                f.seek(1080)
                assert f.read(2) == b"\x53\xef", "disk %d has no ext superblock after the join" % i
        figures.append("power-on -> Xen %.1f s, -> joined %.1f s, -> S3 answering %.1f s (goal 30 s)"
                       % (t_xen, t_join, t_s3))

    case("pxe-join: network boot, pin check, join, blank disks formatted, node up with inventory",
         pxe_join)

    def s3_io():
        c = vm.s3(ak, sk)
        c.create_bucket(Bucket="pxe")
        for k, v in OBJECTS.items():
            c.put_object(Bucket="pxe", Key=k, Body=v)
        for k, v in OBJECTS.items():
            assert sha(c.get_object(Bucket="pxe", Key=k)["Body"].read()) == sha(v), k

    if state.get("node"):
        case("s3: put/get with the cluster's keys", s3_io)

    def rejoin():
        nonlocal vm
        vm.kill()
        vm = VM("boot2", ctl)
        vm.wait_console(r"provd_step step=identity node_id=(node-\d+) .*source=saved", BOOT_TIMEOUT)
        got = vm.wait_console(r"provd_step step=identity node_id=(node-\d+)", 1).group(1)
        assert got == state["node"], "came back as %s, was %s" % (got, state["node"])
        vm.wait_s3(ak, sk, BOOT_TIMEOUT)
        c = vm.s3(ak, sk)
        for k, v in OBJECTS.items():
            assert sha(c.get_object(Bucket="pxe", Key=k)["Body"].read()) == sha(v), k
        out = ctl.nodectl("nodes")
        assert len(re.findall(r"^node-\d+", out, re.M)) == 1, "more than one node:\n" + out

    if state.get("node"):
        case("rejoin: power cut, PXE again: same node id, no new join, objects intact", rejoin)
    vm.kill()
    ctl.stop()
    log("figures:")
    for f in figures:
        log("  " + f)
    passed = sum(1 for _, ok in results if ok)
    print("%d passed, %d failed" % (passed, len(results) - passed))
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
