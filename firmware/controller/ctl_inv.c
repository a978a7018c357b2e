/* ctl_inv.c — the inventory rules: required fields and their types, string lengths, and
 * the NIC and disk counts. Unknown fields are kept (a newer agent may send more). */
#include "ctl_inv.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "ctl_json.h"

/* A string member: required or not; -EINVAL when present but not a string of 0..255. */
static int str_field(const char *text, const struct json_tok *toks, int obj, const char *key,
		     int required, char out[256])
{
	int i = json_find(text, toks, obj, key);

	out[0] = 0;
	if (i < 0)
		return required ? -EINVAL : 0;
	if (json_get_str(text, toks, i, out, 256) != 0)
		return -EINVAL;
	return required && !out[0] ? -EINVAL : 0;
}

static int int_field(const char *text, const struct json_tok *toks, int obj, const char *key,
		     int required, int64_t min, int64_t max)
{
	int64_t v;
	int i = json_find(text, toks, obj, key);

	if (i < 0)
		return required ? -EINVAL : 0;
	if (json_get_int(text, toks, i, &v) != 0 || v < min || v > max)
		return -EINVAL;
	return 0;
}

/* One NIC: name and mac, both required strings. */
static int nic_ok(const char *text, const struct json_tok *toks, int e)
{
	char s[256];

	return str_field(text, toks, e, "name", 1, s) == 0 &&
	       str_field(text, toks, e, "mac", 1, s) == 0;
}

/* One disk: name and size_bytes required; model, serial (strings), rotational (bool). */
static int disk_ok(const char *text, const struct json_tok *toks, int e)
{
	char s[256];
	bool b;
	int r = json_find(text, toks, e, "rotational");

	return str_field(text, toks, e, "name", 1, s) == 0 &&
	       int_field(text, toks, e, "size_bytes", 1, 0, INT64_MAX) == 0 &&
	       str_field(text, toks, e, "model", 0, s) == 0 &&
	       str_field(text, toks, e, "serial", 0, s) == 0 &&
	       (r < 0 || json_get_bool(text, toks, r, &b) == 0);
}

/* The array member key: at most max objects, each passing ok(). */
static int list_field(const char *text, const struct json_tok *toks, int obj, const char *key,
		      int max, int (*ok)(const char *, const struct json_tok *, int))
{
	int arr = json_find(text, toks, obj, key);

	if (arr < 0 || toks[arr].type != JSON_ARR || toks[arr].size > max)
		return -EINVAL;
	for (int k = 0; k < toks[arr].size; k++) {
		int e = json_elem(toks, arr, k);

		if (e < 0 || toks[e].type != JSON_OBJ || !ok(text, toks, e))
			return -EINVAL;
	}
	return 0;
}

int ctl_inv_check(const char *text, const struct json_tok *toks, int inv, char **json,
		  char machine_id[256], char hostname[256], const char **why)
{
	char s[256];
	int err;

	*json = NULL;
	*why = "inventory is not an object";
	if (toks[inv].type != JSON_OBJ)
		return -EINVAL;
	*why = "machine_id: missing, empty or longer than 255 bytes";
	if (str_field(text, toks, inv, "machine_id", 1, machine_id) != 0)
		return -EINVAL;
	*why = "hostname, dmi_serial or cpu_model: not a string of at most 255 bytes";
	if (str_field(text, toks, inv, "hostname", 0, hostname) != 0 ||
	    str_field(text, toks, inv, "dmi_serial", 0, s) != 0 ||
	    str_field(text, toks, inv, "cpu_model", 0, s) != 0)
		return -EINVAL;
	*why = "cpus (1..65536) or mem_bytes (>= 1): missing or out of range";
	if (int_field(text, toks, inv, "cpus", 1, 1, 65536) != 0 ||
	    int_field(text, toks, inv, "mem_bytes", 1, 1, INT64_MAX) != 0)
		return -EINVAL;
	*why = "nics: missing, more than 64, or an entry without name and mac";
	if (list_field(text, toks, inv, "nics", CTL_INV_NICS_MAX, nic_ok) != 0)
		return -EINVAL;
	*why = "disks: missing, more than 256, or an entry without name and size_bytes";
	if (list_field(text, toks, inv, "disks", CTL_INV_DISKS_MAX, disk_ok) != 0)
		return -EINVAL;
	*why = "a string longer than 255 bytes, a non-integer number, or too large";
	err = ctl_json_dup(text, toks, inv, CTL_INV_JSON_MAX, json);
	if (err)
		return -EINVAL;
	*why = NULL;
	return 0;
}
