/*
 * txn.c: POST /txn, atomic multi-key transactions, in the shape of etcd's
 * Txn and Consul's /v1/txn: compares, then the operations of the branch
 * they chose, all run in one turn of the loop (so at one point of the
 * sequence: no other write comes between), written as one store group
 * (a crash keeps all of it or none), replicated as one group (repl.c:
 * a replica applies it whole, in one turn too) and answered once, as a
 * PUT is: after the flush under FSYNC=always, after X-Kv-Replicas acks.
 *
 * THE REQUEST: Content-Type: application/json (a browser cannot send that
 * cross-site without a CORS preflight, which kvstore never grants), at
 * most MAX_VALUE_BYTES, one object:
 *
 *   {"compare": [ {"key": K, "version": N},    K is at version N (its
 *                                              ETag; 0: K does not exist)
 *                 {"key": K, "exists": B},     K exists, or does not
 *                 {"key": K, "value": V} ],    K exists and holds V
 *    "success": [ OP... ],                     run if every compare holds
 *    "failure": [ OP... ]}                     run otherwise
 *
 *   OP: {"op": "put", "key": K, "value": V}   "ttl": T too: K expires
 *       {"op": "delete", "key": K}
 *       {"op": "get", "key": K}
 *       {"op": "delete_prefix", "prefix": P}   every key starting with P
 *
 * A compare may hold several conditions; all must hold. Every member is
 * optional but "key"/"prefix"/"op"; unknown members are refused, so a typo
 * never passes silently. Keys are 1 to 1024 bytes but NUL, as in /kv/;
 * strings are UTF-8, \udc80..\udcff standing for the bytes 0x80..0xff that
 * are not (as listings and answers write them). Operations run in order:
 * a get after a put sees the put.
 *
 * A put's "ttl" is a string as PUT's ?ttl= takes ("30s", "500ms", "2h";
 * digits alone: seconds): the key expires that long after the transaction
 * ran (one clock reading for all its puts), as a PUT ?ttl= key does. The
 * put is then an expiring record inside the group, on disk and on the
 * wire ('x', repl.c). A key past its expiry is gone for the compares and
 * gets, as for GET, even before the primary's sweep deletes it (api.c:
 * the sweep runs first, so that is only when more are due at once than
 * it takes).
 *
 * LIMITS (Consul's and etcd's): at most TXN_MAX_OPS compares and TXN_MAX_OPS
 * operations per branch; the body at most MAX_VALUE_BYTES (413); JSON
 * nested at most JSON_MAX_DEPTH deep; delete_prefix walks every key, so
 * it is refused (413) on a store of more than TXN_SCAN_KEYS keys, and
 * when the prefixes of a transaction match more than TXN_PREFIX_KEYS
 * keys in all. A malformed body is 400 with the byte offset and what is
 * wrong; nothing is written unless the whole body is valid.
 *
 * THE ANSWER: 200 (or 412, below), X-Kv-Seq: the transaction's seq (its
 * last write; the store's seq when it wrote nothing), and
 *
 *   {"succeeded": B,
 *    "failed_compare": I, "reason": "...",        when a compare failed
 *    "results": [ one per operation of the branch that ran:
 *      {"op":"put","key":K,"version":N,"created":B}
 *      {"op":"delete","key":K,"deleted":B,"version":N}   (N 0: none)
 *      {"op":"get","key":K,"found":B[,"version":N,"expires_in":S,
 *       "value":V]}                         expires_in as listings give it
 *      {"op":"delete_prefix","prefix":P,"deleted":N} ],
 *    "seq": N, "writes": W}
 *
 * The writes took the seqs N-W+1 .. N, one each, contiguous. When a
 * compare failed, "failed_compare" names the first that did not hold, and
 * the status says whether anything ran: 200 if the failure branch did
 * (etcd's answer: the client asked for it), 412 with the same body if
 * there was none, so nothing happened (Consul answers 409 there; 412 is
 * what If-Match says of a PUT, and `curl -f` sees it). A get answers at
 * most TXN_GET_BYTES of values in all; past that it gives "value_bytes"
 * instead of "value" (read the key itself).
 */

#include <sys/types.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fmt.h"
#include "parse.h"
#include "http.h"
#include "json.h"
#include "repl.h"
#include "store.h"
#include "util.h"
#include "node.h"
#include "txn.h"
#include "wait.h"

