/*
 * ui.h: the web console's files (ui/: the page, its script, style and
 * icon), compiled into the binary packed and unpacked once at start. Main
 * thread only.
 */

/*
 * What the page may load: its own files and this node's API, nothing else,
 * no inline script or style. api.c sends it with every console file.
 */
#define UI_CSP	"default-src 'none'; script-src 'self'; style-src 'self'; " \
	"img-src 'self'; connect-src 'self'; base-uri 'none'; " \
	"form-action 'none'; frame-ancestors 'none'"

struct ui_file {
	const char	*type;		/* its Content-Type */
	const char	*data;
	size_t		 len;
	unsigned long	 etag;		/* a checksum of data from the build */
};

/*
 * Unpack in[0..n), packed by ui/pack (LZ4's block format), into exactly
 * out[0..cap). Returns 0, or -1 if it is malformed or not cap bytes long.
 * Pure: any thread may call it.
 */
int	ui_unpack(const unsigned char *in, size_t n, char *out, size_t cap);

/* Unpack the files; -1 with errno EINVAL if the build packed them wrong. */
int	ui_init(void);

/*
 * The page (index.html) when name is NULL; otherwise the part named
 * name[0..len) ("app.js", "app.css", "icon.svg"), or NULL if there is
 * none. Only after ui_init succeeded.
 */
const struct ui_file *ui_file(const char *name, size_t len);
