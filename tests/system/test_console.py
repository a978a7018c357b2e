#!/usr/bin/python3
"""System test of the maintenance console (cairn-console, cairn-ipmi): boot the disk image in
QEMU with an emulated BMC (ipmi-bmc-sim behind a KCS interface), log in on the serial console
(a QEMU socket chardev) and drive it like an operator would. Run by tests/system/run.sh.

  1 boot         first boot with the BMC: keys shown, S3 ready
  2 menu         cairn-console's menu: each screen's title and answer (status, disks, network,
                 S3, logs, IPMI), Enter sent as CR, q/0 back, back to the shell
  3 commands     the same non-interactively: status, disks, heal, net show, logs --grep,
                 s3 show (secret only with --show-secret), exit status of a bad command
  4 ipmi         ipmi info (the BMC's manufacturer and product as QEMU was given them),
                 sensors (the simulator's watchdog), sel, sol (not in the simulator: refused)
  5 disk         disk out 4: storagefsd marks it offline; disk in 4: online again; S3 works
  6 network      net static (the same address QEMU's DHCP gave) then net dhcp; S3 reachable
  7 reset        factory-reset refuses a wrong hostname and keeps the keys
  7b rotate      s3 rotate: new keys work once storagefsd restarted, the old ones are refused
  8 logged       every action above is in syslog (logger -t cairn-console)
  9 wipe         factory-reset --wipe-data-disks (hostname, then "erase all data"): init stops
                 the daemons, the disks are formatted, the node reboots into a first boot
                 (new keys and password, no bucket, DHCP again)
 10 poweroff     cairn-console poweroff --yes: clean shutdown, QEMU exits
Environment: BUILD (build dir), BOARD (qemu-x86_64), BOOT_TIMEOUT (s, default 180).
Ends with "N passed, N failed".
"""
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_node  # noqa: E402  (case, log, results, Node.s3/wait_s3: the same harness)
from console import Console  # noqa: E402
from test_node import case, log, results  # noqa: E402

BMC_MFG, BMC_PRODUCT = 4242, 77
WORK = os.path.join(test_node.BUILD, "system-test-console")
# The BMC: QEMU's simulated one behind a KCS interface (ACPI tells the kernel where).
QEMU_EXTRA = ("-no-reboot -device ipmi-bmc-sim,id=bmc0,mfg_id=%d,product_id=%d "
              "-device isa-ipmi-kcs,bmc=bmc0" % (BMC_MFG, BMC_PRODUCT))
state = {}


