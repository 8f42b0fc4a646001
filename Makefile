# moonshim — build, test, benchmark.
#   make            build/moonshim, its libraries and test programs
#   make test       install what is missing (deps), then every test suite
#   make demo       a Go web service in a busybox bundle under `moonshim run`
#   make go-fixtures  the Go leak and scheduler fixtures in build/go-fixtures
#   make bench      benchmarks against Go's runtime, cgroup watching against
#                   1 s polling, `moonshim run` against runc, and the containerd
#                   shim against containerd-shim-runc-v2 (ratios)
#   make critest    cri-tools' critest, every case, against containerd 2.4's CRI
#                   with the moon and the runc handler (counts side by side)
#   make asan|tsan  the tests under sanitizers
#   make fuzz       each libFuzzer target (tests/fuzz) for FUZZ_SECONDS (60)
# Variants build into their own directories: build/ (native), build/asan,
# build/tsan, build/aarch64 (cross-compiled, run under qemu-user).

PREFIX  ?= /usr/local
SYSTEMD_UNIT_DIR ?= /etc/systemd/system
DESTDIR ?=
B       ?= build
CC      ?= gcc
ARCH    ?= $(shell $(CC) -dumpmachine | cut -d- -f1)
OPT     ?= -O2 -flto=auto -ffat-lto-objects # LTO inlines the small cross-file helpers; fat objects keep the installed archive usable without LTO
AR      := $(if $(findstring -flto,$(OPT)),gcc-ar,$(AR))
SAN     ?=
CFLAGS  ?=
WARN    := -Wall -Wextra -Werror -Wno-unused-parameter
ALL_CFLAGS := -std=gnu11 $(OPT) -g -fno-omit-frame-pointer $(WARN) $(SAN) -Iruntime $(CFLAGS)
LDLIBS  := -lpthread
# Every Go program we build (the demo, the benchmark twins, the Go fixtures)
# is built by GO, never by `go` from PATH (Debian's golang-go, Go 1.19, is
# kept only for the parser tests' captures: tests/go/capture-formats.sh).
# GO127 is Go 1.27.3, fetched once through the module proxy into the module
# cache by GOTOOLCHAIN (for what needs Go 1.27, e.g. the goroutineleak
# profile): `$(GO127) build` in a recipe, `env $$GO127 build` in a script.
GO      ?= /usr/local/go/bin/go
GO127   ?= GOTOOLCHAIN=go1.27.3 $(GO)
export GO GO127

