/* main.c — cairn-provd, the node provisioning agent: reads the cairn.* boot keys, takes the
 * inventory, prepares the data disks, joins the cluster (or reuses the identity it saved),
 * writes storagefsd's config, signals the boot script, then heartbeats until SIGTERM.
 * Wiring only: the work happens in the pv_*.c modules. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../lib/fileio.h"
#include "../../lib/config.h"
#include "../../lib/log.h"
#include "pv_client.h"
#include "pv_cmdline.h"
#include "pv_disk.h"
#include "pv_heartbeat.h"
#include "pv_inventory.h"
#include "pv_join.h"
#include "pv_state.h"
#include "pv_util.h"

#define PV_VERSION		"0.1.0"
#define PV_RAM_STATE		"/run/cairn/provd"
#define PV_DISK_STATE		".cairn-node/provd"
#define PV_CMDLINE_MAX		(64 * 1024)
#define PV_BACKOFF_MIN_S	1
#define PV_BACKOFF_MAX_S	60
#define PV_DATA_MAX		64
#define PV_RESCAN_EVERY		6

enum pv_exit { EX_OK, EX_FAIL, EX_USAGE, EX_PIN, EX_REFUSED, EX_REMOVED };

/* The daemon's configuration: the one process-wide state, as the house style allows. */
static struct pv_config {
	const char *cmdline, *config, *sys_root, *proc_root, *state_dir, *sfs_conf, *ready_file;
	const char *log_level, *mkfs, *mount_root, *dev_dir, *region, *s3_endpoint;
	struct config_list data_dirs;
	long s3_port, internal_port;
	int no_disks, once, use_syslog, help, version;
} cfg = {
	.cmdline = "/proc/cmdline", .sys_root = "/sys", .proc_root = "/proc",
	.sfs_conf = "/run/cairn/storagefsd.conf", .ready_file = "/run/cairn/provisioned",
	.log_level = "info", .mkfs = "mke2fs", .mount_root = "/data", .dev_dir = "/dev",
	.region = "us-east-1", .s3_port = 9000, .internal_port = 7480,
};

static const struct config_opt pv_opts[] = {
	{ "cmdline", CONFIG_STR, &cfg.cmdline, 0, 0, "FILE", "kernel command line with the cairn.* keys (default /proc/cmdline)" },
	{ "config", CONFIG_STR, &cfg.config, 0, 0, "FILE", "cairn.KEY=VALUE lines; they override the command line" },
	{ "sysfs-root", CONFIG_STR, &cfg.sys_root, 0, 0, "DIR", "sysfs to take the inventory from (default /sys)" },
	{ "proc-root", CONFIG_STR, &cfg.proc_root, 0, 0, "DIR", "procfs for cpuinfo, meminfo, uptime (default /proc)" },
	{ "state-dir", CONFIG_STR, &cfg.state_dir, 0, 0, "DIR", "identity directory (default <first data dir>/" PV_DISK_STATE ", " PV_RAM_STATE " until a disk exists)" },
	{ "data-dir", CONFIG_LIST, &cfg.data_dirs, 0, 0, "DIR", "use DIR as a data disk, skipping the block devices (tests); repeat" },
	{ "no-disks", CONFIG_FLAG, &cfg.no_disks, 0, 0, NULL, "do not touch block devices" },
	{ "sfs-conf", CONFIG_STR, &cfg.sfs_conf, 0, 0, "FILE", "storagefsd config to write (default /run/cairn/storagefsd.conf)" },
	{ "ready-file", CONFIG_STR, &cfg.ready_file, 0, 0, "FILE", "written once joined and configured: the data dirs (default /run/cairn/provisioned)" },
	{ "region", CONFIG_STR, &cfg.region, 0, 0, "REGION", "S3 region for storagefsd (default us-east-1)" },
	{ "s3-port", CONFIG_INT, &cfg.s3_port, 1, 65535, "PORT", "storagefsd's port, for the endpoint reported (default 9000)" },
	{ "internal-port", CONFIG_INT, &cfg.internal_port, 1, 65535, "PORT", "storagefsd's node-to-node port, for the internal_addr reported: <source address>:PORT (default 7480)" },
	{ "s3-endpoint", CONFIG_STR, &cfg.s3_endpoint, 0, 0, "URL", "the S3 endpoint to report (default http://<source address>:<s3-port>)" },
	{ "mkfs", CONFIG_STR, &cfg.mkfs, 0, 0, "PROG", "formatter (default mke2fs; busybox mkfs.ext2 when absent)" },
	{ "mount-root", CONFIG_STR, &cfg.mount_root, 0, 0, "DIR", "data disk N is mounted at DIR/N (default /data)" },
	{ "dev-dir", CONFIG_STR, &cfg.dev_dir, 0, 0, "DIR", "block device nodes (default /dev)" },
	{ "once", CONFIG_FLAG, &cfg.once, 0, 0, NULL, "join (or load the identity), one heartbeat, exit (tests)" },
	{ "log-level", CONFIG_STR, &cfg.log_level, 0, 0, "LEVEL", "error, warn, info (default) or debug" },
	{ "syslog", CONFIG_FLAG, &cfg.use_syslog, 0, 0, NULL, "log to syslog instead of stderr" },
	{ "version", CONFIG_FLAG, &cfg.version, 0, 0, NULL, "print the version and exit" },
	{ "help", CONFIG_FLAG, &cfg.help, 0, 0, NULL, "show this help" },
};
#define NOPTS ((int)(sizeof(pv_opts) / sizeof(pv_opts[0])))

