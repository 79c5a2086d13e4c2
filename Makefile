.POSIX:
# kvstore: `make` builds the static binary, `make test` runs the suite.
CC      = musl-gcc
# Size is a feature (the image is the binary): no unwind tables (C needs
# none), unused functions and data dropped at link time, code pages not
# padded apart from the read-only data, and no RELRO segment: musl applies
# RELRO only in its dynamic linker, so in a static binary the segment
# protects nothing and costs up to a page of padding. Position-dependent
# code (Debian's compilers make PIE by default): a static binary that is
# not static-pie loads at a fixed address anyway, and absolute addresses
# take 4.3 KB less code than PIE's. A common page size of 8 keeps ld from
# starting the data on a fresh page of the file to save a page of memory:
# that padding (up to 4 KiB) came and went with the size of the data and
# the BSS, so the binary's size jumped by it as the code changed. No
# compiler idents: -fno-ident for ours, and objcopy drops the .comment
# section that the C runtime's start files bring (144 bytes).
CFLAGS  = -Os -fno-pie -fno-asynchronous-unwind-tables -ffunction-sections \
	-fdata-sections -fno-ident
LDFLAGS = -static -no-pie -s -Wl,--gc-sections -Wl,-z,noseparate-code \
	-Wl,-z,norelro -Wl,-z,common-page-size=8
LDLIBS  = -lpthread
OBJCOPY = objcopy
HOSTCC  = cc
ALL_CFLAGS = $(CFLAGS) -std=c99 -D_POSIX_C_SOURCE=200809L \
	-Wall -Wextra -Wpedantic -Wshadow -Wmissing-prototypes
OBJ = kvstore.o api.o cli.o client.o cm.o events.o fmt.o hash.o http.o \
	json.o node.o parse.o recover.o repl.o replica.o resolve.o status.o \
	store.o store_backup.o store_check.o store_compact.o txn.o ui.o util.o \
	wait.o
HDR = api.h cli.h client.h cm.h events.h fmt.h hash.h http.h json.h node.h \
	parse.h recover.h repl.h repl_int.h replica.h resolve.h status.h store.h \
	store_int.h txn.h ui.h util.h wait.h
UI = ui/index.html ui/app.js ui/app.css ui/icon.svg
# The store's files and those it calls: what tests/store_test and
# fuzz_store build in.
STORE_SRC = store.c store_backup.c store_check.c store_compact.c hash.c \
	fmt.c util.c
# The C unit tests link the modules they test (TEST_SRC_name); the other
# test programs are plain clients.
UNIT_TESTS = tests/fmt_test tests/http_test tests/repl_test \
	tests/replica_test tests/resolve_test \
	tests/store_test tests/store_test_softcrc tests/ui_test
CLIENTS = tests/abuse tests/cas tests/crashload
TESTS = $(UNIT_TESTS) $(CLIENTS) tests/noipv6 tests/fakedns
# What `make test` and `make run` need, checked (and as root installed)
# once, before anything is built: `make` alone never installs.
NEED = musl-gcc cc

all: kvstore

kvstore: $(OBJ)
	$(CC) $(LDFLAGS) -o $@ $(OBJ) $(LDLIBS)
	$(OBJCOPY) -R .comment $@

.c.o:
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# Cold code, run once per command (the CLI, check and salvage, backups)
# or once at start (unpacking the console),
# built for size alone: -Oz there takes 0.2 KB off; on the whole program
# it would also slow the server's paths.
COLD = cli.o cm.o store_backup.o store_check.o
COLD_CFLAGS = -Oz
cli.o: cli.c ui/usage.h
cm.o: cm.c
store_backup.o: store_backup.c
store_check.o: store_check.c
$(COLD):
	$(CC) $(ALL_CFLAGS) $(COLD_CFLAGS) -c -o $@ $(@:.o=.c)

$(OBJ): $(HDR)

# The web console (ui/), shrunk and packed into a header at build time by
# ui/pack (with cm.c, whose unpacker the server runs), which runs here and
# so is built with the host's compiler.
ui.o: ui/assets.h

ui/assets.h: ui/embed.sh ui/pack $(UI)
	sh ui/embed.sh ui/pack $(UI) >$@.tmp && mv $@.tmp $@

