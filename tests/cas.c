/*
 * cas: increment one counter by compare-and-swap from many clients at once.
 * Each thread keeps one connection and loops: GET /kv/KEY (value and ETag),
 * PUT value + 1 with If-Match: ETag, start again on 412. test.sh checks that
 * no increment is lost.
 * Usage: cas PORT KEY CLIENTS INCREMENTS
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int		 port;
static const char	*key;
static long		 increments;

/* Read one response: status, ETag and body (values here are short). */
static int
response(int fd, char *etag, size_t etagcap, long *value)
{
	char buf[4096], *eoh, *h, *cl;
	size_t len = 0, need;
	ssize_t n;
	int status;

	for (;;) {
		if ((n = read(fd, buf + len, sizeof(buf) - 1 - len)) <= 0)
			return -1;
		len += (size_t)n;
		buf[len] = '\0';
		if ((eoh = strstr(buf, "\r\n\r\n")) == NULL)
			continue;
		cl = strstr(buf, "\r\nContent-Length: ");
		need = (size_t)(eoh + 4 - buf) +
		    (cl != NULL && cl < eoh ? strtoul(cl + 18, NULL, 10) : 0);
		if (len >= need)
			break;
	}
	status = atoi(buf + 9);
	if ((h = strstr(buf, "\r\nETag: ")) != NULL && h < eoh)
		snprintf(etag, etagcap, "%.*s", (int)strcspn(h + 8, "\r"),
		    h + 8);
	*value = strtol(eoh + 4, NULL, 10);
	return status;
}

static void *
client(void *arg)
{
	struct sockaddr_in sa;
	char req[512], etag[64] = "";
	long done = 0, value, dummy;
	int fd, n;

	(void)arg;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		perror("cas: connect");
		exit(1);
	}
	while (done < increments) {
		n = snprintf(req, sizeof(req), "GET /kv/%s HTTP/1.1\r\n"
		    "Host: x\r\n\r\n", key);
		if (write(fd, req, n) != n || response(fd, etag, sizeof(etag),
		    &value) != 200) {
			fprintf(stderr, "cas: GET failed\n");
			exit(1);
		}
		n = snprintf(req, sizeof(req), "PUT /kv/%s HTTP/1.1\r\nHost: x"
		    "\r\nIf-Match: %s\r\nContent-Length: %d\r\n\r\n%ld", key,
		    etag, snprintf(NULL, 0, "%ld", value + 1), value + 1);
		if (write(fd, req, n) != n)
			exit(1);
		switch (response(fd, etag, sizeof(etag), &dummy)) {
		case 200:
			done++;
			break;
		case 412:
			break;
		default:
			fprintf(stderr, "cas: unexpected answer to PUT\n");
			exit(1);
		}
	}
	close(fd);
	return NULL;
}

int
main(int argc, char **argv)
{
	pthread_t t[64];
	int i, clients;

	if (argc != 5 || (clients = atoi(argv[3])) < 1 || clients > 64) {
		fprintf(stderr, "usage: cas PORT KEY CLIENTS INCREMENTS\n");
		return 2;
	}
	port = atoi(argv[1]);
	key = argv[2];
	increments = atol(argv[4]);
	for (i = 0; i < clients; i++)
		if (pthread_create(&t[i], NULL, client, NULL) != 0)
			return 1;
	for (i = 0; i < clients; i++)
		pthread_join(t[i], NULL);
	return 0;
}
