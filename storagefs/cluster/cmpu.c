/* cmpu.c — multipart uploads through the facade: an upload and its parts live on the node
 * where it was created (its requests must reach that node); Complete builds the object
 * there and, in a cluster, replicates it to the key's owners like a PUT (same version). */
#include "cstore_int.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "../../lib/log.h"

int cstore_mpu_create(struct cstore *cs, const char *bucket, const char *key, size_t key_len,
		      const void *meta, size_t meta_len,
		      char upload_id[STORE_UPLOAD_ID_MAX + 1])
{
	return store_mpu_create(cs->st, bucket, key, key_len, meta, meta_len, upload_id);
}

/* The finished object, read back (verified) into a spool file. */
static int mpu_spool(struct cstore *cs, const char *bucket, const char *key, size_t key_len,
		     struct store_row *row, int *fd)
{
	struct store_rep *rp;
	char *buf = malloc(PEER_CHUNK);
	int rc = buf ? store_rep_open(cs->st, bucket, key, key_len, row, &rp) : -ENOMEM;

	if (rc)
		goto out_free;
	if ((rc = cs_spool(cs, fd)))
		goto out_close;
	for (int64_t pos = 0; pos < row->info.size && !rc; pos += PEER_CHUNK) {
		size_t n = (size_t)(row->info.size - pos < PEER_CHUNK ? row->info.size - pos
								      : PEER_CHUNK);

		if (!(rc = store_rep_read(rp, pos, buf, n)) && pwrite(*fd, buf, n, pos) != (ssize_t)n)
			rc = -EIO;
	}
	if (rc) {
		close(*fd);
		*fd = -1;
	}
out_close:
	store_rep_close(rp);
out_free:
	free(buf);
	return rc;
}

int cstore_mpu_complete(struct cstore *cs, const char *bucket, const char *upload_id,
			const struct store_mpu_part *parts, int nparts,
			struct store_objinfo *out)
{
	char key[STORE_KEY_MAX];
	size_t key_len;
	struct store_row *row;
	int rc, fd = -1;

	if (!cs->maps)
		return store_mpu_complete(cs->st, bucket, upload_id, parts, nparts, out);
	if ((rc = store_mpu_get(cs->st, bucket, upload_id, key, &key_len)) ||
	    (rc = store_mpu_complete(cs->st, bucket, upload_id, parts, nparts, out)))
		return rc;
	if (!(row = calloc(1, sizeof(*row))))
		return -ENOMEM;
	/* The local copy has the version; the owners get that version (this node, when it is
	 * one, already holds it and says so). */
	if (!(rc = mpu_spool(cs, bucket, key, key_len, row, &fd)))
		rc = cs_replicate(cs, bucket, key, key_len, fd, row);
	if (rc)
		log_warnx("cluster_mpu_replicate_failed bucket=%s upload=%s err=%d", bucket,
			  upload_id, rc);
	if (fd >= 0)
		close(fd);
	free(row);
	return rc;
}

int cstore_mpu_abort(struct cstore *cs, const char *bucket, const char *upload_id)
{
	return store_mpu_abort(cs->st, bucket, upload_id);
}

int cstore_mpu_get(struct cstore *cs, const char *bucket, const char *upload_id,
		   char key[STORE_KEY_MAX], size_t *key_len)
{
	return store_mpu_get(cs->st, bucket, upload_id, key, key_len);
}

int cstore_mpu_list_parts(struct cstore *cs, const char *bucket, const char *upload_id,
			  int after, int max,
			  int (*fn)(void *ctx, const struct store_mpu_part *p), void *ctx,
			  bool *truncated)
{
	return store_mpu_list_parts(cs->st, bucket, upload_id, after, max, fn, ctx, truncated);
}

int cstore_mpu_list_uploads(struct cstore *cs, const char *bucket,
			    const char *prefix, size_t prefix_len,
			    const char *key_marker, size_t key_marker_len,
			    const char *upload_id_marker, int max,
			    int (*fn)(void *ctx, const struct store_mpu_upload *u), void *ctx,
			    bool *truncated)
{
	return store_mpu_list_uploads(cs->st, bucket, prefix, prefix_len, key_marker,
				      key_marker_len, upload_id_marker, max, fn, ctx, truncated);
}
