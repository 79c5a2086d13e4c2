/*
 * recover.h: a primary's recovery (recover.c), which refills a fresh
 * primary from its most advanced replica, or takes back the writes a
 * primary lost in a crash. It runs on replication's threads: repl_init
 * (repl.h) sets it up from repl_config (recover, recover_wait_ms, store,
 * peers_dns, peers_port) and repl_shutdown stops it. Include after repl.h.
 *
 * Thread rules: main thread only.
 */

/* What a primary's recovery looks for (repl_config.recover). */
enum repl_recover_mode {
	REPL_RECOVER_NONE,
	REPL_RECOVER_EMPTY,	/* a new store: any replica's data set */
	REPL_RECOVER_TAIL	/* after a crash: writes past its last seq */
};

/* What recovery decided, for the main thread (repl_recover_result). */
struct repl_recovery {
	struct store	*fresh;		/* the copy to adopt, or NULL */
	char		*tail;		/* TAIL: records to apply, or NULL; */
	size_t		 tail_len;	/* malloc'd, the caller's to free */
	char		 source[REPL_URL_MAX];	/* where it came from */
	char		 repl_id[33];
	uint64_t	 seq;
	uint64_t	 keys;
	int		 answered;	/* peers that answered (not this node) */
	char		 silent[512];	/* peers that never answered, or "" */
};

/*
 * Fresh primary, or one back from a crash (cfg.recover set at repl_init,
 * which makes repl_recovering 1 at once, so that no pusher syncs from a
 * store that may lack writes its replicas hold): start the
 * recovery thread, after the REPLICA_URLS peers are added. It asks every
 * candidate for its state: REPLICA_URLS, registered peers that passed the
 * address check (asked as soon as they pass), and every address of
 * PEERS_DNS except this node's own. It decides the moment all have
 * answered if one of them is configured (REPLICA_URLS, PEERS_DNS), else
 * at recover_wait_ms (replicas announce themselves meanwhile). EMPTY
 * copies the most advanced one's snapshot into a fresh store beside
 * cfg.store, off the loop. TAIL takes from the most advanced replica of
 * this node's repl id the records past this node's seq (GET /repl/tail),
 * or, when that replica no longer holds them all, its snapshot. The main
 * thread then takes the result (repl_recover_result), adopts the store or
 * applies the tail, and calls repl_recover_done.
 */
int	repl_recover(void);

/* 1 until repl_recover_done(1). Main thread. */
int	repl_recovering(void);

/*
 * Main thread: 0 while recovery runs; 1 once it decided, with *out filled
 * (out->fresh, if not NULL, is the caller's now, to store_adopt).
 */
int	repl_recover_result(struct repl_recovery *out);

/*
 * Main thread, after repl_recover_result gave 1: ok (adopted, and
 * repl_reset called; or nothing to adopt) ends recovery and lets the
 * pushers go; !ok has the copy made again after a pause.
 */
void	repl_recover_done(int ok);
