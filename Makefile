# Cairn — top-level build. `make run` boots a node, `make test` runs every test.
# Outputs live under build/: host/ (glibc, debug, for tests), asan/ (ASan+UBSan),
# musl/ (static, for the image), fuzz/ (libFuzzer), deps/ (Debian source packages).

BUILD      ?= build
CI         ?=
HOST_CC    ?= gcc
MUSL_CC    ?= musl-gcc
CLANG      ?= clang

WARN   := -Wall -Wextra -Werror -Wshadow -Wmissing-prototypes -Wsign-compare -Wno-unused-parameter
CSTD   := -std=c11 -D_GNU_SOURCE
DEPS   := $(BUILD)/deps

LIB_SRCS  := $(sort $(wildcard lib/*.c))
SFS_SRCS  := $(sort $(wildcard storagefs/auth/*.c storagefs/s3/*.c storagefs/store/*.c))
UNIT_SRCS := $(sort $(wildcard tests/unit/*.c))
BENCH_SRCS := $(sort $(wildcard tests/bench/*.c))
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRCS))

# --- flavours: host (glibc debug), asan, musl (static image binaries) ---
HOST_CFLAGS := $(CSTD) $(WARN) -g -O2 -MMD -MP
HOST_LIBS   := -lmbedcrypto -lsqlite3 -lpthread -lm
ASAN_CFLAGS := $(CSTD) $(WARN) -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
               -fno-sanitize-recover=undefined -MMD -MP
MUSL_CFLAGS := $(CSTD) $(WARN) -O2 -DNDEBUG -I$(DEPS)/musl/include -MMD -MP
MUSL_LIBS   := -static -L$(DEPS)/musl/lib -lmbedcrypto -lsqlite3 -lpthread -lm

objs = $(patsubst %.c,$(BUILD)/$(1)/obj/%.o,$(2))

.PHONY: all host musl deps test unit asan-test fuzz fuzz-smoke integration bench run clean help
.DEFAULT_GOAL := all

all: host musl

help:
	@echo "make deps        install Debian packages, build musl mbedtls/sqlite from Debian sources"
	@echo "make             host (glibc debug) and musl (static) binaries"
	@echo "make run         build and start a node (see README)"
	@echo "make test        every test: unit, asan, fuzz corpus, integration, fault"
	@echo "make bench       benchmarks against nginx/fio; figures go to docs/BENCHMARKS.md"
	@echo "make fuzz        run each fuzzer longer (FUZZ_SECONDS=$(FUZZ_SECONDS))"

deps: $(BUILD)/.deps-done

$(BUILD)/.deps-done: ci/deps.sh ci/build-source-pkgs.sh
	bash ci/deps.sh
	bash ci/build-source-pkgs.sh $(DEPS)
	@mkdir -p $(BUILD) && touch $@

# --- host build ---
$(BUILD)/host/obj/%.o: %.c | $(BUILD)/.deps-done
	@mkdir -p $(dir $@)
	$(HOST_CC) $(HOST_CFLAGS) -c $< -o $@

HOST_OBJS := $(call objs,host,$(LIB_SRCS) $(SFS_SRCS))

$(BUILD)/host/storagefsd: $(HOST_OBJS) $(call objs,host,storagefs/main.c)
	$(HOST_CC) $(HOST_CFLAGS) -o $@ $^ $(HOST_LIBS)

$(BUILD)/host/unit_tests: $(HOST_OBJS) $(call objs,host,$(UNIT_SRCS))
	$(HOST_CC) $(HOST_CFLAGS) -o $@ $^ $(HOST_LIBS)

$(BUILD)/host/s3bench: $(HOST_OBJS) $(call objs,host,$(BENCH_SRCS))
	$(HOST_CC) $(HOST_CFLAGS) -o $@ $^ $(HOST_LIBS)

host: $(BUILD)/host/storagefsd $(BUILD)/host/unit_tests $(if $(BENCH_SRCS),$(BUILD)/host/s3bench)

# --- ASan + UBSan build of the daemon and the unit tests ---
$(BUILD)/asan/obj/%.o: %.c | $(BUILD)/.deps-done
	@mkdir -p $(dir $@)
	$(HOST_CC) $(ASAN_CFLAGS) -c $< -o $@

ASAN_OBJS := $(call objs,asan,$(LIB_SRCS) $(SFS_SRCS))

$(BUILD)/asan/storagefsd: $(ASAN_OBJS) $(call objs,asan,storagefs/main.c)
	$(HOST_CC) $(ASAN_CFLAGS) -o $@ $^ $(HOST_LIBS)

$(BUILD)/asan/unit_tests: $(ASAN_OBJS) $(call objs,asan,$(UNIT_SRCS))
	$(HOST_CC) $(ASAN_CFLAGS) -o $@ $^ $(HOST_LIBS)

# --- static musl build for the image ---
$(BUILD)/musl/obj/%.o: %.c | $(BUILD)/.deps-done
	@mkdir -p $(dir $@)
	$(MUSL_CC) $(MUSL_CFLAGS) -c $< -o $@

$(BUILD)/musl/storagefsd: $(call objs,musl,$(LIB_SRCS) $(SFS_SRCS) storagefs/main.c)
	$(MUSL_CC) $(MUSL_CFLAGS) -o $@ $^ $(MUSL_LIBS)
	strip $@

musl: $(BUILD)/musl/storagefsd

# --- libFuzzer targets: each tests/fuzz/fuzz_X.c links the library code ---
FUZZ_CFLAGS := $(CSTD) -g -O1 -fsanitize=fuzzer,address,undefined
$(BUILD)/fuzz/%: tests/fuzz/%.c $(LIB_SRCS) $(SFS_SRCS) | $(BUILD)/.deps-done
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CFLAGS) -o $@ $< $(LIB_SRCS) $(SFS_SRCS) $(HOST_LIBS)

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

test: deps host musl
	bash tests/run-all.sh $(BUILD)

bench: deps host
	bash tests/bench/run.sh $(BUILD)

run: deps host musl
	bash ci/run-node.sh $(BUILD)

clean:
	rm -rf $(BUILD)/host $(BUILD)/asan $(BUILD)/musl $(BUILD)/fuzz $(BUILD)/.deps-done

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