#define TXN_MAX_OPS	128		/* Consul's and etcd's limit */
#define TXN_MAX_TOKENS	4096		/* a put with a TTL is 9 tokens, as
					   is a compare of all three: three
					   full lists fit, in 192 KiB */
#define TXN_SCAN_KEYS	100000		/* a listing page's scan: a few ms */
#define TXN_PREFIX_KEYS	256		/* deleted by prefix, in all */
#define TXN_GET_BYTES	(1 << 20)	/* of values in an answer */
#define OP_ROOM		192		/* an operation's answer but its key
					   and value: ~150 bytes at most */

/* An item: a compare, or an operation; what the body said of it. */
enum item_kind { CMP, OP_PUT, OP_DELETE, OP_GET, OP_DELETE_PREFIX };

/* Its members, as bits. */
enum { F_OP = 1, F_KEY = 2, F_PREFIX = 4, F_VALUE = 8, F_VERSION = 16,
	F_EXISTS = 32, F_TTL = 64 };

struct txn_item {
	int		 i_kind;
	unsigned	 i_has;		/* F_* seen */
	const char	*i_key;		/* or the prefix */
	size_t		 i_klen;
	const char	*i_val;
	size_t		 i_vlen;
	uint64_t	 i_version;
	int		 i_exists;
	uint64_t	 i_ttl;		/* a put's "ttl" in ms, or 0 */
};

struct txn {
	struct txn_item	 items[3][TXN_MAX_OPS];	/* compare, success,
						   failure */
	int		 n[3];
	struct stage	 out;		/* the answer */
	size_t		 get_bytes;	/* values answered so far */
	uint64_t	 now;		/* wall_ms when it ran: expiries */
	uint64_t	 writes;
	/* The last write, enqueued for the replicas once the next one
	 * shows it was not the transaction's last. */
	int		 held_op;	/* 0: none */
	uint64_t	 held_seq;
	char		 held_key[STORE_MAX_KEY];
	size_t		 held_klen;
	const char	*held_val;	/* in the decoded strings: stays */
	size_t		 held_vlen;
	uint64_t	 held_exp;
};

/* A key or prefix collected by delete_prefix's walk. */
struct prefix_walk {
	const char	*pw_prefix;
	size_t		 pw_plen;
	size_t		 pw_n;
	struct stage	*pw_keys;	/* u16 length + bytes each, or NULL:
					   count only */
};

static const char *const lists[] = { "compare", "success", "failure" };
static const char *const kinds[] = { "", "put", "delete", "get",
	"delete_prefix" };
static const char *const members[] = { "op", "key", "prefix", "value",
	"version", "exists", "ttl" };
/* What each kind must have, and may. */
static const unsigned required[] = { F_KEY, F_OP | F_KEY | F_VALUE,
	F_OP | F_KEY, F_OP | F_KEY, F_OP | F_PREFIX };
static const unsigned allowed[] = { F_KEY | F_VALUE | F_VERSION | F_EXISTS,
	F_OP | F_KEY | F_VALUE | F_TTL, F_OP | F_KEY, F_OP | F_KEY,
	F_OP | F_PREFIX };
static const char *const usage[] = {
	"{\"key\":K} with \"version\":N, \"exists\":B and/or \"value\":V",
	"{\"op\":\"put\",\"key\":K,\"value\":V} (and \"ttl\":\"30s\")",
	"{\"op\":\"delete\",\"key\":K}",
	"{\"op\":\"get\",\"key\":K}",
	"{\"op\":\"delete_prefix\",\"prefix\":P}",
	"{\"op\":O,...} with O put, delete, get or delete_prefix"
};

/* ---- Parsing ---- */

