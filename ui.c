/*
 * ui.c: the web console's files. ui/embed.sh shrinks each file in ui/ and
 * ui/pack packs it (LZ4's block format, described in ui/pack.c) into
 * ui/assets.h at build time; ui_init unpacks them once into static memory,
 * where api.c serves them from. Packing halves the ~22 KiB the console
 * would add to a binary that must stay under 200 KiB.
 */

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "ui.h"
#include "ui/assets.h"

struct packed {
	const char		*name;
	const char		*type;
	const unsigned char	*in;
	size_t			 inlen;
	char			*out;
	size_t			 len;
	unsigned long		 etag;
};

static char index_html[UI_INDEX_HTML_LEN];
static char app_js[UI_APP_JS_LEN];
static char app_css[UI_APP_CSS_LEN];
static char icon_svg[UI_ICON_SVG_LEN];

#define PACKED(name, type, id, ID) { name, type, ui_##id, sizeof(ui_##id), \
	id, UI_##ID##_LEN, UI_##ID##_ETAG }

static const struct packed packed[] = {	/* the page first */
	PACKED("index.html", "text/html; charset=utf-8", index_html, INDEX_HTML),
	PACKED("app.js", "text/javascript; charset=utf-8", app_js, APP_JS),
	PACKED("app.css", "text/css; charset=utf-8", app_css, APP_CSS),
	PACKED("icon.svg", "image/svg+xml", icon_svg, ICON_SVG),
};

#define NFILES	(sizeof(packed) / sizeof(packed[0]))

static struct ui_file files[NFILES];

/* A length nibble of 15 continues in bytes, each added, until one < 255. */
static int
more(const unsigned char *in, size_t n, size_t *i, size_t *len)
{
	do {
		if (*i >= n)
			return -1;
		*len += in[*i];
	} while (in[(*i)++] == 255);
	return 0;
}

int
ui_unpack(const unsigned char *in, size_t n, char *out, size_t cap)
{
	size_t i = 0, o = 0, len, off;
	unsigned tok;

	while (i < n) {
		tok = in[i++];
		len = tok >> 4;
		if (len == 15 && more(in, n, &i, &len) == -1)
			return -1;
		if (len > n - i || len > cap - o)
			return -1;
		memcpy(out + o, in + i, len);
		i += len;
		o += len;
		if (i == n)
			break;		/* the last sequence: literals only */
		if (n - i < 2)
			return -1;
		off = in[i] | (size_t)in[i + 1] << 8;
		i += 2;
		len = (tok & 15) + 4;
		if ((tok & 15) == 15 && more(in, n, &i, &len) == -1)
			return -1;
		if (off == 0 || off > o || len > cap - o)
			return -1;
		for (; len > 0; len--, o++)	/* byte by byte: may overlap */
			out[o] = out[o - off];
	}
	return o == cap ? 0 : -1;
}

int
ui_init(void)
{
	size_t i;

	for (i = 0; i < NFILES; i++) {
		if (ui_unpack(packed[i].in, packed[i].inlen, packed[i].out,
		    packed[i].len) == -1) {
			errno = EINVAL;
			return -1;
		}
		files[i].type = packed[i].type;
		files[i].data = packed[i].out;
		files[i].len = packed[i].len;
		files[i].etag = packed[i].etag;
	}
	return 0;
}

const struct ui_file *
ui_file(const char *name, size_t len)
{
	size_t i;

	if (name == NULL)
		return &files[0];
	for (i = 1; i < NFILES; i++)
		if (strlen(packed[i].name) == len &&
		    memcmp(packed[i].name, name, len) == 0)
			return &files[i];
	return NULL;
}
