/* ctl_boot.c — the boot port: boot.ipxe rendered per request (so it names the server the
 * way the booting machine reached it) and the bundle's files mapped and sent whole. */
#include "ctl_boot.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../lib/http1.h"
#include "../../lib/log.h"
#include "ctl_file.h"
#include "ctl_json.h"

/* Kept byte for byte equal to firmware/pxe/boot.ipxe.in (a unit test compares them). */
const char ctl_boot_template[] =
	"#!ipxe\n"
	"# Cairn node network boot, served by cairn-controller as /boot.ipxe on its boot port.\n"
	"# BIOS iPXE multiboot-loads Xen, then dom0's kernel (with its command line) and the\n"
	"# initramfs as modules; Xen drops the first word of a module's command line (its name).\n"
	"# The controller fills in the placeholders: see firmware/pxe/README.md.\n"
	"kernel @BASE@/xen @XEN_ARGS@\n"
	"module @BASE@/vmlinuz @DOM0_ARGS@ @CAIRN_ARGS@\n"
	"module @BASE@/initrd.img\n"
	"boot\n";

struct subst {
	const char *key, *val;
};

int ctl_boot_render(const struct ctl_boot *b, const char *tmpl, const char *base,
		    const char *controller, const char *token, char *out, size_t max)
{
	char cairn[512];
	size_t len = 0;
	int n;

	n = snprintf(cairn, sizeof(cairn), "cairn.controller=%s%s%s cairn.ca-hash=sha256:%s",
		     controller, token ? " cairn.token=" : "", token ? token : "", b->pin_hex);
	if (n < 0 || (size_t)n >= sizeof(cairn))
		return -ENOSPC;
	const struct subst subs[] = {
		{ "@BASE@", base }, { "@XEN_ARGS@", b->xen_args },
		{ "@DOM0_ARGS@", b->dom0_args }, { "@CAIRN_ARGS@", cairn },
	};
	for (const char *p = tmpl; *p; ) {
		const char *v = NULL;
		size_t klen = 1, vlen;

		for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]) && !v; i++) {
			klen = strlen(subs[i].key);
			if (strncmp(p, subs[i].key, klen) == 0)
				v = subs[i].val;
		}
		if (!v) {
			v = p;
			klen = 1;
		}
		vlen = v == p ? 1 : strlen(v);
		if (len + vlen >= max)
			return -ENOSPC;
		memcpy(out + len, v, vlen);
		len += vlen;
		p += klen;
	}
	out[len] = 0;
	return 0;
}

/* The Host header's value when it is a plain host[:port]; else "". http1 parses the head
 * in place (a field's ':' and each CR become NULs), so both "host: v" and "host\0 v" are
 * accepted; the scan stops at the empty line ending the head. */
static void host_header(const char *head, char out[256])
{
	const char *end = head + HTTP1_HEAD_MAX, *p = head, *nl;
	size_t n;

	out[0] = 0;
	while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL && nl + 6 < end) {
		p = nl + 1;
		if (*p == '\0' || *p == '\r')
			return;
		if (strncasecmp(p, "host", 4) != 0 || (p[4] != ':' && p[4] != '\0'))
			continue;
		p += 5;
		p += strspn(p, " \t");
		n = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]");
		if (n > 0 && n < 256 && (p[n] == '\0' || p[n] == '\r' || p[n] == ' ')) {
			memcpy(out, p, n);
			out[n] = 0;
		}
		return;
	}
}

/* The host part of "host[:port]" or "[v6][:port]" (brackets kept) into out. */
static void host_only(const char *hostport, char out[256])
{
	const char *end = hostport[0] == '[' ? strchr(hostport, ']') : strchr(hostport, ':');
	size_t n = strlen(hostport);

	if (end)
		n = (size_t)(end - hostport) + (hostport[0] == '[');
	snprintf(out, 256, "%.*s", (int)n, hostport);
}

