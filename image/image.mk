# image/image.mk — the node image targets; included at the end of the top-level Makefile
# (which defines BUILD and DEPS). See image/README.md.
#   make image         build/image/$(BOARD)/{disk.img,disk.img.zst,initrd.img,pxe/,manifest.txt}
#   make run           build the image and boot it in QEMU (S3 on 127.0.0.1:$(S3_PORT))
#   make node-keys     print the S3 keys kept on the first data disk of `make run`
#   make system-test   boot the image in QEMU and test it from outside (tests/system/)
#   make image-repro   build the image twice from the same inputs and compare the bytes
#   make run-host      the old `make run`: storagefsd straight on this host (ci/run-node.sh)
# BOARD=qemu-x86_64 (default) or pc-x86_64; S3_PORT=9000; KVM=1 (off: Xen inside KVM fails here).

BOARD   ?= qemu-x86_64
S3_PORT ?= 9000
KVM     ?= 0
IMAGE_DIR := $(BUILD)/image/$(BOARD)
BUSYBOX_BIN := $(DEPS)/musl/bin/busybox

IMAGE_INPUTS := $(wildcard rootfs/*.sh rootfs/*.py rootfs/busybox.config board/$(BOARD)/board.mk \
                hypervisor-config/*.cmdline hypervisor-config/*.in firmware/pxe/boot.ipxe.in image/build.sh image/lib.sh) \
                $(shell find rootfs/skel -type f 2>/dev/null)

.PHONY: image run run-host node-keys system-test image-repro

image: $(IMAGE_DIR)/disk.img

# busybox is one of ci/build-source-pkgs.sh's packages (made by `make deps`); a changed
# rootfs/busybox.config rebuilds it (the script skips the steps whose stamps still match).
$(BUSYBOX_BIN): rootfs/busybox.config | $(BUILD)/.deps-done
	bash ci/build-source-pkgs.sh $(DEPS)
	@touch $@

$(IMAGE_DIR)/disk.img: $(IMAGE_INPUTS) $(BUSYBOX_BIN) $(BUILD)/musl/storagefsd \
                       $(FW_TOOLS:%=$(BUILD)/musl/cairn-%) | $(BUILD)/.deps-done
	bash image/build.sh $(BOARD) $(BUILD)
	@touch $@

run: image
	S3_PORT=$(S3_PORT) KVM=$(KVM) bash image/run-qemu.sh $(BOARD) $(BUILD)

run-host: deps musl
	bash ci/run-node.sh $(BUILD)

node-keys:
	@bash image/node-keys.sh $(BUILD)/run/disk1.img || echo "no keys yet: boot the node once with make run"

system-test: image
	bash tests/system/run.sh $(BUILD)

image-repro: image
	bash image/check-repro.sh $(BOARD) $(BUILD)

# The system tests (tests/system/run.sh, called from tests/run-all.sh) need the image.
test: image
