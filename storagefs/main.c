/* main.c — storagefsd: reads its options (flags, config file, environment), opens the
 * data directories, and serves the S3 API until SIGTERM, which drains in-flight requests.
 * Wiring only: the work happens in lib/http_server.c, storagefs/s3/ and storagefs/store/. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/config.h"
#include "../lib/fileio.h"
#include "../lib/http.h"
#include "../lib/log.h"
#include "../lib/tls.h"
#include "../lib/workq.h"
#include "auth/sigv4.h"
#include "cluster/cmap_sync.h"
#include "cluster/crepair.h"
#include "cluster/cstore.h"
#include "cluster/iapi.h"
#include "cluster/ident.h"
#include "s3/s3.h"
#include "s3/s3_metrics.h"
#include "store/store.h"

#define SFS_VERSION		"0.1.0"
#define SFS_DRAIN_MS		30000
#define SFS_MAX_CREDS		16
#define SFS_METRICS_CONNS	64	/* the metrics listener: a few scrapers, no more */
#define SFS_INTERNAL_LISTEN	"0.0.0.0:7480"	/* the internal API with --cluster */
#define SFS_PEM_MAX		(64 * 1024)	/* --tls-cert (with its chain) or --tls-key */
#define SFS_PATH_MAX		4096

/* The daemon's configuration: the one process-wide state, as the house style allows. */
struct sfs_config {
	const char *config_file;
	const char *listen;
	const char *metrics_listen;
	const char *tls_listen;
	const char *tls_cert;
	const char *tls_key;
	const char *cluster;
	const char *internal_listen;
	struct config_list data;
	struct config_list access_keys;
	struct config_list secret_keys;
	const char *region;
	const char *domain;
	const char *log_level;
	long replicas;
	long write_quorum;
	long scrub_budget_pct;
	long cluster_repair_s;
	long cluster_repair_mibs;
	bool replicas_auto;		/* no --replicas: a cluster node's follow the map */
	long threads;
	long io_threads;
	long max_conns;
	long header_timeout_ms;
	long idle_timeout_ms;
	long io_timeout_ms;
	int use_syslog;
	int check_only;
	int help;
	int version;
};

static struct sfs_config cfg = {
	.listen = "127.0.0.1:9000",
	.region = "us-east-1",
	.domain = "localhost",
	.log_level = "info",
	.io_threads = 8,
	.scrub_budget_pct = 5,
	.cluster_repair_s = 60,
	.cluster_repair_mibs = 100,
	.max_conns = 4096,
	.header_timeout_ms = 10000,
	.idle_timeout_ms = 60000,
	.io_timeout_ms = 30000,
};

