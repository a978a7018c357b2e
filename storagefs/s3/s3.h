/* s3.h — the S3 API on top of the HTTP server: the entry points the daemon hands to
 * http_server (one per request, one per unparsable request) and the context they share. */
#ifndef CAIRN_S3_H
#define CAIRN_S3_H

#include <stddef.h>

#include "../../lib/http.h"
#include "../auth/sigv4.h"
#include "../cluster/cstore.h"

struct workq;

struct s3_config {
	const struct sigv4_cred *creds;
	int ncreds;
	const char *region;	/* e.g. "us-east-1" */
	const char *domain;	/* virtual-host base, e.g. "localhost": Host b.localhost = bucket b */
	struct cstore *store;	/* the store, through the cluster facade (cstore.h) */
	struct workq *wq;	/* where blocking store calls run */
};

struct s3_ctx;

int s3_ctx_new(const struct s3_config *cfg, struct s3_ctx **out);
void s3_ctx_free(struct s3_ctx *s3);

/* Bytes of per-connection state to ask http_server for (conn_udata_size). */
size_t s3_conn_state_size(void);

/* http_handler_fn / http_error_fn; ud is the struct s3_ctx. */
void s3_on_request(struct http_conn *c, struct http_req *req, void *ud);
void s3_on_error(struct http_conn *c, int status, const char *reason, void *ud);

#endif
