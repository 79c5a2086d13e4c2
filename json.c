/*
 * json.c: a JSON reader (RFC 8259) for the few request bodies that must
 * be structured (POST /txn). The whole text is in memory (the body) and
 * bounded by the body limit, so it is parsed in one pass by recursive
 * descent, its depth capped at JSON_MAX_DEPTH, into a flat token array
 * whose size the caller bounds (jsmn's shape: no allocation here). Only
 * what kvstore reads is accepted: numbers are integers from 0 to 2^53,
 * which covers every sequence number (REPL_SEQ_MAX) and count.
 */

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "json.h"

struct parser {
	const char	*p_text;
	size_t		 p_len;
	size_t		 p_off;
	struct json_tok	*p_tok;
	size_t		 p_max;
	size_t		 p_n;
	char		*p_sbuf;
	size_t		 p_slen;
	const char	*p_why;
};

static int	 value(struct parser *, int);

static int
fail(struct parser *p, const char *why)
{
	if (p->p_why == NULL)
		p->p_why = why;
	return -1;
}

static void
skip_space(struct parser *p)
{
	while (p->p_off < p->p_len && strchr(" \t\r\n",
	    p->p_text[p->p_off]) != NULL && p->p_text[p->p_off] != '\0')
		p->p_off++;
}

static struct json_tok *
new_tok(struct parser *p, int type)
{
	struct json_tok *t;

	if (p->p_n == p->p_max)
		return NULL;
	t = &p->p_tok[p->p_n++];
	memset(t, 0, sizeof(*t));
	t->t_type = type;
	t->t_pos = p->p_off;
	return t;
}

/* Four hex digits at the parser's position; -1 if not. */
static long
hex4(struct parser *p)
{
	long v = 0;
	int i, c;

	if (p->p_len - p->p_off < 4)
		return -1;
	for (i = 0; i < 4; i++) {
		c = p->p_text[p->p_off++];
		v = v * 16 + (c >= '0' && c <= '9' ? c - '0' :
		    c >= 'a' && c <= 'f' ? c - 'a' + 10 :
		    c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1000000);
	}
	return v < 0 ? -1 : v;
}

/* Append code point cp as UTF-8 to the string buffer. */
static void
put_utf8(struct parser *p, unsigned long cp)
{
	char *o = p->p_sbuf + p->p_slen;

	if (cp < 0x80)
		*o++ = (char)cp;
	else {
		if (cp < 0x800)
			*o++ = (char)(0xc0 | cp >> 6);
		else {
			if (cp < 0x10000)
				*o++ = (char)(0xe0 | cp >> 12);
			else {
				*o++ = (char)(0xf0 | cp >> 18);
				*o++ = (char)(0x80 | (cp >> 12 & 0x3f));
			}
			*o++ = (char)(0x80 | (cp >> 6 & 0x3f));
		}
		*o++ = (char)(0x80 | (cp & 0x3f));
	}
	p->p_slen = (size_t)(o - p->p_sbuf);
}

/*
 * A \u escape after the "\u": a code point, a surrogate pair, or one of
 * json_string's escaped bytes. The UTF-8 is never longer than the escape.
 */
static int
unicode(struct parser *p)
{
	long hi, lo;

	if ((hi = hex4(p)) < 0)
		return fail(p, "bad \\u escape: four hex digits expected");
	if (hi >= 0xdc80 && hi <= 0xdcff) {
		p->p_sbuf[p->p_slen++] = (char)(hi & 0xff);
		return 0;
	}
	if (hi >= 0xdc00 && hi <= 0xdfff)
		return fail(p, "bad \\u escape: a lone low surrogate");
	if (hi >= 0xd800 && hi <= 0xdbff) {
		if (p->p_len - p->p_off < 2 || p->p_text[p->p_off] != '\\' ||
		    p->p_text[p->p_off + 1] != 'u')
			return fail(p, "bad \\u escape: a high surrogate "
			    "without its low one");
		p->p_off += 2;
		if ((lo = hex4(p)) < 0xdc00 || lo > 0xdfff)
			return fail(p, "bad \\u escape: a high surrogate "
			    "without its low one");
		put_utf8(p, 0x10000 + ((unsigned long)(hi - 0xd800) << 10) +
		    (unsigned long)(lo - 0xdc00));
		return 0;
	}
	put_utf8(p, (unsigned long)hi);
	return 0;
}

static int
string(struct parser *p)
{
	static const char esc[] = "\"\"\\\\//b\bf\fn\nr\rt\t";
	struct json_tok *t;
	const char *e;
	unsigned char c;

	if ((t = new_tok(p, JSON_STRING)) == NULL)
		return fail(p, "too many values");
	t->t_str = p->p_sbuf + p->p_slen;
	for (p->p_off++;; ) {
		if (p->p_off >= p->p_len)
			return fail(p, "unterminated string");
		c = (unsigned char)p->p_text[p->p_off++];
		if (c == '"')
			break;
		if (c < 0x20)
			return fail(p, "control character in a string");
		if (c != '\\') {
			p->p_sbuf[p->p_slen++] = (char)c;
			continue;
		}
		if (p->p_off >= p->p_len)
			return fail(p, "unterminated string");
		c = (unsigned char)p->p_text[p->p_off++];
		if (c == 'u') {
			if (unicode(p) == -1)
				return -1;
			continue;
		}
		for (e = esc; *e != '\0' && *e != (char)c; e += 2)
			;
		if (*e == '\0')
			return fail(p, "bad escape in a string");
		p->p_sbuf[p->p_slen++] = e[1];
	}
	t->t_n = (size_t)(p->p_sbuf + p->p_slen - t->t_str);
	return 0;
}

