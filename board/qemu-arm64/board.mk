# board/qemu-arm64/board.mk — QEMU's arm64 "virt" machine (U-Boot as firmware, UEFI through
# U-Boot's bootefi) running the Cairn Xen dom0. Plain `NAME := value` lines: included by make
# (image/image.mk) and read by the image scripts (image/lib.sh). See board/README.md.
BOARD_ARCH        := aarch64
BOARD_DEB_ARCH    := arm64
# Debian's arm64 kernel and Xen (fetched with ci/apt-foreign.sh: no foreign architecture on
# the build host). linux-image-arm64 is the metapackage naming the current ABI.
BOARD_KERNEL_PKG  := linux-image-arm64
BOARD_XEN_PKG     := xen-hypervisor-4.17-arm64
# Xen's console is the PL011 the device tree's /chosen/stdout-path names (QEMU's -serial);
# dom0's console is Xen's virtual console.
BOARD_XEN_CONSOLE := console=dtuart
BOARD_CONSOLE     := hvc0
# bootscrub=0: Xen would otherwise zero dom0's 512 MiB while allocating it ("Allocating 1:1
# mappings", ~6 s under TCG) and then scrub the rest of RAM in its idle loop, competing with
# dom0 for the one emulated CPU: QEMU start -> S3 ready 27-30 s with it, 7-14 s without. That
# memory held only what the firmware and the boot files left; memory Xen frees later is still
# scrubbed.
BOARD_XEN_ARGS    := bootscrub=0
BOARD_DOM0_MEM    := 512M,max:512M
BOARD_DOM0_VCPUS  := 1
# pci=nomsi: under Xen 4.17 dom0 has no MSI controller (Xen keeps the GICv3 ITS to itself), so
# every PCI device runs on legacy INTx anyway; without it each virtio device first tries MSI-X
# and the kernel logs a WARNING with a stack trace (pci_msi_setup_msi_irqs) per device.
BOARD_DOM0_ARGS   := pci=nomsi
# U-Boot finds EFI/BOOT/BOOTAA64.EFI (Xen's EFI binary) on the ESP by itself (distro boot,
# removable-media path); Xen reads BOOTAA64.cfg and the device tree QEMU made.
BOARD_BOOTLOADER  := xen-efi
# U-Boot's network boot: boot.scr.uimg over TFTP (DHCP), which loads Xen, the kernel and the
# initramfs and writes the device-tree /chosen nodes Xen reads (board/qemu-arm64/boot.cmd.in).
BOARD_PXE         := uboot
# The same set as qemu-x86_64 minus IPMI (the virt machine has no KCS BMC). Everything is on
# QEMU's PCIe host bridge (pci-host-generic, built in), virtio-pci as on x86, on INTx (above).
BOARD_MODULES     := virtio_pci virtio_rng virtio_blk virtio_net crc32c_generic ext4 vfat nls_cp437 nls_ascii
BOARD_DISK_WAIT   := vd
BOARD_NIC         := eth0
BOARD_DATA_LABEL  := cairn-data
BOARD_S3_PORT     := 9000
BOARD_S3_REGION   := us-east-1
# QEMU: virt with EL2 (virtualization=on: Xen runs there) and a GICv3, a Cortex-A57 (cheaper
# under TCG than -cpu max, whose pointer authentication is emulated slowly), Debian's U-Boot
# build for this machine (u-boot-qemu) as the firmware.
BOARD_QEMU        := qemu-system-aarch64
BOARD_QEMU_MACHINE:= virt,virtualization=on,gic-version=3
BOARD_QEMU_CPU    := cortex-a57
BOARD_QEMU_CPUS   := 1
BOARD_QEMU_MEM    := 1024
BOARD_QEMU_FIRMWARE := /usr/lib/u-boot/qemu_arm64/u-boot.bin
BOARD_QEMU_DEVICES:= -device virtio-rng-pci
