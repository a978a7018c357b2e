/* cmap_sync.c — the current map behind a mutex (readers hold counted references to
 * immutable maps, so a swap never waits for them), and the fetch thread: one long poll at a
 * time to the controller, backoff with jitter on failures. A poll blocks in the network for
 * up to 30 s and a TLS stream cannot be interrupted from outside: a stop that finds the
 * thread inside a poll leaves it everything (the sync and its own copy of the keys), and the
 * thread frees it all when the poll returns, touching nothing else. */
#include "cmap_sync.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../lib/netaddr.h"
#include "../../lib/fileio.h"
#include "../../lib/http1_stream.h"
#include "../../lib/log.h"
#include "../../lib/tls.h"

#define CONTROLLER_CN	"cairn-controller"
#define HOST_MAX	160

struct cmap_ref {
	int refs;			/* under cmap_sync.mu */
	struct cmap m;
};

/* The fetch thread's own copies and buffers: after a stop it may outlive the caller's. */
struct fetch {
	struct cmap_sync *s;
	char controller[IDENT_ADDR_MAX];
	char ca_pem[PKI_PEM_MAX], cert_pem[PKI_PEM_MAX], key_pem[PKI_PEM_MAX];
	char host[HOST_MAX], port[16];
	struct tls_conn *c;
	struct http1s_msg *msg;
	char *body;
	size_t body_len;
	bool in_call;			/* under cmap_sync.mu: inside a poll */
};

struct cmap_sync {
	char dir[4096];
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct cmap_ref *cur;
	bool stopping, fetching;
	bool orphan;			/* stopped during a poll: the thread frees all */
	pthread_t thread;
	struct fetch f;
};

static struct cmap_ref *ref_of(const struct cmap *m)
{
	return (struct cmap_ref *)(void *)((char *)(uintptr_t)m - offsetof(struct cmap_ref, m));
}

int cmap_sync_new(const char *dir, struct cmap_sync **out)
{
	struct cmap_sync *s = calloc(1, sizeof(*s));
	struct cmap_ref *r = malloc(sizeof(*r));
	int err;

	if (!s || !r) {
		free(s);
		free(r);
		return -ENOMEM;
	}
	snprintf(s->dir, sizeof(s->dir), "%s", dir);
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	err = cmap_load(dir, &r->m);
	if (err == 0) {
		r->refs = 1;
		s->cur = r;
		log_info("cluster_map_loaded dir=%s version=%llu nodes=%d", dir,
			 (unsigned long long)r->m.version, r->m.nnodes);
	} else {
		if (err != -ENOENT)
			log_warnx("cluster_map_unreadable dir=%s err=%d", dir, err);
		free(r);
	}
	*out = s;
	return 0;
}

static void ref_drop_locked(struct cmap_ref *r)
{
	if (r && --r->refs == 0)
		free(r);
}

const struct cmap *cmap_sync_get(struct cmap_sync *s)
{
	struct cmap_ref *r;

	pthread_mutex_lock(&s->mu);
	r = s->cur;
	if (r)
		r->refs++;
	pthread_mutex_unlock(&s->mu);
	return r ? &r->m : NULL;
}

void cmap_sync_put(struct cmap_sync *s, const struct cmap *m)
{
	if (!m)
		return;
	pthread_mutex_lock(&s->mu);
	ref_drop_locked(ref_of(m));
	pthread_mutex_unlock(&s->mu);
}

uint64_t cmap_sync_version(struct cmap_sync *s)
{
	uint64_t v;

	pthread_mutex_lock(&s->mu);
	v = s->cur ? s->cur->m.version : 0;
	pthread_mutex_unlock(&s->mu);
	return v;
}

bool cmap_sync_member(struct cmap_sync *s, const char *node_id)
{
	bool in;

	pthread_mutex_lock(&s->mu);
	in = s->cur && cmap_find(&s->cur->m, node_id) >= 0;
	pthread_mutex_unlock(&s->mu);
	return in;
}

