/*
 * ui.h: the web console's files (ui/: the page, its script, style and
 * icon), compiled into the binary packed and unpacked once, by a thread
 * started as the node begins to serve. Main thread only.
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

/* Start unpacking the files in a thread; -1 with errno if it cannot start. */
int	ui_init(void);

/*
 * Wait for the unpacking (blocks only in the first ~25 ms after ui_init):
 * 0 once the files are there, -1 if one did not match its checksum (the
 * build packed it wrong), then and every time after. Called at shutdown
 * too, so the thread is always joined.
 */
int	ui_ready(void);

/*
 * The page (index.html) when name is NULL; otherwise the part named
 * name[0..len) ("app.js", "app.css", "icon.svg"), or NULL if there is
 * none. Only after ui_ready succeeded.
 */
const struct ui_file *ui_file(const char *name, size_t len);
