/* pv_heartbeat.c — building and sending heartbeats. Sizes come from statvfs of each data
 * directory at send time, so the controller sees space as it is, not as it was at boot. */
#include "pv_heartbeat.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "../../lib/json.h"
#include "../../lib/log.h"
#include "pv_client.h"
#include "pv_util.h"

#define PV_HB_TOKS	32

static long uptime_s(const char *proc_root)
{
	char path[512], buf[64];

	snprintf(path, sizeof(path), "%s/uptime", proc_root);
	if (pv_read_small(path, buf, sizeof(buf)) <= 0)
		return 0;
	return atol(buf);
}

/* One disk object; adds its sizes to the totals when it is usable. */
static void disk_json(struct json_w *w, const struct pv_disk *d, int64_t *cap, int64_t *free_b,
		      int *bad)
{
	enum pv_disk_state st = d->state;
	char msg[PV_MSG_MAX];
	struct statvfs sv;
	int64_t size = 0, avail = 0;

	pv_copy(msg, sizeof(msg), d->msg);
	if (st == PV_DS_OK && d->dir[0]) {
		if (statvfs(d->dir, &sv) == 0) {
			size = (int64_t)sv.f_blocks * (int64_t)sv.f_frsize;
			avail = (int64_t)sv.f_bavail * (int64_t)sv.f_frsize;
			*cap += size;
			*free_b += avail;
		} else {
			st = PV_DS_ERROR;
			snprintf(msg, sizeof(msg), "statvfs: %s", strerror(errno));
		}
	}
	if (st != PV_DS_OK)
		(*bad)++;
	json_w_obj(w);
	json_w_kstr(w, "name", d->name);
	json_w_kstr(w, "dir", d->dir);
	json_w_kstr(w, "state", pv_disk_state_name(st));
	json_w_kint(w, "size_bytes", size);
	json_w_kint(w, "free_bytes", avail);
	if (msg[0])
		json_w_kstr(w, "message", msg);
	json_w_obj_end(w);
}

static int body_once(const struct pv_hb_in *in, char *buf, size_t cap)
{
	int64_t total = 0, avail = 0;
	int bad = 0, ok;
	struct json_w w;

	json_w_init(&w, buf, cap);
	json_w_obj(&w);
	json_w_kint(&w, "uptime_s", uptime_s(in->proc_root));
	json_w_kstr(&w, "s3_endpoint", in->s3_endpoint);
	if (in->internal_addr && in->internal_addr[0])
		json_w_kstr(&w, "internal_addr", in->internal_addr);
	json_w_key(&w, "disks");
	json_w_arr(&w);
	for (int i = 0; i < in->disks->n; i++)
		disk_json(&w, &in->disks->v[i], &total, &avail, &bad);
	json_w_arr_end(&w);
	ok = in->disks->n - bad;
	json_w_kstr(&w, "health", ok == 0 ? "no_disks" : bad ? "degraded" : "ok");
	json_w_kint(&w, "capacity_bytes", total);
	json_w_kint(&w, "free_bytes", avail);
	json_w_obj_end(&w);
	return json_w_end(&w);
}

int pv_heartbeat_body(const struct pv_hb_in *in, char **out, size_t *len)
{
	size_t cap = 4096 + (size_t)in->disks->n * 1024;
	char *buf = malloc(cap);
	int n;

	if (!buf)
		return -ENOMEM;
	n = body_once(in, buf, cap);
	if (n < 0) {
		free(buf);
		return n;
	}
	*out = buf;
	*len = (size_t)n;
	return 0;
}

static int parse_reply(const struct http1_resp *resp, struct pv_hb_out *out)
{
	struct json_tok toks[PV_HB_TOKS];
	int64_t hb = 0;
	int n = json_parse(resp->body, resp->body_len, toks, PV_HB_TOKS);

	if (n < 1 || toks[0].type != JSON_OBJ ||
	    json_str(resp->body, toks, 0, "state", out->state, sizeof(out->state)))
		return -EBADMSG;
	if (json_int(resp->body, toks, 0, "heartbeat_s", &hb) == 0 && hb >= 1 && hb <= 3600)
		out->heartbeat_s = (int)hb;
	return 0;
}

int pv_heartbeat(const struct pv_hb_in *in, struct pv_hb_out *out)
{
	struct pv_conn_opts co = { .host = in->host, .port = in->port, .ca_pem = in->id->ca_pem,
				   .cert_pem = in->id->cert_pem, .key_pem = in->id->key_pem };
	struct http1_resp resp = { 0 };
	char err[PV_ERR_MAX], msg[256], *body = NULL;
	size_t len;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = pv_heartbeat_body(in, &body, &len);
	if (!rc)
		rc = pv_post(&co, "/v1/heartbeat", body, len, &resp);
	free(body);
	if (rc)
		goto out;
	if (resp.status == 200) {
		rc = parse_reply(&resp, out);
		goto out;
	}
	pv_error_body(&resp, err, msg, sizeof(msg));
	if (resp.status == 403 && strcmp(err, "node_removed") == 0) {
		rc = -EPERM;
		goto out;
	}
	log_warnx("provd_heartbeat_refused status=%d error=%s msg=\"%s\"", resp.status,
		  err[0] ? err : "?", msg);
	rc = resp.status >= 400 && resp.status < 500 ? -EACCES : -EIO;
out:
	free(resp.body);
	return rc;
}

int pv_source_addr(const char *host, const char *port, char *out, size_t max)
{
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM }, *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char ip[INET6_ADDRSTRLEN];
	int fd, rc;

	/* A UDP connect sends nothing; it only picks the route, and so the source address. */
	rc = getaddrinfo(host, port, &hints, &ai);
	if (rc)
		return -EHOSTUNREACH;
	fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	rc = fd < 0 ? -errno : 0;
	if (!rc && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0)
		rc = -errno;
	if (!rc && getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		rc = -errno;
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
	if (rc)
		return rc;
	if (ss.ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, ip, sizeof(ip));
		rc = snprintf(out, max, "[%s]", ip);
	} else {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, ip, sizeof(ip));
		rc = snprintf(out, max, "%s", ip);
	}
	return rc < 0 || (size_t)rc >= max ? -ENAMETOOLONG : 0;
}