static int
number(struct parser *p)
{
	struct json_tok *t;
	uint64_t n = 0;
	size_t start = p->p_off;
	char c;

	if ((t = new_tok(p, JSON_NUMBER)) == NULL)
		return fail(p, "too many values");
	while (p->p_off < p->p_len && (c = p->p_text[p->p_off]) >= '0' &&
	    c <= '9') {
		n = n * 10 + (uint64_t)(c - '0');
		if (n > JSON_MAX_NUMBER)
			return fail(p, "number too big (the limit is 2^53)");
		p->p_off++;
	}
	if (p->p_off - start > 1 && p->p_text[start] == '0')
		return fail(p, "number with a leading zero");
	if (p->p_off < p->p_len && strchr(".eE-+", p->p_text[p->p_off]) !=
	    NULL && p->p_text[p->p_off] != '\0')
		return fail(p, "only whole numbers from 0 to 2^53 are taken");
	t->t_num = n;
	return 0;
}

static int
literal(struct parser *p, const char *word, int type)
{
	size_t n = strlen(word);

	if (p->p_len - p->p_off < n ||
	    memcmp(p->p_text + p->p_off, word, n) != 0)
		return fail(p, "unexpected character");
	if (new_tok(p, type) == NULL)
		return fail(p, "too many values");
	p->p_off += n;
	return 0;
}

/* An array or object at '[' or '{': its values (objects: name, value). */
static int
container(struct parser *p, int depth)
{
	struct json_tok *t;
	size_t me = p->p_n;
	int obj = p->p_text[p->p_off] == '{';
	char close = obj ? '}' : ']';

	if (depth >= JSON_MAX_DEPTH)
		return fail(p, "nested too deep");
	if ((t = new_tok(p, obj ? JSON_OBJECT : JSON_ARRAY)) == NULL)
		return fail(p, "too many values");
	p->p_off++;
	skip_space(p);
	if (p->p_off < p->p_len && p->p_text[p->p_off] == close) {
		p->p_off++;
		p->p_tok[me].t_end = p->p_n;
		return 0;
	}
	for (;;) {
		skip_space(p);
		if (obj) {
			if (p->p_off >= p->p_len ||
			    p->p_text[p->p_off] != '"')
				return fail(p, "a member name (a string) "
				    "expected");
			if (string(p) == -1)
				return -1;
			p->p_tok[p->p_n - 1].t_end = p->p_n;
			skip_space(p);
			if (p->p_off >= p->p_len ||
			    p->p_text[p->p_off] != ':')
				return fail(p, "':' expected");
			p->p_off++;
		}
		if (value(p, depth + 1) == -1)
			return -1;
		p->p_tok[me].t_n++;
		skip_space(p);
		if (p->p_off < p->p_len && p->p_text[p->p_off] == ',') {
			p->p_off++;
			continue;
		}
		if (p->p_off < p->p_len && p->p_text[p->p_off] == close)
			break;
		return fail(p, obj ? "',' or '}' expected" :
		    "',' or ']' expected");
	}
	p->p_off++;
	p->p_tok[me].t_end = p->p_n;
	return 0;
}

static int
value(struct parser *p, int depth)
{
	size_t me = p->p_n;
	int rc;
	char c;

	skip_space(p);
	if (p->p_off >= p->p_len)
		return fail(p, "unexpected end of the text");
	c = p->p_text[p->p_off];
	if (c == '{' || c == '[')
		return container(p, depth);
	if (c == '"')
		rc = string(p);
	else if (c >= '0' && c <= '9')
		rc = number(p);
	else if (c == '-')
		return fail(p, "only whole numbers from 0 to 2^53 are taken");
	else
		rc = literal(p, c == 't' ? "true" : c == 'f' ? "false" :
		    "null", c == 't' ? JSON_TRUE : c == 'f' ? JSON_FALSE :
		    JSON_NULL);
	if (rc == 0)
		p->p_tok[me].t_end = p->p_n;
	return rc;
}

int
json_parse(const char *text, size_t len, struct json_tok *tok, size_t max,
    char *sbuf, size_t *pos, const char **why)
{
	struct parser p;

	memset(&p, 0, sizeof(p));
	p.p_text = text;
	p.p_len = len;
	p.p_tok = tok;
	p.p_max = max;
	p.p_sbuf = sbuf;
	if (value(&p, 0) == 0) {
		skip_space(&p);
		if (p.p_off == len)
			return (int)p.p_n;
		fail(&p, "text after the value");
	}
	*pos = p.p_off;
	*why = p.p_why;
	return -1;
}

int
json_member(const struct json_tok *tok, int obj, const char *name)
{
	size_t i = (size_t)obj + 1, k;

	if (tok[obj].t_type != JSON_OBJECT)
		return -1;
	for (k = 0; k < tok[obj].t_n; k++) {
		if (json_is(tok, (int)i, name))
			return (int)i + 1;
		i = tok[i + 1].t_end;
	}
	return -1;
}

int
json_is(const struct json_tok *tok, int i, const char *s)
{
	size_t n = strlen(s);

	return tok[i].t_type == JSON_STRING && tok[i].t_n == n &&
	    memcmp(tok[i].t_str, s, n) == 0;
}
