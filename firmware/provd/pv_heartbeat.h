/* pv_heartbeat.h — the periodic report to the controller (POST /v1/heartbeat with the node
 * certificate): health, uptime, the S3 endpoint, the internal (node-to-node) address and
 * every disk with its size and free space; and what the controller answers (its view of
 * this node's state). */
#ifndef CAIRN_PV_HEARTBEAT_H
#define CAIRN_PV_HEARTBEAT_H

#include <stdbool.h>
#include <stddef.h>

#include "pv_disk.h"
#include "pv_state.h"

struct pv_hb_in {
	const struct pv_ident *id;
	const char *host, *port;		/* the controller */
	const struct pv_disks *disks;
	const char *s3_endpoint;
	const char *internal_addr;		/* "host:port"; NULL or "": not reported */
	const char *proc_root;			/* for uptime */
};

struct pv_hb_out {
	char state[32];				/* "up", "draining", ... */
	int heartbeat_s;			/* 0 when the reply did not say */
};

/* Sends one heartbeat. 0, -EPERM (403 node_removed: this node was removed), -EACCES (any
 * other refusal, logged), -EBADMSG (an unreadable reply) or -errno (unreachable). */
int pv_heartbeat(const struct pv_hb_in *in, struct pv_hb_out *out);
/* The heartbeat body (malloc'ed). */
int pv_heartbeat_body(const struct pv_hb_in *in, char **out, size_t *len);
/* The address this host reaches host:port from (the controller, so the address its peers
 * see too), as a URL or "host:port" wants it: "a.b.c.d" or "[v6]". 0 or -errno. */
int pv_source_addr(const char *host, const char *port, char *out, size_t max);

#endif
