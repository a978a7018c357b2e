/* crepair.c — the repair thread: passes over this node's rows (bucket by bucket, a page
 * of the index at a time), each row compared with what the key's owners hold (HEAD) and
 * pushed to those behind (PUT from the node's verified copy, or DELETE for a tombstone);
 * a copy this node holds without owning the key is dropped once every owner holds it. */
#include "crepair.h"
#include "cstore_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../lib/log.h"

struct crepair {
	struct cstore *cs;
	int rest_s;
	int64_t rate;			/* bytes a second, 0: no cap */
	int64_t tokens;			/* the pacing bucket: bytes that may go now (< 0: owed) */
	int64_t tokens_ms;		/* when it was last filled */
	pthread_t thread;
	pthread_mutex_t mu;		/* stop and st */
	pthread_cond_t cv;		/* signalled by crepair_stop */
	bool stop;
	struct crepair_status st;
};

struct rp_row {
	uint64_t version;
	size_t key_len;
	char key[STORE_KEY_MAX];
};

struct rp_pass {
	struct crepair *r;
	const char *bucket;
	struct rp_row *rows;		/* the page in hand */
	int nrows;
	long rows_seen, pushed, dropped, errors;
	int64_t pushed_bytes;
	int fd;				/* the row's body spooled (-1: not yet) */
	struct store_row row;		/* the row as this node holds it now */
};

static bool rp_stopping(struct crepair *r)
{
	bool stop;

	pthread_mutex_lock(&r->mu);
	stop = r->stop;
	pthread_mutex_unlock(&r->mu);
	return stop;
}

/* Sleeps ms unless stopped first: true when stopped. */
static bool rp_sleep(struct crepair *r, long ms)
{
	struct timespec ts;
	bool stop;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&r->mu);
	while (!r->stop && pthread_cond_timedwait(&r->cv, &r->mu, &ts) != ETIMEDOUT)
		;
	stop = r->stop;
	pthread_mutex_unlock(&r->mu);
	return stop;
}

static int64_t rp_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Token-bucket pacing of pushed bytes: at most a second's worth in a burst, and a sleep
 * whenever more went out than the rate allows. */
static void rp_pace(struct crepair *r, int64_t bytes)
{
	int64_t now = rp_now_ms();

	if (r->rate <= 0)
		return;
	r->tokens += (now - r->tokens_ms) * r->rate / 1000;
	if (r->tokens > r->rate)
		r->tokens = r->rate;
	r->tokens_ms = now;
	r->tokens -= bytes;
	if (r->tokens < 0)
		rp_sleep(r, -r->tokens * 1000 / r->rate);
}

/* The pass's counters, where crepair_status reads them. */
static void rp_publish(struct rp_pass *ps, bool in_pass)
{
	struct crepair_status *st = &ps->r->st;

	pthread_mutex_lock(&ps->r->mu);
	st->in_pass = in_pass;
	st->rows = ps->rows_seen;
	st->pushed_total += ps->pushed - st->pushed;
	st->pushed_bytes_total += ps->pushed_bytes - st->pushed_bytes;
	st->pushed = ps->pushed;
	st->pushed_bytes = ps->pushed_bytes;
	st->dropped = ps->dropped;
	st->errors = ps->errors;
	pthread_mutex_unlock(&ps->r->mu);
}

/* The row's bytes, verified, into an unlinked spool file: 0, -ESTALE (the node's row
 * changed since: left for the next pass), -errno. */
static int rp_spool(struct rp_pass *ps, const struct rp_row *rw)
{
	struct cstore *cs = ps->r->cs;
	struct store_rep *rep = NULL;
	struct store_row now;
	char *buf = NULL;
	int fd = -1, rc = store_rep_open(cs->st, ps->bucket, rw->key, rw->key_len, &now, &rep);

	if (rc == -ENOENT || (!rc && now.version != ps->row.version))
		rc = -ESTALE;
	if (rc || (rc = cs_spool(cs, &fd)))
		goto out;
	if (!(buf = malloc(PEER_CHUNK))) {
		rc = -ENOMEM;
		goto out;
	}
	for (int64_t pos = 0; pos < now.info.size && !rc; ) {
		size_t n = now.info.size - pos < PEER_CHUNK ? (size_t)(now.info.size - pos) : PEER_CHUNK;
		ssize_t w;

		rc = store_rep_read(rep, pos, buf, n);
		if (!rc && (w = pwrite(fd, buf, n, pos)) != (ssize_t)n)
			rc = w < 0 ? -errno : -EIO;
		pos += (int64_t)n;
	}
	if (!rc) {
		ps->row = now;
		ps->fd = fd;
		fd = -1;
	}
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	if (rep)
		store_rep_close(rep);
	return rc;
}

