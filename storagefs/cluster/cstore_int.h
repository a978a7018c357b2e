/* cstore_int.h — what the coordinator's files share (cstore.c: the facade and its handles;
 * cwrite.c: replication to owner nodes; cread.c: reads from owners; clist.c: merged
 * listings). Private to storagefs/cluster. */
#ifndef CAIRN_CLUSTER_CSTORE_INT_H
#define CAIRN_CLUSTER_CSTORE_INT_H

#include <limits.h>
#include <pthread.h>

#include "cstore.h"

struct cstore {
	struct store *st;
	struct cmap_sync *maps;		/* NULL: a single node */
	char self_id[CMAP_ID_MAX];
	struct peer_cfg peer;		/* its .health is ours */
	struct cbucket *buckets;	/* NULL: a single node */
	struct crepair *repair;		/* the repair thread, while it runs (under mu) */
	bool local_auto;		/* cstore_config.local_replicas_auto */
	int ndisks;
	_Atomic uint64_t local_for;	/* the map version the local R was set for */
	char spool_dir[PATH_MAX];
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int bg;				/* replica pushes still running */
};

struct cstore_put {
	struct cstore *cs;
	struct store_put *sp;		/* a single node's put, or a part */
	int fd;				/* else: the spooled body */
	int64_t size;
	char bucket[STORE_BUCKET_MAX + 1];
	size_t key_len;
	char key[STORE_KEY_MAX];
	int part_no;			/* > 0: a part for an upload at another node */
	char upload_id[STORE_UPLOAD_ID_MAX + 1];	/* there: its own id */
	char node_id[CMAP_ID_MAX], addr[CMAP_ADDR_MAX];
};

/* An upload's home (cmpu.c): 0 = this node, *local its id here; 1 = node idx of *m (put
 * *m back when done), *local the id there; -ENOENT (no such node: no such upload). */
int cs_mpu_home(struct cstore *cs, const char *upload_id, const struct cmap **m, int *idx,
		const char **local);
/* UploadPart for an upload at node idx of m: the body is spooled, then sent at commit. */
int cs_part_remote(struct cstore *cs, const struct cmap *m, int idx, const char *bucket,
		   const char *local, int part_no, struct cstore_put **out);
int cs_part_commit(struct cstore_put *p, struct store_objinfo *info);

struct cstore_obj {
	struct store_obj *so;		/* this node's copy */
	int fd;				/* else: a peer's copy spooled here (-1: not fetched) */
	struct store_objinfo info;
};

/* An unlinked temp file in the spool directory, open read-write. 0 or -errno. */
int cs_spool(struct cstore *cs, int *fd);
/* The node's index in m, or -1. */
int cs_self(const struct cstore *cs, const struct cmap *m);
/* Stamps nothing: sends row (a tombstone when fd < 0, else row->info.size bytes of fd) to
 * the key's first R reachable nodes, moving down the preference order past failures, and
 * returns once W made it durable (0) or too few can (-STORE_ENOQUORUM); the rest goes on in
 * the background. fd stays the caller's. (blocking) */
int cs_replicate(struct cstore *cs, const char *bucket, const char *key, size_t key_len,
		 int fd, const struct store_row *row);
/* Opens the newest version among the key's owners (body spooled unless meta_only). */
int cs_open(struct cstore *cs, const char *bucket, const char *key, size_t key_len,
	    bool meta_only, struct cstore_obj **out);
/* The merged listing over this node and every peer in the map. */
int cs_list(struct cstore *cs, const char *bucket, const struct store_list_query *q,
	    int (*fn)(void *ctx, const struct store_list_entry *e), void *ctx, bool *truncated);
/* With local_auto: sets the store's R and W for map m (once per map version). */
void cs_local_replicas(struct cstore *cs, const struct cmap *m);
/* The version of bucket's live entry in the bucket log, or 0 (none, or deleted): what a
 * node that lacks the bucket is sent with it. */
uint64_t cs_bucket_version(struct cstore *cs, const char *bucket);
void cs_bg_begin(struct cstore *cs);
void cs_bg_end(struct cstore *cs);

#endif
