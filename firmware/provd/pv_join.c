/* pv_join.c — enrolment. The order is the security model: nothing from the controller is
 * trusted before its CA matches the pin, and the reply's CA must be that same CA. */
#include "pv_join.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/http1.h"
#include "../../lib/json.h"
#include "../../lib/log.h"
#include "pv_client.h"
#include "pv_util.h"

#define PV_JOIN_TOKS	128
#define PV_BODY_START	(16 * 1024)
#define PV_CSR_CN	"cairn-node"

int pv_join_fetch_ca(const struct pv_boot *b, char *ca_pem)
{
	char got[PKI_PIN_HEX];
	int rc = tls_fetch_ca(b->host, b->port, PV_TIMEOUT_MS, ca_pem);

	if (rc)
		return rc;
	rc = pki_pin(ca_pem, got);
	if (rc)
		return -EKEYREJECTED;
	if (strcmp(got, b->pin) != 0) {
		log_errorx("provd_pin_mismatch want=sha256:%s got=sha256:%s controller=%s:%s msg=\"the controller's CA is not the one this node was booted with; not trusting it\"",
			   b->pin, got, b->host, b->port);
		return -EKEYREJECTED;
	}
	log_info("provd_step step=pin ok=1 pin=sha256:%s", got);
	return 0;
}

int pv_join_body(const char *token, const char *csr, const struct pv_inv *inv, char **out,
		 size_t *len)
{
	size_t cap = PV_BODY_START;
	struct json_w w;
	char *buf = NULL;
	int n;

	for (;;) {
		char *nb = realloc(buf, cap);

		if (!nb) {
			free(buf);
			return -ENOMEM;
		}
		buf = nb;
		json_w_init(&w, buf, cap);
		json_w_obj(&w);
		json_w_kstr(&w, "token", token);
		json_w_kstr(&w, "csr", csr);
		json_w_key(&w, "inventory");
		pv_inv_json(inv, &w);
		json_w_obj_end(&w);
		n = json_w_end(&w);
		if (n != -ENOSPC || cap >= HTTP1_BODY_MAX)
			break;
		cap *= 2;
	}
	if (n < 0) {
		free(buf);
		return n;
	}
	*out = buf;
	*len = (size_t)n;
	return 0;
}

/* The reply's fields into id; -EBADMSG when one is missing or unfit. */
static int parse_reply(const char *text, size_t len, struct pv_ident *id)
{
	struct json_tok *toks = malloc(PV_JOIN_TOKS * sizeof(*toks));
	int64_t r = 0, hb = 10;
	int n, rc = -EBADMSG;

	if (!toks)
		return -ENOMEM;
	n = json_parse(text, len, toks, PV_JOIN_TOKS);
	if (n < 1 || toks[0].type != JSON_OBJ)
		goto out_free;
	if (json_str(text, toks, 0, "node_id", id->node_id, sizeof(id->node_id)) ||
	    json_str(text, toks, 0, "cert", id->cert_pem, sizeof(id->cert_pem)) ||
	    json_str(text, toks, 0, "ca", id->ca_pem, sizeof(id->ca_pem)) ||
	    json_str(text, toks, 0, "cluster_id", id->cluster_id, sizeof(id->cluster_id)) ||
	    json_str(text, toks, 0, "access_key", id->access_key, sizeof(id->access_key)) ||
	    json_str(text, toks, 0, "secret_key", id->secret_key, sizeof(id->secret_key)))
		goto out_free;
	if (json_int(text, toks, 0, "replicas", &r) || json_int(text, toks, 0, "heartbeat_s", &hb) ||
	    hb < 1 || hb > 3600 || r < 0 || r > 16)
		goto out_free;
	id->replicas = (int)r;
	id->heartbeat_s = (int)hb;
	if (pv_conf_value_ok(id->node_id) && pv_conf_value_ok(id->cluster_id) &&
	    pv_conf_value_ok(id->access_key) && pv_conf_value_ok(id->secret_key) &&
	    !strpbrk(id->node_id, " /\"\\") && !strpbrk(id->cluster_id, " /\"\\"))
		rc = 0;
out_free:
	free(toks);
	return rc;
}

/* The reply's CA must be the pinned one, and its certificate issued by it. */
static int check_reply(const struct pv_boot *b, struct pv_ident *id)
{
	char pin[PKI_PIN_HEX], cn[PKI_CN_MAX];

	if (pki_pin(id->ca_pem, pin) || strcmp(pin, b->pin) != 0) {
		log_errorx("provd_join_bad_reply msg=\"the CA in the join reply is not the pinned CA\"");
		return -EBADMSG;
	}
	if (pki_verify(id->ca_pem, id->cert_pem)) {
		log_errorx("provd_join_bad_reply msg=\"the node certificate is not issued by the cluster CA\"");
		return -EBADMSG;
	}
	if (pki_cert_cn(id->cert_pem, cn) || strcmp(cn, id->node_id) != 0)
		log_warnx("provd_join_cn_mismatch node_id=%s cert_cn=%s", id->node_id, cn);
	return 0;
}

/* Builds and sends the request; the reply into resp. */
static int send_join(const struct pv_boot *b, const struct pv_inv *inv, struct pv_ident *id,
		     struct http1_resp *resp)
{
	char *csr = malloc(PKI_PEM_MAX), *body = NULL;
	struct pv_conn_opts co = { .host = b->host, .port = b->port, .ca_pem = id->ca_pem };
	size_t len;
	int rc;

	if (!csr)
		return -ENOMEM;
	rc = pki_key_new(id->key_pem);
	if (!rc)
		rc = pki_csr_new(id->key_pem, PV_CSR_CN, csr);
	if (!rc)
		rc = pv_join_body(b->token, csr, inv, &body, &len);
	if (!rc) {
		log_info("provd_step step=join controller=%s:%s machine_id=%s body_bytes=%zu",
			 b->host, b->port, inv->machine_id, len);
		rc = pv_post(&co, "/v1/join", body, len, resp);
	}
	free(body);
	free(csr);
	return rc;
}

int pv_join(const struct pv_boot *b, const struct pv_inv *inv, struct pv_ident *id,
	    char *why, size_t len)
{
	struct http1_resp resp = { 0 };
	char err[PV_ERR_MAX], msg[256];
	int rc;

	memset(id, 0, sizeof(*id));
	why[0] = 0;
	rc = pv_join_fetch_ca(b, id->ca_pem);
	if (!rc)
		rc = send_join(b, inv, id, &resp);
	if (rc)
		goto out;
	if (resp.status != 200) {
		pv_error_body(&resp, err, msg, sizeof(msg));
		snprintf(why, len, "HTTP %d %s: %s", resp.status, err[0] ? err : "?", msg);
		rc = resp.status >= 400 && resp.status < 500 ? -EACCES : -EIO;
		goto out;
	}
	rc = parse_reply(resp.body, resp.body_len, id);
	if (!rc)
		rc = check_reply(b, id);
	if (rc) {
		snprintf(why, len, "unusable join reply");
		goto out;
	}
	pv_hostport(b->host, b->port, id->controller, sizeof(id->controller));
	log_info("provd_step step=joined node_id=%s cluster_id=%s heartbeat_s=%d", id->node_id,
		 id->cluster_id, id->heartbeat_s);
out:
	free(resp.body);
	return rc;
}
