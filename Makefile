.POSIX:
# kvstore: `make` builds the static binary, `make test` runs the suite.
CC      = musl-gcc
CFLAGS  = -Os
LDFLAGS = -static -s
LDLIBS  = -lpthread
ALL_CFLAGS = $(CFLAGS) -std=c99 -D_POSIX_C_SOURCE=200809L \
	-Wall -Wextra -Wpedantic -Wshadow -Wmissing-prototypes
OBJ = kvstore.o http.o repl.o store.o
TESTS = tests/cas tests/crashload tests/http_test tests/repl_test \
	tests/store_test

all: kvstore

kvstore: $(OBJ)
	$(CC) $(LDFLAGS) -o $@ $(OBJ) $(LDLIBS)

.c.o:
	@sh tests/need.sh $(CC)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(OBJ): http.h repl.h store.h

tests/cas: tests/cas.c
	@sh tests/need.sh $(CC)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ tests/cas.c $(LDLIBS)

tests/crashload: tests/crashload.c
	@sh tests/need.sh $(CC)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ tests/crashload.c $(LDLIBS)

tests/http_test: tests/http_test.c http.c http.h
	@sh tests/need.sh $(CC)
	$(CC) $(ALL_CFLAGS) -I. $(LDFLAGS) -o $@ tests/http_test.c http.c

tests/repl_test: tests/repl_test.c repl.c repl.h
	@sh tests/need.sh $(CC)
	$(CC) $(ALL_CFLAGS) -I. $(LDFLAGS) -o $@ tests/repl_test.c repl.c \
	    $(LDLIBS)

tests/store_test: tests/store_test.c store.c store.h
	@sh tests/need.sh $(CC)
	$(CC) $(ALL_CFLAGS) -I. $(LDFLAGS) -o $@ tests/store_test.c store.c \
	    $(LDLIBS)

# A primary on 8081 and replicas on 8082 and 8083, data in ./data.
run: kvstore
	./tests/cluster.sh

test: kvstore $(TESTS)
	@sh tests/need.sh shunit2 curl
	./test.sh

# The suite with the long tests at their full bounds (load, crash loops).
test-long: kvstore $(TESTS)
	@sh tests/need.sh shunit2 curl
	KV_LONG=1 ./test.sh

# The whole suite again, built with AddressSanitizer and UBSan.
asan:
	$(MAKE) clean
	$(MAKE) CC=cc CFLAGS="-O1 -g -fno-omit-frame-pointer \
	    -fsanitize=address,undefined -fno-sanitize-recover=all" \
	    LDFLAGS="-fsanitize=address,undefined" test
	$(MAKE) clean

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
	rm -f kvstore $(OBJ) $(TESTS)

.PHONY: all run test test-long asan tsan clean bench

# Benchmarks (bench/run.sh): wrk against real servers on 127.0.0.1,
# figures into bench/RESULTS.md. bench/lag is a plain libc client.
BENCH_CC = cc
bench/lag: bench/lag.c
	$(BENCH_CC) -O2 -std=c99 -Wall -Wextra -o $@ bench/lag.c

bench: kvstore bench/lag
	bash bench/run.sh

# The image and the chart, run with Docker as a kubelet would: static chart
# checks, then the deployment test (root; installs Docker, helm, node tools).
test-deploy:
	sh tests/deploy/chart-check.sh
	bash tests/deploy/run.sh

.PHONY: test-deploy

# libFuzzer targets for the request parser, the replication decoder and
# store recovery, each run FUZZ_SECONDS from tests/fuzz/corpus.
FUZZ_SECONDS = 60
FUZZ_CC = clang
FUZZ_CFLAGS = -g -O1 -std=c99 -D_POSIX_C_SOURCE=200809L \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZERS = tests/fuzz/fuzz_http tests/fuzz/fuzz_repl tests/fuzz/fuzz_store

tests/fuzz/fuzz_http: tests/fuzz/fuzz_http.c http.c http.h
	@sh tests/need.sh $(FUZZ_CC)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -I. -o $@ tests/fuzz/fuzz_http.c http.c

tests/fuzz/fuzz_repl: tests/fuzz/fuzz_repl.c repl.c repl.h
	@sh tests/need.sh $(FUZZ_CC)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -I. -o $@ tests/fuzz/fuzz_repl.c repl.c \
	    $(LDLIBS)

tests/fuzz/fuzz_store: tests/fuzz/fuzz_store.c store.c store.h
	@sh tests/need.sh $(FUZZ_CC)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -I. -o $@ tests/fuzz/fuzz_store.c store.c \
	    $(LDLIBS)

fuzz: $(FUZZERS)
	sh tests/fuzz/run.sh $(FUZZ_SECONDS)

.PHONY: fuzz
