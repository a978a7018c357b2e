/* http_parse.c — the HTTP/1.1 request-head parser and the chunked body decoder (see http.h).
 * Pure functions over caller-owned bytes: no allocation, no hidden state, every pointer
 * they produce points into the input. Strict by design: anything ambiguous is an error. */
#include "http.h"
#include "hash.h"

#include <string.h>
#include <strings.h>

#define HTTP_MAX_METHOD		32	/* longest method token accepted */
#define CHUNK_LINE_MAX		4096	/* a chunk-size line (with extensions) or one trailer */
#define CHUNK_SIZE_MAX		(INT64_MAX >> 4)	/* accumulated size before the next shift */

struct head_state {
	bool cl_seen, te_seen, conn_close, conn_keep_alive;
	int hosts;
};

static bool is_tchar(unsigned char ch)
{
	if ((ch >= '0' && ch <= '9') || ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z'))
		return true;
	return ch && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

/* Field values: HTAB, SP, VCHAR and obs-text; every other control byte (NUL, bare CR,
 * DEL) is refused because a proxy in front of us might read it differently. */
static bool is_value_char(unsigned char ch)
{
	return ch == '\t' || (ch >= 0x20 && ch != 0x7f);
}

static bool is_target_char(unsigned char ch)
{
	return ch > 0x20 && ch != 0x7f;
}

static bool all_tchars(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!is_tchar((unsigned char)p[i]))
			return false;
	return true;
}

static bool token_eq(const char *p, size_t n, const char *lit)
{
	return strlen(lit) == n && strncasecmp(p, lit, n) == 0;
}

static enum http_method method_of(const char *p, size_t n)
{
	static const struct { const char *s; enum http_method m; } tab[] = {
		{ "GET", HTTP_GET }, { "HEAD", HTTP_HEAD }, { "PUT", HTTP_PUT },
		{ "POST", HTTP_POST }, { "DELETE", HTTP_DELETE }, { "OPTIONS", HTTP_OPTIONS },
	};

	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (strlen(tab[i].s) == n && memcmp(p, tab[i].s, n) == 0)
			return tab[i].m;
	return HTTP_OTHER;
}

/* Splits the target into path and query; absolute-form ("http://host/p") is accepted as
 * RFC 9112 requires of servers, and its path is the part after the authority. */
static int parse_target(const char *t, size_t n, struct http_req *req)
{
	const char *path = t, *end = t + n, *q;

	for (size_t i = 0; i < n; i++)
		if (!is_target_char((unsigned char)t[i]))
			return HTTP_PARSE_BAD;
	if (n > 7 && (strncasecmp(t, "http://", 7) == 0 || strncasecmp(t, "https://", 8) == 0)) {
		const char *auth = memchr(t, ':', n) + 3;

		path = memchr(auth, '/', (size_t)(end - auth));
		if (!path)
			path = end;	/* empty path: the caller sees path_len 0 */
	} else if (*t != '/' && !(n == 1 && *t == '*') && req->method != HTTP_OTHER) {
		return HTTP_PARSE_BAD;	/* authority-form is only for CONNECT */
	}
	q = memchr(path, '?', (size_t)(end - path));
	req->path = path;
	req->path_len = (size_t)((q ? q : end) - path);
	if (q) {
		req->query = q + 1;
		req->query_len = (size_t)(end - q - 1);
	}
	return 0;
}

static int parse_version(const char *v, size_t n, struct http_req *req)
{
	if (n != 8 || memcmp(v, "HTTP/", 5) != 0 || v[6] != '.' ||
	    v[5] < '0' || v[5] > '9' || v[7] < '0' || v[7] > '9')
		return HTTP_PARSE_BAD;
	if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
		return HTTP_PARSE_VERSION;
	req->minor = v[7] - '0';
	return 0;
}

static int parse_request_line(const char *p, const char *e, struct http_req *req)
{
	const char *sp1 = memchr(p, ' ', (size_t)(e - p)), *t, *sp2;
	int r;

	if (!sp1 || sp1 == p || sp1 - p > HTTP_MAX_METHOD || !all_tchars(p, (size_t)(sp1 - p)))
		return HTTP_PARSE_BAD;
	req->method_str = p;
	req->method_len = (size_t)(sp1 - p);
	req->method = method_of(p, req->method_len);
	t = sp1 + 1;
	sp2 = memchr(t, ' ', (size_t)(e - t));
	if (!sp2 || sp2 == t)
		return sp2 || (size_t)(e - t) <= HTTP_MAX_TARGET ? HTTP_PARSE_BAD : HTTP_PARSE_URI_TOO_LONG;
	if ((size_t)(sp2 - t) > HTTP_MAX_TARGET)
		return HTTP_PARSE_URI_TOO_LONG;
	req->target = t;
	req->target_len = (size_t)(sp2 - t);
	r = parse_target(t, req->target_len, req);
	if (r < 0)
		return r;
	return parse_version(sp2 + 1, (size_t)(e - sp2 - 1), req);
}

/* The request line has not fully arrived: reject what is already certain to fail, so a
 * TLS handshake or a giant target is answered at once rather than at the timeout. */
static int partial_request_line(const char *p, const char *end, size_t len)
{
	const char *sp = memchr(p, ' ', (size_t)(end - p));
	size_t mlen = (size_t)((sp ? sp : end) - p);

	if (mlen > HTTP_MAX_METHOD || !all_tchars(p, mlen))
		return HTTP_PARSE_BAD;
	if (sp) {
		const char *t = sp + 1, *sp2 = memchr(t, ' ', (size_t)(end - t));
		size_t tlen = (size_t)((sp2 ? sp2 : end) - t);

		if (tlen > HTTP_MAX_TARGET)
			return HTTP_PARSE_URI_TOO_LONG;
		for (size_t i = 0; i < tlen; i++)
			if (!is_target_char((unsigned char)t[i]))
				return HTTP_PARSE_BAD;
	}
	return len >= HTTP_MAX_HEAD ? HTTP_PARSE_TOO_LARGE : HTTP_PARSE_INCOMPLETE;
}

static int parse_content_length(const char *v, size_t n, struct http_req *req)
{
	int64_t cl = 0;

	if (n == 0)
		return HTTP_PARSE_BAD;
	for (size_t i = 0; i < n; i++) {
		int d = v[i] - '0';

		if (d < 0 || d > 9 || cl > (INT64_MAX - d) / 10)
			return HTTP_PARSE_BAD;
		cl = cl * 10 + d;
	}
	req->content_length = cl;
	return 0;
}

static void parse_connection(const char *v, size_t n, struct head_state *st)
{
	const char *end = v + n;

	while (v < end) {
		const char *comma = memchr(v, ',', (size_t)(end - v)), *te = comma ? comma : end;
		const char *tb = v;

		while (tb < te && (*tb == ' ' || *tb == '\t'))
			tb++;
		while (te > tb && (te[-1] == ' ' || te[-1] == '\t'))
			te--;
		if (token_eq(tb, (size_t)(te - tb), "close"))
			st->conn_close = true;
		else if (token_eq(tb, (size_t)(te - tb), "keep-alive"))
			st->conn_keep_alive = true;
		v = comma ? comma + 1 : end;
	}
}

/* Headers that decide message framing or connection reuse. */
static int special_header(const struct http_header *h, struct http_req *req,
			  struct head_state *st)
{
	if (token_eq(h->name, h->name_len, "content-length")) {
		if (st->cl_seen)
			return HTTP_PARSE_BAD;	/* duplicates are a smuggling vector */
		st->cl_seen = true;
		return parse_content_length(h->value, h->value_len, req);
	}
	if (token_eq(h->name, h->name_len, "transfer-encoding")) {
		if (st->te_seen)
			return HTTP_PARSE_BAD;
		st->te_seen = true;
		if (!token_eq(h->value, h->value_len, "chunked"))
			return HTTP_PARSE_TE;
		req->chunked = true;
	} else if (token_eq(h->name, h->name_len, "connection")) {
		parse_connection(h->value, h->value_len, st);
	} else if (token_eq(h->name, h->name_len, "expect")) {
		if (req->minor == 1 && token_eq(h->value, h->value_len, "100-continue"))
			req->expect_continue = true;
	} else if (token_eq(h->name, h->name_len, "host")) {
		st->hosts++;
	}
	return 0;
}

static int parse_header_line(const char *p, const char *e, struct http_req *req,
			     struct head_state *st)
{
	const char *colon = memchr(p, ':', (size_t)(e - p)), *v;
	struct http_header *h;

	/* A leading blank is obs-fold (a continuation line): refused, RFC 9112 5.2. */
	if (!colon || colon == p || !all_tchars(p, (size_t)(colon - p)))
		return HTTP_PARSE_BAD;
	for (v = colon + 1; v < e; v++)
		if (!is_value_char((unsigned char)*v))
			return HTTP_PARSE_BAD;
	for (v = colon + 1; v < e && (*v == ' ' || *v == '\t'); v++)
		;
	while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	if (req->nhdr == HTTP_MAX_HEADERS)
		return HTTP_PARSE_TOO_LARGE;
	h = &req->hdr[req->nhdr++];
	*h = (struct http_header){ p, (size_t)(colon - p), v, (size_t)(e - v) };
	return special_header(h, req, st);
}

static int finish_head(struct http_req *req, const struct head_state *st)
{
	if (st->cl_seen && st->te_seen)
		return HTTP_PARSE_BAD;
	/* HTTP/1.0 has no chunked coding: a 1.0 message carrying it has faulty framing. */
	if (st->te_seen && req->minor == 0)
		return HTTP_PARSE_BAD;
	if (st->hosts > 1 || (req->minor == 1 && st->hosts == 0))
		return HTTP_PARSE_BAD;
	if (req->minor == 1)
		req->keep_alive = !st->conn_close;
	else
		req->keep_alive = st->conn_keep_alive && !st->conn_close;
	return 0;
}

static void req_reset(struct http_req *req)
{
	req->method = HTTP_OTHER;
	req->method_str = req->target = req->path = req->query = NULL;
	req->method_len = req->target_len = req->path_len = req->query_len = 0;
	req->minor = 1;
	req->nhdr = 0;
	req->content_length = -1;
	req->chunked = req->expect_continue = req->keep_alive = false;
}

/* End of the line whose LF is at eol, without its CR. */
static const char *line_end(const char *p, const char *eol)
{
	return eol > p && eol[-1] == '\r' ? eol - 1 : eol;
}

int http_parse_head(const char *buf, size_t len, struct http_req *req)
{
	struct head_state st = { 0 };
	const char *p = buf, *end = buf + len, *eol;
	int r;

	req_reset(req);
	/* Tolerate blank lines before a request (RFC 9112 2.2): some clients send a CRLF
	 * after a body; they still count towards the head limit. */
	while (p < end && (*p == '\n' || (*p == '\r' && p + 1 < end && p[1] == '\n')))
		p += *p == '\n' ? 1 : 2;
	if (p + 1 == end && *p == '\r')
		return HTTP_PARSE_INCOMPLETE;
	eol = memchr(p, '\n', (size_t)(end - p));
	if (!eol)
		return partial_request_line(p, end, len);
	r = parse_request_line(p, line_end(p, eol), req);
	if (r < 0)
		return r;
	if ((size_t)(eol + 1 - buf) > HTTP_MAX_HEAD)
		return HTTP_PARSE_TOO_LARGE;
	for (p = eol + 1;; p = eol + 1) {
		const char *le;

		eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol || (size_t)(eol + 1 - buf) > HTTP_MAX_HEAD)
			return !eol && len < HTTP_MAX_HEAD ? HTTP_PARSE_INCOMPLETE : HTTP_PARSE_TOO_LARGE;
		le = line_end(p, eol);
		if (le == p)
			break;
		r = parse_header_line(p, le, req, &st);
		if (r < 0)
			return r;
	}
	r = finish_head(req, &st);
	return r < 0 ? r : (int)(eol + 1 - buf);
}

