/* fuzz_xml.c — libFuzzer target for the S3 request-body XML parser. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int sink(void *ctx, const char *name, const char *parent, int depth, char *text,
		size_t len)
{
	/* Touch every byte so ASan sees out-of-bounds text. */
	size_t *sum = ctx;
	for (size_t i = 0; i < len; i++)
		*sum += (unsigned char)text[i];
	*sum += strlen(name) + strlen(parent) + (size_t)depth;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1);
	size_t sum = 0;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	xml_parse(buf, size, sink, &sum);
	free(buf);
	return 0;
}
