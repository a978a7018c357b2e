/* store_int.h — what the store's own files share: the disk set, placement, the version
 * clock, and the encodings of the index's binary columns (crcs, segments). Private to
 * storagefs/store/. */
#ifndef CAIRN_STORE_INT_H
#define CAIRN_STORE_INT_H

#include <pthread.h>

#include "store.h"
#include "vol.h"

#define STORE_REPLICAS	1		/* volumes each object is written to (R) */
#define STORE_VOLS_MAX	64
#define STORE_PUT_MAX	(5LL * 1024 * 1024 * 1024)	/* one PUT or one part, as S3 */
#define SEG_REC		(VOL_ID_LEN + 8)	/* segments: file id + size, little-endian */
#define CRC_LEN		4			/* crcs: one little-endian u32 per block */

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "crcs and segments are stored little-endian and copied as-is"
#endif

struct store {
	struct vol *vols[STORE_VOLS_MAX];
	int nvols;
	/* Shared by writes that need their bucket to exist; exclusive for bucket create and
	 * delete, so that a delete never races an object or upload landing in the bucket. */
	pthread_rwlock_t bucket_lock;
	uint64_t last_version;		/* the hybrid clock's last stamp */
};

/* The volumes for (bucket, key), best first (rendezvous hashing); the first
 * STORE_REPLICAS hold the object, the rest are where reads look next. Fills order[nvols]. */
void store_place(const struct store *st, const char *bucket, const char *key,
		 size_t key_len, int *order);
/* A stamp above every earlier one: wall-clock ns, bumped when the clock did not move. */
uint64_t store_version(struct store *st);
int64_t store_version_ms(uint64_t version);

int store_check_bucket(const char *bucket);
int store_check_key(size_t key_len);
/* -ENOENT unless the bucket exists (checked on the first volume / inside a transaction). */
int store_bucket_check(struct store *st, const char *bucket);
int store_bucket_check_tx(struct vol *v, struct vconn *w, const char *bucket);
/* The volume holding an upload; -ENOENT. */
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
