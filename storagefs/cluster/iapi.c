/* iapi.c — the internal API's server: a listening socket and its accept thread, one
 * thread per connection (capped), mutual TLS with the cluster CA, the member check (the
 * client certificate's CN must be a node of the current map), routing of the request
 * target to the handlers in iapi_ops.c, and a stop that drains then cuts connections. */
#include "iapi_int.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../../lib/json.h"
#include "../../lib/log.h"
#include "../../lib/uri.h"

#define IAPI_ADDR_MAX		128
#define IAPI_THREAD_STACK	(512 * 1024)
#define IAPI_POLL_MS		250

struct iapi {
	struct iapi_config cfg;
	struct tls_server *tls;
	int lfd;
	char addr[IAPI_ADDR_MAX];
	pthread_t acceptor;
	bool accepting;
	int stopping;			/* atomic */
	pthread_mutex_t mu;		/* active, fds */
	pthread_cond_t cv;		/* active went down */
	int active;
	int *fds;			/* per slot: a dup of a live connection's socket, or -1 */
	bool *idle;			/* per slot: waiting for the next request (kept alive) */
};

static bool stopping(struct iapi *a)
{
	return __atomic_load_n(&a->stopping, __ATOMIC_ACQUIRE);
}

/* Marks slot idle (or busy again); false when the server is stopping: an idle connection
 * is not worth waiting for, and iapi_stop cuts the ones already idle at once. */
static bool slot_idle(struct iapi *a, int slot, bool idle)
{
	bool go;

	pthread_mutex_lock(&a->mu);
	a->idle[slot] = idle;
	go = !stopping(a);
	pthread_mutex_unlock(&a->mu);
	return go;
}

struct conn_job {
	struct iapi *a;
	int fd, slot;
};

/* --- replies and errors --- */

void iapi_reply_err(struct ireq *q, enum iwire_err e, const char *message, const char *extra)
{
	char body[512];
	struct json_w w;
	int n;

	json_w_init(&w, body, sizeof(body) - 1);
	json_w_obj(&w);
	json_w_kstr(&w, "error", iwire_code(e));
	json_w_kstr(&w, "message", message);
	json_w_obj_end(&w);
	n = json_w_end(&w);
	if (n < 0)
		n = 0;
	body[n++] = '\n';
	q->status = iwire_status(e);
	if (q->status >= 500 || q->status == 401 || q->status == 403)
		log_warnx("iapi_rejected peer=%s addr=%s status=%d error=%s msg=\"%s\"",
			  q->peer[0] ? q->peer : "-", tls_peer_addr(q->c), q->status, iwire_code(e),
			  message);
	/* A HEAD's reply has no body (its Content-Length is the GET's): the client reads none,
	 * and bytes left behind would be taken for the next reply on a kept-alive connection. */
	if (http1s_write_reply(q->c, q->status, "application/json", n, extra, iapi_keep(q)) ||
	    (strcmp(q->m->h.method, "HEAD") != 0 && tls_write(q->c, body, (size_t)n)))
		q->keep_after = false;
}

bool iapi_keep(struct ireq *q)
{
	q->keep_after = q->keep && q->m->body_left == 0 && !stopping(q->a);
	return q->keep_after;
}

enum iwire_err iapi_err_of(int rc)
{
	switch (rc) {
	case -EINVAL: case -ENAMETOOLONG: case -EPROTO: return IW_BAD_REQUEST;
	case -ENOENT: return IW_NO_SUCH_BUCKET;
	case -ENOTEMPTY: return IW_BUCKET_NOT_EMPTY;
	case -EEXIST: return IW_BUCKET_EXISTS;
	case -EFBIG: return IW_TOO_LARGE;
	case -ENOSPC: return IW_FULL;
	case -STORE_ENOQUORUM: return IW_NO_QUORUM;
	default: return IW_INTERNAL;
	}
}

/* --- routing --- */

/* One percent-encoded path segment [s, s+len) into out[max]: its length, or -1. */
static int segment(const char *s, size_t len, char *out, size_t max)
{
	return len ? uri_decode(s, len, out, max, false) : -1;
}

/* "<bucket>" or, with want_key, "<bucket>/<key>" after a route's prefix. */
static int names(struct ireq *q, const char *rest, bool want_key)
{
	const char *slash = strchr(rest, '/');
	size_t blen = slash ? (size_t)(slash - rest) : strlen(rest);
	int n = segment(rest, blen, q->bucket, STORE_BUCKET_MAX);

	if (n < 0 || memchr(q->bucket, '\0', (size_t)n) || (slash != NULL) != want_key)
		return -EINVAL;
	q->bucket[n] = '\0';
	if (!want_key)
		return 0;
	n = segment(slash + 1, strlen(slash + 1), q->key, STORE_KEY_MAX);
	if (n < 0)
		return -EINVAL;
	q->key_len = (size_t)n;
	return 0;
}