const struct http_header *http_req_header(const struct http_req *req, const char *name)
{
	size_t n = strlen(name);

	for (int i = 0; i < req->nhdr; i++)
		if (req->hdr[i].name_len == n && strncasecmp(req->hdr[i].name, name, n) == 0)
			return &req->hdr[i];
	return NULL;
}

/* --- Transfer-Encoding: chunked (RFC 9112 7.1). CRLF is required everywhere here: a
 * lenient chunk framing is the classic request-smuggling hole. --- */

enum {
	CH_SIZE, CH_SIZE_MORE, CH_SIZE_WS, CH_EXT, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF,
	CH_TRAILER_START, CH_TRAILER, CH_TRAILER_LF, CH_FINAL_LF, CH_DONE, CH_ERROR,
};

void http_chunked_init(struct http_chunked *ch)
{
	ch->state = CH_SIZE;
	ch->remaining = 0;
	ch->line_len = 0;
}

static bool is_ctl(unsigned char c)
{
	return (c < 0x20 && c != '\t') || c == 0x7f;
}

/* One framing byte (never payload); returns the next state. */
static int chunk_size_byte(struct http_chunked *ch, unsigned char c)
{
	int d = hex_value((char)c);

	if (++ch->line_len > CHUNK_LINE_MAX)
		return CH_ERROR;
	switch (ch->state) {
	case CH_SIZE:
	case CH_SIZE_MORE:
		if (d >= 0) {
			if (ch->remaining > CHUNK_SIZE_MAX)
				return CH_ERROR;
			ch->remaining = ch->remaining << 4 | (uint64_t)d;
			return CH_SIZE_MORE;
		}
		if (ch->state == CH_SIZE)
			return CH_ERROR;
		/* fall through - the size is complete */
	case CH_SIZE_WS:
		if (c == ' ' || c == '\t')
			return CH_SIZE_WS;
		return c == ';' ? CH_EXT : c == '\r' ? CH_SIZE_LF : CH_ERROR;
	case CH_EXT:
		return c == '\r' ? CH_SIZE_LF : is_ctl(c) ? CH_ERROR : CH_EXT;
	}
	return CH_ERROR;
}

