/* ctl_boot.h — the controller's optional boot port: plain HTTP serving the PXE bundle
 * (xen, vmlinuz, initrd.img, ... from --boot-dir) and a boot.ipxe generated for this
 * cluster (controller address, boot join token, CA pin on the dom0 command line). */
#ifndef CAIRN_CTL_BOOT_H
#define CAIRN_CTL_BOOT_H

#include <stddef.h>

#include "../../lib/tls.h"

#define CTL_BOOT_SCRIPT_MAX	4096

/* The built-in template (firmware/pxe/boot.ipxe.in); <boot-dir>/boot.ipxe.in wins. */
extern const char ctl_boot_template[];

struct ctl_boot {
	const char *dir;		/* the PXE bundle */
	const char *state_dir;		/* holds boot.token */
	const char *controller;		/* cairn.controller=, or NULL: the Host header's host */
	int controller_port;		/* with that host */
	const char *xen_args, *dom0_args;
	const char *pin_hex;		/* the CA pin */
};

/* Fills tmpl's @BASE@, @XEN_ARGS@, @DOM0_ARGS@ and @CAIRN_ARGS@ into out[max].
 * token may be NULL (no cairn.token=). 0 or -ENOSPC. */
int ctl_boot_render(const struct ctl_boot *b, const char *tmpl, const char *base,
		    const char *controller, const char *token, char *out, size_t max);
/* Reads one request from c and answers it (GET /boot.ipxe or a bundle file). */
void ctl_boot_handle(const struct ctl_boot *b, struct tls_conn *c);

#endif
