/*
 * json.h: a small JSON reader for request bodies (POST /txn): the text is
 * parsed whole into a flat array of tokens, children after their parent,
 * strings decoded into a buffer of the caller's. Pure: any thread.
 */

#define JSON_MAX_DEPTH	16	/* nesting of arrays and objects */
#define JSON_MAX_NUMBER	((uint64_t)1 << 53)	/* exact as a double */

enum json_type {
	JSON_OBJECT = 1, JSON_ARRAY, JSON_STRING, JSON_NUMBER, JSON_TRUE,
	JSON_FALSE, JSON_NULL
};

struct json_tok {
	int		 t_type;
	size_t		 t_n;		/* OBJECT: members; ARRAY: elements;
					   STRING: decoded bytes */
	size_t		 t_end;		/* index just past this token's
					   children: the next sibling */
	const char	*t_str;		/* STRING: decoded, in the caller's
					   buffer (not NUL-terminated) */
	uint64_t	 t_num;		/* NUMBER */
	size_t		 t_pos;		/* byte offset in the text */
};

/*
 * Parse text[0..len): one value, with only white space around it, into
 * tok[0..max). An object's members are a STRING token (the name) then the
 * value's. Numbers are integers from 0 to JSON_MAX_NUMBER (no sign,
 * fraction or exponent). Strings are decoded into sbuf (room for len
 * bytes): escapes, \u as UTF-8 (surrogate pairs joined), and \udc80 to
 * \udcff as the single bytes 0x80 to 0xff, as json_string writes a byte
 * that is not UTF-8. Returns the token count, or -1 with *pos the byte
 * offset of the error and *why one line saying what is wrong ("too many
 * values" when max is too small, "nested too deep").
 */
int	json_parse(const char *text, size_t len, struct json_tok *tok,
	    size_t max, char *sbuf, size_t *pos, const char **why);

/*
 * The value of member name of the object at tok[obj], as a token index,
 * or -1 if it has none (the first, if named twice).
 */
int	json_member(const struct json_tok *tok, int obj, const char *name);

/* 1 if the STRING at tok[i] is s. */
int	json_is(const struct json_tok *tok, int i, const char *s);
