/* ctl_state.h — the controller's model of the cluster: join tokens, nodes and the versioned
 * cluster map (docs/CLUSTER.md) they make, in memory, made durable by an append-only journal
 * (one JSON record per line, fsync'ed before the caller replies). Owns the token, node and
 * map rules; knows nothing of HTTP, TLS or keys. */
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
#define CTL_ADDR_MAX		64		/* an internal_addr "host:port", with NUL */
#define CTL_ENDPOINT_MAX	256		/* an s3_endpoint, with NUL */
#define CTL_SEED_HEX		16		/* a node's placement seed: 64 bits */
#define CTL_WEIGHT_MOVE_PCT	10		/* a weight change the map follows: more than this */

/* A node's state as the map shows it. `down` is stored too: ctl_map_sweep() writes it when
 * an `up` node has sent no heartbeat for CTL_DOWN_PERIODS periods. */
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
	const char *s3_endpoint;	/* < CTL_ENDPOINT_MAX bytes */
	const char *internal_addr;	/* "host:port", < CTL_ADDR_MAX bytes */
	const char *health;		/* normalized JSON value */
	const char *disks;		/* normalized JSON array */
	int64_t uptime_s, capacity_bytes, free_bytes;
};

/* Records a heartbeat of node_id; its state after it into *state (joining/down become up).
 * When what the map shows of the node changes (its state, internal_addr, s3_endpoint, or
 * its weight by more than CTL_WEIGHT_MOVE_PCT percent) one journal record makes it durable
 * and the map version moves. -ENOENT (unknown node), -EIDRM (the node is gone), -errno
 * (journal). */
int ctl_heartbeat(struct ctl_state *st, const char *node_id, const struct ctl_beat *b,
		  int64_t now_ms, enum ctl_node_state *state);
/* Admin actions: drain (-EIDRM when gone) and remove (idempotent). -ENOENT, -errno. */
int ctl_node_drain(struct ctl_state *st, const char *node_id, int64_t now_ms);
int ctl_node_remove(struct ctl_state *st, const char *node_id, int64_t now_ms);

/* Writes node node_id as JSON (docs/PROVISIONING.md "node") to w; -ENOENT. */
int ctl_node_json(struct ctl_state *st, const char *node_id, struct json_w *w);
/* Writes {"nodes": [node, ...]} to w. */
void ctl_nodes_json(struct ctl_state *st, struct json_w *w);

/* ------------------------------------------------------------------ the map */

/* What the map says besides its nodes (the controller's identity has them). */
struct ctl_map_info {
	const char *cluster_id;
	int replicas, write_quorum;
};

/* Writes the map (docs/CLUSTER.md, GET /v1/map) to w; returns the version written. */
uint64_t ctl_map_json(struct ctl_state *st, const struct ctl_map_info *mi, struct json_w *w);
uint64_t ctl_map_version(struct ctl_state *st);
/* Waits until the map version is above `since`, at most timeout_ms. 0 (it is), -ETIMEDOUT,
 * or -ECANCELED (ctl_map_close: the controller is stopping). A `since` above the version
 * (a node that saw a newer map: this state was restored from an older copy) waits too:
 * nodes never take an older map, so answering would only make them ask again at once. */
int ctl_map_wait(struct ctl_state *st, uint64_t since, int64_t timeout_ms);
/* Ends every ctl_map_wait now and from now on (-ECANCELED). */
void ctl_map_close(struct ctl_state *st);
/* Writes `down` for every `up` node silent for more than CTL_DOWN_PERIODS heartbeat periods
 * at now_ms (a node not heard from since the state was opened is timed from the first
 * sweep: a restart gives every node its full periods). Returns how many went down, or
 * -errno (journal; the rest wait for the next sweep). The controller calls it each second. */
int ctl_map_sweep(struct ctl_state *st, int64_t now_ms);

/* What the map shows of one node (inspection: tests, logs). */
struct ctl_map_node {
	enum ctl_node_state state;
	char seed[CTL_SEED_HEX + 1];
	int64_t weight;
	char internal_addr[CTL_ADDR_MAX];
};
int ctl_map_node(struct ctl_state *st, const char *node_id, struct ctl_map_node *out);

/* Inspection (tests, logs). */
int ctl_node_count(struct ctl_state *st);
int ctl_node_state(struct ctl_state *st, const char *node_id, enum ctl_node_state *state);
int ctl_token_uses(struct ctl_state *st, const char *token_id);	/* -ENOENT */
const char *ctl_state_name(enum ctl_node_state s);

#endif
