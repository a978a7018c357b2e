/* cstore.h — the store as the S3 layer sees it: the functions of store.h it calls, with the
 * same shapes. A single node forwards every call to its store unchanged; a node in a
 * cluster coordinates (docs/CLUSTER.md "Write, read, list"): writes stamped once and
 * replicated to W of the key's R owner nodes before they succeed, reads from the owner
 * holding the newest version, listings merged over every node, buckets on every node.
 *
 * Threading as store.h; in a cluster the functions marked (cluster: blocking) may wait for
 * the network and must run on a worker thread then (cstore_remote() says so). */
#ifndef CAIRN_CLUSTER_CSTORE_H
#define CAIRN_CLUSTER_CSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../store/store.h"
#include "cmap_sync.h"
#include "peer.h"

struct cstore_config {
	struct store *st;		/* this node's disks */
	/* NULL for a single node; else the cluster's map, this node's id and the client
	 * settings for its peers (all kept by the caller until cstore_free). */
	struct cmap_sync *maps;
	const char *self_id;
	struct peer_cfg peer;
	struct cbucket *buckets;	/* the cluster's bucket log (a cluster must have one) */
	/* The copies this node keeps on its disks follow the map: ceil(R / nodes), at least 1,
	 * at most its disks (a first node alone keeps R copies itself; from R nodes on, one). */
	bool local_replicas_auto;
	const char *spool_dir;		/* where bodies in transit live (unlinked files) */
};

struct cstore;

/* What the repair thread is doing, for the status page, the metrics and the console. */
struct crepair_status {
	bool in_pass;			/* a pass is running now */
	int64_t passes;			/* finished since start */
	int64_t rows;			/* rows looked at in this pass (or the last one) */
	int64_t rows_last;		/* rows the last finished pass looked at: the progress total */
	int64_t pushed, pushed_bytes;	/* copies sent to owners, this pass (or the last) */
	int64_t dropped, errors;	/* copies dropped as a non-owner; failed pushes */
	int64_t pushed_total, pushed_bytes_total;	/* since start */
	int64_t last_pass_ms;		/* how long the last finished pass took */
	int64_t rate_bytes_s;		/* the cap on pushed bytes a second (0: none) */
};

/* The cluster as this node sees it (cstore_cluster_status). */
struct cstore_cluster_status {
	char self_id[CMAP_ID_MAX];
	uint64_t map_version;		/* 0: no map yet */
	int replicas, write_quorum;
	int nodes, up, down, joining, draining;
	int buckets;			/* live buckets in the bucket log */
	bool repair_on;			/* a repair thread runs (then repair is filled) */
	struct crepair_status repair;
};

int cstore_new(const struct cstore_config *cfg, struct cstore **out);
/* Waits for the background replica pushes, then frees. NULL is fine. */
void cstore_free(struct cstore *cs);
/* 0 and *out, or -ENOENT for a single node. */
int cstore_cluster_status(struct cstore *cs, struct cstore_cluster_status *out);
/* True in a cluster: reads, listings and object opens may use the network. */
bool cstore_remote(const struct cstore *cs);
struct store *cstore_local(const struct cstore *cs);

/* --- buckets: read from this node's store; created and deleted on every node --- */
int cstore_bucket_create(struct cstore *cs, const char *name);	/* (blocking) */
int cstore_bucket_delete(struct cstore *cs, const char *name);	/* (blocking) */
int cstore_bucket_get(struct cstore *cs, const char *name, struct store_bucket *out);
int cstore_bucket_list(struct cstore *cs, int (*fn)(void *ctx, const struct store_bucket *b),
		       void *ctx);

/* --- writing (a cluster spools the body; the commit replicates it) --- */
struct cstore_put;

int cstore_put_begin(struct cstore *cs, const char *bucket, const char *key, size_t key_len,
		     struct cstore_put **out);
/* Parts stay on the node that holds the upload (docs/CLUSTER.md, "Multipart"). */
int cstore_part_begin(struct cstore *cs, const char *bucket, const char *upload_id,
		      int part_no, struct cstore_put **out);
int cstore_put_write(struct cstore_put *p, const void *buf, size_t len);
int64_t cstore_put_size(const struct cstore_put *p);
/* As store_put_commit; in a cluster, -STORE_ENOQUORUM when fewer than W owner nodes made
 * it durable. Frees p. (blocking) */
