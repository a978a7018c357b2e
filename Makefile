# Cairn — top-level build. `make run` boots a node, `make test` runs every test.
# Outputs live under build/: host/ (glibc, debug, for tests), asan/ (ASan+UBSan),
# musl/ (static, for the image), fuzz/ (libFuzzer), deps/ (Debian source packages).
# Every target works from a clean clone on a fresh Debian 12 machine (as root): `deps` comes
# first and installs what is missing; once done it costs nothing (a stamp file). `make -j2` is safe.

BUILD      ?= build
CI         ?=
HOST_CC    ?= gcc
MUSL_CC    ?= musl-gcc
CLANG      ?= clang

WARN   := -Wall -Wextra -Werror -Wshadow -Wmissing-prototypes -Wsign-compare -Wno-unused-parameter
CSTD   := -std=c11 -D_GNU_SOURCE
DEPS   := $(BUILD)/deps

LIB_SRCS  := $(sort $(wildcard lib/*.c))
SFS_SRCS  := $(sort $(wildcard storagefs/auth/*.c storagefs/s3/*.c storagefs/store/*.c storagefs/cluster/*.c))
SFS_HDRS  := $(sort $(wildcard lib/*.h storagefs/*.h storagefs/*/*.h firmware/*/*.h))
# firmware/<tool>/main.c is a program; its other files are modules the unit tests link too.
FW_TOOLS  := controller provd nodectl ipmi
FW_SRCS   := $(sort $(filter-out %/main.c,$(wildcard $(FW_TOOLS:%=firmware/%/*.c))))
UNIT_SRCS := $(sort $(wildcard tests/unit/*.c))
BENCH_SRCS := $(sort $(wildcard tests/bench/*.c))
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRCS))

# --- flavours: host (glibc debug), asan, musl (static image binaries) ---
HOST_CFLAGS := $(CSTD) $(WARN) -g -O2 -MMD -MP
HOST_LIBS   := -lmbedtls -lmbedx509 -lmbedcrypto -lsqlite3 -lpthread -lm
ASAN_CFLAGS := $(CSTD) $(WARN) -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
               -fno-sanitize-recover=undefined -MMD -MP
# musl-gcc's specs leave out /usr/include, so only the headers/libraries that
# ci/build-source-pkgs.sh built from Debian's sources (build/deps/musl) are seen.
MUSL_CFLAGS := $(CSTD) $(WARN) -O2 -DNDEBUG -I$(DEPS)/musl/include -ffunction-sections -fdata-sections -MMD -MP
MUSL_LIBS   := -static -Wl,--gc-sections -L$(DEPS)/musl/lib -lmbedtls -lmbedx509 -lmbedcrypto -lsqlite3 -lpthread -lm

objs = $(patsubst %.c,$(BUILD)/$(1)/obj/%.o,$(2))

.PHONY: all host asan musl musl-aarch64 deps-aarch64 unit-aarch64 deps test unit asan-test fuzz-build fuzz fuzz-smoke integration bench run \
        clean distclean help FORCE
.DEFAULT_GOAL := all

all: host musl

help:
	@echo "make deps        install Debian packages, build musl mbedtls/sqlite from Debian sources"
	@echo "make             host (glibc debug) and musl (static) binaries"
	@echo "make run         build the node image and boot it in QEMU (S3 on 127.0.0.1:9000)"
	@echo "make run-host    storagefsd straight on this host (no image)"
	@echo "make image       the node image: build/image/\$$(BOARD)/ (BOARD=qemu-x86_64|pc-x86_64|qemu-arm64)"
	@echo "make image-arm64 the ARM64 image (U-Boot + Xen arm64): build/image/qemu-arm64/"
	@echo "make run BOARD=qemu-arm64  boot the ARM64 image in QEMU (TCG, U-Boot)"
	@echo "make system-test boot the image in QEMU and test it from outside"
	@echo "make test        every test: unit, asan, fuzz corpus, integration, fault"
	@echo "make unit        unit tests only (glibc build)"
	@echo "make musl-aarch64  the static musl binaries for aarch64 (ARM64 board): \$$(BUILD)/musl-aarch64/"
	@echo "make unit-aarch64  unit tests built for aarch64 musl, run under qemu-aarch64-static"
	@echo "make asan-test   unit tests + quick integration under ASan+UBSan"
	@echo "make integration integration tests against the glibc daemon"
	@echo "make bench       benchmarks against nginx/fio; figures go to docs/BENCHMARKS.md"
	@echo "make fuzz        run each fuzzer longer (FUZZ_SECONDS=$(FUZZ_SECONDS))"
	@echo "make fuzz-smoke  replay the corpus and fuzz each target 10 s"
	@echo "make clean       remove build outputs (keeps build/deps); distclean removes build/"

# --- dependencies: Debian packages + musl libraries from Debian source packages ---
# The stamp is remade when either script changes, or when the musl libraries are gone.
deps: $(BUILD)/.deps-done

$(BUILD)/.deps-done: ci/deps.sh ci/build-source-pkgs.sh $(if $(wildcard $(DEPS)/musl/VERSIONS),,FORCE)
	bash ci/deps.sh
	bash ci/build-source-pkgs.sh $(DEPS)
	@mkdir -p $(BUILD) && touch $@

FORCE:

# --- host build ---
$(BUILD)/host/obj/%.o: %.c | $(BUILD)/.deps-done
	@mkdir -p $(dir $@)
	$(HOST_CC) $(HOST_CFLAGS) -c $< -o $@

HOST_OBJS := $(call objs,host,$(LIB_SRCS) $(SFS_SRCS))

$(BUILD)/host/storagefsd: $(HOST_OBJS) $(call objs,host,storagefs/main.c)
	$(HOST_CC) $(HOST_CFLAGS) -o $@ $^ $(HOST_LIBS)

# firmware tools: cairn-controller, cairn-provd, cairn-nodectl (lib/ + their own directory)
fw_objs = $(call objs,$(1),$(LIB_SRCS) $(sort $(wildcard firmware/$(2)/*.c)))
$(foreach t,$(FW_TOOLS),$(eval $(BUILD)/host/cairn-$(t): $(call fw_objs,host,$(t))))
$(FW_TOOLS:%=$(BUILD)/host/cairn-%):
	$(HOST_CC) $(HOST_CFLAGS) -o $@ $^ $(HOST_LIBS)

$(BUILD)/host/unit_tests: $(HOST_OBJS) $(call objs,host,$(FW_SRCS) $(UNIT_SRCS))
	$(HOST_CC) $(HOST_CFLAGS) -o $@ $^ $(HOST_LIBS)

$(BUILD)/host/s3bench: $(HOST_OBJS) $(call objs,host,$(BENCH_SRCS))
	$(HOST_CC) $(HOST_CFLAGS) -o $@ $^ $(HOST_LIBS)

host: $(BUILD)/host/storagefsd $(BUILD)/host/unit_tests $(if $(BENCH_SRCS),$(BUILD)/host/s3bench) \
      $(FW_TOOLS:%=$(BUILD)/host/cairn-%)

# --- ASan + UBSan build of the daemon and the unit tests ---
$(BUILD)/asan/obj/%.o: %.c | $(BUILD)/.deps-done
	@mkdir -p $(dir $@)
	$(HOST_CC) $(ASAN_CFLAGS) -c $< -o $@

ASAN_OBJS := $(call objs,asan,$(LIB_SRCS) $(SFS_SRCS))

$(BUILD)/asan/storagefsd: $(ASAN_OBJS) $(call objs,asan,storagefs/main.c)
	$(HOST_CC) $(ASAN_CFLAGS) -o $@ $^ $(HOST_LIBS)

$(foreach t,$(FW_TOOLS),$(eval $(BUILD)/asan/cairn-$(t): $(call fw_objs,asan,$(t))))
$(FW_TOOLS:%=$(BUILD)/asan/cairn-%):
	$(HOST_CC) $(ASAN_CFLAGS) -o $@ $^ $(HOST_LIBS)

$(BUILD)/asan/unit_tests: $(ASAN_OBJS) $(call objs,asan,$(FW_SRCS) $(UNIT_SRCS))
	$(HOST_CC) $(ASAN_CFLAGS) -o $@ $^ $(HOST_LIBS)

asan: $(BUILD)/asan/storagefsd $(BUILD)/asan/unit_tests $(FW_TOOLS:%=$(BUILD)/asan/cairn-%)

# --- static musl build for the image ---
$(BUILD)/musl/obj/%.o: %.c | $(BUILD)/.deps-done
	@mkdir -p $(dir $@)
	$(MUSL_CC) $(MUSL_CFLAGS) -c $< -o $@

# .deps-done is a normal prerequisite here: rebuilt musl libraries mean a relink.
$(BUILD)/musl/storagefsd: $(call objs,musl,$(LIB_SRCS) $(SFS_SRCS) storagefs/main.c) $(BUILD)/.deps-done
	$(MUSL_CC) $(MUSL_CFLAGS) -o $@ $(filter %.o,$^) $(MUSL_LIBS)
	strip $@

$(foreach t,$(FW_TOOLS),$(eval $(BUILD)/musl/cairn-$(t): $(call fw_objs,musl,$(t)) $(BUILD)/.deps-done))
$(FW_TOOLS:%=$(BUILD)/musl/cairn-%):
	$(MUSL_CC) $(MUSL_CFLAGS) -o $@ $(filter %.o,$^) $(MUSL_LIBS)
	strip $@

musl: $(BUILD)/musl/storagefsd $(FW_TOOLS:%=$(BUILD)/musl/cairn-%)

# --- static musl build for aarch64 (the ARM64 board): the same binaries, cross-compiled ---
# Debian's aarch64-linux-gnu-gcc wrapped to see only Debian's arm64 musl (like musl-gcc), and
# mbedtls/sqlite3 cross-built from the same Debian sources into $(DEPS)/musl-aarch64. Its own
# deps stamp: `make musl` never needs the cross toolchain, `make musl-aarch64` never x86 musl.
# `make unit-aarch64` runs the unit tests built this way under qemu-aarch64-static.
MUSL_AARCH64_CC     ?= $(DEPS)/cross-aarch64/bin/aarch64-musl-gcc
AARCH64_STRIP       ?= aarch64-linux-gnu-strip
QEMU_AARCH64        ?= qemu-aarch64-static
MUSL_AARCH64_CFLAGS := $(CSTD) $(WARN) -O2 -DNDEBUG -I$(DEPS)/musl-aarch64/include -ffunction-sections -fdata-sections -MMD -MP
MUSL_AARCH64_LIBS   := -static -Wl,--gc-sections -L$(DEPS)/musl-aarch64/lib -lmbedtls -lmbedx509 -lmbedcrypto -lsqlite3 -lpthread -lm
A64 := musl-aarch64

deps-aarch64: $(BUILD)/.deps-aarch64-done

$(BUILD)/.deps-aarch64-done: ci/deps.sh ci/build-source-pkgs.sh ci/apt-foreign.sh \
		$(if $(wildcard $(DEPS)/musl-aarch64/VERSIONS),,FORCE)
	bash ci/deps.sh
	bash ci/build-source-pkgs.sh $(DEPS) aarch64
	@mkdir -p $(BUILD) && touch $@

$(BUILD)/$(A64)/obj/%.o: %.c | $(BUILD)/.deps-aarch64-done
	@mkdir -p $(dir $@)
	$(MUSL_AARCH64_CC) $(MUSL_AARCH64_CFLAGS) -c $< -o $@

$(BUILD)/$(A64)/storagefsd: $(call objs,$(A64),$(LIB_SRCS) $(SFS_SRCS) storagefs/main.c) $(BUILD)/.deps-aarch64-done
	$(MUSL_AARCH64_CC) $(MUSL_AARCH64_CFLAGS) -o $@ $(filter %.o,$^) $(MUSL_AARCH64_LIBS)
	$(AARCH64_STRIP) $@

$(foreach t,$(FW_TOOLS),$(eval $(BUILD)/$(A64)/cairn-$(t): $(call fw_objs,$(A64),$(t)) $(BUILD)/.deps-aarch64-done))
$(FW_TOOLS:%=$(BUILD)/$(A64)/cairn-%):
	$(MUSL_AARCH64_CC) $(MUSL_AARCH64_CFLAGS) -o $@ $(filter %.o,$^) $(MUSL_AARCH64_LIBS)
	$(AARCH64_STRIP) $@

# Not stripped: a failing test's backtrace under qemu is worth the size.
$(BUILD)/$(A64)/unit_tests: $(call objs,$(A64),$(LIB_SRCS) $(SFS_SRCS) $(FW_SRCS) $(UNIT_SRCS)) $(BUILD)/.deps-aarch64-done
	$(MUSL_AARCH64_CC) $(MUSL_AARCH64_CFLAGS) -o $@ $(filter %.o,$^) $(MUSL_AARCH64_LIBS)

musl-aarch64: $(BUILD)/$(A64)/storagefsd $(FW_TOOLS:%=$(BUILD)/$(A64)/cairn-%)

unit-aarch64: $(BUILD)/$(A64)/unit_tests
	$(QEMU_AARCH64) $(BUILD)/$(A64)/unit_tests

# --- libFuzzer targets: each tests/fuzz/fuzz_X.c links the library code ---
# clang, not gcc: warnings on but not fatal (the gcc builds enforce -Werror), and the
# libFuzzer entry point LLVMFuzzerTestOneInput has no prototype of ours.
FUZZ_CFLAGS := $(CSTD) -Wall -Wextra -Wno-unused-parameter -Wno-missing-prototypes \
               -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
               -fno-sanitize-recover=undefined
# The library code is compiled once (build/fuzz/obj) and linked into every target.
FUZZ_OBJS := $(call objs,fuzz,$(LIB_SRCS) $(SFS_SRCS) $(FW_SRCS))
.SECONDARY: $(FUZZ_OBJS)
$(BUILD)/fuzz/obj/%.o: %.c $(SFS_HDRS) | $(BUILD)/.deps-done
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CFLAGS) -c $< -o $@

$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_OBJS) $(SFS_HDRS) | $(BUILD)/.deps-done
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_OBJS) $(HOST_LIBS)

fuzz-build: $(FUZZ_BINS)

FUZZ_SECONDS ?= 60
fuzz: $(FUZZ_BINS)
	bash tests/fuzz/run.sh $(BUILD)/fuzz $(FUZZ_SECONDS)

fuzz-smoke: $(FUZZ_BINS)
	bash tests/fuzz/run.sh $(BUILD)/fuzz 10

# --- tests ---
unit: $(BUILD)/host/unit_tests
	$(BUILD)/host/unit_tests

asan-test: $(BUILD)/asan/unit_tests $(BUILD)/asan/storagefsd
	ASAN_OPTIONS=detect_leaks=1 $(BUILD)/asan/unit_tests
	SFS_BIN=$(BUILD)/asan/storagefsd bash tests/integration/run.sh quick

integration: $(BUILD)/host/storagefsd
	SFS_BIN=$(BUILD)/host/storagefsd bash tests/integration/run.sh all

# run-all.sh runs every suite it finds and prints the single "N passed, N failed" line.
test: deps host musl asan fuzz-build $(BUILD)/musl-aarch64/unit_tests
	bash tests/run-all.sh $(BUILD)

bench: deps host musl
	bash tests/bench/run.sh $(BUILD)

# `make run` (boot the node image in QEMU) and `make run-host` (storagefsd on this host):
# image/image.mk, included at the end.

clean:
	rm -rf $(BUILD)/host $(BUILD)/asan $(BUILD)/musl $(BUILD)/musl-aarch64 $(BUILD)/fuzz $(BUILD)/.deps-done \
		$(BUILD)/.deps-aarch64-done

distclean:
	rm -rf $(BUILD)

# Header dependencies of the gcc builds (-MMD -MP); never the big build/deps tree.
FW_ALL   := $(sort $(wildcard $(FW_TOOLS:%=firmware/%/*.c)))
ALL_OBJS := $(call objs,host,$(LIB_SRCS) $(SFS_SRCS) $(FW_ALL) storagefs/main.c $(UNIT_SRCS) $(BENCH_SRCS)) \
            $(call objs,asan,$(LIB_SRCS) $(SFS_SRCS) $(FW_ALL) storagefs/main.c $(UNIT_SRCS)) \
            $(call objs,musl,$(LIB_SRCS) $(SFS_SRCS) $(FW_ALL) storagefs/main.c) \
            $(call objs,musl-aarch64,$(LIB_SRCS) $(SFS_SRCS) $(FW_ALL) storagefs/main.c $(UNIT_SRCS))
-include $(wildcard $(ALL_OBJS:.o=.d))

# The node image: image, run, run-host, node-keys, system-test, image-repro.
-include image/image.mk