/* Member tok[m] (its value at m + 1) into it; -1 if it is not right. */
static int
parse_member(const struct json_tok *tok, size_t m, struct txn_item *it)
{
	const struct json_tok *v = &tok[m + 1];
	unsigned f;
	int k;

	for (f = 0; f < 7 && !json_is(tok, (int)m, members[f]); f++)
		;
	if (f == 7 || (it->i_has & 1u << f) != 0)
		return -1;
	it->i_has |= 1u << f;
	switch (1u << f) {
	case F_OP:
		for (k = 1; k < 5 && !json_is(tok, (int)m + 1, kinds[k]); k++)
			;
		it->i_kind = k < 5 ? k : -1;
		return k < 5 ? 0 : -1;
	case F_KEY:
	case F_PREFIX:
		it->i_key = v->t_str;
		it->i_klen = v->t_n;
		return v->t_type != JSON_STRING || v->t_n == 0 ||
		    v->t_n > STORE_MAX_KEY ||
		    memchr(v->t_str, '\0', v->t_n) != NULL ? -1 : 0;
	case F_VALUE:
		it->i_val = v->t_str;
		it->i_vlen = v->t_n;
		return v->t_type == JSON_STRING ? 0 : -1;
	case F_VERSION:
		it->i_version = v->t_num;
		return v->t_type == JSON_NUMBER ? 0 : -1;
	case F_EXISTS:
		it->i_exists = v->t_type == JSON_TRUE;
		return v->t_type == JSON_TRUE || v->t_type == JSON_FALSE ?
		    0 : -1;
	case F_TTL:
		return v->t_type == JSON_STRING &&
		    parse_ttl(v->t_str, v->t_n, &it->i_ttl) == 0 ? 0 : -1;
	}
	return -1;
}

/* The item at tok[obj], of list l; -1 if it is not right. */
static int
parse_item(const struct json_tok *tok, int obj, int l, struct txn_item *it)
{
	size_t m = (size_t)obj + 1, k;

	if (tok[obj].t_type != JSON_OBJECT)
		return -1;
	for (k = 0; k < tok[obj].t_n; k++, m = tok[m + 1].t_end)
		if (parse_member(tok, m, it) == -1)
			return -1;
	if (it->i_kind < 0 || (l == 0) != (it->i_kind == CMP))
		return -1;
	return (it->i_has & required[it->i_kind]) == required[it->i_kind] &&
	    (it->i_has & ~allowed[it->i_kind]) == 0 && (l > 0 ||
	    (it->i_has & (F_VALUE | F_VERSION | F_EXISTS)) != 0) ? 0 : -1;
}

/* Parse r's body into t; answers and returns -1 if it is not a txn. */
static int
parse_txn(struct http_request *r, struct txn *t, struct json_tok *tok,
    char *sbuf)
{
	const char *why;
	size_t pos, k;
	int l, a, i, known;

	if (json_parse(r->body, r->body_len, tok, TXN_MAX_TOKENS, sbuf, &pos,
	    &why) == -1) {
		reply_text(r->id, 400, "", "bad JSON at byte %zu: %s", pos,
		    why);
		return -1;
	}
	for (known = 0, l = 0; l < 3; l++) {
		if ((a = json_member(tok, 0, lists[l])) < 0)
			continue;
		known++;
		if (tok[a].t_type != JSON_ARRAY || tok[a].t_n > TXN_MAX_OPS) {
			reply_text(r->id, tok[a].t_n > TXN_MAX_OPS ? 413 : 400,
			    "", "\"%s\": a list of at most %d", lists[l],
			    TXN_MAX_OPS);
			return -1;
		}
		for (k = 0, i = a + 1; k < tok[a].t_n; k++,
		    i = (int)tok[i].t_end) {
			t->items[l][k].i_kind = l == 0 ? CMP : -1;
			if (parse_item(tok, i, l, &t->items[l][k]) == -1) {
				reply_text(r->id, 400, "", "%s[%zu] (byte %zu):"
				    " expected %s", lists[l], k, tok[i].t_pos,
				    usage[l == 0 ? 0 : t->items[l][k].i_kind <
				    1 ? 5 : t->items[l][k].i_kind]);
				return -1;
			}
		}
		t->n[l] = (int)k;
	}
	if (tok[0].t_type != JSON_OBJECT || (size_t)known != tok[0].t_n) {
		reply_text(r->id, 400, "", "expected {\"compare\":[...],"
		    "\"success\":[...],\"failure\":[...]}");
		return -1;
	}
	return 0;
}

/* ---- Running ---- */

/*
 * 1 and *v if key is there to be seen: on the primary, a key past its
 * expiry is gone at once, as api.c's live() says.
 */
static int
get_live(const struct txn *t, const char *key, size_t klen,
    struct store_value *v)
{
	return store_get(node.store, key, klen, v) == 1 &&
	    (v->expires == 0 || v->expires > t->now);
}

