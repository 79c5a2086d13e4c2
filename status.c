/*
 * status.c: what the node says of itself: /health (liveness: the loop
 * answers), /ready (readiness, with the role, keys, sequence and the
 * replication links, as JSON), /role, and /metrics in the Prometheus text
 * format (http.c counts requests and latency; the store, replication and
 * readiness are added here).
 */

#include <sys/types.h>

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmt.h"
#include "parse.h"
#include "http.h"
#include "repl.h"
#include "recover.h"
#include "store.h"
#include "util.h"
#include "node.h"
#include "status.h"
#include "events.h"

#define PRIMARY_UP_MS	3000		/* heartbeats come every second */
#define METRICS_BYTES	(256 << 10)	/* http.c's ~25 KiB, 64 replicas' */

/* The /metrics text as it is written: cut at cap, never past it. */
struct text {
	char		*b;
	size_t		 o;
	size_t		 cap;
};

/* ---- Liveness, readiness, role ---- */

void
status_health(struct http_request *r)
{
	reply_text(r->id, 200, "", "ok");
}

void
status_role(struct http_request *r)
{
	reply_text(r->id, 200, "", "%s", node_role_name());
}

/* Why this node is not ready, or NULL if it is. */
static const char *
not_ready(const struct store_stats *st)
{
	if (node.stopping)
		return "stopping";
	if (node.role == ROLE_PRIMARY && repl_recovering())
		return "recovering";
	if (node.role == ROLE_REPLICA && !st->synced)
		return "syncing";
	/* For good: a restart must recover the store from disk. A full
	 * disk is not here: it ends by itself, and reads still work. */
	if (store_error(node.store) != 0)
		return "disk-failed";
	if (node.store_stale)
		return "restart-needed";
	return NULL;
}

/* Append the replication part of /ready to b (room for all of it). */
static size_t
ready_repl(char *b, const struct store_stats *st)
{
	struct repl_peer peers[NODE_MAX_PEERS];
	size_t n, i, o = 0;
	uint64_t now = mono_ms();

	if (node.role == ROLE_REPLICA) {
		o += fmt_str(b + o, ",\"primary\":{\"url\":");
		o += json_string(b + o, node.primary_url,
		    strlen(node.primary_url));
		o += fmt_str(b + o, ",\"link\":\"%s\",\"last_heard_ms\":",
		    node.primary_heard_ms != 0 &&
		    now - node.primary_heard_ms < PRIMARY_UP_MS ? "up" :
		    "down");
		o += node.primary_heard_ms == 0 ? fmt_str(b + o, "null") :
		    fmt_str(b + o, "%llu",
		    (unsigned long long)(now - node.primary_heard_ms));
		o += fmt_str(b + o, ",\"applied_seq\":%llu,\"primary_seq\":%llu,"
		    "\"lag_writes\":%llu}", (unsigned long long)st->last_seq,
		    (unsigned long long)node.primary_seq,
		    (unsigned long long)(node.primary_seq > st->last_seq ?
		    node.primary_seq - st->last_seq : 0));
		return o;
	}
	n = repl_peers(peers, NODE_MAX_PEERS);
	o += fmt_str(b + o, ",\"replicas\":[");
	for (i = 0; i < n && i < NODE_MAX_PEERS; i++) {
		o += fmt_str(b + o, "%s{\"url\":", i > 0 ? "," : "");
		o += json_string(b + o, peers[i].url, strlen(peers[i].url));
		o += fmt_str(b + o, ",\"state\":\"%s\",\"acked_seq\":%llu,"
		    "\"lag_writes\":%llu,\"lag_ms\":%llu,"
		    "\"last_contact_ms\":%llu,\"full_syncs\":%llu,"
		    "\"partial_syncs\":%llu,\"registered\":%s",
		    peers[i].state, (unsigned long long)peers[i].acked_seq,
		    (unsigned long long)peers[i].lag_writes,
		    (unsigned long long)peers[i].lag_ms,
		    (unsigned long long)peers[i].last_contact_ms,
		    (unsigned long long)peers[i].full_syncs,
		    (unsigned long long)peers[i].partial_syncs,
		    peers[i].registered ? "true" : "false");
		if (peers[i].alias[0] != '\0') {
			o += fmt_str(b + o, ",\"alias\":");
			o += json_string(b + o, peers[i].alias,
			    strlen(peers[i].alias));
		}
		o += fmt_str(b + o, "}");
	}
	o += fmt_str(b + o, "]");
	return o;
}

