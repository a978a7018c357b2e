/* iapi_int.h — what the internal API's server (iapi.c: sockets, threads, who may call,
 * routing) shares with its handlers (iapi_ops.c: objects, listings, buckets). */
#ifndef CAIRN_CLUSTER_IAPI_INT_H
#define CAIRN_CLUSTER_IAPI_INT_H

#include "../../lib/http1_stream.h"
#include "../../lib/uri.h"
#include "iapi.h"
#include "iwire.h"

/* One request being answered, on its connection's thread. */
struct ireq {
	struct store *st;
	struct cbucket *buckets;	/* or NULL */
	const struct iapi_config *cfg;
	struct iapi *a;
	struct tls_conn *c;
	struct http1s_msg *m;
	unsigned char *buf;		/* IAPI_CHUNK bytes */
	const char *peer;		/* the client's node id */
	char bucket[STORE_BUCKET_MAX + 1];
	char key[STORE_KEY_MAX];
	size_t key_len;
	const char *query;		/* raw, after '?', or "" */
	int status;			/* what was answered (the log line) */
	bool keep;			/* the client lets the connection carry another request */
	bool keep_after;		/* the reply left it fit for one (set by iapi_keep) */
};

/* For a reply head about to be written: may the connection carry another request after
 * it (the client allows it and the request's body was read whole)? Also recorded in
 * q->keep_after, which a failed body write clears. */
bool iapi_keep(struct ireq *q);

/* Answers an error: JSON {"error", "message"}; extra: more header lines or NULL. */
void iapi_reply_err(struct ireq *q, enum iwire_err e, const char *message, const char *extra);
/* The error a store errno stands for. */
enum iwire_err iapi_err_of(int rc);
/* Answers 200 with a JSON body. */
void iapi_reply_json(struct ireq *q, const char *body, size_t len);
/* A query parameter of q->query, percent-decoded into out[max]: its length, 0 when absent,
 * -1 malformed. */
int iapi_param(const struct uri_param *p, int n, const char *name, char *out, size_t max);

void iapi_obj_put(struct ireq *q);
void iapi_obj_delete(struct ireq *q);
void iapi_obj_get(struct ireq *q, bool head);
void iapi_list(struct ireq *q);
void iapi_bucket_put(struct ireq *q);
void iapi_bucket_delete(struct ireq *q);
void iapi_buckets(struct ireq *q);
void iapi_bucket_log(struct ireq *q);
/* iapi_mpu.c: a multipart upload at its home node (the key part of the path is its id). */
void iapi_mpu_part(struct ireq *q, int part_no);
void iapi_mpu_complete(struct ireq *q);
void iapi_mpu_abort(struct ireq *q);
void iapi_mpu_parts(struct ireq *q);

#endif
