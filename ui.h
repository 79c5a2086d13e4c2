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
 * Unpack the files; -1 with errno ENOMEM, or EINVAL if one does not match
 * its checksum (the build packed it wrong).
 */
int	ui_init(void);

/*
 * The page (index.html) when name is NULL; otherwise the part named
 * name[0..len) ("app.js", "app.css", "icon.svg"), or NULL if there is
 * none. Only after ui_init succeeded.
 */
const struct ui_file *ui_file(const char *name, size_t len);
