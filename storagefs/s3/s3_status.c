/* s3_status.c — the node's own service-level operations, authenticated with SigV4 like
 * every request: GET /?cairn-status (JSON: disks, capacity, counters, heal and scrub
 * progress) and GET /?cairn-metrics (the same figures and the request metrics in
 * Prometheus text format); and the same text unauthenticated on the metrics listener. */
#include "s3_metrics.h"
#include "s3_req.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define STATUS_DISKS	64

static int status_get(struct s3_ctx *s3, struct store_status *s, struct store_disk_status *d)
{
	return cstore_status(s3->cfg.store, s, d, STATUS_DISKS);
}

/* Paths are operator-chosen; quotes and backslashes would break the JSON/label syntax. */
static const char *safe_path(char *p)
{
	for (char *c = p; *c; c++) {
		if (*c == '"' || *c == '\\' || (unsigned char)*c < ' ')
			*c = '?';
	}
	return p;
}

static void status_disk_json(struct s3_req *r, struct store_disk_status *d, bool last)
{
	http_resp_bodyf(r->c,
		"{\"path\":\"%s\",\"id\":\"%s\",\"state\":\"%s\",\"full\":%s,\"size_bytes\":%llu,"
		"\"free_bytes\":%llu,\"reads\":%llu,\"read_bytes\":%llu,\"writes\":%llu,"
		"\"write_bytes\":%llu,\"errors\":%llu,\"scrub\":{\"pass\":%lld,\"objects\":%lld,"
		"\"total\":%lld,\"repaired\":%lld},",
		safe_path(d->path), d->id, d->online ? "online" : "offline",
		d->full ? "true" : "false",
		(unsigned long long)d->size_bytes, (unsigned long long)d->free_bytes,
		(unsigned long long)d->reads, (unsigned long long)d->read_bytes,
		(unsigned long long)d->writes, (unsigned long long)d->write_bytes,
		(unsigned long long)d->errors, (long long)d->scrub_pass,
		(long long)d->scrub_objects, (long long)d->scrub_total,
		(long long)d->scrub_repaired);
	http_resp_bodyf(r->c,
		"\"rebuild\":{\"active\":%s,\"objects\":%lld,\"total\":%lld,\"copied\":%lld,"
		"\"bytes\":%lld,\"eta_s\":%lld}}%s",
		d->rebuilding ? "true" : "false", (long long)d->rebuild_objects,
		(long long)d->rebuild_total, (long long)d->rebuild_copied,
		(long long)d->rebuild_bytes, (long long)d->rebuild_eta_s, last ? "" : ",");
}

/* "cluster": {...} for a node of a cluster: the map as it sees it and its repair thread
 * (rows looked at this pass against the last pass's total: the rebalance's progress). */
static void status_cluster_json(struct s3_req *r)
{
	struct cstore_cluster_status cl;
	const struct crepair_status *p = &cl.repair;

	if (cstore_cluster_status(r->s3->cfg.store, &cl))
		return;
	http_resp_bodyf(r->c,
		",\"cluster\":{\"node\":\"%s\",\"map_version\":%llu,\"replicas\":%d,"
		"\"write_quorum\":%d,\"nodes\":%d,\"up\":%d,\"down\":%d,\"joining\":%d,"
		"\"draining\":%d,\"buckets\":%d,\"repair\":{\"on\":%s,\"in_pass\":%s,"
		"\"passes\":%lld,\"rows\":%lld,\"rows_last_pass\":%lld,\"pushed\":%lld,"
		"\"pushed_bytes\":%lld,\"dropped\":%lld,\"errors\":%lld,\"pushed_total\":%lld,"
		"\"pushed_bytes_total\":%lld,\"last_pass_ms\":%lld,\"rate_limit_bytes_s\":%lld}}",
		cl.self_id, (unsigned long long)cl.map_version, cl.replicas, cl.write_quorum,
		cl.nodes, cl.up, cl.down, cl.joining, cl.draining, cl.buckets,
		cl.repair_on ? "true" : "false", p->in_pass ? "true" : "false",
		(long long)p->passes, (long long)p->rows, (long long)p->rows_last,
		(long long)p->pushed, (long long)p->pushed_bytes, (long long)p->dropped,
		(long long)p->errors, (long long)p->pushed_total, (long long)p->pushed_bytes_total,
		(long long)p->last_pass_ms, (long long)p->rate_bytes_s);
}

