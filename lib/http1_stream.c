/* http1_stream.c — HTTP/1.1 heads read and written whole, bodies streamed in the caller's
 * chunks (lib/http1.c holds bodies in memory). The head parser is http1_parse_head; field
 * lookups scan an unparsed copy of the head, which that parser has already found strict. */
#include "http1_stream.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define DRAIN_CHUNK	16384

/* Reads until the end of a head: *head_len bytes of head, *got in all. */
static int read_head(struct tls_conn *c, char *buf, size_t cap, size_t *head_len, size_t *got)
{
	*got = 0;
	while (*got < cap) {
		size_t from = *got > 3 ? *got - 3 : 0;
		ssize_t n = tls_read(c, buf + *got, cap - *got);
		char *e;

		if (n < 0)
			return (int)n;
		if (n == 0)
			return *got ? -EPROTO : -ENODATA;
		*got += (size_t)n;
		e = memmem(buf + from, *got - from, "\r\n\r\n", 4);
		if (e) {
			*head_len = (size_t)(e - buf) + 4;
			return 0;
		}
	}
	return -EPROTO;
}

static int request_body(struct tls_conn *c, struct http1s_msg *m)
{
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
	size_t n = strlen(m->h.target);

	if (m->h.transfer_encoding)
		return -ENOTSUP;
	if (n >= sizeof(m->target) || m->h.target[0] != '/')
		return -EPROTO;
	memcpy(m->target, m->h.target, n + 1);
	m->body_left = m->h.content_length < 0 ? 0 : m->h.content_length;
	if (m->h.expect_continue && m->body_left > 0 && m->pre_len == 0)
		return tls_write(c, cont, sizeof(cont) - 1);
	return 0;
}

int http1s_read_head(struct tls_conn *c, bool request, bool head_only, struct http1s_msg *m)
{
	size_t got;
	int err;

	m->head_len = m->pre_len = 0;
	m->pre = m->head;
	m->target[0] = '\0';
	m->body_left = 0;
	err = read_head(c, m->head, HTTP1S_HEAD_MAX, &m->head_len, &got);
	if (err)
		return err;
	memcpy(m->raw, m->head, m->head_len);
	m->raw[m->head_len] = '\0';
	m->pre = m->head + m->head_len;
	m->pre_len = got - m->head_len;
	err = http1_parse_head(m->head, m->head_len, request, &m->h);
	if (err)
		return err;
	if (request)
		err = request_body(c, m);
	else if (m->h.status < 200 || m->h.transfer_encoding)
		err = -EPROTO;	/* we never ask for 1xx, nor accept chunked */
	else if (head_only || m->h.status == 204 || m->h.status == 304)
		m->body_left = 0;
	else
		m->body_left = m->h.content_length;
	if (!err && m->body_left >= 0 && (int64_t)m->pre_len > m->body_left)
		err = -EPROTO;	/* more than announced: one message per connection */
	return err;
}

bool http1s_closes(const struct http1s_msg *m)
{
	char v[32];

	return http1s_field(m, "Connection", v, sizeof(v)) >= 0 && strcasecmp(v, "close") == 0;
}

int http1s_field(const struct http1s_msg *m, const char *name, char *out, size_t max)
{
	size_t nl = strlen(name);
	const char *p = strstr(m->raw, "\r\n");

	while (p && p[2] != '\r') {
		const char *line = p + 2, *end = strstr(line, "\r\n"), *v;
		size_t len;

		if (!end)
			break;
		if ((size_t)(end - line) > nl && line[nl] == ':' && !strncasecmp(line, name, nl)) {
			for (v = line + nl + 1; *v == ' ' || *v == '\t'; v++)
				;
			for (len = (size_t)(end - v); len && (v[len - 1] == ' ' || v[len - 1] == '\t'); )
				len--;
			if (len >= max)
				return -ENAMETOOLONG;
			memcpy(out, v, len);
			out[len] = '\0';
			return (int)len;
		}
		p = end;
	}
	return -ENOENT;
}

ssize_t http1s_read_body(struct tls_conn *c, struct http1s_msg *m, void *buf, size_t len)
{
	ssize_t n;

	if (m->body_left == 0 || len == 0)
		return 0;
	if (m->body_left > 0 && (int64_t)len > m->body_left)
		len = (size_t)m->body_left;
	if (m->pre_len) {
		n = (ssize_t)(len < m->pre_len ? len : m->pre_len);
		memcpy(buf, m->pre, (size_t)n);
		m->pre += n;
		m->pre_len -= (size_t)n;
	} else {
		n = tls_read(c, buf, len);
		if (n == 0 && m->body_left > 0)
			return -EPROTO;
		if (n <= 0) {
			if (n == 0)
				m->body_left = 0;	/* the end of a body without a length */
			return n;
		}
	}
	if (m->body_left > 0)
		m->body_left -= n;
	return n;
}

int http1s_drain(struct tls_conn *c, struct http1s_msg *m, int64_t max)
{
	char buf[DRAIN_CHUNK];
	int64_t total = 0;
	ssize_t n;

	while ((n = http1s_read_body(c, m, buf, sizeof(buf))) > 0) {
		total += n;
		if (total > max)
			return -EFBIG;
	}
	return (int)n;
}

/* Extra header lines: printable bytes, every line ended by CRLF, each "Name: value". */
static bool extra_ok(const char *s)
{
	while (*s) {
		const char *e = strstr(s, "\r\n"), *colon = strchr(s, ':');

		if (!e || !colon || colon > e || colon == s)
			return false;
		for (const char *p = s; p < e; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				return false;
		s = e + 2;
	}
	return true;
}

static bool token_ok(const char *s, bool target)
{
	if (!*s || (target && *s != '/'))
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || *s == 0x7f)
			return false;
	return true;
}

static int write_head(struct tls_conn *c, char *buf, int n, size_t cap)
{
	if (n < 0 || (size_t)n >= cap)
		return -EINVAL;
	return tls_write(c, buf, (size_t)n);
}

int http1s_write_request(struct tls_conn *c, const char *method, const char *host,
			 const char *target, const char *extra, int64_t body_len, bool keep)
{
	char buf[HTTP1S_HEAD_MAX], cl[48] = "";

	extra = extra ? extra : "";
	if (!token_ok(method, false) || !token_ok(host, false) || !token_ok(target, true) ||
	    !extra_ok(extra))
		return -EINVAL;
	if (body_len >= 0)
		snprintf(cl, sizeof(cl), "Content-Length: %lld\r\n", (long long)body_len);
	return write_head(c, buf, snprintf(buf, sizeof(buf), "%s %s HTTP/1.1\r\nHost: %s\r\n"
					   "%s%s%s\r\n", method, target, host,
					   keep ? "" : "Connection: close\r\n", cl, extra),
			  sizeof(buf));
}

int http1s_write_reply(struct tls_conn *c, int status, const char *ctype, int64_t len,
		       const char *extra, bool keep)
{
	char buf[HTTP1S_HEAD_MAX];

	extra = extra ? extra : "";
	if (status < 200 || status > 599 || len < 0 || (ctype && !token_ok(ctype, false)) ||
	    !extra_ok(extra))
		return -EINVAL;
	return write_head(c, buf, snprintf(buf, sizeof(buf), "HTTP/1.1 %d %s\r\n%s%s%s"
					   "Content-Length: %lld\r\n%s%s\r\n",
					   status, http1_reason(status), ctype ? "Content-Type: " : "",
					   ctype ? ctype : "", ctype ? "\r\n" : "",
					   (long long)len, keep ? "" : "Connection: close\r\n", extra),
			  sizeof(buf));
}
