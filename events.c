/*
 * events.c: event streams. GET /kv/?prefix=P&watch=events&since=N sends
 * every write under P from seq N on (without since: from now), in seq
 * order, as Server-Sent Events read from the replication backlog
 * (repl_read). Every node keeps that backlog (a replica of the writes it
 * applies), so streams work on replicas too, and no stream copies the
 * data set: a stream is a cursor into the one shared ring.
 *
 * THE STREAM (text/event-stream, as the WHATWG HTML standard's
 * Server-Sent Events define it)
 *
 *   : from seq 41                     a comment, at once
 *   id: 41                            one event per write under P
 *   data: {"seq":41,"op":"put","key":"P/a","value":"v"}
 *
 *   id: 42
 *   data: {"seq":42,"op":"delete","key":"P/b"}
 *
 *   : ping                            after EVENTS_PING_MS with nothing
 *   event: lagged                     the last event, when the server
 *   data: {"resume":43,"oldest":40}   ends the stream
 *
 * A put with a TTL (PUT ?ttl=, an 'X' record on the wire) has
 * "expires_at": when the key expires, in unix ms on the primary's clock,
 * after key and before value. An instant rather than a TTL because an
 * event is replayed from since= long after its write, and is the same on
 * every node. The expiry itself is a delete event: the primary alone
 * expires keys, at its next sweep past expires_at, and replicates that
 * as an ordinary 'D', so a watch on an expiring key fires when it
 * expires, at the same seq on every node. Nothing says it was an expiry
 * rather than a DELETE: the wire does not, and every node must agree.
 *
 * A transaction's writes (POST /txn) are events with consecutive seqs,
 * sent together; every one but its last ends with "more":true, as on the
 * wire, so a client that mirrors the prefix can apply them at once.
 * Only one bigger than a stream's stage comes in parts.
 *
 * value is a JSON string as keys are in listings: valid UTF-8 as it is,
 * any other byte b as \udcXX (json_string's "surrogateescape", which JSON
 * parsers take and a client maps back to the bytes). A value too big
 * for one copy out of the backlog (over EVENTS_RAW_BYTES less its key and
 * head) comes as value_bytes alone: GET the key (its X-Kv-Seq says
 * whether it still holds that write). There is no "old" side: the
 * backlog holds what each write made, not what it replaced. A client
 * that wants old -> new lists the prefix (its X-Kv-Index is I) and
 * follows from I + 1, keeping what it saw.
 *
 * The server ends a stream with one of: lagged (the reader fell so far
 * behind that its next seq left the backlog: follow again from resume,
 * which answers 410 if resume < oldest), reset (the backlog restarted, at
 * a full sync: seqs may not go on from here, so list again), shutdown
 * (the node stops: follow again from resume, here or elsewhere).
 *
 * Why Server-Sent Events, chunked on HTTP/1.1 (to an HTTP/1.0 client the
 * close ends it): a browser's EventSource follows it and reconnects by
 * itself with Last-Event-ID, taken as since = that id + 1; curl -N shows
 * it as it comes. since older than the backlog holds answers 410 with
 * X-Kv-Oldest-Seq at once (etcd's "compacted"); since past the newest
 * waits for it.
 *
 * BOUNDS. A stream holds EVENTS_RAW_BYTES of records copied out of the
 * ring, the text of the events staged from them (EVENTS_TEXT_BYTES at
 * most: 193 KiB if every byte needs a 6-byte escape), its struct (1 KiB,
 * the prefix) and http.c's output buffer (below 80 KiB): 306 KiB, at
 * most MAX_EVENT_STREAMS of them. A
 * slow reader does not grow that: it falls behind in the shared backlog
 * instead and, once its next seq has left it, gets lagged as its last
 * event; a reader that reads nothing is closed by http.c after
 * IDLE_TIMEOUT_MS without progress. A stream copies at most EVENTS_READS
 * ring batches (256 KiB) between two answers of HTTP_STREAM_LATER, that
 * is per fill of its connection, however many events they hold: a prefix
 * catching up on a full backlog of others' writes goes on at the next
 * pass, and holds the loop for well under a millisecond at a time.
 */

#include <sys/types.h>

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"
#include "http.h"
#include "repl.h"
#include "store.h"
#include "util.h"
#include "node.h"
#include "events.h"

#define EVENTS_RAW_BYTES (32 << 10)	/* records copied from the ring */
/*
 * One event's text at most: key and value escaped, and the rest, which
 * is 141 bytes at most: id and seq (u64s of 20 digits), the op, the
 * names, expires_at (20 digits), value_bytes (10) or the value's quotes.
 */
#define EVENT_FIXED		160
#define EVENT_MAX(klen, vlen)	(JSON_STRING_MAX((klen) + (vlen)) + \
	    EVENT_FIXED)
#define EVENTS_TEXT_BYTES EVENT_MAX(0, EVENTS_RAW_BYTES)
#define EVENTS_READS	8		/* ring copies per fill */
#define EVENTS_PING_MS	10000		/* proxies cut idle streams at 60 s */

