/* ctl_api.h — the controller's HTTPS API (docs/PROVISIONING.md, "Endpoints"): one request
 * per connection, routed by a table, authenticated (join token, node certificate, admin
 * bearer), answered in JSON. Errors become an HTTP status and code here and nowhere else. */
#ifndef CAIRN_CTL_API_H
#define CAIRN_CTL_API_H

#include <stdatomic.h>

#include "../../lib/tls.h"
#include "ctl_state.h"

#define CTL_BODY_MAX		(64 * 1024)	/* any request body */
#define CTL_REPLY_MAX		(1024 * 1024)	/* the node list, at most */
#define CTL_CERT_DAYS		3650
#define CTL_CLUSTER_ID_HEX	32
#define CTL_ADMIN_TOKEN_HEX	64
/* Long polls of the map held at once: the controller serves CTL_MAX_CONNS (32) connections,
 * and joins, heartbeats and admin calls keep the rest. A poll beyond it: 503 busy. */
#define CTL_MAP_POLLERS_MAX	24
#define CTL_MAP_POLL_S		30		/* how long a long poll is held, by default */

/* What the handlers share; read-only after start but for the state (which locks) and the
 * count of long polls held. */
struct ctl_api {
	struct ctl_state *st;
	const char *state_dir;			/* where boot.token is written */
	const char *ca_key_pem, *ca_cert_pem;
	const char *admin_token;
	const char *cluster_id, *access_key, *secret_key;
	int replicas, write_quorum, heartbeat_s;
	int map_poll_ms;			/* how long a long poll is held */
	atomic_int pollers;			/* long polls held now */
};

/* Reads one request from c, answers it, logs it. Does not close c. */
void ctl_api_handle(struct ctl_api *api, struct tls_conn *c);

#endif
