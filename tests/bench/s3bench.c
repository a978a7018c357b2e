/* s3bench.c — the benchmark's load generator: N threads, each with one blocking keep-alive
 * connection, issuing SigV4-signed S3 PUT/GET (or plain unsigned GETs, to drive nginx with
 * the same client), and one summary line per run with a log-linear latency histogram. */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "../../lib/hash.h"
#include "../../storagefs/auth/sigv4.h"

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define RECV_BUF	(256 * 1024)	/* per connection; large so 64 MiB bodies drain in few syscalls */
#define REQ_BUF		4096		/* request head: path + 3 SigV4 headers fit easily */
#define ERR_SNIP	160		/* bytes of the first error body kept for the report */
#define AUTHZ_MAX	512		/* Authorization value: ~200 bytes + the access key */

/* Latency histogram: microseconds, exact below 64 us, then 32 linear sub-buckets per power
 * of two (<= ~3% error) up to 2^40 us. Fixed-size, so recording never allocates. */
#define HIST_SUB_BITS	5
#define HIST_SUB	(1u << HIST_SUB_BITS)
#define HIST_LINEAR	(2 * HIST_SUB)
#define HIST_MAX_MSB	40
#define HIST_BUCKETS	(HIST_LINEAR + (HIST_MAX_MSB - HIST_SUB_BITS) * HIST_SUB)

enum op { OP_GET, OP_PUT, OP_PREPARE, OP_MKFILES };

struct opts {
	const char *endpoint;	/* host:port, also the Host header */
	const char *bucket;
	const char *url_prefix;	/* --plain-get: path = prefix + key */
	const char *dir;	/* --op mkfiles */
	struct sigv4_cred cred;
	const char *region;
	enum op op;
	uint64_t size;
	char size_label[24];
	int conc;
	double duration;	/* seconds; 0 = use requests */
	long requests;
	long objects;
	int timeout_s;
	bool unsigned_payload;
	bool plain_get;
	bool verify;
	bool no_sig_cache;
};

struct conn {
	int fd;
	char *buf;
	size_t pos, len;	/* unread bytes are buf[pos..len) */
};

/* A signature stays valid for its whole second, so each worker signs an object's request at
 * most once a second: on loopback the client shares the CPUs with the server, and ~7
 * SHA-256 blocks per 4 KiB GET would otherwise be charged against storagefsd. */
struct sig_cache {
	time_t t;		/* second it was made for; 0 = empty */
	char authz[AUTHZ_MAX];
	char amz_date[17];
};

struct worker {
	pthread_t th;
	int id;
	struct conn c;
	char req[REQ_BUF];
	char path[1024];
	struct sig_cache *sc;	/* O.objects entries, allocated before the clock starts */
	uint64_t ops, bytes, errors;
	uint64_t hist[HIST_BUCKETS];
	int first_status;	/* first failing HTTP status, 0 = none, -errno for I/O */
	char first_err[ERR_SNIP + 1];
};

/* Shared, read-only after setup. */
static struct opts O;
static struct sockaddr_storage g_addr;
static socklen_t g_addrlen;
static unsigned char *g_body;		/* deterministic pseudo-random, O.size bytes */
static char g_body_sha[2 * SHA256_LEN + 1];
static uint32_t g_body_crc;
static pthread_barrier_t g_start;

/* Shared, hot. */
static atomic_bool g_stop;
static volatile sig_atomic_t g_end_early;	/* SIGUSR1: end a --duration run now */
static atomic_long g_remaining;		/* --requests mode: requests not yet claimed */
static atomic_ulong g_seq;		/* picks the object for each request */

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void on_usr1(int sig)
{
	(void)sig;
	g_end_early = 1;
}

/* Sleeps out a --duration run in short naps, so that SIGUSR1 (a load that should last as
 * long as something else does, e.g. a rebuild) ends it within a nap. */
static void load_wait(double secs)
{
	uint64_t end = now_us() + (uint64_t)(secs * 1e6);

	while (!g_end_early && now_us() < end) {
		struct timespec ts = { .tv_nsec = 20 * 1000 * 1000 };

		nanosleep(&ts, NULL);
	}
}

/* --- histogram --- */

