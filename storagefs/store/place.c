/* place.c — weighted rendezvous hashing: each item scores -weight / ln(u) where u in (0,1)
 * is a full-avalanche hash of (name, item seed); items sorted by descending score. With
 * equal weights this is the plain HRW order of format 1 (the score is monotone in u). */
#include "place.h"

#include <math.h>
#include <string.h>

#define FNV_OFFSET	0xcbf29ce484222325ULL
#define FNV_PRIME	0x100000001b3ULL

static uint64_t fnv1a(uint64_t h, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * FNV_PRIME;
	return h;
}

/* MurmurHash3's finalizer: seeds that differ in one bit still rank items independently. */
static uint64_t fmix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

uint64_t place_hash(const char *bucket, const void *key, size_t key_len)
{
	return fnv1a(fnv1a(FNV_OFFSET, bucket, strlen(bucket) + 1), key, key_len);
}

static double score(uint64_t h, const struct place_item *it)
{
	uint64_t x = fmix64(h ^ fmix64(it->seed));
	double u = ((double)(x >> 11) + 0.5) / 9007199254740992.0;	/* (0,1), 53 bits */

	return -(double)(it->weight ? it->weight : 1) / log(u);
}

void place_rank(uint64_t h, const struct place_item *items, int n, int *order)
{
	double sc[PLACE_MAX];

	n = n < PLACE_MAX ? n : PLACE_MAX;

	/* Insertion sort: a handful of items. Ties (equal hashes) keep index order. */
	for (int i = 0; i < n; i++) {
		double s = score(h, &items[i]);
		int j = i;

		while (j > 0 && sc[j - 1] < s) {
			sc[j] = sc[j - 1];
			order[j] = order[j - 1];
			j--;
		}
		sc[j] = s;
		order[j] = i;
	}
}
