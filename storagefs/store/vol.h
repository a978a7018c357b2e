/* vol.h — one data directory ("volume", a disk): its layout on disk, its SQLite index
 * (one writer connection behind a mutex, a pool of reader connections, prepared
 * statements), write transactions with deferred garbage, data files, crash recovery.
 * The on-disk format is specified in docs/STORAGE-FORMAT.md. */
#ifndef CAIRN_STORE_VOL_H
#define CAIRN_STORE_VOL_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define VOL_ID_LEN	16		/* volume ids and file ids: 128 random bits */
#define VOL_ID_HEX	(2 * VOL_ID_LEN + 1)
#define VOL_READERS	8		/* reader connections per volume */
#define VOL_TOMB	(-1)		/* objects.nparts of a tombstone (a deleted key) */

/* The disk label, DIR/.cairn/format: which cluster, node and disk this directory is, and
 * the placement seed of its slot (inherited by a disk that replaces it). */
struct vol_label {
	unsigned char cluster[VOL_ID_LEN];
	unsigned char node[VOL_ID_LEN];
	unsigned char disk[VOL_ID_LEN];		/* = the volume id of the index */
	uint64_t place;				/* placement seed, when has_place */
	bool has_place;				/* labels before `place` lines: seed from disk */
};

/* What the health probe found (vol_probe). */
enum vol_health {
	VOL_UP,		/* online, and was */
	VOL_BACK,	/* back online: the same directory with the same label again */
	VOL_DOWN,	/* offline */
	VOL_EMPTY,	/* offline, and its path is now an empty, unlabelled directory: a
			 * replacement disk to take up */
	VOL_MOVED,	/* offline, and its path is now another directory labelled as this
			 * disk (remounted): to be reopened */
};

#define VOL_HEADROOM_MIN	(1024 * 1024)		/* kept free for the index */
#define VOL_HEADROOM_MAX	(64 * 1024 * 1024)
#define VOL_FULL_SLACK		(1024 * 1024)		/* freed above the mark before writes return */

/* Every statement is prepared once per connection; readers only get the SELECTs. */
enum vol_stmt {
	VS_BEGIN, VS_COMMIT, VS_ROLLBACK,
	VS_BUCKET_GET, VS_BUCKET_LIST, VS_BUCKET_INS, VS_BUCKET_DEL,
	VS_BUCKET_HAS_OBJ, VS_BUCKET_HAS_UPLOAD,
	VS_OBJ_GET, VS_OBJ_SEGS, VS_OBJ_PUT, VS_OBJ_DEL, VS_LIST, VS_OBJ_VER, VS_TOMBS_DEL,
	VS_SCRUB_NEXT, VS_SCRUB_GET, VS_SCRUB_PUT,
	VS_FILE_INS, VS_FILE_DEL, VS_FILE_GET,
	VS_GARBAGE_INS, VS_GARBAGE_DEL, VS_GARBAGE_ALL,
	VS_UPLOAD_INS, VS_UPLOAD_GET, VS_UPLOAD_DEL, VS_UPLOAD_LIST,
	VS_PART_GET, VS_PART_PUT, VS_PART_LIST, VS_PARTS_ALL, VS_PARTS_DEL,
	VS_COUNT
};

struct vconn {
	pthread_mutex_t mu;
	sqlite3 *db;
	sqlite3_stmt *st[VS_COUNT];
};

struct vol {
	char *path;
	int dirfd, tmpfd, datafd;	/* DIR, DIR/.cairn/tmp, DIR/data */
	int lockfd;			/* DIR/.cairn/lock, flock()ed: one process per volume */
	unsigned char id[VOL_ID_LEN];
	char id_hex[VOL_ID_HEX];
	uint64_t seed;			/* placement hash seed: the label's place, or from id */
	uint64_t weight;		/* placement weight: capacity in GiB (>= 1) */
	uint64_t max_version;		/* the highest objects.version at open */
	int online;			/* atomic: 0 after an I/O error or a vanished dir */
	bool fresh;			/* labelled at this open: a new (or replaced) disk */
	bool mountpoint;		/* on another file system than its parent at open */
	int full;			/* atomic: out of space above the headroom */
	uint64_t headroom;		/* bytes kept free for the index (deletes need it) */
	uint64_t full_free;		/* atomic: free bytes when it was marked full */
	int probe_note;			/* the last refusal logged by the probe (log once) */
	struct vol *retired_next;	/* replaced at runtime: kept until store_close */
	uint64_t n_reads, n_read_bytes;	/* counters (relaxed atomics) for store_status */
	uint64_t n_writes, n_write_bytes, n_errors;
	dev_t dev;			/* the directory opened, to notice it vanishing */
	ino_t ino;
	pthread_mutex_t wmu;		/* the writer connection and the garbage lists */
	struct vconn w;
	struct vconn r[VOL_READERS];
	int nreaders;			/* opened so far (for a partial open's cleanup) */
	bool wopen;
	unsigned rr;			/* where the next reader search starts */
	/* Garbage moved in the open transaction (unlinked after its commit), and garbage
	 * already unlinked whose rows the next transaction deletes. */
	unsigned char (*gc_new)[VOL_ID_LEN];
	size_t gc_nnew, gc_capnew;
	unsigned char (*gc_done)[VOL_ID_LEN];
	size_t gc_ndone, gc_capdone;
};