# The CLI's usage text is packed the same way.
ui/usage.h: ui/pack ui/usage.txt
	ui/pack usage <ui/usage.txt >$@.tmp && mv $@.tmp $@

ui/pack: ui/pack.c cm.c cm.h
	$(HOSTCC) -O2 -I. -o $@ ui/pack.c cm.c

TEST_SRC_fmt_test = fmt.c util.c
TEST_SRC_http_test = http.c parse.c fmt.c util.c
TEST_SRC_repl_test = repl.c recover.c client.c parse.c resolve.c $(STORE_SRC)
TEST_SRC_resolve_test = resolve.c fmt.c util.c
TEST_SRC_store_test = $(STORE_SRC)
TEST_SRC_store_test_softcrc = $(STORE_SRC)
TEST_SRC_ui_test = ui.c cm.c util.c fmt.c
# replica_test builds replica.c into itself (as fuzz_api does) and links
# the rest of the server but kvstore.c.
TEST_SRC_replica_test = api.c client.c cm.c events.c http.c json.c node.c \
	parse.c recover.c repl.c resolve.c status.c txn.c ui.c wait.c \
	$(STORE_SRC) \
	tests/from_primary.c
# http_test counts its connections' buffer growths (--wrap=resize);
# repl_test stands in for the resolver (--wrap) to move a replica's
# address; replica_test catches the answers and the loop's wake-ups, and
# with fuzz_api stands in for the primary's address check (from_primary.c);
# store_test_softcrc runs store_test with the CRC tables that CPUs
# without SSE4.2 use; both stand in for rename (--wrap) to die between
# the two renames that put a store and its index in place.
TEST_FLAGS_http_test = -Wl,--wrap=resize
TEST_FLAGS_repl_test = -Wl,--wrap=resolve_host
TEST_FLAGS_replica_test = -Wl,--wrap=http_reply,--wrap=http_wake \
	-Wl,--wrap=http_peer,--wrap=repl_from_primary
TEST_FLAGS_store_test = -Wl,--wrap=rename
TEST_FLAGS_store_test_softcrc = -DKV_SOFT_CRC -Wl,--wrap=rename

tests/fmt_test: tests/fmt_test.c fmt.c util.c $(HDR)
tests/http_test: tests/http_test.c http.c parse.c fmt.c util.c $(HDR)
tests/repl_test: tests/repl_test.c repl.c recover.c client.c parse.c \
	resolve.c $(STORE_SRC) $(HDR)
tests/resolve_test: tests/resolve_test.c resolve.c fmt.c util.c $(HDR)
tests/replica_test: tests/replica_test.c $(OBJ:.o=.c) tests/from_primary.c \
	$(HDR) ui/assets.h
tests/store_test: tests/store_test.c $(STORE_SRC) $(HDR)
tests/store_test_softcrc: tests/store_test.c $(STORE_SRC) $(HDR)
tests/ui_test: tests/ui_test.c ui.c cm.c util.c fmt.c $(HDR) ui/assets.h ui/pack
$(UNIT_TESTS):
	$(CC) $(ALL_CFLAGS) $(TEST_FLAGS_$(@F)) -I. $(LDFLAGS) -o $@ \
	    tests/$(@F:_softcrc=).c $(TEST_SRC_$(@F)) $(LDLIBS)

$(CLIENTS): tests/%: tests/%.c
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(LDLIBS)

# A seccomp wrapper; the host's compiler, since musl ships no Linux headers.
tests/noipv6: tests/noipv6.c
	$(HOSTCC) -O2 -std=c99 -Wall -Wextra -o $@ tests/noipv6.c

# A DNS server from a zone file, for tests/suite_resolve.sh (and the
# network namespace's loopback, which it brings up).
tests/fakedns: tests/fakedns.c
	$(HOSTCC) -O2 -std=c99 -Wall -Wextra -o $@ tests/fakedns.c

# A primary on 8081 and replicas on 8082 and 8083, data in ./data.
run: need-run kvstore
	./tests/cluster.sh

test: need-test kvstore $(TESTS)
	./test.sh

# The suite with the long tests at their full bounds (load, crash loops).
test-long: need-test kvstore $(TESTS)
	KV_LONG=1 ./test.sh

# Listed first, so that a serial make installs before it compiles.
need-run:
	@sh tests/need.sh $(NEED)
need-test:
	@sh tests/need.sh $(NEED) shunit2 curl