void s3_cairn_status(struct s3_req *r)
{
	static _Thread_local struct store_disk_status d[STATUS_DISKS];
	struct store_status s;
	int n = status_get(r->s3, &s, d);

	s3_resp_begin(r, 200);
	http_resp_header(r->c, "Content-Type", "application/json");
	http_resp_bodyf(r->c,
		"{\"disks_total\":%d,\"disks_online\":%d,\"disks_full\":%d,\"replicas\":%d,"
		"\"write_quorum\":%d,\"heal_queue\":%lld,\"healed\":%lld,\"disks\":[",
		s.disks, s.online, s.full, s.replicas, s.write_quorum, (long long)s.heal_queue,
		(long long)s.healed);
	for (int i = 0; i < n; i++)
		status_disk_json(r, &d[i], i == n - 1);
	http_resp_bodyf(r->c, "]");
	status_cluster_json(r);
	http_resp_bodyf(r->c, "}\n");
	s3_send(r);
}

/* One metric family: HELP, TYPE, then a sample per disk. */
static void metric_disks(struct http_conn *c, const char *name, const char *type,
			 const char *help, const struct store_disk_status *d, int n,
			 size_t field)
{
	http_resp_bodyf(c, "# HELP cairn_disk_%s %s\n# TYPE cairn_disk_%s %s\n", name, help,
			name, type);
	for (int i = 0; i < n; i++) {
		uint64_t v;

		memcpy(&v, (const char *)&d[i] + field, sizeof(v));
		http_resp_bodyf(c, "cairn_disk_%s{disk=\"%s\",path=\"%s\"} %llu\n", name,
				d[i].id, d[i].path, (unsigned long long)v);
	}
}

/* The node-wide and per-disk families. */
static void metrics_store(struct http_conn *c, struct s3_ctx *s3)
{
	static _Thread_local struct store_disk_status d[STATUS_DISKS];
	struct store_status s;
	int n = status_get(s3, &s, d);

	for (int i = 0; i < n; i++)
		safe_path(d[i].path);
	http_resp_bodyf(c, "# HELP cairn_disks_online Disks online.\n# TYPE cairn_disks_online gauge\ncairn_disks_online %d\n",
			s.online);
	http_resp_bodyf(c, "# HELP cairn_heal_queue Repairs queued or running.\n# TYPE cairn_heal_queue gauge\ncairn_heal_queue %lld\n",
			(long long)s.heal_queue);
	http_resp_bodyf(c, "# HELP cairn_healed_total Replicas restored.\n# TYPE cairn_healed_total counter\ncairn_healed_total %lld\n",
			(long long)s.healed);
	http_resp_bodyf(c, "# HELP cairn_disk_online 1 when the disk is online.\n# TYPE cairn_disk_online gauge\n");
	for (int i = 0; i < n; i++)
		http_resp_bodyf(c, "cairn_disk_online{disk=\"%s\",path=\"%s\"} %d\n", d[i].id,
				d[i].path, d[i].online);
	metric_disks(c, "size_bytes", "gauge", "File-system size.", d, n,
		     offsetof(struct store_disk_status, size_bytes));
	metric_disks(c, "free_bytes", "gauge", "File-system space available.", d, n,
		     offsetof(struct store_disk_status, free_bytes));
	metric_disks(c, "reads_total", "counter", "Replicas opened for reading.", d, n,
		     offsetof(struct store_disk_status, reads));
	metric_disks(c, "read_bytes_total", "counter", "Bytes read and verified.", d, n,
		     offsetof(struct store_disk_status, read_bytes));
	metric_disks(c, "writes_total", "counter", "Replica commits.", d, n,
		     offsetof(struct store_disk_status, writes));
	metric_disks(c, "write_bytes_total", "counter", "Bytes committed.", d, n,
		     offsetof(struct store_disk_status, write_bytes));
	metric_disks(c, "errors_total", "counter", "I/O errors, failed commits, corrupt blocks.",
		     d, n, offsetof(struct store_disk_status, errors));
	http_resp_bodyf(c, "# HELP cairn_disk_full 1 when the disk is out of space (new objects go elsewhere).\n# TYPE cairn_disk_full gauge\n");
	for (int i = 0; i < n; i++)
		http_resp_bodyf(c, "cairn_disk_full{disk=\"%s\",path=\"%s\"} %d\n", d[i].id,
				d[i].path, d[i].full);
	http_resp_bodyf(c, "# HELP cairn_disk_rebuild_remaining_objects Index rows the rebuild of a replaced disk has still to verify (0: no rebuild).\n# TYPE cairn_disk_rebuild_remaining_objects gauge\n");
	for (int i = 0; i < n; i++)
		http_resp_bodyf(c, "cairn_disk_rebuild_remaining_objects{disk=\"%s\",path=\"%s\"} %lld\n",
				d[i].id, d[i].path, d[i].rebuilding ?
				(long long)(d[i].rebuild_total - d[i].rebuild_objects) : 0LL);
}

