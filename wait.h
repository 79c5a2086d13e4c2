/*
 * wait.h: requests that wait on the loop without a thread: reads for a
 * sequence not yet applied (X-Kv-Min-Seq), watches (?index=&wait=), writes
 * waiting for replicas (X-Kv-Replicas) or, under FSYNC=always, for the
 * disk. Main thread only. A function that returns 1 has parked or answered
 * the request; 0 means the caller goes on.
 */

/* rerun answers a parked request again, once its condition holds. */
void	wait_init(void (*rerun)(struct http_request *r));

/* X-Kv-Min-Seq on a read: park r until this node applied that seq. */
int	wait_min_seq(struct http_request *r);

/*
 * A read or write of keys on a primary that is still recovering its data
 * from its replicas: park it, body and all, and run it once recovery
 * decided (on the recovered data or a new empty one), so that no client
 * reads a value older than one it was told was written; 503 with
 * Retry-After if that takes longer than RECOVER_WAIT_MS plus a copy's
 * bound.
 */
int	wait_recovery(struct http_request *r);

/* Under ?index=: park a read of key (v, or NULL if missing) or a listing
 * of prefix until it changes past the index. */
int	wait_watch_key(struct http_request *r, const char *key, size_t klen,
	    const struct store_value *v);
int	wait_watch_list(struct http_request *r, const char *prefix,
	    size_t plen);

/* A write of key was applied here: wakes the watches of its prefixes. */
void	wait_note_write(const char *key, size_t klen);

/*
 * May one more request park? Parked requests hold connections, so at most
 * node.max_parked wait at once, and probes always find a connection. If
 * not, answers 503 with Retry-After and returns 0.
 */
int	wait_has_room(struct http_request *r);

/* MIN_REPLICAS_TO_WRITE holds? If not, answers 503 and returns 0. */
int	wait_enough_replicas(struct http_request *r);

/*
 * Answer a write made at seq ("created", "replaced", "deleted" with its
 * status): now, or once X-Kv-Replicas replicas have it and, under
 * FSYNC=always, once it is on disk.
 */
void	wait_ack_write(struct http_request *r, int status, const char *msg,
	    uint64_t seq);

/*
 * As wait_ack_write, for a write whose answer is a JSON body of its own
 * (a transaction's, malloc'd): wait owns body from the call on and frees
 * it once sent, or when the answer is an error instead.
 */
void	wait_ack_body(struct http_request *r, int status, const char *msg,
	    char *body, size_t blen, uint64_t seq);

/* The loop's tick: answer what is due. Every 10 ms and on each wake. */
void	wait_run(void);

/* The store's notify fd is readable: answer the writes now on disk. */
void	wait_on_durable(void *arg);
