/* vol.c — one volume: directory layout, the SQLite index (schema, connections, prepared
 * statements), write transactions with deferred unlinking of garbage files, data file
 * naming, and the recovery run at open. Format: docs/STORAGE-FORMAT.md. */
#include "vol.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "../../lib/hash.h"
#include "../../lib/log.h"

#define VOL_FORMAT		2		/* PRAGMA user_version: 2 adds tombstones */
#define VOL_LABEL_VERSION	1
#define VOL_LABEL_MAX		512
#define VOL_PLACE_HEX		16		/* the label's place: a u64 in hex */
#define PATH_MAX_LABEL		4096
#define VOL_GIB			(1024ULL * 1024 * 1024)
#define VOL_BUSY_MS		10000
#define VOL_DIR_MODE		0750
#define VOL_FILE_MODE		0640
#define VOL_FANOUT		256		/* data/00 .. data/ff */
#define VOL_DATA_NAME_MAX	(3 + VOL_ID_HEX)	/* "xx/" + hex id */

static const char *const vol_schema =
	"CREATE TABLE IF NOT EXISTS volume(id BLOB NOT NULL, created_ms INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS buckets(name TEXT NOT NULL PRIMARY KEY,"
	" created_ms INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS objects(bucket TEXT NOT NULL, key BLOB NOT NULL,"
	" version INTEGER NOT NULL, size INTEGER NOT NULL, mtime_ms INTEGER NOT NULL,"
	" etag TEXT NOT NULL, nparts INTEGER NOT NULL, meta BLOB NOT NULL, crcs BLOB NOT NULL,"
	" inline BLOB, segments BLOB, PRIMARY KEY(bucket, key)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS files(file_id BLOB NOT NULL PRIMARY KEY) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS garbage(file_id BLOB NOT NULL PRIMARY KEY) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS uploads(bucket TEXT NOT NULL, upload_id TEXT NOT NULL,"
	" key BLOB NOT NULL, meta BLOB NOT NULL, created_ms INTEGER NOT NULL,"
	" PRIMARY KEY(bucket, upload_id)) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS uploads_by_key ON uploads(bucket, key, upload_id);"
	"CREATE TABLE IF NOT EXISTS parts(bucket TEXT NOT NULL, upload_id TEXT NOT NULL,"
	" part_no INTEGER NOT NULL, size INTEGER NOT NULL, etag TEXT NOT NULL,"
	" mtime_ms INTEGER NOT NULL, file_id BLOB NOT NULL, crcs BLOB NOT NULL,"
	" PRIMARY KEY(bucket, upload_id, part_no)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS scrub(id INTEGER PRIMARY KEY, bucket TEXT NOT NULL,"
	" key BLOB NOT NULL, pass INTEGER NOT NULL, updated_ms INTEGER NOT NULL);";

struct vol_sql {
	const char *sql;
	bool reader;		/* also prepared on reader connections */
};