void
status_ready(struct http_request *r)
{
	struct store_stats st;
	const char *why;
	char *b;
	size_t o;

	/* Each peer's entry is under 256 bytes beyond its JSON'd URLs. */
	if ((b = malloc(2048 + 6 * (sizeof(node.recovery) +
	    sizeof(node.recovery_warning)) +
	    NODE_MAX_PEERS * (256 + 2 * 6 * 256))) ==
	    NULL) {
		reply_text(r->id, 503, "", "out of memory");
		return;
	}
	store_stats(node.store, &st);
	why = not_ready(&st);
	o = fmt_str(b, "{\"status\":\"%s\",\"role\":\"%s\","
	    "\"keys\":%llu,\"seq\":%llu,\"durable_seq\":%llu,"
	    "\"data_bytes\":%llu,\"file_bytes\":%llu,\"fsync\":\"%s\","
	    "\"connections\":%d,\"repl_id\":\"%s\",\"disk\":\"%s\"",
	    why != NULL ? why : "ready", node_role_name(),
	    (unsigned long long)st.keys, (unsigned long long)st.last_seq,
	    (unsigned long long)st.durable_seq,
	    (unsigned long long)st.live_bytes,
	    (unsigned long long)st.file_bytes, node_fsync_name(node.fsync),
	    http_conns(), st.repl_id, store_error(node.store) != 0 ? "failed" :
	    node.disk_full ? "full" : "ok");
	if (node.recovery[0] != '\0') {
		o += fmt_str(b + o, ",\"recovery\":");
		o += json_string(b + o, node.recovery, strlen(node.recovery));
	}
	if (node.recovery_warning[0] != '\0') {
		o += fmt_str(b + o, ",\"warning\":");
		o += json_string(b + o, node.recovery_warning,
		    strlen(node.recovery_warning));
	}
	o += ready_repl(b + o, &st);
	o += fmt_str(b + o, "}\n");
	http_reply(r->id, why != NULL ? 503 : 200, "application/json", "", b,
	    o);
	free(b);
}


/* ---- Metrics ---- */

static size_t
label_value(char *out, const char *s)
{
	size_t o = 0;

	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"' || *s == '\n')
			out[o++] = '\\';
		out[o++] = *s == '\n' ? 'n' : *s;
	}
	out[o] = '\0';
	return o;
}

/* The primary's families per replica, in replica_value's order. */
static const struct {
	const char	*name, *type, *help;
	int		 ms;	/* a value in ms, shown in seconds */
} replica_families[] = {
	{ "kvstore_replica_up", "gauge", "1 while the replica streams.", 0 },
	{ "kvstore_replica_acked_seq", "gauge",
	    "Newest write the replica acknowledged.", 0 },
	{ "kvstore_replica_lag_writes", "gauge",
	    "Writes not yet acknowledged.", 0 },
	{ "kvstore_replica_lag_seconds", "gauge",
	    "Age of the oldest unacknowledged write.", 1 },
	{ "kvstore_replica_full_syncs_total", "counter", "Full resyncs.", 0 },
	{ "kvstore_replica_partial_syncs_total", "counter",
	    "Partial resyncs.", 0 }
};

/* Every state of repl.h's struct repl_peer. */
static const char *const link_states[] = {
	"connecting", "syncing", "streaming", "down"
};

/* Family f (replica_families) of p as text in out[32]. */
static const char *
replica_value(const struct repl_peer *p, size_t f, char *out)
{
	uint64_t v[] = { strcmp(p->state, "streaming") == 0, p->acked_seq,
	    p->lag_writes, p->lag_ms, p->full_syncs, p->partial_syncs };

	if (replica_families[f].ms)
		fmt_buf(out, 32, "%llu.%03llu", (unsigned long long)v[f] /
		    1000, (unsigned long long)v[f] % 1000);
	else
		fmt_buf(out, 32, "%llu", (unsigned long long)v[f]);
	return out;
}

static void
emit(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = fmt_vbuf(t->b + t->o, t->o < t->cap ? t->cap - t->o : 0, fmt, ap);
	va_end(ap);
	t->o += n > 0 ? (size_t)n : 0;
}

static void
family(struct text *t, const char *name, const char *type, const char *help,
    uint64_t value)
{
	emit(t, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name,
	    type, name, (unsigned long long)value);
}

