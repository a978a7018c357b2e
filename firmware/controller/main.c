/* main.c — cairn-controller: reads its flags, loads (or makes) its identity and journal in
 * --state DIR, and serves the join API over TLS (and, if asked, the PXE bundle over plain
 * HTTP) with one short-lived thread per connection, and a sweeper thread that notices
 * silent nodes, until SIGTERM. Wiring only: the work is in ctl_state.c (model, map,
 * journal), ctl_api.c (API), ctl_boot.c, ctl_ident.c. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../../lib/config.h"
#include "../../lib/log.h"
#include "../../lib/netaddr.h"
#include "../../lib/tls.h"
#include "ctl_api.h"
#include "ctl_boot.h"
#include "ctl_ident.h"
#include "ctl_state.h"

#define CTL_MAX_CONNS		32
#define CTL_IO_TIMEOUT_MS	10000
#define CTL_DRAIN_MS		15000
#define CTL_THREAD_STACK	(512 * 1024)
#define CTL_LISTEN_MAX		128
#define CTL_SWEEP_MS		250		/* how often silent nodes are looked for */

/* The daemon's configuration: the one process-wide state, as the house style allows. */
struct ctl_config {
	const char *state;
	const char *listen;
	const char *boot_listen;
	const char *boot_dir;
	const char *advertise;
	const char *xen_args;
	const char *dom0_args;
	const char *log_level;
	long heartbeat_s;
	long map_poll_s;
	int print_pin;
	int help;
};

static struct ctl_config cfg = {
	.listen = "0.0.0.0:7443",
	.xen_args = "console=com1,vga com1=115200,8n1 dom0_mem=1024M,max:1024M dom0_max_vcpus=4 loglvl=warning guest_loglvl=warning",
	.dom0_args = "console=hvc0 loglevel=4 panic=10",
	.log_level = "info",
	.map_poll_s = CTL_MAP_POLL_S,
};

static const struct config_opt ctl_opts[] = {
	{ "state", CONFIG_STR, &cfg.state, 0, 0, "DIR", "the controller's state: CA, keys, admin token, journal (created 0700 at first start)" },
	{ "listen", CONFIG_STR, &cfg.listen, 0, 0, "ADDR:PORT", "where to serve the join API over TLS (default 0.0.0.0:7443; port 0 = any free port)" },
	{ "advertise", CONFIG_STR, &cfg.advertise, 0, 0, "HOST:PORT", "the controller address boot.ipxe gives nodes (cairn.controller=); default the --listen address, or the boot request's host when that is a wildcard" },
	{ "boot-listen", CONFIG_STR, &cfg.boot_listen, 0, 0, "ADDR:PORT", "also serve the PXE bundle and boot.ipxe over plain HTTP here" },
	{ "boot-dir", CONFIG_STR, &cfg.boot_dir, 0, 0, "DIR", "the PXE bundle: xen, vmlinuz, initrd.img (optionally boot.ipxe.in); default STATE/boot" },
	{ "xen-args", CONFIG_STR, &cfg.xen_args, 0, 0, "ARGS", "Xen's command line in boot.ipxe (default: the pc-x86_64 board's)" },
	{ "dom0-args", CONFIG_STR, &cfg.dom0_args, 0, 0, "ARGS", "dom0's command line in boot.ipxe, before the cairn.* keys (default: console=hvc0 loglevel=4 panic=10)" },
	{ "heartbeat-s", CONFIG_INT, &cfg.heartbeat_s, 1, 3600, "SECONDS", "the nodes' heartbeat period for this run, instead of cluster.json's heartbeat_s (tests); a node is down after 3 silent periods" },
	{ "map-poll-s", CONFIG_INT, &cfg.map_poll_s, 1, 300, "SECONDS", "how long GET /v1/map?since=N holds an unchanged map before 304 (default 30)" },
	{ "print-pin", CONFIG_FLAG, &cfg.print_pin, 0, 0, NULL, "print the CA pin (sha256:HEX) for cairn.ca-hash= and exit" },
	{ "log-level", CONFIG_STR, &cfg.log_level, 0, 0, "LEVEL", "error, warn, info (default) or debug" },
	{ "help", CONFIG_FLAG, &cfg.help, 0, 0, NULL, "show this help" },
};
#define NOPTS ((int)(sizeof(ctl_opts) / sizeof(ctl_opts[0])))