/* NULL if c holds; else why not, in why[cap]. */
static const char *
cmp_fails(const struct txn *t, const struct txn_item *c, char *why,
    size_t cap)
{
	struct store_value v;
	int exists = get_live(t, c->i_key, c->i_klen, &v);
	uint64_t ver = exists ? v.seq : 0;

	if ((c->i_has & F_VERSION) && ver != c->i_version)
		fmt_buf(why, cap, "the key is at version %llu",
		    (unsigned long long)ver);
	else if ((c->i_has & F_EXISTS) && exists != c->i_exists)
		fmt_buf(why, cap, exists ? "the key exists" :
		    "the key does not exist");
	else if ((c->i_has & F_VALUE) && (!exists || v.len != c->i_vlen ||
	    memcmp(v.data, c->i_val, v.len) != 0))
		fmt_buf(why, cap, "the key holds another value (version "
		    "%llu)", (unsigned long long)ver);
	else
		return NULL;
	return why;
}

static int
walk_key(void *arg, const char *key, size_t klen,
    const struct store_value *v)
{
	struct prefix_walk *pw = arg;
	uint16_t n = (uint16_t)klen;

	(void)v;
	if (klen < pw->pw_plen || memcmp(key, pw->pw_prefix,
	    pw->pw_plen) != 0)
		return 0;
	pw->pw_n++;
	if (pw->pw_keys == NULL || stage_reserve(pw->pw_keys, 2 + klen, 0) ==
	    -1)
		return 0;
	memcpy(pw->pw_keys->buf + pw->pw_keys->len, &n, 2);
	memcpy(pw->pw_keys->buf + pw->pw_keys->len + 2, key, klen);
	pw->pw_keys->len += 2 + klen;
	return 0;
}

/* Keys under prefix: counted, and collected into keys unless NULL. */
static size_t
walk_prefix(const char *prefix, size_t plen, struct stage *keys)
{
	struct prefix_walk pw = { prefix, plen, 0, keys };
	uint64_t cursor = 0;

	while (cursor != UINT64_MAX && store_scan(node.store, &cursor, 4096,
	    walk_key, &pw) > 0)
		;
	return pw.pw_n;
}

/*
 * Before anything is written: the branch's delete_prefix walks are
 * bounded. Answers 413 and returns -1 if not.
 */
static int
prefixes_bounded(struct http_request *r, const struct txn *t, int l,
    size_t *np)
{
	struct store_stats st;
	const struct txn_item *o;
	size_t n = 0;
	int i;

	for (i = 0; i < t->n[l]; i++) {
		o = &t->items[l][i];
		if (o->i_kind != OP_DELETE_PREFIX)
			continue;
		store_stats(node.store, &st);
		if (st.keys > TXN_SCAN_KEYS ||
		    (n += walk_prefix(o->i_key, o->i_klen, NULL)) >
		    TXN_PREFIX_KEYS) {
			reply_text(r->id, 413, "", "delete_prefix may match "
			    "%d keys in all, in a store of at most %d keys; "
			    "nothing was changed", TXN_PREFIX_KEYS,
			    TXN_SCAN_KEYS);
			return -1;
		}
	}
	*np = n;
	return 0;
}

/* Append s (a JSON fragment) to the answer; the room was reserved. */
static void
out(struct txn *t, const char *s)
{
	size_t n = strlen(s);

	memcpy(t->out.buf + t->out.len, s, n);
	t->out.len += n;
}

static void
out_u64(struct txn *t, const char *name, uint64_t n)
{
	t->out.len += (size_t)fmt_str(t->out.buf + t->out.len,
	    ",\"%s\":%llu", name, (unsigned long long)n);
}

/* Append bytes as a JSON string, then end; -1 if out of memory. */
static int
out_string(struct txn *t, const char *pre, const char *s, size_t n,
    const char *end)
{
	if (stage_reserve(&t->out, JSON_STRING_MAX(n) + 128, 0) == -1)
		return -1;
	out(t, pre);
	t->out.len += json_string(t->out.buf + t->out.len, s, n);
	out(t, end);
	return 0;
}

/* A key's time left, as listings give it; nothing if it never expires. */
static void
out_expiry(struct txn *t, const struct store_value *v)
{
	uint64_t left;

	if (v->expires == 0)
		return;
	left = v->expires > t->now ? v->expires - t->now : 0;
	t->out.len += (size_t)fmt_str(t->out.buf + t->out.len,
	    ",\"expires_in\":%llu.%03u", (unsigned long long)(left / 1000),
	    (unsigned)(left % 1000));
}

/*
 * A write was made (a put expiring at expires, unless 0): the one before
 * it was not the last; it goes out.
 */
