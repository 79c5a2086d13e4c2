/*
 * cm.c: a small context-mixing compressor, for the web console's files.
 * ui/pack (a build-time tool) packs each file with cm_pack; the server
 * unpacks them once at start with cm_unpack, and cm_pack is dropped from
 * its binary at link time. It packs the console's text into 33% of its
 * size, where LZ4's block format took 51% and gzip -9 takes 37%: 3 KB
 * less of a binary that must stay under 200 KiB, for some 30 ms of CPU
 * at start.
 *
 * The method is lpaq1's, cut down (Matt Mahoney, 2007): each byte is coded
 * as 8 bits, most significant first, by a binary arithmetic coder. Each bit
 * is predicted by CM_INPUTS models, each a table of adaptive probabilities
 * indexed by a hash of a context (the last 1, 2, 3 and 4 bytes, the
 * current word, and none) and the bits of this byte so far; a mixer, a
 * neuron trained online, combines their predictions in the logistic
 * domain. Encoder and decoder run the same model on the same bits, so
 * they agree; integer arithmetic only, so the build machine and the
 * server agree whatever their compilers.
 *
 * The packed form: the arithmetic coder's bytes, nothing else: the length
 * is the caller's (UI_*_LEN), and so is any check of what comes out (the
 * ETag, a checksum of the file). The decoder reads zeros past the end.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "cm.h"

#define CM_INPUTS	6		/* the contexts' predictions */
#define TABLE_BITS	18	/* 1 MB of probabilities; 4 MB packs 3%
				   smaller but takes 3 times the time */
#define COUNT_LIMIT	60	/* a probability keeps adapting by 1/61 */

struct cm {
	uint32_t	*t;		/* (22-bit probability, 10-bit count) */
	uint32_t	 idx[CM_INPUTS];
	uint32_t	 h[CM_INPUTS];	/* each context's hash for this byte */
	int		 st[CM_INPUTS];	/* stretch(probability) of each */
	int		 w[CM_INPUTS];	/* the mixer's weights, 16.16 */
	int		 pr;		/* P(1) of the next bit, 12 bits */
	uint32_t	 c0;		/* the byte so far, after a leading 1 */
	uint32_t	 c4;		/* the last four bytes */
	uint32_t	 word;		/* a hash of the letters since a non-letter */
	uint32_t	 x1, x2;	/* the coder's range */
};

static short	stretch_tab[4096];
static int	dt[1024];		/* 2^16 / (count + 1.5) */

/* 4096 / (1 + e^-d/256), by interpolation in a table of 33. */
static int
squash(int d)
{
	static const short t[33] = { 1, 2, 3, 6, 10, 16, 27, 45, 73, 120,
	    194, 310, 488, 747, 1101, 1546, 2047, 2549, 2994, 3348, 3607,
	    3785, 3901, 3975, 4022, 4050, 4068, 4079, 4085, 4089, 4092, 4093,
	    4094 };
	int w;

	if (d > 2047)
		return 4095;
	if (d < -2047)
		return 1;
	w = d & 127;
	d = (d >> 7) + 16;
	return (t[d] * (128 - w) + t[d + 1] * w + 64) >> 7;
}

static int
init(struct cm *m)
{
	int x, j, v, pi = 0;

	for (x = -2047; x <= 2047; x++) {	/* stretch: squash inverted */
		v = squash(x);
		for (j = pi; j <= v; j++)
			stretch_tab[j] = (short)x;
		pi = v + 1;
	}
	for (j = pi; j < 4096; j++)
		stretch_tab[j] = 2047;
	for (j = 0; j < 1024; j++)
		dt[j] = 16384 / (j + j + 3);
	for (j = 0; j < CM_INPUTS; j++) {
		m->w[j] = 1 << 14;
		m->h[j] = 0;
	}
	m->c0 = 1;
	m->c4 = m->word = 0;
	m->x1 = 0;
	m->x2 = 0xffffffff;
	if ((m->t = calloc((size_t)1 << TABLE_BITS, sizeof(*m->t))) == NULL)
		return -1;
	return 0;
}

