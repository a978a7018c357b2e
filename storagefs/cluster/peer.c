/* peer.c — calls to a peer's internal API: connect (the peer's CN checked), one request
 * with its X-Cairn-* fields, a body streamed from a file, the reply's status turned into
 * an errno in one place (call_reply), bodies streamed to a sink, pages parsed from JSON. */
#include "peer.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../lib/netaddr.h"
#include "../../lib/http1_stream.h"
#include "../../lib/json.h"
#include "../../lib/log.h"
#include "../../lib/tls.h"
#include "../../lib/uri.h"
#include "iwire.h"

#define PEER_HOST_MAX	160
#define PEER_ERR_BODY	4096
#define PEER_LIST_TOKS	(16 + 16 * STORE_ROWS_PAGE_MAX)
#define PEER_QUERY_MAX	(16 + 6 * STORE_KEY_MAX + 64)

/* One call: its connection and the reply's head. */
struct pcall {
	struct tls_conn *c;
	struct http1s_msg *m;
	struct peer_health *pool;	/* where c goes back when the call ended cleanly */
	struct peer peer;
	bool replied;			/* a reply head was read */
	char host[PEER_HOST_MAX];
	char target[IWIRE_TARGET_MAX];
};

struct peer_health {
	pthread_mutex_t mu;
	int n;
	struct {
		char node_id[64];
		int64_t until_ms;	/* suspect until then (0: healthy) */
		bool probing;		/* one call is trying it */
		char addr[PEER_HOST_MAX];	/* where the pooled connections go */
		int npool;
		struct tls_conn *pool[PEER_POOL];	/* idle, most recent last */
		int64_t since[PEER_POOL];
	} v[PEER_HEALTH_MAX];
};

int peer_health_new(struct peer_health **out)
{
	struct peer_health *h = calloc(1, sizeof(*h));

	if (!h)
		return -ENOMEM;
	pthread_mutex_init(&h->mu, NULL);
	*out = h;
	return 0;
}

static void pool_drop(struct peer_health *h, int i)
{
	for (int k = 0; k < h->v[i].npool; k++)
		tls_close(h->v[i].pool[k]);
	h->v[i].npool = 0;
}

