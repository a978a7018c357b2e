/* uri.h — percent-decoding and AWS-style percent-encoding, and query-string parsing in
 * place (parameters point into the query; values stay encoded until uri_decode). */
#ifndef CAIRN_URI_H
#define CAIRN_URI_H

#include <stdbool.h>
#include <stddef.h>

/* Decodes %XX (and '+' as space when plus_is_space). Returns the decoded length, or -1 on
 * a malformed escape or when out_max is too small. out is not NUL-terminated. */
int uri_decode(const char *in, size_t len, char *out, size_t out_max, bool plus_is_space);

/* Encodes every byte except A-Z a-z 0-9 - . _ ~ (and '/' unless encode_slash) as %XX with
 * upper-case hex, as SigV4 requires. Returns the full encoded length; writes at most
 * out_max bytes (callers size out as 3*len). Not NUL-terminated. */
size_t uri_encode(const char *in, size_t len, char *out, size_t out_max, bool encode_slash);

struct uri_param {
	const char *name;	/* raw, still encoded */
	size_t name_len;
	const char *value;	/* raw, still encoded; "" when the parameter has no '=' */
	size_t value_len;
	bool has_value;
};

#define URI_MAX_PARAMS 64
/* Splits q on '&'. Returns the number of parameters or -1 if more than max. */
int uri_query_parse(const char *q, size_t len, struct uri_param *params, int max);
/* Finds a parameter by its exact (raw) name; NULL when absent. */
const struct uri_param *uri_query_get(const struct uri_param *params, int n, const char *name);

#endif