/* What one run of the agent holds. */
struct pv_run {
	struct pv_boot boot;
	struct pv_inv inv;
	struct pv_disks disks;
	struct pv_ident *id;		/* malloc'ed: three PEMs */
	char state_dir[PATH_MAX];
	bool state_in_ram;		/* default location before a disk exists */
	unsigned rescans;		/* heartbeats spent waiting for a disk */
	char host[PV_HOST_MAX], port[PV_PORT_MAX];
	const char *data[PV_DATA_MAX];
	int ndata;
	unsigned rnd;
};

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: cairn-provd [options]\n"
		"\n"
		"The node agent of docs/PROVISIONING.md. Reads cairn.controller=HOST:PORT,\n"
		"cairn.token=TOKEN, cairn.ca-hash=sha256:HEX and cairn.wipe=DEV,... from the kernel\n"
		"command line (and --config), formats blank disks (ext4 labelled cairn-dataN; a disk\n"
		"holding anything else is never formatted unless named in cairn.wipe), mounts them at\n"
		"/data/N, joins the cluster once (the controller's CA must match the pin), writes\n"
		"storagefsd's config and the ready file, and sends heartbeats. A node that has joined\n"
		"keeps its identity in its state directory and needs no token again.\n"
		"\n"
		"options:\n");
	config_usage(out, pv_opts, NOPTS);
	fprintf(out,
		"\n"
		"exit status: 0 done (--once) or stopped by SIGTERM; 1 failure; 2 bad usage or\n"
		"missing keys; 3 CA pin mismatch (--once); 4 join refused (--once); 5 node removed\n"
		"(--once).\n");
}

/* Sleeps ms, cut short by SIGTERM; false when a stop was requested. */
static bool sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	while (!stop_requested && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	return !stop_requested;
}

/* Exponential backoff with jitter: sleeps between half and all of *delay_s, doubles it. */
static bool backoff(struct pv_run *r, int *delay_s)
{
	long ms = *delay_s * 1000L;

	r->rnd = r->rnd * 1103515245u + 12345u;
	ms = ms / 2 + (long)((r->rnd >> 8) % (unsigned)(ms / 2 + 1));
	log_info("provd_retry in_ms=%ld", ms);
	*delay_s = *delay_s * 2 > PV_BACKOFF_MAX_S ? PV_BACKOFF_MAX_S : *delay_s * 2;
	return sleep_ms(ms);
}

/* One source of boot keys: the kernel command line or the config file. A missing default
 * /proc/cmdline is fine (not Linux); a missing named file is not. */