# The whole suite again, built with AddressSanitizer and UBSan.
asan:
	$(MAKE) clean
	$(MAKE) CC=cc CFLAGS="-O1 -g -fno-omit-frame-pointer \
	    -fsanitize=address,undefined -fno-sanitize-recover=all" \
	    LDFLAGS="-fsanitize=address,undefined" test
	$(MAKE) clean

# The C unit tests under valgrind's memcheck, built with gcc and glibc:
# a memory error or a definite or indirect leak fails. The power-loss
# simulation runs 4 rounds there, as it is some 40 times slower.
# valgrind runs one thread at a time, and by default a thread that never
# makes a system call (a test waiting in store_step for the flusher) can
# keep the CPU from the others for many seconds: --fair-sched=yes takes
# turns (one test took 1 to 3 s with it, 1 to 21 s and once minutes
# without).
VALGRIND = valgrind -q --error-exitcode=1 --leak-check=full \
	--errors-for-leak-kinds=definite,indirect \
	--show-leak-kinds=definite,indirect --fair-sched=yes
valgrind:
	@sh tests/need.sh valgrind
	$(MAKE) clean
	$(MAKE) CC=gcc CFLAGS="-g -O1" LDFLAGS= tests/fmt_test \
	    tests/http_test tests/repl_test tests/replica_test \
	    tests/resolve_test tests/store_test tests/ui_test
	d=$$(mktemp -d) && { $(VALGRIND) tests/fmt_test && \
	    $(VALGRIND) tests/http_test && \
	    $(VALGRIND) tests/resolve_test && \
	    $(VALGRIND) tests/repl_test && \
	    $(VALGRIND) tests/replica_test && \
	    $(VALGRIND) tests/ui_test ui/pack "$$d" && \
	    STORE_TEST_POWER_ROUNDS=4 $(VALGRIND) tests/store_test "$$d"; }; \
	    s=$$?; rm -rf "$$d"; $(MAKE) clean; exit $$s

# The whole suite again, built with ThreadSanitizer (gcc and glibc: musl
# has no TSan runtime). Reports go to tsan.out/ rather than to the servers'
# logs, and any report fails the run.
tsan:
	$(MAKE) clean
	rm -rf tsan.out && mkdir tsan.out
	TSAN_OPTIONS="log_path=$$(pwd)/tsan.out/race" KV_TSAN=1 $(MAKE) CC=gcc \
	    CFLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=thread" \
	    LDFLAGS="-fsanitize=thread" test
	@if ls tsan.out/race.* >/dev/null 2>&1; then cat tsan.out/race.*; \
	    echo "tsan: $$(ls tsan.out | wc -l) reports in tsan.out/"; \
	    exit 1; fi
	$(MAKE) clean

clean:
	rm -f kvstore $(OBJ) $(TESTS) bench/lag bench/load bench/kvstore-prof \
	    ui/pack ui/assets.h ui/assets.h.tmp ui/usage.h ui/usage.h.tmp

# The web console in a real browser: Debian's chromium and playwright-core
# (installed by the runner into /tmp/kvstore-ui-tools when missing).
test-ui: kvstore
	bash tests/ui/run.sh

.PHONY: all run test test-long test-ui asan tsan valgrind clean bench \
	need-run need-test

# Benchmarks (bench/run.sh): wrk against real servers on 127.0.0.1,
# figures into bench/RESULTS.md. bench/lag and bench/load are plain libc
# clients.
BENCH_CC = cc
bench/lag: bench/lag.c
	$(BENCH_CC) -O2 -std=c99 -Wall -Wextra -o $@ bench/lag.c

bench/load: bench/load.c
	$(BENCH_CC) -O2 -std=c99 -Wall -Wextra -o $@ bench/load.c

bench: kvstore bench/lag bench/load
	bash bench/run.sh

# GET and PUT of this tree's kvstore against BASE's (a git revision, by
# default the last commit), in alternating pairs (bench/compare.sh):
# whether a change costs throughput. About 2 minutes.
BASE = HEAD
bench-compare: kvstore bench/lag bench/load
	d=$$(mktemp -d) && git worktree add -q --detach "$$d/src" $(BASE) && \
	    $(MAKE) -s -C "$$d/src" kvstore && cp "$$d/src/kvstore" "$$d/base" && \
	    git worktree remove --force "$$d/src" && \
	    BENCH_CMP_BASE_NAME="$$(git rev-parse --short $(BASE))" \
	    bash bench/compare.sh "$$d/base"; s=$$?; rm -rf "$$d"; exit $$s
