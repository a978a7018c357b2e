/* fuzz_cbucket.c — libFuzzer target for storagefs/cluster/cbucket.c: a peer's bucket log
 * (JSON). Every entry handed out must be one the log would take (a valid name, version
 * > 0); a log that parses must merge into a fresh log and write back as JSON that parses
 * to the same entries. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../storagefs/cluster/cbucket.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct acc {
	struct cbucket *log;
	int n;
};

static int take(void *ctx, const struct cbucket_ent *e)
{
	struct acc *a = ctx;
	size_t len = strnlen(e->name, sizeof(e->name));

	if (len == 0 || len > STORE_BUCKET_MAX || e->version == 0)
		abort();
	a->n++;
	if (a->log && cbucket_record(a->log, e) < 0)
		abort();
	return 0;
}

static char dir[64];

static int count(void *ctx, const struct cbucket_ent *e)
{
	(void)e;
	(*(int *)ctx)++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size ? size : 1), *out = malloc(CBUCKET_JSON_MAX);
	struct acc a = { 0 };
	int n, in_log = 0, back = 0;

	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "/tmp/fuzz-cbucket-XXXXXX");
		if (!mkdtemp(dir))
			abort();
	}
	if (!text || !out)
		goto out;
	memcpy(text, data, size);	/* exactly size bytes: ASan sees any overread */
	if (cbucket_parse(text, size, take, &a) != 0)
		goto out;
	/* A fresh log each time: the file from the last input is replaced. */
	{
		char path[128];

		snprintf(path, sizeof(path), "%s/buckets.json", dir);
		unlink(path);
	}
	if (cbucket_open(dir, NULL, &a.log))
		abort();
	a.n = 0;
	if (cbucket_parse(text, size, take, &a) != 0)
		abort();
	cbucket_each(a.log, count, &in_log);
	n = cbucket_json(a.log, out, CBUCKET_JSON_MAX);
	if (n < 0 || cbucket_parse(out, (size_t)n, count, &back) != 0 || back != in_log)
		abort();
	cbucket_free(a.log);
out:
	free(out);
	free(text);
	return 0;
}