static void metric1(struct http_conn *c, const char *name, const char *type, const char *help,
		    long long v)
{
	http_resp_bodyf(c, "# HELP cairn_cluster_%s %s\n# TYPE cairn_cluster_%s %s\ncairn_cluster_%s %lld\n",
			name, help, name, type, name, v);
}

static void metrics_cluster(struct http_conn *c, struct s3_ctx *s3)
{
	struct cstore_cluster_status cl;

	if (cstore_cluster_status(s3->cfg.store, &cl))
		return;
	metric1(c, "map_version", "gauge", "Version of the cluster map this node holds.",
		(long long)cl.map_version);
	metric1(c, "nodes_up", "gauge", "Nodes the map says are up.", cl.up);
	metric1(c, "nodes_down", "gauge", "Nodes the map says are down.", cl.down);
	metric1(c, "repair_passes_total", "counter", "Repair passes finished.", (long long)cl.repair.passes);
	metric1(c, "repair_rows", "gauge", "Rows the running (or last) repair pass has looked at.",
		(long long)cl.repair.rows);
	metric1(c, "repair_rows_last_pass", "gauge", "Rows the last finished repair pass looked at.",
		(long long)cl.repair.rows_last);
	metric1(c, "repair_pushed_total", "counter", "Copies pushed to owner nodes.",
		(long long)cl.repair.pushed_total);
	metric1(c, "repair_pushed_bytes_total", "counter", "Bytes pushed to owner nodes.",
		(long long)cl.repair.pushed_bytes_total);
}

#define METRICS_CTYPE	"text/plain; version=0.0.4"

void s3_cairn_metrics(struct s3_req *r)
{
	s3_resp_begin(r, 200);
	http_resp_header(r->c, "Content-Type", METRICS_CTYPE);
	metrics_store(r->c, r->s3);
	metrics_cluster(r->c, r->s3);
	s3_metrics_write(r->c, s3_ctx_metrics(r->s3));
	s3_send(r);
}

/* The metrics listener serves nothing but this text: it has no authentication, so it is
 * meant for a management address, and it reveals only figures (disk ids and paths). */
void s3_metrics_on_request(struct http_conn *c, struct http_req *req, void *ud)
{
	bool get = req->method == HTTP_GET || req->method == HTTP_HEAD;

	if (!get || req->path_len != 8 || memcmp(req->path, "/metrics", 8) != 0) {
		http_resp_status(c, 404);
		http_resp_header(c, "Content-Type", "text/plain");
		http_resp_bodyf(c, "not found: this address serves only GET /metrics\n");
		http_resp_send(c);
		return;
	}
	http_resp_status(c, 200);
	http_resp_header(c, "Content-Type", METRICS_CTYPE);
	metrics_store(c, ud);
	metrics_cluster(c, ud);
	s3_metrics_write(c, s3_ctx_metrics(ud));
	http_resp_send(c);
}
