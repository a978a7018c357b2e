/* http1.c — blocking HTTP/1.1 over a tls_conn for the control plane: one request per
 * connection, Content-Length bodies held in memory, a strict bounded head parser shared by
 * the client (http1_call) and the server (http1_read_request, http1_reply). */
#include "http1.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "uri.h"

#define HTTP1_CL_DIGITS	18	/* a Content-Length below 10^18 cannot overflow */

/* --- the head parser --- */

static bool is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Field values and reason phrases: HTAB, SP, VCHAR, obs-text. */
static bool is_vchar(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static char *tchars_end(char *s)
{
	while (is_tchar((unsigned char)*s))
		s++;
	return s;
}

/* The next CRLF-ended line of [*p, end), NUL-terminated in place; NULL at a bare CR. */
static char *next_line(char **p, char *end)
{
	char *line = *p, *cr = memchr(line, '\r', (size_t)(end - line));

	if (!cr || cr + 1 >= end || cr[1] != '\n')
		return NULL;
	*cr = '\0';
	*p = cr + 2;
	return line;
}

static bool version_ok(const char *v)
{
	return strcmp(v, "HTTP/1.1") == 0 || strcmp(v, "HTTP/1.0") == 0;
}

static int request_line(char *line, struct http1_head *h)
{
	char *sp = tchars_end(line), *t;

	if (sp == line || *sp != ' ')
		return -EPROTO;
	*sp = '\0';
	h->method = line;
	for (t = sp + 1; (unsigned char)*t > 0x20 && (unsigned char)*t < 0x7f; t++)
		;
	if (t == sp + 1 || *t != ' ')
		return -EPROTO;
	*t = '\0';
	h->target = sp + 1;
	return version_ok(t + 1) ? 0 : -EPROTO;
}

static int status_line(char *line, struct http1_head *h)
{
	char *p = line + 8;

	if (strlen(line) < 12 || line[8] != ' ')
		return -EPROTO;
	*p++ = '\0';
	if (!version_ok(line) || p[0] < '1' || p[0] > '5' || p[1] < '0' || p[1] > '9' ||
	    p[2] < '0' || p[2] > '9' || (p[3] != '\0' && p[3] != ' '))
		return -EPROTO;
	h->status = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
	for (p += 3; *p; p++)
		if (!is_vchar((unsigned char)*p))
			return -EPROTO;
	return 0;
}

static int content_length(const char *v, struct http1_head *h)
{
	size_t n = strlen(v);
	int64_t x = 0;

	if (h->content_length >= 0 || n == 0 || n > HTTP1_CL_DIGITS)
		return -EPROTO;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -EPROTO;
		x = x * 10 + (v[i] - '0');
	}
	h->content_length = x;
	return 0;
}

static int once(const char **slot, const char *v)
{
	if (*slot)
		return -EPROTO;
	*slot = v;
	return 0;
}

static int field(const char *name, const char *v, struct http1_head *h)
{
	if (strcasecmp(name, "content-length") == 0)
		return content_length(v, h);
	if (strcasecmp(name, "content-type") == 0)
		return once(&h->ctype, v);
	if (strcasecmp(name, "authorization") == 0)
		return once(&h->authorization, v);
	if (strcasecmp(name, "host") == 0)
		return once(&h->host, v);
	if (strcasecmp(name, "transfer-encoding") == 0)
		h->transfer_encoding = true;
	else if (strcasecmp(name, "expect") == 0 && strcasecmp(v, "100-continue") == 0)
		h->expect_continue = true;
	return 0;
}

/* "name: value" with the value's surrounding whitespace cut off. */
static int field_line(char *line, struct http1_head *h)
{
	char *colon = tchars_end(line), *v, *e;

	if (colon == line || *colon != ':')
		return -EPROTO;
	*colon = '\0';
	for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
		;
	for (e = v; *e; e++)
		if (!is_vchar((unsigned char)*e))
			return -EPROTO;
	while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
		*--e = '\0';
	return field(line, v, h);
}

int http1_parse_head(char *buf, size_t len, bool request, struct http1_head *h)
{
	char *p = buf, *end = buf + len, *line;
	int err;

	memset(h, 0, sizeof(*h));
	h->content_length = -1;
	if (len < 4 || memcmp(end - 4, "\r\n\r\n", 4) != 0 || memchr(buf, '\0', len))
		return -EPROTO;
	line = next_line(&p, end);
	if (!line)
		return -EPROTO;
	err = request ? request_line(line, h) : status_line(line, h);
	while (!err) {
		line = next_line(&p, end);
		if (!line)
			return -EPROTO;
		if (!*line)
			break;
		err = field_line(line, h);
	}
	if (err)
		return err;
	if (p != end || (h->transfer_encoding && h->content_length >= 0))
		return -EPROTO;
	return 0;
}