int cmap_sync_offer(struct cmap_sync *s, struct cmap *m)
{
	struct cmap_ref *r = ref_of(m), *old = NULL;
	int err = 0;

	pthread_mutex_lock(&s->mu);
	if (s->cur && s->cur->m.version >= m->version) {
		pthread_mutex_unlock(&s->mu);
		free(r);
		return 0;
	}
	/* Saved under the lock: two offers never write map.json out of order. */
	err = cmap_save(s->dir, m);
	if (!err) {
		r->refs = 1;
		old = s->cur;
		s->cur = r;
		log_info("cluster_map_installed version=%llu nodes=%d replicas=%d write_quorum=%d",
			 (unsigned long long)m->version, m->nnodes, m->replicas, m->write_quorum);
	}
	ref_drop_locked(old);
	pthread_mutex_unlock(&s->mu);
	if (err) {
		log_warnx("cluster_map_save_failed dir=%s version=%llu err=%d", s->dir,
			  (unsigned long long)m->version, err);
		free(r);
	}
	return err ? err : 1;
}

/* Allocated as the reference it will become. */
struct cmap *cmap_sync_map_new(void)
{
	struct cmap_ref *r = malloc(sizeof(*r));

	return r ? &r->m : NULL;
}

void cmap_sync_map_free(struct cmap *m)
{
	if (m)
		free(ref_of(m));
}

/* --- the fetch thread --- */

static int read_all(struct fetch *f)
{
	ssize_t n = 1;

	f->body_len = 0;
	while (n > 0 && f->body_len < CMAP_JSON_MAX)
		if ((n = http1s_read_body(f->c, f->msg, f->body + f->body_len,
					  CMAP_JSON_MAX - f->body_len)) > 0)
			f->body_len += (size_t)n;
	return n < 0 ? (int)n : n > 0 ? -EFBIG : 0;
}

/* Marks the thread inside (or out of) a poll: false when it must not go on (stopping
 * before, orphaned after). */
static bool call_mark(struct fetch *f, bool in)
{
	bool go;

	pthread_mutex_lock(&f->s->mu);
	f->in_call = in && !f->s->stopping;
	go = in ? f->in_call : !f->s->orphan;
	pthread_mutex_unlock(&f->s->mu);
	return go;
}

/* One long poll. 0 and *status, -ECANCELED (stopped), or -errno. */
static int fetch_call(struct fetch *f, uint64_t since, int *status)
{
	struct tls_client_opts o = { .ca_pem = f->ca_pem, .peer_cn = CONTROLLER_CN,
				     .cert_pem = f->cert_pem, .key_pem = f->key_pem,
				     .timeout_ms = CMAP_POLL_TIMEOUT_MS };
	char target[64];
	int err;

	snprintf(target, sizeof(target), "/v1/map?since=%llu", (unsigned long long)since);
	if (!call_mark(f, true))
		return -ECANCELED;
	err = tls_connect(f->host, f->port, &o, &f->c);
	if (!err)
		err = http1s_write_request(f->c, "GET", f->host, target, "", -1, false);
	if (!err)
		err = http1s_read_head(f->c, false, false, f->msg);
	if (!err)
		err = read_all(f);
	tls_close(f->c);
	f->c = NULL;
	*status = err ? 0 : f->msg->h.status;
	return call_mark(f, false) ? err : -ECANCELED;
}

static int fetch_once(struct fetch *f)
{
	uint64_t since = cmap_sync_version(f->s);
	struct cmap *m;
	int status, err = fetch_call(f, since, &status);

	if (err)
		return err;
	if (status == 304)
		return 0;
	if (status != 200) {
		log_warnx("cluster_map_refused controller=%s status=%d", f->controller, status);
		return -EPROTO;
	}
	if (!(m = cmap_sync_map_new()))
		return -ENOMEM;
	if ((err = cmap_parse(f->body, f->body_len, m))) {
		log_warnx("cluster_map_bad controller=%s err=%d", f->controller, err);
		cmap_sync_map_free(m);
		return err;
	}
	return cmap_sync_offer(f->s, m) < 0 ? -EIO : 0;
}