static const struct vol_sql vol_sql[VS_COUNT] = {
	[VS_BEGIN] = { "BEGIN IMMEDIATE", false },
	[VS_COMMIT] = { "COMMIT", false },
	[VS_ROLLBACK] = { "ROLLBACK", false },
	[VS_BUCKET_GET] = { "SELECT created_ms FROM buckets WHERE name=?1", true },
	[VS_BUCKET_LIST] = { "SELECT name, created_ms FROM buckets ORDER BY name", true },
	[VS_BUCKET_INS] = { "INSERT INTO buckets(name, created_ms) VALUES(?1, ?2)", false },
	[VS_BUCKET_DEL] = { "DELETE FROM buckets WHERE name=?1", false },
	[VS_BUCKET_HAS_OBJ] = { "SELECT 1 FROM objects WHERE bucket=?1 AND nparts>=0 LIMIT 1",
				true },
	[VS_BUCKET_HAS_UPLOAD] = { "SELECT 1 FROM uploads WHERE bucket=?1 LIMIT 1", true },
	[VS_OBJ_GET] = { "SELECT size, mtime_ms, etag, nparts, meta, crcs, inline, segments,"
			 " version FROM objects WHERE bucket=?1 AND key=?2", true },
	[VS_OBJ_SEGS] = { "SELECT segments FROM objects WHERE bucket=?1 AND key=?2", true },
	[VS_OBJ_PUT] = { "INSERT OR REPLACE INTO objects(bucket, key, version, size, mtime_ms,"
			 " etag, nparts, meta, crcs, inline, segments)"
			 " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)", false },
	[VS_OBJ_DEL] = { "DELETE FROM objects WHERE bucket=?1 AND key=?2", false },
	[VS_LIST] = { "SELECT key, size, mtime_ms, etag, version, nparts FROM objects"
		      " WHERE bucket=?1 AND key>=?2 ORDER BY key", true },
	[VS_OBJ_VER] = { "SELECT version, nparts FROM objects WHERE bucket=?1 AND key=?2", true },
	[VS_TOMBS_DEL] = { "DELETE FROM objects WHERE bucket=?1 AND nparts<0", false },
	[VS_SCRUB_NEXT] = { "SELECT bucket, key, size FROM objects WHERE bucket>?1 OR"
			    " (bucket=?1 AND key>?2) ORDER BY bucket, key LIMIT ?3", true },
	[VS_SCRUB_GET] = { "SELECT bucket, key, pass FROM scrub WHERE id=1", false },
	[VS_SCRUB_PUT] = { "INSERT OR REPLACE INTO scrub(id, bucket, key, pass, updated_ms)"
			   " VALUES(1, ?1, ?2, ?3, ?4)", false },
	[VS_FILE_INS] = { "INSERT INTO files(file_id) VALUES(?1)", false },
	[VS_FILE_DEL] = { "DELETE FROM files WHERE file_id=?1", false },
	[VS_FILE_GET] = { "SELECT 1 FROM files WHERE file_id=?1", false },
	[VS_GARBAGE_INS] = { "INSERT OR IGNORE INTO garbage(file_id) VALUES(?1)", false },
	[VS_GARBAGE_DEL] = { "DELETE FROM garbage WHERE file_id=?1", false },
	[VS_GARBAGE_ALL] = { "SELECT file_id FROM garbage", false },
	[VS_UPLOAD_INS] = { "INSERT INTO uploads(bucket, upload_id, key, meta, created_ms)"
			    " VALUES(?1, ?2, ?3, ?4, ?5)", false },
	[VS_UPLOAD_GET] = { "SELECT key, meta, created_ms FROM uploads"
			    " WHERE bucket=?1 AND upload_id=?2", true },
	[VS_UPLOAD_DEL] = { "DELETE FROM uploads WHERE bucket=?1 AND upload_id=?2", false },
	[VS_UPLOAD_LIST] = { "SELECT key, upload_id, created_ms FROM uploads"
			     " WHERE bucket=?1 AND key>=?2 ORDER BY key, upload_id", true },
	[VS_PART_GET] = { "SELECT file_id FROM parts"
			  " WHERE bucket=?1 AND upload_id=?2 AND part_no=?3", false },
	[VS_PART_PUT] = { "INSERT OR REPLACE INTO parts(bucket, upload_id, part_no, size, etag,"
			  " mtime_ms, file_id, crcs) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", false },
	[VS_PART_LIST] = { "SELECT part_no, size, etag, mtime_ms FROM parts"
			   " WHERE bucket=?1 AND upload_id=?2 AND part_no>?3 ORDER BY part_no", true },
	[VS_PARTS_ALL] = { "SELECT part_no, size, etag, file_id, crcs FROM parts"
			   " WHERE bucket=?1 AND upload_id=?2 ORDER BY part_no", false },
	[VS_PARTS_DEL] = { "DELETE FROM parts WHERE bucket=?1 AND upload_id=?2", false },
};

/* --- small helpers --- */

