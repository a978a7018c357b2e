/* xml.c — XML escaping for S3 responses and the in-place leaf-element parser used for
 * S3 request bodies. Deliberately not a general XML parser: no DTDs, no CDATA, no
 * attributes of interest (they are skipped), bounded depth. */
#include "xml.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

size_t xml_escape(const char *in, size_t len, char *out, size_t out_max)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)in[i];
		const char *rep = NULL;
		char num[8];

		switch (ch) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '"': rep = "&quot;"; break;
		case '\'': rep = "&apos;"; break;
		default:
			if (ch < 0x20 || ch == 0x7f) {
				/* S3 writes control characters as numeric references. */
				num[0] = '&'; num[1] = '#'; num[2] = 'x';
				num[3] = hex[ch >> 4]; num[4] = hex[ch & 15];
				num[5] = ';'; num[6] = 0;
				rep = num;
			}
		}
		if (rep) {
			size_t n = strlen(rep);
			if (o + n > out_max)
				break;
			memcpy(out + o, rep, n);
			o += n;
		} else {
			if (o + 1 > out_max)
				break;
			out[o++] = (char)ch;
		}
	}
	return o;
}

/* Appends the UTF-8 encoding of cp at *o; returns false for invalid code points. */
static bool put_utf8(char *out, size_t *o, uint32_t cp)
{
	if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return false;
	if (cp < 0x80) {
		out[(*o)++] = (char)cp;
	} else if (cp < 0x800) {
		out[(*o)++] = (char)(0xc0 | (cp >> 6));
		out[(*o)++] = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		out[(*o)++] = (char)(0xe0 | (cp >> 12));
		out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[(*o)++] = (char)(0x80 | (cp & 0x3f));
	} else {
		out[(*o)++] = (char)(0xf0 | (cp >> 18));
		out[(*o)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
		out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[(*o)++] = (char)(0x80 | (cp & 0x3f));
	}
	return true;
}

/* Decodes one entity starting at s[0] == '&' (s..end). Never writes more bytes than it
 * reads: the longest UTF-8 form (4 bytes) is shorter than any numeric reference for it. */
static int decode_entity(const char *s, const char *end, char *out, size_t *o)
{
	static const struct { const char *name; char ch; } named[] = {
		{ "amp;", '&' }, { "lt;", '<' }, { "gt;", '>' }, { "quot;", '"' }, { "apos;", '\'' },
	};
	const char *semi = memchr(s, ';', (size_t)(end - s));
	uint32_t cp = 0;

	if (!semi || semi - s > 12)
		return -1;
	for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
		size_t n = strlen(named[i].name);
		if ((size_t)(semi - s) == n && memcmp(s + 1, named[i].name, n) == 0) {
			out[(*o)++] = named[i].ch;
			return (int)n + 1;
		}
	}
	if (s[1] != '#' || semi - s < 3)
		return -1;
	if (s[2] == 'x' || s[2] == 'X') {
		if (semi - s < 4)
			return -1;
		for (const char *p = s + 3; p < semi; p++) {
			int d = (*p >= '0' && *p <= '9') ? *p - '0' :
				(*p >= 'a' && *p <= 'f') ? *p - 'a' + 10 :
				(*p >= 'A' && *p <= 'F') ? *p - 'A' + 10 : -1;
			if (d < 0 || cp > 0x10ffff)
				return -1;
			cp = cp * 16 + (uint32_t)d;
		}
	} else {
		for (const char *p = s + 2; p < semi; p++) {
			if (*p < '0' || *p > '9' || cp > 0x10ffff)
				return -1;
			cp = cp * 10 + (uint32_t)(*p - '0');
		}
	}
	if (!put_utf8(out, o, cp))
		return -1;
	return (int)(semi - s) + 1;
}

/* Decodes text[0..len) in place; returns the new length or -1. */
static long decode_text(char *text, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < len;) {
		if (text[i] == '&') {
			int n = decode_entity(text + i, text + len, text, &o);
			if (n < 0)
				return -1;
			i += (size_t)n;
		} else {
			text[o++] = text[i++];
		}
	}
	return (long)o;
}

static bool is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-' || c == '.' || c == ':' || (unsigned char)c >= 0x80;
}

/* Reads a tag name at *p, stores its local part (after any "prefix:") in name. */
static int read_name(const char **p, const char *end, char name[XML_MAX_NAME])
{
	const char *s = *p, *local = *p;
	size_t n;

	while (*p < end && is_name_char(**p)) {
		if (**p == ':')
			local = *p + 1;
		(*p)++;
	}
	n = (size_t)(*p - local);
	if (*p == s || n == 0 || n >= XML_MAX_NAME)
		return -1;
	memcpy(name, local, n);
	name[n] = 0;
	return 0;
}

