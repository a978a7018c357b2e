/* fuzz_cmap.c — libFuzzer target for storagefs/cluster/cmap.c: the controller's map JSON.
 * A map that parses must write back as JSON that parses to the same map, and rank every
 * node exactly once for a key, the draining ones last. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../storagefs/cluster/cmap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_owners(const struct cmap *m)
{
	int o[CMAP_NODES_MAX], seen[CMAP_NODES_MAX] = { 0 }, n;
	int draining = 0;

	n = cmap_owners(m, "bucket", "some/key", 8, o, CMAP_NODES_MAX);
	if (n != m->nnodes)
		abort();
	for (int i = 0; i < n; i++) {
		if (o[i] < 0 || o[i] >= n || seen[o[i]]++)
			abort();
		if (m->nodes[o[i]].state == CMAP_DRAINING)
			draining = 1;
		else if (draining)
			abort();	/* a live node after a draining one */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cmap *m = malloc(sizeof(*m)), *back = malloc(sizeof(*back));
	char *text = malloc(size ? size : 1), *out = malloc(CMAP_JSON_MAX);
	int n;

	if (!m || !back || !text || !out)
		goto out;
	memcpy(text, data, size);	/* exactly size bytes: ASan sees any overread */
	if (cmap_parse(text, size, m) != 0)
		goto out;
	check_owners(m);
	n = cmap_json(m, out, CMAP_JSON_MAX);
	if (n < 0 || cmap_parse(out, (size_t)n, back) != 0 || memcmp(m, back, sizeof(*m)) != 0)
		abort();
out:
	free(out);
	free(text);
	free(back);
	free(m);
	return 0;
}
