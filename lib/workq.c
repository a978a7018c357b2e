/* workq.c — the thread pool of workq.h: a mutex + condvar guarded FIFO of jobs served by
 * a fixed set of pthreads; workq_free() lets the queue run dry, then joins them. */
#include "workq.h"
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WORKQ_MAX_THREADS	256
#define WORKQ_SPARE_JOBS	256	/* finished job nodes kept for reuse */
#define WORKQ_NAME_MAX		16	/* pthread names are limited to 15 chars */

struct job {
	struct job *next;
	void (*fn)(void *arg);
	void *arg;
};

struct workq {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *head, *tail, *spare;
	int nspare, nthreads;
	bool stopping;
	char name[WORKQ_NAME_MAX];
	pthread_t threads[];
};

/* Takes the next job, or NULL once stopping with nothing left. */
static struct job *next_job(struct workq *q)
{
	struct job *j;

	pthread_mutex_lock(&q->mu);
	while (!q->head && !q->stopping)
		pthread_cond_wait(&q->cv, &q->mu);
	j = q->head;
	if (j) {
		q->head = j->next;
		if (!q->head)
			q->tail = NULL;
	}
	pthread_mutex_unlock(&q->mu);
	return j;
}

static void recycle_job(struct workq *q, struct job *j)
{
	pthread_mutex_lock(&q->mu);
	if (q->nspare < WORKQ_SPARE_JOBS) {
		j->next = q->spare;
		q->spare = j;
		q->nspare++;
		j = NULL;
	}
	pthread_mutex_unlock(&q->mu);
	free(j);
}

static void *worker(void *arg)
{
	struct workq *q = arg;
	struct job *j;

	while ((j = next_job(q))) {
		j->fn(j->arg);
		recycle_job(q, j);
	}
	return NULL;
}

static void stop_and_join(struct workq *q, int started)
{
	pthread_mutex_lock(&q->mu);
	q->stopping = true;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
	for (int i = 0; i < started; i++) {
		int err = pthread_join(q->threads[i], NULL);

		if (err)
			log_errorx("workq_join_failed name=%s err=%d", q->name, err);
	}
}

int workq_new(int nthreads, const char *name, struct workq **out)
{
	struct workq *q;
	int err = 0, i;

	if (nthreads < 1 || nthreads > WORKQ_MAX_THREADS)
		return -EINVAL;
	if (!(q = calloc(1, sizeof(*q) + (size_t)nthreads * sizeof(pthread_t))))
		return -ENOMEM;
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv, NULL);
	snprintf(q->name, sizeof(q->name), "%s", name ? name : "workq");
	for (i = 0; i < nthreads; i++) {
		char tname[WORKQ_NAME_MAX];

		if ((err = pthread_create(&q->threads[i], NULL, worker, q)))
			break;
		snprintf(tname, sizeof(tname), "%.11s-%u", q->name, (unsigned)i % 1000u);
		pthread_setname_np(q->threads[i], tname);
	}
	q->nthreads = i;
	if (err) {
		log_errorx("workq_start_failed name=%s err=%d", q->name, err);
		workq_free(q);
		return -err;
	}
	*out = q;
	return 0;
}

int workq_submit(struct workq *q, void (*fn)(void *arg), void *arg)
{
	struct job *j;

	pthread_mutex_lock(&q->mu);
	if ((j = q->spare)) {
		q->spare = j->next;
		q->nspare--;
	}
	pthread_mutex_unlock(&q->mu);
	if (!j && !(j = malloc(sizeof(*j))))
		return -ENOMEM;
	*j = (struct job){ NULL, fn, arg };
	pthread_mutex_lock(&q->mu);
	if (q->tail)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
	return 0;
}

void workq_free(struct workq *q)
{
	if (!q)
		return;
	stop_and_join(q, q->nthreads);
	while (q->spare) {
		struct job *j = q->spare;

		q->spare = j->next;
		free(j);
	}
	pthread_cond_destroy(&q->cv);
	pthread_mutex_destroy(&q->mu);
	free(q);
}