class Node(test_node.Node):
    """test_node's QEMU run, with the BMC and its own work directory."""

    def __init__(self, boot=1):  # (not super().__init__: that one starts QEMU without the BMC)
        self.name = "console"
        self.port = test_node.free_port()
        self.sock = os.path.join(WORK, "console.sock")
        self.log = os.path.join(WORK, "console-boot%d.log" % boot)
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        env = dict(os.environ, RUN_DIR=os.path.join(WORK, "run"), DISK_SIZE="1G",
                   S3_PORT=str(self.port), SERIAL="socket:" + self.sock, SERIAL_LOG=self.log,
                   QEMU_EXTRA=QEMU_EXTRA)
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(["bash", os.path.join(test_node.REPO, "image", "run-qemu.sh"),
                                      test_node.BOARD, test_node.BUILD], env=env,
                                     stdout=open(os.path.join(WORK, "qemu-boot%d.out" % boot), "w"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.con = Console(self.sock, connect_timeout=60)


def main():
    disk = os.path.join(test_node.IMG_DIR, "disk.img")
    if not os.path.exists(disk):
        log("%s not built: run `make image`" % disk)
        print("0 passed, 1 failed")
        return 1
    if os.path.isdir(WORK):
        shutil.rmtree(WORK)
    os.makedirs(WORK)
    node = Node()
    c = node.con

    def boot():
        m = c.expect(r"CAIRN_ACCESS_KEY=(\S+)\n\s*CAIRN_SECRET_KEY=(\S+)\n\s*CAIRN_ROOT_PASSWORD=(\S+)\n",
                     test_node.BOOT_TIMEOUT)
        state["ak"], state["sk"], state["pw"] = (g.decode() for g in m.groups())
        c.expect(r"cairn: S3 ready", test_node.BOOT_TIMEOUT)
        node.wait_s3(state["ak"], state["sk"], 60)
        c.login(state["pw"], timeout=60)
        state["host"] = c.run("hostname", 20)[1].strip()

    case("boot: first boot with an emulated BMC, login", boot)
    if not state.get("host"):
        return finish(node)

    def screen(choice, *patterns, enter="\r"):
        """Sends a menu choice, waits for each pattern in order; Enter (CR) after an action."""
        c.send(choice + "\r")
        for p in patterns:
            c.expect(p, 30)
        if enter is not None:
            c.expect(r"-- Enter: back to the menu --", 30)
            c.send(enter)

    def menu():
        c.line("cairn-console")
        c.expect(r"Main menu\n=+\n", 20)
        c.expect(r"Choice: $", 20)
        screen("1", r"== Node status ==", r"^node:\s+%s" % re.escape(state["host"]), r"^health:\s+OK")
        c.expect(r"Main menu", 20)
        screen("3", r" Disks\n", r"Choice: $", enter=None)
        screen("1", r"== Data disks ==", r"^disk 1: /data/1 on /dev/vd\w+\s+online", r"^disk 4: /data/4 ")
        screen("2", r"== Heal, scrub and rebuild ==", r"^disk /data/1:")
        screen("q", r"Main menu", r"Choice: $", enter=None)
        screen("2", r" Network\n", r"Choice: $", enter=None)
        screen("1", r"== Network ==", r"^address:\s+10\.0\.2\.15/24", r"^gateway:\s+10\.0\.2\.2")
        screen("0", r"Main menu", r"Choice: $", enter=None)
        screen("5", r" S3 endpoint and keys\n", r"Choice: $", enter=None)
        screen("1", r"^access key:\s+%s" % state["ak"], r"^secret key:\s+\(hidden")
        screen("0", r"Main menu", r"Choice: $", enter=None)
        screen("6", r" Logs\n", r"Choice: $", enter=None)
        c.send("2\r")
        c.expect(r"Pattern: $", 20)
        screen("storagefsd", r"storagefsd.*ready listen=")
        screen("0", r"Main menu", r"Choice: $", enter=None)
        screen("7", r" IPMI / BMC\n", r"Choice: $", enter=None)
        screen("1", r"== BMC ==", r"^manufacturer:\s+%d " % BMC_MFG, r"^chassis power: on")
        screen("2", r"== Sensors ==", r"^Watchdog\s+#\d+\s+Watchdog 2", r"^1 sensors")
        screen("0", r"Main menu", r"Choice: $", enter=None)
        screen("42", r"No item '42'\.", r"Choice: $", enter=None)
        screen("q", r"back to the shell", enter=None)
        rc, out = c.run("echo shell-ok", 20)
        assert out.strip() == "shell-ok", out

    case("menu: every screen answers, CR as Enter, q/0 back, back to the shell", menu)

    def commands():
        rc, out = c.run("cairn-console status", 30)
        assert rc == 0 and re.search(r"^health:\s+OK", out, re.M), out
        assert re.search(r"^cluster:\s+none \(standalone node\)", out, re.M), out
        rc, out = c.run("cairn-console disks", 30)
        assert rc == 0, out
        assert len(re.findall(r"^disk \d: /data/\d on /dev/vd\w+\s+online\s+\d+ MiB", out, re.M)) == 4, out
        assert re.search(r"^\s+I/O: \d+ reads", out, re.M), out
        rc, out = c.run("cairn-console heal", 30)
        assert rc == 0 and out.count("disk /data/") == 4, out
        assert re.search(r"scrub\s+(\[[#.]{20}\]\s+\d+%|no pass logged yet)", out), out
        rc, out = c.run("cairn-console net show", 20)
        assert rc == 0 and re.search(r"mode: dhcp", out), out
        rc, out = c.run("cairn-console logs --grep 'S3 ready|ready listen' -n 3", 20)
        lines = [ln for ln in out.splitlines() if ln.strip()]
        assert rc == 0 and 1 <= len(lines) <= 3 and all("ready" in ln for ln in lines), out
        rc, out = c.run("cairn-console s3 show", 20)
        assert rc == 0 and state["ak"] in out and state["sk"] not in out, out
        assert re.search(r"^endpoint:\s+http://10\.0\.2\.15:9000", out, re.M), out
        rc, out = c.run("cairn-console s3 show --show-secret", 20)
        assert rc == 0 and state["sk"] in out, out
        rc, out = c.run("cairn-console no-such-command", 20)
        assert rc == 2 and "usage:" in out, (rc, out)
        rc, out = c.run("cairn-console cluster rejoin", 20)
        assert rc == 1 and "standalone node" in out, (rc, out)

    case("commands: status, disks, heal, net, logs, s3 (secret on request), bad command", commands)

    def ipmi():
        rc, out = c.run("cairn-console ipmi info", 40)
        assert rc == 0, out
        assert re.search(r"^manufacturer:\s+%d " % BMC_MFG, out, re.M), out
        assert re.search(r"^product:\s+%d$" % BMC_PRODUCT, out, re.M), out
        assert re.search(r"^bmc:\s+device id 0x20 .*IPMI 2\.0", out, re.M), out
        rc, out = c.run("cairn-console ipmi sensors", 40)
        assert rc == 0 and re.search(r"^Watchdog\s+#0\s+Watchdog 2", out, re.M), out
        rc, out = c.run("cairn-console ipmi sel", 40)
        assert rc == 0 and re.search(r"^SEL: version \d\.\d, \d+ entries", out, re.M), out
        rc, out = c.run("cairn-console ipmi sol", 40)
        assert rc == 1 and "not available from this BMC" in out, (rc, out)
        rc, out = c.run("cairn-ipmi --dev /dev/nonexistent info", 20)
        assert rc == 3 and "no BMC" in out, (rc, out)

    case("ipmi: BMC identity, sensors, SEL; SOL refused by the simulator; no device -> 3", ipmi)

    def disk_out_in():
        rc, out = c.run("cairn-console disk out 4 --yes", 20)
        assert rc == 0, out
        deadline = time.monotonic() + 30
        while "store_disk_offline vol=/data/4" not in c.run("logread | grep store_disk_offline", 20)[1]:
            assert time.monotonic() < deadline, "storagefsd did not mark /data/4 offline"
            time.sleep(1)
        rc, out = c.run("cairn-console disks", 30)
        assert re.search(r"^disk 4: /data/4\s+NOT MOUNTED \(/dev/vd\w+ present", out, re.M), out
        node.s3(state["ak"], state["sk"]).list_buckets()
        rc, out = c.run("cairn-console disk in 4", 20)
        assert rc == 0, out
        deadline = time.monotonic() + 30
        while "store_disk_online vol=/data/4" not in c.run("logread | grep store_disk_online", 20)[1]:
            assert time.monotonic() < deadline, "storagefsd did not take /data/4 back"
            time.sleep(1)
        rc, out = c.run("cairn-console disks", 30)
        assert re.search(r"^disk 4: /data/4 on /dev/vd\w+\s+online", out, re.M), out

    case("disk: out -> storagefsd marks it offline, in -> online again", disk_out_in)

    def network():
        rc, out = c.run("cairn-console net static 10.0.2.15/24 10.0.2.2 10.0.2.3", 30)
        assert rc == 0, out
        rc, out = c.run("cairn-console net show; cat /run/cairn/state-dir", 20)
        assert "mode: static" in out and "10.0.2.15/24" in out, out
        rc, out = c.run("cat $(cat /run/cairn/state-dir)/network", 20)
        assert "mode=static" in out and "address=10.0.2.15/24" in out, out
        node.s3(state["ak"], state["sk"]).list_buckets()
        rc, out = c.run("cairn-console net static 300.1.1.1/24 10.0.2.2", 20)
        assert rc == 1 and "IP/PREFIX" in out, (rc, out)
        rc, out = c.run("cairn-console net dhcp", 30)
        assert rc == 0, out
        deadline = time.monotonic() + 20
        while "10.0.2.15/24" not in c.run("cairn-console net show", 20)[1]:
            assert time.monotonic() < deadline, "no DHCP address again"
            time.sleep(1)
        rc, out = c.run("cairn-console net show", 20)
        assert "mode: dhcp" in out, out
        rc, out = c.run("cairn-console net ping-controller", 30)
        assert "controller: none configured" in out, out
        node.s3(state["ak"], state["sk"]).list_buckets()

    case("network: static address kept in the node state, back to DHCP, S3 reachable", network)

    def reset_refused():
        rc, out = c.run("echo not-%s | cairn-console factory-reset" % state["host"], 20)
        assert rc == 1 and "Not confirmed" in out, (rc, out)
        rc, out = c.run("echo %s | cairn-console factory-reset --bogus" % state["host"], 20)
        assert rc == 2, (rc, out)
        rc, out = c.run("cat $(cat /run/cairn/state-dir)/credentials", 20)
        assert state["sk"] in out, "the keys are gone after a refused factory reset"

    case("reset: factory-reset refuses without the hostname, keys kept", reset_refused)

    def s3_rotate():
        rc, out = c.run("cairn-console s3 rotate --yes", 30)
        assert rc == 0, out
        m = re.search(r"CAIRN_ACCESS_KEY=(\S+)\n\s*CAIRN_SECRET_KEY=(\S+)", out)
        assert m and m.group(1) != state["ak"], out
        old = node.s3(state["ak"], state["sk"])
        state["ak"], state["sk"] = m.group(1), m.group(2)
        node.wait_s3(state["ak"], state["sk"], 60)
        try:
            old.list_buckets()
            raise AssertionError("the old keys still work after s3 rotate")
        except old.exceptions.ClientError:
            pass
        rc, out = c.run("cat $(cat /run/cairn/state-dir)/credentials", 20)
        assert "AWS_SECRET_ACCESS_KEY=" + state["sk"] in out, out

    case("s3 rotate: new keys in the credentials file, storagefsd restarted, old keys refused", s3_rotate)

    def logged():
        rc, out = c.run("logread | grep 'cairn-console'", 20)
        for want in ("action=menu", "action=status", "action=disks", "action=heal", "action=net-show",
                     "action=s3-show secret=shown", "action=ipmi what=info result=ok",
                     "action=disk-out disk=4", "action=disk-in disk=4", "action=net-static address=10.0.2.15/24",
                     "action=net-dhcp", "action=factory-reset result=refused", "action=logs",
                     "action=s3-rotate access_key=%s result=ok" % state["ak"]):
            assert want in out, "%r not logged:\n%s" % (want, out)

    case("logged: every action in syslog (cairn-console key=value)", logged)

    def factory_reset():
        # A bucket first: the wipe must take it away with the disks' contents.
        node.s3(state["ak"], state["sk"]).create_bucket(Bucket="before-reset")
        c.line("cairn-console factory-reset --wipe-data-disks")
        c.expect(r"Type '%s' to go on: $" % re.escape(state["host"]), 20)
        c.line(state["host"])
        c.expect(r"Type 'erase all data' to go on: $", 20)
        c.line("erase all data")
        for n in range(1, 5):
            c.expect(r"^disk %d \(/dev/vd\w+\): erased" % n, 90)
        c.expect(r"factory reset done: rebooting", 30)
        # Xen's own machine reset can take minutes under TCG: once dom0 is down, cut the power.
        c.expect(r"cairn: data disks unmounted", 60)
        c.expect(r"rebooting machine", 60)
        node.kill()
        state["node"] = Node(2)
        c2 = state["node"].con
        m = c2.expect(r"CAIRN_ACCESS_KEY=(\S+)\n\s*CAIRN_SECRET_KEY=(\S+)\n\s*CAIRN_ROOT_PASSWORD=(\S+)\n",
                      test_node.BOOT_TIMEOUT)
        ak, sk, pw = (g.decode() for g in m.groups())
        assert ak != state["ak"] and pw != state["pw"], "the same keys after a factory reset"
        c2.expect(r"cairn: S3 ready", test_node.BOOT_TIMEOUT)
        state["node"].wait_s3(ak, sk, 60)
        buckets = [b["Name"] for b in state["node"].s3(ak, sk).list_buckets().get("Buckets", [])]
        assert buckets == [], buckets
        c2.login(pw, timeout=60)
        rc, out = c2.run("logread | grep -c cairn-console; cairn-console net show", 20)
        assert "mode: dhcp" in out, out  # the static setting went with the reset

    case("factory-reset --wipe-data-disks: two confirmations, disks formatted, first boot again", factory_reset)
    if state.get("node"):
        node.kill()
        node = state["node"]

    def poweroff():
        node.con.line("cairn-console poweroff --yes")
        node.con.expect(r"cairn: data disks unmounted", 90)
        node.proc.wait(timeout=90)

    case("poweroff: cairn-console poweroff --yes, QEMU exits", poweroff)
    return finish(node)


def finish(node):
    node.kill()
    passed = sum(1 for _, ok in results if ok)
    print("%d passed, %d failed" % (passed, len(results) - passed))
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
