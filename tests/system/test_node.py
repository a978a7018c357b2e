#!/usr/bin/python3
"""System tests of the node image: boot it in QEMU (TCG, OVMF -> Xen EFI -> dom0; on qemu-arm64
U-Boot -> Xen EFI -> dom0), drive it from outside. Run by tests/system/run.sh (see
tests/system/README.md), for BOARD=qemu-x86_64 and then BOARD=qemu-arm64.

  1 boot          Xen + dom0 boot, /sys/hypervisor/type is xen, first-boot banner with keys
  2 s3            put/get/list through the forwarded port with boto3, sha256 compared
  3 console       root login on the serial console with the generated password, cairn-status
  3b supervisor   storagefsd killed with SIGKILL: restarted by its supervisor, S3 answers again
  4 power-cycle   QEMU killed (power cut), booted again on the same disks: objects intact,
                  no new keys (old keys and old password still work)
  5 poweroff      `poweroff` at the console stops storagefsd, unmounts the disks, QEMU exits
Environment: BUILD (build dir), BOARD (qemu-x86_64), BOOT_TIMEOUT (s, default 180).
Files in BUILD/system-test/ (BUILD/system-test-BOARD/ for another board than qemu-x86_64).
Prints figures (image size, QEMU start -> S3 ready, dom0 memory) and ends with
"N passed, N failed".
"""
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from console import Console  # noqa: E402

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.abspath(os.environ.get("BUILD", os.path.join(REPO, "build")))
BOARD = os.environ.get("BOARD", "qemu-x86_64")
BOOT_TIMEOUT = float(os.environ.get("BOOT_TIMEOUT", "180"))
WORK = os.path.join(BUILD, "system-test" if BOARD == "qemu-x86_64" else "system-test-" + BOARD)
IMG_DIR = os.path.join(BUILD, "image", BOARD)

results = []
figures = []