int cstore_put_commit(struct cstore_put *p, struct store_objinfo *info);
void cstore_put_abort(struct cstore_put *p);

/* --- reading --- */
struct cstore_obj;

/* (cluster: blocking) -ENOENT: no such bucket or key; -EIO: no owner could serve it. */
int cstore_obj_open(struct cstore *cs, const char *bucket, const char *key, size_t key_len,
		    struct cstore_obj **out);
/* The same, metadata only (HEAD, existence checks): a peer's body is not fetched, and
 * read/send fail with -EINVAL unless the copy was this node's. */
int cstore_obj_stat(struct cstore *cs, const char *bucket, const char *key, size_t key_len,
		    struct cstore_obj **out);
const struct store_objinfo *cstore_obj_info(const struct cstore_obj *o);
int cstore_obj_read(struct cstore_obj *o, int64_t pos, void *buf, size_t len);
ssize_t cstore_obj_send(struct cstore_obj *o, int sock, int64_t *pos, size_t max,
			void *scratch);
void cstore_obj_close(struct cstore_obj *o);

/* A tombstone with one version on W owner nodes. (blocking) */
int cstore_obj_delete(struct cstore *cs, const char *bucket, const char *key, size_t key_len);

/* (cluster: blocking) Every reachable node's rows merged (newest version per key wins). */
int cstore_list(struct cstore *cs, const char *bucket, const struct store_list_query *q,
		int (*fn)(void *ctx, const struct store_list_entry *e), void *ctx,
		bool *truncated);

int cstore_status(struct cstore *cs, struct store_status *out, struct store_disk_status *disks,
		  int max);

/* --- multipart: the upload lives on the node that created it --- */
int cstore_mpu_create(struct cstore *cs, const char *bucket, const char *key, size_t key_len,
		      const void *meta, size_t meta_len,
		      char upload_id[STORE_UPLOAD_ID_MAX + 1]);
/* In a cluster the finished object is then replicated to its owners like a PUT. */
int cstore_mpu_complete(struct cstore *cs, const char *bucket, const char *upload_id,
			const struct store_mpu_part *parts, int nparts,
			struct store_objinfo *out);
int cstore_mpu_abort(struct cstore *cs, const char *bucket, const char *upload_id);
int cstore_mpu_get(struct cstore *cs, const char *bucket, const char *upload_id,
		   char key[STORE_KEY_MAX], size_t *key_len);
/* The upload's key and its parts after `after`, at most max (0: the key only): ListParts in
 * one call, at the upload's home. (cluster: blocking) */
int cstore_mpu_parts(struct cstore *cs, const char *bucket, const char *upload_id,
		     char key[STORE_KEY_MAX], size_t *key_len, int after, int max,
		     int (*fn)(void *ctx, const struct store_mpu_part *p), void *ctx,
		     bool *truncated);
int cstore_mpu_list_uploads(struct cstore *cs, const char *bucket,
			    const char *prefix, size_t prefix_len,
			    const char *key_marker, size_t key_marker_len,
			    const char *upload_id_marker, int max,
			    int (*fn)(void *ctx, const struct store_mpu_upload *u), void *ctx,
			    bool *truncated);

/* --- pure parts, exposed for the unit tests --- */

/* A source of rows in key order (this node's store, or a peer): one page per call, with
 * the shape of store_rows_list. */
struct clist_src {
	int (*page)(void *ctx, const char *bucket, const char *prefix, size_t prefix_len,
		    const char *after, size_t after_len, int max,
		    int (*fn)(void *fctx, const struct store_row_entry *e), void *fctx,
		    bool *truncated);
	void *ctx;
	bool required;		/* its failure fails the listing (this node's store) */
};

/* store_list over the sources merged: newest version per key, a winning tombstone hides
 * the key, delimiter roll-up, max and *truncated as store_list. A source that fails (not
 * required) is left out. -ENOENT when a required source has no such bucket. */
int clist_merge(const char *bucket, struct clist_src *srcs, int nsrcs,
		const struct store_list_query *q,
		int (*fn)(void *ctx, const struct store_list_entry *e), void *ctx,
		bool *truncated);

/* The key's preference order over the nodes that can be reached (self, or a node with an
 * internal address), node indices into out[CMAP_NODES_MAX]; returns how many. A write goes
 * to the first R and moves down the order past nodes that fail; a read asks them in turn. */
int cstore_order(const struct cmap *m, const char *bucket, const char *key, size_t key_len,
		 int self, int *out);

#endif