/* Pushes this node's row to node p: 0 when p holds it (or newer) now, -errno. */
static int rp_push(struct rp_pass *ps, const struct rp_row *rw, const struct peer *p)
{
	struct cstore *cs = ps->r->cs;
	uint64_t held, bv;
	int rc = 0;

	if (!ps->row.tomb && ps->fd < 0 && (rc = rp_spool(ps, rw)))
		return rc;
	for (int tries = 0; tries < 2; tries++) {
		rc = ps->row.tomb ? peer_delete(&cs->peer, p, ps->bucket, rw->key, rw->key_len,
						ps->row.version, &held)
				  : peer_put_fd(&cs->peer, p, ps->bucket, rw->key, rw->key_len,
						ps->fd, &ps->row, &held);
		/* A node that missed the bucket's create gets it now, with its version. */
		if (rc != -ENOENT || tries || !(bv = cs_bucket_version(cs, ps->bucket)) ||
		    peer_bucket_create(&cs->peer, p, ps->bucket, bv) < 0)
			break;
	}
	return rc < 0 ? rc : 0;
}

enum rp_state { RP_UNKNOWN, RP_LACKS, RP_HOLDS };

static void rp_failed(struct rp_pass *ps, const struct rp_row *rw, const struct cmap_node *n,
		      int rc)
{
	ps->errors++;
	if (rc == -EHOSTDOWN)	/* a suspect peer (peer_suspect was logged): the next pass */
		log_debug("cluster_repair_push_failed bucket=%s key_len=%zu node=%s err=%d",
			  ps->bucket, rw->key_len, n->node_id, rc);
	else
		log_warnx("cluster_repair_push_failed bucket=%s key_len=%zu node=%s err=%d",
			  ps->bucket, rw->key_len, n->node_id, rc);
}

/* Whether owner n holds this row's version or a newer one (HEAD). */
static enum rp_state rp_ask(struct rp_pass *ps, const struct rp_row *rw, const struct cmap_node *n)
{
	struct peer p = { n->node_id, n->internal_addr };
	struct store_row theirs = { .version = 0 };
	int rc;

	if (!p.addr[0])
		return RP_UNKNOWN;
	rc = peer_head(&ps->r->cs->peer, &p, ps->bucket, rw->key, rw->key_len, &theirs);
	if (rc && rc != -ENOENT) {
		rp_failed(ps, rw, n, rc);
		return RP_UNKNOWN;
	}
	return theirs.version >= ps->row.version ? RP_HOLDS : RP_LACKS;
}

/* Pushes this node's copy to owner n, which lacks it: its new state. */
static enum rp_state rp_give(struct rp_pass *ps, const struct rp_row *rw, const struct cmap_node *n)
{
	struct peer p = { n->node_id, n->internal_addr };
	int rc = rp_push(ps, rw, &p);

	if (rc == -ESTALE)
		return RP_UNKNOWN;
	if (rc) {
		rp_failed(ps, rw, n, rc);
		return RP_UNKNOWN;
	}
	ps->pushed++;
	if (!ps->row.tomb) {
		ps->pushed_bytes += ps->row.info.size;
		rp_pace(ps->r, ps->row.info.size);
	}
	return RP_HOLDS;
}

/* One row: the key's owners asked for their versions; the first owner in the key's order
 * that holds this version (or this node, when no owner does) pushes it to the owners that
 * lack it, so that a key moving to a new node is sent once, not by every old holder; the
 * copy is dropped when this node is not an owner and every owner holds it. */
