/* pv_state.c — the agent's identity files and the storagefsd config it writes. Every file
 * goes through file_write_atomic, and node.json is written last: it is what says "joined". */
#include "pv_state.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../lib/fileio.h"
#include "../../lib/json.h"
#include "pv_util.h"

#define PV_NODE_JSON_MAX	2048
#define PV_NODE_TOKS		64
#define PATH_MAX_PV		4096

static const char *const pem_files[] = { "node.key", "node.crt", "ca.crt" };

static char *pem_of(struct pv_ident *id, int i)
{
	return i == 0 ? id->key_pem : i == 1 ? id->cert_pem : id->ca_pem;
}

int pv_state_node_json(const struct pv_ident *id, char *buf, size_t max)
{
	struct json_w w;

	json_w_init(&w, buf, max);
	json_w_obj(&w);
	json_w_kstr(&w, "node_id", id->node_id);
	json_w_kstr(&w, "cluster_id", id->cluster_id);
	json_w_kstr(&w, "controller", id->controller);
	json_w_kstr(&w, "access_key", id->access_key);
	json_w_kstr(&w, "secret_key", id->secret_key);
	json_w_kint(&w, "replicas", id->replicas);
	json_w_kint(&w, "heartbeat_s", id->heartbeat_s);
	json_w_obj_end(&w);
	return json_w_end(&w);
}

static int parse_node_json(const char *text, size_t len, struct pv_ident *id)
{
	struct json_tok toks[PV_NODE_TOKS];
	int64_t r = 0, hb = 0;
	int n = json_parse(text, len, toks, PV_NODE_TOKS);

	if (n < 1 || toks[0].type != JSON_OBJ)
		return -EUCLEAN;
	if (json_str(text, toks, 0, "node_id", id->node_id, sizeof(id->node_id)) ||
	    json_str(text, toks, 0, "cluster_id", id->cluster_id, sizeof(id->cluster_id)) ||
	    json_str(text, toks, 0, "controller", id->controller, sizeof(id->controller)) ||
	    json_str(text, toks, 0, "access_key", id->access_key, sizeof(id->access_key)) ||
	    json_str(text, toks, 0, "secret_key", id->secret_key, sizeof(id->secret_key)))
		return -EUCLEAN;
	json_int(text, toks, 0, "replicas", &r);
	json_int(text, toks, 0, "heartbeat_s", &hb);
	id->replicas = (int)r;
	id->heartbeat_s = hb >= 1 && hb <= 3600 ? (int)hb : 10;
	return 0;
}

int pv_state_load(const char *dir, struct pv_ident *id)
{
	char path[PATH_MAX_PV];
	char *text = NULL;
	size_t len;
	int rc;

	memset(id, 0, sizeof(*id));
	snprintf(path, sizeof(path), "%s/node.json", dir);
	rc = pv_read_alloc(path, PV_NODE_JSON_MAX, &text, &len);
	if (rc == -ENOENT)
		return -ENOENT;
	if (rc)
		return -EUCLEAN;
	rc = parse_node_json(text, len, id);
	free(text);
	for (int i = 0; i < 3 && !rc; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, pem_files[i]);
		if (pv_read_small(path, pem_of(id, i), PKI_PEM_MAX) <= 0)
			rc = -EUCLEAN;
	}
	return rc;
}

int pv_state_save(const char *dir, const struct pv_ident *id)
{
	char path[PATH_MAX_PV], json[PV_NODE_JSON_MAX];
	int rc, n;

	rc = file_mkdirs(dir, 0700);
	if (rc)
		return rc;
	for (int i = 0; i < 3; i++) {
		const char *pem = pem_of((struct pv_ident *)id, i);

		snprintf(path, sizeof(path), "%s/%s", dir, pem_files[i]);
		rc = file_write_atomic(path, pem, strlen(pem), i == 0 ? 0600 : 0644);
		if (rc)
			return rc;
	}
	n = pv_state_node_json(id, json, sizeof(json));
	if (n < 0)
		return n;
	json[n++] = '\n';
	snprintf(path, sizeof(path), "%s/node.json", dir);
	return file_write_atomic(path, json, (size_t)n, 0600);
}

int pv_state_move(const char *from, const char *to, const struct pv_ident *id)
{
	char path[PATH_MAX_PV];
	int rc = pv_state_save(to, id);

	if (rc)
		return rc;
	/* node.json first: a crash in between leaves no half identity behind in RAM. */
	snprintf(path, sizeof(path), "%s/node.json", from);
	unlink(path);
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", from, pem_files[i]);
		unlink(path);
	}
	rmdir(from);
	return 0;
}

int pv_conf_value_ok(const char *s)
{
	size_t n = strlen(s);

	if (!n || s[0] == ' ' || s[n - 1] == ' ' || strchr(s, '#'))
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f)
			return 0;
	return 1;
}

int pv_sfsconf_write(const char *path, const struct pv_ident *id, const struct pv_sfsconf *sc)
{
	const char *region = sc->region, *const *dirs = sc->dirs;
	int ndirs = sc->ndirs;
	size_t cap = 512 + (size_t)(ndirs + 1) * (PATH_MAX_PV + 32), len;
	char *buf = malloc(cap);
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	len = (size_t)snprintf(buf, cap,
			       "# written by cairn-provd for node %s (cluster %s)\n"
			       "access-key = %s\nsecret-key = %s\nregion = %s\n",
			       id->node_id, id->cluster_id, id->access_key, id->secret_key, region);
	/* A node of a cluster serves the internal API on all addresses: peers reach it at the
	 * address the heartbeats report (internal_addr), whichever interface that is. */
	if (sc->cluster_dir) {
		if (!pv_conf_value_ok(sc->cluster_dir) || sc->internal_port < 1 || sc->internal_port > 65535)
			rc = -EINVAL;
		else
			len += (size_t)snprintf(buf + len, cap - len, "cluster = %s\ninternal-listen = 0.0.0.0:%ld\n",
						sc->cluster_dir, sc->internal_port);
	}
	for (int i = 0; !rc && i < ndirs && len < cap; i++) {
		if (!pv_conf_value_ok(dirs[i])) {
			rc = -EINVAL;
			break;
		}
		len += (size_t)snprintf(buf + len, cap - len, "data = %s\n", dirs[i]);
	}
	if (!rc && len >= cap)
		rc = -ENOSPC;
	if (!rc && (!pv_conf_value_ok(id->access_key) || !pv_conf_value_ok(id->secret_key) ||
		    !pv_conf_value_ok(region)))
		rc = -EINVAL;
	if (!rc)
		rc = file_write_atomic(path, buf, len, 0600);
	free(buf);
	return rc;
}
