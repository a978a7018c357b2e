/* cwrite.c — a write's replication over nodes: one thread per replica slot pushes the
 * version (a body from a spool file, or a tombstone) to the next node of the key's
 * preference order, moving on past nodes that fail (a hinted copy); the caller returns
 * once W slots succeeded, and the job finishes in the background (it owns a dup of the
 * spool and a reference to the map). */
#include "cstore_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../lib/log.h"

struct wjob {
	struct cstore *cs;
	const struct cmap *m;		/* a reference, put back when the job ends */
	int order[CMAP_NODES_MAX];
	int n, next, self;
	int slots, ok, done, refs;
	int fd;				/* a dup of the spool; -1: a tombstone */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct store_row row;
	char bucket[STORE_BUCKET_MAX + 1];
	size_t key_len;
	char key[STORE_KEY_MAX];
};

int cstore_order(const struct cmap *m, const char *bucket, const char *key, size_t key_len,
		 int self, int *out)
{
	int all[CMAP_NODES_MAX], n = cmap_owners(m, bucket, key, key_len, all, CMAP_NODES_MAX);
	int k = 0;

	for (int i = 0; i < n; i++)
		if (all[i] == self || m->nodes[all[i]].internal_addr[0])
			out[k++] = all[i];
	return k;
}

static void wjob_put(struct wjob *j)
{
	bool last;

	pthread_mutex_lock(&j->mu);
	last = --j->refs == 0;
	pthread_mutex_unlock(&j->mu);
	if (!last)
		return;
	if (j->fd >= 0)
		close(j->fd);
	cmap_sync_put(j->cs->maps, j->m);
	pthread_cond_destroy(&j->cv);
	pthread_mutex_destroy(&j->mu);
	cs_bg_end(j->cs);
	free(j);
}

/* Pushes the version to node idx: 0 (it holds it now) or 1 (a newer one), or -errno. */
static int push(struct wjob *j, int idx)
{
	struct cstore *cs = j->cs;
	struct peer p = { j->m->nodes[idx].node_id, j->m->nodes[idx].internal_addr };
	uint64_t held, bv;
	int rc;

	if (idx == j->self)
		return j->fd < 0 ? store_apply_tomb(cs->st, j->bucket, j->key, j->key_len,
						    j->row.version, &held)
				 : store_apply_fd(cs->st, j->bucket, j->key, j->key_len, j->fd,
						  &j->row, &held);
	for (int tries = 0; tries < 2; tries++) {
		rc = j->fd < 0 ? peer_delete(&cs->peer, &p, j->bucket, j->key, j->key_len,
					     j->row.version, &held)
			       : peer_put_fd(&cs->peer, &p, j->bucket, j->key, j->key_len, j->fd,
					     &j->row, &held);
		/* A node that missed the bucket's create gets it now, with its version (never a
		 * new one: a peer that knows of a later delete refuses it). */
		if (rc != -ENOENT || tries || !(bv = cs_bucket_version(cs, j->bucket)) ||
		    peer_bucket_create(&cs->peer, &p, j->bucket, bv) < 0)
			break;
	}
	return rc;
}

static void *slot_main(void *arg)
{
	struct wjob *j = arg;
	bool ok = false;

	for (;;) {
		int idx, rc;

		pthread_mutex_lock(&j->mu);
		idx = j->next < j->n ? j->order[j->next++] : -1;
		pthread_mutex_unlock(&j->mu);
		if (idx < 0)
			break;
		rc = push(j, idx);
		if (rc >= 0) {
			ok = true;
			break;
		}
		log_warnx("cluster_replica_failed bucket=%s node=%s version=%llu err=%d",
			  j->bucket, j->m->nodes[idx].node_id, (unsigned long long)j->row.version, rc);
	}
	pthread_mutex_lock(&j->mu);
	j->done++;
	j->ok += ok;
	pthread_cond_broadcast(&j->cv);
	pthread_mutex_unlock(&j->mu);
	wjob_put(j);
	return NULL;
}

static int wjob_new(struct cstore *cs, const char *bucket, const char *key, size_t key_len,
		    int fd, const struct store_row *row, struct wjob **out)
{
	struct wjob *j = calloc(1, sizeof(*j));

	if (!j)
		return -ENOMEM;
	j->fd = -1;
	if (!(j->m = cmap_sync_get(cs->maps))) {
		free(j);
		return -STORE_ENOQUORUM;		/* no map yet: no owners known */
	}
	if (fd >= 0 && (j->fd = dup(fd)) < 0) {
		cmap_sync_put(cs->maps, j->m);
		free(j);
		return -errno;
	}
	j->cs = cs;
	j->self = cs_self(cs, j->m);
	cs_local_replicas(cs, j->m);
	j->n = cstore_order(j->m, bucket, key, key_len, j->self, j->order);
	j->slots = j->m->replicas < j->n ? j->m->replicas : j->n;
	j->row = *row;
	memcpy(j->bucket, bucket, strlen(bucket) + 1);
	memcpy(j->key, key, key_len);
	j->key_len = key_len;
	pthread_mutex_init(&j->mu, NULL);
	pthread_cond_init(&j->cv, NULL);
	j->refs = 1;
	cs_bg_begin(cs);
	*out = j;
	return 0;
}

int cs_replicate(struct cstore *cs, const char *bucket, const char *key, size_t key_len,
		 int fd, const struct store_row *row)
{
	pthread_attr_t attr;
	struct wjob *j = NULL;
	int rc, w;

	if ((rc = wjob_new(cs, bucket, key, key_len, fd, row, &j)))
		return rc;
	/* A cluster smaller than R (a first node, a second one) cannot hold W copies on distinct
	 * nodes: it acknowledges once every node it has made the write durable. */
	w = j->m->write_quorum < j->slots ? j->m->write_quorum : j->slots;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (int i = 0; i < j->slots; i++) {
		pthread_t t;

		pthread_mutex_lock(&j->mu);
		j->refs++;
		pthread_mutex_unlock(&j->mu);
		if (pthread_create(&t, &attr, slot_main, j)) {
			pthread_mutex_lock(&j->mu);
			j->refs--;
			j->done++;
			pthread_mutex_unlock(&j->mu);
		}
	}
	pthread_attr_destroy(&attr);
	pthread_mutex_lock(&j->mu);
	while (j->ok < w && j->done < j->slots)
		pthread_cond_wait(&j->cv, &j->mu);
	rc = j->ok >= w ? 0 : -STORE_ENOQUORUM;
	if (rc)
		log_warnx("cluster_write_no_quorum bucket=%s ok=%d write_quorum=%d nodes=%d",
			  bucket, j->ok, w, j->n);
	pthread_mutex_unlock(&j->mu);
	wjob_put(j);
	return rc;
}
