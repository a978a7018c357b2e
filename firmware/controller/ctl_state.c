/* ctl_state.c — tokens, nodes and the cluster map in memory, and the journal that makes
 * them durable. Every change is first written as one journal record (append, fsync), then
 * applied by the same code that replays the journal at start, so memory is always what a
 * restart would rebuild; the map version is the count of map records applied, so it is too. */
#include "ctl_state.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../lib/hash.h"
#include "../../lib/log.h"
#include "ctl_file.h"
#include "../../lib/fileio.h"
#include "ctl_json.h"

struct ctl_token {
	char id[CTL_TOKEN_ID_HEX + 1];
	char hash[2 * SHA256_LEN + 1];		/* of the secret's hex text */
	int64_t expires_ms;
	int uses;				/* left */
};

struct ctl_node {
	char id[CTL_ID_MAX];
	enum ctl_node_state state;		/* as stored: never CTL_DOWN */
	char machine_id[256], hostname[256], addr[64];
	char token_id[CTL_TOKEN_ID_HEX + 1];
	char csr_hash[2 * SHA256_LEN + 1];
	char seed[CTL_SEED_HEX + 1];		/* made at join, never changed */
	uint64_t cert_serial;
	int64_t joined_ms, last_seen_ms;
	char *inventory, *cert;			/* journaled */
	/* What the map shows of it besides its state, journaled by state records. */
	int64_t weight;				/* GiB, >= 1 */
	char internal_addr[CTL_ADDR_MAX], s3_endpoint[CTL_ENDPOINT_MAX];
	/* From the last heartbeat, in memory only (the next heartbeat brings them back). */
	char *health, *disks;
	int64_t uptime_s, capacity_bytes, free_bytes;
	bool heard;				/* a heartbeat since the state was opened */
};

struct ctl_state {
	pthread_mutex_t mu;
	pthread_cond_t changed;			/* the map version moved, or closing */
	uint64_t version;			/* the map's: map records applied */
	bool closing;
	int64_t sweep_from_ms;			/* the first sweep: silence counts from there */
	int jfd;
	off_t jsize;				/* the journal's length after its last record */
	struct ctl_node *nodes;
	int nnodes, ncap;
	struct ctl_token *tokens;
	int ntokens, tcap;
	uint64_t next_num;			/* the next node number */
	int heartbeat_s;
	char *line;				/* a record being written, CTL_JOURNAL_LINE_MAX */
	struct json_tok *toks;			/* a record being applied */
};

static const char *const state_names[] = { "joining", "up", "down", "draining", "gone" };

const char *ctl_state_name(enum ctl_node_state s)
{
	return (unsigned)s < 5 ? state_names[s] : "?";
}