def log(msg):
    print("system: " + msg, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Node:
    """One QEMU run of the image on the disks in WORK/run."""

    def __init__(self, name):
        self.name = name
        self.port = free_port()
        self.sock = os.path.join(WORK, "console.sock")
        self.log = os.path.join(WORK, "console-%s.log" % name)
        for f in (self.sock, self.log):
            if os.path.exists(f):
                os.unlink(f)
        env = dict(os.environ, RUN_DIR=os.path.join(WORK, "run"), DISK_SIZE="1G",
                   S3_PORT=str(self.port), SERIAL="socket:" + self.sock, SERIAL_LOG=self.log,
                   QEMU_EXTRA="-no-reboot")
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(["bash", os.path.join(REPO, "image", "run-qemu.sh"), BOARD, BUILD],
                                     env=env, stdout=open(os.path.join(WORK, "qemu-%s.out" % name), "w"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.con = Console(self.sock, connect_timeout=60)

    def elapsed(self):
        return time.monotonic() - self.t0

    def s3(self, ak, sk):
        return boto3.client("s3", endpoint_url="http://127.0.0.1:%d" % self.port, aws_access_key_id=ak,
                            aws_secret_access_key=sk, region_name="us-east-1",
                            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2},
                                          connect_timeout=5, read_timeout=60))

    def wait_s3(self, ak, sk, timeout):
        """Polls the forwarded port until an authenticated ListBuckets succeeds; returns seconds
        since QEMU started."""
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
                time.sleep(0.25)

    def kill(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.con.close()


def case(name, fn):
    t = time.monotonic()
    try:
        fn()
        results.append((name, True))
        log("PASS %s (%.1f s)" % (name, time.monotonic() - t))
    except Exception as e:  # noqa: BLE001
        results.append((name, False))
        log("FAIL %s: %s" % (name, e))
        traceback.print_exc()


def sha(b):
    return hashlib.sha256(b).hexdigest()


OBJECTS = {"small.txt": b"hello from the host\n", "mid.bin": os.urandom(100 * 1024),
           "dir/large.bin": os.urandom(3 * 1024 * 1024 + 17)}
BUCKET = "system-test"
state = {}


def main():
    disk = os.path.join(IMG_DIR, "disk.img")
    if not os.path.exists(disk):
        log("%s not built: run `make image`" % disk)
        print("0 passed, 1 failed")
        return 1
    if os.path.isdir(WORK):
        shutil.rmtree(WORK)
    os.makedirs(WORK)
    zst = os.path.join(IMG_DIR, "disk.img.zst")
    figures.append("image: disk.img %.1f MiB raw, disk.img.zst %.1f MiB, initrd.img %.1f MiB" % (
        os.path.getsize(disk) / 2**20, os.path.getsize(zst) / 2**20 if os.path.exists(zst) else 0,
        os.path.getsize(os.path.join(IMG_DIR, "initrd.img")) / 2**20))

    node = Node("boot1")

    def boot():
        c = node.con
        c.expect(r"Xen version", BOOT_TIMEOUT)
        t_xen = node.elapsed()
        c.expect(r"^init started: BusyBox", BOOT_TIMEOUT)
        t_init = node.elapsed()
        ht = c.expect(r"^cairn: /sys/hypervisor/type=(\S*)\n", BOOT_TIMEOUT).group(1).decode()
        assert ht == "xen", "hypervisor type %r" % ht
        m = c.expect(r"CAIRN_ACCESS_KEY=(\S+)\n\s*CAIRN_SECRET_KEY=(\S+)\n\s*CAIRN_ROOT_PASSWORD=(\S+)\n", BOOT_TIMEOUT)
        state["ak"], state["sk"], state["pw"] = (g.decode() for g in m.groups())
        assert re.fullmatch(r"CAIRN[A-Z0-9]{15}", state["ak"]), state["ak"]
        assert len(state["sk"]) == 40 and len(state["pw"]) == 16
        c.expect(r"cairn: S3 ready", BOOT_TIMEOUT)
        t_console = node.elapsed()
        t_host = node.wait_s3(state["ak"], state["sk"], 60)
        figures.append("first boot: QEMU start -> Xen banner %.1f s, -> dom0 init %.1f s, -> 'S3 ready' on the console %.1f s, "
                       "-> first S3 answer on the host %.1f s" % (t_xen, t_init, t_console, t_host))

    case("boot: Xen dom0 up, hypervisor type xen, first-boot keys shown", boot)

    def s3_io():
        s3 = node.s3(state["ak"], state["sk"])
        s3.create_bucket(Bucket=BUCKET)
        for k, v in OBJECTS.items():
            s3.put_object(Bucket=BUCKET, Key=k, Body=v)
        for k, v in OBJECTS.items():
            got = s3.get_object(Bucket=BUCKET, Key=k)["Body"].read()
            assert sha(got) == sha(v), "sha256 of %s differs" % k
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))
        assert keys == sorted(OBJECTS), keys
        bad = node.s3(state["ak"], "x" * 40)
        try:
            bad.list_buckets()
            raise AssertionError("a wrong secret key was accepted")
        except bad.exceptions.ClientError:
            pass

    if state.get("ak"):
        case("s3: put/get/list through the forwarded port, sha256 equal", s3_io)

    def console():
        c = node.con
        c.login(state["pw"], timeout=60)
        rc, out = c.run("cat /sys/hypervisor/type", 20)
        assert out.strip() == "xen", out
        rc, out = c.run("cairn-status", 30)
        log("cairn-status:\n" + out.rstrip())
        assert rc == 0, out
        assert re.search(r"storagefsd:\s+running pid \d+, state: ready", out), out
        assert len(re.findall(r"^disk:\s+/data/\d", out, re.M)) == 4, out
        assert "hypervisor: xen" in out, out
        rc, out = c.run("free; grep -E 'MemTotal|MemAvailable' /proc/meminfo", 20)
        m = re.search(r"MemTotal:\s+(\d+).*\nMemAvailable:\s+(\d+)", out)
        figures.append("dom0 memory at idle: %d MiB total, %d MiB in use (MemTotal - MemAvailable)" % (
            int(m.group(1)) // 1024, (int(m.group(1)) - int(m.group(2))) // 1024))
        rc, out = c.run("logread | grep -c storagefsd", 20)
        assert int(out.strip() or 0) >= 1, "storagefsd logs not in syslog"

    def supervisor():
        c = node.con
        rc, out = c.run("kill -9 $(cat /run/cairn/storagefsd.pid)", 20)
        assert rc == 0, out
        c.expect(r"cairn: storagefsd exited \(status 137\)", 30)
        c.expect(r"cairn: S3 ready", 60)
        rc, out = c.run("cat /run/cairn/storagefsd.starts /run/cairn/storagefsd.state", 20)
        assert out.split() == ["2", "ready"], out
        node.s3(state["ak"], state["sk"]).head_object(Bucket=BUCKET, Key="small.txt")
        c.line("exit")

    if state.get("pw"):
        case("console: root login with the generated password, cairn-status", console)
        case("supervisor: storagefsd killed -> restarted, S3 back", supervisor)

    # Power cut: SIGKILL QEMU, boot again on the same disks.
    node.kill()
    node = Node("boot2")

    def power_cycle():
        c = node.con
        c.expect(r"^cairn: /sys/hypervisor/type=xen", BOOT_TIMEOUT)
        m = c.expect(r"(FIRST BOOT|S3 keys: in (\S+)/credentials)\b", BOOT_TIMEOUT)
        assert m.group(1) != b"FIRST BOOT", "keys were regenerated after the power cycle"
        assert b"CAIRN_SECRET_KEY=" not in node.con.buf, "the secret key was shown again"
        c.expect(r"cairn: S3 ready", BOOT_TIMEOUT)
        t_console = node.elapsed()
        t_host = node.wait_s3(state["ak"], state["sk"], 60)
        figures.append("second boot: QEMU start -> 'S3 ready' on the console %.1f s, -> first S3 answer %.1f s" % (
            t_console, t_host))
        s3 = node.s3(state["ak"], state["sk"])
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))
        assert keys == sorted(OBJECTS), keys
        for k, v in OBJECTS.items():
            got = s3.get_object(Bucket=BUCKET, Key=k)["Body"].read()
            assert sha(got) == sha(v), "sha256 of %s differs after the power cycle" % k
        c.login(state["pw"], timeout=60)  # the old password still works

    if state.get("ak"):
        case("power-cycle: objects survive, keys and password not regenerated", power_cycle)

    def poweroff():
        c = node.con
        if not re.search(rb"(root@[^\n]*# |\\u@.*\$ )$", c.buf):
            c.login(state["pw"], timeout=60)
        c.line("poweroff")
        c.expect(r"cairn: data disks unmounted", 90)
        node.proc.wait(timeout=90)

    if state.get("pw"):
        case("poweroff: clean shutdown, QEMU exits", poweroff)
    node.kill()

    log("figures (board %s):" % BOARD)
    for f in figures:
        log("  " + f)
    passed = sum(1 for _, ok in results if ok)
    print("%d passed, %d failed" % (passed, len(results) - passed))
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
