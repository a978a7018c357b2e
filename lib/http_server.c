/* http_server.c — the HTTP/1.1 server of http.h: one epoll loop per thread, each with its
 * own SO_REUSEPORT listener (and a TLS one); per-connection state machines (handshake → head
 * → handler → body → response) over a plain or TLS transport, keep-alive, pipelining, coarse
 * timeouts, a connection limit, graceful drain. */
#include "http.h"
#include "ev.h"
#include "log.h"
#include "netaddr.h"
#include "transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define TICK_MS			250	/* timeout resolution */
#define DEF_HEADER_TIMEOUT_MS	10000
#define DEF_IDLE_TIMEOUT_MS	60000
#define DEF_IO_TIMEOUT_MS	30000
#define DEF_MAX_CONNS		4096
#define MAX_THREADS		256
#define LISTEN_BACKLOG		1024
#define ACCEPT_BATCH		64	/* accepts per listener event, for fairness */
#define ACCEPT_PAUSE_MS		250	/* listener rest after EMFILE and friends */
#define BUSY_LOG_MS		1000	/* one "over max_conns" warning per loop per second */
#define CONN_POOL_MAX		64	/* freed connections kept for reuse, per loop */
#define CONN_RUN_BUDGET		(1 << 20)	/* bytes moved for one conn before yielding */
#define REQ_COST		(16 << 10)	/* budget charged per request (pipelining) */
#define LINGER_MS		2000	/* after a closing response, drain the peer's leftovers */
#define LINGER_MAX_BYTES	(1 << 20)
#define STATUS_RESERVE		64	/* room for the status line ahead of the headers */
#define XHDR_MAX		256	/* Date, Server, Content-Length, Connection */
#define HDR_VALUE_MAX		8192	/* one http_resp_headerf() value */
#define BODYF_MIN		256	/* first guess for http_resp_bodyf() */
#define STREAM_CHUNK_MAX	(1 << 20)	/* bytes asked of a body source per call */
#define DISCARD_MAX		4096	/* request bytes read off a refused connection */
#define ADDR_MAX		NET_ADDR_MAX
#define DATE_MAX		64
#define THREAD_NAME_MAX		16
#define TLS_LOG_WINDOW_MS	1000	/* failed handshakes: at most TLS_LOG_MAX lines per loop */
#define TLS_LOG_MAX		5	/* ... and window, the rest counted in the next line */
#define TLS_ERR_MAX		160

#define container_of(p, type, member) ((type *)(void *)((char *)(p) - offsetof(type, member)))

static const char continue_msg[] = "HTTP/1.1 100 Continue\r\n\r\n";
static const char busy_msg[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
			       "Connection: close\r\n\r\n";

enum body_state { BODY_NONE, BODY_WAIT, BODY_READ, BODY_DONE, BODY_ABORT };
enum resp_state { RESP_NONE, RESP_BUILD, RESP_WRITE, RESP_STREAM };

struct loop;

struct conn_post {
	struct ev_post ev;
	struct http_conn *c;
	void (*fn)(struct http_conn *c, void *arg);
	void *arg;
	bool embedded;
};

struct http_conn {
	struct ev_io io;		/* fd -1 once closed */
	struct transport tp;		/* reads and writes io.fd, plain or TLS */
	struct loop *loop;
	struct http_conn *prev, *next;	/* the loop's live list, then pool/graveyard */
	char peer[ADDR_MAX];
	uint64_t deadline;		/* ms, 0 = none */
	int budget, dead_err;
	bool running, again, readable, writable, in_req, linger, close_after, resp_close;
	bool cont_wanted;	/* the handler asked for the body: a 100 is owed */
	bool freed, parse_needed, resp_oom, yield_pending;
	bool shut_pending;	/* linger: our end (close_notify, FIN) is still to go out */
	/* the request; req and the head bytes of in[] live until the response is sent */
	size_t in_len, head_len, body_pos, cont_left, linger_bytes;
	enum body_state body;
	int64_t body_left;
	struct http_chunked chunk;
	struct http_body_sink sink;
	/* the response: out = [status reserve | headers | body] */
	enum resp_state resp;
	int status;
	int64_t cl_override, stream_left;
	char *out;
	size_t out_len, out_cap, hdr_end;
	char xhdr[XHDR_MAX];
	struct iovec iov[3];
	int iov_idx;
	struct http_body_source src;
	http_body_read_fn src_read;	/* TLS: the body through a buffer */
	/* work handed back from other threads; the conn is not freed while posts > 0 */
	atomic_int posts;
	atomic_bool post_busy;
	struct conn_post post;
	struct ev_post yield_ev;
	/* figures for cfg.on_done: start (CLOCK_MONOTONIC ns), body bytes in and out */
	uint64_t req_t0, req_in, req_out, resp_body_len;
	void *udata;
	struct http_req req;
	char in[HTTP_IN_BUF];
};

struct loop {
	struct http_server *srv;
	int idx;
	struct ev_loop *ev;
	struct ev_io lio;		/* the listener; fd -1 when closed */
	struct ev_io tlio;		/* the TLS listener; fd -1 when closed or none */
	struct tls_loop *tls;		/* this thread's TLS config and keys */
	uint64_t tls_log_at;		/* rate limit of tls_handshake_failed lines */
	int tls_logged;
	unsigned tls_dropped;
	pthread_t thread;
	bool started, stopping;
	int run_err;
	struct http_conn *conns, *pool, *grave;
	int npool;
	char *scratch;
	time_t date_sec;
	char date[DATE_MAX];
	uint64_t drain_deadline, accept_resume, busy_logged;
};

struct http_server {
	struct http_server_config cfg;
	char *listen_str, *tls_listen_str;
	char addr[ADDR_MAX], tls_addr[ADDR_MAX];
	int nloops;
	struct loop *loops;
	bool listening;
	atomic_int nconns;
	atomic_bool stop;
	atomic_int drain_ms;
};

static void conn_run(struct http_conn *c);

static uint64_t now_ms(const struct http_conn *c)
{
	return ev_now_ms(c->loop->ev);
}

/* Request latency needs more than the loop's cached millisecond clock. */
static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* --- connection lifetime --- */

static size_t conn_size(const struct http_server *srv)
{
	size_t a = _Alignof(max_align_t), base = (sizeof(struct http_conn) + a - 1) / a * a;

	return base + srv->cfg.conn_udata_size;
}

static struct http_conn *conn_alloc(struct loop *l)
{
	struct http_conn *c = l->pool;
	struct transport tp;
	char *out;
	size_t cap;

	if (c) {
		l->pool = c->next;
		l->npool--;
	} else if (!(c = malloc(conn_size(l->srv)))) {
		return NULL;
	} else {
		c->out = NULL;
		transport_init(&c->tp);
	}
	out = c->out;
	cap = HTTP_OUT_BUF;
	if (!out && !(out = malloc(cap))) {
		transport_fini(&c->tp);
		free(c);
		return NULL;
	}
	tp = c->tp;	/* a reused connection keeps its TLS session and buffer */
	memset(c, 0, offsetof(struct http_conn, req));
	c->tp = tp;
	atomic_init(&c->posts, 0);
	atomic_init(&c->post_busy, false);
	c->out = out;
	c->out_cap = cap;
	c->loop = l;
	c->post.embedded = true;
	c->udata = (char *)c + (conn_size(l->srv) - l->srv->cfg.conn_udata_size);
	memset(c->udata, 0, l->srv->cfg.conn_udata_size);
	return c;
}

static void conn_link(struct loop *l, struct http_conn *c)
{
	c->prev = NULL;
	c->next = l->conns;
	if (l->conns)
		l->conns->prev = c;
	l->conns = c;
}

static void conn_unlink(struct loop *l, struct http_conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		l->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
}

/* Frees are deferred to the end of the event batch: a later event of the same batch may
 * still name this connection. */
static void conn_maybe_free(struct http_conn *c)
{
	struct loop *l = c->loop;

	if (c->running || c->io.fd >= 0 || c->in_req || c->freed || atomic_load(&c->posts))
		return;
	c->freed = true;
	conn_unlink(l, c);
	c->next = l->grave;
	l->grave = c;
}

static void conn_destroy(struct http_conn *c)
{
	transport_fini(&c->tp);
	free(c->out);
	free(c);
}

static void loop_reap(struct loop *l)
{
	while (l->grave) {
		struct http_conn *c = l->grave;

		l->grave = c->next;
		if (l->npool < CONN_POOL_MAX) {
			c->next = l->pool;
			l->pool = c;
			l->npool++;
		} else {
			conn_destroy(c);
		}
	}
}

/* Closes the socket now; a request in progress is wound up by dead_step() (called from
 * conn_run), since that calls back into the handler. */
static void conn_close(struct http_conn *c, const char *why, int err)
{
	if (c->io.fd < 0)
		return;
	log_debug("http_close peer=%s reason=%s in_request=%d", c->peer, why, c->in_req);
	(void)why;
	if (close(c->io.fd) < 0)
		log_warn("http_close_failed peer=%s", c->peer);
	c->io.fd = -1;
	transport_detach(&c->tp);
	c->dead_err = err;
	c->linger = false;
	c->deadline = 0;
	atomic_fetch_sub(&c->loop->srv->nconns, 1);
	c->again = true;
}

static void yield_run(void *arg)
{
	struct http_conn *c = arg;

	c->yield_pending = false;
	atomic_fetch_sub(&c->posts, 1);
	conn_run(c);
}

/* Out of budget with work left: continue after the loop has served the others. Edge-
 * triggered epoll will not report this socket again, so queue ourselves. */
static void conn_yield(struct http_conn *c)
{
	if (c->yield_pending)
		return;
	c->yield_pending = true;
	atomic_fetch_add(&c->posts, 1);
	c->yield_ev.fn = yield_run;
	c->yield_ev.arg = c;
	ev_post(c->loop->ev, &c->yield_ev);
}

/* --- the response --- */

static const char *reason_phrase(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 412: return "Precondition Failed";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 416: return "Range Not Satisfiable";
	case 417: return "Expectation Failed";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	case 507: return "Insufficient Storage";
	}
	return status < 400 ? "OK" : status < 500 ? "Client Error" : "Server Error";
}