void peer_health_free(struct peer_health *h)
{
	if (!h)
		return;
	for (int i = 0; i < h->n; i++)
		pool_drop(h, i);
	pthread_mutex_destroy(&h->mu);
	free(h);
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The entry of node_id, made when absent (when full, a healthy entry is reused: forgetting
 * a healthy node costs nothing). */
static int health_slot(struct peer_health *h, const char *node_id)
{
	int i;

	for (i = 0; i < h->n; i++)
		if (strcmp(h->v[i].node_id, node_id) == 0)
			return i;
	if (h->n < PEER_HEALTH_MAX)
		i = h->n++;
	else
		for (i = 0; i < PEER_HEALTH_MAX - 1 && h->v[i].until_ms; i++)
			;
	pool_drop(h, i);
	snprintf(h->v[i].node_id, sizeof(h->v[i].node_id), "%s", node_id);
	h->v[i].until_ms = 0;
	h->v[i].probing = false;
	h->v[i].addr[0] = '\0';
	return i;
}

/* A kept-alive connection to p idle less than PEER_IDLE_MS, or NULL. Older ones are
 * closed (outside the lock: close_notify is a write). */
static struct tls_conn *pool_take(struct peer_health *h, const struct peer *p)
{
	struct tls_conn *c = NULL, *old[PEER_POOL];
	int64_t now = mono_ms();
	int nold = 0, i;

	if (!h)
		return NULL;
	pthread_mutex_lock(&h->mu);
	i = health_slot(h, p->node_id);
	if (strcmp(h->v[i].addr, p->addr) != 0) {
		nold = h->v[i].npool;
		memcpy(old, h->v[i].pool, (size_t)nold * sizeof(*old));
		h->v[i].npool = 0;
		snprintf(h->v[i].addr, sizeof(h->v[i].addr), "%s", p->addr);
	}
	while (!c && h->v[i].npool > 0) {
		int k = --h->v[i].npool;

		if (now - h->v[i].since[k] < PEER_IDLE_MS && tls_idle_ok(h->v[i].pool[k]))
			c = h->v[i].pool[k];
		else
			old[nold++] = h->v[i].pool[k];
	}
	pthread_mutex_unlock(&h->mu);
	while (nold > 0)
		tls_close(old[--nold]);
	return c;
}

/* Keeps c for the next call to p (the oldest goes when the pool is full). */
static void pool_put(struct peer_health *h, const struct peer *p, struct tls_conn *c)
{
	struct tls_conn *out = NULL;
	int i;

	pthread_mutex_lock(&h->mu);
	i = health_slot(h, p->node_id);
	if (strcmp(h->v[i].addr, p->addr) != 0) {
		out = c;	/* the node moved meanwhile */
	} else {
		if (h->v[i].npool == PEER_POOL) {
			out = h->v[i].pool[0];
			memmove(&h->v[i].pool[0], &h->v[i].pool[1], (PEER_POOL - 1) * sizeof(c));
			memmove(&h->v[i].since[0], &h->v[i].since[1],
				(PEER_POOL - 1) * sizeof(h->v[i].since[0]));
			h->v[i].npool--;
		}
		h->v[i].pool[h->v[i].npool] = c;
		h->v[i].since[h->v[i].npool++] = mono_ms();
	}
	pthread_mutex_unlock(&h->mu);
	tls_close(out);
}

/* May this call connect? No while the peer is suspect, except one probe once the
 * suspicion has run out. */
static bool health_admit(struct peer_health *h, const char *node_id)
{
	bool ok = true;
	int i;

	if (!h)
		return true;
	pthread_mutex_lock(&h->mu);
	i = health_slot(h, node_id);
	if (h->v[i].until_ms) {
		ok = !h->v[i].probing && mono_ms() >= h->v[i].until_ms;
		h->v[i].probing |= ok;
	}
	pthread_mutex_unlock(&h->mu);
	return ok;
}

static void health_note(struct peer_health *h, const char *node_id, int err)
{
	bool net = err == -ETIMEDOUT || err == -ECONNREFUSED || err == -EHOSTUNREACH ||
		   err == -ENETUNREACH || err == -ECONNRESET;
	bool was;
	int i;

	if (!h)
		return;
	pthread_mutex_lock(&h->mu);
	i = health_slot(h, node_id);
	was = h->v[i].until_ms != 0;
	h->v[i].probing = false;
	h->v[i].until_ms = net ? mono_ms() + PEER_SUSPECT_MS : 0;
	pthread_mutex_unlock(&h->mu);
	if (net && !was)
		log_warnx("peer_suspect node=%s err=%d msg=\"calls fail at once for %d ms, then one tries again\"",
			  node_id, err, PEER_SUSPECT_MS);
	else if (!net && was)
		log_info("peer_reachable node=%s", node_id);
}

/* Ends the call: the connection goes back to the pool when the exchange ended cleanly
 * (a reply read to its last byte, no Connection: close), else it is closed. */
static void call_end(struct pcall *k)
{
	if (k->c && k->pool && k->replied && k->m && k->m->body_left == 0 && !http1s_closes(k->m))
		pool_put(k->pool, &k->peer, k->c);
	else
		tls_close(k->c);
	free(k->m);
	k->c = NULL;
	k->m = NULL;
}

/* Connects to p (its CN checked) and sends the head of method on k->target. */
static int call_start(const struct peer_cfg *pc, const struct peer *p, struct pcall *k,
		      const char *method, const char *extra, int64_t body_len)
{
	struct tls_client_opts o = { .ca_pem = pc->ca_pem, .peer_cn = p->node_id,
				     .cert_pem = pc->cert_pem, .key_pem = pc->key_pem,
				     .timeout_ms = pc->timeout_ms > 0 ? pc->timeout_ms :
						   PEER_TIMEOUT_MS,
				     .connect_timeout_ms = PEER_CONNECT_MS };
	char port[16];
	int err;

	k->c = NULL;
	k->pool = pc->health;
	k->peer = *p;
	k->replied = false;
	if (!pc->ca_pem || !p->node_id || !p->node_id[0] ||
	    net_split_hostport(p->addr, k->host, sizeof(k->host), port, sizeof(port), NULL))
		return -EINVAL;
	if (!(k->m = malloc(sizeof(*k->m))))
		return -ENOMEM;
	/* A kept-alive connection first; one that fails to take the head gets a fresh one
	 * (nothing of the request reached the peer in a usable form). */
	if ((k->c = pool_take(pc->health, p))) {
		if (!http1s_write_request(k->c, method, k->host, k->target, extra, body_len, true))
			return 0;
		tls_close(k->c);
		k->c = NULL;
	}
	if (!health_admit(pc->health, p->node_id)) {
		free(k->m);
		k->m = NULL;
		return -EHOSTDOWN;
	}
	err = tls_connect(k->host, port, &o, &k->c);
	health_note(pc->health, p->node_id, err);
	if (!err)
		err = http1s_write_request(k->c, method, k->host, k->target, extra, body_len,
					   k->pool != NULL);
	if (err)
		call_end(k);
	return err;
}

/* The reply's head: its status (2xx), or the peer's error as an errno. */
static int call_reply(struct pcall *k, bool head_only)
{
	char body[PEER_ERR_BODY], code[64] = "";
	struct json_tok t[16];
	size_t len = 0;
	ssize_t n = 1;
	int err = http1s_read_head(k->c, false, head_only, k->m);

	if (err)
		return err == -ENODATA ? -ECONNRESET : err;
	k->replied = true;
	if (k->m->h.status < 300)
		return k->m->h.status;
	while (n > 0 && len < sizeof(body) - 1)
		if ((n = http1s_read_body(k->c, k->m, body + len, sizeof(body) - 1 - len)) > 0)
			len += (size_t)n;
	if (json_parse(body, len, t, 16) > 0 && t[0].type == JSON_OBJ)
		json_str(body, t, 0, "error", code, sizeof(code));
	return iwire_errno(k->m->h.status, code[0] ? code : NULL);
}

static int held_of(struct pcall *k, uint64_t version, uint64_t *held)
{
	char v[32];

	if (http1s_field(k->m, "X-Cairn-Version", v, sizeof(v)) < 0 || iwire_u64(v, held))
		return -EPROTO;
	return *held > version ? 1 : 0;
}

static int send_fd(struct pcall *k, int fd, int64_t size)
{
	unsigned char *buf = malloc(PEER_CHUNK);
	int64_t pos = 0;
	int err = buf ? 0 : -ENOMEM;

	while (!err && pos < size) {
		size_t want = size - pos < PEER_CHUNK ? (size_t)(size - pos) : PEER_CHUNK;
		ssize_t n = pread(fd, buf, want, pos);

		if (n < 0 && errno == EINTR)
			continue;
		err = n < 0 ? -errno : n == 0 ? -EIO : tls_write(k->c, buf, (size_t)n);
		pos += n > 0 ? n : 0;
	}
	free(buf);
	return err;
}

int peer_put_fd(const struct peer_cfg *pc, const struct peer *p, const char *bucket,
		const char *key, size_t key_len, int fd, const struct store_row *row,
		uint64_t *held)
{
	char *hdrs = malloc(IWIRE_HDRS_MAX);
	struct pcall k;
	int err = hdrs ? iwire_target(k.target, sizeof(k.target), IWIRE_OBJ, bucket, key,
				      key_len, NULL) : -ENOMEM;

	if (!err && (row->tomb || row->info.size < 0))
		err = -EINVAL;
	if (!err && (err = iwire_row_headers(row, hdrs, IWIRE_HDRS_MAX)) > 0)
		err = call_start(pc, p, &k, "PUT", hdrs, row->info.size);
	free(hdrs);
	if (err)
		return err;
	err = send_fd(&k, fd, row->info.size);
	/* A peer may answer early (it holds a newer version, or fails) and stop reading. */
	if (!err || err == -EPIPE || err == -ECONNRESET) {
		int st = call_reply(&k, false);

		err = st < 0 ? (err ? err : st) : err ? err : held_of(&k, row->version, held);
	}
	call_end(&k);
	return err;
}

int peer_delete(const struct peer_cfg *pc, const struct peer *p, const char *bucket,
		const char *key, size_t key_len, uint64_t version, uint64_t *held)
{
	char hdr[64];
	struct pcall k;
	int err = iwire_target(k.target, sizeof(k.target), IWIRE_OBJ, bucket, key, key_len, NULL);

	snprintf(hdr, sizeof(hdr), "X-Cairn-Version: %llu\r\n", (unsigned long long)version);
	if (err || (err = call_start(pc, p, &k, "DELETE", hdr, -1)))
		return err;
	err = call_reply(&k, false);
	if (err >= 0)
		err = held_of(&k, version, held);
	call_end(&k);
	return err;
}

/* The row in a GET/HEAD reply (or in a tombstone's 404). */
static int row_of(struct pcall *k, int status, struct store_row *out)
{
	char cr[96], *slash;
	uint64_t total;

	if (iwire_row_parse(k->m, out))
		return -EPROTO;
	out->info.size = k->m->h.content_length;
	if (status != 206)
		return out->info.size < 0 ? -EPROTO : 0;
	if (http1s_field(k->m, "Content-Range", cr, sizeof(cr)) < 0 ||
	    !(slash = strchr(cr, '/')) || iwire_u64(slash + 1, &total) || total > INT64_MAX)
		return -EPROTO;
	out->info.size = (int64_t)total;
	return 0;
}

/* Sends a GET/HEAD; *st the status, or the error (a tombstone's 404 fills out). */
static int obj_call(const struct peer_cfg *pc, const struct peer *p, struct pcall *k,
		    const char *method, const char *extra, struct store_row *out, int *st)
{
	int err;

	memset(out, 0, sizeof(*out));
	if ((err = call_start(pc, p, k, method, extra, -1)))
		return err;
	*st = call_reply(k, !strcmp(method, "HEAD"));
	if (*st == -ENOENT && iwire_row_parse(k->m, out) == 0 && out->tomb)
		return -ENOENT;
	memset(out, 0, sizeof(*out));
	if (*st < 0)
		return *st;
	return row_of(k, *st, out);
}

int peer_head(const struct peer_cfg *pc, const struct peer *p, const char *bucket,
	      const char *key, size_t key_len, struct store_row *out)
{
	struct pcall k;
	int st, err = iwire_target(k.target, sizeof(k.target), IWIRE_OBJ, bucket, key, key_len,
				   NULL);

	if (err)
		return err;
	err = obj_call(pc, p, &k, "HEAD", "", out, &st);
	call_end(&k);
	return err;
}

static int receive(struct pcall *k, int (*sink)(void *, const void *, size_t), void *ctx)
{
	unsigned char *buf = malloc(PEER_CHUNK);
	ssize_t n = 0;
	int err = buf ? 0 : -ENOMEM;

	while (!err && (n = http1s_read_body(k->c, k->m, buf, PEER_CHUNK)) > 0)
		err = sink(ctx, buf, (size_t)n);
	free(buf);
	return err ? err : (int)n;
}

int peer_get(const struct peer_cfg *pc, const struct peer *p, const char *bucket,
	     const char *key, size_t key_len, int64_t off, int64_t len,
	     int (*sink)(void *ctx, const void *buf, size_t n), void *ctx,
	     struct store_row *out)
{
	char range[80] = "";
	struct pcall k;
	int st, err = iwire_target(k.target, sizeof(k.target), IWIRE_OBJ, bucket, key, key_len,
				   NULL);

	if (off < 0 || len == 0)
		return -EINVAL;
	if (off > 0 || len > 0)
		snprintf(range, sizeof(range), len > 0 ? "Range: bytes=%lld-%lld\r\n" :
			 "Range: bytes=%lld-\r\n", (long long)off, (long long)(off + len - 1));
	if (err)
		return err;
	if (!(err = obj_call(pc, p, &k, "GET", range, out, &st)))
		err = receive(&k, sink, ctx);
	call_end(&k);
	return err;
}

static int fd_sink(void *ctx, const void *buf, size_t n)
{
	const unsigned char *b = buf;

	while (n) {
		ssize_t w = write(*(int *)ctx, b, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

int peer_get_fd(const struct peer_cfg *pc, const struct peer *p, const char *bucket,
		const char *key, size_t key_len, int fd, struct store_row *out)
{
	return peer_get(pc, p, bucket, key, key_len, 0, -1, fd_sink, &fd, out);
}

/* --- JSON replies: listing pages and buckets --- */

/* A whole JSON reply (at most max bytes) into *out (malloc'ed, NUL-terminated). */
static int read_json(struct pcall *k, size_t max, char **out, size_t *len)
{
	size_t cap = 64 * 1024;
	char *b = malloc(cap + 1);
	ssize_t n = 1;

	*len = 0;
	while (b && n > 0) {
		if (*len == cap) {
			char *nb = cap < max ? realloc(b, cap * 4 + 1) : NULL;

			if (!nb)
				break;
			b = nb;
			cap *= 4;
		}
		if ((n = http1s_read_body(k->c, k->m, b + *len, cap - *len)) > 0)
			*len += (size_t)n;
	}
	if (!b || n != 0) {
		free(b);
		return !b ? -ENOMEM : n < 0 ? (int)n : -EFBIG;
	}
	b[*len] = '\0';
	*out = b;
	return 0;
}

/* Sends a body-less request and reads its JSON reply, parsed into *toks. */
static int json_call(const struct peer_cfg *pc, const struct peer *p, struct pcall *k,
		     const char *method, int ntoks, char **text, struct json_tok **toks)
{
	size_t len;
	int n, err = call_start(pc, p, k, method, "", -1);

	*text = NULL;
	*toks = NULL;
	if (err)
		return err;
	if ((err = call_reply(k, false)) < 0 || (err = read_json(k, PEER_LIST_MAX, text, &len)))
		return err;
	if (!(*toks = malloc((size_t)ntoks * sizeof(**toks))))
		return -ENOMEM;
	n = json_parse(*text, len, *toks, ntoks);
	return n > 0 && (*toks)[0].type == JSON_OBJ ? 0 : -EPROTO;
}

static int list_row(const char *text, const struct json_tok *t, int i,
		    struct store_row_entry *e, char *key, char *etag)
{
	int64_t v, size, mtime;
	int err;

	err = json_str(text, t, i, "key", key, STORE_KEY_MAX + 1);
	if (!err)
		err = json_int(text, t, i, "version", &v);
	if (!err)
		err = json_int(text, t, i, "size", &size);
	if (!err)
		err = json_int(text, t, i, "mtime_ms", &mtime);
	if (!err)
		err = json_str(text, t, i, "etag", etag, STORE_ETAG_MAX + 1);
	if (!err)
		err = json_bool(text, t, i, "tomb", &e->tomb);
	if (err || v <= 0)
		return -EPROTO;
	*e = (struct store_row_entry){ key, strlen(key), (uint64_t)v, e->tomb, size, mtime, etag };
	return 0;
}

static int list_rows(const char *text, const struct json_tok *t,
		     int (*fn)(void *, const struct store_row_entry *), void *ctx, bool *truncated)
{
	char key[STORE_KEY_MAX + 1], etag[STORE_ETAG_MAX + 1];
	int rows = json_find(text, t, 0, "rows"), err = 0;

	if (rows < 0 || t[rows].type != JSON_ARR || json_bool(text, t, 0, "truncated", truncated))
		return -EPROTO;
	for (int i = 0; !err && i < t[rows].size; i++) {
		struct store_row_entry e;

		if (!(err = list_row(text, t, json_elem(t, rows, i), &e, key, etag)))
			err = fn(ctx, &e);
	}
	return err;
}

static int list_query(char *q, size_t cap, const char *prefix, size_t plen, const char *after,
		      size_t alen, int max)
{
	size_t n = (size_t)snprintf(q, cap, "max=%d", max);

	if (plen && n + 8 + 3 * plen < cap) {
		memcpy(q + n, "&prefix=", 8);
		n += 8;
		n += uri_encode(prefix, plen, q + n, cap - n, true);
	}
	if (alen && n + 7 + 3 * alen < cap) {
		memcpy(q + n, "&after=", 7);
		n += 7;
		n += uri_encode(after, alen, q + n, cap - n, true);
	}
	q[n] = '\0';
	return 0;
}

int peer_list(const struct peer_cfg *pc, const struct peer *p, const char *bucket,
	      const char *prefix, size_t prefix_len, const char *after, size_t after_len,
	      int max, int (*fn)(void *ctx, const struct store_row_entry *e), void *ctx,
	      bool *truncated)
{
	char *query = malloc(PEER_QUERY_MAX), *text = NULL;
	struct json_tok *t = NULL;
	struct pcall k = { 0 };
	int err = query ? 0 : -ENOMEM;

	*truncated = false;
	if (!err && (max < 1 || max > STORE_ROWS_PAGE_MAX || prefix_len > STORE_KEY_MAX ||
		     after_len > STORE_KEY_MAX))
		err = -EINVAL;
	if (!err)
		err = list_query(query, PEER_QUERY_MAX, prefix, prefix_len, after, after_len, max);
	if (!err)
		err = iwire_target(k.target, sizeof(k.target), IWIRE_LIST, bucket, NULL, 0, query);
	if (!err && !(err = json_call(pc, p, &k, "GET", PEER_LIST_TOKS, &text, &t)))
		err = list_rows(text, t, fn, ctx, truncated);
	if (k.c)
		call_end(&k);
	free(t);
	free(text);
	free(query);
	return err;
}

static int bucket_call(const struct peer_cfg *pc, const struct peer *p, const char *bucket,
		       const char *method, uint64_t version)
{
	char extra[48] = "";
	struct pcall k;
	int err = iwire_target(k.target, sizeof(k.target), IWIRE_BUCKET, bucket, NULL, 0, NULL);

	if (version)
		snprintf(extra, sizeof(extra), "X-Cairn-Version: %llu\r\n", (unsigned long long)version);
	if (err || (err = call_start(pc, p, &k, method, extra, -1)))
		return err;
	err = call_reply(&k, false);
	call_end(&k);
	return err < 0 ? err : 0;
}

int peer_bucket_create(const struct peer_cfg *pc, const struct peer *p, const char *bucket,
		       uint64_t version)
{
	return bucket_call(pc, p, bucket, "PUT", version);
}

int peer_bucket_delete(const struct peer_cfg *pc, const struct peer *p, const char *bucket,
		       uint64_t version)
{
	return bucket_call(pc, p, bucket, "DELETE", version);
}

int peer_bucket_log(const struct peer_cfg *pc, const struct peer *p,
		    int (*fn)(void *ctx, const struct cbucket_ent *e), void *ctx)
{
	struct pcall k = { 0 };
	char *text = NULL;
	size_t len;
	int err;

	snprintf(k.target, sizeof(k.target), "%s", IWIRE_BUCKET_LOG);
	err = call_start(pc, p, &k, "GET", "", -1);
	if (err)
		return err;
	if ((err = call_reply(&k, false)) >= 0 && !(err = read_json(&k, PEER_LIST_MAX, &text, &len)))
		err = cbucket_parse(text, len, fn, ctx);
	call_end(&k);
	free(text);
	return err == -EINVAL ? -EPROTO : err;
}

int peer_buckets(const struct peer_cfg *pc, const struct peer *p,
		 int (*fn)(void *ctx, const struct store_bucket *b), void *ctx)
{
	char *text = NULL;
	struct json_tok *t = NULL;
	struct pcall k = { 0 };
	int arr, err;

	snprintf(k.target, sizeof(k.target), "%s", IWIRE_BUCKETS);
	err = json_call(pc, p, &k, "GET", 16 + 8 * 4096, &text, &t);
	arr = err ? -1 : json_find(text, t, 0, "buckets");
	if (!err && (arr < 0 || t[arr].type != JSON_ARR))
		err = -EPROTO;
	for (int i = 0; !err && i < t[arr].size; i++) {
		struct store_bucket b;
		int e = json_elem(t, arr, i);

		if (json_str(text, t, e, "name", b.name, sizeof(b.name)) ||
		    json_int(text, t, e, "created_ms", &b.created_ms))
			err = -EPROTO;
		else
			err = fn(ctx, &b);
	}
	if (k.c)
		call_end(&k);
	free(t);
	free(text);
	return err;
}

/* --- a multipart upload at its home node --- */

/* {"etag", "size", "mtime_ms", "nparts"} of a part or a completed object. */
static int info_reply(struct pcall *k, struct store_objinfo *out)
{
	struct json_tok t[16];
	char *text = NULL;
	size_t len;
	int64_t np = 0;
	int err = read_json(k, 4096, &text, &len);

	if (!err && (json_parse(text, len, t, 16) < 1 || t[0].type != JSON_OBJ ||
		     json_str(text, t, 0, "etag", out->etag, sizeof(out->etag)) ||
		     json_int(text, t, 0, "size", &out->size) ||
		     json_int(text, t, 0, "mtime_ms", &out->mtime_ms) ||
		     json_int(text, t, 0, "nparts", &np)))
		err = -EPROTO;
	out->nparts = (int)np;
	free(text);
	return err;
}

static int upload_target(struct pcall *k, const char *bucket, const char *upload_id,
			 const char *query)
{
	return iwire_target(k->target, sizeof(k->target), IWIRE_UPLOAD, bucket, upload_id,
			    strlen(upload_id), query);
}

int peer_mpu_part(const struct peer_cfg *pc, const struct peer *p, const char *bucket,
		  const char *upload_id, int part_no, int fd, int64_t size, const char *etag,
		  struct store_objinfo *out)
{
	char q[24], hdr[STORE_ETAG_MAX + 32];
	struct pcall k;
	int err;

	snprintf(q, sizeof(q), "part=%d", part_no);
	snprintf(hdr, sizeof(hdr), "X-Cairn-ETag: %s\r\n", etag);
	if ((err = upload_target(&k, bucket, upload_id, q)) ||
	    (err = call_start(pc, p, &k, "PUT", hdr, size)))
		return err;
	err = send_fd(&k, fd, size);
	if (!err || err == -EPIPE || err == -ECONNRESET) {
		int st = call_reply(&k, false);

		err = st < 0 ? (err ? err : st) : err ? err : info_reply(&k, out);
	}
	call_end(&k);
	return err;
}

int peer_mpu_complete(const struct peer_cfg *pc, const struct peer *p, const char *bucket,
		      const char *upload_id, const struct store_mpu_part *parts, int nparts,
		      struct store_objinfo *out)
{
	char *body = malloc(IWIRE_COMPLETE_MAX);
	struct json_w w;
	struct pcall k;
	int len, err;

	if (!body)
		return -ENOMEM;
	json_w_init(&w, body, IWIRE_COMPLETE_MAX);
	json_w_obj(&w);
	json_w_key(&w, "parts");
	json_w_arr(&w);
	for (int i = 0; i < nparts; i++) {
		json_w_obj(&w);
		json_w_kint(&w, "n", parts[i].part_no);
		json_w_kstr(&w, "etag", parts[i].etag);
		json_w_obj_end(&w);
	}
	json_w_arr_end(&w);
	json_w_obj_end(&w);
	len = json_w_end(&w);
	err = len < 0 ? len : upload_target(&k, bucket, upload_id, "complete");
	if (!err && !(err = call_start(pc, p, &k, "POST", "", len))) {
		err = tls_write(k.c, body, (size_t)len);
		if (!err || err == -EPIPE || err == -ECONNRESET) {
			int st = call_reply(&k, false);

			err = st < 0 ? (err ? err : st) : err ? err : info_reply(&k, out);
		}
		call_end(&k);
	}
	free(body);
	return err;
}

int peer_mpu_abort(const struct peer_cfg *pc, const struct peer *p, const char *bucket,
		   const char *upload_id)
{
	struct pcall k;
	int err = upload_target(&k, bucket, upload_id, NULL);

	if (err || (err = call_start(pc, p, &k, "DELETE", "", -1)))
		return err;
	err = call_reply(&k, false);
	call_end(&k);
	return err < 0 ? err : 0;
}

int peer_mpu_parts(const struct peer_cfg *pc, const struct peer *p, const char *bucket,
		   const char *upload_id, int after, int max, char *key, size_t *key_len,
		   int (*fn)(void *ctx, const struct store_mpu_part *part), void *ctx,
		   bool *truncated)
{
	char q[48], *text = NULL, *kbuf = malloc(STORE_KEY_MAX + 1);
	struct json_tok *t = NULL;
	struct pcall k = { 0 };
	int arr, err;

	snprintf(q, sizeof(q), "after=%d&max=%d", after, max);
	err = kbuf ? upload_target(&k, bucket, upload_id, q) : -ENOMEM;
	if (!err)
		err = json_call(pc, p, &k, "GET", 16 + 10 * 1000, &text, &t);
	if (!err && (json_str(text, t, 0, "key", kbuf, STORE_KEY_MAX + 1) ||
		     json_bool(text, t, 0, "truncated", truncated) ||
		     (arr = json_find(text, t, 0, "parts")) < 0 || t[arr].type != JSON_ARR))
		err = -EPROTO;
	if (!err) {
		*key_len = strlen(kbuf);
		memcpy(key, kbuf, *key_len);
	}
	for (int i = 0; !err && i < t[arr].size; i++) {
		struct store_mpu_part part = { 0 };
		int e = json_elem(t, arr, i);
		int64_t n;

		if (json_int(text, t, e, "n", &n) || n < 1 || n > STORE_PARTS_MAX ||
		    json_str(text, t, e, "etag", part.etag, sizeof(part.etag)) ||
		    json_int(text, t, e, "size", &part.size) ||
		    json_int(text, t, e, "mtime_ms", &part.mtime_ms))
			err = -EPROTO;
		part.part_no = (int)n;
		if (!err)
			err = fn(ctx, &part);
	}
	if (k.c)
		call_end(&k);
	free(t);
	free(text);
	free(kbuf);
	return err;
}
