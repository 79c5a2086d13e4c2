/*
 * fmt.h: printf-style formatting of the subset kvstore uses (fmt.c says
 * which), in place of libc's printf family. fmt_buf and fmt_vbuf behave
 * as snprintf and vsnprintf: they write at most size bytes, the NUL
 * included, and return the length the whole output has.
 */

int	fmt_buf(char *buf, size_t size, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
int	fmt_vbuf(char *buf, size_t size, const char *fmt, va_list ap)
	    __attribute__((format(printf, 3, 0)));

/* As sprintf: for a buf sized beforehand for the whole output. */
int	fmt_str(char *buf, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

/*
 * An output stream on a descriptor, in place of libc's stdio (which costs
 * some 4 KB of binary), buffered as musl's stdio buffers: OUT_FULL writes
 * only a full o_buf, OUT_LINES also a call's output that holds a newline,
 * OUT_UNBUFFERED (stderr) each call's output, and OUT_STDOUT is OUT_LINES
 * until the first write, then OUT_FULL unless o_fd is a terminal. A write
 * that fails sets o_err, and its bytes are dropped, as stdio drops them.
 * One thread at a time per stream.
 */
enum { OUT_FULL, OUT_LINES, OUT_UNBUFFERED, OUT_STDOUT };

#define OUT_BUF_BYTES	1024		/* musl's BUFSIZ */

struct out {
	int		 o_fd;
	int		 o_mode;	/* OUT_FULL ... OUT_STDOUT */
	int		 o_err;		/* a write failed */
	size_t		 o_len;		/* bytes held in o_buf */
	char		 o_buf[OUT_BUF_BYTES];
};

/* Formatted into o; returns the length of the output. */
int	fmt_out(struct out *o, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

/* s[0..n) into o. */
void	out_put(struct out *o, const char *s, size_t n);

/*
 * Whether fd is a terminal, as musl's isatty and stdio tell it (the
 * terminal's size can be read): the resolver links ioctl already, and
 * isatty would be 100 bytes more.
 */
int	out_tty(int fd);

/* Write what o holds: 0, or -1 with errno set (and o_err). */
int	out_flush(struct out *o);