.PHONY: bench-compare

# The cost as the data grows, at 1M and 10M keys (bench/scale.sh): some
# 1.3 GB of scratch data on the local disk and about 5 minutes; opt-in.
bench-scale: kvstore bench/lag bench/load
	bash bench/scale.sh
.PHONY: bench-scale

# Instructions per GET and per PUT, counted by callgrind (stable where
# timings are not), into bench/PROFILE.md. The server is built apart,
# optimised and with symbols, against musl like the release.
PROFILE_CC = musl-gcc
PROFILE_CFLAGS = -O2 -g
bench/kvstore-prof: $(OBJ:.o=.c) $(HDR) ui/assets.h ui/usage.h
	@sh tests/need.sh $(PROFILE_CC)
	$(PROFILE_CC) $(PROFILE_CFLAGS) -std=c99 -D_POSIX_C_SOURCE=200809L \
	    -static -o $@ $(OBJ:.o=.c) $(LDLIBS)

profile: bench/kvstore-prof bench/load
	bash bench/profile.sh

.PHONY: profile

# The image and the chart, run with Docker as a kubelet would: static chart
# checks, then the deployment test (root; installs Docker, helm, node tools).
test-deploy:
	sh tests/deploy/chart-check.sh
	bash tests/deploy/run.sh

.PHONY: test-deploy

# libFuzzer targets for the request parser, the replication decoder,
# store recovery, the API, the JSON reader and the DNS answer parser,
# each run FUZZ_SECONDS from tests/fuzz/corpus.
FUZZ_SECONDS = 60
FUZZ_CC = clang
FUZZ_CFLAGS = -g -O1 -std=c99 -D_POSIX_C_SOURCE=200809L \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZERS = tests/fuzz/fuzz_http tests/fuzz/fuzz_repl tests/fuzz/fuzz_store \
	tests/fuzz/fuzz_api tests/fuzz/fuzz_json tests/fuzz/fuzz_resolve

FUZZ_SRC_fuzz_http = parse.c fmt.c util.c
FUZZ_SRC_fuzz_repl = repl.c recover.c client.c parse.c resolve.c \
	$(STORE_SRC)
FUZZ_SRC_fuzz_store = $(STORE_SRC)
FUZZ_SRC_fuzz_json = json.c
FUZZ_SRC_fuzz_resolve = resolve.c fmt.c util.c
# fuzz_api builds replica.c into itself, to reach its sync token, and
# stands in for the primary's address check (no input has a connection).
FUZZ_SRC_fuzz_api = api.c client.c cm.c events.c fmt.c hash.c http.c json.c \
	node.c parse.c recover.c repl.c resolve.c status.c store.c \
	store_backup.c \
	store_check.c store_compact.c txn.c ui.c util.c wait.c \
	tests/from_primary.c \
	-Wl,--wrap=http_peer,--wrap=repl_from_primary

tests/fuzz/fuzz_http: tests/fuzz/fuzz_http.c parse.c fmt.c util.c $(HDR)
tests/fuzz/fuzz_repl: tests/fuzz/fuzz_repl.c repl.c recover.c client.c \
	parse.c resolve.c $(STORE_SRC) $(HDR)
tests/fuzz/fuzz_store: tests/fuzz/fuzz_store.c $(STORE_SRC) $(HDR)
tests/fuzz/fuzz_api: tests/fuzz/fuzz_api.c $(OBJ:.o=.c) tests/from_primary.c \
	$(HDR) ui/assets.h
tests/fuzz/fuzz_json: tests/fuzz/fuzz_json.c json.c json.h
tests/fuzz/fuzz_resolve: tests/fuzz/fuzz_resolve.c resolve.c resolve.h \
	fmt.c util.c $(HDR)
$(FUZZERS):
	@sh tests/need.sh $(FUZZ_CC)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -I. -o $@ $@.c $(FUZZ_SRC_$(@F)) $(LDLIBS)

fuzz: $(FUZZERS)
	sh tests/fuzz/run.sh $(FUZZ_SECONDS)

.PHONY: fuzz