/* Sleeps ms unless stopping; true when stopping. */
static bool nap(struct cmap_sync *s, int ms)
{
	struct timespec ts;
	bool stop;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&s->mu);
	while (!s->stopping && pthread_cond_timedwait(&s->cv, &s->mu, &ts) == 0)
		;
	stop = s->stopping;
	pthread_mutex_unlock(&s->mu);
	return stop;
}

static void sync_destroy(struct cmap_sync *s);

static void *fetch_main(void *arg)
{
	struct fetch *f = arg;
	int backoff = CMAP_BACKOFF_MIN_MS, last_err = 0;
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)f;

	while (!nap(f->s, 0)) {
		int err = fetch_once(f);

		if (err == -ECANCELED)
			break;
		if (!err) {
			backoff = CMAP_BACKOFF_MIN_MS;
			last_err = 0;
			continue;
		}
		if (err != last_err)	/* one line per new kind of failure, not per retry */
			log_warnx("cluster_map_fetch_failed controller=%s err=%d retry_ms=%d",
				  f->controller, err, backoff);
		last_err = err;
		if (nap(f->s, backoff / 2 + (int)(rand_r(&seed) % (unsigned)(backoff / 2 + 1))))
			break;
		backoff = backoff * 2 < CMAP_BACKOFF_MAX_MS ? backoff * 2 : CMAP_BACKOFF_MAX_MS;
	}
	pthread_mutex_lock(&f->s->mu);
	if (f->s->orphan) {	/* nobody waits for this thread: its state is its own */
		pthread_mutex_unlock(&f->s->mu);
		sync_destroy(f->s);
		return NULL;
	}
	pthread_mutex_unlock(&f->s->mu);
	return NULL;
}

int cmap_sync_fetch_start(struct cmap_sync *s, const struct ident *id)
{
	struct fetch *f = &s->f;
	int err;

	f->s = s;
	memcpy(f->controller, id->controller, sizeof(f->controller));
	memcpy(f->ca_pem, id->ca_pem, sizeof(f->ca_pem));
	memcpy(f->cert_pem, id->cert_pem, sizeof(f->cert_pem));
	memcpy(f->key_pem, id->key_pem, sizeof(f->key_pem));
	if (net_split_hostport(id->controller, f->host, sizeof(f->host), f->port, sizeof(f->port), NULL))
		return -EINVAL;
	f->msg = malloc(sizeof(*f->msg));
	f->body = malloc(CMAP_JSON_MAX);
	if (!f->msg || !f->body)
		return -ENOMEM;
	if ((err = -pthread_create(&s->thread, NULL, fetch_main, f)))
		return err;
	s->fetching = true;
	log_info("cluster_map_fetch_started controller=%s since=%llu", id->controller,
		 (unsigned long long)cmap_sync_version(s));
	return 0;
}

void cmap_sync_free(struct cmap_sync *s)
{
	if (!s)
		return;
	if (s->fetching) {
		pthread_mutex_lock(&s->mu);
		s->stopping = true;
		s->orphan = s->f.in_call;
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
		if (s->orphan) {
			log_info("cluster_map_fetch_left msg=\"a long poll is in progress: it ends on its own\"");
			pthread_detach(s->thread);
			return;
		}
		pthread_join(s->thread, NULL);
	}
	sync_destroy(s);
}

static void sync_destroy(struct cmap_sync *s)
{
	explicit_bzero(s->f.key_pem, sizeof(s->f.key_pem));
	free(s->f.msg);
	free(s->f.body);
	if (s->cur)
		ref_drop_locked(s->cur);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
}
