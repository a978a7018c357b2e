/* ctl_api.c — routing, authentication and the handlers of the controller's API. Each
 * handler parses and checks its body, calls the state, and answers; ctl_err_of() is the
 * one place where an errno becomes an HTTP status and an error code. */
#include "ctl_api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../lib/hash.h"
#include "../../lib/http1.h"
#include "../../lib/log.h"
#include "../../lib/pki.h"
#include "ctl_file.h"
#include "ctl_inv.h"
#include "ctl_json.h"

_Static_assert(CTL_CERT_MAX == PKI_PEM_MAX, "a node certificate is one PKI PEM");

#define API_SMALL_REPLY		(16 * 1024)
#define API_TOKS_MAX		16384

enum api_err {
	E_BAD_REQUEST, E_BAD_INVENTORY, E_BAD_CSR, E_BAD_TOKEN, E_TOKEN_EXPIRED, E_TOKEN_USED,
	E_DUPLICATE, E_NODE_REMOVED, E_NO_CLIENT_CERT, E_BAD_ADMIN, E_NO_SUCH_NODE, E_NOT_FOUND,
	E_METHOD, E_TOO_LARGE, E_LENGTH, E_FULL, E_BUSY, E_INTERNAL,
};

static const struct { int status; const char *code; } api_errs[] = {
	[E_BAD_REQUEST] = { 400, "bad_request" },
	[E_BAD_INVENTORY] = { 400, "bad_inventory" },
	[E_BAD_CSR] = { 400, "bad_csr" },
	[E_BAD_TOKEN] = { 401, "bad_token" },
	[E_TOKEN_EXPIRED] = { 401, "token_expired" },
	[E_TOKEN_USED] = { 401, "token_used" },
	[E_DUPLICATE] = { 409, "duplicate_node" },
	[E_NODE_REMOVED] = { 403, "node_removed" },
	[E_NO_CLIENT_CERT] = { 401, "no_client_cert" },
	[E_BAD_ADMIN] = { 401, "bad_admin_token" },
	[E_NO_SUCH_NODE] = { 404, "no_such_node" },
	[E_NOT_FOUND] = { 404, "not_found" },
	[E_METHOD] = { 405, "method_not_allowed" },
	[E_TOO_LARGE] = { 413, "too_large" },
	[E_LENGTH] = { 411, "length_required" },
	[E_FULL] = { 507, "full" },
	[E_BUSY] = { 503, "busy" },
	[E_INTERNAL] = { 500, "internal" },
};

/* The error an errno of the state (or of the request reader) stands for. */
static enum api_err ctl_err_of(int err)
{
	switch (err) {
	case -EACCES: return E_BAD_TOKEN;
	case -EKEYEXPIRED: return E_TOKEN_EXPIRED;
	case -EKEYREVOKED: return E_TOKEN_USED;
	case -EEXIST: return E_DUPLICATE;
	case -EIDRM: return E_NODE_REMOVED;
	case -ENOENT: return E_NO_SUCH_NODE;
	case -EINVAL: return E_BAD_REQUEST;
	case -EPROTO: return E_BAD_REQUEST;
	case -EFBIG: return E_TOO_LARGE;
	case -ENOTSUP: return E_LENGTH;
	case -ENOSPC: return E_FULL;
	default: return E_INTERNAL;
	}
}

/* AUTH_MEMBER: the admin bearer, or the certificate of a node that is not gone. */
enum api_auth { AUTH_NONE, AUTH_NODE, AUTH_ADMIN, AUTH_MEMBER };

