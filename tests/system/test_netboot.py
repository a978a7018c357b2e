#!/usr/bin/python3
"""System test of a board's stand-alone network boot (no controller): QEMU without the disk
image (image/run-qemu.sh NETBOOT=1), its user network's TFTP serving build/image/BOARD/pxe/.
On qemu-arm64 U-Boot's DHCP boot fetches boot.scr.uimg, which loads Xen, the kernel and the
initramfs over TFTP and writes the device-tree /chosen module nodes; on an iPXE board SeaBIOS's
iPXE runs boot.ipxe. Run by tests/system/run.sh for qemu-arm64 (x86's network boot, with the
controller, is test_pxe.py).

  1 netboot    the boot script ran, Xen + dom0 up, no boot partition ("booted from the
               network"), first-boot keys on four fresh data disks, S3 answers on the host
  2 poweroff   `poweroff` at the console: disks unmounted, QEMU exits
Environment: BUILD, BOARD (qemu-arm64), BOOT_TIMEOUT (s, default 180).
Ends with "N passed, N failed".
"""
import os
import shutil
import subprocess
import sys
import time

os.environ.setdefault("BOARD", "qemu-arm64")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_node  # noqa: E402  (case, log, results, Node.s3/wait_s3/kill: the same harness)
from console import Console  # noqa: E402
from test_node import case, log, results  # noqa: E402

WORK = os.path.join(test_node.BUILD, "system-test-netboot-" + test_node.BOARD)
PXE_DIR = os.path.join(test_node.IMG_DIR, "pxe")
state = {}


class Node(test_node.Node):
    """test_node's QEMU run, booted from the network, in its own work directory."""

    def __init__(self):  # (not super().__init__: that one boots the disk image)
        self.name = "netboot"
        self.port = test_node.free_port()
        self.sock = os.path.join(WORK, "console.sock")
        self.log = os.path.join(WORK, "console-boot1.log")
        env = dict(os.environ, RUN_DIR=os.path.join(WORK, "run"), DISK_SIZE="1G", NETBOOT="1",
                   S3_PORT=str(self.port), SERIAL="socket:" + self.sock, SERIAL_LOG=self.log,
                   QEMU_EXTRA="-no-reboot")
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(["bash", os.path.join(test_node.REPO, "image", "run-qemu.sh"),
                                      test_node.BOARD, test_node.BUILD], env=env,
                                     stdout=open(os.path.join(WORK, "qemu-boot1.out"), "w"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.con = Console(self.sock, connect_timeout=60)


def main():
    if not os.path.isdir(PXE_DIR):
        log("%s not built: run `make image BOARD=%s`" % (PXE_DIR, test_node.BOARD))
        print("0 passed, 1 failed")
        return 1
    if os.path.isdir(WORK):
        shutil.rmtree(WORK)
    os.makedirs(WORK)
    node = Node()
    c = node.con
    timeout = test_node.BOOT_TIMEOUT

    def netboot():
        # The board's boot script announces itself (boot.cmd.in) or iPXE names boot.ipxe.
        c.expect(r"cairn: loading xen, vmlinuz, initrd\.img from|boot\.ipxe", timeout)
        t_script = node.elapsed()
        c.expect(r"Xen version", timeout)
        t_xen = node.elapsed()
        ht = c.expect(r"^cairn: /sys/hypervisor/type=(\S*)\n", timeout).group(1).decode()
        assert ht == "xen", "hypervisor type %r" % ht
        c.expect(r"no boot partition \(CAIRN-ESP\): booted from the network", timeout)
        m = c.expect(r"CAIRN_ACCESS_KEY=(\S+)\n\s*CAIRN_SECRET_KEY=(\S+)\n\s*CAIRN_ROOT_PASSWORD=(\S+)\n", timeout)
        state["ak"], state["sk"], state["pw"] = (g.decode() for g in m.groups())
        c.expect(r"cairn: S3 ready", timeout)
        t_ready = node.elapsed()
        t_host = node.wait_s3(state["ak"], state["sk"], 60)
        test_node.figures.append("network boot: QEMU start -> boot script %.1f s, -> Xen banner %.1f s, -> 'S3 ready' "
                                 "%.1f s, -> first S3 answer on the host %.1f s" % (t_script, t_xen, t_ready, t_host))

    case("netboot: boot script over TFTP, Xen dom0 up without a boot disk, S3 answers", netboot)

    def poweroff():
        c.login(state["pw"], timeout=60)
        c.line("poweroff")
        c.expect(r"cairn: data disks unmounted", 90)
        node.proc.wait(timeout=90)

    if state.get("pw"):
        case("poweroff: clean shutdown, QEMU exits", poweroff)
    node.kill()

    log("figures (board %s):" % test_node.BOARD)
    for f in test_node.figures:
        log("  " + f)
    passed = sum(1 for _, ok in results if ok)
    print("%d passed, %d failed" % (passed, len(results) - passed))
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
