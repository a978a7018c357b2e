#!/usr/bin/python3
"""System test of the seed role (docs/ARCHITECTURE.md "Provisioning", rootfs cairn-seed): a node
booted from its disk image becomes the controller of a rack, and a diskless server network-boots
from it, joins its cluster and serves S3. No controller runs on the host: the host only forwards
ports (QEMU user networking), so VM2 reaches VM1 at 10.0.2.2:<forwarded port>.

  1 boot       VM1 boots the disk image (image/run-qemu.sh, four data disks, its controller and
               boot ports forwarded); the ESP is mounted read-only at /boot; S3 ready
  2 seed       at VM1's console: `cairn-seed --advertise 10.0.2.2:CTL --uses 1` prints the CA
               pin, the token's expiry and the dnsmasq snippet; the host fetches boot.ipxe
               through the forward: it carries the advertised controller, the token and the pin
  3 pxe-join   VM2 (BIOS, QEMU's iPXE ROM, QEMU TFTP chain.ipxe -> VM1's boot.ipxe, two blank
               disks) boots Xen + dom0 from VM1's ESP files, joins VM1's controller, formats its
               disks, serves S3 with the cluster's keys (read from VM1's cluster.json)
  4 status     `cairn-seed --status` at VM1's console: role on, VM2's node up; VM2 (network-
               booted, no ESP) refuses to be a seed and says why
  5 persist    VM1 power-cut and booted again: the controller comes back by itself (the role is
               on the first data disk), same CA pin, VM2's node up again (its heartbeats);
               cairn-seed again: the controller is kept, same pin, a new token
  6 off        `cairn-seed --off`: the boot port closes, --status says off, the state is kept
  7 on-again   `cairn-seed` again: the same CA; then `poweroff` stops the controller before
               the data disks are unmounted, and QEMU exits
Environment: BUILD, BOARD (qemu-x86_64), BOOT_TIMEOUT (s, default 240).
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# the same case/log/figures harness as test_node.py (one summary format)
from test_node import case, figures, free_port, log, results, sha  # noqa: E402
from console import Console  # noqa: E402

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.abspath(os.environ.get("BUILD", os.path.join(REPO, "build")))
BOARD = os.environ.get("BOARD", "qemu-x86_64")
BOOT_TIMEOUT = float(os.environ.get("BOOT_TIMEOUT", "240"))
WORK = os.path.join(BUILD, "system-test-seed")
IMG_DIR = os.path.join(BUILD, "image", BOARD)
MAC2 = "52:54:00:c4:5e:02"

state = {}






def s3_client(port, ak, sk):
    return boto3.client("s3", endpoint_url="http://127.0.0.1:%d" % port, aws_access_key_id=ak,
                        aws_secret_access_key=sk, region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2},
                                      connect_timeout=5, read_timeout=60))


def wait_s3(vm, ak, sk, timeout):
    c = s3_client(vm.s3_port, ak, sk)
    deadline = time.monotonic() + timeout
    while True:
        try:
            c.list_buckets()
            return vm.elapsed()
        except Exception:
            if time.monotonic() > deadline:
                raise
            if vm.proc.poll() is not None:
                raise RuntimeError("QEMU exited (%s)" % vm.proc.returncode)
            time.sleep(0.5)


class VM:
    def elapsed(self):
        return time.monotonic() - self.t0

    def kill(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.con.close()

    def start(self, name, cmd, env=None):
        self.sock = os.path.join(WORK, "console-%s.sock" % name)
        self.log = os.path.join(WORK, "console-%s.log" % name)
        for f in (self.sock, self.log):
            if os.path.exists(f):
                os.unlink(f)
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(cmd, env=env, stdout=open(os.path.join(WORK, "qemu-%s.out" % name), "w"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.con = Console(self.sock, connect_timeout=60)


class Seed(VM):
    """VM1: the disk image on the disks in WORK/run (image/run-qemu.sh), with the controller's
    API and boot ports forwarded to fixed host ports (the same at every boot)."""

    def __init__(self, name, ctl_port, boot_port):
        self.s3_port = free_port()
        sock = os.path.join(WORK, "console-%s.sock" % name)
        env = dict(os.environ, RUN_DIR=os.path.join(WORK, "run"), DISK_SIZE="1G",
                   S3_PORT=str(self.s3_port), SERIAL="socket:" + sock,
                   SERIAL_LOG=os.path.join(WORK, "console-%s.log" % name), QEMU_EXTRA="-no-reboot",
                   EXTRA_HOSTFWD="tcp:127.0.0.1:%d-:7443 tcp:127.0.0.1:%d-:8080" % (ctl_port, boot_port))
        self.start(name, ["bash", os.path.join(REPO, "image", "run-qemu.sh"), BOARD, BUILD], env)


class Server(VM):
    """VM2: diskless, two blank disks, BIOS PXE: QEMU's TFTP gives chain.ipxe, which chain-loads
    VM1's boot.ipxe through the host's forward."""

    def __init__(self, name, boot_port):
        self.s3_port = free_port()
        tftp = os.path.join(WORK, "tftp")
        os.makedirs(tftp, exist_ok=True)
        with open(os.path.join(tftp, "chain.ipxe"), "w") as f:
            f.write("#!ipxe\nchain http://10.0.2.2:%d/boot.ipxe\n" % boot_port)
        sock = os.path.join(WORK, "console-%s.sock" % name)
        cmd = ["qemu-system-x86_64", "-machine", "q35", "-accel", "tcg,thread=multi", "-smp", "1",
               "-m", "1024", "-display", "none", "-monitor", "none", "-vga", "none",
               "-chardev", "socket,id=con0,path=%s,server=on,wait=off,logfile=%s"
               % (sock, os.path.join(WORK, "console-%s.log" % name)),
               "-serial", "chardev:con0", "-no-reboot", "-boot", "n",
               "-netdev", "user,id=n0,tftp=%s,bootfile=chain.ipxe,hostfwd=tcp:127.0.0.1:%d-:9000"
               % (tftp, self.s3_port),
               "-device", "virtio-net-pci,netdev=n0,mac=" + MAC2, "-device", "virtio-rng-pci"]
        for i in (1, 2):
            cmd += ["-drive", "file=%s,format=raw,if=virtio,cache=writeback"
                    % os.path.join(WORK, "blank%d.img" % i)]
        self.start(name, cmd)


def run(con, cmd, timeout=60):
    rc, out = con.run(cmd, timeout)
    log("$ %s (exit %d)\n%s" % (cmd, rc, out.rstrip()))
    return rc, out


def seed_status_until(con, pattern, timeout):
    """Runs cairn-seed --status at the console until its output matches pattern."""
    deadline = time.monotonic() + timeout
    while True:
        rc, out = con.run("cairn-seed --status", 60)
        m = re.search(pattern, out, re.M)
        if m:
            log("cairn-seed --status:\n" + out.rstrip())
            return m, out
        if time.monotonic() > deadline:
            raise RuntimeError("no %r in cairn-seed --status within %d s:\n%s" % (pattern, timeout, out))
        time.sleep(3)


def http_get(port, path, timeout=30):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=timeout) as r:
        return r.read()


OBJECTS = {"seed/small.txt": b"booted from a seed node\n", "seed/big.bin": os.urandom(1024 * 1024 + 3)}


def main():
    if not os.path.exists(os.path.join(IMG_DIR, "disk.img")):
        log("%s/disk.img not built: run `make image`" % IMG_DIR)
        print("0 passed, 1 failed")
        return 1
    if os.path.isdir(WORK):
        shutil.rmtree(WORK)
    os.makedirs(WORK)
    for i in (1, 2):    # VM2's blank disks: sparse zeros
        with open(os.path.join(WORK, "blank%d.img" % i), "wb") as f:
            f.truncate(2 << 30)
    ctl_port, boot_port = free_port(), free_port()
    vms = []
    t_start = time.monotonic()

    def boot():
        vm1 = Seed("seed1", ctl_port, boot_port)
        vms.append(vm1)
        c = vm1.con
        c.expect(r"^cairn: \[[0-9.]+\] boot partition: (/dev/\S+) mounted read-only at /boot", BOOT_TIMEOUT)
        m = c.expect(r"CAIRN_ACCESS_KEY=(\S+)\n\s*CAIRN_SECRET_KEY=(\S+)\n\s*CAIRN_ROOT_PASSWORD=(\S+)\n", BOOT_TIMEOUT)
        state["ak"], state["sk"], state["pw"] = (g.decode() for g in m.groups())
        c.expect(r"cairn: S3 ready", BOOT_TIMEOUT)
        wait_s3(vm1, state["ak"], state["sk"], 60)
        figures.append("VM1 (disk image): QEMU start -> S3 answering %.1f s" % vm1.elapsed())
        c.login(state["pw"], timeout=60)
        rc, out = run(c, "grep ' /boot ' /proc/mounts; ls /boot/EFI/CAIRN /boot/EFI/BOOT")
        assert rc == 0 and re.search(r"^\S+ /boot vfat ro,", out, re.M), out
        assert "boot.ipxe.in" in out and "xen" in out and "vmlinuz" in out and "initrd.img" in out, out

    case("boot: the disk image boots, ESP read-only at /boot with the PXE bundle, S3 ready", boot)

    def seed():
        c = vms[0].con
        rc, out = run(c, "cairn-seed --help")
        assert rc == 0 and "--advertise HOST:PORT" in out and "--off" in out, out
        rc, out = run(c, "cairn-seed --advertise 10.0.2.2:%d --uses 1" % ctl_port, 120)
        assert rc == 0, out
        pin = re.search(r"^CA pin:\s+(sha256:[0-9a-f]{64})$", out, re.M)
        assert pin, out
        state["pin"] = pin.group(1)
        assert re.search(r"^\s+expires \d{4}-\d\d-\d\dT[0-9:]+Z, 1 use, in boot.ipxe", out, re.M), out
        assert re.search(r"^dhcp-range=10\.0\.2\.0,proxy,255\.255\.255\.0$", out, re.M), out
        rc, out = run(c, "cat /data/1/.cairn-controller/cluster.json")
        assert rc == 0, out
        cl = json.loads(re.search(r"\{.*\}", out, re.S).group(0))
        state["cak"], state["csk"] = cl["access_key"], cl["secret_key"]
        assert state["cak"] != state["ak"]
        script = http_get(boot_port, "/boot.ipxe").decode()
        log("boot.ipxe from VM1:\n" + script.rstrip())
        assert "cairn.controller=10.0.2.2:%d " % ctl_port in script, script
        assert re.search(r"cairn\.token=cjt1\.[0-9a-f]{16}\.[0-9a-f]{32}\b", script), script
        assert "cairn.ca-hash=%s" % state["pin"] in script, script
        assert "kernel http://127.0.0.1:%d/xen " % boot_port in script, script
        xen = http_get(boot_port, "/xen")
        with open(os.path.join(IMG_DIR, "pxe", "xen"), "rb") as f:
            assert sha(xen) == sha(f.read()), "the xen VM1 serves is not the image's pxe/xen"

    if state.get("pw"):
        case("seed: cairn-seed starts the controller, prints pin, expiry, dnsmasq snippet; boot.ipxe carries them",
             seed)

    def pxe_join():
        vm2 = Server("server1", boot_port)
        vms.append(vm2)
        c = vm2.con
        c.expect(r"Xen version", BOOT_TIMEOUT)
        t_xen = vm2.elapsed()
        m = c.expect(r"provd_step step=identity node_id=(node-\d+) .*source=join", BOOT_TIMEOUT)
        state["node"] = m.group(1).decode()
        t_join = vm2.elapsed()
        # (printed by rcS before provd joined)
        m = re.search(rb"FIRST BOOT: console root password, shown only this once: (\S+)", c.buf)
        assert m, "no first-boot root password on VM2's console"
        state["pw2"] = m.group(1).decode()
        t_s3 = wait_s3(vm2, state["cak"], state["csk"], BOOT_TIMEOUT)
        s3 = s3_client(vm2.s3_port, state["cak"], state["csk"])
        s3.create_bucket(Bucket="seeded")
        for k, v in OBJECTS.items():
            s3.put_object(Bucket="seeded", Key=k, Body=v)
        for k, v in OBJECTS.items():
            assert sha(s3.get_object(Bucket="seeded", Key=k)["Body"].read()) == sha(v), k
        for i in (1, 2):
            with open(os.path.join(WORK, "blank%d.img" % i), "rb") as f:
                f.seek(1080)
                assert f.read(2) == b"\x53\xef", "VM2's disk %d has no ext superblock after the join" % i
        figures.append("VM2 (network boot from VM1): power-on -> Xen %.1f s, -> joined %.1f s, -> S3 answering %.1f s"
                       % (t_xen, t_join, t_s3))

    if state.get("pin"):
        case("pxe-join: VM2 boots from VM1's bundle, joins VM1's controller, serves S3 with the cluster keys",
             pxe_join)

    def status():
        seed_status_until(vms[0].con, r"^%s\s+up\b" % state["node"], 90)
        _, out = run(vms[0].con, "cairn-seed --status")
        assert re.search(r"^seed role:\s+on\b", out, re.M), out
        assert re.search(r"^CA pin:\s+%s$" % state["pin"], out, re.M), out
        c2 = vms[1].con
        c2.login(state["pw2"], timeout=60)
        rc, out = run(c2, "cairn-seed")
        assert rc == 1 and "network-booted" in out and "cannot be a seed" in out, out

    if state.get("node"):
        case("status: cairn-seed --status lists VM2's node up; a network-booted node refuses the role", status)

    def persist():
        vms[0].kill()
        vm1 = Seed("seed2", ctl_port, boot_port)
        vms[0] = vm1
        c = vm1.con
        c.expect(r"cairn: controller: .*ready listen=", BOOT_TIMEOUT)
        figures.append("VM1 second boot: QEMU start -> controller ready %.1f s" % vm1.elapsed())
        c.login(state["pw"], timeout=60)
        # VM2 heartbeats every 10 s: it is up again at the restarted controller.
        m, out = seed_status_until(c, r"^%s\s+up\b" % state["node"], 90)
        assert re.search(r"^CA pin:\s+%s$" % state["pin"], out, re.M), "the CA changed:\n" + out
        assert len(re.findall(r"^node-\d+", out, re.M)) == 1, out
        script = http_get(boot_port, "/boot.ipxe").decode()
        assert "cairn.ca-hash=%s" % state["pin"] in script, script
        # Again with the role on: same controller (not restarted), same CA, a new token.
        rc, out = run(c, "cairn-seed --advertise 10.0.2.2:%d --ttl 10m --uses 2" % ctl_port, 120)
        assert rc == 0 and "seed role already on, controller ready" in out, out
        assert re.search(r"^CA pin:\s+%s$" % state["pin"], out, re.M), out
        assert re.search(r"^\s+expires \S+, 2 uses, in boot.ipxe", out, re.M), out

    if state.get("node"):
        case("persist: VM1 power-cut: the controller is back at boot, same CA, VM2's node up again", persist)

    def off():
        c = vms[0].con
        rc, out = run(c, "cairn-seed --off", 60)
        assert rc == 0, out
        rc, out = run(c, "cairn-seed --status")
        assert re.search(r"^seed role:\s+off \(the controller state is kept in /data/1/\.cairn-controller", out, re.M), out
        try:
            http_get(boot_port, "/boot.ipxe", timeout=10)
            raise AssertionError("the boot port still answers after cairn-seed --off")
        except OSError:
            pass
        rc, out = run(c, "ls /data/1/.cairn-controller; logread | grep cairn-seed")
        assert "ca.crt" in out and "journal.log" in out, out
        assert "seed role off: stopping the controller" in out, "--off not logged:\n" + out

    if state.get("node"):
        case("off: cairn-seed --off closes the boot port, status off, state kept", off)

    def on_again_poweroff():
        c = vms[0].con
        rc, out = run(c, "cairn-seed", 120)
        assert rc == 0 and "reusing the controller state in /data/1/.cairn-controller" in out, out
        assert re.search(r"^CA pin:\s+%s$" % state["pin"], out, re.M), "the CA changed:\n" + out
        c.line("poweroff")
        c.expect(r"cairn: stopping the seed controller", 60)
        c.expect(r"cairn: data disks unmounted", 90)
        vms[0].proc.wait(timeout=90)

    if state.get("node"):
        case("on-again + poweroff: the same cluster comes back; poweroff stops the controller, disks unmounted",
             on_again_poweroff)

    for vm in vms:
        vm.kill()
    figures.append("whole test: %.0f s" % (time.monotonic() - t_start))
    log("figures:")
    for f in figures:
        log("  " + f)
    passed = sum(1 for _, ok in results if ok)
    print("%d passed, %d failed" % (passed, len(results) - passed))
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