/* One request being answered. */
struct ctl_req {
	struct ctl_api *api;
	struct tls_conn *c;
	struct http1_srv_req *r;
	const char *event;		/* the log event of the route */
	char id[CTL_ID_MAX];		/* the path's <id> */
	char addr[64];			/* the peer's IP address */
	int64_t now_ms;
	struct json_tok *toks;		/* the parsed body, or NULL */
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------ replies */

static void reply(struct ctl_req *q, int status, struct json_w *w)
{
	int len = json_w_end(w);

	if (len < 0) {
		log_errorx("%s_reply_overflow addr=%s", q->event, q->addr);
		http1_reply(q->c, 500, "application/json",
			    "{\"error\":\"internal\",\"message\":\"reply too large\"}\n", 49);
		return;
	}
	w->buf[len] = '\n';	/* json_w_end left room for its NUL */
	http1_reply(q->c, status, "application/json", w->buf, (size_t)len + 1);
}

/* Answers with error e; message is for a human. Logs the rejection. */
static void reply_err(struct ctl_req *q, enum api_err e, const char *message)
{
	char buf[1024], safe[64];
	struct json_w w;

	log_warnx("%s_rejected addr=%s node=%s status=%d error=%s msg=\"%s\"", q->event, q->addr,
		  ctl_log_safe(q->id, safe, sizeof(safe)), api_errs[e].status, api_errs[e].code,
		  message);
	json_w_init(&w, buf, sizeof(buf) - 1);
	json_w_obj(&w);
	json_w_kstr(&w, "error", api_errs[e].code);
	json_w_kstr(&w, "message", message);
	json_w_obj_end(&w);
	reply(q, api_errs[e].status, &w);
}

/* reply_err for the checks that stop at the first failure. Returns -1. */
static int reject(struct ctl_req *q, enum api_err e, const char *message)
{
	reply_err(q, e, message);
	return -1;
}

static void reply_errno(struct ctl_req *q, int err, const char *message)
{
	reply_err(q, ctl_err_of(err), message ? message : strerror(-err));
}

/* Parses the body as a JSON object into q->toks; answers 400 and returns -1 if it is not. */
static int parse_body(struct ctl_req *q)
{
	const struct http1_srv_req *r = q->r;
	int n;

	n = ctl_json_parse(r->body, r->body_len, API_TOKS_MAX, &q->toks);
	if (n < 0 || q->toks[0].type != JSON_OBJ) {
		reply_err(q, E_BAD_REQUEST, n < 0 ? "the body is not JSON" :
			  "the body is not a JSON object");
		return -1;
	}
	return 0;
}

/* A member that is optional but must be an integer in [min, max] when present. */
static int opt_int(struct ctl_req *q, const char *key, int64_t min, int64_t max, int64_t *v)
{
	int i = json_find(q->r->body, q->toks, 0, key);

	if (i < 0)
		return 0;
	if (json_get_int(q->r->body, q->toks, i, v) || *v < min || *v > max)
		return -EINVAL;
	return 0;
}

/* ------------------------------------------------------------------ node handlers */

static void h_ca(struct ctl_req *q)
{
	http1_reply(q->c, 200, "application/x-pem-file", q->api->ca_cert_pem,
		    strlen(q->api->ca_cert_pem));
}

struct sign_ctx {
	const struct ctl_api *api;
	const char *csr;
};

static int sign_node(void *ud, const char *node_id, uint64_t serial, char *cert_pem)
{
	const struct sign_ctx *s = ud;

	return pki_sign(s->api->ca_key_pem, s->api->ca_cert_pem, s->csr, node_id, serial,
			CTL_CERT_DAYS, PKI_CLIENT_SERVER, cert_pem);
}

static void join_reply(struct ctl_req *q, const char *node_id, const char *cert)
{
	const struct ctl_api *a = q->api;
	char buf[API_SMALL_REPLY];
	struct json_w w;

	json_w_init(&w, buf, sizeof(buf) - 1);
	json_w_obj(&w);
	json_w_kstr(&w, "node_id", node_id);
	json_w_kstr(&w, "cert", cert);
	json_w_kstr(&w, "ca", a->ca_cert_pem);
	json_w_kstr(&w, "cluster_id", a->cluster_id);
	json_w_kstr(&w, "access_key", a->access_key);
	json_w_kstr(&w, "secret_key", a->secret_key);
	json_w_kint(&w, "replicas", a->replicas);
	json_w_kint(&w, "heartbeat_s", a->heartbeat_s);
	json_w_obj_end(&w);
	reply(q, 200, &w);
}

/* The join's fields, each checked; answers and returns -1 on the first that is wrong. */
struct join_in {
	char token[CTL_TOKEN_MAX];
	char csr[PKI_PEM_MAX];
	char machine_id[256], hostname[256];
	char csr_hash[2 * SHA256_LEN + 1];
	char *inventory;
};

static int join_parse(struct ctl_req *q, struct join_in *in)
{
	const char *text = q->r->body, *why;
	unsigned char d[SHA256_LEN];
	char cn[PKI_CN_MAX];
	int inv, err;

	err = json_str(text, q->toks, 0, "token", in->token, sizeof(in->token));
	if (err == -ENAMETOOLONG)
		return reject(q, E_BAD_TOKEN, "malformed token");
	if (err)
		return reject(q, E_BAD_REQUEST, "token: missing or not a string");
	err = json_str(text, q->toks, 0, "csr", in->csr, sizeof(in->csr));
	if (err == -ENAMETOOLONG)
		return reject(q, E_BAD_CSR, "csr: too long");
	if (err)
		return reject(q, E_BAD_REQUEST, "csr: missing or not a string");
	inv = json_find(text, q->toks, 0, "inventory");
	if (inv < 0 || q->toks[inv].type != JSON_OBJ)
		return reject(q, E_BAD_REQUEST, "inventory: missing or not an object");
	if (ctl_inv_check(text, q->toks, inv, &in->inventory, in->machine_id, in->hostname, &why))
		return reject(q, E_BAD_INVENTORY, why);
	if (pki_csr_cn(in->csr, cn) == -EINVAL)
		return reject(q, E_BAD_CSR, "csr: unparsable or its signature does not verify");
	sha256(in->csr, strlen(in->csr), d);
	hex_encode(d, sizeof(d), in->csr_hash);
	return 0;
}

static const char *join_message(int err)
{
	switch (err) {
	case -EACCES: return "unknown token, wrong secret or malformed token";
	case -EKEYEXPIRED: return "the token has expired";
	case -EKEYREVOKED: return "the token has no uses left";
	case -EEXIST: return "a node with this machine_id is enrolled (remove it first)";
	case -ENOSPC: return "the cluster has as many nodes as it can hold";
	default: return NULL;
	}
}

static void h_join(struct ctl_req *q)
{
	struct join_in *in = calloc(1, sizeof(*in));
	char *cert = malloc(CTL_CERT_MAX), node_id[CTL_ID_MAX], m[64], h[64];
	struct sign_ctx sc = { q->api, NULL };
	struct ctl_join j;
	int err;

	if (!in || !cert) {
		reply_err(q, E_INTERNAL, "out of memory");
		goto out;
	}
	if (parse_body(q) || join_parse(q, in))
		goto out;
	sc.csr = in->csr;
	j = (struct ctl_join){ .token = in->token, .machine_id = in->machine_id,
			       .hostname = in->hostname, .addr = q->addr,
			       .inventory = in->inventory, .csr_hash = in->csr_hash,
			       .sign = sign_node, .sign_ud = &sc };
	err = ctl_join(q->api->st, &j, q->now_ms, node_id, cert);
	if (err == -EINVAL)
		reply_err(q, E_BAD_CSR, "csr: cannot be signed");
	else if (err)
		reply_errno(q, err, join_message(err));
	if (err)
		goto out;
	log_info("ctl_join node=%s machine=%s hostname=%s addr=%s", node_id,
		 ctl_log_safe(in->machine_id, m, sizeof(m)), ctl_log_safe(in->hostname, h, sizeof(h)),
		 q->addr);
	join_reply(q, node_id, cert);
out:
	if (in)
		free(in->inventory);
	free(in);
	free(cert);
}

/* "host:port" with a port 1..65535 and a host of [A-Za-z0-9.-], or "[v6]:port". */
static bool addr_ok(const char *a)
{
	const char *colon = strrchr(a, ':'), *host_end = colon;
	size_t hlen;
	char *end;
	long port;

	if (!colon || colon == a)
		return false;
	if (a[0] == '[') {
		if (colon[-1] != ']' || colon - a < 3)
			return false;
		a++;
		host_end = colon - 1;
		hlen = (size_t)(host_end - a);
		if (strspn(a, "0123456789abcdefABCDEF:.") < hlen)
			return false;
	} else {
		hlen = (size_t)(host_end - a);
		if (strspn(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") < hlen)
			return false;
	}
	if (colon[1] < '1' || colon[1] > '9')
		return false;
	port = strtol(colon + 1, &end, 10);
	return !*end && port >= 1 && port <= 65535;
}

/* The heartbeat's optional members into b (strings allocated: the caller frees). */
static int beat_parse(struct ctl_req *q, struct ctl_beat *b, char s3[CTL_ENDPOINT_MAX],
		      char iaddr[CTL_ADDR_MAX], char **health, char **disks)
{
	const char *text = q->r->body;
	int i, err;

	b->uptime_s = b->capacity_bytes = b->free_bytes = -1;
	err = opt_int(q, "uptime_s", 0, INT64_MAX, &b->uptime_s);
	if (!err)
		err = opt_int(q, "capacity_bytes", 0, INT64_MAX, &b->capacity_bytes);
	if (!err)
		err = opt_int(q, "free_bytes", 0, INT64_MAX, &b->free_bytes);
	i = json_find(text, q->toks, 0, "s3_endpoint");
	if (!err && i >= 0 && (err = json_get_str(text, q->toks, i, s3, CTL_ENDPOINT_MAX)) == 0)
		b->s3_endpoint = s3;
	i = json_find(text, q->toks, 0, "internal_addr");
	if (!err && i >= 0 && (err = json_get_str(text, q->toks, i, iaddr, CTL_ADDR_MAX)) == 0)
		err = addr_ok(iaddr) ? 0 : -EINVAL;
	if (!err && i >= 0)
		b->internal_addr = iaddr;
	i = json_find(text, q->toks, 0, "health");
	if (!err && i >= 0 && (err = ctl_json_dup(text, q->toks, i, CTL_BEAT_JSON_MAX, health)) == 0)
		b->health = *health;
	i = json_find(text, q->toks, 0, "disks");
	if (!err && i >= 0 && q->toks[i].type != JSON_ARR)
		err = -EINVAL;
	if (!err && i >= 0 && (err = ctl_json_dup(text, q->toks, i, CTL_BEAT_JSON_MAX, disks)) == 0)
		b->disks = *disks;
	return err;
}

static void h_heartbeat(struct ctl_req *q)
{
	struct ctl_beat b = { 0 };
	enum ctl_node_state s;
	char s3[CTL_ENDPOINT_MAX], iaddr[CTL_ADDR_MAX], *health = NULL, *disks = NULL, buf[256];
	struct json_w w;
	int err;

	if (parse_body(q))
		goto out;
	if (beat_parse(q, &b, s3, iaddr, &health, &disks)) {
		reply_err(q, E_BAD_REQUEST, "a heartbeat field has the wrong type or is too large");
		goto out;
	}
	err = ctl_heartbeat(q->api->st, q->id, &b, q->now_ms, &s);
	if (err) {
		reply_errno(q, err, err == -EIDRM ? "this node was removed from the cluster" :
			    err == -ENOENT ? "no such node" : NULL);
		goto out;
	}
	log_info("ctl_heartbeat node=%s state=%s addr=%s", q->id, ctl_state_name(s), q->addr);
	json_w_init(&w, buf, sizeof(buf) - 1);
	json_w_obj(&w);
	json_w_kstr(&w, "state", ctl_state_name(s));
	json_w_kint(&w, "heartbeat_s", q->api->heartbeat_s);
	json_w_obj_end(&w);
	reply(q, 200, &w);
out:
	free(health);
	free(disks);
}

/* ------------------------------------------------------------------ admin handlers */

/* Remembers the newest boot token for boot.ipxe (ctl_boot.c reads it). */
static int save_boot_token(const struct ctl_api *a, const char *token)
{
	char line[CTL_TOKEN_MAX + 1];
	int n = snprintf(line, sizeof(line), "%s\n", token);

	return ctl_file_write(a->state_dir, "boot.token", line, (size_t)n, 0600);
}

static void h_tokens(struct ctl_req *q)
{
	char token[CTL_TOKEN_MAX], buf[512];
	int64_t ttl = 3600, uses = 1, expires;
	bool boot = false;
	struct json_w w;
	int i, err;

	if (q->r->body_len && parse_body(q))
		return;
	if (q->toks && (opt_int(q, "ttl_s", 1, CTL_TOKEN_TTL_MAX_S, &ttl) ||
			opt_int(q, "uses", 1, CTL_TOKEN_USES_MAX, &uses) ||
			((i = json_find(q->r->body, q->toks, 0, "boot")) >= 0 &&
			 json_get_bool(q->r->body, q->toks, i, &boot)))) {
		reply_err(q, E_BAD_REQUEST, "ttl_s (1..2592000), uses (1..10000) or boot (bool) out of range or of the wrong type");
		return;
	}
	err = ctl_token_new(q->api->st, ttl, (int)uses, q->now_ms, token, &expires);
	if (!err && boot)
		err = save_boot_token(q->api, token);
	if (err) {
		reply_errno(q, err, NULL);
		return;
	}
	/* The id only: the secret is in the reply and nowhere else. */
	log_info("ctl_token_created id=%.16s uses=%d ttl_s=%lld boot=%d addr=%s", token + 5,
		 (int)uses, (long long)ttl, boot, q->addr);
	json_w_init(&w, buf, sizeof(buf) - 1);
	json_w_obj(&w);
	json_w_kstr(&w, "token", token);
	json_w_kint(&w, "expires_ms", expires);
	json_w_kint(&w, "uses", uses);
	json_w_kbool(&w, "boot", boot);
	json_w_obj_end(&w);
	reply(q, 200, &w);
}

/* Replies 200 with what fill() writes, in a buffer grown until it fits (at most
 * CTL_REPLY_MAX); returns what fill() returned. */
static uint64_t reply_list(struct ctl_req *q, uint64_t (*fill)(struct ctl_req *q, struct json_w *w))
{
	size_t cap = 64 * 1024;
	struct json_w w;
	uint64_t ret;
	char *buf;

	for (;;) {
		buf = malloc(cap);
		if (!buf) {
			reply_err(q, E_INTERNAL, "out of memory");
			return 0;
		}
		json_w_init(&w, buf, cap - 1);
		ret = fill(q, &w);
		if (!w.overflow || cap >= CTL_REPLY_MAX)
			break;
		free(buf);
		cap *= 2;
	}
	reply(q, 200, &w);
	free(buf);
	return ret;
}

static uint64_t write_nodes(struct ctl_req *q, struct json_w *w)
{
	ctl_nodes_json(q->api->st, w);
	return 0;
}

static void h_nodes(struct ctl_req *q)
{
	log_info("ctl_nodes addr=%s", q->addr);
	reply_list(q, write_nodes);
}

/* GET a node, or after drain/remove (action != NULL) the node as it is now. */
static void node_reply(struct ctl_req *q, const char *action, int err)
{
	char *buf = NULL;
	struct json_w w;

	if (!err) {
		buf = malloc(CTL_REPLY_MAX);
		err = buf ? 0 : -ENOMEM;
	}
	if (!err) {
		json_w_init(&w, buf, CTL_REPLY_MAX - 1);
		err = ctl_node_json(q->api->st, q->id, &w);
	}
	if (err) {
		reply_errno(q, err, err == -ENOENT ? "no such node" :
			    err == -EIDRM ? "the node was removed" : NULL);
	} else {
		if (action)
			log_info("ctl_node_%s node=%s addr=%s", action, q->id, q->addr);
		reply(q, 200, &w);
	}
	free(buf);
}

static void h_node(struct ctl_req *q)
{
	node_reply(q, NULL, 0);
}

static void h_drain(struct ctl_req *q)
{
	node_reply(q, "drain", ctl_node_drain(q->api->st, q->id, q->now_ms));
}

static void h_remove(struct ctl_req *q)
{
	node_reply(q, "remove", ctl_node_remove(q->api->st, q->id, q->now_ms));
}

/* ------------------------------------------------------------------ the map */

static uint64_t write_map(struct ctl_req *q, struct json_w *w)
{
	const struct ctl_api *a = q->api;
	struct ctl_map_info mi = { a->cluster_id, a->replicas, a->write_quorum };

	return ctl_map_json(a->st, &mi, w);
}

/* The query's since=N into *since (*poll: it was there). -EINVAL: not a decimal integer. */
static int map_since(const char *query, uint64_t *since, bool *poll)
{
	const char *p = query;
	char *end;

	*poll = false;
	while (*p && strncmp(p, "since=", 6) != 0) {
		p = strchr(p, '&');
		p = p ? p + 1 : "";
	}
	if (!*p)
		return 0;
	p += 6;
	if (*p < '0' || *p > '9' || strspn(p, "0123456789") > 19)
		return -EINVAL;
	errno = 0;
	*since = strtoull(p, &end, 10);
	if (errno || (*end && *end != '&'))
		return -EINVAL;
	*poll = true;
	return 0;
}

/* Holds a long poll while the map is not above version `since`. true: answer with the map;
 * false: answered already (304 at the end of the poll or when the controller stops, 503
 * when CTL_MAP_POLLERS_MAX polls are held already). */
static bool map_hold(struct ctl_req *q, uint64_t since)
{
	struct ctl_api *a = q->api;
	int held, err;

	if (ctl_map_version(a->st) > since)
		return true;
	held = atomic_fetch_add(&a->pollers, 1) + 1;
	if (held > CTL_MAP_POLLERS_MAX) {
		atomic_fetch_sub(&a->pollers, 1);
		reply_err(q, E_BUSY, "too many map polls held; poll again in a few seconds");
		return false;
	}
	log_debug("ctl_map_hold addr=%s node=%s since=%llu pollers=%d", q->addr,
		  q->id[0] ? q->id : "-", (unsigned long long)since, held);
	err = ctl_map_wait(a->st, since, a->map_poll_ms);
	atomic_fetch_sub(&a->pollers, 1);
	if (err == 0)
		return true;
	log_info("ctl_map_unchanged addr=%s node=%s since=%llu why=%s", q->addr,
		 q->id[0] ? q->id : "-", (unsigned long long)since,
		 err == -ECANCELED ? "stopping" : "timeout");
	http1_reply(q->c, 304, NULL, "", 0);
	return false;
}

static void h_map(struct ctl_req *q)
{
	uint64_t since = 0, version;
	char since_s[24] = "-";
	bool poll;

	if (map_since(q->r->query, &since, &poll)) {
		reply_err(q, E_BAD_REQUEST, "since: a map version (a decimal integer) is expected");
		return;
	}
	if (poll && !map_hold(q, since))
		return;
	version = reply_list(q, write_map);
	if (poll)
		snprintf(since_s, sizeof(since_s), "%llu", (unsigned long long)since);
	log_info("ctl_map addr=%s node=%s version=%llu since=%s", q->addr, q->id[0] ? q->id : "-",
		 (unsigned long long)version, since_s);
}

/* ------------------------------------------------------------------ routing */

static const struct route {
	const char *method;
	const char *pattern;		/* '*' stands for one node id */
	enum api_auth auth;
	const char *event;
	void (*fn)(struct ctl_req *q);
} routes[] = {
	{ "GET", "/v1/ca", AUTH_NONE, "ctl_ca", h_ca },
	{ "POST", "/v1/join", AUTH_NONE, "ctl_join", h_join },
	{ "POST", "/v1/heartbeat", AUTH_NODE, "ctl_heartbeat", h_heartbeat },
	{ "POST", "/v1/tokens", AUTH_ADMIN, "ctl_token", h_tokens },
	{ "GET", "/v1/nodes", AUTH_ADMIN, "ctl_nodes", h_nodes },
	{ "GET", "/v1/nodes/*", AUTH_ADMIN, "ctl_node", h_node },
	{ "POST", "/v1/nodes/*/drain", AUTH_ADMIN, "ctl_node_drain", h_drain },
	{ "DELETE", "/v1/nodes/*", AUTH_ADMIN, "ctl_node_remove", h_remove },
	{ "GET", "/v1/map", AUTH_MEMBER, "ctl_map", h_map },
};
#define NROUTES ((int)(sizeof(routes) / sizeof(routes[0])))

/* Whether path matches pattern; the '*' segment (1..15 of [a-z0-9-]) goes to id. */
static bool path_match(const char *pattern, const char *path, char id[CTL_ID_MAX])
{
	while (*pattern) {
		if (*pattern == '*') {
			size_t n = strspn(path, "abcdefghijklmnopqrstuvwxyz0123456789-");

			if (n == 0 || n >= CTL_ID_MAX)
				return false;
			memcpy(id, path, n);
			id[n] = 0;
			path += n;
			pattern++;
		} else if (*pattern++ != *path++) {
			return false;
		}
	}
	return *path == 0;
}

static bool same_token(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char diff = la != lb;

	for (size_t i = 0; i < la && i < lb; i++)
		diff |= (unsigned char)(a[i] ^ b[i]);
	return diff == 0;
}

/* A node certificate's node, known and not gone: 0, else answers and returns -1. */
static int member(struct ctl_req *q)
{
	enum ctl_node_state s;
	int err = ctl_node_state(q->api->st, q->id, &s);

	if (!err && s == CTL_GONE)
		err = -EIDRM;
	if (err)
		reply_errno(q, err, err == -EIDRM ? "this node was removed from the cluster" :
			    "no such node");
	return err ? -1 : 0;
}

/* 0 when the request may go on; else answers 401 (403, 404) and returns -1. */
static int authenticate(struct ctl_req *q, enum api_auth auth)
{
	const char *cn = tls_peer_cn(q->c);

	switch (auth) {
	case AUTH_MEMBER:
		if (q->r->bearer[0])
			return authenticate(q, AUTH_ADMIN);
		if (strncmp(cn, "node-", 5) != 0 || strlen(cn) >= CTL_ID_MAX)
			return reject(q, E_NO_CLIENT_CERT, "a node certificate from this cluster's CA or the admin bearer token is required");
		memcpy(q->id, cn, strlen(cn) + 1);
		return member(q);
	case AUTH_NONE:
		return 0;
	case AUTH_ADMIN:
		if (q->api->admin_token[0] && same_token(q->r->bearer, q->api->admin_token))
			return 0;
		return reject(q, E_BAD_ADMIN, "missing or wrong admin bearer token");
	case AUTH_NODE:
		if (strncmp(cn, "node-", 5) == 0 && strlen(cn) < CTL_ID_MAX) {
			memcpy(q->id, cn, strlen(cn) + 1);
			return 0;
		}
		return reject(q, E_NO_CLIENT_CERT, "a node certificate from this cluster's CA is required");
	}
	return -1;
}

static void route(struct ctl_req *q)
{
	bool path_known = false;
	char id[CTL_ID_MAX];

	for (int i = 0; i < NROUTES; i++) {
		if (!path_match(routes[i].pattern, q->r->path, id))
			continue;
		path_known = true;
		if (strcmp(routes[i].method, q->r->method) != 0)
			continue;
		q->event = routes[i].event;
		if (strchr(routes[i].pattern, '*'))
			memcpy(q->id, id, sizeof(id));
		if (authenticate(q, routes[i].auth) == 0)
			routes[i].fn(q);
		return;
	}
	reply_err(q, path_known ? E_METHOD : E_NOT_FOUND,
		  path_known ? "method not allowed on this path" : "no such endpoint");
}

/* "a.b.c.d:port" or "[v6]:port" without the port (and brackets). */
static void peer_ip(struct tls_conn *c, char out[64])
{
	const char *a = tls_peer_addr(c), *end;

	if (a[0] == '[' && (end = strchr(a, ']')) != NULL)
		snprintf(out, 64, "%.*s", (int)(end - a - 1), a + 1);
	else if ((end = strrchr(a, ':')) != NULL)
		snprintf(out, 64, "%.*s", (int)(end - a), a);
	else
		snprintf(out, 64, "%s", a);
}

void ctl_api_handle(struct ctl_api *api, struct tls_conn *c)
{
	struct http1_srv_req *r = calloc(1, sizeof(*r));
	struct ctl_req q = { .api = api, .c = c, .r = r, .event = "ctl_request" };
	int err;

	peer_ip(c, q.addr);
	q.now_ms = now_ms();
	if (!r) {
		reply_err(&q, E_INTERNAL, "out of memory");
		return;
	}
	err = http1_read_request(c, r);
	if (err == -ETIMEDOUT || err == -ECONNRESET || err == -EPIPE) {
		log_warnx("ctl_request_aborted addr=%s err=%d", q.addr, err);
	} else if (err) {
		reply_errno(&q, err, err == -EFBIG ? "body too large" : "malformed request");
	} else if (r->body_len > CTL_BODY_MAX) {
		reply_err(&q, E_TOO_LARGE, "body larger than 64 KiB");
	} else {
		route(&q);
	}
	free(q.toks);
	http1_srv_req_fini(r);
	free(r);
}
