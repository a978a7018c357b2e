/* cbucket.h — the cluster's bucket log: for each bucket name, the last create or delete this
 * node knows of, with its version, kept in <cluster dir>/buckets.json (temp, fsync, rename).
 * Merging keeps the newer entry per name, so a node that missed a create or a delete
 * learns it from any peer, and a deleted bucket never comes back from a stale node. */
#ifndef CAIRN_CLUSTER_CBUCKET_H
#define CAIRN_CLUSTER_CBUCKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../store/store.h"

#define CBUCKET_MAX	1000		/* buckets (live or deleted) a cluster keeps */
/* The log as JSON, at most: an entry with every name byte escaped (\u00XX), times the count. */
#define CBUCKET_JSON_MAX	(CBUCKET_MAX * (STORE_BUCKET_MAX * 6 + 64) + 64)

struct cbucket_ent {
	char name[STORE_BUCKET_MAX + 1];
	uint64_t version;		/* wall-clock ms when stamped, strictly rising per node */
	bool deleted;			/* a tombstone: kept for good (buckets are few) */
};

struct cbucket;

/* Loads dir/buckets.json (none yet: an empty log), then adds every bucket of st the log
 * lacks with its creation time as version (a store that predates the log). */
int cbucket_open(const char *dir, struct store *st, struct cbucket **out);
void cbucket_free(struct cbucket *b);

/* A version newer than any the log has seen (and than the wall clock in ms). */
uint64_t cbucket_stamp(struct cbucket *b);
/* Takes e when it is newer than the log's entry for its name (at equal versions the
 * delete wins): 1 taken (saved durably first), 0 not newer, -errno (nothing changed). */
int cbucket_record(struct cbucket *b, const struct cbucket_ent *e);
/* The entry for name: 0, or -ENOENT when the log has none. */
int cbucket_get(struct cbucket *b, const char *name, struct cbucket_ent *out);
/* Calls fn on a copy of every entry, in name order; a non-zero return stops and is returned. */
int cbucket_each(struct cbucket *b, int (*fn)(void *ctx, const struct cbucket_ent *e), void *ctx);

/* {"buckets": [{"name": ..., "version": N, "deleted": false}, ...]} into buf: its length,
 * or -ENOSPC. */
int cbucket_json(struct cbucket *b, char *buf, size_t cap);
/* Parses that text, calling fn per entry: 0, -EINVAL (malformed), or fn's non-zero return. */
int cbucket_parse(const char *text, size_t len,
		  int (*fn)(void *ctx, const struct cbucket_ent *e), void *ctx);

/* Makes st follow the log: creates the live buckets it lacks, removes the deleted ones it
 * has once they are empty (a bucket still holding rows is kept and retried next time).
 * Returns how many changed, or -errno. (blocking) */
int cbucket_apply(struct cbucket *b, struct store *st);

#endif