static int load_keys(struct pv_boot *b, const char *path, bool conf, bool optional)
{
	char why[160], *text = NULL;
	int rc = pv_read_alloc(path, PV_CMDLINE_MAX, &text, NULL);

	if (rc == -ENOENT && optional)
		return 0;
	if (rc) {
		fprintf(stderr, "cairn-provd: cannot read %s: %s\n", path, strerror(-rc));
		return -1;
	}
	rc = conf ? pv_cmdline_parse_conf(b, text, why, sizeof(why))
		  : pv_cmdline_parse(b, text, why, sizeof(why));
	free(text);
	if (rc) {
		fprintf(stderr, "cairn-provd: %s: %s\n", path, why);
		return -1;
	}
	return 0;
}

/* Flags, then the boot keys. 0, 1 (exit 0: --help/--version), or -1 (usage error). */
static int load_config(int argc, char **argv, struct pv_run *r)
{
	enum log_level level;
	int idx = config_parse_args(pv_opts, NOPTS, argc, argv);

	if (idx < 0)
		return -1;
	if (idx < argc) {
		fprintf(stderr, "cairn-provd: unexpected argument '%s' (see --help)\n", argv[idx]);
		return -1;
	}
	if (cfg.help || cfg.version) {
		if (cfg.help)
			usage(stdout);
		else
			printf("cairn-provd %s\n", PV_VERSION);
		return 1;
	}
	if (log_level_parse(cfg.log_level, &level) < 0) {
		fprintf(stderr, "cairn-provd: --log-level must be error, warn, info or debug\n");
		return -1;
	}
	if (cfg.data_dirs.n > PV_DATA_MAX || (cfg.no_disks && cfg.data_dirs.n)) {
		fprintf(stderr, "cairn-provd: give at most %d --data-dir, and not with --no-disks\n",
			PV_DATA_MAX);
		return -1;
	}
	log_init("cairn-provd", level, cfg.use_syslog);
	if (load_keys(&r->boot, cfg.cmdline, false, strcmp(cfg.cmdline, "/proc/cmdline") == 0) ||
	    (cfg.config && load_keys(&r->boot, cfg.config, true, false)))
		return -1;
	log_info("provd_step step=boot_keys controller=%s%s%s token=%s pin=%s wipe=%d",
		 r->boot.host[0] ? r->boot.host : "none", r->boot.host[0] ? ":" : "", r->boot.port,
		 r->boot.token[0] ? "set" : "none", r->boot.pin[0] ? "set" : "none", r->boot.nwipe);
	return 0;
}

/* (Re)builds the disk list: --data-dir, --no-disks, or the block devices. */
static int scan_disks(struct pv_run *r)
{
	struct pv_disk_opts o = { .dev_dir = cfg.dev_dir, .mount_root = cfg.mount_root,
				  .mounts = NULL, .mkfs = cfg.mkfs, .boot = &r->boot };
	char mounts[PATH_MAX];
	int rc;

	pv_disks_fini(&r->disks);
	if (cfg.data_dirs.n)
		rc = pv_disk_from_dirs(cfg.data_dirs.v, cfg.data_dirs.n, &r->disks);
	else if (cfg.no_disks)
		rc = pv_disk_from_dirs(NULL, 0, &r->disks);
	else {
		snprintf(mounts, sizeof(mounts), "%s/mounts", cfg.proc_root);
		o.mounts = mounts;
		rc = pv_disk_prepare(&o, &r->inv, &r->disks);
	}
	if (rc)
		return rc;
	r->ndata = pv_disk_data_dirs(&r->disks, r->data, PV_DATA_MAX);
	log_info("provd_step step=disks disks=%d usable=%d first=%s", r->disks.n, r->ndata,
		 r->ndata ? r->data[0] : "none");
	return 0;
}

/* Where the identity is (or will be): --state-dir; else the first data dir holding one,
 * else the first data dir; else RAM. */
