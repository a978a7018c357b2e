/* iapi_int.h — what the internal API's server (iapi.c: sockets, threads, who may call,
 * routing) shares with its handlers (iapi_ops.c: objects, listings, buckets). */
#ifndef CAIRN_CLUSTER_IAPI_INT_H
#define CAIRN_CLUSTER_IAPI_INT_H

#include "../../lib/http1_stream.h"
#include "iapi.h"
#include "iwire.h"

/* One request being answered, on its connection's thread. */
struct ireq {
	struct store *st;
	struct cbucket *buckets;	/* or NULL */
	struct tls_conn *c;
	struct http1s_msg *m;
	unsigned char *buf;		/* IAPI_CHUNK bytes */
	const char *peer;		/* the client's node id */
	char bucket[STORE_BUCKET_MAX + 1];
	char key[STORE_KEY_MAX];
	size_t key_len;
	const char *query;		/* raw, after '?', or "" */
	int status;			/* what was answered (the log line) */
};

/* Answers an error: JSON {"error", "message"}; extra: more header lines or NULL. */
void iapi_reply_err(struct ireq *q, enum iwire_err e, const char *message, const char *extra);
/* The error a store errno stands for. */
enum iwire_err iapi_err_of(int rc);

void iapi_obj_put(struct ireq *q);
void iapi_obj_delete(struct ireq *q);
void iapi_obj_get(struct ireq *q, bool head);
void iapi_list(struct ireq *q);
void iapi_bucket_put(struct ireq *q);
void iapi_bucket_delete(struct ireq *q);
void iapi_buckets(struct ireq *q);
void iapi_bucket_log(struct ireq *q);

#endif
