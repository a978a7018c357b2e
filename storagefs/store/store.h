/* store.h — the storage engine seen from the S3 layer: buckets, objects, listings and
 * multipart uploads over a set of data directories ("disks"). Bytes are written to a temp
 * file as they arrive and made durable and visible by one blocking commit; every stored
 * byte is covered by a CRC32C block checksum that is verified on every read.
 *
 * Threading: all functions are thread-safe. Functions marked (blocking) may fsync and must
 * run on a worker thread, never on an event loop; the rest only read (page cache). */
#ifndef CAIRN_STORE_H
#define CAIRN_STORE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define STORE_KEY_MAX		1024		/* bytes, as S3 */
#define STORE_BUCKET_MAX	63
#define STORE_META_MAX		8192		/* serialized headers + user metadata */
#define STORE_ETAG_MAX		48		/* "hex32" or "hex32-N", without quotes */
#define STORE_UPLOAD_ID_MAX	64
#define STORE_BLOCK		(64 * 1024)	/* checksum block */
#define STORE_SEND_SPAN		(4 * STORE_BLOCK)	/* verified per store_obj_send call */
#define STORE_INLINE_MAX	(16 * 1024)	/* objects up to this live in the index row */
#define STORE_PART_MIN		(5 * 1024 * 1024)	/* every multipart part but the last */
#define STORE_PARTS_MAX		10000

struct store;

#define STORE_REPLICAS_MAX	16

struct store_config {
	const char *const *dirs;	/* data directories, one per disk */
	int ndirs;
	int replicas;		/* R: copies of each object, on distinct disks; 0: min(3, ndirs) */
	int write_quorum;	/* W: copies durable before a write succeeds; 0: R/2 + 1 */
	int scrub_budget_pct;	/* background scrubber's share of disk time (1..100); 0: off */
};

/* A write (or delete) reached fewer than W disks: nothing was acknowledged. The S3 layer
 * answers 503 ServiceUnavailable. */
#define STORE_ENOQUORUM		EHOSTDOWN

/* Opens (creating if needed) every data directory, recovers what a crash left behind
 * (unreferenced temp files, half-finished commits). -EINVAL: bad R/W or a directory
 * listed twice; -EXDEV: a directory labelled for another cluster or node. (blocking) */
int store_open(const struct store_config *cfg, struct store **out);
/* The same for a node in a cluster: the disks' labels carry cluster_id (32 hex, node.json's)
 * instead of a random one, so a disk labelled for another cluster is refused (-EXDEV). */
int store_open_cluster(const struct store_config *cfg, const char *cluster_id,
		       struct store **out);
/* Lets background replica commits and repairs finish, then closes everything. */
void store_close(struct store *st);

/* --- replication upkeep --- */

/* Brings the key's R placed replicas to its newest version (copying from a verified
 * replica), drops stale copies elsewhere, purges a tombstone every disk agrees on. (blocking) */
int store_heal(struct store *st, const char *bucket, const char *key, size_t key_len);
/* Waits until the background replica commits and the repair queue (fed by failed
 * replicas and corrupt reads) are done. */
void store_heal_drain(struct store *st);
/* --- status (for the status endpoint and /metrics) --- */

struct store_disk_status {
	char path[256];
	char id[33];			/* the disk (volume) id, hex */
	bool online;
	uint64_t size_bytes, free_bytes;	/* statvfs of the data directory */
	uint64_t reads, read_bytes;	/* replicas opened for reading, bytes verified */
	uint64_t writes, write_bytes;	/* replica commits, their bytes */
	uint64_t errors;		/* I/O errors, failed commits, corrupt blocks */
	int64_t scrub_pass, scrub_objects, scrub_total, scrub_repaired;
	bool full;			/* out of space: new objects go to other disks */
	/* A replaced disk being filled by the rebuild pass (runtime or start-up): index rows
	 * verified of those to verify (every disk's), replicas copied and their bytes, and
	 * the estimated seconds left (-1: not known yet). */
	bool rebuilding;
	int64_t rebuild_objects, rebuild_total, rebuild_copied, rebuild_bytes, rebuild_eta_s;
};