static void usage(FILE *out)
{
	fprintf(out,
		"usage: cairn-controller --state DIR [options]\n"
		"\n"
		"The Cairn cluster controller: enrols nodes (join token, hardware inventory, a node\n"
		"certificate signed by the cluster CA), takes their heartbeats, serves the versioned\n"
		"cluster map (GET /v1/map, long poll: docs/CLUSTER.md), and lets operators list, drain\n"
		"and remove nodes (cairn-nodectl). The wire protocol is docs/PROVISIONING.md.\n"
		"Its state is journaled in DIR and survives restarts and crashes.\n"
		"\n"
		"options:\n");
	config_usage(out, ctl_opts, NOPTS);
	fprintf(out,
		"\n"
		"It logs 'ready listen=ADDR' once it serves. SIGTERM or SIGINT stop accepting, let\n"
		"requests in progress finish (up to %d s), and exit 0.\n"
		"\n"
		"example:\n"
		"  cairn-controller --state /var/lib/cairn-controller --listen 10.0.0.2:7443 \\\n"
		"                   --boot-listen 10.0.0.2:8080 --boot-dir /srv/cairn/pxe\n",
		CTL_DRAIN_MS / 1000);
}

/* Returns 0 to go on, 1 to exit successfully, -1 on a usage error. */
static int load_config(int argc, char **argv)
{
	int idx = config_parse_args(ctl_opts, NOPTS, argc, argv);

	if (idx < 0)
		return -1;
	if (idx < argc) {
		fprintf(stderr, "cairn-controller: unexpected argument '%s' (see --help)\n", argv[idx]);
		return -1;
	}
	if (cfg.help) {
		usage(stdout);
		return 1;
	}
	if (!cfg.state) {
		fprintf(stderr, "cairn-controller: --state DIR is required (see --help)\n");
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ serving */

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/* What the connection threads share. */
struct server {
	struct ctl_api api;
	struct ctl_boot boot;
	struct tls_server *tls, *plain;
	atomic_int active;
	pthread_t sweeper;
	bool sweeping;			/* the sweeper runs (join it) */
};

struct conn_job {
	struct server *srv;
	int fd;
	int boot;
};

static void *conn_main(void *arg)
{
	struct conn_job job = *(struct conn_job *)arg;
	struct tls_conn *c = NULL;
	int err;

	free(arg);
	err = tls_accept(job.boot ? job.srv->plain : job.srv->tls, job.fd, &c);
	if (err) {
		log_debug("ctl_handshake_failed err=%d boot=%d", err, job.boot);
	} else {
		if (job.boot)
			ctl_boot_handle(&job.srv->boot, c);
		else
			ctl_api_handle(&job.srv->api, c);
		tls_close(c);
	}
	atomic_fetch_sub(&job.srv->active, 1);
	return NULL;
}

static void conn_start(struct server *srv, int fd, int boot)
{
	struct conn_job *job;
	pthread_attr_t attr;
	pthread_t t;

	if (atomic_load(&srv->active) >= CTL_MAX_CONNS) {
		log_warnx("ctl_busy active=%d max=%d", atomic_load(&srv->active), CTL_MAX_CONNS);
		close(fd);
		return;
	}
	job = malloc(sizeof(*job));
	if (!job) {
		close(fd);
		return;
	}
	*job = (struct conn_job){ srv, fd, boot };
	atomic_fetch_add(&srv->active, 1);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, CTL_THREAD_STACK);
	if (pthread_create(&t, &attr, conn_main, job) != 0) {
		log_warnx("ctl_thread_failed");
		atomic_fetch_sub(&srv->active, 1);
		close(fd);
		free(job);
	}
	pthread_attr_destroy(&attr);
}

static void accept_loop(struct server *srv, int api_fd, int boot_fd)
{
	struct pollfd pf[2] = { { .fd = api_fd, .events = POLLIN }, { .fd = boot_fd, .events = POLLIN } };
	int nfds = boot_fd >= 0 ? 2 : 1;

	while (!stop_requested) {
		int n = poll(pf, (nfds_t)nfds, 250);

		if (n < 0 && errno != EINTR) {
			log_error("ctl_poll_failed");
			return;
		}
		for (int i = 0; n > 0 && i < nfds; i++) {
			int fd;

			if (!(pf[i].revents & POLLIN))
				continue;
			fd = accept4(pf[i].fd, NULL, NULL, SOCK_CLOEXEC);
			if (fd >= 0)
				conn_start(srv, fd, i == 1);
		}
	}
}

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Marks silent nodes down as their time comes, so the map version moves (and long polls
 * wake) without anyone reading the map; until SIGTERM. */
static void *sweeper_main(void *arg)
{
	struct server *srv = arg;
	struct timespec ts = { 0, CTL_SWEEP_MS * 1000000L };

	while (!stop_requested) {
		int rc = ctl_map_sweep(srv->api.st, wall_ms());

		if (rc < 0)
			log_errorx("ctl_sweep_failed err=%d msg=\"%s\"", rc, strerror(-rc));
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/* Waits for the connections in progress to end (they use srv). true when they all did. */
static bool drain(struct server *srv)
{
	struct timespec ts = { 0, 20 * 1000000 };

	for (int waited = 0; waited < CTL_DRAIN_MS; waited += 20) {
		if (atomic_load(&srv->active) == 0)
			return true;
		nanosleep(&ts, NULL);
	}
	return false;
}

/* The address boot.ipxe names for the controller: --advertise, else the bound API address
 * unless it is a wildcard (then NULL: ctl_boot uses the host the machine booted from). */
static const char *advertised(const char *bound)
{
	if (cfg.advertise)
		return cfg.advertise;
	if (strncmp(bound, "0.0.0.0:", 8) == 0 || strncmp(bound, "[::]:", 5) == 0)
		return NULL;
	return bound;
}

static int servers_new(struct server *srv, const struct ctl_ident *id)
{
	struct tls_server_opts o = {
		.cert_pem = id->server_cert, .key_pem = id->server_key, .chain_pem = id->ca_cert,
		.client_ca_pem = id->ca_cert, .timeout_ms = CTL_IO_TIMEOUT_MS,
	};
	struct tls_server_opts plain = { .timeout_ms = CTL_IO_TIMEOUT_MS };
	int err = tls_server_new(&o, &srv->tls);

	if (!err && cfg.boot_listen)
		err = tls_server_new(&plain, &srv->plain);
	if (err)
		log_errorx("ctl_tls_setup_failed err=%d", err);
	return err;
}

static int heartbeat_s(const struct ctl_ident *id)
{
	return cfg.heartbeat_s ? (int)cfg.heartbeat_s : id->heartbeat_s;
}

static void wire(struct server *srv, struct ctl_state *st, const struct ctl_ident *id,
		 const char *api_addr, const char *boot_dir)
{
	srv->api = (struct ctl_api){
		.st = st, .state_dir = cfg.state, .ca_key_pem = id->ca_key,
		.ca_cert_pem = id->ca_cert, .admin_token = id->admin_token,
		.cluster_id = id->cluster_id, .access_key = id->access_key,
		.secret_key = id->secret_key, .replicas = id->replicas,
		.write_quorum = id->replicas / 2 + 1, .heartbeat_s = heartbeat_s(id),
		.map_poll_ms = (int)cfg.map_poll_s * 1000,
	};
	srv->boot = (struct ctl_boot){
		.dir = boot_dir, .state_dir = cfg.state, .controller = advertised(api_addr),
		.controller_port = atoi(strrchr(api_addr, ':') + 1),
		.xen_args = cfg.xen_args, .dom0_args = cfg.dom0_args, .pin_hex = id->pin_hex,
	};
}

static int serve(const struct ctl_ident *id)
{
	struct sigaction sa = { .sa_handler = on_stop_signal };
	char api_addr[CTL_LISTEN_MAX], boot_addr[CTL_LISTEN_MAX] = "-", boot_dir[4096];
	struct server *srv = calloc(1, sizeof(*srv));
	struct ctl_state *st = NULL;
	int api_fd = -1, boot_fd = -1, err;

	if (!srv)
		return -ENOMEM;
	snprintf(boot_dir, sizeof(boot_dir), "%s", cfg.boot_dir ? cfg.boot_dir : cfg.state);
	if (!cfg.boot_dir)
		strncat(boot_dir, "/boot", sizeof(boot_dir) - strlen(boot_dir) - 1);
	err = ctl_state_open(cfg.state, heartbeat_s(id), &st);
	if (err) {
		log_errorx("ctl_state_open_failed dir=%s err=%d msg=\"%s\"", cfg.state, err, strerror(-err));
		goto out;
	}
	err = servers_new(srv, id);
	if (err)
		goto out;
	api_fd = err = net_listen_str(cfg.listen, 64, 0, api_addr);
	if (err >= 0 && cfg.boot_listen)
		boot_fd = err = net_listen_str(cfg.boot_listen, 64, 0, boot_addr);
	if (err < 0) {
		log_errorx("ctl_listen_failed listen=%s boot_listen=%s err=%d msg=\"%s\"", cfg.listen,
			   cfg.boot_listen ? cfg.boot_listen : "-", err, strerror(-err));
		goto out;
	}
	wire(srv, st, id, api_addr, boot_dir);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	err = -pthread_create(&srv->sweeper, NULL, sweeper_main, srv);
	if (err) {
		log_errorx("ctl_sweeper_failed err=%d", err);
		goto out;
	}
	srv->sweeping = true;
	log_msg(LOG_LVL_INFO, 0, "ready listen=%s boot=%s state=%s nodes=%d cluster=%s pin=sha256:%s map_version=%llu heartbeat_s=%d",
		api_addr, boot_addr, cfg.state, ctl_node_count(st), id->cluster_id, id->pin_hex,
		(unsigned long long)ctl_map_version(st), srv->api.heartbeat_s);
	accept_loop(srv, api_fd, boot_fd);
	/* Long polls answer 304 now: a client polls the next controller, not this one. */
	ctl_map_close(st);
	close(api_fd);
	api_fd = -1;
	if (boot_fd >= 0)
		close(boot_fd);
	boot_fd = -1;
	pthread_join(srv->sweeper, NULL);
	srv->sweeping = false;
	if (!drain(srv)) {
		/* Threads still use the state: leave it to the exit (the journal is durable). */
		log_warnx("ctl_stopped_with_connections active=%d", atomic_load(&srv->active));
		return 0;
	}
	log_msg(LOG_LVL_INFO, 0, "stopped");
out:
	if (srv->sweeping) {
		stop_requested = 1;
		pthread_join(srv->sweeper, NULL);
	}
	if (api_fd >= 0)
		close(api_fd);
	if (boot_fd >= 0)
		close(boot_fd);
	tls_server_free(srv->tls);
	tls_server_free(srv->plain);
	ctl_state_free(st);
	free(srv);
	return err;
}

int main(int argc, char **argv)
{
	static struct ctl_ident id;	/* keys: 16 KiB, not for the stack */
	enum log_level level;
	int rc = load_config(argc, argv);

	if (rc != 0)
		return rc > 0 ? 0 : 2;
	if (log_level_parse(cfg.log_level, &level) < 0) {
		fprintf(stderr, "cairn-controller: --log-level must be error, warn, info or debug\n");
		return 2;
	}
	log_init("cairn-controller", level, 0);
	signal(SIGPIPE, SIG_IGN);
	if (ctl_ident_load(cfg.state, &id) < 0)
		return 1;
	if (cfg.print_pin) {
		printf("sha256:%s\n", id.pin_hex);
		return 0;
	}
	rc = serve(&id) < 0 ? 1 : 0;
	explicit_bzero(&id, sizeof(id));
	return rc;
}