int http1_split_target(char *target, char *path, size_t max, const char **query)
{
	char *q = strchr(target, '?');
	int n;

	*query = "";
	if (target[0] != '/' || max == 0)
		return -EPROTO;
	if (q) {
		*q = '\0';
		*query = q + 1;
	}
	n = uri_decode(target, strlen(target), path, max - 1, false);
	if (n < 0)
		return -EPROTO;
	for (int i = 0; i < n; i++)
		if ((unsigned char)path[i] < 0x20 || path[i] == 0x7f)
			return -EPROTO;
	path[n] = '\0';
	return 0;
}

/* --- reading --- */

/* Reads until the end of a head into buf[0..cap): *head_len bytes of head, *got in all
 * (the rest is the start of the body). */
static int read_head(struct tls_conn *c, char *buf, size_t cap, size_t *head_len, size_t *got)
{
	size_t from;
	char *e;
	ssize_t n;

	*got = 0;
	while (*got < cap) {
		n = tls_read(c, buf + *got, cap - *got);
		if (n < 0)
			return (int)n;
		if (n == 0)
			return *got ? -EPROTO : -ENODATA;
		from = *got > 3 ? *got - 3 : 0;
		*got += (size_t)n;
		e = memmem(buf + from, *got - from, "\r\n\r\n", 4);
		if (e) {
			*head_len = (size_t)(e - buf) + 4;
			return 0;
		}
	}
	return -EPROTO;	/* a head over HTTP1_HEAD_MAX */
}

/* A body of exactly clen bytes (pre: those already read), or up to the end of the stream
 * when clen < 0. Always malloc'ed and NUL-terminated. */
