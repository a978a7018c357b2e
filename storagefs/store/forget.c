/* forget.c — a node letting go of a key it no longer needs to hold (cluster repair: a
 * hinted or rebalanced copy, once every owner node holds it): the key's row on each of the
 * node's disks, while it is still the version the caller saw (or older). */
#include "store_int.h"

#include <errno.h>

int store_row_forget(struct store *st, const char *bucket, const char *key, size_t key_len,
		     uint64_t version)
{
	int rc = store_check_key(key_len), first = 0;

	if (rc)
		return rc;
	if (version == 0 || version >= (uint64_t)INT64_MAX)
		return -EINVAL;
	for (int i = 0; i < st->nvols; i++) {
		struct vol *v = store_vol(st, i);

		if (!vol_online(v))
			continue;
		/* A newer version that landed since the caller looked stays (below is exclusive). */
		rc = store_row_drop(v, bucket, key, key_len, version + 1);
		if (rc && !first)
			first = rc;
	}
	return first;
}
