/* ctl_state.h — the controller's model of the cluster: join tokens and nodes, in memory,
 * made durable by an append-only journal (one JSON record per line, fsync'ed before the
 * caller replies). Owns the token and node rules; knows nothing of HTTP, TLS or keys. */
#ifndef CAIRN_CTL_STATE_H
#define CAIRN_CTL_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../lib/json.h"

#define CTL_NODES_MAX		4096
#define CTL_TOKENS_MAX		65536
#define CTL_ID_MAX		16		/* "node-0001", with NUL */
#define CTL_TOKEN_ID_HEX	16
#define CTL_TOKEN_SECRET_HEX	32
#define CTL_TOKEN_MAX		(5 + CTL_TOKEN_ID_HEX + 1 + CTL_TOKEN_SECRET_HEX + 1)
#define CTL_TOKEN_TTL_MAX_S	(30L * 86400)
#define CTL_TOKEN_USES_MAX	10000
#define CTL_CERT_MAX		4096		/* a PEM certificate (= PKI_PEM_MAX) */
#define CTL_DOWN_PERIODS	3		/* heartbeats missed before a node is down */
#define CTL_JOURNAL_LINE_MAX	(256 * 1024)
#define CTL_JOURNAL_TOKS_MAX	16384
#define CTL_BEAT_JSON_MAX	(32 * 1024)	/* a heartbeat's disks or health, normalized */

/* Stored states; `down` is never stored: an `up` node without a heartbeat for
 * CTL_DOWN_PERIODS periods reads as down. */
enum ctl_node_state { CTL_JOINING, CTL_UP, CTL_DOWN, CTL_DRAINING, CTL_GONE };

struct ctl_state;

/* Opens dir/journal.log (created if missing) and replays it; a torn last record is cut off.
 * heartbeat_s: the nodes' heartbeat period. 0, -EBADMSG (a whole record that does not
 * parse: the journal is damaged, nothing is changed), -errno. */
int ctl_state_open(const char *dir, int heartbeat_s, struct ctl_state **out);
void ctl_state_free(struct ctl_state *st);

/* A new join token valid ttl_s seconds for `uses` joins; the token text (its secret, shown
 * once) into token. 0, -EINVAL (ttl or uses out of range), -ENOSPC, -errno (journal). */
int ctl_token_new(struct ctl_state *st, int64_t ttl_s, int uses, int64_t now_ms,
		  char token[CTL_TOKEN_MAX], int64_t *expires_ms);

/* Signs the node's certificate (CN node_id, serial) into cert_pem[CTL_CERT_MAX]: the
 * caller's PKI. -EINVAL: the CSR is bad. */
typedef int (*ctl_sign_fn)(void *ud, const char *node_id, uint64_t serial, char *cert_pem);

struct ctl_join {
	const char *token;
	const char *machine_id, *hostname, *addr;
	const char *inventory;		/* normalized JSON object (ctl_inv_check) */
	const char *csr_hash;		/* hex SHA-256 of the CSR text */
	ctl_sign_fn sign;
	void *sign_ud;
};

/* Enrols a node: the token checked and one use consumed, a node id allocated, the
 * certificate signed, all in one journal record. A join retried with the same token,
 * machine_id and CSR while that node is still `joining` gets the same answer again.
 * -EACCES (bad token), -EKEYEXPIRED, -EKEYREVOKED (no uses left), -EEXIST (machine_id
 * enrolled and not gone), -ENOSPC, the sign function's error, -errno (journal). A failure
 * changes nothing. */
int ctl_join(struct ctl_state *st, const struct ctl_join *j, int64_t now_ms,
	     char node_id[CTL_ID_MAX], char cert_pem[CTL_CERT_MAX]);

/* What a heartbeat reports; NULL/-1 for what it leaves out. */
struct ctl_beat {
	const char *s3_endpoint;
	const char *health;		/* normalized JSON value */
	const char *disks;		/* normalized JSON array */
	int64_t uptime_s, capacity_bytes, free_bytes;
};

/* Records a heartbeat of node_id; its state after it into *state (joining/down become up).
 * -ENOENT (unknown node), -EIDRM (the node is gone), -errno (journal). */
int ctl_heartbeat(struct ctl_state *st, const char *node_id, const struct ctl_beat *b,
		  int64_t now_ms, enum ctl_node_state *state);
/* Admin actions: drain (-EIDRM when gone) and remove (idempotent). -ENOENT, -errno. */
int ctl_node_drain(struct ctl_state *st, const char *node_id, int64_t now_ms);
int ctl_node_remove(struct ctl_state *st, const char *node_id, int64_t now_ms);

/* Writes node node_id as JSON (docs/PROVISIONING.md "node") to w; -ENOENT. */
int ctl_node_json(struct ctl_state *st, const char *node_id, int64_t now_ms, struct json_w *w);
/* Writes {"nodes": [node, ...]} to w. */
void ctl_nodes_json(struct ctl_state *st, int64_t now_ms, struct json_w *w);

/* Inspection (tests, logs). */
int ctl_node_count(struct ctl_state *st);
int ctl_node_state(struct ctl_state *st, const char *node_id, int64_t now_ms,
		   enum ctl_node_state *state);
int ctl_token_uses(struct ctl_state *st, const char *token_id);	/* -ENOENT */
const char *ctl_state_name(enum ctl_node_state s);

#endif
