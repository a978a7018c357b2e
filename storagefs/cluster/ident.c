/* ident.c — loading the node's identity from cairn-provd's state directory and checking
 * that its pieces agree (the certificate is the CA's, for this node id) before anything
 * is served with them. */
#include "ident.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../../lib/fileio.h"
#include "../../lib/json.h"
#include "../../lib/log.h"

#define IDENT_JSON_MAX	8192
#define IDENT_TOKS	64

static int read_pem(const char *dir, const char *name, char *out)
{
	char path[4096];
	ssize_t n;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	n = file_read_small(path, out, PKI_PEM_MAX);
	if (n < 0)
		log_errorx("cluster_ident_unreadable file=%s err=%d", path, (int)n);
	return n < 0 ? (int)n : 0;
}

static int parse_node_json(const char *text, size_t len, struct ident *id)
{
	struct json_tok t[IDENT_TOKS];
	int n = json_parse(text, len, t, IDENT_TOKS), err;

	if (n < 1 || t[0].type != JSON_OBJ)
		return -EINVAL;
	err = json_str(text, t, 0, "node_id", id->node_id, sizeof(id->node_id));
	if (!err)
		err = json_str(text, t, 0, "cluster_id", id->cluster_id, sizeof(id->cluster_id));
	if (!err && json_find(text, t, 0, "controller") >= 0)
		err = json_str(text, t, 0, "controller", id->controller, sizeof(id->controller));
	return err || !id->node_id[0] ? -EINVAL : 0;
}

int ident_load(const char *dir, struct ident *id)
{
	char path[4096], text[IDENT_JSON_MAX], cn[PKI_CN_MAX];
	ssize_t n;
	int err;

	memset(id, 0, sizeof(*id));
	if (snprintf(path, sizeof(path), "%s/node.json", dir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	n = file_read_small(path, text, sizeof(text));
	if (n < 0) {
		log_errorx("cluster_ident_unreadable file=%s err=%d", path, (int)n);
		return (int)n;
	}
	if ((err = parse_node_json(text, (size_t)n, id))) {
		log_errorx("cluster_ident_bad file=%s", path);
		return err;
	}
	if ((err = read_pem(dir, "node.key", id->key_pem)) ||
	    (err = read_pem(dir, "node.crt", id->cert_pem)) ||
	    (err = read_pem(dir, "ca.crt", id->ca_pem)))
		return err;
	err = pki_verify(id->ca_pem, id->cert_pem);
	if (!err)
		err = pki_cert_cn(id->cert_pem, cn);
	if (!err && strcmp(cn, id->node_id) != 0)
		err = -EKEYREJECTED;
	if (err)
		log_errorx("cluster_ident_rejected dir=%s node=%s err=%d msg=\"node.crt is not the CA's certificate for this node\"",
			   dir, id->node_id, err);
	return err;
}