struct store_status {
	int disks, online, replicas, write_quorum;
	int full;			/* disks out of space */
	int64_t heal_queue;		/* repairs waiting or running */
	int64_t healed;			/* replicas restored since start */
};

/* Changes R and W while running (a node of a cluster smaller than its R keeps more copies
 * on its own disks): new writes use them at once; objects already stored get their new
 * copies from the scrubber's repairs (copies beyond a lower R stay until rewritten).
 * -EINVAL unless 1 <= W <= R <= disks. */
int store_set_replicas(struct store *st, int replicas, int write_quorum);

/* Fills *out and up to max disks (in configuration order); returns the disks filled. */
int store_status(struct store *st, struct store_status *out, struct store_disk_status *disks,
		 int max);

/* One full scrub pass over every volume now, without the I/O budget: every key verified
 * and repaired, agreed tombstones purged, the checkpoint saved as it goes. (blocking) */
int store_scrub_once(struct store *st);
/* Runs the disk health probe now (it also runs every STORE_PROBE_MS in the background). */
void store_probe(struct store *st);

/* --- buckets --- */

struct store_bucket {
	char name[STORE_BUCKET_MAX + 1];
	int64_t created_ms;		/* Unix ms */
};

int store_bucket_create(struct store *st, const char *name);	/* (blocking) -EEXIST */
int store_bucket_delete(struct store *st, const char *name);	/* (blocking) -ENOENT, -ENOTEMPTY */
int store_bucket_get(struct store *st, const char *name, struct store_bucket *out); /* -ENOENT */
/* Calls fn for each bucket in name order; a non-zero return from fn stops and is returned. */
int store_bucket_list(struct store *st, int (*fn)(void *ctx, const struct store_bucket *b),
		      void *ctx);

/* --- object metadata --- */

struct store_objinfo {
	int64_t size;
	int64_t mtime_ms;		/* Unix ms of the commit */
	char etag[STORE_ETAG_MAX + 1];	/* without quotes */
	int nparts;			/* 0 for a plain PUT, N for a multipart object */
	/* Opaque to the store: the S3 layer's serialized headers and x-amz-meta-*. */
	size_t meta_len;
	unsigned char meta[STORE_META_MAX];
};

/* --- writing an object or a part --- */

struct store_put;

/* Starts a new object body (an upload to a temp file; nothing is visible until commit).
 * -ENOENT when the bucket does not exist. */
int store_put_begin(struct store *st, const char *bucket, const char *key, size_t key_len,
		    struct store_put **out);
/* Starts a multipart part (part numbers 1..STORE_PARTS_MAX). -ENOENT: no such upload. */
int store_part_begin(struct store *st, const char *bucket, const char *upload_id,
		     int part_no, struct store_put **out);
/* Appends body bytes (a page-cache write; may be called on a loop). -ENOSPC, -EIO. */
int store_put_write(struct store_put *p, const void *buf, size_t len);
int64_t store_put_size(const struct store_put *p);
/* Makes the object (or part) durable and visible, replacing any previous one with the
 * same key (or part number). info->size and mtime_ms are filled in by the store; etag and
 * meta come from the caller. Frees p whatever the result. (blocking) */
int store_put_commit(struct store_put *p, struct store_objinfo *info);
/* Drops the upload and frees p. */
void store_put_abort(struct store_put *p);

/* --- reading an object --- */

struct store_obj;

/* -ENOENT when the bucket or key does not exist. */
int store_obj_open(struct store *st, const char *bucket, const char *key, size_t key_len,
		   struct store_obj **out);
const struct store_objinfo *store_obj_info(const struct store_obj *o);
/* Reads len bytes at pos into buf, verifying checksums. 0, -EBADMSG (corrupt), -EIO. */
int store_obj_read(struct store_obj *o, int64_t pos, void *buf, size_t len);
/* Sends up to max bytes starting at *pos into sock (non-blocking; sendfile for file data,
 * each block's checksum verified before any of its bytes go out; scratch is a buffer of
 * at least STORE_SEND_SPAN bytes). Advances *pos; returns bytes sent, -EAGAIN, -EBADMSG or
 * another -errno. */