static int chunk_framing_byte(struct http_chunked *ch, unsigned char c)
{
	switch (ch->state) {
	case CH_SIZE_LF:
		if (c != '\n')
			return CH_ERROR;
		ch->line_len = 0;
		return ch->remaining ? CH_DATA : CH_TRAILER_START;
	case CH_DATA_CR:
		return c == '\r' ? CH_DATA_LF : CH_ERROR;
	case CH_DATA_LF:
		ch->line_len = 0;
		return c == '\n' ? CH_SIZE : CH_ERROR;
	case CH_TRAILER_START:
		if (c == '\r')
			return CH_FINAL_LF;
		ch->line_len = 0;
		/* fall through */
	case CH_TRAILER:
		if (++ch->line_len > CHUNK_LINE_MAX)
			return CH_ERROR;
		return c == '\r' ? CH_TRAILER_LF : is_ctl(c) ? CH_ERROR : CH_TRAILER;
	case CH_TRAILER_LF:
		return c == '\n' ? CH_TRAILER_START : CH_ERROR;
	case CH_FINAL_LF:
		return c == '\n' ? CH_DONE : CH_ERROR;
	}
	return chunk_size_byte(ch, c);
}

ssize_t http_chunked_feed(struct http_chunked *ch, const char *in, size_t len,
			  const char **out, size_t *out_len, bool *done)
{
	size_t i = 0;

	*out = NULL;
	*out_len = 0;
	while (i < len && ch->state != CH_DONE && ch->state != CH_ERROR) {
		if (ch->state == CH_DATA) {
			/* One payload run per call, so the caller can move it in place. */
			size_t n = len - i < ch->remaining ? len - i : (size_t)ch->remaining;

			*out = in + i;
			*out_len = n;
			ch->remaining -= n;
			if (!ch->remaining)
				ch->state = CH_DATA_CR;
			i += n;
			break;
		}
		ch->state = chunk_framing_byte(ch, (unsigned char)in[i++]);
	}
	*done = ch->state == CH_DONE;
	return ch->state == CH_ERROR ? -1 : (ssize_t)i;
}
