/* pv_client.c — the agent's requests to the controller, one per connection as the spec
 * says, over lib/tls + lib/http1. */
#include "pv_client.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../../lib/json.h"

#define PV_ERR_TOKS	64

int pv_post(const struct pv_conn_opts *o, const char *path, const char *body, size_t len,
	    struct http1_resp *resp)
{
	struct tls_client_opts to = {
		.ca_pem = o->ca_pem, .peer_cn = PV_PEER_CN, .cert_pem = o->cert_pem,
		.key_pem = o->key_pem, .timeout_ms = PV_TIMEOUT_MS,
	};
	char hosthdr[320];
	struct http1_req req = {
		.method = "POST", .host = hosthdr, .path = path, .ctype = "application/json",
		.body = body, .body_len = len,
	};
	struct tls_conn *c = NULL;
	int rc;

	memset(resp, 0, sizeof(*resp));
	pv_hostport(o->host, o->port, hosthdr, sizeof(hosthdr));
	rc = tls_connect(o->host, o->port, &to, &c);
	if (rc)
		return rc;
	rc = http1_call(c, &req, resp);
	tls_close(c);
	return rc;
}

void pv_error_body(const struct http1_resp *resp, char err[PV_ERR_MAX], char *msg, size_t max)
{
	struct json_tok toks[PV_ERR_TOKS];
	int n;

	err[0] = 0;
	msg[0] = 0;
	if (!resp->body)
		return;
	n = json_parse(resp->body, resp->body_len, toks, PV_ERR_TOKS);
	if (n < 1 || toks[0].type != JSON_OBJ)
		return;
	if (json_str(resp->body, toks, 0, "error", err, PV_ERR_MAX))
		err[0] = 0;
	if (json_str(resp->body, toks, 0, "message", msg, max))
		msg[0] = 0;
	for (char *p = msg; *p; p++)	/* it goes into a quoted log value */
		if (*p == '"' || (unsigned char)*p < 0x20)
			*p = '\'';
}

void pv_hostport(const char *host, const char *port, char *out, size_t max)
{
	if (strchr(host, ':'))
		snprintf(out, max, "[%s]:%s", host, port);
	else
		snprintf(out, max, "%s:%s", host, port);
}
