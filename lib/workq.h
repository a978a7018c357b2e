/* workq.h — a small fixed pool of threads running queued jobs: where blocking disk work
 * (fsync, rename, index commits) goes so that the event loops never wait on a disk. */
#ifndef CAIRN_WORKQ_H
#define CAIRN_WORKQ_H

struct workq;

int workq_new(int nthreads, const char *name, struct workq **out);
/* Queues fn(arg); never blocks on the queue (it is unbounded but jobs are per request). */
int workq_submit(struct workq *q, void (*fn)(void *arg), void *arg);
/* Finishes queued jobs, joins the threads, frees q. */
void workq_free(struct workq *q);

#endif