/* Predict the next bit into m->pr. */
static void
predict(struct cm *m)
{
	int i, dot = 0;

	for (i = 0; i < CM_INPUTS; i++) {
		m->idx[i] = ((m->h[i] + m->c0 * 0x2f0b4ec3u) * 0x9e3779b1u) >>
		    (32 - TABLE_BITS);
		if (m->t[m->idx[i]] == 0)
			m->t[m->idx[i]] = 1u << 31;
		m->st[i] = stretch_tab[m->t[m->idx[i]] >> 20];
		dot += m->st[i] * m->w[i] >> 16;
	}
	m->pr = squash(dot);
}

/* Learn bit y: the tables, the mixer, and at a byte's end the contexts. */
static void
update(struct cm *m, int y)
{
	int i, err = ((y << 12) - m->pr) * 7;
	uint32_t *e, n, c;

	for (i = 0; i < CM_INPUTS; i++) {
		m->w[i] += (m->st[i] * err + 0x8000) >> 16;
		e = &m->t[m->idx[i]];
		n = *e & 1023;
		if (n < COUNT_LIMIT)
			(*e)++;
		*e += (uint32_t)(((int)(((uint32_t)y << 22) - (*e >> 10)) >> 3) *
		    dt[n]) & 0xfffffc00u;
	}
	m->c0 = m->c0 << 1 | (uint32_t)y;
	if (m->c0 < 256)
		return;
	c = m->c0 & 255;
	m->c4 = m->c4 << 8 | c;
	m->c0 = 1;
	m->word = (c | 32) - 'a' < 26 ? (m->word + (c | 32)) * 0x3b9aca07u : 0;
	m->h[0] = 0;
	m->h[1] = (m->c4 & 0xff) | 1 << 24;
	m->h[2] = (m->c4 & 0xffff) | 2 << 24;
	m->h[3] = (m->c4 & 0xffffff) * 0x01000193u + 3;
	m->h[4] = m->c4 * 0x2545f491u + 4;
	m->h[5] = m->word * 0x01000193u + 5;
}

size_t
cm_pack(const unsigned char *in, size_t n, unsigned char *out)
{
	struct cm m;
	uint32_t xmid;
	size_t i, o = 0;
	int b, y;

	if (init(&m) == -1)
		return 0;
	for (i = 0; i < n; i++)
		for (b = 7; b >= 0; b--) {
			y = in[i] >> b & 1;
			predict(&m);
			xmid = m.x1 + ((m.x2 - m.x1) >> 12) * (uint32_t)m.pr;
			if (y)
				m.x2 = xmid;
			else
				m.x1 = xmid + 1;
			update(&m, y);
			while (((m.x1 ^ m.x2) & 0xff000000u) == 0) {
				out[o++] = (unsigned char)(m.x2 >> 24);
				m.x1 <<= 8;
				m.x2 = m.x2 << 8 | 255;
			}
		}
	/*
	 * Any value in [x1, x2] ends it. x1 and x2 differ in their top byte,
	 * so x1's top byte plus one, then the zeros cm_unpack reads past the
	 * end, is one.
	 */
	out[o++] = (unsigned char)((m.x1 >> 24) + 1);
	free(m.t);
	return o;
}

int
cm_unpack(const unsigned char *in, size_t n, char *out, size_t len)
{
	struct cm m;
	uint32_t xmid, x = 0;
	size_t i, o;
	int y;

	if (init(&m) == -1)
		return -1;
	for (i = 0; i < 4; i++)
		x = x << 8 | (i < n ? in[i] : 0);
	for (o = 0; o < len; o++) {
		do {
			predict(&m);
			xmid = m.x1 + ((m.x2 - m.x1) >> 12) * (uint32_t)m.pr;
			y = x <= xmid;
			if (y)
				m.x2 = xmid;
			else
				m.x1 = xmid + 1;
			update(&m, y);
			while (((m.x1 ^ m.x2) & 0xff000000u) == 0) {
				m.x1 <<= 8;
				m.x2 = m.x2 << 8 | 255;
				x = x << 8 | (i < n ? in[i] : 0);
				i++;
			}
		} while (m.c0 != 1);
		out[o] = (char)(m.c4 & 255);
	}
	free(m.t);
	return 0;
}
