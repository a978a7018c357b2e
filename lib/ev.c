/* ev.c — the epoll event loop behind ev.h: fd dispatch, a coarse tick and a mutex-guarded
 * post queue whose eventfd wakes the loop from other threads or a signal handler. */
#include "ev.h"
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define EV_MAX_EVENTS	256	/* fd events taken per epoll_wait */

struct ev_loop {
	int epfd;
	struct ev_io wake_io;
	pthread_mutex_t mu;		/* guards the post queue */
	struct ev_post *head, *tail;
	bool stop;
	int tick_ms;
	uint64_t now_ms, next_tick;
	struct ev_hooks hooks;
};

uint64_t ev_clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void run_posts(struct ev_loop *l)
{
	struct ev_post *p;

	pthread_mutex_lock(&l->mu);
	p = l->head;
	l->head = l->tail = NULL;
	pthread_mutex_unlock(&l->mu);
	while (p) {
		struct ev_post *next = p->next;	/* fn may recycle its node */

		p->fn(p->arg);
		p = next;
	}
}

static void on_wake(struct ev_io *io, uint32_t events)
{
	struct ev_loop *l = (struct ev_loop *)((char *)io - offsetof(struct ev_loop, wake_io));
	uint64_t cnt;

	(void)events;
	/* Reset the counter before draining, so a post racing with us re-arms it. */
	if (read(io->fd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
		return;
	run_posts(l);
	if (l->hooks.wake)
		l->hooks.wake(l->hooks.arg);
}

int ev_loop_new(int tick_ms, const struct ev_hooks *hooks, struct ev_loop **out)
{
	struct ev_loop *l = calloc(1, sizeof(*l));
	int err = -ENOMEM;

	if (!l)
		return err;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->wake_io = (struct ev_io){ eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), on_wake };
	if (l->epfd < 0 || l->wake_io.fd < 0) {
		err = -errno;
		goto out;
	}
	pthread_mutex_init(&l->mu, NULL);
	l->tick_ms = tick_ms;
	l->hooks = *hooks;
	l->now_ms = ev_clock_ms();
	l->next_tick = l->now_ms + (uint64_t)tick_ms;
	err = ev_add(l, &l->wake_io, EPOLLIN);
	if (err == 0) {
		*out = l;
		return 0;
	}
	pthread_mutex_destroy(&l->mu);
out:
	if (l->epfd >= 0)
		close(l->epfd);
	if (l->wake_io.fd >= 0)
		close(l->wake_io.fd);
	free(l);
	return err;
}

struct ev_post *ev_loop_free(struct ev_loop *l)
{
	struct ev_post *left;

	if (!l)
		return NULL;
	left = l->head;
	if (close(l->epfd) < 0)
		log_warn("ev_close fd=epoll");
	if (close(l->wake_io.fd) < 0)
		log_warn("ev_close fd=eventfd");
	pthread_mutex_destroy(&l->mu);
	free(l);
	return left;
}

int ev_add(struct ev_loop *l, struct ev_io *io, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = io };

	return epoll_ctl(l->epfd, EPOLL_CTL_ADD, io->fd, &ev) < 0 ? -errno : 0;
}

int ev_del(struct ev_loop *l, struct ev_io *io)
{
	return epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL) < 0 ? -errno : 0;
}

static void maybe_tick(struct ev_loop *l)
{
	if (l->now_ms < l->next_tick)
		return;
	l->next_tick = l->now_ms + (uint64_t)l->tick_ms;
	if (l->hooks.tick)
		l->hooks.tick(l->hooks.arg);
}

int ev_run(struct ev_loop *l)
{
	struct epoll_event evs[EV_MAX_EVENTS];

	while (!l->stop) {
		int wait = l->next_tick > l->now_ms ? (int)(l->next_tick - l->now_ms) : 0;
		int n = epoll_wait(l->epfd, evs, EV_MAX_EVENTS, wait);

		if (n < 0 && errno != EINTR)
			return -errno;
		l->now_ms = ev_clock_ms();
		for (int i = 0; i < n; i++) {
			struct ev_io *io = evs[i].data.ptr;

			io->fn(io, evs[i].events);
		}
		if (l->hooks.batch_end)
			l->hooks.batch_end(l->hooks.arg);
		maybe_tick(l);
	}
	return 0;
}

void ev_stop(struct ev_loop *l)
{
	l->stop = true;
}

uint64_t ev_now_ms(const struct ev_loop *l)
{
	return l->now_ms;
}

void ev_post(struct ev_loop *l, struct ev_post *p)
{
	bool was_empty;

	p->next = NULL;
	pthread_mutex_lock(&l->mu);
	was_empty = !l->head;
	if (l->tail)
		l->tail->next = p;
	else
		l->head = p;
	l->tail = p;
	pthread_mutex_unlock(&l->mu);
	/* A non-empty queue already has a wakeup pending. */
	if (was_empty)
		ev_wake(l);
}

void ev_wake(struct ev_loop *l)
{
	uint64_t one = 1;

	/* Only EAGAIN (counter saturated) can fail here, and then a wakeup is pending. */
	if (write(l->wake_io.fd, &one, sizeof(one)) < 0)
		return;
}