static int state_parse(const char *s, enum ctl_node_state *out)
{
	for (int i = 0; i < 5; i++) {
		if (strcmp(s, state_names[i]) == 0) {
			*out = (enum ctl_node_state)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* ------------------------------------------------------------------ lookups */

static struct ctl_token *token_find(struct ctl_state *st, const char *id)
{
	for (int i = 0; i < st->ntokens; i++)
		if (strcmp(st->tokens[i].id, id) == 0)
			return &st->tokens[i];
	return NULL;
}

static struct ctl_node *node_find(struct ctl_state *st, const char *id)
{
	for (int i = 0; i < st->nnodes; i++)
		if (strcmp(st->nodes[i].id, id) == 0)
			return &st->nodes[i];
	return NULL;
}

/* The enrolled (not gone) node with this machine id. */
static struct ctl_node *node_find_machine(struct ctl_state *st, const char *machine_id)
{
	for (int i = 0; i < st->nnodes; i++)
		if (st->nodes[i].state != CTL_GONE &&
		    strcmp(st->nodes[i].machine_id, machine_id) == 0)
			return &st->nodes[i];
	return NULL;
}

static bool is_hex(const char *s, size_t len)
{
	if (strlen(s) != len)
		return false;
	for (size_t i = 0; i < len; i++)
		if (hex_value(s[i]) < 0 || (s[i] >= 'A' && s[i] <= 'F'))
			return false;
	return true;
}

/* ------------------------------------------------------------------ map rules */

#define GIB	(1LL << 30)

/* A capacity in bytes as a map weight: GiB rounded to the nearest, at least 1. */
static int64_t weight_of(int64_t bytes)
{
	int64_t g = bytes / GIB + (bytes % GIB >= GIB / 2);

	return g < 1 ? 1 : g;
}

/* Whether a new weight is far enough from the map's to be worth a new map version: small
 * changes (a filesystem's size after mkfs, a disk filling up) are not. */
static bool weight_moved(int64_t old, int64_t now)
{
	int64_t d = now > old ? now - old : old - now;

	return d * 100 > old * CTL_WEIGHT_MOVE_PCT;
}

/* The join's weight: the inventory's disk sizes summed (saturating), as a weight. */
static int64_t inventory_weight(const char *text, const struct json_tok *t, int inv)
{
	int d = json_find(text, t, inv, "disks");
	int64_t sum = 0, size;

	for (int i = 0; d >= 0 && t[d].type == JSON_ARR && i < t[d].size; i++)
		if (json_int(text, t, json_elem(t, d, i), "size_bytes", &size) == 0 && size > 0)
			sum = size > INT64_MAX - sum ? INT64_MAX : sum + size;
	return weight_of(sum);
}

/* Nodes journaled before seeds existed get one derived from their id: the first 8 bytes of
 * SHA-256("cairn-node-seed:" id), stable across replays and distinct per node. */
static void seed_of_id(const char *id, char seed[CTL_SEED_HEX + 1])
{
	unsigned char d[SHA256_LEN];
	char text[64];
	int n = snprintf(text, sizeof(text), "cairn-node-seed:%s", id);

	sha256(text, (size_t)n, d);
	hex_encode(d, CTL_SEED_HEX / 2, seed);
}

static bool seed_taken(const struct ctl_state *st, const char *seed)
{
	for (int i = 0; i < st->nnodes; i++)
		if (strcmp(st->nodes[i].seed, seed) == 0)
			return true;
	return false;
}

/* ------------------------------------------------------------------ applying records */

static int apply_token(struct ctl_state *st, const char *text, const struct json_tok *t)
{
	struct ctl_token tok = { 0 };
	int64_t uses;

	if (json_str(text, t, 0, "id", tok.id, sizeof(tok.id)) ||
	    json_str(text, t, 0, "hash", tok.hash, sizeof(tok.hash)) ||
	    json_int(text, t, 0, "expires_ms", &tok.expires_ms) ||
	    json_int(text, t, 0, "uses", &uses) || uses < 0 || uses > CTL_TOKEN_USES_MAX ||
	    !is_hex(tok.id, CTL_TOKEN_ID_HEX) || !is_hex(tok.hash, 2 * SHA256_LEN) ||
	    token_find(st, tok.id))
		return -EBADMSG;
	if (st->ntokens == st->tcap) {
		int cap = st->tcap ? 2 * st->tcap : 64;
		struct ctl_token *p = realloc(st->tokens, (size_t)cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		st->tokens = p;
		st->tcap = cap;
	}
	tok.uses = (int)uses;
	st->tokens[st->ntokens++] = tok;
	return 0;
}

static int node_fields(const char *text, const struct json_tok *t, struct ctl_node *n)
{
	int64_t serial;
	int inv = json_find(text, t, 0, "inventory");

	if (json_str(text, t, 0, "node_id", n->id, sizeof(n->id)) ||
	    json_str(text, t, 0, "machine_id", n->machine_id, sizeof(n->machine_id)) ||
	    json_str(text, t, 0, "hostname", n->hostname, sizeof(n->hostname)) ||
	    json_str(text, t, 0, "addr", n->addr, sizeof(n->addr)) ||
	    json_str(text, t, 0, "token", n->token_id, sizeof(n->token_id)) ||
	    json_str(text, t, 0, "csr_hash", n->csr_hash, sizeof(n->csr_hash)) ||
	    json_int(text, t, 0, "joined_ms", &n->joined_ms) ||
	    json_int(text, t, 0, "cert_serial", &serial) || serial < 1 ||
	    inv < 0 || t[inv].type != JSON_OBJ)
		return -EBADMSG;
	n->cert_serial = (uint64_t)serial;
	n->weight = inventory_weight(text, t, inv);
	if (json_find(text, t, 0, "seed") < 0)
		seed_of_id(n->id, n->seed);
	else if (json_str(text, t, 0, "seed", n->seed, sizeof(n->seed)) ||
		 !is_hex(n->seed, CTL_SEED_HEX))
		return -EBADMSG;
	n->cert = malloc(CTL_CERT_MAX);
	if (!n->cert)
		return -ENOMEM;
	if (json_str(text, t, 0, "cert", n->cert, CTL_CERT_MAX))
		return -EBADMSG;
	return ctl_json_dup(text, t, inv, CTL_JOURNAL_LINE_MAX, &n->inventory) ? -EBADMSG : 0;
}

static void node_fini(struct ctl_node *n)
{
	free(n->inventory);
	free(n->cert);
	free(n->health);
	free(n->disks);
}

/* A node record also consumes one use of the token it joined with: one line, one join. */
static int apply_node(struct ctl_state *st, const char *text, const struct json_tok *t)
{
	struct ctl_node n = { .state = CTL_JOINING, .uptime_s = -1, .capacity_bytes = -1,
			      .free_bytes = -1 };
	struct ctl_token *tok;
	unsigned num;
	int err = node_fields(text, t, &n);

	if (!err && (sscanf(n.id, "node-%u", &num) != 1 || num == 0 || node_find(st, n.id)))
		err = -EBADMSG;
	if (!err && st->nnodes == st->ncap) {
		int cap = st->ncap ? 2 * st->ncap : 32;
		struct ctl_node *p = realloc(st->nodes, (size_t)cap * sizeof(*p));

		if (p) {
			st->nodes = p;
			st->ncap = cap;
		} else {
			err = -ENOMEM;
		}
	}
	if (err) {
		node_fini(&n);
		return err;
	}
	n.last_seen_ms = n.joined_ms;
	st->nodes[st->nnodes++] = n;
	st->version++;
	if (num >= st->next_num)
		st->next_num = num + 1;
	tok = token_find(st, n.token_id);
	if (tok && tok->uses > 0)
		tok->uses--;
	return 0;
}

/* An optional string member into out[max]: untouched when absent; -EBADMSG when not a
 * string or too long. */
static int opt_str(const char *text, const struct json_tok *t, const char *key, char *out,
		   size_t max)
{
	int i = json_find(text, t, 0, key);

	return i < 0 || json_get_str(text, t, i, out, max) == 0 ? 0 : -EBADMSG;
}

/* A node's state and, from heartbeats, what else the map shows of it (the members a record
 * leaves out stay as they were: older records have only the state). */
static int apply_state(struct ctl_state *st, const char *text, const struct json_tok *t)
{
	char id[CTL_ID_MAX], name[16], iaddr[CTL_ADDR_MAX], s3[CTL_ENDPOINT_MAX];
	enum ctl_node_state s;
	struct ctl_node *n;
	int64_t ms, weight;
	int wi = json_find(text, t, 0, "weight");

	if (json_str(text, t, 0, "node_id", id, sizeof(id)) ||
	    json_str(text, t, 0, "state", name, sizeof(name)) || state_parse(name, &s) ||
	    json_int(text, t, 0, "ms", &ms) || !(n = node_find(st, id)))
		return -EBADMSG;
	weight = n->weight;
	memcpy(iaddr, n->internal_addr, sizeof(iaddr));
	memcpy(s3, n->s3_endpoint, sizeof(s3));
	if ((wi >= 0 && (json_get_int(text, t, wi, &weight) || weight < 1)) ||
	    opt_str(text, t, "internal_addr", iaddr, sizeof(iaddr)) ||
	    opt_str(text, t, "s3_endpoint", s3, sizeof(s3)))
		return -EBADMSG;
	n->state = s;
	if (s == CTL_UP)
		n->last_seen_ms = ms;
	n->weight = weight;
	memcpy(n->internal_addr, iaddr, sizeof(iaddr));
	memcpy(n->s3_endpoint, s3, sizeof(s3));
	st->version++;
	return 0;
}

static int apply_record(struct ctl_state *st, const char *text, size_t len)
{
	char op[16];
	int n = json_parse(text, len, st->toks, CTL_JOURNAL_TOKS_MAX);

	if (n < 1 || st->toks[0].type != JSON_OBJ ||
	    json_str(text, st->toks, 0, "op", op, sizeof(op)))
		return -EBADMSG;
	if (strcmp(op, "token") == 0)
		return apply_token(st, text, st->toks);
	if (strcmp(op, "node") == 0)
		return apply_node(st, text, st->toks);
	if (strcmp(op, "state") == 0)
		return apply_state(st, text, st->toks);
	return -EBADMSG;
}

/* ------------------------------------------------------------------ the journal */

/* Appends the record the writer w holds (in st->line), makes it durable, applies it. */
static int commit(struct ctl_state *st, struct json_w *w)
{
	int len = json_w_end(w), err;

	if (len < 0 || len + 1 >= CTL_JOURNAL_LINE_MAX)
		return -E2BIG;
	st->line[len] = '\n';
	err = file_write_all(st->jfd, st->line, (size_t)len + 1);
	if (!err && fdatasync(st->jfd) < 0)
		err = -errno;
	if (err) {
		/* Cut off whatever part reached the file: the next record must start clean. */
		if (ftruncate(st->jfd, st->jsize) < 0)
			log_error("ctl_journal_truncate_failed size=%lld", (long long)st->jsize);
		return err;
	}
	st->jsize += len + 1;
	err = apply_record(st, st->line, (size_t)len);
	if (err)
		log_errorx("ctl_journal_apply_failed err=%d", err);
	pthread_cond_broadcast(&st->changed);
	return err;
}

static int read_journal(int fd, char **buf, size_t *len)
{
	struct stat sb;
	size_t got = 0;

	*buf = NULL;
	*len = 0;
	if (fstat(fd, &sb) < 0)
		return -errno;
	*buf = malloc((size_t)sb.st_size + 1);
	if (!*buf)
		return -ENOMEM;
	while (got < (size_t)sb.st_size) {
		ssize_t n = pread(fd, *buf + got, (size_t)sb.st_size - got, (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(*buf);
			*buf = NULL;
			return n < 0 ? -errno : -EIO;
		}
		got += (size_t)n;
	}
	*len = got;
	return 0;
}

/* Applies every whole record; a last record without its newline (a crash during the
 * append, never acknowledged) is cut off the file. */
static int replay(struct ctl_state *st)
{
	size_t len = 0, off = 0;
	int lineno = 0, err;
	char *buf = NULL;

	err = read_journal(st->jfd, &buf, &len);
	if (err)
		return err;
	while (off < len) {
		char *nl = memchr(buf + off, '\n', len - off);

		if (!nl)
			break;
		lineno++;
		if (nl > buf + off) {
			err = apply_record(st, buf + off, (size_t)(nl - (buf + off)));
			if (err) {
				log_errorx("ctl_journal_damaged line=%d offset=%zu err=%d", lineno, off, err);
				goto out;
			}
		}
		off = (size_t)(nl - buf) + 1;
	}
	if (off < len) {
		log_warnx("ctl_journal_torn_tail offset=%zu dropped_bytes=%zu", off, len - off);
		if (ftruncate(st->jfd, (off_t)off) < 0 || fdatasync(st->jfd) < 0) {
			err = -errno;
			goto out;
		}
	}
	st->jsize = (off_t)off;
	log_info("ctl_journal_replayed records=%d nodes=%d tokens=%d map_version=%llu", lineno,
		 st->nnodes, st->ntokens, (unsigned long long)st->version);
out:
	free(buf);
	return err;
}

int ctl_state_open(const char *dir, int heartbeat_s, struct ctl_state **out)
{
	char path[PATH_MAX];
	struct ctl_state *st;
	pthread_condattr_t ca;
	int err;

	*out = NULL;
	if (snprintf(path, sizeof(path), "%s/journal.log", dir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	pthread_mutex_init(&st->mu, NULL);
	/* Waits are timed on the monotonic clock: a wall-clock step must not end or stretch them. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&st->changed, &ca);
	pthread_condattr_destroy(&ca);
	st->heartbeat_s = heartbeat_s > 0 ? heartbeat_s : 10;
	st->next_num = 1;
	st->line = malloc(CTL_JOURNAL_LINE_MAX);
	st->toks = malloc(CTL_JOURNAL_TOKS_MAX * sizeof(*st->toks));
	st->jfd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (!st->line || !st->toks || st->jfd < 0) {
		err = st->jfd < 0 ? -errno : -ENOMEM;
		goto out_free;
	}
	err = replay(st);
	if (err)
		goto out_free;
	*out = st;
	return 0;
out_free:
	ctl_state_free(st);
	return err;
}

void ctl_state_free(struct ctl_state *st)
{
	if (!st)
		return;
	for (int i = 0; i < st->nnodes; i++)
		node_fini(&st->nodes[i]);
	if (st->jfd >= 0)
		close(st->jfd);
	free(st->nodes);
	free(st->tokens);
	free(st->line);
	free(st->toks);
	pthread_cond_destroy(&st->changed);
	pthread_mutex_destroy(&st->mu);
	free(st);
}

/* ------------------------------------------------------------------ tokens */

static void record_start(struct ctl_state *st, struct json_w *w, const char *op)
{
	json_w_init(w, st->line, CTL_JOURNAL_LINE_MAX - 1);
	json_w_obj(w);
	json_w_kstr(w, "op", op);
}

static void hash_secret(const char *secret, char hex[2 * SHA256_LEN + 1])
{
	unsigned char d[SHA256_LEN];

	sha256(secret, strlen(secret), d);
	hex_encode(d, sizeof(d), hex);
}

int ctl_token_new(struct ctl_state *st, int64_t ttl_s, int uses, int64_t now_ms,
		  char token[CTL_TOKEN_MAX], int64_t *expires_ms)
{
	char id[CTL_TOKEN_ID_HEX + 1], secret[CTL_TOKEN_SECRET_HEX + 1], hash[2 * SHA256_LEN + 1];
	struct json_w w;
	int err;

	if (ttl_s < 1 || ttl_s > CTL_TOKEN_TTL_MAX_S || uses < 1 || uses > CTL_TOKEN_USES_MAX)
		return -EINVAL;
	pthread_mutex_lock(&st->mu);
	err = st->ntokens >= CTL_TOKENS_MAX ? -ENOSPC : 0;
	do {
		if (!err)
			err = ctl_random_hex(id, CTL_TOKEN_ID_HEX / 2);
	} while (!err && token_find(st, id));
	if (!err)
		err = ctl_random_hex(secret, CTL_TOKEN_SECRET_HEX / 2);
	if (err)
		goto out_unlock;
	hash_secret(secret, hash);
	*expires_ms = now_ms + ttl_s * 1000;
	record_start(st, &w, "token");
	json_w_kstr(&w, "id", id);
	json_w_kstr(&w, "hash", hash);
	json_w_kint(&w, "expires_ms", *expires_ms);
	json_w_kint(&w, "uses", uses);
	json_w_obj_end(&w);
	err = commit(st, &w);
	if (!err)
		snprintf(token, CTL_TOKEN_MAX, "cjt1.%s.%s", id, secret);
out_unlock:
	pthread_mutex_unlock(&st->mu);
	return err;
}

/* "cjt1.<16 hex>.<32 hex>" into its id and secret; -EACCES when malformed. */
static int token_split(const char *token, char id[CTL_TOKEN_ID_HEX + 1],
		       char secret[CTL_TOKEN_SECRET_HEX + 1])
{
	if (strlen(token) != CTL_TOKEN_MAX - 1 || strncmp(token, "cjt1.", 5) != 0 ||
	    token[5 + CTL_TOKEN_ID_HEX] != '.')
		return -EACCES;
	memcpy(id, token + 5, CTL_TOKEN_ID_HEX);
	id[CTL_TOKEN_ID_HEX] = 0;
	memcpy(secret, token + 6 + CTL_TOKEN_ID_HEX, CTL_TOKEN_SECRET_HEX + 1);
	return is_hex(id, CTL_TOKEN_ID_HEX) && is_hex(secret, CTL_TOKEN_SECRET_HEX) ? 0 : -EACCES;
}

static bool same_secret(const char *a, const char *b, size_t len)
{
	unsigned char diff = 0;

	for (size_t i = 0; i < len; i++)
		diff |= (unsigned char)(a[i] ^ b[i]);
	return diff == 0;
}

/* The token of a join, checked but not consumed: 0 with *tok, or why it is refused. */
static int token_check(struct ctl_state *st, const char *token, int64_t now_ms,
		       struct ctl_token **tok)
{
	char id[CTL_TOKEN_ID_HEX + 1], secret[CTL_TOKEN_SECRET_HEX + 1], hash[2 * SHA256_LEN + 1];

	if (token_split(token, id, secret))
		return -EACCES;
	*tok = token_find(st, id);
	if (!*tok)
		return -EACCES;
	hash_secret(secret, hash);
	if (!same_secret(hash, (*tok)->hash, 2 * SHA256_LEN))
		return -EACCES;
	return now_ms >= (*tok)->expires_ms ? -EKEYEXPIRED : 0;
}

/* ------------------------------------------------------------------ nodes */

/* A placement seed no other node has: 64 random bits as hex. */
static int new_seed(const struct ctl_state *st, char seed[CTL_SEED_HEX + 1])
{
	int err;

	do
		err = ctl_random_hex(seed, CTL_SEED_HEX / 2);
	while (!err && seed_taken(st, seed));
	return err;
}

static void node_record(struct ctl_state *st, struct json_w *w, const struct ctl_join *j,
			const char *id, uint64_t serial, const char *tok_id, const char *cert,
			const char *seed, int64_t now_ms)
{
	record_start(st, w, "node");
	json_w_kstr(w, "node_id", id);
	json_w_kstr(w, "seed", seed);
	json_w_kstr(w, "machine_id", j->machine_id);
	json_w_kstr(w, "hostname", j->hostname ? j->hostname : "");
	json_w_kstr(w, "addr", j->addr ? j->addr : "");
	json_w_kint(w, "joined_ms", now_ms);
	json_w_kstr(w, "token", tok_id);
	json_w_kstr(w, "csr_hash", j->csr_hash);
	json_w_kint(w, "cert_serial", (int64_t)serial);
	json_w_kstr(w, "cert", cert);
	json_w_key(w, "inventory");
}

int ctl_join(struct ctl_state *st, const struct ctl_join *j, int64_t now_ms,
	     char node_id[CTL_ID_MAX], char cert_pem[CTL_CERT_MAX])
{
	struct ctl_token *tok;
	struct ctl_node *n;
	struct json_w w;
	char id[CTL_ID_MAX], seed[CTL_SEED_HEX + 1];
	uint64_t num;
	int err;

	pthread_mutex_lock(&st->mu);
	err = token_check(st, j->token, now_ms, &tok);
	if (err)
		goto out_unlock;
	n = node_find_machine(st, j->machine_id);
	if (n && n->state == CTL_JOINING && strcmp(n->token_id, tok->id) == 0 &&
	    strcmp(n->csr_hash, j->csr_hash) == 0) {
		/* The same join again: its reply was lost on the way. */
		memcpy(node_id, n->id, CTL_ID_MAX);
		memcpy(cert_pem, n->cert, CTL_CERT_MAX);
		goto out_unlock;
	}
	err = tok->uses <= 0 ? -EKEYREVOKED : n ? -EEXIST :
	      st->nnodes >= CTL_NODES_MAX ? -ENOSPC : 0;
	if (err)
		goto out_unlock;
	num = st->next_num;
	snprintf(id, sizeof(id), "node-%04u", (unsigned)num);
	err = new_seed(st, seed);
	if (!err)
		err = j->sign(j->sign_ud, id, num, cert_pem);
	if (err)
		goto out_unlock;
	node_record(st, &w, j, id, num, tok->id, cert_pem, seed, now_ms);
	err = ctl_json_embed(&w, j->inventory);
	json_w_obj_end(&w);
	if (!err)
		err = commit(st, &w);
	if (!err)
		memcpy(node_id, id, CTL_ID_MAX);
out_unlock:
	pthread_mutex_unlock(&st->mu);
	return err;
}

/* What a state record sets: the state, and from a heartbeat the rest of the node's map
 * entry (weight 0 / NULL: left out, unchanged). */
struct map_view {
	enum ctl_node_state state;
	int64_t weight;
	const char *internal_addr, *s3_endpoint;
};

static int state_record(struct ctl_state *st, const char *id, const struct map_view *v,
			int64_t now_ms)
{
	struct json_w w;

	record_start(st, &w, "state");
	json_w_kstr(&w, "node_id", id);
	json_w_kstr(&w, "state", ctl_state_name(v->state));
	json_w_kint(&w, "ms", now_ms);
	if (v->weight > 0)
		json_w_kint(&w, "weight", v->weight);
	if (v->internal_addr)
		json_w_kstr(&w, "internal_addr", v->internal_addr);
	if (v->s3_endpoint)
		json_w_kstr(&w, "s3_endpoint", v->s3_endpoint);
	json_w_obj_end(&w);
	return commit(st, &w);
}

static int replace_str(char **dst, const char *src)
{
	char *p;

	if (!src)
		return 0;
	p = strdup(src);
	if (!p)
		return -ENOMEM;
	free(*dst);
	*dst = p;
	return 0;
}

/* What the map shows of n after heartbeat b, into v; true when that differs from now. */
static bool beat_view(const struct ctl_node *n, const struct ctl_beat *b, struct map_view *v)
{
	bool moved = false;

	v->state = n->state == CTL_JOINING || n->state == CTL_DOWN ? CTL_UP : n->state;
	v->weight = n->weight;
	v->internal_addr = n->internal_addr;
	v->s3_endpoint = n->s3_endpoint;
	if (b->capacity_bytes >= 0 && weight_moved(n->weight, weight_of(b->capacity_bytes))) {
		v->weight = weight_of(b->capacity_bytes);
		moved = true;
	}
	if (b->internal_addr && strcmp(b->internal_addr, n->internal_addr) != 0) {
		v->internal_addr = b->internal_addr;
		moved = true;
	}
	if (b->s3_endpoint && strcmp(b->s3_endpoint, n->s3_endpoint) != 0) {
		v->s3_endpoint = b->s3_endpoint;
		moved = true;
	}
	return moved || v->state != n->state;
}

int ctl_heartbeat(struct ctl_state *st, const char *node_id, const struct ctl_beat *b,
		  int64_t now_ms, enum ctl_node_state *state)
{
	struct map_view v;
	struct ctl_node *n;
	int err = 0;

	if ((b->internal_addr && strlen(b->internal_addr) >= CTL_ADDR_MAX) ||
	    (b->s3_endpoint && strlen(b->s3_endpoint) >= CTL_ENDPOINT_MAX))
		return -EINVAL;
	pthread_mutex_lock(&st->mu);
	n = node_find(st, node_id);
	if (!n || n->state == CTL_GONE) {
		err = n ? -EIDRM : -ENOENT;
		goto out_unlock;
	}
	if (beat_view(n, b, &v))
		err = state_record(st, n->id, &v, now_ms);
	if (err)
		goto out_unlock;
	n->last_seen_ms = now_ms;
	n->heard = true;
	err = replace_str(&n->health, b->health);
	if (!err)
		err = replace_str(&n->disks, b->disks);
	n->uptime_s = b->uptime_s;
	n->capacity_bytes = b->capacity_bytes;
	n->free_bytes = b->free_bytes;
	*state = n->state;
out_unlock:
	pthread_mutex_unlock(&st->mu);
	return err;
}

static int node_set_state(struct ctl_state *st, const char *node_id, enum ctl_node_state s,
			  int64_t now_ms)
{
	struct map_view v = { .state = s };
	struct ctl_node *n;
	int err = 0;

	pthread_mutex_lock(&st->mu);
	n = node_find(st, node_id);
	if (!n)
		err = -ENOENT;
	else if (n->state == CTL_GONE && s != CTL_GONE)
		err = -EIDRM;
	else if (n->state != s)
		err = state_record(st, n->id, &v, now_ms);
	pthread_mutex_unlock(&st->mu);
	return err;
}

int ctl_node_drain(struct ctl_state *st, const char *node_id, int64_t now_ms)
{
	return node_set_state(st, node_id, CTL_DRAINING, now_ms);
}

int ctl_node_remove(struct ctl_state *st, const char *node_id, int64_t now_ms)
{
	return node_set_state(st, node_id, CTL_GONE, now_ms);
}

/* ------------------------------------------------------------------ reading */

static void embed_or(struct json_w *w, const char *key, const char *json, int empty_array)
{
	json_w_key(w, key);
	if (!json || ctl_json_embed(w, json) != 0) {
		if (empty_array) {
			json_w_arr(w);
			json_w_arr_end(w);
		} else {
			json_w_null(w);
		}
	}
}

static void opt_int(struct json_w *w, const char *key, int64_t v)
{
	json_w_key(w, key);
	if (v >= 0)
		json_w_int(w, v);
	else
		json_w_null(w);
}

static void node_write(const struct ctl_node *n, struct json_w *w)
{
	json_w_obj(w);
	json_w_kstr(w, "node_id", n->id);
	json_w_kstr(w, "state", ctl_state_name(n->state));
	json_w_kstr(w, "seed", n->seed);
	json_w_kint(w, "weight", n->weight);
	json_w_kstr(w, "internal_addr", n->internal_addr);
	json_w_kstr(w, "machine_id", n->machine_id);
	json_w_kstr(w, "hostname", n->hostname);
	json_w_kstr(w, "addr", n->addr);
	json_w_kint(w, "joined_ms", n->joined_ms);
	json_w_kint(w, "last_seen_ms", n->last_seen_ms);
	json_w_kstr(w, "s3_endpoint", n->s3_endpoint);
	embed_or(w, "health", n->health, 0);
	opt_int(w, "uptime_s", n->uptime_s);
	opt_int(w, "capacity_bytes", n->capacity_bytes);
	opt_int(w, "free_bytes", n->free_bytes);
	json_w_kint(w, "cert_serial", (int64_t)n->cert_serial);
	embed_or(w, "inventory", n->inventory, 0);
	embed_or(w, "disks", n->disks, 1);
	json_w_obj_end(w);
}

int ctl_node_json(struct ctl_state *st, const char *node_id, struct json_w *w)
{
	struct ctl_node *n;

	pthread_mutex_lock(&st->mu);
	n = node_find(st, node_id);
	if (n)
		node_write(n, w);
	pthread_mutex_unlock(&st->mu);
	return n ? 0 : -ENOENT;
}

void ctl_nodes_json(struct ctl_state *st, struct json_w *w)
{
	pthread_mutex_lock(&st->mu);
	json_w_obj(w);
	json_w_key(w, "nodes");
	json_w_arr(w);
	for (int i = 0; i < st->nnodes && !w->overflow; i++)
		node_write(&st->nodes[i], w);
	json_w_arr_end(w);
	json_w_obj_end(w);
	pthread_mutex_unlock(&st->mu);
}

int ctl_node_count(struct ctl_state *st)
{
	int n;

	pthread_mutex_lock(&st->mu);
	n = st->nnodes;
	pthread_mutex_unlock(&st->mu);
	return n;
}

int ctl_node_state(struct ctl_state *st, const char *node_id, enum ctl_node_state *state)
{
	struct ctl_node *n;

	pthread_mutex_lock(&st->mu);
	n = node_find(st, node_id);
	if (n)
		*state = n->state;
	pthread_mutex_unlock(&st->mu);
	return n ? 0 : -ENOENT;
}

int ctl_token_uses(struct ctl_state *st, const char *token_id)
{
	struct ctl_token *t;
	int uses;

	pthread_mutex_lock(&st->mu);
	t = token_find(st, token_id);
	uses = t ? t->uses : -ENOENT;
	pthread_mutex_unlock(&st->mu);
	return uses;
}

/* ------------------------------------------------------------------ the map */

static void map_node_write(const struct ctl_node *n, struct json_w *w)
{
	json_w_obj(w);
	json_w_kstr(w, "node_id", n->id);
	json_w_kstr(w, "state", ctl_state_name(n->state));
	json_w_kstr(w, "seed", n->seed);
	json_w_kint(w, "weight", n->weight);
	json_w_kstr(w, "internal_addr", n->internal_addr);
	json_w_kstr(w, "s3_endpoint", n->s3_endpoint);
	json_w_obj_end(w);
}

uint64_t ctl_map_json(struct ctl_state *st, const struct ctl_map_info *mi, struct json_w *w)
{
	uint64_t version;

	pthread_mutex_lock(&st->mu);
	version = st->version;
	json_w_obj(w);
	json_w_kint(w, "version", (int64_t)version);
	json_w_kstr(w, "cluster_id", mi->cluster_id);
	json_w_kint(w, "replicas", mi->replicas);
	json_w_kint(w, "write_quorum", mi->write_quorum);
	json_w_key(w, "nodes");
	json_w_arr(w);
	for (int i = 0; i < st->nnodes && !w->overflow; i++)
		if (st->nodes[i].state != CTL_GONE)
			map_node_write(&st->nodes[i], w);
	json_w_arr_end(w);
	json_w_obj_end(w);
	pthread_mutex_unlock(&st->mu);
	return version;
}

uint64_t ctl_map_version(struct ctl_state *st)
{
	uint64_t v;

	pthread_mutex_lock(&st->mu);
	v = st->version;
	pthread_mutex_unlock(&st->mu);
	return v;
}

int ctl_map_wait(struct ctl_state *st, uint64_t since, int64_t timeout_ms)
{
	struct timespec dl;
	int rc = 0;

	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += (time_t)(timeout_ms / 1000);
	dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&st->mu);
	while (st->version <= since && !st->closing && rc == 0)
		rc = pthread_cond_timedwait(&st->changed, &st->mu, &dl);
	rc = st->version > since ? 0 : st->closing ? -ECANCELED : -ETIMEDOUT;
	pthread_mutex_unlock(&st->mu);
	return rc;
}

void ctl_map_close(struct ctl_state *st)
{
	pthread_mutex_lock(&st->mu);
	st->closing = true;
	pthread_cond_broadcast(&st->changed);
	pthread_mutex_unlock(&st->mu);
}

int ctl_map_sweep(struct ctl_state *st, int64_t now_ms)
{
	int64_t limit = (int64_t)CTL_DOWN_PERIODS * st->heartbeat_s * 1000;
	struct map_view v = { .state = CTL_DOWN };
	int down = 0, err = 0;

	pthread_mutex_lock(&st->mu);
	if (!st->sweep_from_ms)
		st->sweep_from_ms = now_ms;
	for (int i = 0; i < st->nnodes && !err; i++) {
		struct ctl_node *n = &st->nodes[i];
		int64_t since = n->last_seen_ms;

		if (!n->heard && since < st->sweep_from_ms)
			since = st->sweep_from_ms;
		if (n->state != CTL_UP || now_ms - since <= limit)
			continue;
		err = state_record(st, n->id, &v, now_ms);
		if (err)
			break;
		down++;
		log_warnx("ctl_node_down node=%s silent_ms=%lld map_version=%llu", n->id,
			  (long long)(now_ms - since), (unsigned long long)st->version);
	}
	pthread_mutex_unlock(&st->mu);
	return err ? err : down;
}

int ctl_map_node(struct ctl_state *st, const char *node_id, struct ctl_map_node *out)
{
	struct ctl_node *n;

	pthread_mutex_lock(&st->mu);
	n = node_find(st, node_id);
	if (n) {
		out->state = n->state;
		memcpy(out->seed, n->seed, sizeof(out->seed));
		out->weight = n->weight;
		memcpy(out->internal_addr, n->internal_addr, sizeof(out->internal_addr));
	}
	pthread_mutex_unlock(&st->mu);
	return n ? 0 : -ENOENT;
}
