.POSIX:
# kvstore: `make` builds the static binary, `make test` runs the suite.
CC      = musl-gcc
CFLAGS  = -Os
LDFLAGS = -static -s
LDLIBS  = -lpthread
ALL_CFLAGS = $(CFLAGS) -std=c99 -D_POSIX_C_SOURCE=200809L \
	-Wall -Wextra -Wpedantic -Wshadow -Wmissing-prototypes
OBJ = kvstore.o http.o repl.o store.o
TESTS = tests/http_test tests/repl_test tests/store_test

all: kvstore

kvstore: $(OBJ)
	$(CC) $(LDFLAGS) -o $@ $(OBJ) $(LDLIBS)

.c.o:
	@sh tests/need.sh $(CC)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(OBJ): http.h repl.h store.h

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

# The whole suite again, built with AddressSanitizer and UBSan.
asan:
	$(MAKE) clean
	$(MAKE) CC=cc CFLAGS="-O1 -g -fno-omit-frame-pointer \
	    -fsanitize=address,undefined -fno-sanitize-recover=all" \
	    LDFLAGS="-fsanitize=address,undefined" test
	$(MAKE) clean

clean:
	rm -f kvstore $(OBJ) $(TESTS)

.PHONY: all run test asan clean
