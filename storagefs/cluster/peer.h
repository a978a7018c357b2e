/* peer.h — the internal API's client (docs/CLUSTER.md): one call per connection to a peer
 * node, over mutual TLS with this node's certificate, requiring the server's certificate
 * to name the node meant. Replica bodies stream from and to file descriptors (or a sink
 * callback); nothing is held whole in memory but a listing page. Blocking. */
#ifndef CAIRN_CLUSTER_PEER_H
#define CAIRN_CLUSTER_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../store/store.h"
#include "cbucket.h"

#define PEER_TIMEOUT_MS		30000	/* handshake, and each read or write */
#define PEER_CONNECT_MS		3000	/* the TCP connect (loopback or a LAN answers in ms) */
#define PEER_CHUNK		(256 * 1024)
#define PEER_LIST_MAX		(8 * 1024 * 1024)	/* a page's JSON */
#define PEER_SUSPECT_MS		5000	/* after a failed connect: calls fail at once, but one */
#define PEER_HEALTH_MAX		64	/* nodes remembered (CMAP_NODES_MAX) */
#define PEER_POOL		8	/* kept-alive connections per peer */
#define PEER_IDLE_MS		5000	/* reused only if idle less (the server waits 15 s) */

/* What a node keeps about its peers, shared by every call: which failed to connect lately
 * (a peer that is down or cut off costs one connect timeout every PEER_SUSPECT_MS, not one
 * per call: reads and writes move on to the next node in the order at once), and the
 * connections kept alive to each (a mutual-TLS handshake costs ~10 ms of CPU a side). */
struct peer_health;

int peer_health_new(struct peer_health **out);
void peer_health_free(struct peer_health *h);

struct peer_cfg {
	const char *ca_pem;		/* the cluster CA: the only trust anchor */
	const char *cert_pem, *key_pem;	/* this node's certificate and key */
	int timeout_ms;			/* 0: PEER_TIMEOUT_MS */
	struct peer_health *health;	/* NULL: every call tries to connect */
};

/* The node to call: its id (the server certificate's CN must be it) and host:port. */
struct peer {
	const char *node_id;
	const char *addr;
};

/* Every call returns 0 (or 1 where said) or -errno: the network (-ECONNREFUSED,
 * -ETIMEDOUT, -EHOSTUNREACH, -ECONNRESET), -EKEYREJECTED (not the node meant, or a
 * certificate not from the CA), -EPROTO (a malformed reply), or the peer's answer:
 * -ENOENT (no such key or bucket), -EACCES (not a member), -ENOTEMPTY, -EEXIST, -EFBIG,
 * -ENOSPC (full), -EHOSTDOWN (no quorum on the peer's disks, or, at once, a peer whose
 * connect failed less than PEER_SUSPECT_MS ago), -EINVAL, -EIO. */

/* Sends row->info.size bytes of fd (from offset 0) as the replica with row's version and
 * metadata. 0: the peer holds that version now; 1: it holds a newer one; *held says which. */
int peer_put_fd(const struct peer_cfg *pc, const struct peer *p, const char *bucket,
		const char *key, size_t key_len, int fd, const struct store_row *row,
		uint64_t *held);
/* A tombstone with this version; returns as peer_put_fd. */
int peer_delete(const struct peer_cfg *pc, const struct peer *p, const char *bucket,
		const char *key, size_t key_len, uint64_t version, uint64_t *held);
/* The peer's row: 0 (out filled, info.size included), -ENOENT (out->version 0: none; or
 * out->tomb with the tombstone's version). */
int peer_head(const struct peer_cfg *pc, const struct peer *p, const char *bucket,
	      const char *key, size_t key_len, struct store_row *out);
/* Bytes [off, off + len) of the replica (len < 0: to the end) to sink, chunk by chunk, out
 * filled before the first chunk; sink returns non-zero to stop (returned). A body that
 * ends early is -EPROTO (the peer found a bad block: try another). */
int peer_get(const struct peer_cfg *pc, const struct peer *p, const char *bucket,
	     const char *key, size_t key_len, int64_t off, int64_t len,
	     int (*sink)(void *ctx, const void *buf, size_t n), void *ctx,
	     struct store_row *out);
/* The whole replica written to fd (at its current offset). */
int peer_get_fd(const struct peer_cfg *pc, const struct peer *p, const char *bucket,
		const char *key, size_t key_len, int fd, struct store_row *out);
/* A page of the peer's rows (store_rows_list on the peer). */
int peer_list(const struct peer_cfg *pc, const struct peer *p, const char *bucket,
	      const char *prefix, size_t prefix_len, const char *after, size_t after_len,
	      int max, int (*fn)(void *ctx, const struct store_row_entry *e), void *ctx,
	      bool *truncated);
/* version: the change's entry in the bucket log (cbucket.h), 0 to let the peer stamp it. A
 * create the peer's log has a newer delete for is refused: -ENOENT. */
int peer_bucket_create(const struct peer_cfg *pc, const struct peer *p, const char *bucket,
		       uint64_t version);
int peer_bucket_delete(const struct peer_cfg *pc, const struct peer *p, const char *bucket,
		       uint64_t version);
/* --- a multipart upload at its home node (upload_id: the home's own id) --- */

/* Sends size bytes of fd as part part_no, with the S3 layer's ETag; *out: the part's etag,
 * size and mtime_ms as stored. */
int peer_mpu_part(const struct peer_cfg *pc, const struct peer *p, const char *bucket,
		  const char *upload_id, int part_no, int fd, int64_t size, const char *etag,
		  struct store_objinfo *out);
/* Completes the upload there (the home replicates the object); *out as store_mpu_complete.
 * -EDOM, -EINVAL, -ERANGE as store_mpu_complete; -ENOENT: no such upload. */
int peer_mpu_complete(const struct peer_cfg *pc, const struct peer *p, const char *bucket,
		      const char *upload_id, const struct store_mpu_part *parts, int nparts,
		      struct store_objinfo *out);
int peer_mpu_abort(const struct peer_cfg *pc, const struct peer *p, const char *bucket,
		   const char *upload_id);
/* The upload's key (key[STORE_KEY_MAX], *key_len) and its parts after `after`, at most max
 * (0: the key only), fn called per part. */
int peer_mpu_parts(const struct peer_cfg *pc, const struct peer *p, const char *bucket,
		   const char *upload_id, int after, int max, char *key, size_t *key_len,
		   int (*fn)(void *ctx, const struct store_mpu_part *part), void *ctx,
		   bool *truncated);

/* The peer's bucket log, fn called per entry (cbucket_parse). */
int peer_bucket_log(const struct peer_cfg *pc, const struct peer *p,
		    int (*fn)(void *ctx, const struct cbucket_ent *e), void *ctx);
int peer_buckets(const struct peer_cfg *pc, const struct peer *p,
		 int (*fn)(void *ctx, const struct store_bucket *b), void *ctx);

#endif