static void rp_row(struct rp_pass *ps, const struct cmap *m, const struct rp_row *rw)
{
	struct cstore *cs = ps->r->cs;
	int own[CMAP_NODES_MAX], self = cs_self(cs, m), pusher = -1, have = 0, rc;
	int n = cmap_owners(m, ps->bucket, rw->key, rw->key_len, own, CMAP_NODES_MAX);
	int nown = n < m->replicas ? n : m->replicas;
	enum rp_state st[CMAP_NODES_MAX];
	bool owner = false;

	ps->rows_seen++;
	ps->fd = -1;
	rc = store_row_get(cs->st, ps->bucket, rw->key, rw->key_len, &ps->row);
	if (rc || ps->row.version != rw->version)
		return;		/* gone or rewritten since the page was read: the next pass */
	for (int i = 0; i < nown && !rp_stopping(ps->r); i++) {
		owner |= own[i] == self;
		st[i] = own[i] == self ? RP_HOLDS : rp_ask(ps, rw, &m->nodes[own[i]]);
		if (st[i] == RP_HOLDS && pusher < 0)
			pusher = own[i];
	}
	if (rp_stopping(ps->r))
		goto out;
	for (int i = 0; i < nown; i++) {
		if (st[i] == RP_LACKS && (pusher < 0 || pusher == self))
			st[i] = rp_give(ps, rw, &m->nodes[own[i]]);
		have += st[i] == RP_HOLDS;
	}
	if (owner || nown < 1 || have < nown)
		goto out;
	rc = store_row_forget(cs->st, ps->bucket, rw->key, rw->key_len, ps->row.version);
	if (rc)
		ps->errors++;
	else
		ps->dropped++;
out:
	if (ps->fd >= 0)
		close(ps->fd);
}

static int rp_collect(void *ctx, const struct store_row_entry *e)
{
	struct rp_pass *ps = ctx;
	struct rp_row *rw = &ps->rows[ps->nrows++];

	rw->version = e->version;
	rw->key_len = e->key_len;
	memcpy(rw->key, e->key, e->key_len);
	return 0;
}

/* Every row of one bucket, a page at a time. */
static void rp_bucket(struct rp_pass *ps)
{
	struct cstore *cs = ps->r->cs;
	char after[STORE_KEY_MAX];
	size_t after_len = 0;
	bool more = true;

	while (more && !rp_stopping(ps->r)) {
		const struct cmap *m;
		int rc;

		ps->nrows = 0;
		rc = store_rows_list(cs->st, ps->bucket, "", 0, after, after_len, CREPAIR_PAGE,
				     rp_collect, ps, &more);
		if (rc) {
			if (rc != -ENOENT)
				ps->errors++;
			return;
		}
		if (ps->nrows == 0)
			return;
		m = cmap_sync_get(cs->maps);
		for (int i = 0; m && i < ps->nrows && !rp_stopping(ps->r); i++)
			rp_row(ps, m, &ps->rows[i]);
		if (m)
			cmap_sync_put(cs->maps, m);
		rp_publish(ps, true);
		after_len = ps->rows[ps->nrows - 1].key_len;
		memcpy(after, ps->rows[ps->nrows - 1].key, after_len);
		if (more && rp_sleep(ps->r, CREPAIR_PAGE_PAUSE_MS))
			return;
	}
}

struct rp_names {
	int n, cap;
	char (*v)[STORE_BUCKET_MAX + 1];
};

static int rp_name(void *ctx, const struct store_bucket *b)
{
	struct rp_names *nm = ctx;

	if (nm->n == nm->cap) {
		int cap = nm->cap ? nm->cap * 2 : 16;
		void *v = realloc(nm->v, (size_t)cap * sizeof(*nm->v));

		if (!v)
			return -ENOMEM;
		nm->v = v;
		nm->cap = cap;
	}
	memcpy(nm->v[nm->n++], b->name, sizeof(b->name));
	return 0;
}


static int rp_merge(void *ctx, const struct cbucket_ent *e)
{
	int rc = cbucket_record(ctx, e);

	return rc < 0 ? rc : 0;
}

/* Buckets first: every peer's bucket log merged into this node's, and the store made to
 * follow it, so the rows pushed next find their buckets (and none comes back deleted). */