ssize_t store_obj_send(struct store_obj *o, int sock, int64_t *pos, size_t max,
		       void *scratch);
void store_obj_close(struct store_obj *o);

/* Writes a tombstone (version-stamped) on the key's placed disks: newest version wins, so
 * a replica that missed the delete is overruled. (blocking) -ENOENT (bucket); deleting a
 * missing key is 0. */
int store_obj_delete(struct store *st, const char *bucket, const char *key,
		     size_t key_len);

/* --- listing --- */

struct store_list_entry {
	const char *key;		/* a key, or a common prefix when is_prefix */
	size_t key_len;
	bool is_prefix;
	int64_t size;
	int64_t mtime_ms;
	const char *etag;
};

struct store_list_query {
	const char *prefix;	size_t prefix_len;
	const char *delim;	size_t delim_len;	/* 0: no delimiter */
	const char *after;	size_t after_len;	/* start strictly after this key */
	int max;		/* keys + common prefixes to report, 0..1000 */
};

/* Reports up to q->max entries in key order (a common prefix counts once, as in S3) and
 * sets *truncated when more follow. fn returns non-zero to stop early. -ENOENT: bucket. */
int store_list(struct store *st, const char *bucket, const struct store_list_query *q,
	       int (*fn)(void *ctx, const struct store_list_entry *e), void *ctx,
	       bool *truncated);

/* --- multipart uploads --- */

/* Creates an upload; upload_id receives a NUL-terminated id. meta is kept for the final
 * object. (blocking) */
int store_mpu_create(struct store *st, const char *bucket, const char *key, size_t key_len,
		     const void *meta, size_t meta_len, char upload_id[STORE_UPLOAD_ID_MAX + 1]);

struct store_mpu_part {
	int part_no;
	char etag[STORE_ETAG_MAX + 1];	/* without quotes */
	int64_t size;
	int64_t mtime_ms;
};

/* Validates the parts the client named (ascending part numbers: -EDOM otherwise
 * (InvalidPartOrder); each must exist with that ETag: -EINVAL (InvalidPart); all but the
 * last >= STORE_PART_MIN: -ERANGE (EntityTooSmall)); then atomically replaces the key with
 * the concatenation, ETag "md5(of the part MD5s)-N", and removes the upload. out is
 * filled like store_obj_info(). -ENOENT: no such upload. (blocking) */
int store_mpu_complete(struct store *st, const char *bucket, const char *upload_id,
		       const struct store_mpu_part *parts, int nparts,
		       struct store_objinfo *out);
int store_mpu_abort(struct store *st, const char *bucket, const char *upload_id); /* (blocking) */

struct store_mpu_upload {
	const char *key;
	size_t key_len;
	const char *upload_id;
	int64_t created_ms;
};

/* The upload's key and meta (for ListParts and Complete). -ENOENT: no such upload. */
int store_mpu_get(struct store *st, const char *bucket, const char *upload_id,
		  char key[STORE_KEY_MAX], size_t *key_len);
/* Parts with number > after, ascending, at most max; *truncated when more follow. */
int store_mpu_list_parts(struct store *st, const char *bucket, const char *upload_id,
			 int after, int max,
			 int (*fn)(void *ctx, const struct store_mpu_part *p), void *ctx,
			 bool *truncated);
/* Uploads ordered by (key, upload id), keys starting with prefix, after the
 * (key_marker, upload_id_marker) pair, at most max. */
int store_mpu_list_uploads(struct store *st, const char *bucket,
			   const char *prefix, size_t prefix_len,
			   const char *key_marker, size_t key_marker_len,
			   const char *upload_id_marker, int max,
			   int (*fn)(void *ctx, const struct store_mpu_upload *u), void *ctx,
			   bool *truncated);

/* --- replica API (cluster) --- */

/* A node's copy of a key as the cluster sees it: the newest row over the node's online
 * disks. In a cluster the coordinator stamps the version; a replica or a tombstone lands
 * on a node only if its version is above what the node holds (the same version: already
 * there), so replicas converge to the newest write whatever order they arrive in. The
 * node's clock is moved past every version applied, so its own stamps stay newer. */