static unsigned hist_index(uint64_t v)
{
	if (v < HIST_LINEAR)
		return (unsigned)v;
	unsigned msb = 63u - (unsigned)__builtin_clzll(v);
	if (msb >= HIST_MAX_MSB)
		return HIST_BUCKETS - 1;
	unsigned top = (unsigned)(v >> (msb - HIST_SUB_BITS));	/* in [SUB, 2*SUB) */
	return HIST_LINEAR + (msb - HIST_SUB_BITS - 1) * HIST_SUB + (top - HIST_SUB);
}

/* Midpoint of a bucket, microseconds. */
static double hist_value(unsigned idx)
{
	if (idx < HIST_LINEAR)
		return idx;
	unsigned k = idx - HIST_LINEAR;
	unsigned msb = k / HIST_SUB + HIST_SUB_BITS + 1;
	uint64_t top = HIST_SUB + k % HIST_SUB;
	uint64_t width = 1ull << (msb - HIST_SUB_BITS);
	return (double)(top * width) + (double)width / 2.0;
}

static double hist_pct(const uint64_t *h, uint64_t total, double p)
{
	if (total == 0)
		return 0;
	uint64_t want = (uint64_t)(p * (double)total + 0.999999);
	uint64_t seen = 0;

	if (want == 0)
		want = 1;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h[i];
		if (seen >= want)
			return hist_value(i);
	}
	return hist_value(HIST_BUCKETS - 1);
}

/* --- argument helpers --- */

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	default: break;
	}
	if (*end == 'i' || *end == 'b' || *end == 'B')	/* tolerate "1MiB", "4kB" */
		end += (*end == 'i' && (end[1] == 'b' || end[1] == 'B')) ? 2 : 1;
	if (*end != '\0')
		return -EINVAL;
	*out = v;
	return 0;
}

/* The label is derived from the byte count so "1M", "1m" and "1048576" name the same keys. */
static void size_label(uint64_t v, char *out, size_t max)
{
	if (v && v % (1u << 30) == 0)
		snprintf(out, max, "%llug", (unsigned long long)(v >> 30));
	else if (v && v % (1u << 20) == 0)
		snprintf(out, max, "%llum", (unsigned long long)(v >> 20));
	else if (v && v % 1024 == 0)
		snprintf(out, max, "%lluk", (unsigned long long)(v >> 10));
	else
		snprintf(out, max, "%llu", (unsigned long long)v);
}

static int resolve_endpoint(const char *ep)
{
	char host[256];
	const char *colon, *port;
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *ai;
	int rc;

	if (strncmp(ep, "http://", 7) == 0)
		ep += 7;
	colon = strrchr(ep, ':');
	if (!colon || (size_t)(colon - ep) >= sizeof(host))
		return -EINVAL;
	memcpy(host, ep, (size_t)(colon - ep));
	host[colon - ep] = '\0';
	port = colon + 1;
	if (host[0] == '[') {	/* [::1]:9000 */
		size_t hl = strlen(host);
		if (hl < 2 || host[hl - 1] != ']')
			return -EINVAL;
		memmove(host, host + 1, hl - 2);
		host[hl - 2] = '\0';
	}
	rc = getaddrinfo(host, port, &hints, &ai);
	if (rc != 0) {
		fprintf(stderr, "s3bench: %s: %s\n", ep, gai_strerror(rc));
		return -EHOSTUNREACH;
	}
	memcpy(&g_addr, ai->ai_addr, ai->ai_addrlen);
	g_addrlen = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

/* xorshift64*: a fixed seed, so `--op mkfiles` (files for nginx) and `--op prepare`
 * (objects in storagefsd) hold identical bytes and --verify works against both. */
static void fill_random(unsigned char *p, uint64_t n)
{
	uint64_t x = 0x9E3779B97F4A7C15ull;

	for (uint64_t i = 0; i < n; i += 8) {
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		uint64_t r = x * 0x2545F4914F6CDD1Dull;
		size_t k = n - i < 8 ? (size_t)(n - i) : 8;
		memcpy(p + i, &r, k);
	}
}

/* --- connection I/O --- */

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->pos = c->len = 0;
}

static int conn_open(struct conn *c)
{
	int one = 1;
	struct timeval tv = { .tv_sec = O.timeout_s };

	conn_close(c);
	c->fd = socket(g_addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	/* Requests are written whole; Nagle would only add delay to the small ones. */
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* A hung server must end the run with errors, not hang the benchmark. */
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(c->fd, (struct sockaddr *)&g_addr, g_addrlen) < 0) {
		int e = -errno;
		conn_close(c);
		return e;
	}
	return 0;
}

