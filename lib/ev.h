/* ev.h — a tiny per-thread event loop: epoll fd callbacks, one coarse periodic tick and a
 * thread-safe post queue woken through an eventfd. One loop per thread; every function
 * except ev_post() and ev_wake() must be called on the loop's own thread. */
#ifndef CAIRN_EV_H
#define CAIRN_EV_H

#include <stdint.h>
#include <sys/epoll.h>

struct ev_loop;
struct ev_io;

/* events is the epoll mask (EPOLLIN, EPOLLOUT, EPOLLRDHUP, EPOLLHUP, EPOLLERR). */
typedef void (*ev_io_fn)(struct ev_io *io, uint32_t events);

/* Embedded in the owner's object: epoll carries a pointer to it. */
struct ev_io {
	int fd;
	ev_io_fn fn;
};

/* Caller-owned queue node: ev_post() links it, the loop runs fn(arg) and drops it. */
struct ev_post {
	struct ev_post *next;
	void (*fn)(void *arg);
	void *arg;
};

struct ev_hooks {
	void (*tick)(void *arg);	/* every tick_ms, roughly */
	void (*wake)(void *arg);	/* after ev_wake() / a post was handled */
	void (*batch_end)(void *arg);	/* after each batch of fd events */
	void *arg;
};

int ev_loop_new(int tick_ms, const struct ev_hooks *hooks, struct ev_loop **out);
/* Posts still queued are handed back (their fn never runs) for the owner to dispose of. */
struct ev_post *ev_loop_free(struct ev_loop *l);

int ev_add(struct ev_loop *l, struct ev_io *io, uint32_t events);
int ev_del(struct ev_loop *l, struct ev_io *io);

/* Runs until ev_stop(); 0 or -errno. */
int ev_run(struct ev_loop *l);
void ev_stop(struct ev_loop *l);
/* Monotonic milliseconds, refreshed once per loop iteration. */
uint64_t ev_now_ms(const struct ev_loop *l);
uint64_t ev_clock_ms(void);

/* Thread-safe. */
void ev_post(struct ev_loop *l, struct ev_post *p);
/* Async-signal-safe: makes the loop call hooks->wake soon. */
void ev_wake(struct ev_loop *l);

#endif