static void pick_state_dir(struct pv_run *r)
{
	char path[PATH_MAX];

	r->state_in_ram = false;
	if (cfg.state_dir) {
		pv_copy(r->state_dir, sizeof(r->state_dir), cfg.state_dir);
		return;
	}
	for (int i = 0; i < r->ndata; i++) {
		snprintf(path, sizeof(path), "%s/" PV_DISK_STATE "/node.json", r->data[i]);
		if (access(path, F_OK) == 0) {
			snprintf(r->state_dir, sizeof(r->state_dir), "%s/" PV_DISK_STATE, r->data[i]);
			return;
		}
	}
	if (r->ndata) {
		snprintf(r->state_dir, sizeof(r->state_dir), "%s/" PV_DISK_STATE, r->data[0]);
		return;
	}
	pv_copy(r->state_dir, sizeof(r->state_dir), PV_RAM_STATE);
	r->state_in_ram = true;
}

/* A first join, retried with backoff (once with --once). 0 or an exit status. */
static int join_loop(struct pv_run *r)
{
	char why[400];
	int delay = PV_BACKOFF_MIN_S, rc;

	if (pv_boot_check_join(&r->boot, why, sizeof(why))) {
		log_errorx("provd_cannot_join msg=\"no saved identity and %s on the kernel command line or --config\"",
			   why);
		return EX_USAGE;
	}
	for (;;) {
		rc = pv_join(&r->boot, &r->inv, r->id, why, sizeof(why));
		if (!rc)
			return EX_OK;
		if (rc == -EACCES)
			log_errorx("provd_join_refused controller=%s:%s reason=\"%s\"", r->boot.host,
				   r->boot.port, why);
		else if (rc != -EKEYREJECTED)
			log_warnx("provd_join_failed controller=%s:%s rc=%d err=\"%s\" reason=\"%s\"",
				  r->boot.host, r->boot.port, rc, strerror(-rc), why);
		if (cfg.once)
			return rc == -EKEYREJECTED ? EX_PIN : rc == -EACCES ? EX_REFUSED : EX_FAIL;
		if (!backoff(r, &delay))
			return EX_OK;
	}
}

/* Loads the saved identity or joins; saves a new one. 0 or an exit status. */
static int obtain_identity(struct pv_run *r)
{
	int rc = pv_state_load(r->state_dir, r->id), ex;

	if (rc == 0) {
		log_info("provd_step step=identity node_id=%s dir=%s source=saved", r->id->node_id,
			 r->state_dir);
		return EX_OK;
	}
	if (rc == -EUCLEAN)
		log_errorx("provd_identity_damaged dir=%s msg=\"joining again\"", r->state_dir);
	ex = join_loop(r);
	if (ex != EX_OK || stop_requested)
		return ex;
	rc = pv_state_save(r->state_dir, r->id);
	if (rc) {
		log_errorx("provd_state_save_failed dir=%s err=\"%s\"", r->state_dir, strerror(-rc));
		return EX_FAIL;
	}
	log_info("provd_step step=identity node_id=%s dir=%s source=join", r->id->node_id,
		 r->state_dir);
	return EX_OK;
}

