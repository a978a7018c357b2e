/* config.c — the option table parser behind config.h: one code path for flags and
 * config-file lines, so both accept exactly the same names and values. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_LINE_MAX 4096

static const struct config_opt *find(const struct config_opt *opts, int n, const char *name,
				     size_t len)
{
	for (int i = 0; i < n; i++)
		if (strlen(opts[i].name) == len && memcmp(opts[i].name, name, len) == 0)
			return &opts[i];
	return NULL;
}

/* Stores one value; returns NULL or an error message. */
static const char *set(const struct config_opt *o, const char *val)
{
	char *end;
	long v;
	struct config_list *l;

	switch (o->type) {
	case CONFIG_STR:
		*(const char **)o->dst = val;
		return NULL;
	case CONFIG_FLAG:
		*(int *)o->dst = 1;
		return NULL;
	case CONFIG_LIST:
		l = o->dst;
		if (l->n == CONFIG_LIST_MAX)
			return "given too many times";
		l->v[l->n++] = val;
		return NULL;
	case CONFIG_INT:
		errno = 0;
		v = strtol(val, &end, 10);
		if (errno || !*val || *end)
			return "expects an integer";
		if (v < o->min || v > o->max)
			return "is out of range";
		*(long *)o->dst = v;
		return NULL;
	}
	return "has an unknown type";
}

int config_parse_args(const struct config_opt *opts, int nopts, int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *eq, *val, *err;
		const struct config_opt *o;

		if (strcmp(a, "--") == 0)
			return i + 1;
		if (strncmp(a, "--", 2) != 0)
			return i;
		a += 2;
		eq = strchr(a, '=');
		o = find(opts, nopts, a, eq ? (size_t)(eq - a) : strlen(a));
		if (!o) {
			fprintf(stderr, "unknown option --%s (see --help)\n", a);
			return -1;
		}
		if (o->type == CONFIG_FLAG) {
			val = "1";
		} else if (eq) {
			val = eq + 1;
		} else if (i + 1 < argc) {
			val = argv[++i];
		} else {
			fprintf(stderr, "option --%s needs a value (%s)\n", o->name, o->metavar);
			return -1;
		}
		err = set(o, val);
		if (err) {
			fprintf(stderr, "option --%s %s: %s\n", o->name, err, val);
			return -1;
		}
	}
	return i;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		*--e = 0;
	return s;
}

int config_parse_file(const struct config_opt *opts, int nopts, const char *path)
{
	char line[CONFIG_LINE_MAX];
	FILE *f = fopen(path, "re");
	int lineno = 0, rc = 0;

	if (!f) {
		fprintf(stderr, "%s: cannot open: %s\n", path, strerror(errno));
		return -1;
	}
	while (rc == 0 && fgets(line, sizeof(line), f)) {
		char *s = trim(line), *eq, *name, *val;
		const struct config_opt *o;
		const char *err;

		lineno++;
		if (!*s || *s == '#')
			continue;
		eq = strchr(s, '=');
		if (!eq) {
			fprintf(stderr, "%s:%d: expected name = value\n", path, lineno);
			rc = -1;
			break;
		}
		*eq = 0;
		name = trim(s);
		val = strdup(trim(eq + 1));
		o = find(opts, nopts, name, strlen(name));
		if (!val || !o) {
			fprintf(stderr, "%s:%d: unknown setting '%s'\n", path, lineno, name);
			free(val);
			rc = -1;
			break;
		}
		err = set(o, val);
		if (err) {
			fprintf(stderr, "%s:%d: %s %s: %s\n", path, lineno, name, err, val);
			rc = -1;
		}
		if (o->type != CONFIG_STR && o->type != CONFIG_LIST)
			free(val);
	}
	if (fclose(f) != 0 && rc == 0)
		rc = -1;
	return rc;
}

int config_parse_file_args(const struct config_opt *opts, int nopts, const char *path,
			   int argc, char **argv)
{
	const char **before = calloc((size_t)nopts, sizeof(*before));
	const char **file = calloc((size_t)nopts, sizeof(*file));
	int rc = before && file ? 0 : -1;

	for (int i = 0; !rc && i < nopts; i++)
		if (opts[i].type == CONFIG_STR)
			before[i] = *(const char **)opts[i].dst;
	if (!rc && config_parse_file(opts, nopts, path) < 0)
		rc = -1;
	for (int i = 0; !rc && i < nopts; i++)
		if (opts[i].type == CONFIG_STR && *(const char **)opts[i].dst != before[i])
			file[i] = *(const char **)opts[i].dst;	/* the file's strdup */
	if (!rc && config_parse_args(opts, nopts, argc, argv) < 0)
		rc = -1;
	for (int i = 0; !rc && i < nopts; i++)
		if (file[i] && *(const char **)opts[i].dst != file[i])
			free((char *)file[i]);
	free(before);
	free(file);
	return rc;
}

void config_usage(FILE *out, const struct config_opt *opts, int nopts)
{
	for (int i = 0; i < nopts; i++) {
		char flag[64];

		snprintf(flag, sizeof(flag), "--%s%s%s", opts[i].name, opts[i].metavar ? " " : "",
			 opts[i].metavar ? opts[i].metavar : "");
		fprintf(out, "  %-26s %s\n", flag, opts[i].help);
	}
}