/* Skips "<?...?>" and "<!--...-->"; returns the position after it, or NULL. */
static const char *skip_special(const char *p, const char *end)
{
	const char *q;

	if (end - p >= 2 && p[1] == '?') {
		q = memmem(p, (size_t)(end - p), "?>", 2);
		return q ? q + 2 : NULL;
	}
	if (end - p >= 4 && memcmp(p, "<!--", 4) == 0) {
		q = memmem(p + 4, (size_t)(end - p - 4), "-->", 3);
		return q ? q + 3 : NULL;
	}
	return NULL;	/* DOCTYPE, CDATA and the like are refused */
}

struct xml_state {
	char names[XML_MAX_DEPTH][XML_MAX_NAME];
	char *text_start[XML_MAX_DEPTH];
	bool leaf[XML_MAX_DEPTH];
	int depth;
	bool seen_root;
};

/* Handles "<name attrs...>" or "<name/>" at p (just after '<'). */
static const char *open_tag(struct xml_state *st, char *p, const char *end, xml_elem_fn fn,
			    void *ctx, int *rc)
{
	char name[XML_MAX_NAME];
	const char *q = p;
	char quote = 0;

	if (read_name(&q, end, name) < 0 || st->depth == XML_MAX_DEPTH ||
	    (st->depth == 0 && st->seen_root))
		return NULL;
	for (; q < end; q++) {	/* skip attributes, honouring quotes */
		if (quote) {
			if (*q == quote)
				quote = 0;
		} else if (*q == '"' || *q == '\'') {
			quote = *q;
		} else if (*q == '>') {
			break;
		}
	}
	if (q == end)
		return NULL;
	if (st->depth > 0)
		st->leaf[st->depth - 1] = false;
	if (q[-1] == '/') {	/* <empty/> */
		char empty[1] = "";
		*rc = fn(ctx, name, st->depth ? st->names[st->depth - 1] : "", st->depth + 1, empty, 0);
		st->seen_root = st->seen_root || st->depth == 0;
		return q + 1;
	}
	memcpy(st->names[st->depth], name, sizeof(name));
	st->text_start[st->depth] = (char *)q + 1;
	st->leaf[st->depth] = true;
	st->depth++;
	st->seen_root = true;
	return q + 1;
}

/* Handles "</name>" at p (just after "</"); lt is the position of its '<'. */
static const char *close_tag(struct xml_state *st, char *lt, const char *p, const char *end,
			     xml_elem_fn fn, void *ctx, int *rc)
{
	char name[XML_MAX_NAME];
	char *text;
	long tlen = 0;
	int d = st->depth - 1;

	if (d < 0 || read_name(&p, end, name) < 0 || strcmp(name, st->names[d]) != 0)
		return NULL;
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++;
	if (p == end || *p != '>')
		return NULL;
	text = st->text_start[d];
	if (st->leaf[d]) {
		tlen = decode_text(text, (size_t)(lt - text));
		if (tlen < 0)
			return NULL;
	}
	text[tlen] = 0;	/* overwrites at most the '<' of this close tag, already read */
	st->depth--;
	*rc = fn(ctx, name, d ? st->names[d - 1] : "", d + 1, text, (size_t)tlen);
	return p + 1;
}

int xml_parse(char *buf, size_t len, xml_elem_fn fn, void *ctx)
{
	struct xml_state st = { .depth = 0 };
	const char *end = buf + len;
	char *p = buf;
	int rc = 0;

	buf[len] = 0;
	while (p < end && rc == 0) {
		char *lt = memchr(p, '<', (size_t)(end - p));
		const char *next;

		if (!lt) {
			/* Only whitespace may follow the root element. */
			for (; p < end; p++)
				if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
					return -1;
			break;
		}
		if (st.depth == 0)
			for (char *s = p; s < lt; s++)
				if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
					return -1;
		if (lt + 1 >= end)
			return -1;
		if (lt[1] == '/')
			next = close_tag(&st, lt, lt + 2, end, fn, ctx, &rc);
		else if (lt[1] == '?' || lt[1] == '!')
			next = skip_special(lt, end);
		else
			next = open_tag(&st, lt + 1, end, fn, ctx, &rc);
		if (!next)
			return -1;
		p = (char *)next;
	}
	if (rc)
		return rc;
	return (st.depth == 0 && st.seen_root) ? 0 : -1;
}