static int rp_buckets(struct crepair *r, struct rp_pass *ps)
{
	struct cstore *cs = r->cs;
	const struct cmap *m = cmap_sync_get(cs->maps);
	int self, rc;

	if (!m || !cs->buckets) {
		if (m)
			cmap_sync_put(cs->maps, m);
		return 0;
	}
	self = cs_self(cs, m);
	cs_local_replicas(cs, m);
	for (int i = 0; i < m->nnodes && !rp_stopping(r); i++) {
		struct peer p = { m->nodes[i].node_id, m->nodes[i].internal_addr };

		if (i == self || !p.addr[0])
			continue;
		if ((rc = peer_bucket_log(&cs->peer, &p, rp_merge, cs->buckets)) < 0) {
			ps->errors++;
			log_debug("cluster_repair_bucket_log_failed node=%s err=%d", p.node_id, rc);
		}
	}
	cmap_sync_put(cs->maps, m);
	if ((rc = cbucket_apply(cs->buckets, cs->st)) < 0) {
		ps->errors++;
		log_warnx("cluster_repair_buckets_failed err=%d", rc);
	}
	return rc > 0 ? rc : 0;
}

static void rp_pass_run(struct crepair *r, struct rp_pass *ps)
{
	struct rp_names nm = { 0 };
	int64_t t0 = rp_now_ms();
	int rc, buckets;

	ps->rows_seen = ps->pushed = ps->dropped = ps->errors = 0;
	ps->pushed_bytes = 0;
	pthread_mutex_lock(&r->mu);
	r->st.pushed = r->st.pushed_bytes = 0;
	pthread_mutex_unlock(&r->mu);
	rp_publish(ps, true);
	buckets = rp_buckets(r, ps);
	rc = store_bucket_list(r->cs->st, rp_name, &nm);
	if (rc)
		ps->errors++;
	for (int i = 0; !rc && i < nm.n && !rp_stopping(r); i++) {
		ps->bucket = nm.v[i];
		rp_bucket(ps);
	}
	free(nm.v);
	rp_publish(ps, false);
	pthread_mutex_lock(&r->mu);
	r->st.passes++;
	r->st.rows_last = ps->rows_seen;
	r->st.last_pass_ms = rp_now_ms() - t0;
	pthread_mutex_unlock(&r->mu);
	log_info("cluster_repair_pass buckets_changed=%d rows=%ld pushed=%ld bytes=%lld dropped=%ld errors=%ld elapsed_ms=%lld",
		 buckets, ps->rows_seen, ps->pushed, (long long)ps->pushed_bytes, ps->dropped,
		 ps->errors, (long long)(rp_now_ms() - t0));
}

static void *rp_main(void *arg)
{
	struct crepair *r = arg;
	struct rp_pass ps = { .r = r, .fd = -1 };

	ps.rows = malloc(CREPAIR_PAGE * sizeof(*ps.rows));
	if (!ps.rows) {
		log_errorx("cluster_repair_failed err=%d", -ENOMEM);
		return NULL;
	}
	while (!rp_sleep(r, (long)r->rest_s * 1000))
		rp_pass_run(r, &ps);
	free(ps.rows);
	return NULL;
}

void crepair_status(struct crepair *r, struct crepair_status *out)
{
	pthread_mutex_lock(&r->mu);
	*out = r->st;
	pthread_mutex_unlock(&r->mu);
}

int crepair_start(struct cstore *cs, int rest_s, int64_t rate_bytes_s, struct crepair **out)
{
	struct crepair *r = calloc(1, sizeof(*r));
	pthread_condattr_t ca;
	int rc;

	if (!r)
		return -ENOMEM;
	r->cs = cs;
	r->rest_s = rest_s > 0 ? rest_s : 1;
	r->rate = r->st.rate_bytes_s = rate_bytes_s > 0 ? rate_bytes_s : 0;
	r->tokens = r->rate;
	r->tokens_ms = rp_now_ms();
	pthread_mutex_init(&r->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cv, &ca);
	pthread_condattr_destroy(&ca);
	rc = -pthread_create(&r->thread, NULL, rp_main, r);
	if (rc) {
		pthread_cond_destroy(&r->cv);
		pthread_mutex_destroy(&r->mu);
		free(r);
		return rc;
	}
	pthread_mutex_lock(&cs->mu);
	cs->repair = r;
	pthread_mutex_unlock(&cs->mu);
	*out = r;
	return 0;
}

void crepair_stop(struct crepair *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->cs->mu);
	r->cs->repair = NULL;
	pthread_mutex_unlock(&r->cs->mu);
	pthread_mutex_lock(&r->mu);
	r->stop = true;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	pthread_join(r->thread, NULL);
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->mu);
	free(r);
}
