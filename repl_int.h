/*
 * repl_int.h: what repl.c shares with recover.c, the primary's recovery,
 * whose thread is one of replication's: it shares the one mutex and
 * condition variable of repl.c's THREAD MODEL, and speaks through the same
 * blocking client. No other module includes it: theirs are repl.h and
 * recover.h. Include it after <pthread.h>, <stdint.h>, client.h and repl.h.
 */

#define ID_MAX		65		/* ids are 32 hex digits; room for 64 */
#define ERR_MAX		256
#define MAX_ADDRS	8		/* of one name, compared or asked */
#define MAX_RESP_BODY	65536		/* non-snapshot answers are one line */

/* What a full sync moved, for the logs and the caller. */
struct sync_result {
	char		 id[ID_MAX];
	uint64_t	 seq;
	uint64_t	 keys;
	uint64_t	 bytes;
};

/* ---- repl.c, for recover.c ---- */

/* The mutex every replication thread shares. */
void	repl_lock(void);
void	repl_unlock(void);
/*
 * With it held: is repl_shutdown stopping the threads? Wait for the next
 * broadcast (or until deadline, monotonic ms, if not 0); broadcast one;
 * peers_gen, bumped when a registered peer can be asked; call fn for
 * every peer whose address checked (static ones included; fn may be NULL),
 * returning how many peers there are, checked or not; the backlog's repl
 * id (ID_MAX bytes) and newest seq.
 */
int	repl_stopping(void);
void	repl_wait(uint64_t deadline);
void	repl_broadcast(void);
uint64_t repl_peers_gen(void);
size_t	repl_each_peer(void (*fn)(void *arg, const char *url, int is_static),
	    void *arg);
void	repl_history(char *id, uint64_t *seq);

/* Any thread; each described where it is defined. */
int	publish(void *arg, int fd);
struct client *new_client(const char *url, int *slot, char *err);
int	req_send(struct client *c, const char *method, const char *target,
	    int http10, const char *body, size_t blen);
int	get_state(struct client *c, char *id, uint64_t *seq, char *node,
	    char *err);
void	reason(char *dst, size_t cap, const char *body, size_t len);
int	url_addrs(const char *url, unsigned char (*a)[16], int max, char *err);
void	addr_text(const unsigned char *a, char *buf, size_t cap,
	    int v6brackets);
int	pull_snapshot(struct client *src, const char *src_url,
	    struct store **out, struct sync_result *res, char *err);
void	unblock(int fd);

/* ---- recover.c, for repl.c ---- */

/*
 * repl_init: recovery follows cfg (kept, with its strings, until
 * recover_end); with cfg->recover set, recover_pending is 1 at once.
 */
void	recover_init(const struct repl_config *cfg);
/* With the lock held: pushers wait while it is 1 (never sync from empty). */
int	recover_pending(void);
/* repl_shutdown, with the lock held and stopping set: unblock its sockets. */
void	recover_unblock(void);
/* repl_shutdown, after: join its thread, discard a copy never adopted. */
void	recover_end(void);