static bool is(const char *method, const char *want)
{
	return strcmp(method, want) == 0;
}

/* /i/v1/u/<bucket>/<upload id>: PUT ?part=N, POST ?complete, GET (?after=&max=), DELETE. */
static void upload_route(struct ireq *q, const char *method)
{
	int part = 0;

	if (q->key_len > STORE_UPLOAD_ID_MAX || memchr(q->key, '\0', q->key_len))
		return iapi_reply_err(q, IW_NO_SUCH_UPLOAD, "no such upload", NULL);
	q->key[q->key_len] = '\0';
	if (is(method, "PUT") && sscanf(q->query, "part=%d", &part) == 1 && part >= 1 &&
	    part <= STORE_PARTS_MAX)
		return iapi_mpu_part(q, part);
	if (is(method, "POST") && !strcmp(q->query, "complete"))
		return iapi_mpu_complete(q);
	if (is(method, "DELETE"))
		return iapi_mpu_abort(q);
	if (is(method, "GET"))
		return iapi_mpu_parts(q);
	iapi_reply_err(q, IW_METHOD, "method not allowed here", NULL);
}

static void route(struct ireq *q, char *target)
{
	const char *method = q->m->h.method;
	char *qm = strchr(target, '?');
	size_t ol = strlen(IWIRE_OBJ), bl = strlen(IWIRE_BUCKET);

	q->query = "";
	if (qm) {
		*qm = '\0';
		q->query = qm + 1;
	}
	if (!strncmp(target, IWIRE_OBJ, ol) && !names(q, target + ol, true)) {
		if (is(method, "PUT"))
			return iapi_obj_put(q);
		if (is(method, "DELETE"))
			return iapi_obj_delete(q);
		if (is(method, "GET") || is(method, "HEAD"))
			return iapi_obj_get(q, is(method, "HEAD"));
	} else if (!strncmp(target, IWIRE_LIST, strlen(IWIRE_LIST)) &&
		   !names(q, target + strlen(IWIRE_LIST), false)) {
		if (is(method, "GET"))
			return iapi_list(q);
	} else if (!strncmp(target, IWIRE_BUCKET, bl) && !names(q, target + bl, false)) {
		if (is(method, "PUT"))
			return iapi_bucket_put(q);
		if (is(method, "DELETE"))
			return iapi_bucket_delete(q);
	} else if (!strcmp(target, IWIRE_BUCKETS)) {
		if (is(method, "GET"))
			return iapi_buckets(q);
	} else if (!strncmp(target, IWIRE_UPLOAD, strlen(IWIRE_UPLOAD)) &&
		   !names(q, target + strlen(IWIRE_UPLOAD), true)) {
		return upload_route(q, method);
	} else if (!strcmp(target, IWIRE_BUCKET_LOG)) {
		if (is(method, "GET"))
			return iapi_bucket_log(q);
	} else {
		return iapi_reply_err(q, IW_NOT_FOUND, "no such route", NULL);
	}
	iapi_reply_err(q, IW_METHOD, "method not allowed here", NULL);
}

/* Reads the head (the next one of a kept-alive connection: after up to IAPI_IDLE_MS of
 * quiet), checks who calls, dispatches. true when the connection may carry another. */
static bool serve(struct iapi *a, struct tls_conn *c, struct ireq *q, int slot, bool next)
{
	const char *cn = tls_peer_cn(c);
	int err;

	if (next) {
		if (!slot_idle(a, slot, true))
			return false;
		tls_set_timeout(c, IAPI_IDLE_MS);
	}
	err = http1s_read_head(c, true, false, q->m);
	if (next) {
		tls_set_timeout(c, a->cfg.timeout_ms);
		if (!slot_idle(a, slot, false) || err)
			return false;	/* quiet, closed, or stopping: the connection ends */
	}
	q->peer = cn;
	q->status = 0;
	q->keep = !http1s_closes(q->m);
	q->keep_after = false;
	if (err == -ENODATA)
		return false;
	if (err) {
		iapi_reply_err(q, err == -ENOTSUP ? IW_LENGTH : IW_BAD_REQUEST,
			       "malformed request head", NULL);
		return false;
	}
	if (!cn[0]) {
		iapi_reply_err(q, IW_NO_CLIENT_CERT, "a certificate from the cluster CA is required",
			       NULL);
		return false;
	}
	if (!cmap_sync_member(a->cfg.maps, cn)) {
		iapi_reply_err(q, IW_NOT_A_MEMBER, "not a node of the current map", NULL);
		return false;
	}
	route(q, q->m->target);
	log_debug("iapi_request peer=%s method=%s status=%d keep=%d", cn, q->m->h.method,
		  q->status, q->keep_after);
	return q->keep_after;
}