RT_SRC  := $(wildcard runtime/*.c)
RT_OBJ  := $(RT_SRC:%.c=$(B)/%.o) $(B)/runtime/switch_$(ARCH).o
RT_LIB  := $(B)/libmoonrt.a

CG_SRC  := $(wildcard cgroup/*.c)
CG_OBJ  := $(CG_SRC:%.c=$(B)/%.o)
CG_LIB  := $(B)/libmooncg.a

TEST_SRC := tests/harness.c $(wildcard tests/runtime/*.c)
TEST_BIN := $(B)/tests/runtime_tests
CG_TEST_BIN := $(B)/tests/cgroup_tests

# shim/ by subsystem, one public header each (README, "Source layout").
# Each folder compiles with the include paths of the folders it may use and
# no others, so a forbidden #include fails to build; tests/check-layers.sh
# (make check-layers) also checks the direct includes against the same table.
#   runtime <- cgroup <- base <- {oci, io} <- {spawn, go} <- lua <- supervise <- {cli, containerd} <- main.c
# (runtime/ is on every path: cgroup.h includes rt.h)
SHIM_DIRS := base oci io spawn go lua supervise cli containerd
USES_base       :=
USES_oci        := base
USES_io         := base
USES_spawn      := base oci
USES_go         := base oci io
USES_lua        := base oci io spawn go
USES_supervise  := $(USES_lua) lua
USES_cli        := $(USES_supervise) supervise
USES_containerd := $(USES_supervise) supervise
USES_main       := base cli containerd
# outside headers per folder: libnl for the container's loopback, Lua's
# from lua up, the generated protobuf code in containerd only
EXT_oci        := -I/usr/include/libnl3
EXT_lua        := -I/usr/include/lua5.4
EXT_supervise  := -I/usr/include/lua5.4
EXT_cli        := -I/usr/include/lua5.4
EXT_containerd := -I/usr/include/lua5.4 -I$(B)/shim/containerd/proto
dir_inc = -Icgroup $(foreach d,$(1) $(USES_$(1)),-iquote shim/$(d)) $(EXT_$(1))
$(foreach d,$(SHIM_DIRS),$(eval $(B)/shim/$(d)/%.o: DIR_INC = $(call dir_inc,$(d))))
$(B)/shim/main.o: DIR_INC = -Icgroup $(foreach d,$(USES_main),-iquote shim/$(d))
$(B)/cgroup/%.o: DIR_INC = -Icgroup
# tests, benchmarks and fuzz targets see every folder (they test internals)
SHIM_ALL_INC := $(foreach d,$(SHIM_DIRS),-iquote shim/$(d)) $(sort $(foreach d,$(SHIM_DIRS),$(EXT_$(d))))

SHIM_SRC := $(foreach d,$(SHIM_DIRS),$(wildcard shim/$(d)/*.c))
SHIM_HDR := $(foreach d,$(SHIM_DIRS),$(wildcard shim/$(d)/*.h))
SHIM_BIN := $(B)/moonshim
# protobuf messages (containerd's task API, ttrpc's envelope, events):
# shim/containerd/proto/**/*.proto -> $(B)/shim/containerd/proto/**/*.pb-c.[ch]
# with protoc-c at build time
PROTO_DIR := shim/containerd/proto
PROTO_OUT := $(B)/shim/containerd/proto
PROTO_SRC := $(shell find $(PROTO_DIR) -name '*.proto' 2>/dev/null)
PROTO_C   := $(PROTO_SRC:$(PROTO_DIR)/%.proto=$(PROTO_OUT)/%.pb-c.c)
PROTO_H   := $(PROTO_C:.c=.h)
PROTO_OBJ := $(PROTO_C:.c=.o)
# containers: OCI JSON, capabilities, seccomp, netlink (loopback)
SHIM_INC  := $(SHIM_ALL_INC)
SHIM_LIBS := -ljansson -lcap -lseccomp -lnl-route-3 -lnl-3 -lprotobuf-c -llua5.4 -lm
# The program is linked statically (Debian's .a files) unless sanitized: a
# supervisor then maps only the code it links, not all of libc and five
# shared libraries (resident 1.3 MB instead of 2.2 MB), and starts without
# relocating them. libnl's unused name lookups make ld warn about NSS; we
# never call them.
# The functions a settled supervisor runs, side by side at the start of the
# code (shim/idle_path_ld.sh says why): our code in per-function sections,
# and a generated script that places them and the archive members it names.
IDLE_PATH_LD := $(B)/idle_path.ld
IDLE_PATH_LDFLAGS = -ffunction-sections -Wl,-T,$(IDLE_PATH_LD)
IDLE_PATH_ARCHIVES = $(RT_LIB) $(foreach l,c $(SHIM_LIBS:-l%=%),$(shell $(CC) -print-file-name=lib$(l).a))
SHIM_LDFLAGS := $(if $(SAN),,-static -Wl,--no-warnings $(IDLE_PATH_LDFLAGS))

.PHONY: all runtime test check check-layers check-format deps bench demo go-fixtures eval-go vmtest asan tsan aarch64 fuzz fuzz-build fuzz-bins install clean format critest
SHIM_LIB := $(B)/libmoonshim.a
CT_TEST_BIN := $(B)/tests/container_tests
CT_CHECKS := $(B)/tests/sc_check $(B)/tests/dev_check $(B)/tests/exec_deep $(B)/tests/ttcall
CD_TEST_BIN := $(B)/tests/containerd_tests
LUA_TEST_BIN := $(B)/tests/lua_tests
GO_TEST_BIN := $(B)/tests/go_tests

all: runtime $(CG_LIB) $(CG_TEST_BIN) $(SHIM_BIN) $(B)/containerd-shim-moon-v2 $(CT_TEST_BIN) $(CT_CHECKS) $(CD_TEST_BIN) $(LUA_TEST_BIN) $(GO_TEST_BIN)
runtime: $(RT_LIB) $(TEST_BIN) $(B)/rt_demo

# each object's headers come from the compiler (-MMD -MP: $(B)/X.d beside
# X.o, read back below); the generated protobuf headers must exist first
$(B)/%.o: %.c | $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP $(DIR_INC) -c $< -o $@

$(PROTO_OUT)/%.pb-c.c $(PROTO_OUT)/%.pb-c.h: $(PROTO_DIR)/%.proto $(PROTO_SRC)
	@mkdir -p $(PROTO_OUT)
	protoc-c --proto_path=$(PROTO_DIR) --c_out=$(PROTO_OUT) $<

# generated files are kept (make would delete them as intermediates)
.SECONDARY: $(PROTO_C) $(PROTO_H)

# generated code: its own warnings are not ours to fix
$(PROTO_OUT)/%.pb-c.o: $(PROTO_OUT)/%.pb-c.c $(PROTO_H)
	$(CC) -std=gnu11 $(OPT) -g $(SAN) -I$(PROTO_OUT) $(CFLAGS) -c $< -o $@

$(B)/runtime/switch_$(ARCH).o: runtime/switch_$(ARCH).S
	@mkdir -p $(dir $@)
	$(CC) $(SAN) -c $< -o $@

$(RT_LIB): $(RT_OBJ)
	rm -f $@
	$(AR) rcs $@ $^

$(TEST_BIN): $(TEST_SRC) tests/harness.h $(RT_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests $(TEST_SRC) $(RT_LIB) $(LDLIBS) -o $@

$(CG_LIB): $(CG_OBJ)
	rm -f $@
	$(AR) rcs $@ $^

$(CG_TEST_BIN): tests/harness.c $(wildcard tests/cgroup/*.c tests/cgroup/*.h) tests/harness.h $(CG_LIB) $(RT_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests -Itests/cgroup -Icgroup tests/harness.c $(wildcard tests/cgroup/*.c) $(CG_LIB) $(RT_LIB) $(LDLIBS) -o $@

# the release and the commit it is built from (shim/base/version.h), in one
# generated file rewritten only when they change
VERSION := 0.13.0
COMMIT  := $(shell git rev-parse --short HEAD 2>/dev/null)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)
$(B)/gen/version.c: FORCE
	@mkdir -p $(dir $@)
	@printf '/* generated by the Makefile */\nconst char ms_version[] = "%s";\nconst char ms_commit[] = "%s";\n' \
	  '$(VERSION)' '$(or $(COMMIT),unknown)' >$@.new
	@cmp -s $@.new $@ && rm $@.new || mv $@.new $@
$(B)/gen/version.o: $(B)/gen/version.c
	$(CC) -std=gnu11 $(OPT) $(SAN) -c $< -o $@
.PHONY: FORCE
FORCE:

# the shim's modules without main(), for the unit tests and checkers
# policies/default.lua (the policy when none is given) and policies/ladder.lua
# (a library for policies), compiled in as byte arrays moonshim_lua_NAME
LUA_BUILTIN := $(B)/gen/default_lua.o $(B)/gen/ladder_lua.o $(B)/gen/version.o
$(B)/gen/%_lua.c: policies/%.lua
	@mkdir -p $(dir $@)
	{ echo '/* generated from $< */'; \
	  echo 'const unsigned char moonshim_lua_$*[] = {'; \
	  od -An -v -tx1 $< | sed 's/\([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	  echo '};'; \
	  echo 'const unsigned long moonshim_lua_$*_len = sizeof moonshim_lua_$*;'; } > $@

$(B)/gen/%_lua.o: $(B)/gen/%_lua.c
	$(CC) -std=gnu11 $(OPT) $(SAN) -c $< -o $@

$(SHIM_LIB): $(SHIM_SRC:%.c=$(B)/%.o) $(PROTO_OBJ) $(LUA_BUILTIN)
	rm -f $@
	$(AR) rcs $@ $^

$(SHIM_BIN): $(B)/shim/main.o $(SHIM_LIB) $(CG_LIB) $(RT_LIB) $(if $(SAN),,$(IDLE_PATH_LD))
	$(CC) $(ALL_CFLAGS) $(SHIM_LDFLAGS) $(filter-out %.ld,$^) $(LDLIBS) $(SHIM_LIBS) -o $@

$(IDLE_PATH_LD): shim/idle_path.syms shim/idle_path_ld.sh $(RT_LIB)
	@mkdir -p $(@D)
	sh shim/idle_path_ld.sh $< $(IDLE_PATH_ARCHIVES) >$@

# containerd finds runtime io.containerd.moon.v2 as this name on its PATH
$(B)/containerd-shim-moon-v2: $(SHIM_BIN)
	ln -sf moonshim $@

# the lower folders' unit tests (tests/base, tests/io, the self-watch of tests/go),
# and cli/'s metrics collector and observe helpers (tests/cli)
CT_TEST_SRC := $(wildcard tests/base/*_test.c tests/io/*_test.c tests/supervise/*_test.c tests/cli/*_test.c) tests/go/selfwatch_test.c
$(CT_TEST_BIN): tests/harness.c $(CT_TEST_SRC) tests/harness.h $(SHIM_HDR) $(SHIM_LIB) $(CG_LIB) $(RT_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests -Icgroup $(SHIM_INC) tests/harness.c $(CT_TEST_SRC) $(SHIM_LIB) $(CG_LIB) $(RT_LIB) $(LDLIBS) $(SHIM_LIBS) -o $@

$(CD_TEST_BIN): tests/harness.c $(wildcard tests/containerd/*_test.c) tests/harness.h $(SHIM_HDR) $(SHIM_LIB) $(CG_LIB) $(RT_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests -Icgroup $(SHIM_INC) tests/harness.c $(wildcard tests/containerd/*_test.c) $(SHIM_LIB) $(CG_LIB) $(RT_LIB) $(LDLIBS) $(SHIM_LIBS) -o $@

# a raw ttrpc Exec to a running shim (tests/containerd/e2e.sh, case exec_deep)
$(B)/tests/exec_deep: tests/containerd/exec_deep.c $(SHIM_HDR) $(SHIM_LIB) $(CG_LIB) $(RT_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Icgroup $(SHIM_INC) tests/containerd/exec_deep.c $(SHIM_LIB) $(CG_LIB) $(RT_LIB) $(LDLIBS) $(SHIM_LIBS) -o $@

# Update, Stats or State sent straight to a running shim (e2e case
# cpuset_update, bench stats_cost)
$(B)/tests/ttcall: tests/containerd/ttcall.c $(SHIM_HDR) $(SHIM_LIB) $(CG_LIB) $(RT_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Icgroup $(SHIM_INC) tests/containerd/ttcall.c $(SHIM_LIB) $(CG_LIB) $(RT_LIB) $(LDLIBS) $(SHIM_LIBS) -o $@

$(LUA_TEST_BIN): tests/harness.c $(wildcard tests/lua/*_test.c) tests/lua/testnet.c tests/lua/testnet.h tests/lua/lwtest.h tests/harness.h $(SHIM_HDR) $(SHIM_LIB) $(CG_LIB) $(RT_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests -Icgroup $(SHIM_INC) tests/harness.c $(wildcard tests/lua/*_test.c) tests/lua/testnet.c $(SHIM_LIB) $(CG_LIB) $(RT_LIB) $(LDLIBS) $(SHIM_LIBS) -o $@

# the Go parsers and detectors (shim/go/goparse.c, shim/go/godetect.c) are
# pure: their tests link them alone, without the shim's libraries
GO_OBJ := $(B)/shim/go/goparse.o $(B)/shim/go/godetect.o
GO_TEST_SRC := $(filter-out tests/go/selfwatch_test.c,$(wildcard tests/go/*_test.c))
$(GO_TEST_BIN): tests/harness.c $(GO_TEST_SRC) tests/harness.h tests/go/captures.h shim/go/goparse.h shim/go/godetect.h $(GO_OBJ) $(RT_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests tests/harness.c $(GO_TEST_SRC) $(GO_OBJ) $(RT_LIB) $(LDLIBS) -lm -o $@

$(B)/tests/%_check: tests/oci/%_check.c $(SHIM_HDR) $(SHIM_LIB) $(CG_LIB) $(RT_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Icgroup $(SHIM_INC) $< $(SHIM_LIB) $(CG_LIB) $(RT_LIB) $(LDLIBS) $(SHIM_LIBS) -o $@

$(B)/rt_demo: tests/demo/rt_demo.c $(RT_LIB)
	$(CC) $(ALL_CFLAGS) $< $(RT_LIB) $(LDLIBS) -o $@

# The main job on a built-in default: a Go web service in a moonshim container
# with memory, pids and CPU limits, its log beside the cgroup's events
# (tests/demo/run.sh; DEMO_SECONDS=N stops it by itself). The runtime's own
# demo, $(B)/rt_demo, is still built by `runtime`.
demo: deps all $(B)/demo/web
	bash tests/demo/run.sh $(B)/moonshim $(B)/demo/web

# GO's version, rewritten only when it changes: the Go programs depend on it,
# so a new toolchain (GO=...) rebuilds them
GO_STAMP := $(B)/go-version
$(GO_STAMP): FORCE
	@mkdir -p $(dir $@); v=$$($(GO) env GOVERSION) || { echo "no Go toolchain at $(GO) (set GO=...)" >&2; exit 1; }; \
	  [ "$$(cat $@ 2>/dev/null)" = "$$v" ] || echo "$$v" >$@

$(B)/demo/web: tests/demo/web/main.go tests/demo/web/go.mod $(GO_STAMP)
	@mkdir -p $(dir $@)
	cd tests/demo/web && CGO_ENABLED=0 GOCACHE=$(abspath $(B))/gocache GOPATH=$(abspath $(B))/gopath $(GO) build -o $(abspath $@) .

# The Go programs the goroutine-leak and scheduler-anomaly detectors are
# tested against (tests/go/fixtures/README), static, in $(B)/go-fixtures.
go-fixtures:
	bash tests/go/build-fixtures.sh $(B)/go-fixtures

# every Go fixture under `moonshim run --go-watch`, 60 s each at most
# (tests/go/eval.sh; `make test` runs the idle pass with a 180 s limit as a guard)
eval-go: deps all
	bash tests/go/eval.sh 60

# ─── variants ────────────────────────────────────────────────────────────
asan:
	$(MAKE) B=build/asan CC=gcc OPT=-O1 SAN="-fsanitize=address,undefined -fno-sanitize-recover=all" all
tsan:
	$(MAKE) B=build/tsan CC=clang OPT=-O1 SAN="-fsanitize=thread" all
aarch64:
	$(MAKE) B=build/aarch64 CC=aarch64-linux-gnu-gcc ARCH=aarch64 OPT=-O2 CFLAGS=-static runtime

# ─── fuzzing (tests/fuzz) ─────────────────────────────────────────────────
# One libFuzzer target per parser of untrusted or operator input, built by
# clang into build/fuzz (objects with fuzzer-no-link; each target links the
# archives, so it pulls in only the objects it calls). `make fuzz` runs each
# for FUZZ_SECONDS, one at a time; `make test` replays their corpora.
FUZZ_SECONDS ?= 60
FUZZ_SAN := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
FUZZ_NAMES := $(patsubst tests/fuzz/%_fuzz.c,%,$(wildcard tests/fuzz/*_fuzz.c))
FUZZ_BINS := $(FUZZ_NAMES:%=$(B)/%_fuzz)
fuzz-build:
	$(MAKE) B=build/fuzz CC=clang OPT=-O1 SAN="$(FUZZ_SAN)" fuzz-bins
fuzz-bins: $(FUZZ_BINS)
$(B)/%_fuzz: tests/fuzz/%_fuzz.c tests/fuzz/fuzz.h $(SHIM_HDR) $(SHIM_LIB) $(CG_LIB) $(RT_LIB)
	$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer -Itests/fuzz -Icgroup $(SHIM_INC) $< $(SHIM_LIB) $(CG_LIB) $(RT_LIB) $(LDLIBS) $(SHIM_LIBS) -o $@
fuzz: deps fuzz-build
	bash tests/fuzz/run.sh build/fuzz $(FUZZ_SECONDS) $(FUZZ_NAMES)

# ─── set-up, tests, benchmarks ───────────────────────────────────────────
deps:
	bash .ci/deps.sh

# The runtime's and the cgroup module's suites, the containerd suite's Metrics
# case and the moonshim program inside a qemu VM on a pure cgroup v2 kernel.
vmtest: $(TEST_BIN) $(CG_TEST_BIN) $(CD_TEST_BIN) $(SHIM_BIN)
	bash tests/vm/run.sh $(B)/vm $(TEST_BIN) $(CG_TEST_BIN) $(CD_TEST_BIN) $(SHIM_BIN)

test: deps
	$(MAKE) all asan tsan aarch64 fuzz-build $(B)/bench/luabench
	bash tests/run.sh
check: test

# every #include "..." of shim/ against the layering above (tests/check-layers.sh)
check-layers:
	bash tests/check-layers.sh

# the compiler's header dependencies of every object built so far
-include $(patsubst %.c,$(B)/%.d,$(RT_SRC) $(CG_SRC) $(SHIM_SRC) shim/main.c)

$(B)/bench/moonbench: bench/bench.c $(RT_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< $(RT_LIB) $(LDLIBS) -o $@

$(B)/bench/gobench: bench/go/main.go bench/go/go.mod $(GO_STAMP)
	@mkdir -p $(dir $@)
	cd bench/go && GOCACHE=$(abspath $(B))/gocache GOPATH=$(abspath $(B))/gopath $(GO) build -o $(abspath $@) .

# bench/fixture.c: the private cgroups and exit children both share
BENCH_FIXTURE := bench/fixture.c bench/fixture.h

$(B)/bench/cgroupbench: bench/cgroup_bench.c $(BENCH_FIXTURE) $(CG_LIB) $(RT_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Icgroup $< bench/fixture.c $(CG_LIB) $(RT_LIB) $(LDLIBS) -o $@

$(B)/bench/luabench: bench/lua_bench.c $(BENCH_FIXTURE) $(SHIM_LIB) $(CG_LIB) $(RT_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Icgroup $(SHIM_INC) $< bench/fixture.c $(SHIM_LIB) $(CG_LIB) $(RT_LIB) $(LDLIBS) $(SHIM_LIBS) -o $@

# --go-watch's costs (bench/go_bench.c): the stderr tap against a plain pipe
# copy, pprof scrapes of a 10k-goroutine Go program (bench/go/scrape) against curl
$(B)/bench/gowatchbench: bench/go_bench.c $(BENCH_FIXTURE) $(SHIM_LIB) $(CG_LIB) $(RT_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Icgroup $(SHIM_INC) $< bench/fixture.c $(SHIM_LIB) $(CG_LIB) $(RT_LIB) $(LDLIBS) $(SHIM_LIBS) -o $@

$(B)/bench/goscrape: bench/go/scrape/main.go bench/go/scrape/go.mod $(GO_STAMP)
	@mkdir -p $(dir $@)
	cd bench/go/scrape && CGO_ENABLED=0 GOCACHE=$(abspath $(B))/gocache GOPATH=$(abspath $(B))/gopath $(GO) build -o $(abspath $@) .

# the full critest run (tests/cri/critest.sh; `make test` runs its focused subset)
critest: deps all
	bash tests/cri/critest.sh full

bench: deps $(B)/bench/moonbench $(B)/bench/gobench $(B)/bench/cgroupbench $(B)/moonshim $(B)/containerd-shim-moon-v2 $(B)/tests/ttcall $(B)/bench/luabench $(B)/bench/gowatchbench $(B)/bench/goscrape
	bash bench/run.sh $(B)/bench/moonbench $(B)/bench/gobench
	bash bench/run_cgroup.sh $(B)/bench/cgroupbench $(B)/moonshim
	bash bench/run_container.sh $(B)/moonshim
	bash bench/run_containerd.sh $(B)/containerd-shim-moon-v2
	cd24=$$(bash .ci/godeps.sh containerd2 | tail -n 1) runc15=$$(bash .ci/godeps.sh runc | tail -n 1) && \
	  CONTAINERD=$$cd24/containerd CTR=$$cd24/ctr PATH=$$runc15:$$PATH bash bench/run_containerd.sh $(B)/containerd-shim-moon-v2
	bash bench/run_cri.sh $(B)/containerd-shim-moon-v2
	bash bench/run_lua.sh $(B)/bench/luabench
	bash bench/run_go.sh $(B)/bench/gowatchbench $(B)/bench/goscrape
	bash bench/run_exporter.sh $(B)/moonshim

# the program and containerd's name for it, the shipped checks and policies
# (share/moonshim: copy one to /etc/moonshim/checks.lua or policy.lua to make
# it the default of every container of the shim), the runtime library, and
# the exporter's systemd unit (contrib/moonshim-metrics.service, into
# SYSTEMD_UNIT_DIR; then `systemctl enable --now moonshim-metrics`)
install: $(SHIM_BIN) $(RT_LIB)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include/moonshim \
	  $(DESTDIR)$(PREFIX)/share/moonshim/scripts $(DESTDIR)$(PREFIX)/share/moonshim/policies
	install -m 755 $(SHIM_BIN) $(DESTDIR)$(PREFIX)/bin/moonshim
	ln -sf moonshim $(DESTDIR)$(PREFIX)/bin/containerd-shim-moon-v2
	install -m 644 scripts/*.lua $(DESTDIR)$(PREFIX)/share/moonshim/scripts/
	install -m 644 policies/*.lua $(DESTDIR)$(PREFIX)/share/moonshim/policies/
	install -m 644 $(RT_LIB) $(DESTDIR)$(PREFIX)/lib/
	install -d $(DESTDIR)$(SYSTEMD_UNIT_DIR)
	sed 's|@BINDIR@|$(PREFIX)/bin|' contrib/moonshim-metrics.service >$(DESTDIR)$(SYSTEMD_UNIT_DIR)/moonshim-metrics.service
	chmod 644 $(DESTDIR)$(SYSTEMD_UNIT_DIR)/moonshim-metrics.service
	install -m 644 runtime/rt.h $(DESTDIR)$(PREFIX)/include/moonshim/

format:
	git ls-files '*.c' '*.h' | xargs clang-format -i
# every C file as clang-format writes it (tests/check-format.sh; in make test)
check-format:
	bash tests/check-format.sh

clean:
	rm -rf build