struct store_row {
	uint64_t version;
	bool tomb;			/* a tombstone (a delete) */
	struct store_objinfo info;	/* a tombstone: size 0, mtime_ms of the delete */
};

#define STORE_APPLY_MAX		(5LL << 40)	/* bytes in one replica (5 TiB, as S3) */

/* The key's row (tombstones included): 0, -ENOENT (no row on any online disk, or no such
 * bucket), -errno. */
int store_row_get(struct store *st, const char *bucket, const char *key, size_t key_len,
		  struct store_row *out);

struct store_apply;

/* Starts receiving a replica's bytes (temp files on the key's disks, as a put).
 * -ENOENT: no such bucket; -EINVAL/-ENAMETOOLONG: bad key. */
int store_apply_begin(struct store *st, const char *bucket, const char *key, size_t key_len,
		      struct store_apply **out);
/* Appends bytes (page-cache writes). -ENOSPC, -EIO, -EFBIG. */
int store_apply_write(struct store_apply *a, const void *buf, size_t len);
/* Makes it durable and visible with row->version and row->info's etag, mtime_ms, nparts
 * and meta (size is the bytes written) unless the node holds that version or a newer one.
 * 0: landed on W disks, *held = row->version; 1: nothing changed, *held = the version the
 * node holds; -EINVAL (bad row), -ENOENT (bucket gone), -STORE_ENOQUORUM, -ENOSPC. Frees a
 * whatever the result. (blocking) */
int store_apply_commit(struct store_apply *a, const struct store_row *row, uint64_t *held);
void store_apply_abort(struct store_apply *a);
/* The same for a replica whose bytes are in fd: row->info.size bytes from offset 0. */
int store_apply_fd(struct store *st, const char *bucket, const char *key, size_t key_len,
		   int fd, const struct store_row *row, uint64_t *held);
/* A tombstone with this version on the key's disks (written even when no disk has the
 * key: the version must outrank copies elsewhere). Returns as store_apply_commit.
 * (blocking) */
int store_apply_tomb(struct store *st, const char *bucket, const char *key, size_t key_len,
		     uint64_t version, uint64_t *held);

/* A fresh version stamp from the node's clock (above every version it stamped or applied)
 * and its wall-clock ms, for a coordinator that replicates a write to other nodes. */
uint64_t store_stamp(struct store *st, int64_t *mtime_ms);

/* Reading a replica together with its version. */
struct store_rep;

/* 0 and *out open on the newest version (row filled), or -ENOENT with row->version 0 (no
 * row) or with row->tomb and the tombstone's version; -errno. */
int store_rep_open(struct store *st, const char *bucket, const char *key, size_t key_len,
		   struct store_row *row, struct store_rep **out);
/* Reads len bytes at pos, every block verified; a bad block is read from another disk
 * holding the same version (and the key gets a repair). 0, -EBADMSG, -EIO, -EINVAL. */
int store_rep_read(struct store_rep *r, int64_t pos, void *buf, size_t len);
void store_rep_close(struct store_rep *r);

/* One row of a node's listing (pointers valid during the callback). */
struct store_row_entry {
	const char *key;
	size_t key_len;
	uint64_t version;
	bool tomb;
	int64_t size;
	int64_t mtime_ms;
	const char *etag;
};

/* The bucket's rows in key order, newest version per key, tombstones included: keys
 * starting with prefix, strictly after `after`, at most max (1..STORE_ROWS_PAGE_MAX);
 * *truncated when more follow. fn returns non-zero to stop (returned). -ENOENT: bucket. */
#define STORE_ROWS_PAGE_MAX	1000
int store_rows_list(struct store *st, const char *bucket, const char *prefix,
		    size_t prefix_len, const char *after, size_t after_len, int max,
		    int (*fn)(void *ctx, const struct store_row_entry *e), void *ctx,
		    bool *truncated);

/* Removes the key's row from every online disk of the node when its version is at most
 * `version` (the one the caller saw: a newer row that landed since stays). For cluster
 * repair, once every owner node holds the key. 0, -EINVAL, or the first disk's error.
 * (blocking) */
int store_row_forget(struct store *st, const char *bucket, const char *key, size_t key_len,
		     uint64_t version);

#endif
