/* place.h — placement as a pure function: weighted rendezvous (HRW) hashing of an object
 * name over a set of failure domains (today the node's disks; later nodes, then the disks
 * of each node, ranked by the same function). No state, no I/O: unit-tested directly. */
#ifndef CAIRN_STORE_PLACE_H
#define CAIRN_STORE_PLACE_H

#include <stddef.h>
#include <stdint.h>

#define PLACE_MAX	64		/* items ranked at once */

/* One candidate: a stable random seed (its id) and a weight (its capacity; >= 1). */
struct place_item {
	uint64_t seed;
	uint64_t weight;
};

/* The name's hash: FNV-1a-64 of bucket || 0x00 || key. */
uint64_t place_hash(const char *bucket, const void *key, size_t key_len);
/* Ranks n <= PLACE_MAX items for hash h, best first, into order[n] (indices into items). Adding an
 * item only moves names to it; removing one only moves the names it held. */
void place_rank(uint64_t h, const struct place_item *items, int n, int *order);

#endif
