/* store_int.h — what the store's own files share: the disk set, placement, the version
 * clock, and the encodings of the index's binary columns (crcs, segments). Private to
 * storagefs/store/. */
#ifndef CAIRN_STORE_INT_H
#define CAIRN_STORE_INT_H

#include <pthread.h>

#include "../../lib/workq.h"
#include "place.h"
#include "store.h"
#include "vol.h"

#define STORE_VOLS_MAX	PLACE_MAX
#define STORE_DISK_THREADS	2	/* commit workers per disk */
#define STORE_PROBE_MS	2000		/* disk health probe period */
#define STORE_PUT_MAX	(5LL * 1024 * 1024 * 1024)	/* one PUT or one part, as S3 */
#define SEG_REC		(VOL_ID_LEN + 8)	/* segments: file id + size, little-endian */
#define CRC_LEN		4			/* crcs: one little-endian u32 per block */

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "crcs and segments are stored little-endian and copied as-is"
#endif

struct store {
	/* A slot's volume is swapped when the prober takes up a replacement: read it with
	 * store_vol(), once per use; the volume replaced stays valid (retired) until close. */
	struct vol *vols[STORE_VOLS_MAX];
	int nvols;
	struct vol *retired;		/* replaced volumes (a list by retired_next), under mu */
	struct vol_label ident;		/* the node's cluster and node ids, for new labels */
	pthread_mutex_t probe_mu;	/* one probe (and take-up) at a time */
	/* Shared by writes that need their bucket to exist; exclusive for bucket create and
	 * delete, so that a delete never races an object or upload landing in the bucket. */
	pthread_rwlock_t bucket_lock;
	uint64_t last_version;		/* the hybrid clock's last stamp */
	/* R and W: atomic, a cluster changes them at run time (store_set_replicas). */
	_Atomic int replicas, quorum;
	struct place_item items[STORE_VOLS_MAX];
	struct workq *wq[STORE_VOLS_MAX];	/* replica commits: one pool per disk */
	struct workq *healq;		/* repairs, one at a time */
	pthread_mutex_t mu;		/* stop flag, repair count, scrubber wake-ups */
	pthread_cond_t cv;
	bool stopping, prober_on;
	/* In a cluster a tombstone is purged only when every owner node agrees (not yet
	 * implemented: kept); this node's disks agreeing is not enough. */
	bool keep_tombs;
	bool scrub_wake;		/* a disk returned: start a scrub pass now */
	uint64_t scrub_rebuild;		/* slots replaced: a rebuild pass now (atomic reads) */
	int heal_pending;		/* background commits and repairs */
	int64_t heal_queued;		/* repairs queued or running (atomic) */
	int64_t healed;			/* replicas restored (atomic) */
	pthread_t prober;
	struct store_scrub *scrub;	/* scrub.c's state */
	int scrub_pct;			/* I/O budget, % of the disks' time; 0: no thread */
	bool scrubber_on;
	pthread_t scrubber;
};

/* The volume in slot i now. */
static inline struct vol *store_vol(const struct store *st, int i)
{
	return __atomic_load_n(&st->vols[i], __ATOMIC_ACQUIRE);
}

/* The scrubber's counters for volume vi (zeros before its first batch), and the rebuild's
 * progress when vi is being rebuilt. */
void store_scrub_stats(struct store *st, int vi, struct store_disk_status *d);
/* Sleeps ms (or until store_close, or until *wake when wake is given, read under mu); true
 * when the store is closing. */
bool store_nap(struct store *st, int64_t ms, const bool *wake);
/* Asks the scrubber for a pass now (a disk returned), and for a rebuild pass (every walk
 * from the start) when rebuild_vi >= 0 names a replaced slot. */
void store_scrub_wake(struct store *st, int rebuild_vi);
/* The prober thread (probe.c). */
int store_prober_start(struct store *st);
/* Makes v's bucket rows agree with first's (store_open's reconcile). (blocking) */
int store_buckets_reconcile(struct store *st, struct vol *first, struct vol *v);
/* Allocates the scrubber's state and starts its thread when scrub_pct > 0. */
int store_scrub_start(struct store *st);
/* store_heal, also counting the replicas it restored. */
int store_heal_count(struct store *st, const char *bucket, const char *key, size_t key_len,
		     int *fixed);

/* The rebuild's copies (heal.c): a key whose placed copies agree and that only the slots
 * being rebuilt lack is copied from one of them (verified as it is read) to temp files on
 * the new disks; the batch commits them together: every file fsynced, each disk's tmp
 * directory fsynced once, one index transaction per disk, then the renames. */
struct heal_batch;
struct heal_tally {
	int64_t copied, bytes, errors;	/* replicas restored, their bytes, failed commits */
};
int heal_batch_new(struct store *st, struct heal_batch **out);
/* Commits what is pending first. */
void heal_batch_free(struct heal_batch *b);
/* During a rebuild of the slots in fill: 1 when the key was taken (its copies queued in
 * the batch, which commits first when full, adding to t; or nothing to copy: a regular
 * scrub pass verifies it), 0 when it needs the full repair (store_heal_count). */
int heal_batch_add(struct heal_batch *b, uint64_t fill, const char *bucket, const char *key,
		   size_t key_len, struct heal_tally *t);
/* Commits the pending copies (t may be NULL): 0 or the first error. */
int heal_batch_commit(struct heal_batch *b, struct heal_tally *t);

