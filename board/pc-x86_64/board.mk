# board/pc-x86_64/board.mk — a real x86-64 server (UEFI or PXE), the production target.
# Plain `NAME := value` lines: included by make (image/image.mk) and read by the image scripts.
BOARD_ARCH        := x86_64
# Xen's console on the second serial port, COM2/ttyS1, where most BMCs put IPMI Serial-over-LAN
# (Dell iDRAC, HPE iLO's virtual serial port, most Supermicro boards), and the VGA screen. Xen
# takes one serial port for its console (the last comN of console=): a server whose SOL is on
# COM1 wants `console=com1,vga com1=115200,8n1` here (or in EFI/BOOT/BOOTX64.cfg on its ESP).
BOARD_XEN_CONSOLE := console=com2,vga com2=115200,8n1
BOARD_CONSOLE     := hvc0
BOARD_DOM0_MEM    := 1024M,max:1024M
BOARD_DOM0_VCPUS  := 4
BOARD_DOM0_ARGS   :=
BOARD_BOOTLOADER  := xen-efi
# SATA/SAS (ahci, sd_mod), NVMe, the common server NICs, ext4; vfat + nls_cp437 + nls_ascii
# for the ESP (read-only at /boot: the PXE bundle a seed node serves). Not yet booted on hardware.
# ipmi_si + ipmi_devintf: the BMC (sensors, event log, SOL settings) at the console (cairn-ipmi).
BOARD_MODULES     := ahci sd_mod nvme e1000e igb ixgbe i40e r8169 tg3 bnxt_en crc32c_generic crc32c-intel ext4 vfat nls_cp437 nls_ascii ipmi_si ipmi_devintf
BOARD_DISK_WAIT   := sd
BOARD_NIC         := eth0
BOARD_DATA_LABEL  := cairn-data
BOARD_S3_PORT     := 9000
BOARD_S3_REGION   := us-east-1
# For trying the pc image in QEMU (emulated AHCI disks, e1000e NIC).
BOARD_QEMU        := qemu-system-x86_64
BOARD_QEMU_MACHINE:= q35
BOARD_QEMU_CPUS   := 2
BOARD_QEMU_MEM    := 2048
BOARD_QEMU_FIRMWARE := /usr/share/ovmf/OVMF.fd
BOARD_QEMU_DEVICES:=
