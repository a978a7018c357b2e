/* pv_cmdline.c — the cairn.* boot keys from the kernel command line or a config file, with
 * the value checks (host:port, the sha256: pin, token length, the wipe list) in one place. */
#include "pv_cmdline.h"

#include "../../lib/netaddr.h"
#include "pv_util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/netaddr.h"

#define PV_WORD_MAX	1024

int pv_split_hostport(const char *s, char *host, size_t hmax, char *port, size_t pmax)
{
	return net_split_hostport(s, host, hmax, port, pmax, PV_DEFAULT_PORT);
}

static int set_pin(struct pv_boot *b, const char *val)
{
	const char *hex;

	if (strncasecmp(val, "sha256:", 7) != 0)
		return -EINVAL;
	hex = val + 7;
	if (strlen(hex) != PKI_PIN_HEX - 1 || strspn(hex, "0123456789abcdefABCDEF") != strlen(hex))
		return -EINVAL;
	for (int i = 0; hex[i]; i++)
		b->pin[i] = (char)tolower((unsigned char)hex[i]);
	b->pin[PKI_PIN_HEX - 1] = 0;
	return 0;
}

static int set_wipe(struct pv_boot *b, const char *val)
{
	const char *p = val;

	b->nwipe = 0;
	while (*p) {
		size_t n = strcspn(p, ",");

		if (n > 5 && strncmp(p, "/dev/", 5) == 0) {
			p += 5;
			n -= 5;
		}
		if (n >= PV_DEV_MAX || b->nwipe == PV_WIPE_MAX || memchr(p, '/', n))
			return -EINVAL;
		if (n) {
			memcpy(b->wipe[b->nwipe], p, n);
			b->wipe[b->nwipe++][n] = 0;
		}
		p += n;
		if (*p == ',')
			p++;
	}
	return 0;
}

int pv_boot_set(struct pv_boot *b, const char *key, const char *val, char *why, size_t len)
{
	int rc = 0;

	if (strcmp(key, "cairn.controller") == 0) {
		rc = pv_split_hostport(val, b->host, sizeof(b->host), b->port, sizeof(b->port));
	} else if (strcmp(key, "cairn.token") == 0) {
		if (!*val || strlen(val) >= sizeof(b->token) || strpbrk(val, " \t\"\\"))
			rc = -EINVAL;
		else
			pv_copy(b->token, sizeof(b->token), val);
	} else if (strcmp(key, "cairn.ca-hash") == 0) {
		rc = set_pin(b, val);
	} else if (strcmp(key, "cairn.wipe") == 0) {
		rc = set_wipe(b, val);
	} else {
		snprintf(why, len, "unknown key %s", key);
		return -ENOENT;
	}
	if (rc == -EINVAL) {
		if (strcmp(key, "cairn.ca-hash") == 0)
			snprintf(why, len, "bad %s (want sha256:<64 hex>)", key);
		else if (strcmp(key, "cairn.controller") == 0)
			snprintf(why, len, "bad %s (want HOST:PORT or [V6]:PORT)", key);
		else
			snprintf(why, len, "bad %s", key);
	}
	return rc;
}

/* One word key=value: cairn.* keys are applied, anything else ignored. */
static int apply_word(struct pv_boot *b, char *word, bool strict, char *why, size_t len)
{
	char *eq = strchr(word, '=');
	int rc;

	if (strncmp(word, "cairn.", 6) != 0)
		return 0;
	if (!eq) {
		snprintf(why, len, "%s has no value", word);
		return -EINVAL;
	}
	*eq = 0;
	rc = pv_boot_set(b, word, eq + 1, why, len);
	if (rc == -ENOENT && !strict)
		return 0;	/* a newer kernel line than this agent: ignore */
	return rc == -ENOENT ? -EINVAL : rc;
}

int pv_cmdline_parse(struct pv_boot *b, const char *text, char *why, size_t len)
{
	char word[PV_WORD_MAX];
	const char *p = text;

	while (*p) {
		size_t n = 0;
		bool quoted = false;
		int rc;

		while (*p == ' ' || *p == '\t' || *p == '\n')
			p++;
		if (!*p)
			break;
		for (; *p && (quoted || (*p != ' ' && *p != '\t' && *p != '\n')); p++) {
			if (*p == '"') {
				quoted = !quoted;
				continue;
			}
			if (n + 1 >= sizeof(word)) {
				snprintf(why, len, "a command-line word is longer than %d bytes",
					 PV_WORD_MAX - 1);
				return -EINVAL;
			}
			word[n++] = *p;
		}
		word[n] = 0;
		rc = apply_word(b, word, false, why, len);
		if (rc)
			return rc;
	}
	return 0;
}

int pv_cmdline_parse_conf(struct pv_boot *b, const char *text, char *why, size_t len)
{
	char line[PV_WORD_MAX];
	const char *p = text;
	int lineno = 0;

	while (*p) {
		size_t n = strcspn(p, "\n");
		char *s = line, *e;
		int rc;

		lineno++;
		if (n >= sizeof(line)) {
			snprintf(why, len, "line %d: too long", lineno);
			return -EINVAL;
		}
		memcpy(line, p, n);
		line[n] = 0;
		p += n + (p[n] == '\n');
		while (*s == ' ' || *s == '\t')
			s++;
		e = s + strlen(s);
		while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
			*--e = 0;
		if (!*s || *s == '#')
			continue;
		if (strncmp(s, "cairn.", 6) != 0 || !strchr(s, '=')) {
			snprintf(why, len, "line %d: expected cairn.KEY=VALUE", lineno);
			return -EINVAL;
		}
		rc = apply_word(b, s, true, why, len);
		if (rc) {
			size_t l = strlen(why);

			snprintf(why + l, len - l, " (line %d)", lineno);
			return rc;
		}
	}
	return 0;
}

int pv_boot_check_join(const struct pv_boot *b, char *why, size_t len)
{
	snprintf(why, len, "missing%s%s%s", b->host[0] ? "" : " cairn.controller",
		 b->token[0] ? "" : " cairn.token", b->pin[0] ? "" : " cairn.ca-hash");
	return b->host[0] && b->token[0] && b->pin[0] ? 0 : -EINVAL;
}

bool pv_boot_wipe_has(const struct pv_boot *b, const char *dev)
{
	for (int i = 0; i < b->nwipe; i++)
		if (strcmp(b->wipe[i], dev) == 0)
			return true;
	return false;
}
