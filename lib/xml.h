/* xml.h — just enough XML for S3: escaping text for responses, and a strict, small,
 * in-place parser for request bodies (CompleteMultipartUpload, Delete,
 * CreateBucketConfiguration) that reports each leaf element's text with its parent. */
#ifndef CAIRN_XML_H
#define CAIRN_XML_H

#include <stddef.h>

#define XML_MAX_DEPTH 16
#define XML_MAX_NAME 64

/* Writes text escaped for XML character data into out (at most out_max bytes, which
 * should be 6 * len to be safe). Control characters become &#xN;. Returns bytes written. */
size_t xml_escape(const char *in, size_t len, char *out, size_t out_max);

/* Called for every element that closes: its local name (namespace prefix dropped), its
 * parent's local name ("" at the root), its depth (root = 1) and its decoded text (only
 * character data directly inside it, entities resolved, NUL-terminated in place).
 * Return non-zero to stop; that value is returned by xml_parse. */
typedef int (*xml_elem_fn)(void *ctx, const char *name, const char *parent, int depth,
			   char *text, size_t text_len);

/* Parses buf[0..len) in place (the buffer is modified: text is decoded where it lies;
 * buf must have room for one more byte, buf[len]). Returns 0, a callback's non-zero value,
 * or -1 for malformed XML (mismatched tags, bad entities, depth > XML_MAX_DEPTH, DOCTYPE). */
int xml_parse(char *buf, size_t len, xml_elem_fn fn, void *ctx);

#endif
