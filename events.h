/*
 * events.h: event streams, GET /kv/?prefix=P&watch=events[&since=N]:
 * every write under P, in order, from the replication backlog. Main
 * thread only.
 */

/* At most max streams open at once (MAX_EVENT_STREAMS). */
void	events_init(int max);

/*
 * If r asks for watch= or since=, answer it (400, 410, 503, or the
 * stream) and return 1; else 0 and the caller goes on (a listing).
 */
int	events_follow(struct http_request *r, const char *prefix,
	    size_t plen);

/* Streams open now, and those cut off because their reader lagged. */
void	events_stats(uint64_t *open, uint64_t *lagged);