/* Reads DIR/.cairn/format: 0, -ENOENT (no label yet), -EUCLEAN (unreadable). */
int vol_label_read(const char *dir, struct vol_label *out);
/* Opens (creating if needed) the volume at dir and recovers it; writes its label (with
 * want's cluster and node, and want's place when set: a replacement keeps its slot's
 * placement) at first use, and refuses (-EXDEV) a label naming another cluster or node,
 * or another disk than the index. (blocking) */
int vol_open(const char *dir, const struct vol_label *want, struct vol **out);
/* Takes the volume offline after an I/O error (-EIO, -ENODEV, -ENXIO; others are not the
 * disk's fault), or marks it full after -ENOSPC; logs one line. Returns rc. */
int vol_fault(struct vol *v, int rc, const char *reason);
bool vol_online(const struct vol *v);
bool vol_full(const struct vol *v);
/* 0 when need more bytes fit above the headroom kept for the index; else marks the volume
 * full and returns -ENOSPC. Deletes are never checked: they free space. */
int vol_space_check(struct vol *v, int64_t need);
/* For a full volume: clears the mark once VOL_FULL_SLACK was freed (the prober). */
void vol_space_probe(struct vol *v);
static inline void vol_count(uint64_t *counter, uint64_t n)
{
	__atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}
/* The periodic health check: offline when the directory vanished or its label is gone,
 * back online when the same directory (same label) is there again; for an offline volume,
 * whether its path now holds a replacement (VOL_EMPTY) or the same disk elsewhere
 * (VOL_MOVED). An empty directory is refused (logged once) when the disk was a mount point
 * and the directory is not one: an unmounted disk must not be replaced by its mount point. */
enum vol_health vol_probe(struct vol *v);
void vol_close(struct vol *v);

/* A reader connection (never waits on the writer); statements must be reset before put. */
struct vconn *vol_reader(struct vol *v);
void vol_reader_put(struct vconn *c);

/* Write transactions: begin locks the writer and opens BEGIN IMMEDIATE; end commits when
 * rc == 0 (else rolls back), unlocks, unlinks garbage moved in the transaction and returns
 * rc or the commit's error. */
int vol_tx_begin(struct vol *v, struct vconn **w);
int vol_tx_end(struct vol *v, int rc);
/* In a transaction: the data file id is no longer referenced; unlink it after commit. */
int vol_tx_garbage(struct vol *v, const unsigned char id[VOL_ID_LEN]);
/* In a transaction: a new data file is referenced by a row. */
int vol_tx_file(struct vol *v, const unsigned char id[VOL_ID_LEN]);

/* Data files. */
int vol_tmp_create(struct vol *v, unsigned char id[VOL_ID_LEN], int *fd);	/* fd O_WRONLY */
int vol_tmp_sync_dir(struct vol *v);
void vol_tmp_unlink(struct vol *v, const unsigned char id[VOL_ID_LEN]);
int vol_file_publish(struct vol *v, const unsigned char id[VOL_ID_LEN]);	/* tmp -> data */
int vol_file_open(struct vol *v, const unsigned char id[VOL_ID_LEN]);		/* fd or -errno */

/* Helpers shared by the store: sqlite result -> -errno, random ids, step-one-row. */
int vol_sqlerr(struct vol *v, sqlite3 *db, int rc, const char *what);
int vol_random(void *buf, size_t len);
int vol_exec(struct vol *v, struct vconn *c, enum vol_stmt s);	/* step to DONE, reset */

#endif
