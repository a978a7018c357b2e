# image/image.mk — the node image targets; included at the end of the top-level Makefile
# (which defines BUILD and DEPS). See image/README.md.
#   make image         build/image/$(BOARD)/{disk.img,disk.img.zst,initrd.img,pxe/,manifest.txt}
#   make image-arm64   the same for BOARD=qemu-arm64, whatever BOARD is (make test builds both)
#   make run           build the image and boot it in QEMU (S3 on 127.0.0.1:$(S3_PORT))
#   make node-keys     print the S3 keys kept on the first data disk of `make run`
#   make system-test   boot the images (BOARD and qemu-arm64) in QEMU and test them from outside (tests/system/)
#   make image-repro   build the image twice from the same inputs and compare the bytes
#   make run-host      the old `make run`: storagefsd straight on this host (ci/run-node.sh)
# BOARD=qemu-x86_64 (default), pc-x86_64 or qemu-arm64; S3_PORT=9000; KVM=1 (off: Xen inside
# KVM fails here).

BOARD   ?= qemu-x86_64
S3_PORT ?= 9000
KVM     ?= 0
IMAGE_DIR := $(BUILD)/image/$(BOARD)

# board_arch BOARD: its BOARD_ARCH (x86_64, aarch64), which picks the static binaries: build/musl
# and deps/musl for x86_64, build/musl-ARCH and deps/musl-ARCH (make musl-aarch64) otherwise.
board_arch = $(shell sed -n 's/^BOARD_ARCH[[:space:]]*:=[[:space:]]*\([a-z0-9_]*\).*/\1/p' board/$(1)/board.mk)
musl_dir = $(if $(filter x86_64,$(call board_arch,$(1))),musl,musl-$(call board_arch,$(1)))
deps_stamp = $(if $(filter x86_64,$(call board_arch,$(1))),$(BUILD)/.deps-done,$(BUILD)/.deps-$(call board_arch,$(1))-done)

IMAGE_INPUTS := $(wildcard rootfs/*.sh rootfs/*.py rootfs/busybox.config \
                hypervisor-config/*.cmdline hypervisor-config/*.in firmware/pxe/boot.ipxe.in image/build.sh image/lib.sh) \
                $(shell find rootfs/skel -type f 2>/dev/null)

.PHONY: image image-arm64 run run-host node-keys system-test image-repro

image: $(IMAGE_DIR)/disk.img
image-arm64: $(BUILD)/image/qemu-arm64/disk.img

# busybox is one of ci/build-source-pkgs.sh's packages (made by `make deps`, for aarch64 by
# `make deps-aarch64`); a changed rootfs/busybox.config rebuilds it (the script skips the steps
# whose stamps still match).
$(DEPS)/musl/bin/busybox: rootfs/busybox.config | $(BUILD)/.deps-done
	bash ci/build-source-pkgs.sh $(DEPS)
	@touch $@
$(DEPS)/musl-aarch64/bin/busybox: rootfs/busybox.config | $(BUILD)/.deps-aarch64-done
	bash ci/build-source-pkgs.sh $(DEPS) aarch64
	@touch $@

# image_rule BOARD: BUILD/image/BOARD/disk.img from the board folder and its architecture's binaries.
define image_rule
$(BUILD)/image/$(1)/disk.img: $(IMAGE_INPUTS) $(wildcard board/$(1)/*.mk board/$(1)/*.in) \
                       $(DEPS)/$(call musl_dir,$(1))/bin/busybox $(BUILD)/$(call musl_dir,$(1))/storagefsd \
                       $(FW_TOOLS:%=$(BUILD)/$(call musl_dir,$(1))/cairn-%) | $(call deps_stamp,$(1))
	bash image/build.sh $(1) $(BUILD)
	@touch $$@
endef
$(foreach b,$(sort $(BOARD) qemu-arm64),$(eval $(call image_rule,$(b))))

run: image
	S3_PORT=$(S3_PORT) KVM=$(KVM) bash image/run-qemu.sh $(BOARD) $(BUILD)

run-host: deps musl
	bash ci/run-node.sh $(BUILD)

node-keys:
	@bash image/node-keys.sh $(BUILD)/run/disk1.img || echo "no keys yet: boot the node once with make run"

system-test: image image-arm64
	bash tests/system/run.sh $(BUILD)

image-repro: image
	bash image/check-repro.sh $(BOARD) $(BUILD)

# The system tests (tests/system/run.sh, called from tests/run-all.sh) need the images: the
# x86 one of BOARD and the arm64 one (run.sh boots both).
test: image image-arm64