static const struct config_opt sfs_opts[] = {
	{ "config", CONFIG_STR, &cfg.config_file, 0, 0, "FILE", "read settings (same names as these flags) from FILE first" },
	{ "listen", CONFIG_STR, &cfg.listen, 0, 0, "ADDR", "address to serve S3 on, host:port (default 127.0.0.1:9000; [::]:9000, :9000)" },
	{ "tls-listen", CONFIG_STR, &cfg.tls_listen, 0, 0, "ADDR", "also serve S3 over TLS 1.2 on host:port, e.g. 0.0.0.0:9443 (default: off)" },
	{ "tls-cert", CONFIG_STR, &cfg.tls_cert, 0, 0, "FILE", "with --tls-listen: the certificate (PEM, then any chain) (default with --cluster: DIR/node.crt and DIR/ca.crt)" },
	{ "tls-key", CONFIG_STR, &cfg.tls_key, 0, 0, "FILE", "with --tls-cert: its private key (PEM, unencrypted) (default with --cluster: DIR/node.key)" },
	{ "metrics-listen", CONFIG_STR, &cfg.metrics_listen, 0, 0, "ADDR", "also serve GET /metrics (Prometheus text, NOT authenticated) on host:port; bind it to a management address (default: off)" },
	{ "cluster", CONFIG_STR, &cfg.cluster, 0, 0, "DIR", "join the cluster whose identity cairn-provd keeps in DIR (node.json, node.key, node.crt, ca.crt; the map in DIR/map.json); serves the internal API (default: off, a single node)" },
	{ "internal-listen", CONFIG_STR, &cfg.internal_listen, 0, 0, "ADDR", "with --cluster: where to serve the node-to-node API over mutual TLS, host:port (default " SFS_INTERNAL_LISTEN ")" },
	{ "cluster-repair-s", CONFIG_INT, &cfg.cluster_repair_s, 0, 86400, "N", "with --cluster: seconds of rest between two repair passes over this node's rows (push to owners that lack a version, drop copies it does not own; default 60; 0 = off)" },
	{ "cluster-repair-mibs", CONFIG_INT, &cfg.cluster_repair_mibs, 0, 100000, "N", "with --cluster: at most N MiB a second of copies pushed by repair and rebalancing, so clients keep the disks and the network (default 100; 0 = no cap)" },
	{ "data", CONFIG_LIST, &cfg.data, 0, 0, "DIR", "a data directory (one per disk); repeat for several" },
	{ "replicas", CONFIG_INT, &cfg.replicas, 0, 16, "R", "copies of each object, on distinct disks (default 0 = min(3, disks); with --cluster: ceil(R / nodes) of the map, at most the disks)" },
	{ "write-quorum", CONFIG_INT, &cfg.write_quorum, 0, 16, "W", "copies durable before a write is acknowledged (default 0 = R/2+1); 1 <= W <= R <= disks" },
	{ "scrub-budget-pct", CONFIG_INT, &cfg.scrub_budget_pct, 0, 100, "PCT", "share of disk time the background scrubber (verify + repair every replica) may use (default 5; 0 = off)" },
	{ "access-key", CONFIG_LIST, &cfg.access_keys, 0, 0, "AK", "an access key; repeat together with --secret-key for several" },
	{ "secret-key", CONFIG_LIST, &cfg.secret_keys, 0, 0, "SK", "the secret key of the access key in the same position" },
	{ "region", CONFIG_STR, &cfg.region, 0, 0, "REGION", "the region clients sign for (default us-east-1)" },
	{ "domain", CONFIG_STR, &cfg.domain, 0, 0, "DOMAIN", "base domain for virtual-host-style requests (default localhost: Host b.localhost = bucket b)" },
	{ "threads", CONFIG_INT, &cfg.threads, 0, 256, "N", "event-loop threads (default 0 = one per CPU)" },
	{ "io-threads", CONFIG_INT, &cfg.io_threads, 1, 256, "N", "worker threads for blocking disk work (default 8)" },
	{ "max-conns", CONFIG_INT, &cfg.max_conns, 1, 1000000, "N", "connection cap; beyond it clients get 503 (default 4096)" },
	{ "header-timeout-ms", CONFIG_INT, &cfg.header_timeout_ms, 100, 3600000, "MS", "time allowed for a request head (default 10000)" },
	{ "idle-timeout-ms", CONFIG_INT, &cfg.idle_timeout_ms, 100, 3600000, "MS", "keep-alive idle time (default 60000)" },
	{ "io-timeout-ms", CONFIG_INT, &cfg.io_timeout_ms, 100, 3600000, "MS", "time without progress on a body before giving up (default 30000)" },
	{ "log-level", CONFIG_STR, &cfg.log_level, 0, 0, "LEVEL", "error, warn, info (default) or debug" },
	{ "syslog", CONFIG_FLAG, &cfg.use_syslog, 0, 0, NULL, "log to syslog instead of stderr" },
	{ "check", CONFIG_FLAG, &cfg.check_only, 0, 0, NULL, "check the configuration and exit (0 when valid)" },
	{ "version", CONFIG_FLAG, &cfg.version, 0, 0, NULL, "print the version and exit" },
	{ "help", CONFIG_FLAG, &cfg.help, 0, 0, NULL, "show this help" },
};
#define NOPTS ((int)(sizeof(sfs_opts) / sizeof(sfs_opts[0])))

