/* config.h — a daemon's options as one typed table: parsed from the command line
 * (--name value, --name=value) and from "name = value" config files alike, with ranges,
 * defaults in the table, and --help generated from it. */
#ifndef CAIRN_CONFIG_H
#define CAIRN_CONFIG_H

#include <stdio.h>

#define CONFIG_LIST_MAX 64

enum config_type { CONFIG_STR, CONFIG_INT, CONFIG_LIST, CONFIG_FLAG };

struct config_list {
	const char *v[CONFIG_LIST_MAX];
	int n;
};

struct config_opt {
	const char *name;	/* long option and config-file key */
	enum config_type type;
	void *dst;		/* const char **, long *, struct config_list *, int * */
	long min, max;		/* CONFIG_INT range */
	const char *metavar;
	const char *help;
};

/* Parses argv (argv[0] skipped). Returns the index of the first non-option argument, or
 * -1 after printing a message to stderr. "--help" is not handled here. */
int config_parse_args(const struct config_opt *opts, int nopts, int argc, char **argv);
/* Parses a file of "name = value" lines ('#' comments). Strings are kept (strdup'd, owned
 * by the process). Returns 0 or -1 after printing "file:line: message" to stderr. */
int config_parse_file(const struct config_opt *opts, int nopts, const char *path);
/* The file, then argv again, so that flags override the file (lists from both add up); a
 * string the file set and a flag then replaced is freed. 0 or -1 (a message printed). */
int config_parse_file_args(const struct config_opt *opts, int nopts, const char *path,
			   int argc, char **argv);
void config_usage(FILE *out, const struct config_opt *opts, int nopts);

#endif