/* The volumes for (bucket, key), best first (rendezvous hashing); the first R hold the
 * object, the rest are where reads look next. Fills order[nvols]. */
void store_place(const struct store *st, const char *bucket, const char *key,
		 size_t key_len, int *order);
/* The disks a key belongs on: the first R online ones in placement order. Returns how
 * many (fewer than R when disks are offline). Repairs converge to these. */
int store_targets(const struct store *st, const char *bucket, const char *key,
		  size_t key_len, int *vols);
/* The disks a new object or upload goes to: as store_targets, but a full disk yields to
 * the next one by placement (full ones complete the set when too few are left). */
int store_write_targets(const struct store *st, const char *bucket, const char *key,
			size_t key_len, int *vols);
/* Background work (replica commits, repairs) that store_heal_drain waits for. */
void store_bg_begin(struct store *st);
void store_bg_end(struct store *st);
/* Queues a repair of the key (store_heal on the repair thread). */
void store_heal_queue(struct store *st, const char *bucket, const char *key, size_t key_len);
/* A delete: a tombstone row replicated like a put (put.c). (blocking) */
int store_put_tomb(struct store *st, const char *bucket, const char *key, size_t key_len);
/* Removes the key's row on v when its version is below `below`. (blocking) */
int store_row_drop(struct vol *v, const char *bucket, const char *key, size_t key_len,
		   uint64_t below);
/* -ENOQUORUM for I/O-type failures, else the error itself (ENOSPC, ENOENT...). */
int store_quorum_err(int rc);
/* A stamp above every earlier one: wall-clock ns, bumped when the clock did not move. */
uint64_t store_version(struct store *st);
int64_t store_version_ms(uint64_t version);

int store_check_bucket(const char *bucket);
int store_check_key(size_t key_len);
/* -ENOENT unless the bucket exists (checked on the first volume / inside a transaction). */
int store_bucket_check(struct store *st, const char *bucket);
int store_bucket_check_tx(struct vol *v, struct vconn *w, const char *bucket);
/* The online volumes holding an upload, into vols; returns how many, or -ENOENT. */
int store_upload_vols(struct store *st, const char *bucket, const char *upload_id, int *vols);
/* The first online volume holding an upload; -ENOENT. */
int store_upload_vol(struct store *st, const char *bucket, const char *upload_id,
		     struct vol **out);

/* In a transaction on v: sends every file of the object's row (if any) to garbage. */
int store_gc_object(struct vol *v, struct vconn *w, const char *bucket, const char *key,
		    size_t key_len);

/* An object row to write (inline data when segs is NULL; size and meta from info). */
struct obj_row {
	const char *bucket;
	const char *key;
	size_t key_len;
	uint64_t version;
	const struct store_objinfo *info;
	const uint32_t *crcs;
	size_t ncrcs;
	const void *inl;
	const void *segs;
	size_t segs_len;
};

/* In a transaction on v: insert or replace the object's row. */
int store_obj_row_put(struct vol *v, struct vconn *w, const struct obj_row *r);
/* The version of the key's row on v (*tomb when it is a tombstone): 1, 0 (no row), -errno. */
int store_row_version(struct vol *v, struct vconn *c, const char *bucket, const char *key,
		      size_t key_len, uint64_t *version, bool *tomb);

struct obj_seg {
	unsigned char id[VOL_ID_LEN];
	int64_t off;		/* of its first byte in the object */
	int64_t size;
	int64_t crc0;		/* index of its first block in crcs */
};

/* One replica of an object as read from one volume. */
struct rep_obj {
	struct store_objinfo info;
	uint64_t version;
	struct vol *v;
	char bucket[STORE_BUCKET_MAX + 1];
	size_t key_len;
	char key[STORE_KEY_MAX];
	int nsegs;			/* 0 with inl set: an inline object */
	struct obj_seg *segs;
	uint32_t *crcs;
	const unsigned char *inl;
	bool inl_ok;			/* the inline bytes were verified */
	int cur;			/* the segment whose file fd is, -1 for none */
	int fd;
	int ok_seg;			/* the blocks [ok_lo, ok_hi) of segment ok_seg were */
	int64_t ok_lo, ok_hi;		/* verified by store_obj_send and may be sent */
	unsigned char *scratch;		/* one block, for reads of part of a block */
	_Alignas(8) unsigned char mem[];	/* segs, crcs, then inline bytes or scratch */
};

/* One replica (the row on v, its first file open): 0, -ENOENT (none, or a tombstone),
 * -EBADMSG (a bad row), -EIO. */
int rep_open(struct vol *v, const char *bucket, const char *key, size_t key_len,
	     struct rep_obj **out);
/* Reads and verifies, as store_obj_read, from this replica only. */
int rep_read(struct rep_obj *o, int64_t pos, void *buf, size_t len);
void rep_close(struct rep_obj *o);

static inline int64_t store_nblocks(int64_t size)
{
	return (size + STORE_BLOCK - 1) / STORE_BLOCK;
}

/* sqlite3_bind_blob binds NULL for a NULL pointer; an empty value must stay a blob.
 * SQLITE_STATIC: every caller rebinds all parameters before each step. */
static inline int store_bind_blob(sqlite3_stmt *s, int i, const void *p, size_t len)
{
	return sqlite3_bind_blob64(s, i, p ? p : "", len, SQLITE_STATIC);
}

#endif