/* --- connections --- */

static void conn_handle(struct iapi *a, struct tls_conn *c, int slot)
{
	struct ireq q = { .st = a->cfg.st, .buckets = a->cfg.buckets, .cfg = &a->cfg, .a = a,
			  .c = c, .peer = "" };

	q.m = malloc(sizeof(*q.m));
	q.buf = malloc(IAPI_CHUNK);
	for (int n = 0; q.m && q.buf && n < IAPI_KEEP_MAX && serve(a, c, &q, slot, n > 0); n++)
		;
	free(q.m);
	free(q.buf);
}

static void *conn_main(void *arg)
{
	struct conn_job job = *(struct conn_job *)arg;
	struct iapi *a = job.a;
	struct tls_conn *c = NULL;
	int err;

	free(arg);
	err = tls_accept(a->tls, job.fd, &c);
	if (err)
		log_debug("iapi_handshake_failed err=%d", err);
	else
		conn_handle(a, c, job.slot);
	/* Out of the table before the socket closes: a stop never cuts a reused fd. */
	pthread_mutex_lock(&a->mu);
	close(a->fds[job.slot]);
	a->fds[job.slot] = -1;
	pthread_mutex_unlock(&a->mu);
	tls_close(c);
	pthread_mutex_lock(&a->mu);
	a->active--;
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

static int slot_take(struct iapi *a, int fd)
{
	int slot = -1;

	pthread_mutex_lock(&a->mu);
	for (int i = 0; i < a->cfg.max_conns && slot < 0 && a->active < a->cfg.max_conns; i++)
		if (a->fds[i] < 0)
			slot = i;
	if (slot >= 0 && (a->fds[slot] = dup(fd)) < 0)
		slot = -1;
	a->active += slot >= 0;
	pthread_mutex_unlock(&a->mu);
	return slot;
}

static void slot_drop(struct iapi *a, int slot)
{
	pthread_mutex_lock(&a->mu);
	close(a->fds[slot]);
	a->fds[slot] = -1;
	a->active--;
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
}

static void conn_start(struct iapi *a, int fd)
{
	struct conn_job *job = malloc(sizeof(*job));
	int slot = job ? slot_take(a, fd) : -1;
	pthread_attr_t attr;
	pthread_t t;

	if (slot < 0) {
		log_warnx("iapi_busy max=%d", a->cfg.max_conns);
		close(fd);
		free(job);
		return;
	}
	*job = (struct conn_job){ a, fd, slot };
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, IAPI_THREAD_STACK);
	if (pthread_create(&t, &attr, conn_main, job) != 0) {
		log_warnx("iapi_thread_failed");
		slot_drop(a, slot);
		close(fd);
		free(job);
	}
	pthread_attr_destroy(&attr);
}

