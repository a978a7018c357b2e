/* s3_metrics.h — request metrics of the S3 API: requests by operation and status class,
 * body bytes in and out, a latency histogram per operation, recorded with relaxed atomics
 * as each request ends; and the metrics listener's entry point (--metrics-listen). */
#ifndef CAIRN_S3_METRICS_H
#define CAIRN_S3_METRICS_H

#include <stdint.h>

#include "../../lib/http.h"
#include "s3.h"

#define S3M_FAMILIES	48	/* "none" + the rows of the operation table */
#define S3M_CLASSES	5	/* 1xx .. 5xx */
#define S3M_BOUNDS	12	/* latency histogram upper bounds; one more bucket for +Inf */

/* Counters only ever grow; readers load them one by one (a scrape taken under load may be
 * a few requests apart between families, never torn within one counter). */
struct s3_metrics {
	uint64_t req[S3M_FAMILIES][S3M_CLASSES];
	uint64_t lat[S3M_FAMILIES][S3M_BOUNDS + 1];	/* per bucket, not cumulative */
	uint64_t lat_sum_ns[S3M_FAMILIES];
	uint64_t bytes_in, bytes_out;
};

/* http_done_fn of the S3 server (ud: the struct s3_ctx): counts the request that ended. */
void s3_on_done(struct http_conn *c, const struct http_req_stats *st, void *ud);

/* http_handler_fn of the metrics listener (ud: the struct s3_ctx), in s3_status.c:
 * GET /metrics answers the Prometheus text, unauthenticated; anything else gets 404. */
void s3_metrics_on_request(struct http_conn *c, struct http_req *req, void *ud);

/* --- internal to storagefs/s3 --- */
struct s3_op;

/* The context's counters (a member of struct s3_ctx). */
struct s3_metrics *s3_ctx_metrics(struct s3_ctx *s3);
/* An operation's family: 0 for none (refused before one was chosen), else 1 + its row. */
int s3_op_family(const struct s3_op *op);
/* The family's name ("none", "GetObject", ...); NULL past the last one. */
const char *s3_op_family_name(int family);

/* Appends the request metric families in Prometheus text format to the response being
 * built on c. */
void s3_metrics_write(struct http_conn *c, struct s3_metrics *m);

#endif
