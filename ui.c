/*
 * ui.c: the web console's files. ui/embed.sh shrinks each file in ui/ and
 * ui/pack packs it (cm.c's coder) into ui/assets.h at build time; ui_init
 * unpacks them once into static memory, where api.c serves them from, and
 * checks each against its ETag, a checksum of the file as built. Packing
 * takes the ~22 KiB the console would add to a binary that must stay
 * under 200 KiB down to 7. Unpacking costs some 25 ms of CPU, so a thread
 * of its own does it while the node opens its store and starts serving:
 * probes are answered at once, and only a console request in those first
 * milliseconds waits for the rest (ui_ready).
 */

#include <sys/types.h>

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cm.h"
#include "ui.h"
#include "util.h"
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

/* FNV-1a, as ui/pack computes the ETag from the file. */
static unsigned long
checksum(const char *s, size_t n)
{
	uint32_t h = 2166136261u;

	while (n-- > 0)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}

static pthread_t unpacker;
static int started;		/* ui_init started it */
static int unpacked;		/* 1 once joined, and the files are good;
				   -1 if one was bad (or never unpacked) */

/* The unpacker thread: every file, checked. Returns NULL or (void *)1. */
static void *
unpack_all(void *arg)
{
	size_t i;

	(void)arg;
	for (i = 0; i < NFILES; i++) {
		if (cm_unpack(packed[i].in, packed[i].inlen, packed[i].out,
		    packed[i].len) == -1 ||
		    checksum(packed[i].out, packed[i].len) != packed[i].etag)
			return (void *)1;
		files[i].type = packed[i].type;
		files[i].data = packed[i].out;
		files[i].len = packed[i].len;
		files[i].etag = packed[i].etag;
	}
	return NULL;
}

int
ui_init(void)
{
	int e;

	if ((e = start_thread(&unpacker, unpack_all, NULL)) != 0) {
		errno = e;
		return -1;
	}
	started = 1;
	return 0;
}

int
ui_ready(void)
{
	void *bad;

	if (unpacked == 0)
		unpacked = started && pthread_join(unpacker, &bad) == 0 &&
		    bad == NULL ? 1 : -1;
	return unpacked == 1 ? 0 : -1;
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
