/* iwire.h — the internal API's wire format (docs/CLUSTER.md), shared by the server
 * (iapi.c) and the client (peer.c): request targets with percent-encoded names, the
 * X-Cairn-* replica headers, and the error codes with their HTTP status and errno. */
#ifndef CAIRN_CLUSTER_IWIRE_H
#define CAIRN_CLUSTER_IWIRE_H

#include <stddef.h>

#include "../../lib/http1_stream.h"
#include "../store/store.h"

#define IWIRE_OBJ	"/i/v1/o/"
#define IWIRE_LIST	"/i/v1/l/"
#define IWIRE_BUCKET	"/i/v1/b/"
#define IWIRE_BUCKETS	"/i/v1/b"
#define IWIRE_BUCKET_LOG	"/i/v1/bucket-log"
#define IWIRE_UPLOAD	"/i/v1/u/"	/* <bucket>/<upload id>: a multipart upload's home */
#define IWIRE_COMPLETE_MAX	(1024 * 1024)	/* a Complete's part list (JSON) */
/* X-Cairn-Meta: base64 of up to STORE_META_MAX bytes; with the other fields. */
#define IWIRE_HDRS_MAX	(4 * ((STORE_META_MAX + 2) / 3) + 1024)
#define IWIRE_TARGET_MAX	(16 + 3 * STORE_BUCKET_MAX + 3 * STORE_KEY_MAX + 3 * STORE_KEY_MAX + 64)

enum iwire_err {
	IW_BAD_REQUEST, IW_NO_CLIENT_CERT, IW_NOT_A_MEMBER, IW_NO_SUCH_KEY, IW_NO_SUCH_BUCKET,
	IW_NOT_FOUND, IW_METHOD, IW_BUCKET_NOT_EMPTY, IW_BUCKET_EXISTS, IW_LENGTH,
	IW_TOO_LARGE, IW_BAD_RANGE, IW_INTERNAL, IW_NO_QUORUM, IW_FULL,
	IW_NO_SUCH_UPLOAD, IW_INVALID_PART, IW_PART_ORDER, IW_PART_SMALL,
	IW_COUNT
};

int iwire_status(enum iwire_err e);
const char *iwire_code(enum iwire_err e);
/* What a peer's error reply means to the client: -ENOENT, -EACCES, -ENOTEMPTY, ... */
int iwire_errno(int status, const char *code);

/* prefix + percent-encoded bucket (+ "/" + percent-encoded key when key is not NULL), then
 * "?query" when query is not NULL or "". 0, -ENAMETOOLONG. */
int iwire_target(char *out, size_t cap, const char *prefix, const char *bucket,
		 const char *key, size_t key_len, const char *query);
/* The X-Cairn-* lines of row (a tombstone: version and X-Cairn-Tombstone only). */
int iwire_row_headers(const struct store_row *row, char *out, size_t cap);
/* Reads them back (X-Cairn-Version required, 1..INT64_MAX as the index stores it; the
 * rest optional, checked).
 * info.size is left 0. 0, -EINVAL. */
int iwire_row_parse(const struct http1s_msg *m, struct store_row *row);
/* A decimal uint64 / int64 (no sign, no blanks): 0 or -EINVAL. */
int iwire_u64(const char *s, uint64_t *out);

#endif
