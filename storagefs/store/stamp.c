/* stamp.c — the node's version clock handed to a cluster coordinator (storagefs/cluster),
 * which stamps a write once and replicates it to other nodes with that version. */
#include "store_int.h"

uint64_t store_stamp(struct store *st, int64_t *mtime_ms)
{
	uint64_t v = store_version(st);

	*mtime_ms = store_version_ms(v);
	return v;
}