int vol_sqlerr(struct vol *v, sqlite3 *db, int rc, const char *what)
{
	log_warnx("store_sql_error vol=%s op=%s rc=%d msg=\"%s\"", v ? v->path : "-", what, rc,
		  db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
	switch (rc & 0xff) {
	case SQLITE_IOERR:
		/* A write that ran out of space is not a disk fault; a failed fsync is. */
		if (db && rc != SQLITE_IOERR_FSYNC && (sqlite3_system_errno(db) == ENOSPC ||
						       sqlite3_system_errno(db) == EDQUOT))
			return -ENOSPC;
		return -EIO;
	case SQLITE_FULL: return -ENOSPC;
	case SQLITE_NOMEM: return -ENOMEM;
	case SQLITE_BUSY: case SQLITE_LOCKED: return -EBUSY;
	case SQLITE_CONSTRAINT: return -EEXIST;
	case SQLITE_READONLY: case SQLITE_PERM: return -EROFS;
	default: return -EIO;
	}
}

int vol_random(void *buf, size_t len)
{
	unsigned char *p = buf;

	while (len) {
		ssize_t n = getrandom(p, len, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int vol_exec(struct vol *v, struct vconn *c, enum vol_stmt s)
{
	int rc = sqlite3_step(c->st[s]);

	sqlite3_reset(c->st[s]);
	if (rc == SQLITE_DONE || rc == SQLITE_ROW)
		return 0;
	return vol_sqlerr(v, c->db, rc, vol_sql[s].sql);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void data_name(const unsigned char id[VOL_ID_LEN], char out[VOL_DATA_NAME_MAX])
{
	char hex[VOL_ID_HEX];

	hex_encode(id, VOL_ID_LEN, hex);
	snprintf(out, VOL_DATA_NAME_MAX, "%.2s/%s", hex, hex);
}

static int fsync_dirat(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && !rc)
		rc = -errno;
	return rc;
}

/* mkdirat that reports whether it created the directory (the parent then needs fsync). */
static int mkdir_at(int dirfd, const char *name, bool *created)
{
	if (mkdirat(dirfd, name, VOL_DIR_MODE) == 0) {
		*created = true;
		return 0;
	}
	return errno == EEXIST ? 0 : -errno;
}

/* --- connections --- */

static void conn_close(struct vconn *c)
{
	for (int i = 0; i < VS_COUNT; i++)
		sqlite3_finalize(c->st[i]);
	if (c->db)
		sqlite3_close(c->db);
	pthread_mutex_destroy(&c->mu);
	memset(c, 0, sizeof(*c));
}

static int conn_open(struct vol *v, const char *dbpath, bool writer, struct vconn *c)
{
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (writer ? SQLITE_OPEN_CREATE : 0);
	int rc;

	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->mu, NULL);
	rc = sqlite3_open_v2(dbpath, &c->db, flags, NULL);
	if (rc != SQLITE_OK)
		return vol_sqlerr(v, c->db, rc, "open");
	sqlite3_busy_timeout(c->db, VOL_BUSY_MS);
	sqlite3_extended_result_codes(c->db, 1);
	if (writer) {
		rc = sqlite3_exec(c->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
				  " PRAGMA foreign_keys=OFF;", NULL, NULL, NULL);
		if (rc != SQLITE_OK)
			return vol_sqlerr(v, c->db, rc, "pragma");
	}
	return 0;
}

static int conn_prepare(struct vol *v, struct vconn *c, bool writer)
{
	for (int i = 0; i < VS_COUNT; i++) {
		int rc;

		if (!writer && !vol_sql[i].reader)
			continue;
		rc = sqlite3_prepare_v3(c->db, vol_sql[i].sql, -1, SQLITE_PREPARE_PERSISTENT,
					&c->st[i], NULL);
		if (rc != SQLITE_OK)
			return vol_sqlerr(v, c->db, rc, vol_sql[i].sql);
	}
	return 0;
}

struct vconn *vol_reader(struct vol *v)
{
	unsigned start = __atomic_fetch_add(&v->rr, 1, __ATOMIC_RELAXED);
	struct vconn *c;

	for (unsigned i = 0; i < VOL_READERS; i++) {
		c = &v->r[(start + i) % VOL_READERS];
		if (pthread_mutex_trylock(&c->mu) == 0)
			return c;
	}
	c = &v->r[start % VOL_READERS];
	pthread_mutex_lock(&c->mu);
	return c;
}

void vol_reader_put(struct vconn *c)
{
	pthread_mutex_unlock(&c->mu);
}

/* --- data files --- */

int vol_tmp_create(struct vol *v, unsigned char id[VOL_ID_LEN], int *fd)
{
	char hex[VOL_ID_HEX];
	int rc = vol_random(id, VOL_ID_LEN);

	if (rc)
		return rc;
	hex_encode(id, VOL_ID_LEN, hex);
	*fd = openat(v->tmpfd, hex, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, VOL_FILE_MODE);
	if (*fd < 0) {
		rc = -errno;
		log_warn("store_tmp_create vol=%s file=%s", v->path, hex);
		return rc;
	}
	return 0;
}

int vol_tmp_sync_dir(struct vol *v)
{
	if (fsync(v->tmpfd) < 0) {
		int rc = -errno;

		log_warn("store_fsync_tmpdir vol=%s", v->path);
		return rc;
	}
	return 0;
}

void vol_tmp_unlink(struct vol *v, const unsigned char id[VOL_ID_LEN])
{
	char hex[VOL_ID_HEX];

	hex_encode(id, VOL_ID_LEN, hex);
	if (unlinkat(v->tmpfd, hex, 0) < 0 && errno != ENOENT)
		log_warn("store_unlink_tmp vol=%s file=%s", v->path, hex);
}

int vol_file_publish(struct vol *v, const unsigned char id[VOL_ID_LEN])
{
	char name[VOL_DATA_NAME_MAX];

	data_name(id, name);
	if (renameat(v->tmpfd, name + 3, v->datafd, name) < 0) {
		int rc = -errno;

		log_warn("store_rename vol=%s file=%s", v->path, name + 3);
		return rc;
	}
	return 0;
}

/* A committed file is in data/ or, between the commit and its rename, still in tmp/; the
 * second data/ attempt covers a rename that lands between the first two opens. */
int vol_file_open(struct vol *v, const unsigned char id[VOL_ID_LEN])
{
	char name[VOL_DATA_NAME_MAX];
	int fd;

	data_name(id, name);
	fd = openat(v->datafd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		fd = openat(v->tmpfd, name + 3, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		fd = openat(v->datafd, name, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static void file_unlink(struct vol *v, const unsigned char id[VOL_ID_LEN])
{
	char name[VOL_DATA_NAME_MAX];

	data_name(id, name);
	if (unlinkat(v->datafd, name, 0) < 0 && errno != ENOENT)
		log_warn("store_unlink vol=%s file=%s", v->path, name + 3);
	vol_tmp_unlink(v, id);
}

/* --- write transactions --- */

static int bind_id(sqlite3_stmt *s, int i, const unsigned char id[VOL_ID_LEN])
{
	return sqlite3_bind_blob(s, i, id, VOL_ID_LEN, SQLITE_TRANSIENT);
}

static int exec_id(struct vol *v, enum vol_stmt s, const unsigned char id[VOL_ID_LEN])
{
	bind_id(v->w.st[s], 1, id);
	return vol_exec(v, &v->w, s);
}

int vol_tx_begin(struct vol *v, struct vconn **w)
{
	int rc;

	pthread_mutex_lock(&v->wmu);
	rc = vol_exec(v, &v->w, VS_BEGIN);
	if (rc)
		goto out_unlock;
	/* Rows of garbage already unlinked ride along with this transaction. */
	for (size_t i = 0; i < v->gc_ndone; i++) {
		rc = exec_id(v, VS_GARBAGE_DEL, v->gc_done[i]);
		if (rc)
			goto out_rollback;
	}
	*w = &v->w;
	return 0;

out_rollback:
	vol_exec(v, &v->w, VS_ROLLBACK);
out_unlock:
	pthread_mutex_unlock(&v->wmu);
	return rc;
}

int vol_tx_end(struct vol *v, int rc)
{
	if (rc == 0) {
		rc = vol_exec(v, &v->w, VS_COMMIT);
		if (rc && sqlite3_get_autocommit(v->w.db) == 0)
			vol_exec(v, &v->w, VS_ROLLBACK);
	} else if (sqlite3_get_autocommit(v->w.db) == 0) {
		vol_exec(v, &v->w, VS_ROLLBACK);
	}
	if (rc == 0) {
		unsigned char (*t)[VOL_ID_LEN] = v->gc_done;
		size_t cap = v->gc_capdone;

		/* The new garbage is durable: unlink it; its rows go with the next transaction. */
		for (size_t i = 0; i < v->gc_nnew; i++)
			file_unlink(v, v->gc_new[i]);
		v->gc_done = v->gc_new;
		v->gc_capdone = v->gc_capnew;
		v->gc_ndone = v->gc_nnew;
		v->gc_new = t;
		v->gc_capnew = cap;
	}
	v->gc_nnew = 0;
	pthread_mutex_unlock(&v->wmu);
	return rc;
}

static int gc_push(struct vol *v, const unsigned char id[VOL_ID_LEN])
{
	if (v->gc_nnew == v->gc_capnew) {
		size_t cap = v->gc_capnew ? 2 * v->gc_capnew : 16;
		void *p = realloc(v->gc_new, cap * VOL_ID_LEN);

		if (!p)
			return -ENOMEM;
		v->gc_new = p;
		v->gc_capnew = cap;
	}
	memcpy(v->gc_new[v->gc_nnew++], id, VOL_ID_LEN);
	return 0;
}

int vol_tx_garbage(struct vol *v, const unsigned char id[VOL_ID_LEN])
{
	int rc = exec_id(v, VS_FILE_DEL, id);

	if (!rc)
		rc = exec_id(v, VS_GARBAGE_INS, id);
	if (!rc)
		rc = gc_push(v, id);
	return rc;
}

int vol_tx_file(struct vol *v, const unsigned char id[VOL_ID_LEN])
{
	return exec_id(v, VS_FILE_INS, id);
}

/* --- health: offline after an I/O error, back online when the probe finds it again --- */

bool vol_online(const struct vol *v)
{
	return __atomic_load_n(&v->online, __ATOMIC_ACQUIRE) != 0;
}

/* Returns whether it was online. */
static bool vol_set_online(struct vol *v, bool on, const char *reason)
{
	int was = __atomic_exchange_n(&v->online, on ? 1 : 0, __ATOMIC_ACQ_REL);

	if (was && !on)
		log_warnx("store_disk_offline vol=%s id=%s reason=%s", v->path, v->id_hex, reason);
	else if (!was && on)
		log_info("store_disk_online vol=%s id=%s", v->path, v->id_hex);
	return was;
}

/* --- space: data writes stop at a headroom that keeps the index (and deletes) working --- */

bool vol_full(const struct vol *v)
{
	return __atomic_load_n(&v->full, __ATOMIC_RELAXED) != 0;
}

static uint64_t vol_free(struct vol *v)
{
	struct statvfs vfs;

	if (fstatvfs(v->dirfd, &vfs) < 0)
		return UINT64_MAX;	/* unknown: let the write itself tell */
	return (uint64_t)vfs.f_bavail * vfs.f_frsize;
}

static void vol_mark_full(struct vol *v, uint64_t free_bytes, const char *reason)
{
	__atomic_store_n(&v->full_free, free_bytes, __ATOMIC_RELAXED);
	if (__atomic_exchange_n(&v->full, 1, __ATOMIC_RELAXED) == 0)
		log_warnx("store_disk_full vol=%s id=%s free=%llu headroom=%llu reason=%s",
			  v->path, v->id_hex, (unsigned long long)free_bytes,
			  (unsigned long long)v->headroom, reason);
}

int vol_space_check(struct vol *v, int64_t need)
{
	uint64_t free_bytes = vol_free(v);

	if (free_bytes >= v->headroom && free_bytes - v->headroom >= (uint64_t)need)
		return 0;
	vol_mark_full(v, free_bytes, "headroom");
	return -ENOSPC;
}

void vol_space_probe(struct vol *v)
{
	uint64_t free_bytes, mark = __atomic_load_n(&v->full_free, __ATOMIC_RELAXED);

	if (!vol_full(v))
		return;
	free_bytes = vol_free(v);
	if (free_bytes == UINT64_MAX || free_bytes < VOL_FULL_SLACK + v->headroom ||
	    free_bytes < VOL_FULL_SLACK + mark)
		return;
	__atomic_store_n(&v->full, 0, __ATOMIC_RELAXED);
	log_info("store_disk_space vol=%s id=%s free=%llu msg=\"space freed: writes placed here again\"",
		 v->path, v->id_hex, (unsigned long long)free_bytes);
}

int vol_fault(struct vol *v, int rc, const char *reason)
{
	if (rc == -ENOSPC) {
		vol_mark_full(v, vol_free(v), reason);	/* not the disk's fault: no error */
		return rc;
	}
	if (rc && rc != -ENOENT && rc != -ESTALE && rc != -EEXIST)
		vol_count(&v->n_errors, 1);
	if (rc == -EIO || rc == -ENODEV || rc == -ENXIO)
		vol_set_online(v, false, reason);
	return rc;
}

/* --- the label: DIR/.cairn/format, "key value" lines --- */

static int label_parse(char *text, struct vol_label *out)
{
	char *save = NULL, *line;
	int seen = 0, version = 0;

	memset(out, 0, sizeof(*out));
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[16], hex[2 * VOL_ID_LEN + 2], *end;
		unsigned char *dst = NULL;

		if (sscanf(line, "cairn-disk %d", &version) == 1)
			continue;
		if (!strncmp(line, "place ", 6)) {
			out->place = strtoull(line + 6, &end, 16);
			if (end != line + 6 + VOL_PLACE_HEX || *end)
				return -EUCLEAN;
			out->has_place = true;
			continue;
		}
		if (sscanf(line, "%15s %33s", name, hex) != 2 || strlen(hex) != 2 * VOL_ID_LEN)
			continue;
		if (!strcmp(name, "cluster"))
			dst = out->cluster, seen |= 1;
		else if (!strcmp(name, "node"))
			dst = out->node, seen |= 2;
		else if (!strcmp(name, "disk"))
			dst = out->disk, seen |= 4;
		if (dst && hex_decode(hex, 2 * VOL_ID_LEN, dst, VOL_ID_LEN) != VOL_ID_LEN)
			return -EUCLEAN;
	}
	if (version > VOL_LABEL_VERSION)
		return -EPROTO;
	return version == VOL_LABEL_VERSION && seen == 7 ? 0 : -EUCLEAN;
}

int vol_label_read(const char *dir, struct vol_label *out)
{
	char path[PATH_MAX_LABEL], text[VOL_LABEL_MAX + 1];
	ssize_t n;
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s/.cairn/format", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, text, VOL_LABEL_MAX);
	if (n < 0)
		rc = -errno;
	if (close(fd) < 0 && !rc)
		rc = -errno;
	if (rc)
		return rc;
	text[n] = 0;
	return label_parse(text, out);
}

/* temp, fsync, rename, fsync the directory: a label is whole or absent. */
static int label_write(struct vol *v, const struct vol_label *l)
{
	char c[VOL_ID_HEX], n[VOL_ID_HEX], d[VOL_ID_HEX], text[VOL_LABEL_MAX];
	int len, fd, rc = 0;

	hex_encode(l->cluster, VOL_ID_LEN, c);
	hex_encode(l->node, VOL_ID_LEN, n);
	hex_encode(l->disk, VOL_ID_LEN, d);
	len = snprintf(text, sizeof(text),
		       "cairn-disk %d\ncluster %s\nnode %s\ndisk %s\nplace %016llx\n",
		       VOL_LABEL_VERSION, c, n, d, (unsigned long long)l->place);
	fd = openat(v->dirfd, ".cairn/format.tmp", O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC,
		    VOL_FILE_MODE);
	if (fd < 0)
		return -errno;
	if (write(fd, text, (size_t)len) != len)
		rc = -EIO;
	if (!rc && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && !rc)
		rc = -errno;
	if (!rc && renameat(v->dirfd, ".cairn/format.tmp", v->dirfd, ".cairn/format") < 0)
		rc = -errno;
	if (!rc)
		rc = fsync_dirat(v->dirfd, ".cairn");
	if (rc)
		log_warnx("store_label_write vol=%s rc=%d", v->path, rc);
	return rc;
}

static uint64_t id_seed(const unsigned char id[VOL_ID_LEN])
{
	uint64_t h = 0;

	memcpy(&h, id, sizeof(h));
	return h;
}

/* The label must name this cluster, node and the index's disk; a new volume gets one (with
 * want's place: a replacement keeps its slot's placement). Sets the placement seed. */
static int label_check(struct vol *v, const struct vol_label *want)
{
	struct vol_label have, mine = *want;
	int rc = vol_label_read(v->path, &have);

	memcpy(mine.disk, v->id, VOL_ID_LEN);
	if (!mine.has_place)
		mine.place = id_seed(v->id);
	if (rc == -ENOENT) {
		v->fresh = true;
		v->seed = mine.place;
		return label_write(v, &mine);
	}
	if (rc) {
		log_errorx("store_label_unreadable vol=%s rc=%d", v->path, rc);
		return rc;
	}
	if (memcmp(have.cluster, mine.cluster, VOL_ID_LEN) || memcmp(have.node, mine.node, VOL_ID_LEN) ||
	    memcmp(have.disk, mine.disk, VOL_ID_LEN)) {
		log_errorx("store_label_mismatch vol=%s msg=\"the directory belongs to another cluster, node or disk; refusing to mix it in\"",
			   v->path);
		return -EXDEV;
	}
	v->seed = have.has_place ? have.place : id_seed(v->id);
	return 0;
}

/* Healthy: the path still leads to the directory opened, and its label to this disk. */
static bool vol_healthy(struct vol *v, const char **why)
{
	struct vol_label l;
	struct stat sb;

	*why = "vanished";
	if (stat(v->path, &sb) < 0 || sb.st_dev != v->dev || sb.st_ino != v->ino)
		return false;
	*why = "label";
	if (vol_label_read(v->path, &l) || memcmp(l.disk, v->id, VOL_ID_LEN))
		return false;
	*why = "io";
	return fstatat(v->dirfd, ".cairn/index.db", &sb, 0) == 0;
}

/* Only lost+found (a freshly made file system) or nothing at all. */
static bool dir_empty(const char *path)
{
	struct dirent *de;
	bool empty = true;
	DIR *d = opendir(path);

	if (!d)
		return false;
	while (empty && (de = readdir(d)))
		empty = !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
			!strcmp(de->d_name, "lost+found");
	closedir(d);
	return empty;
}

static bool is_mountpoint(const char *path, const struct stat *sb)
{
	char parent[PATH_MAX_LABEL];
	struct stat psb;

	snprintf(parent, sizeof(parent), "%s/..", path);
	return stat(parent, &psb) == 0 && psb.st_dev != sb->st_dev;
}

/* Logs why an offline slot is not taken up, once per reason. */
static enum vol_health probe_refuse(struct vol *v, int note, const char *why)
{
	if (v->probe_note != note)
		log_warnx("store_disk_replace_refused vol=%s id=%s reason=\"%s\"", v->path,
			  v->id_hex, why);
	v->probe_note = note;
	return VOL_DOWN;
}

/* What an offline volume's path holds now. */
static enum vol_health vol_vacancy(struct vol *v)
{
	struct vol_label l;
	struct stat sb;
	int rc;

	if (stat(v->path, &sb) < 0 || !S_ISDIR(sb.st_mode))
		return VOL_DOWN;
	rc = vol_label_read(v->path, &l);
	if (rc == 0 && !memcmp(l.disk, v->id, VOL_ID_LEN))
		return sb.st_dev == v->dev && sb.st_ino == v->ino ? VOL_DOWN : VOL_MOVED;
	if (rc != -ENOENT)
		return probe_refuse(v, 1, "labelled for another disk, or an unreadable label");
	if (!dir_empty(v->path))
		return probe_refuse(v, 2, "not empty and unlabelled");
	if (v->mountpoint && !is_mountpoint(v->path, &sb))
		return probe_refuse(v, 3, "the disk was a mount point and this directory is not one");
	return VOL_EMPTY;
}

enum vol_health vol_probe(struct vol *v)
{
	const char *why = "";

	if (vol_healthy(v, &why)) {
		v->probe_note = 0;
		return vol_set_online(v, true, why) ? VOL_UP : VOL_BACK;
	}
	vol_set_online(v, false, why);
	return vol_vacancy(v);
}

/* --- open: layout, schema, recovery --- */

static int layout_open(struct vol *v)
{
	bool top = false, sub = false, data = false;
	char name[4];
	int rc;

	if (mkdir(v->path, VOL_DIR_MODE) < 0 && errno != EEXIST)
		return -errno;
	v->dirfd = open(v->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (v->dirfd < 0)
		return -errno;
	if ((rc = mkdir_at(v->dirfd, ".cairn", &top)) || (rc = mkdir_at(v->dirfd, "data", &top)))
		return rc;
	if (top && fsync(v->dirfd) < 0)
		return -errno;
	v->lockfd = openat(v->dirfd, ".cairn/lock", O_CREAT | O_RDWR | O_CLOEXEC, VOL_FILE_MODE);
	if (v->lockfd < 0)
		return -errno;
	if (flock(v->lockfd, LOCK_EX | LOCK_NB) < 0)
		return errno == EWOULDBLOCK ? -EBUSY : -errno;
	if ((rc = mkdir_at(v->dirfd, ".cairn/tmp", &sub)))
		return rc;
	if (sub && (rc = fsync_dirat(v->dirfd, ".cairn")))
		return rc;
	v->tmpfd = openat(v->dirfd, ".cairn/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	v->datafd = openat(v->dirfd, "data", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (v->tmpfd < 0 || v->datafd < 0)
		return -errno;
	for (int i = 0; i < VOL_FANOUT; i++) {
		snprintf(name, sizeof(name), "%02x", i);
		if ((rc = mkdir_at(v->datafd, name, &data)))
			return rc;
	}
	if (data && fsync(v->datafd) < 0)
		return -errno;
	return 0;
}

static int sql_int(struct vol *v, const char *sql, int64_t *out)
{
	sqlite3_stmt *s;
	int rc = sqlite3_prepare_v2(v->w.db, sql, -1, &s, NULL);

	if (rc != SQLITE_OK)
		return vol_sqlerr(v, v->w.db, rc, sql);
	rc = sqlite3_step(s);
	*out = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
	sqlite3_finalize(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : vol_sqlerr(v, v->w.db, rc, sql);
}

/* The volume row holds the volume's id; a new index gets a random one. */
static int volume_id(struct vol *v)
{
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(v->w.db, "SELECT id FROM volume", -1, &s, NULL);

	if (rc != SQLITE_OK)
		goto out_sqlerr;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW && sqlite3_column_bytes(s, 0) == VOL_ID_LEN) {
		memcpy(v->id, sqlite3_column_blob(s, 0), VOL_ID_LEN);
		sqlite3_finalize(s);
		return 0;
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return rc == SQLITE_ROW ? -EUCLEAN : vol_sqlerr(v, v->w.db, rc, "volume");
	if ((rc = vol_random(v->id, VOL_ID_LEN)))
		return rc;
	rc = sqlite3_prepare_v2(v->w.db, "INSERT INTO volume(id, created_ms) VALUES(?1, ?2)",
				-1, &s, NULL);
	if (rc != SQLITE_OK)
		goto out_sqlerr;
	sqlite3_bind_blob(s, 1, v->id, VOL_ID_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, now_ms());
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc == SQLITE_DONE)
		return 0;
out_sqlerr:
	return vol_sqlerr(v, v->w.db, rc, "volume");
}

static int schema_init(struct vol *v)
{
	int64_t format;
	int rc = sql_int(v, "PRAGMA user_version", &format);

	if (rc)
		return rc;
	if (format > VOL_FORMAT) {
		log_errorx("store_format_unknown vol=%s format=%lld", v->path, (long long)format);
		return -EPROTO;
	}
	rc = sqlite3_exec(v->w.db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(v->w.db, vol_schema, NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(v->w.db, "PRAGMA user_version=2", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		rc = vol_sqlerr(v, v->w.db, rc, "schema");
		goto out_rollback;
	}
	if ((rc = volume_id(v)))
		goto out_rollback;
	rc = sqlite3_exec(v->w.db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		rc = vol_sqlerr(v, v->w.db, rc, "schema_commit");
		goto out_rollback;
	}
	hex_encode(v->id, VOL_ID_LEN, v->id_hex);
	return fsync_dirat(v->dirfd, ".cairn");

out_rollback:
	sqlite3_exec(v->w.db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

/* Garbage rows left by a crash between a commit and its unlinks: unlink them again. */
static int recover_garbage(struct vol *v)
{
	struct vconn *w;
	sqlite3_stmt *s;
	int rc = vol_tx_begin(v, &w), step;

	if (rc)
		return rc;
	s = w->st[VS_GARBAGE_ALL];
	while ((step = sqlite3_step(s)) == SQLITE_ROW && !rc) {
		if (sqlite3_column_bytes(s, 0) == VOL_ID_LEN)
			rc = gc_push(v, sqlite3_column_blob(s, 0));
	}
	if (!rc && step != SQLITE_DONE)
		rc = vol_sqlerr(v, w->db, step, "garbage_scan");
	sqlite3_reset(s);
	return vol_tx_end(v, rc);
}

/* A temp file is either an upload that never committed (unlink it) or a committed file
 * whose rename to data/ was lost (finish the rename). The index decides. */
static int recover_tmp_one(struct vol *v, const char *hex)
{
	unsigned char id[VOL_ID_LEN];
	sqlite3_stmt *s = v->w.st[VS_FILE_GET];
	char name[VOL_DATA_NAME_MAX];
	int step, rc;

	if (strlen(hex) != 2 * VOL_ID_LEN || hex_decode(hex, 2 * VOL_ID_LEN, id, sizeof(id)) !=
	    VOL_ID_LEN) {
		log_warnx("store_recover_stray vol=%s file=%s", v->path, hex);
		goto out_unlink;
	}
	bind_id(s, 1, id);
	step = sqlite3_step(s);
	sqlite3_reset(s);
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		return vol_sqlerr(v, v->w.db, step, "file_get");
	if (step == SQLITE_DONE) {
		log_info("store_recover_unlink vol=%s file=%s", v->path, hex);
		goto out_unlink;
	}
	log_info("store_recover_rename vol=%s file=%s", v->path, hex);
	if ((rc = vol_file_publish(v, id)))
		return rc;
	data_name(id, name);
	name[2] = 0;
	if ((rc = fsync_dirat(v->datafd, name)))
		log_warnx("store_recover_fsync vol=%s dir=%s rc=%d", v->path, name, rc);
	return rc;

out_unlink:
	if (unlinkat(v->tmpfd, hex, 0) < 0 && errno != ENOENT) {
		rc = -errno;
		log_warn("store_recover_unlink vol=%s file=%s", v->path, hex);
		return rc;
	}
	return 0;
}

static int recover_tmp(struct vol *v)
{
	int fd = openat(v->dirfd, ".cairn/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *de;
	DIR *d;
	int rc = 0;

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		rc = -errno;
		close(fd);
		return rc;
	}
	while (!rc && (de = readdir(d))) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			rc = recover_tmp_one(v, de->d_name);
	}
	closedir(d);
	if (!rc)
		rc = vol_tmp_sync_dir(v);
	return rc;
}

static int recover(struct vol *v)
{
	struct vconn *w;
	int rc;

	if ((rc = recover_garbage(v)) || (rc = recover_tmp(v)))
		return rc;
	/* An empty transaction deletes the rows of the garbage just unlinked. */
	if ((rc = vol_tx_begin(v, &w)))
		return rc;
	return vol_tx_end(v, 0);
}

static int conns_open(struct vol *v)
{
	char *dbpath;
	int rc;

	if (asprintf(&dbpath, "%s/.cairn/index.db", v->path) < 0)
		return -ENOMEM;
	rc = conn_open(v, dbpath, true, &v->w);
	v->wopen = true;
	if (!rc && !(rc = schema_init(v)))
		rc = conn_prepare(v, &v->w, true);
	while (!rc && v->nreaders < VOL_READERS) {
		struct vconn *c = &v->r[v->nreaders++];

		if (!(rc = conn_open(v, dbpath, false, c)))
			rc = conn_prepare(v, c, false);
	}
	free(dbpath);
	return rc;
}

/* Placement weight, the index's headroom, the seed of the hybrid clock, and what the probe
 * compares. */
static int vol_measure(struct vol *v)
{
	struct statvfs vfs;
	struct stat sb, psb;
	uint64_t size = 0;

	if (fstat(v->dirfd, &sb) < 0)
		return -errno;
	v->dev = sb.st_dev;
	v->ino = sb.st_ino;
	v->mountpoint = fstatat(v->dirfd, "..", &psb, 0) == 0 && psb.st_dev != sb.st_dev;
	if (fstatvfs(v->dirfd, &vfs) == 0)
		size = (uint64_t)vfs.f_blocks * vfs.f_frsize;
	v->weight = size >= 2 * VOL_GIB ? size / VOL_GIB : 1;
	v->headroom = size / 100 < VOL_HEADROOM_MIN ? VOL_HEADROOM_MIN :
		      size / 100 > VOL_HEADROOM_MAX ? VOL_HEADROOM_MAX : size / 100;
	return sql_int(v, "SELECT coalesce(max(version), 0) FROM objects", (int64_t *)&v->max_version);
}

int vol_open(const char *dir, const struct vol_label *want, struct vol **out)
{
	struct vol *v = calloc(1, sizeof(*v));
	int rc;

	if (!v)
		return -ENOMEM;
	v->dirfd = v->tmpfd = v->datafd = v->lockfd = -1;
	pthread_mutex_init(&v->wmu, NULL);
	v->path = strdup(dir);
	if (!v->path) {
		rc = -ENOMEM;
		goto out_close;
	}
	if ((rc = layout_open(v))) {
		log_warnx("store_vol_layout vol=%s rc=%d", dir, rc);
		goto out_close;
	}
	if ((rc = conns_open(v)) || (rc = label_check(v, want)) || (rc = recover(v)) ||
	    (rc = vol_measure(v)))
		goto out_close;
	v->online = 1;
	if (vol_free(v) < v->headroom)
		vol_mark_full(v, vol_free(v), "open");
	log_info("store_vol_open vol=%s id=%s weight=%llu place=%016llx fresh=%d", v->path,
		 v->id_hex, (unsigned long long)v->weight, (unsigned long long)v->seed, v->fresh);
	*out = v;
	return 0;

out_close:
	vol_close(v);
	return rc;
}

static void close_fd(struct vol *v, int fd)
{
	if (fd >= 0 && close(fd) < 0)
		log_warn("store_close vol=%s", v->path);
}

void vol_close(struct vol *v)
{
	if (!v)
		return;
	for (int i = 0; i < v->nreaders; i++)
		conn_close(&v->r[i]);
	if (v->wopen)
		conn_close(&v->w);
	close_fd(v, v->tmpfd);
	close_fd(v, v->datafd);
	close_fd(v, v->lockfd);
	close_fd(v, v->dirfd);
	pthread_mutex_destroy(&v->wmu);
	free(v->gc_new);
	free(v->gc_done);
	free(v->path);
	free(v);
}