static void
metrics_store(struct text *t, const struct store_stats *st)
{
	emit(t, "# HELP kvstore_info The node's role and version.\n"
	    "# TYPE kvstore_info gauge\n"
	    "kvstore_info{role=\"%s\",version=\"%s\",repl_id=\"%s\"} 1\n",
	    node_role_name(), KVSTORE_VERSION, st->repl_id);
	family(t, "kvstore_ready", "gauge", "1 while /ready answers 200.",
	    not_ready(st) == NULL);
	family(t, "kvstore_disk_full", "gauge", "1 while writes find the "
	    "disk full.", node.disk_full);
	family(t, "kvstore_disk_failed", "gauge", "1 after a failed flush: "
	    "no writes until a restart.", store_error(node.store) != 0);
	family(t, "kvstore_keys", "gauge", "Keys in the store.", st->keys);
	family(t, "kvstore_data_bytes", "gauge", "Key and value bytes of "
	    "live records.", st->live_bytes);
	family(t, "kvstore_file_bytes", "gauge", "Size of the store file(s) "
	    "on disk.", st->file_bytes);
	family(t, "kvstore_seq", "gauge", "Sequence number of the newest "
	    "write.", st->last_seq);
	family(t, "kvstore_durable_seq", "gauge", "Newest write known to be "
	    "on disk.", st->durable_seq);
	family(t, "kvstore_fsyncs_total", "counter", "fdatasync calls on the "
	    "store.", st->fsyncs);
	family(t, "kvstore_compactions_total", "counter", "Compactions of the "
	    "store file.", st->compactions);
	family(t, "kvstore_index_growths_total", "counter", "Doublings of the "
	    "buckets without a compaction.", st->index_growths);
}

/* A replica's view of its primary. */
static void
metrics_primary(struct text *t)
{
	uint64_t now = mono_ms();

	family(t, "kvstore_primary_up", "gauge", "1 if the primary was heard "
	    "in the last 3 s.", node.primary_heard_ms != 0 &&
	    now - node.primary_heard_ms < PRIMARY_UP_MS);
	family(t, "kvstore_primary_seq", "gauge", "The primary's sequence as "
	    "last told.", node.primary_seq);
	emit(t, "# HELP kvstore_primary_last_heard_seconds Since the primary "
	    "was last heard (-1: never).\n# TYPE "
	    "kvstore_primary_last_heard_seconds gauge\n"
	    "kvstore_primary_last_heard_seconds %.3f\n",
	    node.primary_heard_ms == 0 ? -1.0 :
	    (double)(now - node.primary_heard_ms) / 1000);
}

/* The primary's view of its replicas: each family in one group. */
static void
metrics_replicas(struct text *t)
{
	struct repl_peer peers[NODE_MAX_PEERS];
	char url[2 * sizeof(peers[0].url) + 1], val[32];
	size_t n, i, f;

	n = repl_peers(peers, NODE_MAX_PEERS);
	if (n > NODE_MAX_PEERS)
		n = NODE_MAX_PEERS;
	if (n == 0)
		return;
	for (f = 0; f < sizeof(replica_families) /
	    sizeof(replica_families[0]); f++) {
		emit(t, "# HELP %s %s\n# TYPE %s %s\n",
		    replica_families[f].name, replica_families[f].help,
		    replica_families[f].name, replica_families[f].type);
		for (i = 0; i < n; i++) {
			label_value(url, peers[i].url);
			emit(t, "%s{replica=\"%s\"} %s\n",
			    replica_families[f].name, url,
			    replica_value(&peers[i], f, val));
		}
	}
	emit(t, "# HELP kvstore_replica_state The replica's link: 1 for the "
	    "state it is in.\n# TYPE kvstore_replica_state gauge\n");
	for (i = 0; i < n; i++) {
		label_value(url, peers[i].url);
		for (f = 0; f < sizeof(link_states) / sizeof(link_states[0]);
		    f++)
			emit(t, "kvstore_replica_state{replica=\"%s\","
			    "state=\"%s\"} %d\n", url, link_states[f],
			    strcmp(peers[i].state, link_states[f]) == 0);
	}
}

void
status_metrics(struct http_request *r)
{
	struct store_stats st;
	struct text t;
	uint64_t open, lagged;

	t.cap = METRICS_BYTES;
	if ((t.b = malloc(t.cap)) == NULL) {
		reply_text(r->id, 503, "", "out of memory");
		return;
	}
	t.o = http_metrics(t.b, t.cap);
	store_stats(node.store, &st);
	metrics_store(&t, &st);
	events_stats(&open, &lagged);
	family(&t, "kvstore_event_streams", "gauge", "Open event streams.",
	    open);
	family(&t, "kvstore_event_streams_lagged_total", "counter", "Event "
	    "streams cut: the reader fell behind.", lagged);
	if (node.role == ROLE_REPLICA)
		metrics_primary(&t);
	else
		metrics_replicas(&t);
	if (t.o >= t.cap)
		t.o = t.cap;	/* cut at a line end below */
	while (t.o > 0 && t.b[t.o - 1] != '\n')
		t.o--;
	http_reply(r->id, 200, "text/plain; version=0.0.4; charset=utf-8", "",
	    t.b, t.o);
	free(t.b);
}