static void usage(FILE *out)
{
	fprintf(out,
		"usage: storagefsd --data DIR [--data DIR ...] --access-key AK --secret-key SK [options]\n"
		"\n"
		"Serves an S3-compatible API (SigV4, presigned URLs, multipart, listing v1/v2,\n"
		"ranges, conditionals, copy, multi-delete) over HTTP/1.1 from local data directories,\n"
		"and over TLS as well with --tls-listen (same requests; clients sign the Host header\n"
		"with the TLS port).\n"
		"Every write is durable on W of its R disks before it is acknowledged (fewer: 503\n"
		"ServiceUnavailable); every read is checksum-verified and falls back to another replica.\n"
		"\n"
		"options:\n");
	config_usage(out, sfs_opts, NOPTS);
	fprintf(out,
		"\n"
		"environment:\n"
		"  CAIRN_ACCESS_KEY, CAIRN_SECRET_KEY   a key pair, used when none is given otherwise\n"
		"\n"
		"Node status: GET /?cairn-status (JSON) and GET /?cairn-metrics (Prometheus text),\n"
		"both signed with SigV4 like any S3 request. With --metrics-listen, the same text is\n"
		"also served as GET /metrics on that address without authentication (for Prometheus;\n"
		"keep it on a management network). A data directory is labelled for this node at\n"
		"first use (DIR/.cairn/format); one labelled for another node is refused.\n"
		"\n"
		"Cluster (docs/CLUSTER.md; being built): --cluster DIR loads the node's identity and\n"
		"the last cluster map, keeps the map current from the controller named in node.json\n"
		"(long poll), and serves the internal API (replicas, tombstones, row listings,\n"
		"buckets) to the map's nodes on --internal-listen. Any node then serves any S3\n"
		"request: writes reach W of the key's R owner nodes (the map's replicas and\n"
		"write_quorum) before they are acknowledged, reads come from the owner holding the\n"
		"newest version, listings merge every node's. --replicas is then the copies on this\n"
		"node's disks (default 1), and the local scrubber is off (it would purge tombstones\n"
		"the other nodes still need).\n"
		"\n"
		"It logs one line 'ready listen=ADDR ...' once it accepts requests. SIGTERM or SIGINT stop\n"
		"accepting, let in-flight requests finish (up to %d s), and exit 0.\n"
		"\n"
		"example:\n"
		"  storagefsd --listen 127.0.0.1:9000 --data /srv/disk1 --data /srv/disk2 \\\n"
		"             --access-key AKEXAMPLE --secret-key SKEXAMPLE\n",
		SFS_DRAIN_MS / 1000);
}

