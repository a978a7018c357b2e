/* ctl_json.h — moving JSON values the controller does not interpret (a node's inventory,
 * its disks and health) from a request into the journal and from the journal into replies:
 * a checked, normalizing copy through lib/json's writer. */
#ifndef CAIRN_CTL_JSON_H
#define CAIRN_CTL_JSON_H

#include <stddef.h>

#include "../../lib/json.h"

#define CTL_JSON_STR_MAX	256	/* any copied string, with its NUL */
#define CTL_JSON_DEPTH_MAX	8	/* containers nested in a copied value */

/* Writes the value toks[i] of text to w: strings unescaped and re-escaped, numbers must be
 * integers, at most CTL_JSON_DEPTH_MAX containers deep. 0, -EINVAL (a non-integer
 * number, too deep) or -ENAMETOOLONG (a string too long). */
int ctl_json_copy(struct json_w *w, const char *text, const struct json_tok *toks, int i);
/* Parses json (one value, made by ctl_json_copy) and copies it to w. 0 or -errno. */
int ctl_json_embed(struct json_w *w, const char *json);
/* Copies toks[i] into a new malloc'ed NUL-terminated string of at most max bytes
 * (*out; free() it). 0, -E2BIG (longer than max) or an error of ctl_json_copy. */
int ctl_json_dup(const char *text, const struct json_tok *toks, int i, size_t max, char **out);
/* Parses text[0..len) into a malloc'ed token array (*toks; free() it). Returns the token
 * count or -EINVAL/-ENOSPC/-ENOMEM. */
int ctl_json_parse(const char *text, size_t len, int max_toks, struct json_tok **toks);
/* Copies s into out[max] for a log line: bytes outside [A-Za-z0-9._:@/+-] become '?',
 * and "-" stands for an empty string. Returns out. */
const char *ctl_log_safe(const char *s, char *out, size_t max);

#endif
