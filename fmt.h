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

/* To a stdio stream, buffered as the stream is; returns the length. */
int	fmt_file(FILE *file, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
