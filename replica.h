/*
 * replica.h: the /repl/ endpoints: the answering side of the replication
 * protocol (repl.c pushes; the wire format is described there). Main
 * thread only; each answers its request.
 */

void	replica_state(struct http_request *r);		/* GET /repl/state */
void	replica_snapshot(struct http_request *r);	/* GET /repl/snapshot */
void	replica_tail(struct http_request *r);		/* GET /repl/tail */
void	replica_session(struct http_request *r);	/* POST /repl/session */
void	replica_apply(struct http_request *r);		/* POST /repl/apply */
void	replica_sync_begin(struct http_request *r);	/* POST /repl/sync/begin */
void	replica_sync_data(struct http_request *r);	/* POST /repl/sync/data */
void	replica_sync_end(struct http_request *r);	/* POST /repl/sync/end */
void	replica_register(struct http_request *r);	/* POST /repl/register */

/*
 * Go on with what a full sync left for later turns (a data batch, the end):
 * call it from the loop's tick. It wakes the loop while work is left.
 */
void	replica_step(void);

/* Discard a full sync in progress: the process is stopping. */
void	replica_close(void);