static int send_all(int fd, const void *p, size_t n, int flags)
{
	const char *q = p;

	while (n > 0) {
		ssize_t w = send(fd, q, n, flags | MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		q += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads more bytes into the buffer, compacting first. Returns bytes read, -ECONNRESET on
 * EOF, -EMSGSIZE when the unread part already fills the buffer. */
static int conn_fill(struct conn *c)
{
	if (c->pos > 0) {
		memmove(c->buf, c->buf + c->pos, c->len - c->pos);
		c->len -= c->pos;
		c->pos = 0;
	}
	if (c->len == RECV_BUF)
		return -EMSGSIZE;
	for (;;) {
		ssize_t r = recv(c->fd, c->buf + c->len, RECV_BUF - c->len, 0);
		if (r > 0) {
			c->len += (size_t)r;
			return (int)r;
		}
		if (r == 0)
			return -ECONNRESET;
		if (errno != EINTR)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
	}
}

struct resp {
	int status;
	int64_t clen;		/* -1 if absent */
	bool chunked;
	bool close;
};

static bool hdr_is(const char *line, size_t len, const char *name, const char **val,
		   size_t *vlen)
{
	size_t n = strlen(name);

	if (len <= n || line[n] != ':' || strncasecmp(line, name, n) != 0)
		return false;
	const char *v = line + n + 1, *e = line + len;
	while (v < e && (*v == ' ' || *v == '\t'))
		v++;
	while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	*val = v;
	*vlen = (size_t)(e - v);
	return true;
}

static bool has_token(const char *v, size_t n, const char *tok)
{
	size_t tl = strlen(tok);

	for (size_t i = 0; i + tl <= n; i++)
		if (strncasecmp(v + i, tok, tl) == 0)
			return true;
	return false;
}

/* Reads and parses a response head; leaves the body's first bytes in the buffer.
 * 1xx interim responses are skipped. */
static int read_head(struct conn *c, struct resp *r)
{
	for (;;) {
		char *end;
		int rc;

		while (!(end = memmem(c->buf + c->pos, c->len - c->pos, "\r\n\r\n", 4)))
			if ((rc = conn_fill(c)) < 0)
				return rc;
		char *p = c->buf + c->pos, *head_end = end + 2;
		size_t head_len = (size_t)(end + 4 - p);
		int minor;

		if (head_len < 12 || memcmp(p, "HTTP/1.", 7) != 0)
			return -EPROTO;
		minor = p[7] - '0';
		if (p[8] != ' ' || p[9] < '1' || p[9] > '5')
			return -EPROTO;
		r->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
		r->clen = -1;
		r->chunked = false;
		r->close = minor == 0;
		char *line = memchr(p, '\n', head_len) + 1;
		while (line < head_end) {
			char *nl = memchr(line, '\n', (size_t)(head_end - line));
			size_t ll = (size_t)(nl - line);
			const char *v;
			size_t vl;

			if (ll > 0 && line[ll - 1] == '\r')
				ll--;
			if (hdr_is(line, ll, "content-length", &v, &vl)) {
				int64_t n = 0;
				if (vl == 0 || vl > 18)
					return -EPROTO;
				for (size_t i = 0; i < vl; i++) {
					if (v[i] < '0' || v[i] > '9')
						return -EPROTO;
					n = n * 10 + (v[i] - '0');
				}
				r->clen = n;
			} else if (hdr_is(line, ll, "transfer-encoding", &v, &vl)) {
				r->chunked = has_token(v, vl, "chunked");
			} else if (hdr_is(line, ll, "connection", &v, &vl)) {
				if (has_token(v, vl, "close"))
					r->close = true;
				else if (has_token(v, vl, "keep-alive"))
					r->close = false;
			}
			line = nl + 1;
		}
		c->pos += head_len;
		if (r->status >= 200 || r->status == 101)
			return 0;
	}
}

/* Consumes n body bytes; crc is updated when non-NULL; the first bytes are copied to snip
 * (for error reports) when non-NULL. */
static int read_fixed(struct conn *c, uint64_t n, uint32_t *crc, char *snip, size_t *snip_len)
{
	while (n > 0) {
		if (c->pos == c->len) {
			/* Buffer empty: receive straight into it from the start, no memmove. */
			c->pos = c->len = 0;
			int rc = conn_fill(c);
			if (rc < 0)
				return rc;
		}
		size_t k = c->len - c->pos;
		if (k > n)
			k = (size_t)n;
		if (crc)
			*crc = crc32c(*crc, c->buf + c->pos, k);
		if (snip && *snip_len < ERR_SNIP) {
			size_t s = ERR_SNIP - *snip_len < k ? ERR_SNIP - *snip_len : k;
			memcpy(snip + *snip_len, c->buf + c->pos, s);
			*snip_len += s;
		}
		c->pos += k;
		n -= k;
	}
	return 0;
}

static int read_line(struct conn *c, char **line, size_t *len)
{
	char *nl;
	int rc;

	while (!(nl = memchr(c->buf + c->pos, '\n', c->len - c->pos)))
		if ((rc = conn_fill(c)) < 0)
			return rc;
	*line = c->buf + c->pos;
	*len = (size_t)(nl - *line);
	c->pos += *len + 1;
	if (*len > 0 && (*line)[*len - 1] == '\r')
		(*len)--;
	return 0;
}

/* Reads the body per the head; returns the payload length or -errno. */
static int64_t read_body(struct conn *c, const struct resp *r, bool head_only, uint32_t *crc,
			 char *snip, size_t *snip_len)
{
	int rc;

	if (head_only || r->status == 204 || r->status == 304)
		return 0;
	if (!r->chunked) {
		if (r->clen < 0)
			return -EPROTO;	/* read-to-EOF bodies: not something we expect from either server */
		rc = read_fixed(c, (uint64_t)r->clen, crc, snip, snip_len);
		return rc < 0 ? rc : r->clen;
	}
	int64_t total = 0;
	for (;;) {
		char *line;
		size_t len;
		uint64_t n = 0;
		size_t i;

		if ((rc = read_line(c, &line, &len)) < 0)
			return rc;
		for (i = 0; i < len; i++) {
			int d = line[i];
			if (d >= '0' && d <= '9')
				d -= '0';
			else if ((d | 0x20) >= 'a' && (d | 0x20) <= 'f')
				d = (d | 0x20) - 'a' + 10;
			else
				break;
			if (n >> 56)
				return -EPROTO;
			n = n * 16 + (unsigned)d;
		}
		if (i == 0)
			return -EPROTO;
		if (n == 0)
			break;
		if ((rc = read_fixed(c, n, crc, snip, snip_len)) < 0)
			return rc;
		total += (int64_t)n;
		if ((rc = read_line(c, &line, &len)) < 0)
			return rc;
		if (len != 0)
			return -EPROTO;
	}
	for (;;) {	/* trailers up to the empty line */
		char *line;
		size_t len;
		if ((rc = read_line(c, &line, &len)) < 0)
			return rc;
		if (len == 0)
			return total;
	}
}

/* --- requests --- */

static void object_key(uint64_t idx, char *out, size_t max)
{
	snprintf(out, max, "obj-%s-%llu", O.size_label, (unsigned long long)idx);
}

/* Formats the request head into w->req. method "PUT" with body_len for uploads. idx is the
 * object's index for the signature cache, or -1 for an uncached request. */
static int build_req(struct worker *w, const char *method, const char *path, long idx,
		     uint64_t body_len, const char *payload_sha)
{
	int n;

	if (O.plain_get) {
		n = snprintf(w->req, sizeof(w->req),
			     "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: s3bench\r\n\r\n",
			     method, path, O.endpoint);
	} else {
		struct sig_cache one, *sc = (idx >= 0 && w->sc) ? &w->sc[idx] : &one;
		time_t now = time(NULL);

		if (sc == &one || sc->t != now) {
			struct sigv4_sign_req sr = {
				.method = method, .host = O.endpoint, .path = path, .query = NULL,
				.payload_sha256_hex = payload_sha, .region = O.region,
				.now = now, .cred = &O.cred,
			};
			int rc = sigv4_sign(&sr, sc->authz, sizeof(sc->authz), sc->amz_date);
			if (rc < 0)
				return rc;
			sc->t = now;
		}
		n = snprintf(w->req, sizeof(w->req),
			     "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: s3bench\r\n"
			     "x-amz-date: %s\r\nx-amz-content-sha256: %s\r\n"
			     "Authorization: %s\r\nContent-Length: %llu\r\n\r\n",
			     method, path, O.endpoint, sc->amz_date, payload_sha, sc->authz,
			     (unsigned long long)body_len);
	}
	if (n < 0 || (size_t)n >= sizeof(w->req))
		return -ENOSPC;
	return n;
}

static void note_error(struct worker *w, int status, const char *snip, size_t snip_len)
{
	w->errors++;
	if (w->first_status != 0)
		return;
	w->first_status = status;
	if (snip) {
		for (size_t i = 0; i < snip_len; i++)	/* one printable line */
			w->first_err[i] = (snip[i] >= 0x20 && snip[i] < 0x7f) ? snip[i] : ' ';
		w->first_err[snip_len] = '\0';
	} else if (status == -EBADMSG) {
		snprintf(w->first_err, sizeof(w->first_err), "body length differs from --size");
	} else if (status == -EILSEQ) {
		snprintf(w->first_err, sizeof(w->first_err), "body checksum mismatch (--verify)");
	} else if (status < 0) {
		snprintf(w->first_err, sizeof(w->first_err), "%s", strerror(-status));
	}
}

/* One request/response on the worker's connection. body != NULL for PUT. Returns 0 on a
 * 2xx with the expected length, >0 (the status) on an HTTP error, -errno on I/O error (the
 * connection is then closed). */
static int do_request(struct worker *w, const char *method, const char *path, long idx,
		      const unsigned char *body, uint64_t body_len, const char *payload_sha,
		      uint64_t expect_len)
{
	struct resp r;
	char snip[ERR_SNIP];
	size_t snip_len = 0;
	uint32_t crc = 0;
	bool verify = O.verify && !body;
	int n, rc, send_rc = 0;
	int64_t got;

	if (w->c.fd < 0 && (rc = conn_open(&w->c)) < 0)
		return rc;
	n = build_req(w, method, path, idx, body_len, payload_sha);
	if (n < 0)
		return n;
	if (body_len > 0) {
		struct iovec iov[2] = {
			{ .iov_base = w->req, .iov_len = (size_t)n },
			{ .iov_base = (void *)body, .iov_len = (size_t)body_len },
		};
		/* One writev for head + first part of the body; the rest with plain sends. */
		ssize_t wr = writev(w->c.fd, iov, 2);
		if (wr < 0) {
			send_rc = -errno;
		} else if ((size_t)wr < (size_t)n) {
			send_rc = send_all(w->c.fd, w->req + wr, (size_t)n - (size_t)wr, MSG_MORE);
			if (send_rc == 0)
				send_rc = send_all(w->c.fd, body, (size_t)body_len, 0);
		} else {
			size_t done = (size_t)wr - (size_t)n;
			send_rc = send_all(w->c.fd, body + done, (size_t)body_len - done, 0);
		}
	} else {
		send_rc = send_all(w->c.fd, w->req, (size_t)n, 0);
	}
	/* Even when the send failed the server may have answered (an early 4xx, then close):
	 * that status is more useful than EPIPE. */
	rc = read_head(&w->c, &r);
	if (rc < 0) {
		conn_close(&w->c);
		return send_rc < 0 ? send_rc : rc;
	}
	bool ok = r.status >= 200 && r.status < 300;
	got = read_body(&w->c, &r, strcmp(method, "HEAD") == 0, verify && ok ? &crc : NULL,
			ok ? NULL : snip, &snip_len);
	if (got < 0 || r.close || send_rc < 0)
		conn_close(&w->c);
	if (!ok) {
		note_error(w, r.status, snip, snip_len);
		return r.status;
	}
	if (got < 0)
		return (int)got;
	if (send_rc < 0)
		return send_rc;
	if (!body && strcmp(method, "GET") == 0) {
		if ((uint64_t)got != expect_len)
			return -EBADMSG;
		if (verify && crc != g_body_crc)
			return -EILSEQ;
		w->bytes += (uint64_t)got;
	} else if (body) {
		w->bytes += body_len;
	}
	return 0;
}

static bool claim(void)
{
	if (atomic_load_explicit(&g_stop, memory_order_relaxed))
		return false;
	if (O.duration > 0)
		return true;
	return atomic_fetch_sub(&g_remaining, 1) > 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char key[128];
	bool put = O.op == OP_PUT || O.op == OP_PREPARE;
	const char *sha = put ? (O.unsigned_payload ? "UNSIGNED-PAYLOAD" : g_body_sha)
			      : (O.unsigned_payload ? "UNSIGNED-PAYLOAD" : EMPTY_SHA256);

	/* Connect before the clock starts so handshakes are not in the figures. */
	(void)conn_open(&w->c);
	pthread_barrier_wait(&g_start);
	while (claim()) {
		uint64_t idx = atomic_fetch_add(&g_seq, 1) % (uint64_t)O.objects;
		object_key(idx, key, sizeof(key));
		if (O.plain_get)
			snprintf(w->path, sizeof(w->path), "%s%s", O.url_prefix, key);
		else
			snprintf(w->path, sizeof(w->path), "/%s/%s", O.bucket, key);

		uint64_t t0 = now_us();
		int rc = put ? do_request(w, "PUT", w->path, (long)idx, g_body, O.size, sha, 0)
			     : do_request(w, "GET", w->path, (long)idx, NULL, 0, sha, O.size);
		uint64_t dt = now_us() - t0;
		if (rc == 0) {
			w->ops++;
			w->hist[hist_index(dt)]++;
		} else if (rc < 0) {
			note_error(w, rc, NULL, 0);
			/* Don't spin on a refused connection. */
			if (w->c.fd < 0)
				usleep(10000);
		}
	}
	conn_close(&w->c);
	return NULL;
}

/* Runs the load phase with O.conc workers; prints the summary line. Returns 0 if there
 * were no errors, 1 otherwise. */
static int run_load(const char *op_name)
{
	struct worker *ws = calloc((size_t)O.conc, sizeof(*ws));
	uint64_t ops = 0, bytes = 0, errors = 0, t0, t1;
	static uint64_t hist[HIST_BUCKETS];
	int rc;

	if (!ws) {
		fprintf(stderr, "s3bench: out of memory\n");
		return 2;
	}
	atomic_store(&g_stop, false);
	atomic_store(&g_remaining, O.requests);
	atomic_store(&g_seq, 0);
	pthread_barrier_init(&g_start, NULL, (unsigned)O.conc + 1);
	/* Workers inherit a blocked SIGUSR1, so it always reaches this thread's naps. */
	sigset_t usr1, old;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, &old);
	for (int i = 0; i < O.conc; i++) {
		ws[i].id = i;
		ws[i].c.fd = -1;
		ws[i].c.buf = malloc(RECV_BUF);
		if (!O.no_sig_cache && !O.plain_get)
			ws[i].sc = calloc((size_t)O.objects, sizeof(*ws[i].sc));
		if (!ws[i].c.buf || (!O.no_sig_cache && !O.plain_get && !ws[i].sc)) {
			fprintf(stderr, "s3bench: out of memory\n");
			exit(2);
		}
		if ((rc = pthread_create(&ws[i].th, NULL, worker_main, &ws[i])) != 0) {
			fprintf(stderr, "s3bench: pthread_create: %s\n", strerror(rc));
			exit(2);
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_barrier_wait(&g_start);
	t0 = now_us();
	if (O.duration > 0) {
		load_wait(O.duration);
		atomic_store(&g_stop, true);
	}
	memset(hist, 0, sizeof(hist));
	for (int i = 0; i < O.conc; i++) {
		pthread_join(ws[i].th, NULL);
		ops += ws[i].ops;
		bytes += ws[i].bytes;
		errors += ws[i].errors;
		for (unsigned b = 0; b < HIST_BUCKETS; b++)
			hist[b] += ws[i].hist[b];
	}
	/* In-flight requests at the deadline finish and count; the elapsed time includes them. */
	t1 = now_us();
	double secs = (double)(t1 - t0) / 1e6;
	if (secs <= 0)
		secs = 1e-6;
	printf("op=%s size=%s conc=%d ops=%llu ops_s=%.1f MBps=%.1f p50_ms=%.3f p99_ms=%.3f "
	       "errors=%llu secs=%.2f\n",
	       op_name, O.size_label, O.conc, (unsigned long long)ops, (double)ops / secs,
	       (double)bytes / secs / (1024.0 * 1024.0), hist_pct(hist, ops, 0.50) / 1000.0,
	       hist_pct(hist, ops, 0.99) / 1000.0, (unsigned long long)errors, secs);
	fflush(stdout);
	for (int i = 0, shown = 0; i < O.conc && shown < 3; i++) {
		if (ws[i].first_status == 0)
			continue;
		shown++;
		if (ws[i].first_status > 0)
			fprintf(stderr, "s3bench: worker %d: first error: HTTP %d %s\n", i,
				ws[i].first_status, ws[i].first_err);
		else
			fprintf(stderr, "s3bench: worker %d: first error: %s\n", i, ws[i].first_err);
	}
	for (int i = 0; i < O.conc; i++) {
		free(ws[i].c.buf);
		free(ws[i].sc);
	}
	free(ws);
	pthread_barrier_destroy(&g_start);
	return errors ? 1 : 0;
}

/* PUT /bucket; an existing bucket (409 BucketAlreadyOwnedByYou) is fine. */
static int create_bucket(void)
{
	struct worker *w = calloc(1, sizeof(*w));
	char path[300];
	int rc;

	if (!w || !(w->c.buf = malloc(RECV_BUF)))
		return -ENOMEM;
	w->c.fd = -1;
	snprintf(path, sizeof(path), "/%s", O.bucket);
	rc = do_request(w, "PUT", path, -1, NULL, 0, O.unsigned_payload ? "UNSIGNED-PAYLOAD" : EMPTY_SHA256, 0);
	if (rc == 409)
		rc = 0;
	if (rc != 0) {
		if (rc > 0)
			fprintf(stderr, "s3bench: create bucket %s: HTTP %d %s\n", O.bucket, rc,
				w->first_err);
		else
			fprintf(stderr, "s3bench: create bucket %s: %s\n", O.bucket, strerror(-rc));
	}
	conn_close(&w->c);
	free(w->c.buf);
	free(w);
	return rc;
}

/* Writes the K objects as plain files for nginx, same names and bytes as `prepare`. */
static int make_files(void)
{
	char path[1200], key[128];

	if (mkdir(O.dir, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "s3bench: mkdir %s: %s\n", O.dir, strerror(errno));
		return 1;
	}
	for (long i = 0; i < O.objects; i++) {
		object_key((uint64_t)i, key, sizeof(key));
		snprintf(path, sizeof(path), "%s/%s", O.dir, key);
		FILE *f = fopen(path, "wb");
		if (!f || fwrite(g_body, 1, O.size, f) != O.size || fclose(f) != 0) {
			fprintf(stderr, "s3bench: write %s: %s\n", path, strerror(errno));
			return 1;
		}
	}
	printf("op=mkfiles size=%s objects=%ld dir=%s\n", O.size_label, O.objects, O.dir);
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: s3bench --endpoint HOST:PORT --op put|get|prepare --size 4k|1m|64m\n"
		"               [--access-key AK --secret-key SK] [--region us-east-1] --bucket B\n"
		"               [--concurrency N] [--duration S | --requests N] [--objects K]\n"
		"               [--unsigned] [--verify] [--timeout S] [--no-sig-cache]\n"
		"       s3bench --endpoint HOST:PORT --op get --plain-get [--url-prefix /files/] ...\n"
		"       s3bench --op mkfiles --dir DIR --size S --objects K\n"
		"Objects are named obj-<size>-<i>, i < K; prepare creates the bucket and all K.\n"
		"SIGUSR1 ends a --duration run early; its summary line is printed as usual.\n");
	exit(2);
}

static void copy_key(char *dst, const char *src, const char *what)
{
	if (strlen(src) >= SIGV4_KEY_MAX) {
		fprintf(stderr, "s3bench: %s too long\n", what);
		exit(2);
	}
	strcpy(dst, src);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "endpoint", required_argument, NULL, 'e' },
		{ "access-key", required_argument, NULL, 'a' },
		{ "secret-key", required_argument, NULL, 's' },
		{ "region", required_argument, NULL, 'r' },
		{ "bucket", required_argument, NULL, 'b' },
		{ "op", required_argument, NULL, 'o' },
		{ "size", required_argument, NULL, 'z' },
		{ "concurrency", required_argument, NULL, 'c' },
		{ "duration", required_argument, NULL, 'd' },
		{ "requests", required_argument, NULL, 'n' },
		{ "objects", required_argument, NULL, 'k' },
		{ "unsigned", no_argument, NULL, 'u' },
		{ "plain-get", no_argument, NULL, 'p' },
		{ "url-prefix", required_argument, NULL, 'x' },
		{ "verify", no_argument, NULL, 'v' },
		{ "timeout", required_argument, NULL, 't' },
		{ "dir", required_argument, NULL, 'D' },
		{ "no-sig-cache", no_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *op = NULL, *size = "4k";
	int ch;

	signal(SIGUSR1, on_usr1);	/* first: a driver may signal as soon as we exist */
	O.region = "us-east-1";
	O.url_prefix = "/";
	O.conc = 1;
	O.timeout_s = 60;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'e': O.endpoint = optarg; break;
		case 'a': copy_key(O.cred.access_key, optarg, "access key"); break;
		case 's': copy_key(O.cred.secret_key, optarg, "secret key"); break;
		case 'r': O.region = optarg; break;
		case 'b': O.bucket = optarg; break;
		case 'o': op = optarg; break;
		case 'z': size = optarg; break;
		case 'c': O.conc = atoi(optarg); break;
		case 'd': O.duration = atof(optarg); break;
		case 'n': O.requests = atol(optarg); break;
		case 'k': O.objects = atol(optarg); break;
		case 'u': O.unsigned_payload = true; break;
		case 'p': O.plain_get = true; break;
		case 'x': O.url_prefix = optarg; break;
		case 'v': O.verify = true; break;
		case 't': O.timeout_s = atoi(optarg); break;
		case 'D': O.dir = optarg; break;
		case 'S': O.no_sig_cache = true; break;
		default: usage();
		}
	}
	if (optind != argc || !op)
		usage();
	if (!strcmp(op, "get"))
		O.op = OP_GET;
	else if (!strcmp(op, "put"))
		O.op = OP_PUT;
	else if (!strcmp(op, "prepare"))
		O.op = OP_PREPARE;
	else if (!strcmp(op, "mkfiles"))
		O.op = OP_MKFILES;
	else
		usage();
	if (parse_size(size, &O.size) < 0 || O.size == 0 || O.size > (1ull << 34)) {
		fprintf(stderr, "s3bench: bad --size %s\n", size);
		return 2;
	}
	size_label(O.size, O.size_label, sizeof(O.size_label));
	if (O.conc < 1 || O.conc > 1024) {
		fprintf(stderr, "s3bench: --concurrency must be 1..1024\n");
		return 2;
	}
	if (O.objects <= 0)
		O.objects = O.conc > 16 ? O.conc : 16;
	if (O.op == OP_PREPARE) {
		O.requests = O.objects;	/* each object exactly once: seq 0..K-1 */
		O.duration = 0;
	}
	if (O.op == OP_MKFILES) {
		if (!O.dir)
			usage();
	} else {
		if (!O.endpoint || (O.duration <= 0 && O.requests <= 0))
			usage();
		if (O.plain_get && O.op != OP_GET) {
			fprintf(stderr, "s3bench: --plain-get is for --op get\n");
			return 2;
		}
		if (!O.plain_get && (!O.bucket || !O.cred.access_key[0] || !O.cred.secret_key[0])) {
			fprintf(stderr, "s3bench: S3 mode needs --bucket, --access-key, --secret-key\n");
			return 2;
		}
		if (resolve_endpoint(O.endpoint) < 0) {
			fprintf(stderr, "s3bench: bad --endpoint %s\n", O.endpoint);
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);

	/* The body (and its digests) are computed once, outside any timed region. */
	if (O.op != OP_GET || O.verify) {
		g_body = malloc(O.size);
		if (!g_body) {
			fprintf(stderr, "s3bench: cannot allocate %llu bytes\n",
				(unsigned long long)O.size);
			return 2;
		}
		fill_random(g_body, O.size);
		g_body_crc = crc32c(0, g_body, O.size);
		if (O.op != OP_MKFILES && !O.unsigned_payload) {
			unsigned char d[SHA256_LEN];
			sha256(g_body, O.size, d);
			hex_encode(d, SHA256_LEN, g_body_sha);
		}
	}

	switch (O.op) {
	case OP_MKFILES:
		return make_files();
	case OP_PREPARE:
		if (create_bucket() != 0)
			return 1;
		return run_load("prepare");
	case OP_PUT:
		return run_load("put");
	case OP_GET:
		return run_load("get");
	}
	return 2;
}