static int write_ready(const struct pv_run *r)
{
	char buf[PV_DATA_MAX * (PV_DIR_MAX + 1) + 2];
	size_t len = 0;

	for (int i = 0; i < r->ndata; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s", i ? " " : "", r->data[i]);
	buf[len++] = '\n';
	return file_write_atomic(cfg.ready_file, buf, len, 0644);
}

/* The storagefsd config and the ready file, after the label check. */
static int publish(struct pv_run *r)
{
	struct pv_sfsconf sc = { .region = cfg.region, .cluster_dir = r->state_dir,
				 .internal_port = cfg.internal_port, .dirs = r->data };
	int rc;

	pv_disk_check_labels(&r->disks, r->id->cluster_id);
	r->ndata = sc.ndirs = pv_disk_data_dirs(&r->disks, r->data, PV_DATA_MAX);
	rc = pv_sfsconf_write(cfg.sfs_conf, r->id, &sc);
	if (rc) {
		log_errorx("provd_sfs_conf_failed path=%s err=\"%s\"", cfg.sfs_conf, strerror(-rc));
		return rc;
	}
	log_info("provd_step step=sfs_conf path=%s data_dirs=%d", cfg.sfs_conf, r->ndata);
	rc = write_ready(r);
	if (rc) {
		log_errorx("provd_ready_file_failed path=%s err=\"%s\"", cfg.ready_file, strerror(-rc));
		return rc;
	}
	log_info("provd_step step=ready path=%s", cfg.ready_file);
	return 0;
}

/* Before a disk exists the identity lives in RAM: look for disks again, and once one is
 * usable move the identity onto it and hand storagefsd its config. */
static void late_disks(struct pv_run *r)
{
	char from[PATH_MAX];
	int rc;

	if (!r->state_in_ram || cfg.data_dirs.n || cfg.no_disks)
		return;
	if (r->rescans++ % PV_RESCAN_EVERY)	/* probing logs every foreign disk: not each beat */
		return;
	if (scan_disks(r) || r->ndata == 0)
		return;
	pv_copy(from, sizeof(from), r->state_dir);
	pick_state_dir(r);
	rc = pv_state_move(from, r->state_dir, r->id);
	if (rc) {
		log_errorx("provd_state_move_failed from=%s to=%s err=\"%s\"", from, r->state_dir,
			   strerror(-rc));
		pv_copy(r->state_dir, sizeof(r->state_dir), from);
		r->state_in_ram = true;
		return;
	}
	log_info("provd_step step=state_moved from=%s to=%s", from, r->state_dir);
	publish(r);
}

static void log_reply(const struct pv_hb_out *out, char *last, size_t max)
{
	if (strcmp(out->state, last) == 0) {
		log_debug("provd_heartbeat state=%s", out->state);
		return;
	}
	log_info("provd_step step=heartbeat state=%s previous=%s", out->state, last[0] ? last : "none");
	if (strcmp(out->state, "draining") == 0)
		log_warnx("provd_draining msg=\"the controller is draining this node: its data is being moved elsewhere; keep it running\"");
	pv_copy(last, max, out->state);
}

/* The S3 endpoint and the internal address to report, both at the address this host
 * reaches the controller from (looked up at each heartbeat: it may change); "" when unknown. */
static void own_addrs(const struct pv_run *r, char *ep, size_t ep_max, char *ia, size_t ia_max)
{
	char src[64];		/* an address: at most "[" INET6_ADDRSTRLEN "]" */

	if (pv_source_addr(r->host, r->port, src, sizeof(src)))
		src[0] = 0;
	if (cfg.s3_endpoint)
		pv_copy(ep, ep_max, cfg.s3_endpoint);
	else if (src[0])
		snprintf(ep, ep_max, "http://%s:%ld", src, cfg.s3_port);
	else
		ep[0] = 0;
	if (src[0])
		snprintf(ia, ia_max, "%s:%ld", src, cfg.internal_port);
	else
		ia[0] = 0;
}

/* Heartbeats until SIGTERM (one with --once). An exit status. */
static int heartbeat_loop(struct pv_run *r)
{
	char ep[320], ia[96], last[32] = "";
	struct pv_hb_in in = { .id = r->id, .host = r->host, .port = r->port, .disks = &r->disks,
			       .s3_endpoint = ep, .internal_addr = ia, .proc_root = cfg.proc_root };
	struct pv_hb_out out;
	int interval = r->id->heartbeat_s, delay = PV_BACKOFF_MIN_S, rc;

	for (;;) {
		late_disks(r);
		own_addrs(r, ep, sizeof(ep), ia, sizeof(ia));
		rc = pv_heartbeat(&in, &out);
		if (rc == 0) {
			log_reply(&out, last, sizeof(last));
			interval = out.heartbeat_s ? out.heartbeat_s : interval;
			delay = PV_BACKOFF_MIN_S;
			if (cfg.once || !sleep_ms(interval * 1000L))
				return EX_OK;
			continue;
		}
		if (rc == -EPERM) {
			log_errorx("provd_node_removed node_id=%s msg=\"the controller removed this node (state gone): heartbeats stop; storagefsd keeps serving until an operator acts\"",
				   r->id->node_id);
			if (cfg.once)
				return EX_REMOVED;
			while (sleep_ms(3600 * 1000L))
				;
			return EX_OK;
		}
		log_warnx("provd_heartbeat_failed controller=%s:%s rc=%d err=\"%s\"", r->host, r->port,
			  rc, strerror(-rc));
		if (cfg.once)
			return rc == -EACCES ? EX_REFUSED : EX_FAIL;
		if (!backoff(r, &delay))
			return EX_OK;
	}
}

/* An identity left in RAM by an earlier run, now that a disk exists: move it there. */
static void adopt_ram_identity(struct pv_run *r)
{
	char path[PATH_MAX + 16];

	snprintf(path, sizeof(path), "%s/node.json", r->state_dir);
	if (cfg.state_dir || r->state_in_ram || access(path, F_OK) == 0 ||
	    access(PV_RAM_STATE "/node.json", F_OK) != 0 || pv_state_load(PV_RAM_STATE, r->id))
		return;
	if (pv_state_move(PV_RAM_STATE, r->state_dir, r->id) == 0)
		log_info("provd_step step=state_moved from=" PV_RAM_STATE " to=%s", r->state_dir);
}

/* A saved identity from another CA than the one the node was booted for: it cannot reach
 * that controller; the operator has to decide (remove the state to join again). */
static void warn_pin(const struct pv_run *r)
{
	char saved[PKI_PIN_HEX];

	if (r->boot.pin[0] && pki_pin(r->id->ca_pem, saved) == 0 && strcmp(saved, r->boot.pin) != 0)
		log_errorx("provd_identity_other_ca saved=sha256:%s boot=sha256:%s dir=%s msg=\"this node joined another cluster; remove its state directory to join the new one\"",
			   saved, r->boot.pin, r->state_dir);
}

static int run(struct pv_run *r)
{
	char why[64];
	int rc, ex;

	rc = pv_inv_collect(cfg.sys_root, cfg.proc_root, &r->inv);
	if (rc)
		return EX_FAIL;
	log_info("provd_step step=inventory machine_id=%s cpus=%d mem_bytes=%llu nics=%d disks=%d",
		 r->inv.machine_id, r->inv.cpus, (unsigned long long)r->inv.mem_bytes, r->inv.nnics,
		 r->inv.ndisks);
	if (scan_disks(r))
		return EX_FAIL;
	pick_state_dir(r);
	adopt_ram_identity(r);
	ex = obtain_identity(r);
	if (ex != EX_OK || stop_requested)
		return ex;
	if (r->boot.host[0]) {
		pv_copy(r->host, sizeof(r->host), r->boot.host);
		pv_copy(r->port, sizeof(r->port), r->boot.port);
	} else if (pv_split_hostport(r->id->controller, r->host, sizeof(r->host), r->port,
				     sizeof(r->port))) {
		pv_copy(why, sizeof(why), r->id->controller);
		log_errorx("provd_bad_controller controller=\"%s\"", why);
		return EX_FAIL;
	}
	warn_pin(r);
	if (publish(r))
		return EX_FAIL;
	return heartbeat_loop(r);
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_stop };
	struct pv_run *r = calloc(1, sizeof(*r));
	int ex;

	if (!r || !(r->id = malloc(sizeof(*r->id)))) {
		fprintf(stderr, "cairn-provd: out of memory\n");
		return EX_FAIL;
	}
	ex = load_config(argc, argv, r);
	if (ex)
		ex = ex > 0 ? EX_OK : EX_USAGE;
	else {
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
		signal(SIGPIPE, SIG_IGN);
		r->rnd = (unsigned)getpid() ^ (unsigned)time(NULL);
		ex = run(r);
		log_info("provd_exit status=%d", ex);
	}
	pv_disks_fini(&r->disks);
	pv_inv_fini(&r->inv);
	free(r->id);
	free(r);
	return ex;
}
