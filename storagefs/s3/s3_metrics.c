/* s3_metrics.c — the S3 request counters: recorded on the loop thread as each request ends
 * (relaxed atomic adds into fixed arrays: no lock, no allocation), and written out in
 * Prometheus text format for /metrics and /?cairn-metrics. */
#include "s3_metrics.h"
#include "s3_req.h"

/* Upper bounds of the latency buckets: from a cached 4 KiB GET to a 64 MiB PUT. */
static const uint64_t bound_ns[S3M_BOUNDS] = {
	500000, 1000000, 2500000, 5000000, 10000000, 25000000, 50000000, 100000000,
	250000000, 500000000, 1000000000, 5000000000,
};
static const char *const bound_label[S3M_BOUNDS + 1] = {
	"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
	"1", "5", "+Inf",
};

static void add(uint64_t *p, uint64_t v)
{
	__atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}

static uint64_t load(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

void s3_on_done(struct http_conn *c, const struct http_req_stats *st, void *ud)
{
	struct s3_metrics *m = s3_ctx_metrics(ud);
	const struct s3_req *r = http_conn_udata(c);
	int fam = s3_op_family(r->op), cls = st->status / 100 - 1, b = 0;

	if (cls < 0 || cls >= S3M_CLASSES)
		cls = S3M_CLASSES - 1;	/* no valid status: count it as a server error */
	while (b < S3M_BOUNDS && st->duration_ns > bound_ns[b])
		b++;
	add(&m->req[fam][cls], 1);
	add(&m->lat[fam][b], 1);
	add(&m->lat_sum_ns[fam], st->duration_ns);
	add(&m->bytes_in, st->bytes_in);
	add(&m->bytes_out, st->bytes_out);
}

static void write_requests(struct http_conn *c, struct s3_metrics *m)
{
	const char *name;

	http_resp_bodyf(c, "# HELP cairn_http_requests_total S3 requests by operation (none: refused before one was chosen) and status class.\n"
			"# TYPE cairn_http_requests_total counter\n");
	for (int f = 0; (name = s3_op_family_name(f)); f++) {
		for (int k = 0; k < S3M_CLASSES; k++) {
			uint64_t v = load(&m->req[f][k]);

			if (v)
				http_resp_bodyf(c, "cairn_http_requests_total{op=\"%s\",code=\"%dxx\"} %llu\n",
						name, k + 1, (unsigned long long)v);
		}
	}
	http_resp_bodyf(c, "# HELP cairn_http_bytes_total Request body bytes received (in) and response body bytes sent (out).\n"
			"# TYPE cairn_http_bytes_total counter\n"
			"cairn_http_bytes_total{dir=\"in\"} %llu\ncairn_http_bytes_total{dir=\"out\"} %llu\n",
			(unsigned long long)load(&m->bytes_in), (unsigned long long)load(&m->bytes_out));
}

/* One operation's histogram; _count is the sum of the buckets read, so it always equals
 * the +Inf bucket even while requests are being counted. */
static void write_histogram(struct http_conn *c, struct s3_metrics *m, int f, const char *name)
{
	uint64_t cum = 0, sum_ns = load(&m->lat_sum_ns[f]);

	for (int b = 0; b <= S3M_BOUNDS; b++) {
		cum += load(&m->lat[f][b]);
		http_resp_bodyf(c, "cairn_http_request_duration_seconds_bucket{op=\"%s\",le=\"%s\"} %llu\n",
				name, bound_label[b], (unsigned long long)cum);
	}
	http_resp_bodyf(c, "cairn_http_request_duration_seconds_sum{op=\"%s\"} %llu.%09llu\n"
			"cairn_http_request_duration_seconds_count{op=\"%s\"} %llu\n",
			name, (unsigned long long)(sum_ns / 1000000000u),
			(unsigned long long)(sum_ns % 1000000000u), name, (unsigned long long)cum);
}

void s3_metrics_write(struct http_conn *c, struct s3_metrics *m)
{
	const char *name;

	write_requests(c, m);
	http_resp_bodyf(c, "# HELP cairn_http_request_duration_seconds S3 request latency by operation, from the complete head to the last byte of the response.\n"
			"# TYPE cairn_http_request_duration_seconds histogram\n");
	for (int f = 0; (name = s3_op_family_name(f)); f++) {
		bool seen = false;

		for (int b = 0; b <= S3M_BOUNDS && !seen; b++)
			seen = load(&m->lat[f][b]) != 0;
		if (seen)	/* operations never called stay out of the text */
			write_histogram(c, m, f, name);
	}
}