struct stream {
	struct repl_cursor cur;
	char		 prefix[STORE_MAX_KEY];
	size_t		 plen;
	char		*raw;		/* records from the ring */
	size_t		 roff, rlen;
	size_t		 cut;		/* raw's one record lost its value */
	int		 reads;		/* ring copies left to this fill */
	char		*text;		/* staged events */
	size_t		 off, len;
	int		 ended;		/* the last event is staged */
	uint64_t	 ping;		/* a comment is due (monotonic ms) */
};

static int		 max_streams;
static uint64_t		 nstreams, nlagged;

void
events_init(int max)
{
	max_streams = max;
}

void
events_stats(uint64_t *open, uint64_t *lagged)
{
	*open = nstreams;
	*lagged = nlagged;
}

static void
stream_free(struct stream *s)
{
	free(s->raw);
	free(s->text);
	free(s);
}

/* Stage the last event: why the server ends the stream. */
static void
end(struct stream *s, const char *why)
{
	char *p = s->text + s->len;

	p = stpcpy(stpcpy(stpcpy(p, "event: "), why), "\n");
	p = reply_u64(p, "data: {\"resume\":", s->cur.seq, "");
	p = reply_u64(p, ",\"oldest\":", s->cur.oldest, "}\n\n");
	s->len = (size_t)(p - s->text);
	s->ended = 1;
	nlagged += why[0] == 'l';
}

/*
 * The one place a record becomes an event: the name of its op, or NULL
 * for none. repl_decode has made an 'X' record (a put with a TTL) a put
 * with expires set; a key that expires comes as the 'D' the primary
 * replicates its expiry as, so a stream sees it as a delete, on every
 * node alike.
 */
static const char *
event_op(const struct repl_record *rec)
{
	switch (rec->op) {
	case REPL_PUT:
		return "put";
	case REPL_DEL:
		return "delete";
	default:
		return NULL;	/* 'E' ends a snapshot, never in the backlog */
	}
}

/* Stage rec as an event if its key is under prefix. */
static void
stage(struct stream *s, const struct repl_record *rec)
{
	char *p = s->text + s->len;
	const char *op;

	if (rec->klen < s->plen || memcmp(rec->key, s->prefix, s->plen) != 0 ||
	    (op = event_op(rec)) == NULL)
		return;
	p = reply_u64(p, "id: ", rec->seq, "\ndata: {\"seq\":");
	p = reply_u64(p, "", rec->seq, ",\"op\":\"");
	p = stpcpy(stpcpy(p, op), "\",\"key\":");
	p += json_string(p, rec->key, rec->klen);
	if (rec->expires != 0)
		p = reply_u64(p, ",\"expires_at\":", rec->expires, "");
	if (s->cut > 0)
		p = reply_u64(p, ",\"value_bytes\":", s->cut, "");
	else if (rec->op == REPL_PUT) {
		p = stpcpy(p, ",\"value\":");
		p += json_string(p, rec->val, rec->vlen);
	}
	p = stpcpy(p, rec->more ? ",\"more\":true}\n\n" : "}\n\n");
	s->len = (size_t)(p - s->text);
}

/*
 * The records at raw + roff that go out together: a write, or a
 * transaction's whole group when the copy holds it and its text fits
 * beside what is staged (else 0: it waits for the next stage). A group
 * bigger than a stage, or than a copy, goes out in parts; its events but
 * the last say "more", so a client still sees where it ends. Returns
 * their bytes.
 */
static size_t
group(const struct stream *s)
{
	struct repl_record rec;
	size_t off = s->roff, room = 0, r;
	ssize_t n;

	do {
		if ((n = repl_decode(s->raw + off, s->rlen - off, &rec)) <= 0)
			break;		/* the copy ends inside the group */
		r = EVENT_MAX(rec.klen, rec.vlen);
		if (s->len + room + r > EVENTS_TEXT_BYTES) {
			if (s->len > 0)
				return 0;
			break;
		}
		room += r;
		off += (size_t)n;
	} while (rec.more);
	return off - s->roff;
}

/*
 * Stage what follows: the events of the records copied and not staged
 * yet, as many groups as fit; else the next copy from the ring, while
 * s->reads lasts. Nothing staged means nothing new (or the copies held
 * nothing under prefix).
 */
