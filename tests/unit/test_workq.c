/* test_workq.c — unit tests of lib/workq.c: jobs all run, on worker threads, and
 * workq_free() finishes what is queued before returning. */
#include "test.h"
#include "../../lib/workq.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#define JOBS 10000

static atomic_int counter;
static pthread_t main_thread;
static atomic_int on_main;

static void count_job(void *arg)
{
	atomic_fetch_add(&counter, *(int *)arg);
	if (pthread_equal(pthread_self(), main_thread))
		atomic_fetch_add(&on_main, 1);
}

static void slow_job(void *arg)
{
	usleep(2000);
	atomic_fetch_add(&counter, *(int *)arg);
}

TEST(workq_runs_every_job)
{
	static int one = 1;
	struct workq *q;

	atomic_store(&counter, 0);
	atomic_store(&on_main, 0);
	main_thread = pthread_self();
	CHECK_INT(workq_new(4, "test", &q), 0);
	for (int i = 0; i < JOBS; i++)
		CHECK_INT(workq_submit(q, count_job, &one), 0);
	workq_free(q);
	CHECK_INT(atomic_load(&counter), JOBS);
	CHECK_INT(atomic_load(&on_main), 0);
}

TEST(workq_free_drains_queue)
{
	static int two = 2;
	struct workq *q;

	atomic_store(&counter, 0);
	CHECK_INT(workq_new(2, "a-rather-long-queue-name", &q), 0);
	for (int i = 0; i < 50; i++)
		CHECK_INT(workq_submit(q, slow_job, &two), 0);
	workq_free(q);	/* returns only when all 50 ran */
	CHECK_INT(atomic_load(&counter), 100);
}

TEST(workq_rejects_bad_args)
{
	struct workq *q = NULL;

	CHECK(workq_new(0, "x", &q) < 0);
	CHECK(!q);
	workq_free(NULL);
}
