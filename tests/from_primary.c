/*
 * from_primary.c: for the programs that hand replica.c requests with no
 * connection behind them (tests/replica_test, tests/fuzz/fuzz_api). Linked
 * with -Wl,--wrap=http_peer,--wrap=repl_from_primary, it stands in for the
 * primary's address check: every request came from the primary, or no
 * session or full sync would begin (replica.c's refuse_stranger).
 */

#include <sys/socket.h>

#include <stdint.h>
#include <string.h>

int	__wrap_http_peer(uint64_t, struct sockaddr_storage *,
	    struct sockaddr_storage *);
int	__wrap_repl_from_primary(const struct sockaddr_storage *,
	    const struct sockaddr_storage *);

int
__wrap_http_peer(uint64_t id, struct sockaddr_storage *peer,
    struct sockaddr_storage *local)
{
	(void)id;
	memset(peer, 0, sizeof(*peer));
	if (local != NULL)
		memset(local, 0, sizeof(*local));
	return 0;
}

int
__wrap_repl_from_primary(const struct sockaddr_storage *peer,
    const struct sockaddr_storage *local)
{
	(void)peer;
	(void)local;
	return 1;
}