static void *accept_main(void *arg)
{
	struct iapi *a = arg;
	struct pollfd pf = { .fd = a->lfd, .events = POLLIN };

	while (!__atomic_load_n(&a->stopping, __ATOMIC_ACQUIRE)) {
		int fd, n = poll(&pf, 1, IAPI_POLL_MS);

		if (n <= 0)
			continue;
		fd = accept4(a->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			conn_start(a, fd);
	}
	return NULL;
}

/* --- listening --- */

static int split_addr(const char *addr, char host[IAPI_ADDR_MAX], const char **port)
{
	const char *colon = strrchr(addr, ':');
	size_t n;

	if (!colon || !colon[1] || strlen(addr) >= IAPI_ADDR_MAX)
		return -EINVAL;
	n = (size_t)(colon - addr);
	if (n >= 2 && addr[0] == '[' && addr[n - 1] == ']') {
		addr++;
		n -= 2;
	}
	memcpy(host, addr, n);
	host[n] = '\0';
	*port = colon + 1;
	return 0;
}

static int listen_on(struct iapi *a)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[IAPI_ADDR_MAX], h[64], p[16];
	const char *port;
	int one = 1, err = 0;

	if (split_addr(a->cfg.listen, host, &port) ||
	    getaddrinfo(host[0] ? host : NULL, port, &hints, &ai))
		return -EINVAL;
	a->lfd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
	if (a->lfd < 0 || setsockopt(a->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(a->lfd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(a->lfd, 64) < 0 ||
	    getsockname(a->lfd, (struct sockaddr *)&ss, &sl) < 0)
		err = -errno;
	else if (getnameinfo((struct sockaddr *)&ss, sl, h, sizeof(h), p, sizeof(p),
			     NI_NUMERICHOST | NI_NUMERICSERV))
		err = -EINVAL;
	else
		snprintf(a->addr, sizeof(a->addr), strchr(h, ':') ? "[%s]:%s" : "%s:%s", h, p);
	freeaddrinfo(ai);
	return err;
}

static int iapi_new(const struct iapi_config *cfg, struct iapi **out)
{
	struct iapi *a = calloc(1, sizeof(*a));

	if (!a)
		return -ENOMEM;
	a->cfg = *cfg;
	a->cfg.max_conns = cfg->max_conns > 0 ? cfg->max_conns : IAPI_MAX_CONNS;
	a->cfg.timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : IAPI_TIMEOUT_MS;
	a->lfd = -1;
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	a->fds = malloc((size_t)a->cfg.max_conns * sizeof(*a->fds));
	a->idle = calloc((size_t)a->cfg.max_conns, sizeof(*a->idle));
	if (!a->fds || !a->idle) {
		iapi_stop(a);
		return -ENOMEM;
	}
	for (int i = 0; i < a->cfg.max_conns; i++)
		a->fds[i] = -1;
	*out = a;
	return 0;
}

int iapi_start(const struct iapi_config *cfg, struct iapi **out)
{
	struct tls_server_opts o = { .cert_pem = cfg->cert_pem, .key_pem = cfg->key_pem,
				     .chain_pem = cfg->ca_pem, .client_ca_pem = cfg->ca_pem,
				     .timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms :
						   IAPI_TIMEOUT_MS };
	struct iapi *a;
	int err;

	if (!cfg->cert_pem || !cfg->key_pem || !cfg->ca_pem || !cfg->listen)
		return -EINVAL;
	if ((err = iapi_new(cfg, &a)))
		return err;
	if ((err = tls_server_new(&o, &a->tls)) || (err = listen_on(a)) ||
	    (err = -pthread_create(&a->acceptor, NULL, accept_main, a))) {
		log_errorx("iapi_start_failed listen=%s err=%d msg=\"%s\"", cfg->listen, err,
			   strerror(-err));
		iapi_stop(a);
		return err;
	}
	a->accepting = true;
	log_info("iapi_listening addr=%s max_conns=%d", a->addr, a->cfg.max_conns);
	*out = a;
	return 0;
}

const char *iapi_addr(const struct iapi *a)
{
	return a->addr;
}

/* Waits until no connection is left, or ms have passed (ms < 0: no limit). */
static bool wait_idle(struct iapi *a, int ms)
{
	struct timespec ts;
	bool idle;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	pthread_mutex_lock(&a->mu);
	while (a->active > 0 && (ms < 0 ? pthread_cond_wait(&a->cv, &a->mu) :
				 pthread_cond_timedwait(&a->cv, &a->mu, &ts)) == 0)
		;
	idle = a->active == 0;
	pthread_mutex_unlock(&a->mu);
	return idle;
}

void iapi_stop(struct iapi *a)
{
	if (!a)
		return;
	__atomic_store_n(&a->stopping, 1, __ATOMIC_RELEASE);
	if (a->accepting)
		pthread_join(a->acceptor, NULL);
	if (a->lfd >= 0)
		close(a->lfd);
	/* Kept-alive connections waiting for a next request: cut at once, nothing is lost. */
	pthread_mutex_lock(&a->mu);
	for (int i = 0; a->fds && a->idle && i < a->cfg.max_conns; i++)
		if (a->fds[i] >= 0 && a->idle[i])
			shutdown(a->fds[i], SHUT_RDWR);
	pthread_mutex_unlock(&a->mu);
	if (a->fds && !wait_idle(a, IAPI_DRAIN_MS)) {
		pthread_mutex_lock(&a->mu);
		log_warnx("iapi_stop_cutting active=%d", a->active);
		for (int i = 0; i < a->cfg.max_conns; i++)
			if (a->fds[i] >= 0)
				shutdown(a->fds[i], SHUT_RDWR);
		pthread_mutex_unlock(&a->mu);
		wait_idle(a, -1);
	}
	tls_server_free(a->tls);
	free(a->fds);
	free(a->idle);
	pthread_cond_destroy(&a->cv);
	pthread_mutex_destroy(&a->mu);
	free(a);
}
