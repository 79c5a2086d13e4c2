/*
 * http_test.c: table tests for the pure parts of http.c (http_parse,
 * http_dechunk, http_unescape, http_query, http_header), in the manner of
 * picohttpparser's test.c: raw input, expected outcome, one line per case,
 * plus generated cases (every prefix, every hostile byte in every position,
 * every split point, each limit and one past it). Prints one line per
 * failure with the input escaped and ends with a count; exits 0 only if all
 * passed. The admission check and the order in which the loop takes
 * requests are tested through the loop itself, run on a thread with
 * clients on 127.0.0.1. Build: cc -I. -o tests/http_test
 * tests/http_test.c http.c util.c -lpthread
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "parse.h"
#include "http.h"
#include "util.h"

#define WHOLE	(-100)	/* expected consumed: the whole input */

struct pcase {
	const char	*name;
	const char	*in;
	int		 want;		/* consumed, WHOLE, -2, or -1 */
	int		 status;	/* when want is -1 */
};

static const struct pcase pcases[] = {
	{ "simple GET", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", WHOLE, 0 },
	{ "PUT with CL", "PUT /kv/a HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: 5\r\n\r\nhello", 50, 0 },
	{ "LF-only lines", "GET / HTTP/1.1\nHost: a\n\n", WHOLE, 0 },
	{ "mixed CRLF and LF", "GET / HTTP/1.1\r\nHost: a\n\r\n", WHOLE, 0 },
	{ "leading CRLF ignored", "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
	    WHOLE, 0 },
	{ "several leading CRLF", "\r\n\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
	    WHOLE, 0 },
	{ "leading bare CR", "\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", -1, 400 },
	{ "HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n", WHOLE, 0 },
	{ "HTTP/1.1 without Host", "GET / HTTP/1.1\r\n\r\n", -1, 400 },
	{ "duplicate Host", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
	    -1, 400 },
	{ "duplicate Host 1.0", "GET / HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n",
	    -1, 400 },
	{ "empty Host ok", "GET / HTTP/1.1\r\nHost:\r\n\r\n", WHOLE, 0 },
	/* Host is uri-host [":" port] (RFC 9112 3.2, RFC 3986 3.2.2). */
	{ "Host with SP", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", -1, 400 },
	{ "Host with userinfo", "GET / HTTP/1.1\r\nHost: user@host\r\n\r\n",
	    -1, 400 },
	{ "Host with a path", "GET / HTTP/1.1\r\nHost: host/path\r\n\r\n",
	    -1, 400 },
	{ "Host as a list", "GET / HTTP/1.1\r\nHost: a, b\r\n\r\n", -1, 400 },
	{ "Host with a query", "GET / HTTP/1.1\r\nHost: a?b\r\n\r\n", -1,
	    400 },
	{ "Host obs-text", "GET / HTTP/1.1\r\nHost: \xc3\xa9\r\n\r\n", -1,
	    400 },
	{ "Host port not digits", "GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n",
	    -1, 400 },
	{ "Host two ports", "GET / HTTP/1.1\r\nHost: a:1:2\r\n\r\n", -1,
	    400 },
	{ "Host port only", "GET / HTTP/1.1\r\nHost: :80\r\n\r\n", -1, 400 },
	{ "Host bad escape", "GET / HTTP/1.1\r\nHost: a%2\r\n\r\n", -1, 400 },
	{ "Host IPv6 unclosed", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", -1,
	    400 },
	{ "Host IPv6 not hex", "GET / HTTP/1.1\r\nHost: [::g]\r\n\r\n", -1,
	    400 },
	{ "Host IPv6 junk after", "GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n",
	    -1, 400 },
	{ "Host IPv6 unbracketed", "GET / HTTP/1.1\r\nHost: ::1\r\n\r\n", -1,
	    400 },
	{ "Host empty brackets", "GET / HTTP/1.1\r\nHost: []\r\n\r\n", -1,
	    400 },
	{ "bad Host in 1.0", "GET / HTTP/1.0\r\nHost: a b\r\n\r\n", -1, 400 },
	{ "Host name:port", "GET / HTTP/1.1\r\nHost: kv-0.kv.svc:8080\r\n"
	    "\r\n", WHOLE, 0 },
	{ "Host IPv4:port", "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
	    WHOLE, 0 },
	{ "Host IPv6:port", "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
	    WHOLE, 0 },
	{ "Host IPv4-mapped", "GET / HTTP/1.1\r\nHost: [::ffff:1.2.3.4]\r\n"
	    "\r\n", WHOLE, 0 },
	{ "Host IPvFuture", "GET / HTTP/1.1\r\nHost: [v1.a:b]\r\n\r\n",
	    WHOLE, 0 },
	{ "Host sub-delims", "GET / HTTP/1.1\r\nHost: a_b~c!$&'()*+,;=\r\n"
	    "\r\n", WHOLE, 0 },
	{ "Host pct-encoded", "GET / HTTP/1.1\r\nHost: a%2Db\r\n\r\n", WHOLE,
	    0 },
	{ "Host empty port", "GET / HTTP/1.1\r\nHost: a:\r\n\r\n", WHOLE, 0 },
	{ "HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", -1, 505 },
	{ "HTTP/0.9 version", "GET / HTTP/0.9\r\nHost: a\r\n\r\n", -1, 505 },
	{ "HTTP/1.2 as 1.x", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", WHOLE, 0 },
	{ "HTTP/x", "GET / HTTP/x\r\nHost: a\r\n\r\n", -1, 400 },
	{ "HTTP/1.10", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", -1, 400 },
	{ "HTTP/11", "GET / HTTP/11\r\nHost: a\r\n\r\n", -1, 400 },
	{ "lower-case http", "GET / http/1.1\r\nHost: a\r\n\r\n", -1, 400 },
	{ "no version (0.9)", "GET /\r\n\r\n", -1, 400 },
	{ "two SP after method", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
	    -1, 400 },
	{ "two SP after target", "GET /  HTTP/1.1\r\nHost: a\r\n\r\n",
	    -1, 400 },
	{ "HT as separator", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", -1, 400 },
	{ "trailing SP after version", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
	    -1, 400 },
	{ "method not a token", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", -1, 400 },
	{ "method obs-text", "G\xe9T / HTTP/1.1\r\nHost: a\r\n\r\n", -1, 400 },
	{ "custom method token", "PURGE / HTTP/1.1\r\nHost: a\r\n\r\n",
	    WHOLE, 0 },
	{ "empty method", " / HTTP/1.1\r\nHost: a\r\n\r\n", -1, 400 },
	{ "target asterisk", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
	    WHOLE, 0 },
	{ "target relative", "GET kv/a HTTP/1.1\r\nHost: a\r\n\r\n", -1, 400 },
	{ "target authority-form", "CONNECT a:80 HTTP/1.1\r\nHost: a\r\n\r\n",
	    -1, 400 },
	{ "target absolute-form", "GET http://h/kv/a?x=1 HTTP/1.1\r\n"
	    "Host: h\r\n\r\n", WHOLE, 0 },
	{ "target absolute no path", "GET http://h HTTP/1.1\r\nHost: h\r\n\r\n",
	    WHOLE, 0 },
	{ "target obs-text ok", "GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",
	    WHOLE, 0 },
	{ "value obs-text ok",
	    "GET / HTTP/1.1\r\nHost: a\r\nX: \xff\x80\r\n\r\n",
	    WHOLE, 0 },
	{ "value HT ok", "GET / HTTP/1.1\r\nHost: a\r\nX: a\tb\t\r\n\r\n",
	    WHOLE, 0 },
	{ "name obs-text", "GET / HTTP/1.1\r\nHost: a\r\nX\xe9: 1\r\n\r\n",
	    -1, 400 },
	{ "space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", -1, 400 },
	{ "HT before colon", "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", -1, 400 },
	{ "obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n",
	    -1, 400 },
	{ "obs-fold HT", "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\t2\r\n\r\n",
	    -1, 400 },
	{ "SP before first field", "GET / HTTP/1.1\r\n Host: a\r\n\r\n",
	    -1, 400 },
	{ "empty field name", "GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n",
	    -1, 400 },
	{ "no colon", "GET / HTTP/1.1\r\nHost: a\r\nfoo\r\n\r\n", -1, 400 },
	{ "bare CR in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n",
	    -1, 400 },
	{ "bare CR ends head", "GET / HTTP/1.1\r\nHost: a\r\n\r\r\n", -1, 400 },
	{ "CL+TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n", -1, 400 },
	{ "TE+CL", "POST / HTTP/1.1\r\nHost: a\r\n"
	    "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
	    -1, 400 },
	{ "CL+TE gzip", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
	    "Transfer-Encoding: gzip\r\n\r\n", -1, 400 },
	{ "two differing CL", "POST / HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: 1\r\nContent-Length: 2\r\n\r\n", -1, 400 },
	{ "two equal CL", "POST / HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: 2\r\nContent-Length: 2\r\n\r\n", WHOLE, 0 },
	{ "CL list equal", "POST / HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: 1,1\r\n\r\n", WHOLE, 0 },
	{ "CL list equal OWS", "POST / HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: 1 , 1\r\n\r\n", WHOLE, 0 },
	{ "CL list differing", "POST / HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: 1,2\r\n\r\n", -1, 400 },
	{ "CL empty element", "POST / HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: 1,,1\r\n\r\n", -1, 400 },
	{ "CL empty", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n",
	    -1, 400 },
	{ "CL negative", "POST / HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: -1\r\n\r\n", -1, 400 },
	{ "CL plus sign", "POST / HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: +1\r\n\r\n", -1, 400 },
	{ "CL hex", "POST / HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: 0x10\r\n\r\n", -1, 400 },
	{ "CL trailing junk", "POST / HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: 10a\r\n\r\n", -1, 400 },
	{ "CL inner space", "POST / HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: 1 0\r\n\r\n", -1, 400 },
	{ "CL INT64_MAX ok", "POST / HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: 9223372036854775807\r\n\r\n", WHOLE, 0 },
	{ "CL overflow", "POST / HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: 9223372036854775808\r\n\r\n", -1, 400 },
	{ "CL huge overflow", "POST / HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: 99999999999999999999999\r\n\r\n", -1, 400 },
	{ "CL leading zeros", "POST / HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: 000000000000000000000007\r\n\r\n", WHOLE, 0 },
	{ "TE gzip", "POST / HTTP/1.1\r\nHost: a\r\n"
	    "Transfer-Encoding: gzip\r\n\r\n", -1, 501 },
	{ "TE gzip, chunked", "POST / HTTP/1.1\r\nHost: a\r\n"
	    "Transfer-Encoding: gzip, chunked\r\n\r\n", -1, 501 },
	{ "TE chunked, gzip", "POST / HTTP/1.1\r\nHost: a\r\n"
	    "Transfer-Encoding: chunked, gzip\r\n\r\n", -1, 400 },
	{ "TE chunked twice", "POST / HTTP/1.1\r\nHost: a\r\n"
	    "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
	    -1, 400 },
	{ "TE empty", "POST / HTTP/1.1\r\nHost: a\r\n"
	    "Transfer-Encoding:\r\n\r\n", -1, 400 },
	{ "TE chunked mixed case", "POST / HTTP/1.1\r\nHost: a\r\n"
	    "transfer-ENCODING: ChUnKeD\r\n\r\n", WHOLE, 0 },
	{ "TE chunked in 1.0", "POST / HTTP/1.0\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n", -1, 400 },
	{ "TE chunked;ext", "POST / HTTP/1.1\r\nHost: a\r\n"
	    "Transfer-Encoding: chunked;q=1\r\n\r\n", -1, 501 },
	{ "Expect 417", "PUT / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n"
	    "Content-Length: 1\r\n\r\n", -1, 417 },
	{ "Expect other on 1.0 ignored", "PUT / HTTP/1.0\r\nExpect: magic\r\n"
	    "Content-Length: 1\r\n\r\n", WHOLE, 0 },
	{ "too many fields", NULL, -1, 431 },	/* built below */
	{ "64 fields ok", NULL, WHOLE, 0 },	/* built below */
};

struct fcase {
	const char	*name;
	const char	*in;
	int		 ka;
	int		 chunked;
	int		 expect;
	int64_t		 cl;
	int		 minor;
	const char	*path;
	const char	*query;		/* NULL: none */
};

static const struct fcase fcases[] = {
	{ "1.1 default keep-alive", "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
	    1, 0, 0, -1, 1, "/", NULL },
	{ "1.1 close", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
	    0, 0, 0, -1, 1, "/", NULL },
	{ "1.1 Close case",
	    "GET / HTTP/1.1\r\nHost: a\r\nconnection: CLOSE\r\n\r\n",
	    0, 0, 0, -1, 1, "/", NULL },
	{ "1.1 close in list", "GET / HTTP/1.1\r\nHost: a\r\n"
	    "Connection: Upgrade, close\r\n\r\n", 0, 0, 0, -1, 1, "/", NULL },
	{ "1.1 keep-alive, Upgrade", "GET / HTTP/1.1\r\nHost: a\r\n"
	    "Connection: keep-alive, Upgrade\r\n\r\n",
	    1, 0, 0, -1, 1, "/", NULL },
	{ "1.0 default close", "GET / HTTP/1.0\r\n\r\n",
	    0, 0, 0, -1, 0, "/", NULL },
	{ "1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
	    1, 0, 0, -1, 0, "/", NULL },
	{ "1.0 keep-alive, Upgrade", "GET / HTTP/1.0\r\n"
	    "Connection: keep-alive, Upgrade\r\n\r\n",
	    1, 0, 0, -1, 0, "/", NULL },
	{ "1.0 keep-alive and close", "GET / HTTP/1.0\r\n"
	    "Connection: keep-alive\r\nConnection: close\r\n\r\n",
	    0, 0, 0, -1, 0, "/", NULL },
	{ "1.0 keep-alive-ish token", "GET / HTTP/1.0\r\n"
	    "Connection: keep-alived\r\n\r\n", 0, 0, 0, -1, 0, "/", NULL },
	{ "chunked flag", "PUT /k HTTP/1.1\r\nHost: a\r\n"
	    "Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n",
	    1, 1, 1, -1, 1, "/k", NULL },
	{ "expect case", "PUT /k HTTP/1.1\r\nHost: a\r\n"
	    "Expect: 100-Continue\r\nContent-Length: 3\r\n\r\n",
	    1, 0, 1, 3, 1, "/k", NULL },
	{ "expect on 1.0 ignored", "PUT /k HTTP/1.0\r\n"
	    "Expect: 100-continue\r\nContent-Length: 3\r\n\r\n",
	    0, 0, 0, 3, 0, "/k", NULL },
	{ "CL zero", "PUT /k HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
	    1, 0, 0, 0, 1, "/k", NULL },
	{ "query split", "GET /kv/a?x=1&y HTTP/1.1\r\nHost: a\r\n\r\n",
	    1, 0, 0, -1, 1, "/kv/a", "x=1&y" },
	{ "empty query", "GET /kv? HTTP/1.1\r\nHost: a\r\n\r\n",
	    1, 0, 0, -1, 1, "/kv", "" },
	{ "asterisk path", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
	    1, 0, 0, -1, 1, "*", NULL },
	{ "absolute path", "GET http://h:80/kv/a?q HTTP/1.1\r\nHost: h\r\n\r\n",
	    1, 0, 0, -1, 1, "/kv/a", "q" },
	{ "absolute https", "GET HTTPS://h HTTP/1.1\r\nHost: h\r\n\r\n",
	    1, 0, 0, -1, 1, "/", NULL },
	{ "absolute query only", "GET http://h?z HTTP/1.1\r\nHost: h\r\n\r\n",
	    1, 0, 0, -1, 1, "/", "z" },
	{ "1.2 keep-alive", "GET / HTTP/1.2\r\nHost: a\r\n\r\n",
	    1, 0, 0, -1, 2, "/", NULL },
};

struct dcase {
	const char	*name;
	const char	*in;
	size_t		 max;
	int		 want;		/* http_dechunk's return */
	const char	*out;		/* decoded, when want is 1 */
	size_t		 rest;		/* left unconsumed when want is 1 */
};

static const struct dcase dcases[] = {
	{ "simple", "5\r\nhello\r\n0\r\n\r\n", 100, 1, "hello", 0 },
	{ "multi", "5\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\n\r\n", 100, 1,
	    "hello world!", 0 },
	{ "hex upper/lower", "a\r\n0123456789\r\nA\r\nabcdefghij\r\n0\r\n\r\n",
	    100, 1, "0123456789abcdefghij", 0 },
	{ "leading zeros", "0005\r\nhello\r\n000\r\n\r\n", 100, 1, "hello", 0 },
	{ "extensions", "5;a=b;c=\"d e\"\r\nhello\r\n0;z\r\n\r\n", 100, 1,
	    "hello", 0 },
	{ "BWS before ext", "5 \t;a\r\nhello\r\n0\r\n\r\n", 100, 1,
	    "hello", 0 },
	{ "trailers", "5\r\nhello\r\n0\r\nX-A: 1\r\nX-B: 2\r\n\r\n", 100, 1,
	    "hello", 0 },
	{ "trailer LF only", "5\r\nhello\r\n0\r\nX: 1\n\n", 100, 1,
	    "hello", 0 },
	{ "trailer empty value", "0\r\nX:\r\n\r\n", 100, 1, "", 0 },
	/* 9112 7.1: CRLF ends a size line and data; 2.2's LF is for fields. */
	{ "LF only", "5\nhello\n0\n\n", 100, -1, NULL, 0 },
	{ "size line bare LF", "5\nhello\r\n0\r\n\r\n", 100, -1, NULL, 0 },
	{ "ext bare LF", "5;a=b\nhello\r\n0\r\n\r\n", 100, -1, NULL, 0 },
	{ "last chunk bare LF", "5\r\nhello\r\n0\n\r\n", 100, -1, NULL, 0 },
	{ "data bare LF", "5\r\nhello\n0\r\n\r\n", 100, -1, NULL, 0 },
	{ "trailer without colon", "0\r\nfoo\r\n\r\n", 100, -1, NULL, 0 },
	{ "trailer without colon, LF", "0\r\nfoo\n\n", 100, -1, NULL, 0 },
	{ "trailer empty name", "0\r\n: x\r\n\r\n", 100, -1, NULL, 0 },
	{ "trailer SP before colon", "0\r\nX : 1\r\n\r\n", 100, -1, NULL,
	    0 },
	{ "trailer obs-fold", "0\r\nX: 1\r\n 2\r\n\r\n", 100, -1, NULL, 0 },
	{ "trailer CTL in value", "0\r\nX: \x01\r\n\r\n", 100, -1, NULL, 0 },
	{ "pipelined rest", "2\r\nhi\r\n0\r\n\r\nGET /", 100, 1, "hi", 5 },
	{ "exact limit", "5\r\nhello\r\n0\r\n\r\n", 5, 1, "hello", 0 },
	{ "empty body", "0\r\n\r\n", 0, 1, "", 0 },
	{ "over the limit", "5\r\nhello\r\n0\r\n\r\n", 4, -2, NULL, 0 },
	{ "over the limit later", "3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n", 5, -2,
	    NULL, 0 },
	{ "bad hex", "g\r\nhello\r\n0\r\n\r\n", 100, -1, NULL, 0 },
	{ "size then junk", "5x\r\nhello\r\n0\r\n\r\n", 100, -1, NULL, 0 },
	{ "leading space", " 5\r\nhello\r\n0\r\n\r\n", 100, -1, NULL, 0 },
	{ "WS then CRLF", "5 \r\nhello\r\n0\r\n\r\n", 100, -1, NULL, 0 },
	{ "negative", "-5\r\nhello\r\n0\r\n\r\n", 100, -1, NULL, 0 },
	{ "0x prefix", "0x5\r\nhello\r\n0\r\n\r\n", 100, -1, NULL, 0 },
	{ "empty size line", "\r\nhello\r\n0\r\n\r\n", 100, -1, NULL, 0 },
	{ "missing CRLF after data", "5\r\nhelloX\r\n0\r\n\r\n", 100, -1,
	    NULL, 0 },
	{ "CR then junk after data", "5\r\nhello\rX0\r\n\r\n", 100, -1,
	    NULL, 0 },
	{ "bare CR in size line", "5\rhello\r\n0\r\n\r\n", 100, -1, NULL, 0 },
	{ "bare CR in trailer", "0\r\nX: 1\r2\r\n\r\n", 100, -1, NULL, 0 },
	{ "NUL in ext", "5;a\0b\r\nhello\r\n0\r\n\r\n", 100, -1, NULL, 0 },
	{ "16 digits over limit", "FFFFFFFFFFFFFFFF\r\n", 100, -2, NULL, 0 },
	{ "17 digits overflow", "10000000000000000\r\n", 100, -1, NULL, 0 },
	{ "17 zeros", "00000000000000005\r\nhello\r\n0\r\n\r\n", 100, -1,
	    NULL, 0 },
};

struct rcase {
	const char	*name;
	const char	*in;
	int		 want;		/* consumed: WHOLE, -2 or -1 */
	int		 status;
	int64_t		 cl;
	int		 chunked;
	int		 ka;
};

static const struct rcase rcases[] = {
	{ "200 with length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
	    WHOLE, 200, 5, 0, 1 },
	{ "1.1 close", "HTTP/1.1 200 OK\r\nConnection: close\r\n"
	    "Content-Length: 2\r\n\r\n", WHOLE, 200, 2, 0, 0 },
	{ "1.0 to EOF", "HTTP/1.0 200 OK\r\nX-Kv-Seq: 3\r\n\r\n", WHOLE, 200,
	    -1, 0, 0 },
	{ "1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n"
	    "Content-Length: 0\r\n\r\n", WHOLE, 200, 0, 0, 1 },
	{ "1.1 no length: to EOF", "HTTP/1.1 200 OK\r\n\r\n", WHOLE, 200,
	    -1, 0, 0 },
	{ "chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
	    WHOLE, 200, -1, 1, 1 },
	{ "204 has no body", "HTTP/1.1 204 No Content\r\nContent-Length: 7"
	    "\r\n\r\n", WHOLE, 204, 0, 0, 1 },
	{ "304 has no body", "HTTP/1.1 304 Not Modified\r\n\r\n", WHOLE, 304,
	    0, 0, 1 },
	{ "100 Continue", "HTTP/1.1 100 Continue\r\n\r\n", WHOLE, 100, 0, 0,
	    1 },
	{ "no reason", "HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", WHOLE,
	    404, 0, 0, 1 },
	{ "no SP, no reason", "HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n",
	    WHOLE, 404, 0, 0, 1 },
	{ "LF only", "HTTP/1.1 200 OK\nContent-Length: 2\n\n", WHOLE, 200, 2,
	    0, 1 },
	{ "pipelined rest", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
	    38, 200, 2, 0, 1 },
	{ "status 2000", "HTTP/1.1 2000 OK\r\n\r\n", -1, 0, 0, 0, 0 },
	{ "status 20", "HTTP/1.1 20 OK\r\n\r\n", -1, 0, 0, 0, 0 },
	{ "status 600", "HTTP/1.1 600 X\r\n\r\n", -1, 0, 0, 0, 0 },
	{ "status 099", "HTTP/1.1 099 X\r\n\r\n", -1, 0, 0, 0, 0 },
	{ "HTTP/2", "HTTP/2 200 OK\r\n\r\n", -1, 0, 0, 0, 0 },
	{ "HTTP/2.0", "HTTP/2.0 200 OK\r\n\r\n", -1, 0, 0, 0, 0 },
	{ "leading SP", " HTTP/1.1 200 OK\r\n\r\n", -1, 0, 0, 0, 0 },
	{ "CTL in reason", "HTTP/1.1 200 O\x01K\r\n\r\n", -1, 0, 0, 0, 0 },
	{ "CL and TE", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n", -1, 0, 0, 0, 0 },
	{ "bad CL", "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", -1, 0,
	    0, 0, 0 },
	{ "differing CL", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n"
	    "Content-Length: 2\r\n\r\n", -1, 0, 0, 0, 0 },
	{ "TE gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
	    -1, 0, 0, 0, 0 },
	{ "TE in 1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n"
	    "\r\n", -1, 0, 0, 0, 0 },
	{ "bare CR in a field", "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", -1, 0,
	    0, 0, 0 },
	{ "obs-fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", -1, 0, 0, 0,
	    0 },
	{ "no colon", "HTTP/1.1 200 OK\r\nX\r\n\r\n", -1, 0, 0, 0, 0 },
};

struct ucase {
	const char	*name;
	const char	*in;
	ssize_t		 want;
	const char	*out;
};

static const struct ucase ucases[] = {
	{ "plain", "abc", 3, "abc" },
	{ "empty", "", 0, "" },
	{ "%2F", "a%2Fb", 3, "a/b" },
	{ "%2f", "a%2fb", 3, "a/b" },
	{ "%20", "a%20b", 3, "a b" },
	{ "UTF-8", "%C3%A9", 2, "\xc3\xa9" },
	{ "plus unchanged", "a+b", 3, "a+b" },
	{ "%25", "%25", 1, "%" },
	{ "%FF", "%FF", 1, "\xff" },
	{ "%G1", "%G1", -1, NULL },
	{ "%1G", "%1G", -1, NULL },
	{ "lone %", "%", -1, NULL },
	{ "% at end", "ab%", -1, NULL },
	{ "%4 truncated", "%4", -1, NULL },
	{ "%00", "a%00b", -1, NULL },
	{ "%+1", "%+1", -1, NULL },
};

static int	 passed, failed;

/* What http.c logs is not looked at here. */
static void
quiet(const char *level, const char *msg)
{
	(void)level;
	(void)msg;
}


/* Print s[0..len) with non-printables escaped, at most 160 bytes of it. */
static void
put_escaped(const char *s, size_t len)
{
	size_t	 i, lim = len > 160 ? 160 : len;

	for (i = 0; i < lim; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '\r')
			fputs("\\r", stdout);
		else if (ch == '\n')
			fputs("\\n", stdout);
		else if (ch == '\\')
			fputs("\\\\", stdout);
		else if (ch < 0x20 || ch >= 0x7f)
			printf("\\x%02x", ch);
		else
			putchar(ch);
	}
	if (lim < len)
		printf("...(%zu bytes)", len);
}

static void
check(int ok, const char *name, const char *in, size_t len, const char *fmt,
    ...)
{
	va_list	 ap;

	if (ok) {
		passed++;
		return;
	}
	failed++;
	printf("FAIL %s: ", name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf(" input \"");
	put_escaped(in, len);
	printf("\"\n");
}

static void
parse_one(const char *name, const char *in, size_t len, int want, int status)
{
	struct http_request	 r;
	int			 n;

	/* Parse a heap copy so ASan catches any read past len. */
	char	*copy = malloc(len ? len : 1);

	if (copy == NULL)
		abort();
	memcpy(copy, in, len);
	n = http_parse(copy, len, &r);
	if (want == WHOLE)
		want = (int)len;
	if (want == -1)
		check(n == -1 && r.status == status, name, in, len,
		    "got %d status %d (%s), want -1 status %d", n, r.status,
		    r.error ? r.error : "", status);
	else
		check(n == want, name, in, len,
		    "got %d status %d (%s), want %d", n, r.status,
		    r.error ? r.error : "", want);
	free(copy);
}

/* "GET / HTTP/1.1\r\nHost: a\r\n" + fields X<i>: v + "\r\n". */
static char *
many_fields(int n, size_t *len)
{
	char	*s = malloc(64 + (size_t)n * 16);
	int	 i, o;

	if (s == NULL)
		abort();
	o = sprintf(s, "GET / HTTP/1.1\r\nHost: a\r\n");
	for (i = 0; i < n; i++)
		o += sprintf(s + o, "X%d: v\r\n", i);
	o += sprintf(s + o, "\r\n");
	*len = (size_t)o;
	return s;
}

static void
test_parse_table(void)
{
	size_t	 i, len;
	char	*s;

	for (i = 0; i < sizeof(pcases) / sizeof(pcases[0]); i++) {
		if (pcases[i].in != NULL) {
			parse_one(pcases[i].name, pcases[i].in,
			    strlen(pcases[i].in), pcases[i].want,
			    pcases[i].status);
			continue;
		}
		/* Host plus 63 more is the 64-field limit; plus 64 is over. */
		s = many_fields(pcases[i].want == -1 ? 64 : 63, &len);
		parse_one(pcases[i].name, s, len, pcases[i].want,
		    pcases[i].status);
		free(s);
	}
	/* Embedded NUL cases need explicit lengths. */
	parse_one("NUL in value", "GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n", 29,
	    -1, 400);
	parse_one("NUL in target", "GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n", 28,
	    -1, 400);
	parse_one("NUL before request", "\0GET / HTTP/1.1\r\nHost: a\r\n\r\n",
	    28, -1, 400);
}

static void
test_fields(void)
{
	struct http_request	 r;
	size_t			 i, len;
	const struct fcase	*f;
	int			 n;
	const char		*v;

	for (i = 0; i < sizeof(fcases) / sizeof(fcases[0]); i++) {
		f = &fcases[i];
		len = strlen(f->in);
		n = http_parse(f->in, len, &r);
		check(n == (int)len, f->name, f->in, len, "got %d (%s)", n,
		    r.error ? r.error : "");
		if (n != (int)len)
			continue;
		check(r.keep_alive == f->ka && r.chunked == f->chunked &&
		    r.expect_continue == f->expect &&
		    r.content_length == f->cl && r.minor == f->minor,
		    f->name, f->in, len, "flags ka %d chunked %d expect %d "
		    "cl %lld minor %d", r.keep_alive, r.chunked,
		    r.expect_continue, (long long)r.content_length, r.minor);
		check(r.path_len == strlen(f->path) &&
		    memcmp(r.path, f->path, r.path_len) == 0, f->name, f->in,
		    len, "path %.*s", (int)r.path_len, r.path);
		check(f->query == NULL ? r.query == NULL : (r.query != NULL &&
		    r.query_len == strlen(f->query) &&
		    memcmp(r.query, f->query, r.query_len) == 0),
		    f->name, f->in, len, "query %.*s", (int)r.query_len,
		    r.query ? r.query : "(null)");
	}

	/* Field values: OWS trimmed; lookup is case-insensitive, first wins. */
	v = "GET /p?a=1&b=&c&a=2&dd=x%20y HTTP/1.1\r\nHost: h\r\n"
	    "X-Thing:  \t two words \t\r\nx-thing: second\r\n\r\n";
	n = http_parse(v, strlen(v), &r);
	check(n == (int)strlen(v), "lookup head", v, strlen(v), "got %d", n);
	if (n <= 0)
		return;
	v = http_header(&r, "x-THING", &len);
	check(v != NULL && len == 9 && memcmp(v, "two words", 9) == 0,
	    "http_header first, trimmed", "", 0, "got %.*s", v ? (int)len : 4,
	    v ? v : "NULL");
	v = http_header(&r, "x-thin", &len);
	check(v == NULL, "http_header prefix is not a match", "", 0, "found");
	v = http_header(&r, "host", &len);
	check(v != NULL && len == 1 && *v == 'h', "http_header host", "", 0,
	    "wrong");
	v = http_query(&r, "a", &len);
	check(v != NULL && len == 1 && *v == '1', "http_query first a", "", 0,
	    "wrong");
	v = http_query(&r, "b", &len);
	check(v != NULL && len == 0, "http_query empty b=", "", 0, "wrong");
	v = http_query(&r, "c", &len);
	check(v != NULL && len == 0, "http_query bare c", "", 0, "wrong");
	v = http_query(&r, "dd", &len);
	check(v != NULL && len == 5 && memcmp(v, "x%20y", 5) == 0,
	    "http_query raw value", "", 0, "wrong");
	v = http_query(&r, "d", &len);
	check(v == NULL, "http_query prefix is not a match", "", 0, "found");
	v = http_query(&r, "z", &len);
	check(v == NULL, "http_query absent", "", 0, "found");
	r.query = NULL;
	check(http_query(&r, "a", &len) == NULL, "http_query no query", "", 0,
	    "found");
}

/* Every proper prefix of a valid request is incomplete. */
static void
test_prefixes(void)
{
	static const char *const reqs[] = {
		"GET /kv/a?x=1 HTTP/1.1\r\nHost: example\r\n"
		    "Accept: */*\r\n\r\n",
		"PUT /kv/a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
		    "Expect: 100-continue\r\n\r\n",
		"\r\nGET / HTTP/1.0\nConnection: keep-alive\n\n",
	};
	char	 name[64];
	size_t	 i, k, len;

	for (i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		len = strlen(reqs[i]);
		parse_one("full request", reqs[i], len, WHOLE, 0);
		for (k = 0; k < len; k++) {
			snprintf(name, sizeof(name), "prefix %zu of req %zu",
			    k, i);
			parse_one(name, reqs[i], k, -2, 0);
		}
	}
}

/*
 * Each hostile byte in each position of the request line and a header
 * field gives 400. HT is hostile in the request line and in names only;
 * the positions where it is legal (inside or around a value) are skipped.
 */
static void
test_hostile(void)
{
	static const char req[] =
	    "GET /a HTTP/1.1\r\nHost: a\r\nX-Y: zz\r\n\r\n";
	static const unsigned char bad[] = {
		0x00, 0x01, 0x08, 0x0b, 0x0c, 0x1b, 0x1f, 0x7f, '\r', '\t'
	};
	char	 buf[sizeof(req)], name[64];
	size_t	 len = sizeof(req) - 1, i, b, vstart, vend, hstart;

	hstart = strstr(req, "Host:") - req + 5;	/* " a" */
	vstart = strstr(req, "X-Y:") - req + 4;		/* " zz" */
	vend = vstart + 3;
	for (i = 0; i < len; i++) {
		for (b = 0; b < sizeof(bad); b++) {
			if (req[i] == (char)bad[b])
				continue;
			/*
			 * HT is legal in values, and in place of the CR
			 * that ends one it is trailing OWS before a bare LF.
			 */
			if (bad[b] == '\t' && ((i >= vstart && i <= vend) ||
			    (i >= hstart && i <= hstart + 2)))
				continue;
			memcpy(buf, req, len);
			buf[i] = (char)bad[b];
			snprintf(name, sizeof(name), "byte 0x%02x at %zu",
			    bad[b], i);
			parse_one(name, buf, len, -1, 400);
		}
	}
	/* HT inside and around a value is accepted (RFC 9110 5.5). */
	for (i = vstart; i < vend; i++) {
		memcpy(buf, req, len);
		buf[i] = '\t';
		snprintf(name, sizeof(name), "HT in value at %zu", i);
		parse_one(name, buf, len, WHOLE, 0);
	}
	/* obs-text in a value is accepted, in a name refused. */
	memcpy(buf, req, len);
	buf[vstart + 1] = (char)0x80;
	parse_one("obs-text 0x80 in value", buf, len, WHOLE, 0);
	memcpy(buf, req, len);
	buf[vstart - 2] = (char)0xff;
	parse_one("obs-text 0xff in name", buf, len, -1, 400);
}

/* Each limit and one past it. */
static void
test_limits(void)
{
	const char	*pre = "GET / HTTP/1.1\r\nHost: a\r\nX: ";
	char		*s;
	size_t		 plen = strlen(pre), len, pad;

	/* A head of exactly HTTP_MAX_HEAD_BYTES bytes, then one more. */
	if ((s = malloc(HTTP_MAX_HEAD_BYTES + 16)) == NULL)
		abort();
	pad = HTTP_MAX_HEAD_BYTES - plen - 4;
	memcpy(s, pre, plen);
	memset(s + plen, 'v', pad);
	memcpy(s + plen + pad, "\r\n\r\n", 4);
	len = HTTP_MAX_HEAD_BYTES;
	parse_one("head of 16 KiB", s, len, WHOLE, 0);
	parse_one("head of 16 KiB, cut", s, len - 1, -2, 0);
	memcpy(s, pre, plen);
	memset(s + plen, 'v', pad + 1);
	memcpy(s + plen + pad + 1, "\r\n\r\n", 4);
	parse_one("head of 16 KiB + 1", s, len + 1, -1, 431);
	parse_one("16 KiB prefix of a longer head", s, len, -1, 431);
	/* Leading empty lines count toward the head. */
	memset(s, '\n', HTTP_MAX_HEAD_BYTES);
	parse_one("16 KiB of empty lines", s, HTTP_MAX_HEAD_BYTES, -1, 431);
	free(s);

	/* A target of exactly HTTP_MAX_TARGET_BYTES bytes, then one more. */
	if ((s = malloc(HTTP_MAX_TARGET_BYTES + 64)) == NULL)
		abort();
	memcpy(s, "GET /", 5);
	memset(s + 5, 'a', HTTP_MAX_TARGET_BYTES - 1);
	len = 4 + HTTP_MAX_TARGET_BYTES;
	len += sprintf(s + len, " HTTP/1.1\r\nHost: a\r\n\r\n");
	parse_one("target of 8 KiB", s, len, WHOLE, 0);
	memcpy(s, "GET /", 5);
	memset(s + 5, 'a', HTTP_MAX_TARGET_BYTES);
	len = 5 + HTTP_MAX_TARGET_BYTES;
	len += sprintf(s + len, " HTTP/1.1\r\nHost: a\r\n\r\n");
	parse_one("target of 8 KiB + 1", s, len, -1, 414);
	parse_one("target of 8 KiB + 1, incomplete", s,
	    5 + HTTP_MAX_TARGET_BYTES, -1, 414);
	free(s);
}

/* The one case with a NUL inside needs its length spelled out. */
static size_t
dlen(const struct dcase *d)
{
	return strcmp(d->name, "NUL in ext") == 0 ? 19 : strlen(d->in);
}

static void
dechunk_run(const struct dcase *d, size_t split, int bytewise)
{
	struct http_chunk_state	 st;
	char			 out[256], name[96];
	size_t			 len = strlen(d->in), off = 0, olen = 0;
	size_t			 used, made, n;
	int			 ret = 0;

	len = dlen(d);
	memset(&st, 0, sizeof(st));
	st.max = d->max;
	while (off < len) {
		n = bytewise ? 1 : (off < split ? split - off : len - off);
		ret = http_dechunk(&st, d->in + off, n, out + olen, &used,
		    &made);
		olen += made;
		if (ret != 0)
			break;
		if (used != n) {
			ret = 99;	/* 0 means "all consumed, need more" */
			break;
		}
		off += used;
	}
	if (ret == 1)
		off += used;
	if (bytewise)
		snprintf(name, sizeof(name), "dechunk %s, bytewise", d->name);
	else
		snprintf(name, sizeof(name), "dechunk %s, split %zu", d->name,
		    split);
	if (d->want == 1)
		check(ret == 1 && olen == strlen(d->out) &&
		    memcmp(out, d->out, olen) == 0 && len - off == d->rest,
		    name, d->in, len, "ret %d out \"%.*s\" rest %zu", ret,
		    (int)olen, out, len - off);
	else
		check(ret == d->want, name, d->in, len, "ret %d, want %d", ret,
		    d->want);
}

static void
test_dechunk(void)
{
	struct http_chunk_state	 st;
	char			 buf[64];
	size_t			 i, k, used, made;
	int			 ret;
	const char		*in =
	    "3\r\nabc\r\n2;x\r\nde\r\n0\r\nT: 1\r\n\r\n";

	for (i = 0; i < sizeof(dcases) / sizeof(dcases[0]); i++) {
		dechunk_run(&dcases[i], 0, 0);
		dechunk_run(&dcases[i], 0, 1);
		for (k = 1; k < dlen(&dcases[i]); k++)
			dechunk_run(&dcases[i], k, 0);
	}

	/* In place, as the server uses it: dst is buf. */
	memset(&st, 0, sizeof(st));
	st.max = 100;
	strcpy(buf, in);
	ret = http_dechunk(&st, buf, strlen(in), buf, &used, &made);
	check(ret == 1 && made == 5 && memcmp(buf, "abcde", 5) == 0 &&
	    used == strlen(in), "dechunk in place", in, strlen(in),
	    "ret %d made %zu", ret, made);
	/* After the end, more calls consume nothing and still say done. */
	ret = http_dechunk(&st, "GET", 3, buf, &used, &made);
	check(ret == 1 && used == 0 && made == 0, "dechunk after end", "GET", 3,
	    "ret %d used %zu", ret, used);
	/* A long extension is refused rather than read without end. */
	memset(&st, 0, sizeof(st));
	st.max = 100;
	{
		char	*big = malloc(8192);

		if (big == NULL)
			abort();
		memset(big, 'x', 8192);
		big[0] = '1';
		big[1] = ';';
		ret = http_dechunk(&st, big, 8192, big, &used, &made);
		check(ret == -1, "dechunk endless extension", "1;xxx...", 8,
		    "ret %d", ret);
		free(big);
	}
}

static void
response_one(const struct rcase *c, size_t len, const char *name)
{
	struct http_response	 rs;
	char			*copy = malloc(len ? len : 1);
	int			 n, want = c->want == WHOLE ? (int)len : c->want;

	if (copy == NULL)
		abort();
	memcpy(copy, c->in, len);
	n = http_parse_response(copy, len, &rs);
	if (want < 0 || n != want)
		check(n == want && (n != -1 || rs.error != NULL), name, c->in,
		    len, "got %d (%s), want %d", n, rs.error ? rs.error : "",
		    want);
	else
		check(rs.status == c->status && rs.content_length == c->cl &&
		    rs.chunked == c->chunked && rs.keep_alive == c->ka, name,
		    c->in, len, "status %d cl %lld chunked %d ka %d", rs.status,
		    (long long)rs.content_length, rs.chunked, rs.keep_alive);
	free(copy);
}

/* The answer parser: the table, every prefix of each good answer, limits. */
static void
test_response(void)
{
	struct rcase	 big = { "", NULL, -1, 0, 0, 0, 0 };
	struct rcase	 pre;
	char		 name[96], *s;
	size_t		 i, k, len;

	for (i = 0; i < sizeof(rcases) / sizeof(rcases[0]); i++) {
		len = strlen(rcases[i].in);
		response_one(&rcases[i], len, rcases[i].name);
		if (rcases[i].want == -1)
			continue;
		pre = rcases[i];
		pre.want = -2;
		for (k = 0; k < len && (rcases[i].want == WHOLE ||
		    k < (size_t)rcases[i].want); k++) {
			snprintf(name, sizeof(name), "answer prefix %zu of %s",
			    k, rcases[i].name);
			response_one(&pre, k, name);
		}
	}
	/* A head of exactly HTTP_MAX_HEAD_BYTES, then one more. */
	if ((s = malloc(HTTP_MAX_HEAD_BYTES + 2)) == NULL)
		abort();
	len = (size_t)sprintf(s, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX: ");
	memset(s + len, 'v', HTTP_MAX_HEAD_BYTES - len - 4);
	memcpy(s + HTTP_MAX_HEAD_BYTES - 4, "\r\n\r\n", 4);
	big.in = s;
	big.want = WHOLE;
	big.status = 200;
	big.ka = 1;
	response_one(&big, HTTP_MAX_HEAD_BYTES, "answer head of 16 KiB");
	s[HTTP_MAX_HEAD_BYTES - 4] = 'v';
	memcpy(s + HTTP_MAX_HEAD_BYTES - 3, "\r\n\r\n", 4);
	big.want = -1;
	response_one(&big, HTTP_MAX_HEAD_BYTES + 1, "answer head of 16 KiB + 1");
	free(s);
}

static void
test_unescape(void)
{
	char	 out[64];
	ssize_t	 n;
	size_t	 i;

	for (i = 0; i < sizeof(ucases) / sizeof(ucases[0]); i++) {
		n = http_unescape(ucases[i].in, strlen(ucases[i].in), out);
		if (ucases[i].want == -1)
			check(n == -1, ucases[i].name, ucases[i].in,
			    strlen(ucases[i].in), "got %zd", n);
		else
			check(n == ucases[i].want &&
			    memcmp(out, ucases[i].out, (size_t)n) == 0,
			    ucases[i].name, ucases[i].in, strlen(ucases[i].in),
			    "got %zd", n);
	}
	n = http_unescape("a\0b", 3, out);
	check(n == -1, "raw NUL", "a\0b", 3, "got %zd", n);
}

/* ---- The loop: admission, and the order requests are taken in ---- */

#define ORDER_MAX	64	/* paths of the handled requests kept */
#define SLOW_MS		20	/* /slow's handler: ten of http.c's turns */
#define REQ(p)		"GET " p " HTTP/1.1\r\nHost: a\r\n\r\n"
#define NPARK		3	/* /park requests left waiting at once */

static pthread_mutex_t	 loopmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 loopcv = PTHREAD_COND_INITIALIZER;
static int		 admits, handled;
static char		 handled_body[64];
static char		 order[ORDER_MAX][8];	/* handled requests' paths */
static int		 norder;
static int		 held, sent;	/* /hold and /slow wait for the test */
static int		 ticks;		/* the loop's passes (its tick) */
static int		 nparked;
static int		 park_tick[NPARK];	/* ticks when each /park ran */
static uint64_t		 park_id[NPARK];	/* answered by /unpark */

/* Refuse a request with X-Deny, as auth would: 401, and say so. */
static int
loop_admit(struct http_request *r)
{
	pthread_mutex_lock(&loopmu);
	admits++;
	pthread_mutex_unlock(&loopmu);
	if (http_header(r, "x-deny", NULL) == NULL)
		return 0;
	http_reply(r->id, 401, "text/plain", "", "denied\n", 7);
	return 1;
}

/* Count the loop's passes: http_run calls it once a pass. */
static void
loop_tick(void)
{
	pthread_mutex_lock(&loopmu);
	ticks++;
	pthread_mutex_unlock(&loopmu);
}

/*
 * Answer 200, keeping the path in order[]. /hold waits until the test
 * has sent more, as a slow request would; /slow, too, then takes SLOW_MS.
 * /park takes SLOW_MS and leaves its request waiting, as a write under
 * FSYNC=always does, until /unpark answers it.
 */
static void
loop_handler(struct http_request *r)
{
	struct timespec	 ts = { 0, SLOW_MS * 1000000L };
	int		 slow = r->path_len == 5 &&
			    memcmp(r->path, "/slow", 5) == 0, i;

	if (r->path_len == 5 && memcmp(r->path, "/park", 5) == 0) {
		nanosleep(&ts, NULL);
		pthread_mutex_lock(&loopmu);
		if (nparked < NPARK) {
			park_tick[nparked] = ticks;
			park_id[nparked++] = r->id;
		}
		pthread_cond_broadcast(&loopcv);
		pthread_mutex_unlock(&loopmu);
		return;
	}
	pthread_mutex_lock(&loopmu);
	if (r->path_len == 7 && memcmp(r->path, "/unpark", 7) == 0)
		for (i = 0; i < nparked; i++)
			http_reply(park_id[i], 200, "text/plain", "", "ok\n",
			    3);
	handled++;
	snprintf(handled_body, sizeof(handled_body), "%.*s",
	    (int)r->body_len, r->body);
	if (norder < ORDER_MAX)
		snprintf(order[norder++], sizeof(order[0]), "%.*s",
		    (int)r->path_len, r->path);
	if (slow || (r->path_len == 5 && memcmp(r->path, "/hold", 5) == 0)) {
		held = 1;
		pthread_cond_broadcast(&loopcv);
		while (!sent)
			pthread_cond_wait(&loopcv, &loopmu);
	}
	pthread_mutex_unlock(&loopmu);
	if (slow)
		nanosleep(&ts, NULL);
	http_reply(r->id, 200, "text/plain", "", "ok\n", 3);
	/* Stopped from its own thread: http_stop is for signal handlers. */
	if (r->path_len == 5 && memcmp(r->path, "/stop", 5) == 0)
		http_stop();
}

static void *
loop_thread(void *arg)
{
	(void)arg;
	http_run();
	return NULL;
}

/*
 * resize, as http.c's connections call it (linked with --wrap=resize):
 * counts each growth of a buffer past IN_KEEP and each shrink below it.
 */
#define BIG_BUF		65536	/* http.c's IN_KEEP */
static int		 big_grows, big_shrinks;

void	*__real_resize(void *, size_t, size_t);
void	*__wrap_resize(void *, size_t, size_t);

void *
__wrap_resize(void *p, size_t used, size_t n)
{
	pthread_mutex_lock(&loopmu);
	if (n > BIG_BUF && used <= BIG_BUF)
		big_grows++;
	else if (n <= BIG_BUF && used > BIG_BUF)
		big_shrinks++;
	pthread_mutex_unlock(&loopmu);
	return __real_resize(p, used, n);
}

static int
loop_count(int *n)
{
	int	 v;

	pthread_mutex_lock(&loopmu);
	v = *n;
	pthread_mutex_unlock(&loopmu);
	return v;
}

/* Connect to 127.0.0.1:port with a 2 s receive timeout. */
static int
loop_dial(int port)
{
	struct sockaddr_in	 sa;
	struct timeval		 tv = { 2, 0 };
	int			 fd;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		abort();
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1)
		abort();
	return fd;
}

/*
 * Send req, then read until EOF, the timeout, or (want_close 0) until
 * out holds until_n copies of "HTTP/1.1 ". Returns what was read.
 */
static size_t
loop_talk(int fd, const char *req, char *out, size_t cap, int until_n)
{
	size_t	 len = 0;
	ssize_t	 n;
	int	 seen;
	char	*p;

	if (req != NULL && send(fd, req, strlen(req), MSG_NOSIGNAL) !=
	    (ssize_t)strlen(req))
		abort();
	for (;;) {
		out[len] = '\0';
		for (seen = 0, p = out; (p = strstr(p, "HTTP/1.1 ")) != NULL;
		    p++)
			seen++;
		if (until_n > 0 && seen >= until_n && strstr(out, "\r\n\r\n")
		    != NULL && out[len - 1] == '\n')
			break;
		if ((n = recv(fd, out + len, cap - 1 - len, 0)) <= 0)
			break;
		len += (size_t)n;
	}
	return len;
}

/* A free port on 127.0.0.1, as the kernel picks one. */
static int
free_port(void)
{
	struct sockaddr_in	 sa;
	socklen_t		 sl = sizeof(sa);
	int			 fd, port;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) == -1)
		abort();
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

/*
 * A refused request gets its answer and nothing else: no 100 Continue,
 * no handler, and no body read (with one to come, the connection closes
 * after the answer, so its bytes are never taken for a request). An
 * admitted one goes on as before.
 */
static void
test_admit(int p)
{
	char			 out[4096];
	int			 fd;

	fd = loop_dial(p);
	loop_talk(fd, "PUT /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
	    "Expect: 100-continue\r\nX-Deny: 1\r\n\r\n", out, sizeof(out), 0);
	check(strncmp(out, "HTTP/1.1 401 ", 13) == 0 &&
	    strstr(out, "100 Continue") == NULL &&
	    strstr(out, "Connection: close") != NULL, "admit: refused with "
	    "Expect: 401 and close, no 100", out, strlen(out), "");
	check(loop_count(&handled) == 0 && loop_count(&admits) == 1,
	    "admit: refused, the handler is not called", "", 0, "handled %d",
	    loop_count(&handled));
	close(fd);

	fd = loop_dial(p);
	loop_talk(fd, "PUT /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
	    "Expect: 100-continue\r\n\r\n", out, sizeof(out), 1);
	check(strcmp(out, "HTTP/1.1 100 Continue\r\n\r\n") == 0,
	    "admit: admitted, then 100 Continue", out, strlen(out), "");
	loop_talk(fd, "hello", out, sizeof(out), 1);
	check(strncmp(out, "HTTP/1.1 200 ", 13) == 0 &&
	    loop_count(&handled) == 1 && strcmp(handled_body, "hello") == 0,
	    "admit: admitted, the body reaches the handler", out, strlen(out),
	    "");
	close(fd);

	/* Without a body, a refusal keeps the connection. */
	fd = loop_dial(p);
	loop_talk(fd, "GET /x HTTP/1.1\r\nHost: a\r\nX-Deny: 1\r\n\r\n"
	    "GET /y HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", out,
	    sizeof(out), 0);
	check(strncmp(out, "HTTP/1.1 401 ", 13) == 0 &&
	    strstr(out, "HTTP/1.1 200 ") != NULL && loop_count(&handled) == 2,
	    "admit: a refused GET, then the next request", out, strlen(out),
	    "");
	close(fd);

	/* A refused chunked body is never parsed as requests. */
	fd = loop_dial(p);
	loop_talk(fd, "PUT /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: "
	    "chunked\r\nX-Deny: 1\r\n\r\n1c\r\nGET /z HTTP/1.1\r\nHost: a"
	    "\r\n\r\n\r\n0\r\n\r\n", out, sizeof(out), 0);
	check(strncmp(out, "HTTP/1.1 401 ", 13) == 0 &&
	    strstr(out + 1, "HTTP/1.1 ") == NULL && loop_count(&handled) == 2,
	    "admit: a refused chunked body is not read as a request", out,
	    strlen(out), "handled %d", loop_count(&handled));
	close(fd);
}

/* Where path first is in order[], after from; -1 if it is not. */
static int
order_find(const char *path, int from)
{
	int	 i, at = -1;

	pthread_mutex_lock(&loopmu);
	for (i = from; i < norder && at == -1; i++)
		if (strcmp(order[i], path) == 0)
			at = i;
	pthread_mutex_unlock(&loopmu);
	return at;
}

/*
 * Send first on a; once its handler waits (/hold or /slow), send rest_a
 * on a and rest_b on b, and let it go on; read b's answer, then a's 41.
 * Returns where b's request, /b, was taken, and in *last_a the batch's
 * last, /a.
 */
static int
order_run(int a, int b, const char *first, const char *rest_a,
    const char *rest_b, int *last_a)
{
	char	 out[8192];
	int	 i;

	pthread_mutex_lock(&loopmu);
	norder = held = sent = 0;
	pthread_mutex_unlock(&loopmu);
	if (send(a, first, strlen(first), MSG_NOSIGNAL) !=
	    (ssize_t)strlen(first))
		abort();
	pthread_mutex_lock(&loopmu);
	while (!held)
		pthread_cond_wait(&loopcv, &loopmu);
	pthread_mutex_unlock(&loopmu);
	if (send(a, rest_a, strlen(rest_a), MSG_NOSIGNAL) !=
	    (ssize_t)strlen(rest_a) || send(b, rest_b, strlen(rest_b),
	    MSG_NOSIGNAL) != (ssize_t)strlen(rest_b))
		abort();
	pthread_mutex_lock(&loopmu);
	sent = 1;
	pthread_cond_broadcast(&loopcv);
	pthread_mutex_unlock(&loopmu);
	loop_talk(b, NULL, out, sizeof(out), 1);
	loop_talk(a, NULL, out, sizeof(out), 41);
	for (*last_a = -1, i = 0; (i = order_find("/a", i)) != -1; i++)
		*last_a = i;
	return order_find("/b", 0);
}

/*
 * One client's pipelined batch does not hold back another's request: the
 * loop takes them a request at a time from each connection, and a request
 * that arrives while a batch runs waits for a turn of the loop, not for
 * the rest of the batch. (A liveness probe beside a client that writes as
 * fast as it can: issue #18.)
 */
static void
test_turns(int p)
{
	char	 batch[41 * sizeof(REQ("/slow"))], out[256], *q;
	int	 a = loop_dial(p), b = loop_dial(p), i, at_b, last_a;

	/* Both accepted and idle before the batch. */
	loop_talk(a, REQ("/x"), out, sizeof(out), 1);
	loop_talk(b, REQ("/x"), out, sizeof(out), 1);

	/* The batch and the request are both read while /hold runs. */
	for (q = batch, i = 0; i < 40; i++)
		q += sprintf(q, "%s", REQ("/a"));
	at_b = order_run(a, b, REQ("/hold"), batch, REQ("/b"), &last_a);
	check(at_b >= 1 && at_b <= 2, "turns: a request beside a batch of 40 "
	    "is taken first or second", "", 0, "taken %d of %d", at_b,
	    loop_count(&norder));

	/* The request arrives while the batch runs: during /slow. */
	q = batch;
	q += sprintf(q, "%s%s", REQ("/a"), REQ("/slow"));
	for (i = 0; i < 39; i++)
		q += sprintf(q, "%s", REQ("/a"));
	at_b = order_run(a, b, batch, "", REQ("/b"), &last_a);
	check(at_b != -1 && at_b < last_a, "turns: a request that arrives "
	    "during a batch is taken before the batch ends", "", 0,
	    "taken %d of %d, the batch's last %d", at_b, loop_count(&norder),
	    last_a);
	close(a);
	close(b);
}

/*
 * Big bodies back to back on one connection: its buffer grows once for
 * the first and is kept for the next (a full sync's batches), since
 * giving it back and growing it again unmaps and maps memory each time;
 * after a second without a request the next read gives it back.
 */
static void
test_big_bodies(int p)
{
	static char	 req[200 * 1024 + 128];
	struct timespec	 rest = { 1, 200 * 1000000L };	/* IN_KEEP_MS + */
	char		 out[512];
	int		 fd = loop_dial(p), i, grows, ok = 1;
	size_t		 n;

	n = (size_t)sprintf(req, "PUT /big HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: %d\r\n\r\n", 200 * 1024);
	memset(req + n, 'v', 200 * 1024);
	req[n + 200 * 1024] = '\0';
	pthread_mutex_lock(&loopmu);
	big_grows = big_shrinks = 0;
	pthread_mutex_unlock(&loopmu);
	for (i = 0; i < 3; i++) {
		loop_talk(fd, req, out, sizeof(out), 1);
		ok &= strncmp(out, "HTTP/1.1 200 ", 13) == 0;
		if (i == 0)
			grows = loop_count(&big_grows);
	}
	check(ok && grows == 1, "buffers: the first of three 200 KiB bodies "
	    "grows the buffer", out, strlen(out), "grew %d times", grows);
	check(loop_count(&big_grows) == 1 && loop_count(&big_shrinks) == 0,
	    "buffers: the next two reuse it", "", 0, "grew %d times, shrank "
	    "%d", loop_count(&big_grows), loop_count(&big_shrinks));
	nanosleep(&rest, NULL);
	loop_talk(fd, REQ("/x"), out, sizeof(out), 1);
	check(strncmp(out, "HTTP/1.1 200 ", 13) == 0 &&
	    loop_count(&big_shrinks) == 1, "buffers: given back after a "
	    "second at rest", out, strlen(out), "shrank %d times",
	    loop_count(&big_shrinks));
	close(fd);
}

/*
 * A request left waiting for its answer (a write under FSYNC=always) ends
 * a turn after TURN_NS as an answered one does: NPARK such requests, each
 * SLOW_MS in its handler, read at once, are not all taken in one pass of
 * the loop (its tick runs between them).
 */
static void
test_parked(int p)
{
	struct timespec	 ts;
	char		 out[256];
	int		 x = loop_dial(p), w[NPARK], i, nanswers = 0;

	loop_talk(x, REQ("/x"), out, sizeof(out), 1);
	for (i = 0; i < NPARK; i++) {
		w[i] = loop_dial(p);
		loop_talk(w[i], REQ("/x"), out, sizeof(out), 1);
	}
	pthread_mutex_lock(&loopmu);
	held = sent = nparked = 0;
	pthread_mutex_unlock(&loopmu);

	/* All NPARK are read while /hold runs, then taken in turn. */
	if (send(x, REQ("/hold"), strlen(REQ("/hold")), MSG_NOSIGNAL) !=
	    (ssize_t)strlen(REQ("/hold")))
		abort();
	pthread_mutex_lock(&loopmu);
	while (!held)
		pthread_cond_wait(&loopcv, &loopmu);
	pthread_mutex_unlock(&loopmu);
	for (i = 0; i < NPARK; i++)
		if (send(w[i], REQ("/park"), strlen(REQ("/park")),
		    MSG_NOSIGNAL) != (ssize_t)strlen(REQ("/park")))
			abort();
	pthread_mutex_lock(&loopmu);
	sent = 1;
	pthread_cond_broadcast(&loopcv);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 5;
	while (nparked < NPARK &&
	    pthread_cond_timedwait(&loopcv, &loopmu, &ts) == 0)
		;
	pthread_mutex_unlock(&loopmu);
	loop_talk(x, NULL, out, sizeof(out), 1);
	loop_talk(x, REQ("/unpark"), out, sizeof(out), 1);
	for (i = 0; i < NPARK; i++)
		if (loop_talk(w[i], NULL, out, sizeof(out), 1) > 0 &&
		    strncmp(out, "HTTP/1.1 200", 12) == 0)
			nanswers++;
	check(loop_count(&nparked) == NPARK && nanswers == NPARK,
	    "parked: every request left waiting is taken and answered", "",
	    0, "%d taken, %d answered", loop_count(&nparked), nanswers);
	check(park_tick[0] != park_tick[NPARK - 1], "parked: requests left "
	    "waiting end a turn too", "", 0, "all %d in the pass of tick %d",
	    NPARK, park_tick[0]);
	close(x);
	for (i = 0; i < NPARK; i++)
		close(w[i]);
}

/* The loop on a thread, for test_admit, test_turns and test_parked. */
static void
test_loop(void)
{
	struct http_config	 hc;
	pthread_t		 t;
	char			 port[16], out[4096];
	int			 fd, p = free_port();

	memset(&hc, 0, sizeof(hc));
	snprintf(port, sizeof(port), "%d", p);
	hc.port = port;
	hc.handler = loop_handler;
	hc.admit = loop_admit;
	hc.tick = loop_tick;
	if (http_init(&hc) == -1 ||
	    pthread_create(&t, NULL, loop_thread, NULL) != 0) {
		check(0, "loop: it starts", "", 0, "%s", strerror(errno));
		return;
	}
	test_admit(p);
	test_turns(p);
	test_parked(p);
	test_big_bodies(p);
	fd = loop_dial(p);
	loop_talk(fd, "GET /stop HTTP/1.1\r\nHost: a\r\nConnection: close"
	    "\r\n\r\n", out, sizeof(out), 0);
	close(fd);
	pthread_join(t, NULL);
}

/* Every phrase the server knows; any other status is "Unknown". */
static const struct {
	int		 status;
	const char	*reason;
} reasons[] = {
	{ 100, "Continue" },
	{ 200, "OK" },
	{ 201, "Created" },
	{ 202, "Accepted" },
	{ 204, "No Content" },
	{ 206, "Partial Content" },
	{ 301, "Moved Permanently" },
	{ 302, "Found" },
	{ 303, "See Other" },
	{ 304, "Not Modified" },
	{ 307, "Temporary Redirect" },
	{ 308, "Permanent Redirect" },
	{ 400, "Bad Request" },
	{ 401, "Unauthorized" },
	{ 403, "Forbidden" },
	{ 404, "Not Found" },
	{ 405, "Method Not Allowed" },
	{ 406, "Not Acceptable" },
	{ 408, "Request Timeout" },
	{ 409, "Conflict" },
	{ 410, "Gone" },
	{ 411, "Length Required" },
	{ 412, "Precondition Failed" },
	{ 413, "Content Too Large" },
	{ 414, "URI Too Long" },
	{ 415, "Unsupported Media Type" },
	{ 416, "Range Not Satisfiable" },
	{ 417, "Expectation Failed" },
	{ 422, "Unprocessable Content" },
	{ 425, "Too Early" },
	{ 428, "Precondition Required" },
	{ 429, "Too Many Requests" },
	{ 431, "Request Header Fields Too Large" },
	{ 500, "Internal Server Error" },
	{ 501, "Not Implemented" },
	{ 502, "Bad Gateway" },
	{ 503, "Service Unavailable" },
	{ 504, "Gateway Timeout" },
	{ 505, "HTTP Version Not Supported" },
	{ 507, "Insufficient Storage" },
};

static void
test_reason(void)
{
	char what[32];
	size_t i;
	int st;

	for (st = 0; st < 1000; st++) {
		for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]) &&
		    reasons[i].status != st; i++)
			;
		snprintf(what, sizeof(what), "reason %d", st);
		check(strcmp(http_reason(st), i < sizeof(reasons) /
		    sizeof(reasons[0]) ? reasons[i].reason : "Unknown") == 0,
		    what, "", 0, "");
	}
	check(strcmp(http_reason(-1), "Unknown") == 0, "reason -1", "", 0, "");
}

int
main(void)
{
	log_set_sink(quiet);
	test_parse_table();
	test_fields();
	test_prefixes();
	test_hostile();
	test_limits();
	test_dechunk();
	test_response();
	test_unescape();
	test_reason();
	test_loop();
	printf("http_test: %d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}