static void
refill(struct stream *s)
{
	struct repl_record rec;
	ssize_t n;
	size_t g, end_off;
	uint64_t now = mono_ms();

	if (node.stopping) {
		end(s, "shutdown");
		return;
	}
	while (s->len == 0 || s->roff < s->rlen) {
		if (s->roff == s->rlen) {
			if (s->reads == 0)
				break;
			s->reads--;
			s->roff = s->rlen = 0;
			if ((n = repl_read(&s->cur, s->raw, EVENTS_RAW_BYTES,
			    &s->cut)) == -1) {
				end(s, errno == ESTALE ? "reset" : "lagged");
				return;
			}
			if (n == 0)
				break;
			s->rlen = (size_t)n;
		}
		if ((g = group(s)) == 0)
			break;
		for (end_off = s->roff + g; s->roff < end_off;
		    s->roff += (size_t)n) {
			n = repl_decode(s->raw + s->roff, end_off - s->roff,
			    &rec);
			stage(s, &rec);
		}
	}
	if (s->len > 0)
		s->ping = now + EVENTS_PING_MS;
	else if (now >= s->ping) {
		s->len = (size_t)(stpcpy(s->text, ": ping\n\n") - s->text);
		s->ping = now + EVENTS_PING_MS;
	}
}

static ssize_t
produce(void *arg, char *buf, size_t cap)
{
	struct stream *s = arg;
	size_t n;

	if (buf == NULL || (s->off == s->len && s->ended)) {
		stream_free(s);
		nstreams--;
		return 0;
	}
	if (s->off == s->len) {
		s->off = s->len = 0;
		refill(s);
		if (s->len == 0) {
			s->reads = EVENTS_READS;	/* the next pass's */
			return HTTP_STREAM_LATER;
		}
	}
	n = s->len - s->off < cap ? s->len - s->off : cap;
	memcpy(buf, s->text + s->off, n);
	s->off += n;
	return (ssize_t)n;
}

/* The first seq r wants: since=, else Last-Event-ID + 1, else 0 (now). */
static int
first_seq(struct http_request *r, uint64_t *seq)
{
	int rc;

	*seq = 0;
	if ((rc = req_query_u64(r, "since", seq)) == 0 &&
	    (rc = req_header_u64(r, "Last-Event-ID", seq)) == 1)
		++*seq;
	if (rc == 1 && (*seq == 0 || *seq > REPL_SEQ_MAX)) {
		reply_text(r->id, 400, "", "since must be 1 to 2^53");
		return -1;
	}
	return rc;
}

/*
 * A listing's parameters, which a stream would ignore: refused, so that
 * no client believes it got a page or a watch of values. Returns 1 if r
 * has one.
 */
static int
list_param(struct http_request *r)
{
	const char *n;
	size_t len;

	for (n = "index\0wait\0values\0limit\0cursor\0"; *n != '\0';
	    n += strlen(n) + 1)
		if (http_query(r, n, &len) != NULL)
			return 1;
	return 0;
}

int
events_follow(struct http_request *r, const char *prefix, size_t plen)
{
	struct stream *s;
	const char *v;
	char extra[160];
	uint64_t seq;
	size_t len;

	if ((v = http_query(r, "watch", &len)) == NULL) {
		if (http_query(r, "since", &len) == NULL)
			return 0;
		reply_text(r->id, 400, "", "since= needs watch=events");
	} else if (len != 6 || memcmp(v, "events", 6) != 0)
		reply_text(r->id, 400, "", "watch must be events");
	else if (list_param(r))
		reply_text(r->id, 400, "", "watch=events takes prefix= and "
		    "since= only");
	else if (first_seq(r, &seq) == -1)
		;
	else if (nstreams >= (uint64_t)max_streams)
		reply_text(r->id, 503, "Retry-After: 1\r\n", "too many event "
		    "streams: MAX_EVENT_STREAMS (%d) are open", max_streams);
	else if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->raw = malloc(EVENTS_RAW_BYTES)) == NULL ||
	    (s->text = malloc(EVENTS_TEXT_BYTES)) == NULL) {
		if (s != NULL)
			stream_free(s);
		reply_text(r->id, 503, "", "out of memory");
	} else {
		memcpy(s->prefix, prefix, plen);
		s->plen = plen;
		s->cur.seq = seq > 0 ? seq : store_last_seq(node.store) + 1;
		s->cur.epoch = UINT64_MAX;
		if (repl_read(&s->cur, NULL, 0, &s->cut) == -1) {
			reply_u64(extra, "X-Kv-Oldest-Seq: ", s->cur.oldest,
			    "\r\n");
			reply_text(r->id, 410, extra, "seq %llu is no longer "
			    "held here: the oldest is %llu",
			    (unsigned long long)seq,
			    (unsigned long long)s->cur.oldest);
			stream_free(s);
			return 1;
		}
		s->len = (size_t)(reply_u64(s->text, ": from seq ",
		    s->cur.seq, "\n\n") - s->text);
		s->ping = mono_ms() + EVENTS_PING_MS;
		s->reads = EVENTS_READS;
		reply_u64(extra, "Cache-Control: no-cache\r\n"
		    "X-Accel-Buffering: no\r\nX-Kv-Index: ", s->cur.seq - 1,
		    "\r\n");
		nstreams++;	/* before: a HEAD ends it inside http_stream */
		if (http_stream(r->id, 200, "text/event-stream", extra,
		    produce, s) == -1) {
			stream_free(s);
			nstreams--;
		}
	}
	return 1;
}
