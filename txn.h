/*
 * txn.h: POST /txn, atomic multi-key transactions (format: top of txn.c).
 * Main thread only.
 */

/*
 * Run the transaction in r's body on the primary's store and answer it
 * (at once, or once durable and acknowledged as a PUT is). The caller
 * has checked who may write and that this node is a primary able to.
 */
void	txn_request(struct http_request *r);
