# board/qemu-x86_64/board.mk — QEMU q35 PC (UEFI via OVMF) running the Cairn Xen dom0.
# Plain `NAME := value` lines: included by make (image/image.mk) and read by the image scripts
# (image/lib.sh). Only what differs between boards lives here.
BOARD_ARCH        := x86_64
# Xen's console is the first UART; dom0's console is Xen's virtual console.
BOARD_XEN_CONSOLE := console=com1 com1=115200,8n1
BOARD_CONSOLE     := hvc0
# dom0 sizing: see hypervisor-config/README.md
BOARD_DOM0_MEM    := 512M,max:512M
BOARD_DOM0_VCPUS  := 1
# Board additions to dom0's command line. acpi_pm_good: skip the ACPI PM-timer consistency
# check (~4 s under TCG; dom0's clock is Xen's, not the PM timer).
BOARD_DOM0_ARGS   := acpi_pm_good
BOARD_BOOTLOADER  := xen-efi
# Kernel modules loaded at boot, in this order; their dependencies (modules.dep) come along.
# virtio_net, not e1000: one PCI transport (virtio_pci) serves both disks and NIC, and
# virtio_net is the faster emulated NIC under TCG. crc32c_generic: ext4/jbd2 metadata
# checksums (not crc32c-intel: it needs SSE4.2, which QEMU's TCG CPU does not have; trying it
# costs ~1 s).
# virtio_rng: QEMU's virtio-rng-pci seeds the kernel's random generator at once (TCG has no
# RDRAND), so first-boot key generation does not wait for jitter entropy.
# vfat + nls_cp437 + nls_ascii (FAT's default codepage and iocharset): the ESP, mounted
# read-only at /boot, where a seed node finds the PXE bundle it serves (cairn-seed).
# ipmi_si + ipmi_devintf (+ ipmi_msghandler): /dev/ipmi0 for the console's BMC screens
# (cairn-ipmi); QEMU has a BMC with -device ipmi-bmc-sim + isa-ipmi-kcs (tests/system/test_console.py).
BOARD_MODULES     := virtio_pci virtio_rng virtio_blk virtio_net crc32c_generic ext4 vfat nls_cp437 nls_ascii ipmi_si ipmi_devintf
# rcS waits (up to 2 s) for a block device whose name matches this before scanning for disks.
BOARD_DISK_WAIT   := vd
BOARD_NIC         := eth0
# Data disks are found by filesystem label: ext4 labelled cairn-data1, cairn-data2, ...
BOARD_DATA_LABEL  := cairn-data
BOARD_S3_PORT     := 9000
BOARD_S3_REGION   := us-east-1
# QEMU: machine, CPUs and memory for `make run` and the system tests. One CPU: with two,
# Xen 4.17 under TCG hangs at power-off in "Disabling non-boot CPUs" (reproduced 3 times out
# of 3), and one vCPU boots faster on a busy 2-core host anyway.
BOARD_QEMU        := qemu-system-x86_64
BOARD_QEMU_MACHINE:= q35
BOARD_QEMU_CPUS   := 1
BOARD_QEMU_MEM    := 1024
BOARD_QEMU_FIRMWARE := /usr/share/ovmf/OVMF.fd
# No VGA (the consoles are serial; drawing a framebuffer console costs seconds under TCG).
BOARD_QEMU_DEVICES:= -vga none -device virtio-rng-pci