static void
wrote(struct txn *t, int op, uint64_t seq, const char *key, size_t klen,
    const char *val, size_t vlen, uint64_t expires)
{
	if (t->held_op != 0)
		repl_enqueue_exp(t->held_op | REPL_MORE, t->held_seq,
		    t->held_key, t->held_klen, t->held_val, t->held_vlen,
		    t->held_exp);
	t->held_op = op;
	t->held_seq = seq;
	memcpy(t->held_key, key, klen);
	t->held_klen = klen;
	t->held_val = val;
	t->held_vlen = vlen;
	t->held_exp = expires;
	t->writes++;
	wait_note_write(key, klen);
}

static int
run_get(struct txn *t, const struct txn_item *o)
{
	struct store_value v;

	if (!get_live(t, o->i_key, o->i_klen, &v)) {
		out(t, ",\"found\":false}");
		return 0;
	}
	out(t, ",\"found\":true");
	out_u64(t, "version", v.seq);
	out_expiry(t, &v);
	if (t->get_bytes + v.len > TXN_GET_BYTES) {
		out_u64(t, "value_bytes", v.len);
		out(t, "}");
		return 0;
	}
	t->get_bytes += v.len;
	return out_string(t, ",\"value\":", v.data, v.len, "}");
}

/* 1 if deleted, 0 if missing, -1 with errno. */
static int
run_delete(struct txn *t, const char *key, size_t klen, uint64_t *seq)
{
	int rc;

	if ((rc = store_del(node.store, key, klen, 0, seq)) == 1)
		wrote(t, REPL_DEL, *seq, key, klen, NULL, 0, 0);
	return rc;
}

static int
run_delete_prefix(struct txn *t, const struct txn_item *o)
{
	struct stage keys;
	size_t off;
	uint64_t n = 0, seq;
	uint16_t klen;
	int rc = 0;

	memset(&keys, 0, sizeof(keys));
	(void)walk_prefix(o->i_key, o->i_klen, &keys);
	for (off = 0; off < keys.len && rc != -1; off += 2 + klen) {
		memcpy(&klen, keys.buf + off, 2);
		n += (rc = run_delete(t, keys.buf + off + 2, klen, &seq)) == 1;
	}
	free(keys.buf);
	out_u64(t, "deleted", n);
	out(t, "}");
	return rc == -1 || keys.failed ? -1 : 0;
}

/* Run operation o into the answer; -1 with errno if it failed. */
static int
run_op(struct txn *t, const struct txn_item *o)
{
	uint64_t seq, exp;
	int rc;

	if (stage_reserve(&t->out, JSON_STRING_MAX(o->i_klen) + OP_ROOM, 0) ==
	    -1)
		return -1;
	out(t, t->out.buf[t->out.len - 1] == '[' ? "{\"op\":\"" :
	    ",{\"op\":\"");
	out(t, kinds[o->i_kind]);
	out(t, o->i_kind == OP_DELETE_PREFIX ? "\",\"prefix\":" :
	    "\",\"key\":");
	t->out.len += json_string(t->out.buf + t->out.len, o->i_key,
	    o->i_klen);
	switch (o->i_kind) {
	case OP_PUT:
		exp = o->i_ttl != 0 ? t->now + o->i_ttl : 0;
		if ((rc = store_put_exp(node.store, o->i_key, o->i_klen,
		    o->i_val, o->i_vlen, exp, 0, &seq)) == -1)
			return -1;
		wrote(t, REPL_PUT, seq, o->i_key, o->i_klen, o->i_val,
		    o->i_vlen, exp);
		out_u64(t, "version", seq);
		out(t, rc == 1 ? ",\"created\":true}" : ",\"created\":false}");
		return 0;
	case OP_DELETE:
		if ((rc = run_delete(t, o->i_key, o->i_klen, &seq)) == -1)
			return -1;
		out(t, rc == 1 ? ",\"deleted\":true" : ",\"deleted\":false");
		out_u64(t, "version", rc == 1 ? seq : 0);
		out(t, "}");
		return 0;
	case OP_GET:
		return run_get(t, o);
	default:
		return run_delete_prefix(t, o);
	}
}

/*
 * Run branch l as one store group, with room made for all its records
 * first (nprefixed: the keys its delete_prefix walks found). A write
 * cannot fail inside it but for memory for the answer: the group is then
 * ended where it is (what was written stays written, and replicated) and
 * the caller answers with the error.
 */