static int parse_level(const char *s, enum log_level *out)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };

	for (int i = 0; i < 4; i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

/* Builds the credential table; returns its size or -1 after printing why. */
static int load_creds(struct sigv4_cred *creds)
{
	const char *ak = getenv("CAIRN_ACCESS_KEY"), *sk = getenv("CAIRN_SECRET_KEY");
	int n = cfg.access_keys.n;

	if (n == 0 && ak && sk && *ak && *sk) {
		cfg.access_keys.v[0] = ak;
		cfg.secret_keys.v[0] = sk;
		cfg.access_keys.n = cfg.secret_keys.n = n = 1;
	}
	if (n == 0) {
		fprintf(stderr, "storagefsd: no access key: give --access-key and --secret-key (or CAIRN_ACCESS_KEY and CAIRN_SECRET_KEY)\n");
		return -1;
	}
	if (cfg.secret_keys.n != n || n > SFS_MAX_CREDS) {
		fprintf(stderr, "storagefsd: give exactly one --secret-key per --access-key (at most %d pairs)\n",
			SFS_MAX_CREDS);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		size_t al = strlen(cfg.access_keys.v[i]), sl = strlen(cfg.secret_keys.v[i]);

		if (al < 3 || al >= SIGV4_KEY_MAX || sl < 8 || sl >= SIGV4_KEY_MAX) {
			fprintf(stderr, "storagefsd: access keys need 3..%d characters, secret keys 8..%d\n",
				SIGV4_KEY_MAX - 1, SIGV4_KEY_MAX - 1);
			return -1;
		}
		memcpy(creds[i].access_key, cfg.access_keys.v[i], al + 1);
		memcpy(creds[i].secret_key, cfg.secret_keys.v[i], sl + 1);
	}
	return n;
}

/* 1 <= W <= R <= disks, with the defaults filled in (R = min(3, disks), W = R/2 + 1). */
static int check_replicas(void)
{
	/* In a cluster the R copies are over nodes: one on this node's disks to start with,
	 * then as many as the map asks of it (cs_local_replicas: more while nodes < R). */
	long r = cfg.replicas ? cfg.replicas : cfg.cluster ? 1 : (cfg.data.n < 3 ? cfg.data.n : 3);

	cfg.replicas_auto = !cfg.replicas && !cfg.write_quorum;
	long w = cfg.write_quorum ? cfg.write_quorum : r / 2 + 1;

	if (r > cfg.data.n || w > r) {
		fprintf(stderr, "storagefsd: need 1 <= --write-quorum (%ld) <= --replicas (%ld) <= number of --data directories (%d)\n",
			w, r, cfg.data.n);
		return -1;
	}
	cfg.replicas = r;
	cfg.write_quorum = w;
	return 0;
}

static int check_tls_options(void)
{
	if (!cfg.tls_cert != !cfg.tls_key) {
		fprintf(stderr, "storagefsd: give --tls-cert and --tls-key together\n");
		return -1;
	}
	if (cfg.tls_cert && !cfg.tls_listen) {
		fprintf(stderr, "storagefsd: --tls-cert needs --tls-listen ADDR\n");
		return -1;
	}
	if (cfg.tls_listen && !cfg.tls_cert && !cfg.cluster) {
		fprintf(stderr, "storagefsd: --tls-listen needs --tls-cert FILE and --tls-key FILE (or --cluster DIR: the node's certificate)\n");
		return -1;
	}
	return 0;
}

/* Reads options: the config file (if named anywhere on the command line) first, so
 * flags override it. Returns 0, 1 to exit successfully, or -1. */
static int load_config(int argc, char **argv)
{
	int idx = config_parse_args(sfs_opts, NOPTS, argc, argv);

	if (idx < 0)
		return -1;
	if (idx < argc) {
		fprintf(stderr, "storagefsd: unexpected argument '%s' (see --help)\n", argv[idx]);
		return -1;
	}
	if (cfg.help) {
		usage(stdout);
		return 1;
	}
	if (cfg.version) {
		printf("storagefsd %s\n", SFS_VERSION);
		return 1;
	}
	if (cfg.config_file) {
		/* Re-read the flags after the file so that flags win; lists from both add up. */
		memset(&cfg.data, 0, sizeof(cfg.data));
		memset(&cfg.access_keys, 0, sizeof(cfg.access_keys));
		memset(&cfg.secret_keys, 0, sizeof(cfg.secret_keys));
		if (config_parse_file_args(sfs_opts, NOPTS, cfg.config_file, argc, argv) < 0)
			return -1;
	}
	if (cfg.data.n == 0) {
		fprintf(stderr, "storagefsd: no data directory: give --data DIR (see --help)\n");
		return -1;
	}
	if (cfg.internal_listen && !cfg.cluster) {
		fprintf(stderr, "storagefsd: --internal-listen needs --cluster DIR (the node's certificate)\n");
		return -1;
	}
	if (cfg.cluster && !cfg.internal_listen)
		cfg.internal_listen = SFS_INTERNAL_LISTEN;
	if (check_tls_options() < 0)
		return -1;
	return check_replicas();
}

/* The TLS listener's certificate chain and key as PEM, read once at start (the key wiped
 * once every loop has parsed its copy). */
struct tls_pem {
	char *cert, *key;
	size_t cert_len;
};

/* Appends path's content to buf[SFS_PEM_MAX] at *len; -1 after saying why. */
static int pem_append(const char *path, char *buf, size_t *len)
{
	ssize_t n = file_read_small(path, buf + *len, SFS_PEM_MAX - *len);

	if (n < 0) {
		fprintf(stderr, "storagefsd: cannot read %s: %s\n", path,
			n == -EFBIG ? "larger than 64 KiB" : strerror((int)-n));
		return -1;
	}
	*len += (size_t)n;
	return 0;
}

/* --tls-cert and --tls-key, or the node's cluster certificate (node.crt, then ca.crt as its
 * chain) and key; -1 after saying why. */
static int tls_pem_read(struct tls_pem *t, const char **cert_path, const char **key_path)
{
	static char crt[SFS_PATH_MAX], ca[SFS_PATH_MAX], key[SFS_PATH_MAX];
	size_t klen = 0;

	if (!(t->cert = malloc(SFS_PEM_MAX)) || !(t->key = malloc(SFS_PEM_MAX))) {
		fprintf(stderr, "storagefsd: out of memory\n");
		return -1;
	}
	t->cert_len = 0;
	if (cfg.tls_cert) {
		*cert_path = cfg.tls_cert;
		*key_path = cfg.tls_key;
		return pem_append(cfg.tls_cert, t->cert, &t->cert_len) < 0 ||
		       pem_append(cfg.tls_key, t->key, &klen) < 0 ? -1 : 0;
	}
	snprintf(crt, sizeof(crt), "%s/node.crt", cfg.cluster);
	snprintf(ca, sizeof(ca), "%s/ca.crt", cfg.cluster);
	snprintf(key, sizeof(key), "%s/node.key", cfg.cluster);
	*cert_path = crt;
	*key_path = key;
	return pem_append(crt, t->cert, &t->cert_len) < 0 ||
	       pem_append(ca, t->cert, &t->cert_len) < 0 ||
	       pem_append(key, t->key, &klen) < 0 ? -1 : 0;
}

static void tls_pem_free(struct tls_pem *t)
{
	if (t->key)
		explicit_bzero(t->key, SFS_PEM_MAX);
	free(t->key);
	free(t->cert);
	t->key = t->cert = NULL;
}

/* Reads and checks the TLS listener's certificate and key (a pair that parses and matches);
 * -1 after saying why. */
static int tls_pem_load(struct tls_pem *t)
{
	const char *cert_path = NULL, *key_path = NULL;
	struct tls_loop *tl;
	int err;

	if (tls_pem_read(t, &cert_path, &key_path) < 0)
		return -1;
	err = tls_loop_new(t->cert, t->key, &tl);
	tls_loop_free(tl);
	if (err == -EBADMSG)
		fprintf(stderr, "storagefsd: %s: not a certificate (PEM) that mbedtls can parse\n", cert_path);
	else if (err == -ENOKEY)
		fprintf(stderr, "storagefsd: %s: not a private key (PEM, unencrypted) that mbedtls can parse\n", key_path);
	else if (err == -EKEYREJECTED)
		fprintf(stderr, "storagefsd: %s is not the key of the certificate %s\n", key_path, cert_path);
	else if (err < 0)
		fprintf(stderr, "storagefsd: TLS setup failed: %s\n", strerror(-err));
	return err < 0 ? -1 : 0;
}

static struct http_server *running_server, *running_metrics;

static void on_stop_signal(int sig)
{
	(void)sig;
	if (running_server)
		http_server_stop(running_server, SFS_DRAIN_MS);
	if (running_metrics)
		http_server_stop(running_metrics, 0);
}

/* The unauthenticated metrics listener: a server of its own with one loop thread, so its
 * connections never reach the S3 handler and scrapes never queue behind S3 requests. */
struct metrics_listener {
	struct http_server *srv;
	pthread_t thread;
	bool running;
};

static void *metrics_main(void *arg)
{
	(void)http_server_run(arg);	/* logs its own failure */
	return NULL;
}

/* SO_REUSEPORT would let both servers share a port and split its connections. */
static bool same_port(const char *a, const char *b)
{
	const char *pa = strrchr(a, ':'), *pb = strrchr(b, ':');

	return pa && pb && strcmp(pa, pb) == 0;
}

static int metrics_start(struct s3_ctx *s3, const char *s3_addr, const char *tls_addr,
			 struct metrics_listener *m)
{
	struct http_server_config hcfg = {
		.listen = cfg.metrics_listen, .threads = 1, .max_conns = SFS_METRICS_CONNS,
		.header_timeout_ms = (int)cfg.header_timeout_ms,
		.idle_timeout_ms = (int)cfg.idle_timeout_ms, .io_timeout_ms = (int)cfg.io_timeout_ms,
		.on_request = s3_metrics_on_request, .ud = s3,
	};
	int err;

	if ((err = http_server_new(&hcfg, &m->srv)) < 0)
		return err;
	if ((err = http_server_listen(m->srv)) < 0) {
		log_errorx("metrics_listen_failed listen=%s err=%d msg=\"%s\"", cfg.metrics_listen,
			   err, strerror(-err));
		return err;
	}
	if (same_port(http_server_addr(m->srv), s3_addr)) {
		log_errorx("metrics_listen_failed listen=%s msg=\"same port as --listen %s\"",
			   cfg.metrics_listen, s3_addr);
		return -EADDRINUSE;
	}
	if (*tls_addr && same_port(http_server_addr(m->srv), tls_addr)) {
		log_errorx("metrics_listen_failed listen=%s msg=\"same port as --tls-listen %s\"",
			   cfg.metrics_listen, tls_addr);
		return -EADDRINUSE;
	}
	if ((err = -pthread_create(&m->thread, NULL, metrics_main, m->srv)) < 0)
		return err;
	m->running = true;
	running_metrics = m->srv;
	return 0;
}

static void metrics_stop(struct metrics_listener *m)
{
	running_metrics = NULL;
	if (m->running) {
		http_server_stop(m->srv, 0);
		pthread_join(m->thread, NULL);
		m->running = false;
	}
	if (m->srv)
		http_server_free(m->srv);
	m->srv = NULL;
}

/* With --cluster: the node's identity, its current map (and the thread keeping it
 * current), and the internal API server. */
struct cluster_node {
	struct ident *id;
	struct cmap_sync *maps;
	struct cbucket *buckets;	/* the bucket log, once the store is open */
	struct iapi *iapi;
	struct crepair *repair;		/* NULL: off */
};

/* The identity and the map, before the store opens (its disks carry the cluster id). */
static int cluster_load(struct cluster_node *cn)
{
	int err;

	if (!(cn->id = malloc(sizeof(*cn->id))))
		return -ENOMEM;
	if ((err = ident_load(cfg.cluster, cn->id)) || (err = cmap_sync_new(cfg.cluster, &cn->maps)))
		return err;
	if (cn->id->controller[0] && (err = cmap_sync_fetch_start(cn->maps, cn->id))) {
		log_errorx("cluster_start_failed controller=%s err=%d", cn->id->controller, err);
		return err;
	}
	return 0;
}

/* The internal API completes uploads whose home is this node through the coordinator
 * (which replicates the object). */
static int mpu_complete_here(void *cs, const char *bucket, const char *upload_id,
			     const struct store_mpu_part *parts, int nparts,
			     struct store_objinfo *out)
{
	return cstore_mpu_complete(cs, bucket, upload_id, parts, nparts, out);
}

static int cluster_start(struct store *st, struct cstore *cs, struct cluster_node *cn)
{
	struct iapi_config icfg = { .listen = cfg.internal_listen, .st = st };
	int err;

	icfg.maps = cn->maps;
	icfg.buckets = cn->buckets;
	icfg.mpu_complete = mpu_complete_here;
	icfg.mpu_ctx = cs;
	icfg.cert_pem = cn->id->cert_pem;
	icfg.key_pem = cn->id->key_pem;
	icfg.ca_pem = cn->id->ca_pem;
	if ((err = iapi_start(&icfg, &cn->iapi)))
		return err;
	log_info("cluster_node node=%s cluster=%s controller=%s map_version=%llu internal=%s",
		 cn->id->node_id, cn->id->cluster_id, cn->id->controller[0] ? cn->id->controller : "-",
		 (unsigned long long)cmap_sync_version(cn->maps), iapi_addr(cn->iapi));
	return 0;
}

/* The map and the identity, once nothing uses them (the internal API has stopped, the
 * facade's replica pushes have finished). */
static void cluster_unload(struct cluster_node *cn)
{
	cmap_sync_free(cn->maps);
	cbucket_free(cn->buckets);
	if (cn->id)
		explicit_bzero(cn->id, sizeof(*cn->id));
	free(cn->id);
	memset(cn, 0, sizeof(*cn));
}

/* The S3 layer's store: the local one, or the cluster's coordinator over it (and then the
 * bucket log, which needs the open store). */
static int facade_new(struct store *st, struct cluster_node *cn, struct cstore **out)
{
	struct cstore_config ccfg = { .st = st, .spool_dir = cfg.data.v[0] };
	int err;

	if (cn->id) {
		if ((err = cbucket_open(cfg.cluster, st, &cn->buckets))) {
			log_errorx("cluster_bucket_log_failed dir=%s err=%d", cfg.cluster, err);
			return err;
		}
		ccfg.maps = cn->maps;
		ccfg.self_id = cn->id->node_id;
		ccfg.buckets = cn->buckets;
		ccfg.local_replicas_auto = cfg.replicas_auto;
		ccfg.peer = (struct peer_cfg){ .ca_pem = cn->id->ca_pem, .cert_pem = cn->id->cert_pem,
					       .key_pem = cn->id->key_pem };
	}
	return cstore_new(&ccfg, out);
}

static int serve(const struct sigv4_cred *creds, int ncreds, struct tls_pem *tls)
{
	struct store_config scfg = { .dirs = cfg.data.v, .ndirs = cfg.data.n,
				     .replicas = (int)cfg.replicas,
				     .write_quorum = (int)cfg.write_quorum,
				     .scrub_budget_pct = (int)cfg.scrub_budget_pct };
	struct store *st = NULL;
	struct cstore *cs = NULL;
	struct workq *wq = NULL;
	struct s3_ctx *s3 = NULL;
	struct http_server *srv = NULL;
	struct metrics_listener ml = { 0 };
	struct cluster_node cn = { 0 };
	struct sigaction sa = { .sa_handler = on_stop_signal };
	int err;

	if (cfg.cluster && (err = cluster_load(&cn)) < 0)
		goto out;
	err = store_open_cluster(&scfg, cn.id ? cn.id->cluster_id : NULL, &st);
	if (err < 0) {
		log_errorx("store_open_failed err=%d msg=\"%s\"", err, strerror(-err));
		goto out;
	}
	err = workq_new((int)cfg.io_threads, "io", &wq);
	if (err < 0 || (err = facade_new(st, &cn, &cs)) < 0)
		goto out;
	struct s3_config s3cfg = {
		.creds = creds, .ncreds = ncreds, .region = cfg.region, .domain = cfg.domain,
		.store = cs, .wq = wq,
	};
	err = s3_ctx_new(&s3cfg, &s3);
	if (err < 0)
		goto out;
	struct http_server_config hcfg = {
		.listen = cfg.listen, .threads = (int)cfg.threads, .max_conns = (int)cfg.max_conns,
		.header_timeout_ms = (int)cfg.header_timeout_ms,
		.idle_timeout_ms = (int)cfg.idle_timeout_ms, .io_timeout_ms = (int)cfg.io_timeout_ms,
		.conn_udata_size = s3_conn_state_size(),
		.on_request = s3_on_request, .on_error = s3_on_error, .on_done = s3_on_done,
		.ud = s3, .tls_listen = cfg.tls_listen, .tls_cert_pem = tls->cert,
		.tls_key_pem = tls->key,
	};
	err = http_server_new(&hcfg, &srv);
	if (err < 0)
		goto out;
	err = http_server_listen(srv);
	tls_pem_free(tls);	/* every loop has its own copy of the key now */
	if (err < 0) {
		log_errorx("listen_failed listen=%s tls_listen=%s err=%d msg=\"%s\"", cfg.listen,
			   cfg.tls_listen ? cfg.tls_listen : "-", err, strerror(-err));
		goto out;
	}
	if (cfg.metrics_listen &&
	    (err = metrics_start(s3, http_server_addr(srv), http_server_tls_addr(srv), &ml)) < 0)
		goto out;
	if (cfg.cluster && (err = cluster_start(st, cs, &cn)) < 0)
		goto out;
	if (cfg.cluster && cfg.cluster_repair_s > 0 &&
	    (err = crepair_start(cs, (int)cfg.cluster_repair_s, (int64_t)cfg.cluster_repair_mibs << 20, &cn.repair)) < 0)
		goto out;
	running_server = srv;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	log_msg(LOG_LVL_INFO, 0, "ready listen=%s tls=%s disks=%d replicas=%ld write_quorum=%ld region=%s version=%s metrics=%s node=%s internal=%s",
		http_server_addr(srv), cfg.tls_listen ? http_server_tls_addr(srv) : "off", cfg.data.n,
		cfg.replicas, cfg.write_quorum, cfg.region,
		SFS_VERSION, ml.srv ? http_server_addr(ml.srv) : "off",
		cn.id ? cn.id->node_id : "-", cn.iapi ? iapi_addr(cn.iapi) : "off");
	err = http_server_run(srv);
	running_server = NULL;
	log_msg(LOG_LVL_INFO, 0, "stopped err=%d", err);
out:
	/* Repair, the internal API and the metrics listener read the store: they stop first. */
	crepair_stop(cn.repair);
	iapi_stop(cn.iapi);
	metrics_stop(&ml);
	/* Workers next: a job still running after the drain posts back to the server, which
	 * must outlive it; the store outlives both. Replica pushes still running finish
	 * before the map goes. */
	if (wq)
		workq_free(wq);
	if (srv)
		http_server_free(srv);
	s3_ctx_free(s3);
	cstore_free(cs);
	cluster_unload(&cn);
	if (st)
		store_close(st);
	return err;
}

int main(int argc, char **argv)
{
	static struct sigv4_cred creds[SFS_MAX_CREDS];
	struct tls_pem tls = { 0 };
	enum log_level level;
	int rc, ncreds;

	rc = load_config(argc, argv);
	if (rc != 0)
		return rc > 0 ? 0 : 2;
	ncreds = load_creds(creds);
	if (ncreds < 0)
		return 2;
	if (parse_level(cfg.log_level, &level) < 0) {
		fprintf(stderr, "storagefsd: --log-level must be error, warn, info or debug\n");
		return 2;
	}
	if (cfg.tls_listen && tls_pem_load(&tls) < 0) {
		tls_pem_free(&tls);
		return 2;
	}
	if (cfg.check_only) {
		printf("storagefsd: configuration ok (%d data directories, replicas=%ld, write-quorum=%ld, %d keys, tls=%s)\n",
		       cfg.data.n, cfg.replicas, cfg.write_quorum, ncreds,
		       cfg.tls_listen ? cfg.tls_listen : "off");
		tls_pem_free(&tls);
		return 0;
	}
	log_init("storagefsd", level, cfg.use_syslog);
	signal(SIGPIPE, SIG_IGN);
	rc = serve(creds, ncreds, &tls) < 0 ? 1 : 0;
	tls_pem_free(&tls);
	return rc;
}