static int read_body(struct tls_conn *c, const char *pre, size_t pre_len, int64_t clen,
		     char **body, size_t *body_len)
{
	size_t want = clen >= 0 ? (size_t)clen : HTTP1_BODY_MAX + 1, len = pre_len;
	char *b;
	ssize_t n = 0;

	if (clen > HTTP1_BODY_MAX)
		return -EFBIG;
	if (clen >= 0 && pre_len > want)
		return -EPROTO;	/* more than announced */
	b = malloc(clen >= 0 ? want + 1 : HTTP1_BODY_MAX + 2);
	if (!b)
		return -ENOMEM;
	memcpy(b, pre, pre_len);
	while (len < want) {
		n = tls_read(c, b + len, want - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	if (len < want && (clen >= 0 || n < 0)) {
		free(b);
		return n < 0 ? (int)n : -EPROTO;
	}
	if (len > HTTP1_BODY_MAX) {
		free(b);
		return -EFBIG;
	}
	b[len] = '\0';
	*body = b;
	*body_len = len;
	return 0;
}

static int copy_str(char *dst, size_t max, const char *src)
{
	size_t n = src ? strlen(src) : 0;

	if (n >= max)
		return -EPROTO;
	memcpy(dst, src ? src : "", n + 1);
	return 0;
}

/* --- client --- */

/* A field value we send: no line breaks or other control characters. */
static bool safe(const char *s)
{
	for (; s && *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static bool request_ok(const struct http1_req *q)
{
	const char *m = q->method;

	while (*m && is_tchar((unsigned char)*m))
		m++;
	return m != q->method && !*m && q->path && q->path[0] == '/' && !strchr(q->path, ' ') &&
	       safe(q->path) && q->host && safe(q->host) && safe(q->ctype) && safe(q->bearer) &&
	       (q->body || !q->body_len);
}

static int request_head(const struct http1_req *q, char *buf, size_t cap)
{
	bool no_body = !q->body_len && (!strcmp(q->method, "GET") || !strcmp(q->method, "HEAD") ||
					!strcmp(q->method, "DELETE"));
	size_t n = 0;
	int w;

	if (!request_ok(q))
		return -EINVAL;
	w = snprintf(buf, cap, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n",
		     q->method, q->path, q->host);
	n += w > 0 ? (size_t)w : cap;
	if (q->ctype && n < cap)
		n += (size_t)snprintf(buf + n, cap - n, "Content-Type: %s\r\n", q->ctype);
	if (!no_body && n < cap)
		n += (size_t)snprintf(buf + n, cap - n, "Content-Length: %zu\r\n", q->body_len);
	if (q->bearer && n < cap)
		n += (size_t)snprintf(buf + n, cap - n, "Authorization: Bearer %s\r\n", q->bearer);
	if (n < cap)
		n += (size_t)snprintf(buf + n, cap - n, "\r\n");
	return n < cap ? (int)n : -ENAMETOOLONG;
}

static int send_request(struct tls_conn *c, const struct http1_req *q, char *buf, size_t cap)
{
	int n = request_head(q, buf, cap), err;

	if (n < 0)
		return n;
	err = tls_write(c, buf, (size_t)n);
	if (!err && q->body_len)
		err = tls_write(c, q->body, q->body_len);
	return err;
}

static int read_reply(struct tls_conn *c, const struct http1_req *q, char *buf, size_t cap,
		      struct http1_resp *out)
{
	struct http1_head h;
	size_t head_len, got;
	int err = read_head(c, buf, cap, &head_len, &got);

	if (err)
		return err == -ENODATA ? -EPROTO : err;
	err = http1_parse_head(buf, head_len, false, &h);
	if (!err && (h.status < 200 || h.transfer_encoding))
		err = -EPROTO;	/* we never ask for 1xx, and send no TE: chunked */
	if (!err)
		err = copy_str(out->ctype, sizeof(out->ctype), h.ctype);
	if (err)
		return err;
	out->status = h.status;
	if (!strcmp(q->method, "HEAD") || h.status == 204 || h.status == 304)
		h.content_length = 0;
	return read_body(c, buf + head_len, got - head_len, h.content_length, &out->body,
			 &out->body_len);
}

int http1_call(struct tls_conn *c, const struct http1_req *req, struct http1_resp *out)
{
	char buf[HTTP1_HEAD_MAX];
	int err, werr;

	memset(out, 0, sizeof(*out));
	werr = send_request(c, req, buf, sizeof(buf));
	/* A server may answer early (413) and stop reading: its reply still counts. */
	if (werr && werr != -EPIPE && werr != -ECONNRESET)
		return werr;
	err = read_reply(c, req, buf, sizeof(buf), out);
	if (err) {
		memset(out, 0, sizeof(*out));
		return werr ? werr : err;
	}
	return 0;
}

/* --- server --- */

/* The token of "Bearer <token>" (other schemes leave it ""). */
static int bearer(const char *auth, char *out, size_t max)
{
	if (!auth || strncasecmp(auth, "Bearer ", 7) != 0)
		return 0;
	auth += 7;
	while (*auth == ' ')
		auth++;
	if (strpbrk(auth, " \t"))
		return -EPROTO;
	return copy_str(out, max, auth);
}

static int request_fields(struct http1_srv_req *r, struct http1_head *h)
{
	int err;

	if (h->transfer_encoding)
		return -ENOTSUP;
	if (h->content_length > HTTP1_BODY_MAX)
		return -EFBIG;
	r->method = h->method;
	err = http1_split_target((char *)h->target, r->path, sizeof(r->path), &r->query);
	if (!err)
		err = bearer(h->authorization, r->bearer, sizeof(r->bearer));
	if (!err)
		err = copy_str(r->ctype, sizeof(r->ctype), h->ctype);
	if (!err)
		err = copy_str(r->host, sizeof(r->host), h->host);
	return err;
}

int http1_read_request(struct tls_conn *c, struct http1_srv_req *r)
{
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
	struct http1_head h;
	size_t head_len, got;
	int err;

	memset(r, 0, sizeof(*r));
	r->method = r->query = "";
	err = read_head(c, r->head, HTTP1_HEAD_MAX, &head_len, &got);
	if (!err)
		err = http1_parse_head(r->head, head_len, true, &h);
	if (!err)
		err = request_fields(r, &h);
	if (err)
		return err;
	if (h.expect_continue && h.content_length > 0 && got == head_len) {
		err = tls_write(c, cont, sizeof(cont) - 1);
		if (err)
			return err;
	}
	/* A request without Content-Length has no body (RFC 9112 6.3). */
	return read_body(c, r->head + head_len, got - head_len,
			 h.content_length < 0 ? 0 : h.content_length, &r->body, &r->body_len);
}

void http1_srv_req_fini(struct http1_srv_req *r)
{
	free(r->body);
	r->body = NULL;
	r->body_len = 0;
}

const char *http1_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 416: return "Range Not Satisfiable";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	case 507: return "Insufficient Storage";
	default: return "Status";
	}
}

int http1_reply(struct tls_conn *c, int status, const char *ctype, const void *body,
		size_t len)
{
	char head[512];
	int n, err;

	if (status < 200 || status > 599 || !safe(ctype) || (ctype && strlen(ctype) > 128))
		return -EINVAL;
	n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\n%s%s%sContent-Length: %zu\r\n"
		     "Connection: close\r\n\r\n", status, http1_reason(status),
		     ctype ? "Content-Type: " : "", ctype ? ctype : "", ctype ? "\r\n" : "", len);
	if (n < 0 || (size_t)n >= sizeof(head))
		return -EINVAL;
	err = tls_write(c, head, (size_t)n);
	if (!err && len)
		err = tls_write(c, body, len);
	return err;
}