static int
run_branch(struct txn *t, int l, size_t nprefixed)
{
	const struct txn_item *o;
	uint64_t nputs = 0, nbytes = 0;
	int i, rc = 0;

	for (i = 0; i < t->n[l]; i++) {
		o = &t->items[l][i];
		nputs += o->i_kind == OP_PUT;
		nbytes += STORE_RECORD_BYTES(o->i_klen, o->i_vlen +
		    (o->i_ttl != 0 ? 8 : 0));
	}
	/* Keys put before a delete_prefix may be deleted by it too. */
	nbytes += (nprefixed + nputs) * STORE_RECORD_BYTES(STORE_MAX_KEY, 0);
	if (store_group_begin(node.store, nputs, nbytes) == -1)
		return -1;
	for (i = 0; i < t->n[l] && rc == 0; i++)
		rc = run_op(t, &t->items[l][i]);
	store_group_end(node.store);
	if (t->held_op != 0)
		repl_enqueue_exp(t->held_op, t->held_seq, t->held_key,
		    t->held_klen, t->held_val, t->held_vlen, t->held_exp);
	return rc;
}

/* Content-Type: application/json, parameters allowed. */
static int
is_json(const struct http_request *r)
{
	const char *ct;
	size_t len;

	return (ct = http_header(r, "Content-Type", &len)) != NULL &&
	    len >= 16 && http_ci_same(ct, "application/json", 16) &&
	    (len == 16 || ct[16] == ';' || ct[16] == ' ');
}

static void
run(struct http_request *r, struct txn *t)
{
	char why[128], extra[VERSION_HEADERS];
	const char *failed = NULL;
	uint64_t seq;
	size_t nprefixed;
	int i, l;

	t->now = wall_ms();
	for (i = 0; i < t->n[0] && failed == NULL; i++)
		failed = cmp_fails(t, &t->items[0][i], why, sizeof(why));
	l = 1 + (failed != NULL);
	if (prefixes_bounded(r, t, l, &nprefixed) == -1)
		return;
	if (stage_reserve(&t->out, 64, 0) == -1)
		goto nomem;
	out(t, failed == NULL ? "{\"succeeded\":true" :
	    "{\"succeeded\":false");
	if (failed != NULL) {
		out_u64(t, "failed_compare", (uint64_t)i - 1);
		if (out_string(t, ",\"reason\":", why, strlen(why), "") == -1)
			goto nomem;
	}
	out(t, ",\"results\":[");
	if (run_branch(t, l, nprefixed) == -1) {
		if (t->out.failed)
			goto nomem;
		reply_text(r->id, errno == ENOSPC ? 507 : 503, "", "the "
		    "transaction failed after %llu of its writes: %s",
		    (unsigned long long)t->writes, errstr());
		return;
	}
	seq = store_last_seq(node.store);
	if (stage_reserve(&t->out, 96, 0) == -1)
		goto nomem;
	out(t, "]");
	out_u64(t, "seq", seq);
	out_u64(t, "writes", t->writes);
	out(t, "}\n");
	if (t->writes > 0) {
		wait_ack_body(r, 200, "", t->out.buf, t->out.len, seq);
		t->out.buf = NULL;
		return;
	}
	reply_version(extra, seq, 0);
	http_reply(r->id, failed != NULL && t->n[2] == 0 ? 412 : 200,
	    "application/json", extra, t->out.buf, t->out.len);
	return;
nomem:
	reply_text(r->id, 503, "", "out of memory for the answer%s",
	    t->writes > 0 ? "; the transaction was made" : "");
}

void
txn_request(struct http_request *r)
{
	struct json_tok *tok = NULL;
	struct txn *t = NULL;
	char *sbuf = NULL;

	if (!is_json(r)) {
		reply_text(r->id, 415, "", "POST /txn takes a JSON body with "
		    "Content-Type: application/json");
		return;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL ||
	    (tok = malloc(TXN_MAX_TOKENS * sizeof(*tok))) == NULL ||
	    (sbuf = malloc(r->body_len + 1)) == NULL)
		reply_text(r->id, 503, "", "out of memory");
	else if (parse_txn(r, t, tok, sbuf) == 0)
		run(r, t);
	if (t != NULL)
		free(t->out.buf);
	free(t);
	free(tok);
	free(sbuf);
}