static void serve_script(const struct ctl_boot *b, struct tls_conn *c,
			 const struct http1_srv_req *r, const char *addr)
{
	char tmpl[CTL_BOOT_SCRIPT_MAX], script[CTL_BOOT_SCRIPT_MAX], token[128], host[256];
	char hostonly[256], base[300], ctl[300];
	ssize_t tl;
	char *nl;

	host_header(r->head, host);
	if (!host[0]) {
		http1_reply(c, 400, "text/plain", "Host header required\n", 21);
		return;
	}
	if (!b->dir || ctl_file_read(b->dir, "boot.ipxe.in", tmpl, sizeof(tmpl)) < 0)
		snprintf(tmpl, sizeof(tmpl), "%s", ctl_boot_template);
	tl = ctl_file_read(b->state_dir, "boot.token", token, sizeof(token));
	if (tl > 0 && (nl = strchr(token, '\n')) != NULL)
		*nl = 0;
	host_only(host, hostonly);
	snprintf(base, sizeof(base), "http://%s", host);
	if (b->controller)
		snprintf(ctl, sizeof(ctl), "%s", b->controller);
	else
		snprintf(ctl, sizeof(ctl), "%s:%d", hostonly, b->controller_port);
	if (ctl_boot_render(b, tmpl, base, ctl, tl > 0 && token[0] ? token : NULL, script,
			    sizeof(script))) {
		http1_reply(c, 500, "text/plain", "boot script too long\n", 21);
		return;
	}
	log_info("ctl_boot_script addr=%s controller=%s token=%s", addr, ctl,
		 tl > 0 && token[0] ? "yes" : "none");
	http1_reply(c, 200, "text/plain", script, strlen(script));
}

static bool bundle_name_ok(const char *name)
{
	size_t n = strlen(name);

	return n > 0 && n < NAME_MAX && name[0] != '.' &&
	       strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

static void serve_file(const struct ctl_boot *b, struct tls_conn *c, const char *name,
		       const char *addr)
{
	char path[PATH_MAX];
	struct stat sb;
	void *map = NULL;
	int fd = -1, err;

	if (!b->dir || !bundle_name_ok(name) ||
	    snprintf(path, sizeof(path), "%s/%s", b->dir, name) >= (int)sizeof(path) ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &sb) < 0 ||
	    !S_ISREG(sb.st_mode)) {
		http1_reply(c, 404, "text/plain", "not found\n", 10);
		goto out;
	}
	if (sb.st_size > 0) {
		map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map == MAP_FAILED) {
			map = NULL;
			http1_reply(c, 500, "text/plain", "cannot map the file\n", 20);
			goto out;
		}
	}
	err = http1_reply(c, 200, "application/octet-stream", map, (size_t)sb.st_size);
	log_info("ctl_boot_file name=%s bytes=%lld addr=%s err=%d", name, (long long)sb.st_size,
		 addr, err);
out:
	if (map)
		munmap(map, (size_t)sb.st_size);
	if (fd >= 0)
		close(fd);
}

void ctl_boot_handle(const struct ctl_boot *b, struct tls_conn *c)
{
	struct http1_srv_req *r = calloc(1, sizeof(*r));
	char addr[64];

	snprintf(addr, sizeof(addr), "%s", tls_peer_addr(c));
	if (!r)
		return;
	if (http1_read_request(c, r) != 0) {
		log_warnx("ctl_boot_bad_request addr=%s", addr);
		http1_reply(c, 400, "text/plain", "bad request\n", 12);
	} else if (strcmp(r->method, "GET") != 0) {
		http1_reply(c, 405, "text/plain", "GET only\n", 9);
	} else if (strcmp(r->path, "/boot.ipxe") == 0) {
		serve_script(b, c, r, addr);
	} else {
		serve_file(b, c, r->path + 1, addr);
	}
	http1_srv_req_fini(r);
	free(r);
}
