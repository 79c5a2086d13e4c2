/*
 * api.h: the HTTP API's entry points, for http.c's loop (struct
 * http_config) and wait.c's reruns. Main thread only.
 */

/* Route r by the table in api.c and answer it (now, or parked). */
void	api_handle(struct http_request *r);

/*
 * Before a body is read (or 100 Continue sent): answer now, and return 1,
 * a request that would be refused anyway: no such route, no token, a
 * method the route does not take, a write to a replica. 0: go on.
 */
int	api_admit(struct http_request *r);

/*
 * The primary's expiry, a slice per loop turn: up to EXPIRE_PER_TICK keys
 * past their expiry are deleted as a DELETE would (a tombstone with its
 * own seq, replicated; watches fire). Does nothing on a replica.
 */
void	api_expire(void);

/* The largest body r may send: MAX_VALUE_BYTES, or a replication batch. */
size_t	api_body_limit(const struct http_request *r);