/* IMF-fixdate, formatted by hand: strftime's day and month names follow the locale. */
static const char *loop_date(struct loop *l)
{
	static const char wday[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char mon[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	if (ts.tv_sec == l->date_sec && l->date[0])
		return l->date;
	l->date_sec = ts.tv_sec;
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(l->date, sizeof(l->date), "%s, %02d %s %04d %02d:%02d:%02d GMT",
		 wday[tm.tm_wday % 7], tm.tm_mday, mon[tm.tm_mon % 12], tm.tm_year + 1900,
		 tm.tm_hour, tm.tm_min, tm.tm_sec);
	return l->date;
}

static bool out_reserve(struct http_conn *c, size_t need)
{
	size_t cap = c->out_cap;
	char *p;

	if (c->out_len + need <= cap)
		return true;
	if (c->resp_oom)
		return false;
	while (cap < c->out_len + need)
		cap *= 2;
	if (!(p = realloc(c->out, cap))) {
		log_warnx("http_out_oom peer=%s bytes=%zu", c->peer, cap);
		c->resp_oom = true;
		return false;
	}
	c->out = p;
	c->out_cap = cap;
	return true;
}

static void out_trim(struct http_conn *c)
{
	char *p;

	c->out_len = c->hdr_end = 0;
	if (c->out_cap <= HTTP_OUT_BUF)
		return;
	if ((p = realloc(c->out, HTTP_OUT_BUF))) {
		c->out = p;
		c->out_cap = HTTP_OUT_BUF;
	}
}

static bool resp_building(struct http_conn *c, const char *what)
{
	if (c->in_req && c->resp == RESP_BUILD)
		return true;
	log_warnx("http_resp_misuse call=%s peer=%s in_request=%d state=%d",
		  what, c->peer, c->in_req, (int)c->resp);
	return false;
}

void http_resp_status(struct http_conn *c, int status)
{
	if (!c->in_req || (c->resp != RESP_NONE && c->resp != RESP_BUILD)) {
		resp_building(c, "status");
		return;
	}
	c->resp = RESP_BUILD;
	c->status = status;
	c->resp_oom = false;
	c->cl_override = -1;
	c->out_len = c->hdr_end = STATUS_RESERVE;
}

static void hdr_append(struct http_conn *c, const char *name, const char *value, size_t vlen)
{
	size_t nlen = strlen(name), need = nlen + vlen + 4;
	char *p;

	if (!out_reserve(c, need))
		return;
	p = c->out + c->hdr_end;
	/* A header after body bytes: shift the body (rare; handlers set headers first). */
	if (c->out_len > c->hdr_end)
		memmove(p + need, p, c->out_len - c->hdr_end);
	memcpy(p, name, nlen);
	memcpy(p + nlen, ": ", 2);
	memcpy(p + nlen + 2, value, vlen);
	memcpy(p + nlen + 2 + vlen, "\r\n", 2);
	c->hdr_end += need;
	c->out_len += need;
}

/* The server owns framing headers; a handler setting one is folded into our own. */
static bool framing_header(struct http_conn *c, const char *name, const char *value)
{
	if (!strcasecmp(name, "Connection")) {
		if (strcasestr(value, "close"))
			c->close_after = true;
		return true;
	}
	if (!strcasecmp(name, "Content-Length")) {
		char *end;
		long long v = strtoll(value, &end, 10);

		if (end != value && !*end && v >= 0)
			c->cl_override = v;
		return true;
	}
	return !strcasecmp(name, "Date") || !strcasecmp(name, "Server") ||
	       !strcasecmp(name, "Transfer-Encoding");
}

static void header_checked(struct http_conn *c, const char *name, const char *value, size_t vlen)
{
	/* CR/LF in a header would let a client-supplied string split the response. */
	if (!*name || strpbrk(name, "\r\n: \t") || memchr(value, '\r', vlen) ||
	    memchr(value, '\n', vlen)) {
		log_warnx("http_resp_bad_header peer=%s name=%.40s", c->peer, name);
		return;
	}
	if (!framing_header(c, name, value))
		hdr_append(c, name, value, vlen);
}

void http_resp_header(struct http_conn *c, const char *name, const char *value)
{
	if (resp_building(c, "header"))
		header_checked(c, name, value, strlen(value));
}

void http_resp_headerf(struct http_conn *c, const char *name, const char *fmt, ...)
{
	char value[HDR_VALUE_MAX];
	va_list ap;
	int n;

	if (!resp_building(c, "headerf"))
		return;
	va_start(ap, fmt);
	n = vsnprintf(value, sizeof(value), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(value)) {
		log_warnx("http_resp_header_too_long peer=%s name=%.40s", c->peer, name);
		return;
	}
	header_checked(c, name, value, (size_t)n);
}

void http_resp_body(struct http_conn *c, const void *buf, size_t len)
{
	if (!resp_building(c, "body") || !len || !out_reserve(c, len))
		return;
	memcpy(c->out + c->out_len, buf, len);
	c->out_len += len;
}

void http_resp_bodyf(struct http_conn *c, const char *fmt, ...)
{
	size_t room;
	va_list ap;
	int n;

	if (!resp_building(c, "bodyf") || !out_reserve(c, BODYF_MIN))
		return;
	room = c->out_cap - c->out_len;
	va_start(ap, fmt);
	n = vsnprintf(c->out + c->out_len, room, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= room) {
		if (!out_reserve(c, (size_t)n + 1))
			return;
		va_start(ap, fmt);
		n = vsnprintf(c->out + c->out_len, (size_t)n + 1, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
	}
	c->out_len += (size_t)n;
}

void http_resp_close(struct http_conn *c)
{
	c->close_after = true;
}

void http_resp_content_length(struct http_conn *c, int64_t len)
{
	if (resp_building(c, "content_length"))
		c->cl_override = len;
}

static bool status_has_body(int status)
{
	return status >= 200 && status != 204 && status != 304;
}

/* Whether the connection can carry another request after this response. Unread body
 * bytes that are already buffered in full are skipped instead of forcing a close. */
static bool resp_must_close(struct http_conn *c)
{
	if (c->body == BODY_WAIT && !c->req.chunked &&
	    (int64_t)(c->in_len - c->body_pos) >= c->body_left) {
		c->body_pos += (size_t)c->body_left;
		c->body = BODY_DONE;
	}
	if (c->body == BODY_READ)
		c->body = BODY_ABORT;	/* answered mid-body: stop reading, end() is not called */
	return c->close_after || !c->req.keep_alive || c->body == BODY_WAIT ||
	       c->body == BODY_ABORT || c->loop->stopping;
}

/* Writes the status line into the reserve and the server's headers into xhdr, and lays
 * out the iovecs: [status + handler headers] [server headers] [body]. */
static void resp_prepare(struct http_conn *c, int64_t cl, size_t body_len)
{
	char line[STATUS_RESERVE];
	size_t sl, xlen;

	if (c->status < 100 || c->status > 999)
		c->status = 500;
	sl = (size_t)snprintf(line, sizeof(line), "HTTP/1.1 %d %.40s\r\n", c->status,
			      reason_phrase(c->status));
	memcpy(c->out + STATUS_RESERVE - sl, line, sl);
	c->resp_close = resp_must_close(c);
	/* Answered before the body was asked for: no 100 is needed. Once the handler asked
	 * for the body, the 100 goes out even if the body is empty: botocore otherwise takes
	 * the final status for the interim one and desyncs the keep-alive connection. */
	if (c->cont_left == sizeof(continue_msg) - 1 && !c->cont_wanted)
		c->cont_left = 0;
	xlen = (size_t)snprintf(c->xhdr, sizeof(c->xhdr), "Date: %s\r\nServer: Cairn\r\n",
				loop_date(c->loop));
	/* None for 1xx/204 (forbidden) nor 304 (it would have to be the 200's length). */
	if (status_has_body(c->status))
		xlen += (size_t)snprintf(c->xhdr + xlen, sizeof(c->xhdr) - xlen,
					 "Content-Length: %lld\r\n", (long long)cl);
	if (c->resp_close)
		xlen += (size_t)snprintf(c->xhdr + xlen, sizeof(c->xhdr) - xlen, "Connection: close\r\n");
	else if (c->req.minor == 0)
		xlen += (size_t)snprintf(c->xhdr + xlen, sizeof(c->xhdr) - xlen, "Connection: keep-alive\r\n");
	memcpy(c->xhdr + xlen, "\r\n", 2);
	c->iov[0] = (struct iovec){ c->out + STATUS_RESERVE - sl, c->hdr_end - STATUS_RESERVE + sl };
	c->iov[1] = (struct iovec){ c->xhdr, xlen + 2 };
	c->iov[2] = (struct iovec){ c->out + c->hdr_end, body_len };
	c->iov_idx = 0;
	c->deadline = now_ms(c) + (uint64_t)c->loop->srv->cfg.io_timeout_ms;
}

/* Common checks of http_resp_send / http_resp_stream; false when there is no response in
 * the making (the call is a handler bug and is ignored). */
static bool resp_finalize(struct http_conn *c, const char *what)
{
	if (c->in_req && c->resp == RESP_NONE) {
		log_warnx("http_resp_no_status call=%s peer=%s", what, c->peer);
		http_resp_status(c, 500);
	}
	if (!resp_building(c, what))
		return false;
	if (c->resp_oom) {
		c->status = 500;
		c->out_len = c->hdr_end = STATUS_RESERVE;
		c->close_after = true;
		c->resp_oom = false;
	}
	return true;
}

static void conn_kick(struct http_conn *c)
{
	if (c->running)
		c->again = true;
	else
		conn_run(c);
}

void http_resp_send(struct http_conn *c)
{
	size_t body_len;
	int64_t cl;
	bool send_body;

	if (!resp_finalize(c, "send"))
		return;
	body_len = c->out_len - c->hdr_end;
	send_body = c->req.method != HTTP_HEAD && status_has_body(c->status);
	cl = (int64_t)body_len;
	if (c->cl_override >= 0 && c->req.method == HTTP_HEAD)
		cl = c->cl_override;
	else if (send_body && c->cl_override >= 0 && c->cl_override != cl)
		log_warnx("http_resp_length_mismatch peer=%s set=%lld body=%zu",
			  c->peer, (long long)c->cl_override, body_len);
	resp_prepare(c, cl, send_body ? body_len : 0);
	c->resp_body_len = send_body ? body_len : 0;
	c->resp = RESP_WRITE;
	conn_kick(c);
}

void http_resp_stream(struct http_conn *c, int64_t len, const struct http_body_source *src)
{
	http_resp_stream_rd(c, len, src, NULL);
}

void http_resp_stream_rd(struct http_conn *c, int64_t len, const struct http_body_source *src,
			 http_body_read_fn read)
{
	if (!resp_finalize(c, "stream")) {
		src->done(src->ctx, -EINVAL);
		return;
	}
	if (transport_is_tls(&c->tp) && !read) {
		log_warnx("http_stream_needs_read peer=%s", c->peer);
		src->done(src->ctx, -EOPNOTSUPP);
		c->status = 500;
		c->out_len = c->hdr_end = STATUS_RESERVE;
		c->close_after = true;
		http_resp_send(c);
		return;
	}
	c->src = *src;
	c->src_read = read;
	c->out_len = c->hdr_end;	/* the body comes from src only */
	resp_prepare(c, len, 0);
	c->stream_left = c->req.method == HTTP_HEAD || !status_has_body(c->status) ? 0 : len;
	c->resp = RESP_STREAM;
	conn_kick(c);
}

/* --- the connection state machine --- */

/* Reports the request to cfg.on_done (if any) and forgets it. */
static void req_end(struct http_conn *c)
{
	const struct http_server_config *cfg = &c->loop->srv->cfg;

	if (cfg->on_done) {
		struct http_req_stats st = { .status = c->status, .bytes_in = c->req_in,
					     .bytes_out = c->req_out,
					     .duration_ns = mono_ns() - c->req_t0 };

		cfg->on_done(c, &st, cfg->ud);
	}
	c->in_req = false;
	c->resp = RESP_NONE;
	c->body = BODY_NONE;
	c->cont_left = 0;
	out_trim(c);
}

/* After a closing response the peer may still be sending (a body we did not want); a
 * close() with unread bytes would reset the connection and could destroy the response
 * in flight, so half-close and drain for a while first. */
static void start_linger(struct http_conn *c)
{
	if (c->loop->stopping) {
		conn_close(c, "response_close", 0);
		return;
	}
	c->linger = true;
	c->shut_pending = true;
	c->in_len = 0;
	c->linger_bytes = 0;
	c->deadline = now_ms(c) + LINGER_MS;
	c->again = true;
}

/* The transport said -EAGAIN: wait for the direction it needs. */
static void blocked(struct http_conn *c)
{
	if (transport_wants_write(&c->tp))
		c->writable = false;
	else
		c->readable = false;
}

static void linger_step(struct http_conn *c)
{
	if (c->shut_pending) {
		int err = transport_shutdown(&c->tp);

		if (err == -EAGAIN) {
			blocked(c);
			return;
		}
		if (err < 0) {
			conn_close(c, "response_close", 0);
			return;
		}
		c->shut_pending = false;
	}
	/* What follows is discarded: read the socket itself, under any TLS. */
	while (c->readable) {
		ssize_t n = recv(c->io.fd, c->in, sizeof(c->in), 0);

		if (n > 0 && (c->linger_bytes += (size_t)n) <= LINGER_MAX_BYTES)
			continue;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			c->readable = false;
			return;
		}
		conn_close(c, "response_close", 0);
		return;
	}
}

/* The response is out: close, or move pipelined leftovers to the front and parse them
 * right away (they may be a complete request already, with no epoll event to come). */
static void resp_complete(struct http_conn *c)
{
	const struct http_server_config *cfg = &c->loop->srv->cfg;
	bool closing = c->resp_close;
	size_t rest = c->in_len - c->body_pos;

	if (c->resp == RESP_STREAM)
		c->src.done(c->src.ctx, 0);
	else
		c->req_out += c->resp_body_len;
	req_end(c);
	c->budget -= REQ_COST;
	if (closing) {
		start_linger(c);
		return;
	}
	memmove(c->in, c->in + c->body_pos, rest);
	c->in_len = rest;
	c->parse_needed = rest > 0;
	c->deadline = now_ms(c) + (uint64_t)(rest ? cfg->header_timeout_ms : cfg->idle_timeout_ms);
	c->again = true;
}

static int write_error(struct http_conn *c, int err)
{
	if (err == -EAGAIN) {
		blocked(c);
		return 0;
	}
	conn_close(c, "write_error", err);
	return -1;
}

static int send_continue(struct http_conn *c)
{
	struct iovec v = { (char *)continue_msg + sizeof(continue_msg) - 1 - c->cont_left,
			   c->cont_left };
	ssize_t n = transport_writev(&c->tp, &v, 1);

	if (n < 0)
		return write_error(c, (int)n);
	c->cont_left -= (size_t)n;
	if (c->cont_left)
		c->writable = false;
	return c->cont_left ? 0 : 1;
}

/* TLS: what the transport buffered goes out before the response counts as sent. 1 when
 * empty, 0 blocked, -1 closed. */
static int out_flush(struct http_conn *c)
{
	size_t before = transport_pending(&c->tp);
	int err = transport_flush(&c->tp);

	if (transport_pending(&c->tp) < before)
		c->deadline = now_ms(c) + (uint64_t)c->loop->srv->cfg.io_timeout_ms;
	return err < 0 ? write_error(c, err) : 1;
}

static void iov_advance(struct http_conn *c, size_t n)
{
	for (; c->iov_idx < 3; c->iov_idx++) {
		struct iovec *v = &c->iov[c->iov_idx];

		if (n < v->iov_len) {
			v->iov_base = (char *)v->iov_base + n;
			v->iov_len -= n;
			return;
		}
		n -= v->iov_len;
	}
}

/* 1 when all of status, headers and buffered body are out; 0 blocked; -1 closed. */
static int flush_iov(struct http_conn *c)
{
	iov_advance(c, 0);
	while (c->iov_idx < 3) {
		ssize_t n = transport_writev(&c->tp, c->iov + c->iov_idx, 3 - c->iov_idx);

		if (n < 0)
			return write_error(c, (int)n);
		c->deadline = now_ms(c) + (uint64_t)c->loop->srv->cfg.io_timeout_ms;
		iov_advance(c, (size_t)n);
	}
	return 1;
}

/* TLS: the source fills the transport's empty buffer, which then goes out as records. */
static int stream_tls(struct http_conn *c)
{
	while (c->stream_left > 0) {
		size_t room, max;
		ssize_t n;
		char *buf;

		if (c->budget <= 0) {
			conn_yield(c);
			return 0;
		}
		if (out_flush(c) <= 0)
			return 0;
		buf = transport_space(&c->tp, &room);
		max = c->stream_left < (int64_t)room ? (size_t)c->stream_left : room;
		n = c->src_read(c->src.ctx, buf, max);
		if (n <= 0 || (size_t)n > max) {
			conn_close(c, "stream_error", n < 0 ? (int)n : -EIO);
			return -1;
		}
		transport_commit(&c->tp, (size_t)n);
		c->stream_left -= n;
		c->req_out += (uint64_t)n;
		c->budget -= (int)n;
	}
	return out_flush(c);
}

static int stream_some(struct http_conn *c)
{
	if (transport_is_tls(&c->tp))
		return stream_tls(c);
	while (c->stream_left > 0) {
		size_t max = c->stream_left < STREAM_CHUNK_MAX ? (size_t)c->stream_left : STREAM_CHUNK_MAX;
		ssize_t n;

		if (c->budget <= 0) {
			conn_yield(c);
			return 0;
		}
		n = c->src.send(c->src.ctx, c->io.fd, max);
		if (n == -EAGAIN) {
			c->writable = false;
			return 0;
		}
		if (n <= 0 || (size_t)n > max) {
			conn_close(c, "stream_error", n < 0 ? (int)n : -EIO);
			return -1;
		}
		c->stream_left -= n;
		c->req_out += (uint64_t)n;
		c->budget -= (int)n;
		c->deadline = now_ms(c) + (uint64_t)c->loop->srv->cfg.io_timeout_ms;
	}
	return 1;
}

static void out_step(struct http_conn *c)
{
	if (c->cont_left && send_continue(c) <= 0)
		return;
	if (c->resp != RESP_WRITE && c->resp != RESP_STREAM) {
		out_flush(c);	/* a 100 Continue left in the TLS buffer */
		return;
	}
	if (flush_iov(c) <= 0)
		return;
	if (c->resp == RESP_STREAM && stream_some(c) <= 0)
		return;
	if (out_flush(c) <= 0)
		return;
	resp_complete(c);
}

static void body_fail(struct http_conn *c, int err)
{
	c->body = BODY_ABORT;
	c->close_after = true;
	c->deadline = 0;
	c->sink.end(c->sink.ctx, err);
}

/* Decodes the chunked bytes at body_pos in place: payload runs are moved down over the
 * framing already consumed, so the sink gets one contiguous piece per read. */
static int chunk_decode(struct http_conn *c, size_t *out_n, bool *done)
{
	char *dst = c->in + c->body_pos;
	size_t pos = c->body_pos, n = 0;

	while (pos < c->in_len && !*done) {
		const char *run;
		size_t run_len;
		ssize_t r = http_chunked_feed(&c->chunk, c->in + pos, c->in_len - pos,
					      &run, &run_len, done);

		if (r < 0) {
			*out_n = n;
			c->body_pos = c->in_len;
			return -1;
		}
		if (run_len)
			memmove(dst + n, run, run_len);
		n += run_len;
		pos += (size_t)r;
	}
	c->body_pos = pos;
	*out_n = n;
	return 0;
}

static void body_deliver(struct http_conn *c)
{
	const char *p = c->in + c->body_pos;
	size_t n, avail = c->in_len - c->body_pos;
	bool done = false;
	int bad = 0;

	if (c->req.chunked) {
		bad = chunk_decode(c, &n, &done);
	} else {
		n = (int64_t)avail < c->body_left ? avail : (size_t)c->body_left;
		c->body_left -= (int64_t)n;
		c->body_pos += n;
		done = c->body_left == 0;
	}
	c->budget -= (int)n;
	c->req_in += n;
	if (n && (c->sink.data(c->sink.ctx, p, n) < 0 || c->body != BODY_READ)) {
		/* The handler stopped the body (and answers itself): no end() call. */
		if (c->body == BODY_READ)
			c->body = BODY_ABORT;
		c->close_after = true;
		return;
	}
	if (bad) {
		log_debug("http_bad_chunked peer=%s", c->peer);
		body_fail(c, -EBADMSG);
	} else if (done) {
		c->body = BODY_DONE;
		c->deadline = 0;
		c->sink.end(c->sink.ctx, 0);
	}
}

static void body_step(struct http_conn *c)
{
	while (c->body == BODY_READ && c->io.fd >= 0) {
		ssize_t n;

		if (c->body_pos < c->in_len) {
			body_deliver(c);
			continue;
		}
		c->in_len = c->body_pos = c->head_len;	/* all consumed: reuse the space */
		if (!c->readable)
			return;
		if (c->budget <= 0) {
			conn_yield(c);
			return;
		}
		n = transport_recv(&c->tp, c->in + c->in_len, sizeof(c->in) - c->in_len);
		if (n > 0) {
			c->in_len += (size_t)n;
			c->deadline = now_ms(c) + (uint64_t)c->loop->srv->cfg.io_timeout_ms;
		} else if (n == 0) {
			body_fail(c, -ECONNRESET);
		} else if (n == -EAGAIN) {
			blocked(c);
			return;
		} else {
			conn_close(c, "read_error", (int)n);
		}
	}
}

static void req_begin(struct http_conn *c, size_t head_len)
{
	c->in_req = true;
	c->head_len = c->body_pos = head_len;
	c->resp = RESP_NONE;
	c->status = 0;
	c->close_after = c->resp_oom = false;
	c->cl_override = -1;
	c->cont_left = 0;
	c->cont_wanted = false;
	c->deadline = 0;	/* the handler's time is its own business */
	c->body = BODY_NONE;
	c->req_in = c->req_out = c->resp_body_len = 0;
	if (c->loop->srv->cfg.on_done)
		c->req_t0 = mono_ns();
}

static void dispatch(struct http_conn *c, size_t head_len)
{
	struct http_server *srv = c->loop->srv;

	req_begin(c, head_len);
	if (c->req.chunked) {
		c->body = BODY_WAIT;
		http_chunked_init(&c->chunk);
	} else if (c->req.content_length > 0) {
		c->body = BODY_WAIT;
		c->body_left = c->req.content_length;
	}
	srv->cfg.on_request(c, &c->req, srv->cfg.ud);
}

static void default_error(struct http_conn *c, int status, const char *reason, void *ud)
{
	(void)ud;
	http_resp_status(c, status);
	http_resp_header(c, "Content-Type", "text/plain");
	http_resp_bodyf(c, "%s\n", reason);
	http_resp_send(c);
}

static void parse_error(struct http_conn *c, int err)
{
	static const struct { int err, status; const char *reason; } map[] = {
		{ HTTP_PARSE_TOO_LARGE, 431, "RequestHeaderSectionTooLarge" },
		{ HTTP_PARSE_URI_TOO_LONG, 414, "UriTooLong" },
		{ HTTP_PARSE_VERSION, 505, "HttpVersionNotSupported" },
		{ HTTP_PARSE_TE, 501, "NotImplemented" },
	};
	struct http_server *srv = c->loop->srv;
	int status = 400;
	const char *reason = "BadRequest";

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (map[i].err == err) {
			status = map[i].status;
			reason = map[i].reason;
		}
	log_debug("http_bad_request peer=%s status=%d", c->peer, status);
	req_begin(c, 0);
	c->req.method = HTTP_OTHER;	/* so that the error body is sent */
	c->req.keep_alive = false;
	c->close_after = true;
	(srv->cfg.on_error ? srv->cfg.on_error : default_error)(c, status, reason, srv->cfg.ud);
}

/* One line per failed handshake, at most TLS_LOG_MAX a window per loop. */
static void tls_fail_log(struct http_conn *c, const char *reason)
{
	struct loop *l = c->loop;
	uint64_t now = ev_now_ms(l->ev);
	char msg[TLS_ERR_MAX];

	if (now >= l->tls_log_at + TLS_LOG_WINDOW_MS) {
		l->tls_log_at = now;
		l->tls_logged = 0;
	}
	if (l->tls_logged >= TLS_LOG_MAX) {
		l->tls_dropped++;
		return;
	}
	l->tls_logged++;
	transport_strerror(&c->tp, msg, sizeof(msg));
	log_warnx("tls_handshake_failed peer=%s reason=%s error=\"%s\" suppressed=%u", c->peer,
		  reason, msg, l->tls_dropped);
	l->tls_dropped = 0;
}

/* 1 once the handshake is done (at once for plain), 0 waiting, -1 failed (closed). */
static int handshake_step(struct http_conn *c)
{
	int err;

	if (!transport_handshaking(&c->tp))
		return 1;
	err = transport_handshake(&c->tp);
	if (err == -EAGAIN) {
		blocked(c);
		return 0;
	}
	if (err < 0 && !transport_heard(&c->tp)) {
		conn_close(c, "tls_no_hello", err);	/* a connect-and-close probe */
		return -1;
	}
	if (err < 0) {
		tls_fail_log(c, err == -ECONNRESET ? "eof" : "error");
		conn_close(c, "tls_handshake_failed", err);
		return -1;
	}
	log_debug("tls_handshake_done peer=%s", c->peer);
	/* The head gets its own header timeout, as on a fresh plain connection. */
	c->deadline = now_ms(c) + (uint64_t)c->loop->srv->cfg.header_timeout_ms;
	return 1;
}

static void head_step(struct http_conn *c)
{
	if (handshake_step(c) <= 0)
		return;
	for (;;) {
		ssize_t n;

		if (c->parse_needed) {
			int r = http_parse_head(c->in, c->in_len, &c->req);

			c->parse_needed = false;
			if (r > 0)
				dispatch(c, (size_t)r);
			else if (r < 0)
				parse_error(c, r);
			if (r != 0)
				return;
		}
		if (!c->readable)
			return;
		n = transport_recv(&c->tp, c->in + c->in_len, sizeof(c->in) - c->in_len);
		if (n > 0) {
			if (c->in_len == 0)
				c->deadline = now_ms(c) + (uint64_t)c->loop->srv->cfg.header_timeout_ms;
			c->in_len += (size_t)n;
			c->parse_needed = true;
		} else if (n == 0) {
			conn_close(c, c->in_len ? "eof_in_head" : "eof", 0);
			return;
		} else if (n == -EAGAIN) {
			blocked(c);
			return;
		} else {
			conn_close(c, "read_error", (int)n);
			return;
		}
	}
}

/* The socket is gone while a request is in progress: tell the handler, discard its
 * response, and let the connection be freed once the handler is done with it. */
static void dead_step(struct http_conn *c)
{
	int err = c->dead_err ? c->dead_err : -ECONNRESET;

	if (!c->in_req)
		return;
	if (c->body == BODY_READ)
		body_fail(c, err);
	if (c->resp == RESP_STREAM) {
		c->resp = RESP_NONE;
		c->src.done(c->src.ctx, err);
		req_end(c);
	} else if (c->resp == RESP_WRITE) {
		req_end(c);
	}
}

static void req_step(struct http_conn *c)
{
	if (c->body == BODY_READ)
		body_step(c);
	if (c->io.fd >= 0 && c->writable && (c->cont_left || c->resp == RESP_WRITE ||
					       c->resp == RESP_STREAM || transport_pending(&c->tp)))
		out_step(c);
}

static void conn_run(struct http_conn *c)
{
	if (c->running) {
		c->again = true;
		return;
	}
	c->running = true;
	c->budget = CONN_RUN_BUDGET;
	do {
		c->again = false;
		if (c->io.fd < 0)
			dead_step(c);
		else if (c->linger)
			linger_step(c);
		else if (!c->in_req && c->budget <= 0)
			conn_yield(c);	/* many pipelined requests: let the others in */
		else if (!c->in_req)
			head_step(c);
		else
			req_step(c);
	} while (c->again);
	c->running = false;
	conn_maybe_free(c);
}

static void conn_on_event(struct ev_io *io, uint32_t events)
{
	struct http_conn *c = container_of(io, struct http_conn, io);

	if (c->freed || c->io.fd < 0)
		return;
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->readable = true;
	if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
		c->writable = true;
	conn_run(c);
}

/* Coarse: checked every TICK_MS by loop_tick(). */
static void conn_timeout(struct http_conn *c)
{
	c->deadline = 0;
	if (c->in_req && c->body == BODY_READ) {
		log_debug("http_timeout peer=%s phase=body", c->peer);
		c->running = true;
		body_fail(c, -ETIMEDOUT);	/* the handler still answers (408-ish) */
		c->running = false;
	} else if (c->linger) {
		conn_close(c, "linger_timeout", 0);
	} else if (transport_handshaking(&c->tp)) {
		tls_fail_log(c, "timeout");
		conn_close(c, "tls_handshake_timeout", -ETIMEDOUT);
	} else if (!c->in_req) {
		conn_close(c, c->in_len ? "header_timeout" : "idle_timeout", -ETIMEDOUT);
	} else {
		conn_close(c, "write_timeout", -ETIMEDOUT);
	}
	conn_run(c);
}

/* --- the handler-facing connection API --- */

void *http_conn_udata(struct http_conn *c)
{
	return c->udata;
}

void *http_conn_scratch(struct http_conn *c)
{
	return c->loop->scratch;
}

const char *http_conn_peer(const struct http_conn *c)
{
	return c->peer;
}

bool http_conn_is_tls(const struct http_conn *c)
{
	return transport_is_tls(&c->tp);
}

void http_conn_read_body(struct http_conn *c, const struct http_body_sink *sink)
{
	if (!c->in_req || (c->body != BODY_WAIT && c->body != BODY_NONE) ||
	    (c->resp != RESP_NONE && c->resp != RESP_BUILD)) {
		log_warnx("http_read_body_misuse peer=%s body=%d", c->peer, (int)c->body);
		sink->end(sink->ctx, -EALREADY);
		return;
	}
	c->sink = *sink;
	if (c->req.expect_continue) {
		c->cont_left = sizeof(continue_msg) - 1;
		c->cont_wanted = true;
	}
	if (c->body == BODY_NONE) {
		c->body = BODY_DONE;
		sink->end(sink->ctx, 0);
		return;
	}
	c->body = BODY_READ;
	c->deadline = now_ms(c) + (uint64_t)c->loop->srv->cfg.io_timeout_ms;
	conn_kick(c);
}

static void post_run(void *arg)
{
	struct conn_post *p = arg;
	struct http_conn *c = p->c;
	void (*fn)(struct http_conn *, void *) = p->fn;
	void *fn_arg = p->arg;

	if (p->embedded)
		atomic_store(&c->post_busy, false);
	else
		free(p);
	/* As in any handler callback, responses only queue work; conn_run does it after. */
	c->running = true;
	fn(c, fn_arg);
	atomic_fetch_sub(&c->posts, 1);
	c->running = false;
	conn_run(c);
}

int http_conn_post(struct http_conn *c, void (*fn)(struct http_conn *c, void *arg), void *arg)
{
	struct conn_post *p = &c->post;

	/* The embedded node covers the usual one-post-at-a-time case without malloc. */
	if (atomic_exchange(&c->post_busy, true)) {
		if (!(p = malloc(sizeof(*p))))
			return -ENOMEM;
		p->embedded = false;
	}
	atomic_fetch_add(&c->posts, 1);
	p->c = c;
	p->fn = fn;
	p->arg = arg;
	p->ev.fn = post_run;
	p->ev.arg = p;
	ev_post(c->loop->ev, &p->ev);
	return 0;
}

/* --- accepting --- */

/* Over max_conns: a best-effort 503 on the fresh socket, which has room for it (not on the
 * TLS listener: there, closing is all a client can understand before a handshake). */
static void reject_busy(struct loop *l, int fd, bool tls)
{
	char discard[DISCARD_MAX];
	uint64_t now = ev_now_ms(l->ev);

	if (now >= l->busy_logged + BUSY_LOG_MS) {
		l->busy_logged = now;
		log_warnx("http_busy max_conns=%d", l->srv->cfg.max_conns);
	}
	/* Reading what already arrived makes close() send FIN rather than RST. */
	if (recv(fd, discard, sizeof(discard), MSG_DONTWAIT) < 0 && errno != EAGAIN)
		log_debug("http_busy_recv_failed errno=%d", errno);
	if (!tls && send(fd, busy_msg, sizeof(busy_msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_debug("http_busy_send_failed errno=%d", errno);
	if (close(fd) < 0)
		log_warn("http_busy_close_failed");
}

static void conn_accept(struct loop *l, int fd, const struct sockaddr_storage *ss, bool tls)
{
	struct http_server *srv = l->srv;
	struct http_conn *c;
	int one = 1;

	if (atomic_fetch_add(&srv->nconns, 1) >= srv->cfg.max_conns) {
		atomic_fetch_sub(&srv->nconns, 1);
		reject_busy(l, fd, tls);
		return;
	}
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 && errno != EOPNOTSUPP)
		log_debug("http_nodelay_failed errno=%d", errno);
	if (!(c = conn_alloc(l)))
		goto fail;
	if (transport_open(&c->tp, fd, tls ? l->tls : NULL) < 0) {
		conn_destroy(c);
		goto fail;
	}
	c->io = (struct ev_io){ fd, conn_on_event };
	net_addr_str(ss, c->peer, sizeof(c->peer));
	if (ev_add(l->ev, &c->io, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET) < 0) {
		conn_destroy(c);
		goto fail;
	}
	c->writable = true;	/* a fresh socket has buffer space: write without waiting */
	c->deadline = ev_now_ms(l->ev) + (uint64_t)srv->cfg.header_timeout_ms;
	conn_link(l, c);
	log_debug("http_accept peer=%s loop=%d tls=%d", c->peer, l->idx, tls);
	return;
fail:
	log_warnx("http_accept_failed reason=no_memory");
	atomic_fetch_sub(&srv->nconns, 1);
	if (close(fd) < 0)
		log_warn("http_close_failed");
}

static void listener_pause(struct loop *l)
{
	if (ev_del(l->ev, &l->lio) < 0 || (l->tlio.fd >= 0 && ev_del(l->ev, &l->tlio) < 0))
		log_warn("http_listener_pause_failed");
	l->accept_resume = ev_now_ms(l->ev) + ACCEPT_PAUSE_MS;
}

static void accept_some(struct loop *l, struct ev_io *io, bool tls)
{
	for (int i = 0; i < ACCEPT_BATCH && io->fd >= 0; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(io->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			conn_accept(l, fd, &ss, tls);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		/* Out of fds or memory: the listener stays readable, so rest it awhile
		 * instead of spinning on it. */
		log_warn("http_accept_failed loop=%d", l->idx);
		listener_pause(l);
		return;
	}
}

static void on_accept(struct ev_io *io, uint32_t events)
{
	(void)events;
	accept_some(container_of(io, struct loop, lio), io, false);
}

static void on_accept_tls(struct ev_io *io, uint32_t events)
{
	(void)events;
	accept_some(container_of(io, struct loop, tlio), io, true);
}

/* --- loops --- */

static void listener_close(struct loop *l)
{
	if (l->lio.fd >= 0 && close(l->lio.fd) < 0)	/* also drops it from the epoll set */
		log_warn("http_listener_close_failed loop=%d", l->idx);
	if (l->tlio.fd >= 0 && close(l->tlio.fd) < 0)
		log_warn("http_listener_close_failed loop=%d tls=1", l->idx);
	l->lio.fd = l->tlio.fd = -1;
}

/* Closing a socket whose request is in progress only marks it; the handler finishes. */
static void close_conns(struct loop *l, bool idle_only, const char *why)
{
	struct http_conn *c = l->conns, *next;

	for (; c; c = next) {
		next = c->next;
		if (idle_only && c->in_req)
			continue;
		conn_close(c, why, -ESHUTDOWN);
		conn_run(c);
	}
}

static void drain_check(struct loop *l)
{
	if (!l->stopping)
		return;
	if (l->conns && ev_now_ms(l->ev) < l->drain_deadline) {
		close_conns(l, true, "shutdown");	/* those that finished meanwhile */
		return;
	}
	close_conns(l, false, "drain_timeout");
	ev_stop(l->ev);
}

static void loop_begin_stop(struct loop *l)
{
	int drain_ms = atomic_load(&l->srv->drain_ms);

	l->stopping = true;
	l->drain_deadline = ev_now_ms(l->ev) + (uint64_t)drain_ms;
	listener_close(l);
	l->accept_resume = 0;
	log_debug("http_loop_stopping loop=%d drain_ms=%d", l->idx, drain_ms);
	drain_check(l);
}

static void loop_wake(void *arg)
{
	struct loop *l = arg;

	if (!l->stopping && atomic_load(&l->srv->stop))
		loop_begin_stop(l);
}

static void loop_batch_end(void *arg)
{
	struct loop *l = arg;

	loop_reap(l);
	if (l->stopping && !l->conns)
		drain_check(l);
}

static void loop_tick(void *arg)
{
	struct loop *l = arg;
	uint64_t now = ev_now_ms(l->ev);
	struct http_conn *c, *next;

	if (l->accept_resume && now >= l->accept_resume && l->lio.fd >= 0) {
		l->accept_resume = 0;
		if (ev_add(l->ev, &l->lio, EPOLLIN) < 0 ||
		    (l->tlio.fd >= 0 && ev_add(l->ev, &l->tlio, EPOLLIN) < 0))
			log_warn("http_listener_resume_failed loop=%d", l->idx);
	}
	for (c = l->conns; c; c = next) {
		next = c->next;
		if (c->deadline && now >= c->deadline)
			conn_timeout(c);
	}
	drain_check(l);
	loop_reap(l);
}

static void *loop_main(void *arg)
{
	struct loop *l = arg;
	char name[THREAD_NAME_MAX];

	snprintf(name, sizeof(name), "http-%d", l->idx);
	pthread_setname_np(pthread_self(), name);
	loop_wake(l);	/* a stop may have come before we ran */
	l->run_err = ev_run(l->ev);
	if (l->run_err < 0) {
		errno = -l->run_err;
		log_error("http_loop_failed loop=%d", l->idx);
	}
	return NULL;
}

static int loop_init(struct http_server *srv, struct loop *l, int idx)
{
	struct ev_hooks hooks = {
		.tick = loop_tick, .wake = loop_wake, .batch_end = loop_batch_end, .arg = l,
	};

	l->srv = srv;
	l->idx = idx;
	l->lio = (struct ev_io){ -1, on_accept };
	l->tlio = (struct ev_io){ -1, on_accept_tls };
	if (!(l->scratch = malloc(HTTP_SCRATCH)))
		return -ENOMEM;
	return ev_loop_new(TICK_MS, &hooks, &l->ev);
}

/* --- addresses and listeners --- */

/* A loop's TLS listener, with its own copy of the keys (see tls.h). */
static int loop_tls_listen(struct http_server *srv, struct loop *l, struct sockaddr_storage *ss,
			   socklen_t *sl)
{
	int err = tls_loop_new(srv->cfg.tls_cert_pem, srv->cfg.tls_key_pem, &l->tls);

	if (err < 0) {
		log_errorx("http_tls_keys_failed err=%d", err);
		return err;
	}
	if ((err = net_listen(ss, sl, LISTEN_BACKLOG, NET_NONBLOCK | NET_REUSEPORT)) < 0)
		return err;
	l->tlio.fd = err;
	return ev_add(l->ev, &l->tlio, EPOLLIN);
}

/* SO_REUSEPORT would let both listeners share a port and split its connections. */
static bool same_port(const char *a, const char *b)
{
	const char *pa = strrchr(a, ':'), *pb = strrchr(b, ':');

	return pa && pb && strcmp(pa, pb) == 0;
}

static int parse_addrs(struct http_server *srv, struct sockaddr_storage *ss, socklen_t *sl,
		       struct sockaddr_storage *tss, socklen_t *tsl)
{
	if (net_parse_listen(srv->listen_str, ss, sl) < 0) {
		log_errorx("http_listen_bad_address listen=%s", srv->listen_str);
		return -EINVAL;
	}
	if (srv->tls_listen_str && net_parse_listen(srv->tls_listen_str, tss, tsl) < 0) {
		log_errorx("http_listen_bad_address tls_listen=%s", srv->tls_listen_str);
		return -EINVAL;
	}
	return 0;
}

int http_server_listen(struct http_server *srv)
{
	struct sockaddr_storage ss, tss;
	socklen_t sl, tsl;
	int err;

	if (srv->listening)
		return 0;
	if ((err = parse_addrs(srv, &ss, &sl, &tss, &tsl)) < 0)
		return err;
	for (int i = 0; i < srv->nloops; i++) {
		struct loop *l = &srv->loops[i];

		/* With port 0 the first bind picks the port (written back): the others share it. */
		if ((err = loop_init(srv, l, i)) < 0 ||
		    (err = net_listen(&ss, &sl, LISTEN_BACKLOG, NET_NONBLOCK | NET_REUSEPORT)) < 0)
			goto out;
		l->lio.fd = err;
		if ((err = ev_add(l->ev, &l->lio, EPOLLIN)) < 0 ||
		    (srv->tls_listen_str && (err = loop_tls_listen(srv, l, &tss, &tsl)) < 0))
			goto out;
	}
	net_addr_str(&ss, srv->addr, sizeof(srv->addr));
	if (srv->tls_listen_str) {
		net_addr_str(&tss, srv->tls_addr, sizeof(srv->tls_addr));
		if (same_port(srv->addr, srv->tls_addr)) {
			log_errorx("http_listen_failed tls_listen=%s msg=\"same port as listen %s\"",
				   srv->tls_addr, srv->addr);
			return -EADDRINUSE;
		}
	}
	srv->listening = true;
	srv->cfg.tls_cert_pem = srv->cfg.tls_key_pem = NULL;	/* parsed: the caller's again */
	log_info("http_listen addr=%s tls=%s threads=%d", srv->addr,
		 srv->tls_listen_str ? srv->tls_addr : "off", srv->nloops);
	return 0;
out:
	errno = -err;
	log_error("http_listen_failed listen=%s tls_listen=%s", srv->listen_str,
		  srv->tls_listen_str ? srv->tls_listen_str : "-");
	return err;
}

/* --- the server --- */

static int online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (int)n;
}

int http_server_new(const struct http_server_config *cfg, struct http_server **out)
{
	struct http_server *srv;

	if (!cfg->on_request || !cfg->listen || cfg->threads < 0 || cfg->threads > MAX_THREADS ||
	    (cfg->tls_listen && (!cfg->tls_cert_pem || !cfg->tls_key_pem)))
		return -EINVAL;
	if (!(srv = calloc(1, sizeof(*srv))))
		return -ENOMEM;
	srv->cfg = *cfg;
	if (!srv->cfg.max_conns)
		srv->cfg.max_conns = DEF_MAX_CONNS;
	if (!srv->cfg.header_timeout_ms)
		srv->cfg.header_timeout_ms = DEF_HEADER_TIMEOUT_MS;
	if (!srv->cfg.idle_timeout_ms)
		srv->cfg.idle_timeout_ms = DEF_IDLE_TIMEOUT_MS;
	if (!srv->cfg.io_timeout_ms)
		srv->cfg.io_timeout_ms = DEF_IO_TIMEOUT_MS;
	srv->nloops = cfg->threads ? cfg->threads : online_cpus();
	srv->listen_str = strdup(cfg->listen);
	srv->loops = calloc((size_t)srv->nloops, sizeof(*srv->loops));
	if (cfg->tls_listen)
		srv->tls_listen_str = strdup(cfg->tls_listen);
	atomic_init(&srv->nconns, 0);
	atomic_init(&srv->stop, false);
	atomic_init(&srv->drain_ms, 0);
	if (!srv->listen_str || !srv->loops || (cfg->tls_listen && !srv->tls_listen_str)) {
		http_server_free(srv);
		return -ENOMEM;
	}
	for (int i = 0; i < srv->nloops; i++)
		srv->loops[i].lio.fd = srv->loops[i].tlio.fd = -1;
	*out = srv;
	return 0;
}

const char *http_server_addr(const struct http_server *srv)
{
	return srv->addr;
}

const char *http_server_tls_addr(const struct http_server *srv)
{
	return srv->tls_addr;
}

int http_server_run(struct http_server *srv)
{
	int err = srv->listening ? 0 : http_server_listen(srv);

	for (int i = 0; i < srv->nloops && err == 0; i++) {
		struct loop *l = &srv->loops[i];

		err = -pthread_create(&l->thread, NULL, loop_main, l);
		l->started = err == 0;
	}
	if (err < 0) {
		errno = -err;
		log_error("http_run_failed");
		http_server_stop(srv, 0);
	}
	for (int i = 0; i < srv->nloops; i++) {
		struct loop *l = &srv->loops[i];

		if (!l->started)
			continue;
		pthread_join(l->thread, NULL);
		l->started = false;
		if (l->run_err < 0 && err == 0)
			err = l->run_err;
	}
	log_info("http_stopped addr=%s", srv->addr);
	return err;
}

void http_server_stop(struct http_server *srv, int drain_ms)
{
	atomic_store(&srv->drain_ms, drain_ms < 0 ? 0 : drain_ms);
	atomic_store(&srv->stop, true);
	for (int i = 0; i < srv->nloops; i++)
		if (srv->loops[i].ev)
			ev_wake(srv->loops[i].ev);
}

static void free_conn_list(struct http_conn *c, bool close_fds)
{
	while (c) {
		struct http_conn *next = c->next;

		if (close_fds && c->io.fd >= 0 && close(c->io.fd) < 0)
			log_warn("http_close_failed peer=%s", c->peer);
		conn_destroy(c);
		c = next;
	}
}

static void loop_free(struct loop *l)
{
	struct ev_post *p = ev_loop_free(l->ev);

	/* Posts that never ran (the loop stopped first): only malloc'd nodes are ours. */
	while (p) {
		struct ev_post *next = p->next;

		if (p->fn == post_run && !((struct conn_post *)p->arg)->embedded)
			free(p->arg);
		p = next;
	}
	listener_close(l);
	free_conn_list(l->conns, true);
	free_conn_list(l->pool, false);
	free_conn_list(l->grave, false);
	tls_loop_free(l->tls);	/* after the sessions made from it */
	free(l->scratch);
}

/* Call after http_server_run() returned and after the workers that might still post
 * to a connection were stopped. */
void http_server_free(struct http_server *srv)
{
	if (!srv)
		return;
	for (int i = 0; srv->loops && i < srv->nloops; i++)
		loop_free(&srv->loops[i]);
	free(srv->loops);
	free(srv->listen_str);
	free(srv->tls_listen_str);
	free(srv);
}
