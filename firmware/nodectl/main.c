/* main.c — cairn-nodectl: the operator's CLI for the controller (docs/PROVISIONING.md):
 * join tokens, the node list, drain and remove, the cluster map (docs/CLUSTER.md), the CA
 * pin, and the dnsmasq snippet that network-boots a subnet. It trusts only the cluster CA
 * and requires the controller's CN. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../lib/config.h"
#include "../../lib/http1.h"
#include "../../lib/json.h"
#include "../../lib/pki.h"
#include "../../lib/tls.h"

#define NCTL_TIMEOUT_MS		10000
#define NCTL_POS_MAX		4
#define NCTL_SERVER_CN		"cairn-controller"

/* The command line: the one process-wide state. */
struct nctl_config {
	const char *controller;
	const char *state;
	const char *ca;
	const char *admin_token;
	const char *ttl;
	long uses;
	int boot;
	const char *subnet;
	const char *http;
	int json;
	int help;
};

static struct nctl_config cfg = {
	.controller = "127.0.0.1:7443",
	.ttl = "1h",
	.uses = 1,
};

static const struct config_opt nctl_opts[] = {
	{ "controller", CONFIG_STR, &cfg.controller, 0, 0, "HOST:PORT", "the controller (default 127.0.0.1:7443)" },
	{ "state", CONFIG_STR, &cfg.state, 0, 0, "DIR", "the controller's state directory: its ca.crt and admin.token are used" },
	{ "ca", CONFIG_STR, &cfg.ca, 0, 0, "FILE", "the cluster CA certificate (instead of --state)" },
	{ "admin-token", CONFIG_STR, &cfg.admin_token, 0, 0, "FILE", "the file holding the admin token (instead of --state)" },
	{ "ttl", CONFIG_STR, &cfg.ttl, 0, 0, "DURATION", "token create: lifetime, e.g. 90s, 30m, 1h, 7d (default 1h)" },
	{ "uses", CONFIG_INT, &cfg.uses, 1, 10000, "N", "token create: how many nodes may join with it (default 1)" },
	{ "boot", CONFIG_FLAG, &cfg.boot, 0, 0, NULL, "token create: also put it in the controller's boot.ipxe" },
	{ "subnet", CONFIG_STR, &cfg.subnet, 0, 0, "CIDR", "pxe-snippet: the subnet to boot, e.g. 10.0.0.0/24" },
	{ "http", CONFIG_STR, &cfg.http, 0, 0, "URL", "pxe-snippet: the controller's boot port, e.g. http://10.0.0.2:8080" },
	{ "json", CONFIG_FLAG, &cfg.json, 0, 0, NULL, "map: print the controller's JSON as it is" },
	{ "help", CONFIG_FLAG, &cfg.help, 0, 0, NULL, "show this help" },
};
#define NOPTS ((int)(sizeof(nctl_opts) / sizeof(nctl_opts[0])))

static void usage(FILE *out)
{
	fprintf(out,
		"usage: cairn-nodectl [--controller HOST:PORT] [--state DIR | --ca FILE --admin-token FILE] COMMAND\n"
		"\n"
		"commands:\n"
		"  token create [--ttl 1h] [--uses N] [--boot]   a join token (printed once)\n"
		"  nodes                                         the nodes, one per line\n"
		"  node ID                                       one node, as JSON\n"
		"  drain ID                                      mark a node draining\n"
		"  remove ID                                     remove a node (its certificate is refused from then on)\n"
		"  map [--json]                                  the cluster map: its version, then per node:\n"
		"                                                id state weight(GiB) internal_addr seed\n"
		"  pin                                           the CA pin for cairn.ca-hash= (from the CA file)\n"
		"  pxe-snippet --subnet CIDR --http URL          a dnsmasq config: proxy DHCP + TFTP chain-loading iPXE\n"
		"\n"
		"options:\n");
	config_usage(out, nctl_opts, NOPTS);
	fprintf(out,
		"\n"
		"exit status: 0 done, 1 the controller refused or could not be reached, 2 usage.\n"
		"\n"
		"example:\n"
		"  cairn-nodectl --state /var/lib/cairn-controller token create --ttl 2h --uses 10 --boot\n");
}

/* Options anywhere; the other words into pos[]. Returns their count or -1. */
static int parse_args(int argc, char **argv, const char *pos[NCTL_POS_MAX])
{
	int i = 0, npos = 0;

	for (;;) {
		int k = config_parse_args(nctl_opts, NOPTS, argc - i, argv + i);

		if (k < 0)
			return -1;
		i += k;
		if (i >= argc)
			return npos;
		if (npos == NCTL_POS_MAX) {
			fprintf(stderr, "cairn-nodectl: too many arguments (see --help)\n");
			return -1;
		}
		pos[npos++] = argv[i];
	}
}

/* ------------------------------------------------------------------ files and calls */

static int read_file(const char *path, char *buf, size_t max)
{
	FILE *f = fopen(path, "re");
	size_t n;

	if (!f) {
		fprintf(stderr, "cairn-nodectl: %s: %s\n", path, strerror(errno));
		return -1;
	}
	n = fread(buf, 1, max - 1, f);
	buf[n] = 0;
	fclose(f);
	if (n == 0 || n == max - 1) {
		fprintf(stderr, "cairn-nodectl: %s: empty or too large\n", path);
		return -1;
	}
	return 0;
}

/* The CA (and, when admin, the admin token) from --ca/--admin-token or --state. */
static int load_creds(char ca[PKI_PEM_MAX], char token[256], int admin)
{
	char path[4096];

	if (!cfg.ca && !cfg.state) {
		fprintf(stderr, "cairn-nodectl: give --state DIR or --ca FILE (see --help)\n");
		return -1;
	}
	snprintf(path, sizeof(path), "%s/ca.crt", cfg.state ? cfg.state : "");
	if (read_file(cfg.ca ? cfg.ca : path, ca, PKI_PEM_MAX))
		return -1;
	if (!admin)
		return 0;
	if (!cfg.admin_token && !cfg.state) {
		fprintf(stderr, "cairn-nodectl: give --state DIR or --admin-token FILE (see --help)\n");
		return -1;
	}
	snprintf(path, sizeof(path), "%s/admin.token", cfg.state ? cfg.state : "");
	if (read_file(cfg.admin_token ? cfg.admin_token : path, token, 256))
		return -1;
	token[strcspn(token, " \t\r\n")] = 0;
	return 0;
}

/* Prints the controller's error reply ({"error","message"}) to stderr. */
static void print_error(const struct http1_resp *r)
{
	struct json_tok t[16];
	char code[64] = "?", msg[512] = "";

	if (r->body && json_parse(r->body, r->body_len, t, 16) > 0 && t[0].type == JSON_OBJ) {
		json_str(r->body, t, 0, "error", code, sizeof(code));
		json_str(r->body, t, 0, "message", msg, sizeof(msg));
	}
	fprintf(stderr, "cairn-nodectl: the controller answered %d %s: %s\n", r->status, code, msg);
}

/* One admin request; the reply's body (malloc'ed) into *out when 2xx. 0, or -1 after
 * printing why. */
static int call(const char *method, const char *path, const char *body, struct http1_resp *out)
{
	static char ca[PKI_PEM_MAX];
	char token[256], host[256];
	const char *colon = strrchr(cfg.controller, ':');
	struct tls_conn *c = NULL;
	int err;

	if (load_creds(ca, token, 1))
		return -1;
	if (!colon || colon == cfg.controller || (size_t)(colon - cfg.controller) >= sizeof(host)) {
		fprintf(stderr, "cairn-nodectl: --controller wants HOST:PORT\n");
		return -1;
	}
	snprintf(host, sizeof(host), "%.*s", (int)(colon - cfg.controller), cfg.controller);
	if (host[0] == '[') {	/* [v6]:port */
		memmove(host, host + 1, strlen(host));
		host[strcspn(host, "]")] = 0;
	}
	struct tls_client_opts o = { .ca_pem = ca, .peer_cn = NCTL_SERVER_CN,
				     .timeout_ms = NCTL_TIMEOUT_MS };
	struct http1_req req = { .method = method, .host = cfg.controller, .path = path,
				 .ctype = body ? "application/json" : NULL, .body = body,
				 .body_len = body ? strlen(body) : 0, .bearer = token };

	err = tls_connect(host, colon + 1, &o, &c);
	if (!err)
		err = http1_call(c, &req, out);
	tls_close(c);
	if (err) {
		fprintf(stderr, "cairn-nodectl: %s %s: %s%s\n", cfg.controller, path, strerror(-err),
			err == -EKEYREJECTED ? " (not the controller of this CA)" : "");
		return -1;
	}
	if (out->status / 100 != 2) {
		print_error(out);
		free(out->body);
		out->body = NULL;
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ commands */

/* "90", "90s", "30m", "1h", "7d" into seconds; -1 when malformed. */
static long long parse_duration(const char *s)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || v <= 0)
		return -1;
	if (!*end || strcmp(end, "s") == 0)
		return v;
	if (strcmp(end, "m") == 0)
		return v * 60;
	if (strcmp(end, "h") == 0)
		return v * 3600;
	if (strcmp(end, "d") == 0)
		return v * 86400;
	return -1;
}

static int parse_reply(const struct http1_resp *r, struct json_tok **toks)
{
	int max = (int)(r->body_len / 2 + 2), n;

	*toks = malloc((size_t)max * sizeof(**toks));
	n = *toks ? json_parse(r->body, r->body_len, *toks, max) : -ENOMEM;
	if (n < 1 || (*toks)[0].type != JSON_OBJ) {
		fprintf(stderr, "cairn-nodectl: the controller's reply is not a JSON object\n");
		free(*toks);
		*toks = NULL;
		return -1;
	}
	return 0;
}

static int cmd_token_create(void)
{
	struct http1_resp r = { 0 };
	struct json_tok *t = NULL;
	char body[128], token[128];
	long long ttl = parse_duration(cfg.ttl);
	int64_t expires = 0, uses = 0;
	int rc = 1;

	if (ttl < 0) {
		fprintf(stderr, "cairn-nodectl: --ttl wants a duration like 90s, 30m, 1h or 7d\n");
		return 2;
	}
	snprintf(body, sizeof(body), "{\"ttl_s\": %lld, \"uses\": %ld, \"boot\": %s}", ttl, cfg.uses,
		 cfg.boot ? "true" : "false");
	if (call("POST", "/v1/tokens", body, &r) || parse_reply(&r, &t))
		goto out;
	if (json_str(r.body, t, 0, "token", token, sizeof(token)) ||
	    json_int(r.body, t, 0, "expires_ms", &expires) || json_int(r.body, t, 0, "uses", &uses)) {
		fprintf(stderr, "cairn-nodectl: the reply has no token\n");
		goto out;
	}
	time_t when = (time_t)(expires / 1000);
	char iso[32];

	strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", gmtime(&when));
	printf("%s\n", token);
	fprintf(stderr, "expires %s, %lld use%s%s; shown once, keep it secret\n", iso,
		(long long)uses, uses == 1 ? "" : "s", cfg.boot ? ", in boot.ipxe" : "");
	rc = 0;
out:
	free(t);
	free(r.body);
	return rc;
}

static void age(int64_t then_ms, char out[32])
{
	struct timespec ts;
	int64_t s;

	clock_gettime(CLOCK_REALTIME, &ts);
	s = ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 - then_ms) / 1000;
	if (then_ms <= 0)
		snprintf(out, 32, "never");
	else if (s < 120)
		snprintf(out, 32, "%llds ago", (long long)(s < 0 ? 0 : s));
	else if (s < 7200)
		snprintf(out, 32, "%lldm ago", (long long)s / 60);
	else
		snprintf(out, 32, "%lldh ago", (long long)s / 3600);
}

/* The disks a node reported in its last heartbeat, else those of its inventory. */
static int disk_count(const char *text, const struct json_tok *t, int node)
{
	int d = json_find(text, t, node, "disks"), inv;

	if (d >= 0 && t[d].type == JSON_ARR && t[d].size > 0)
		return t[d].size;
	inv = json_find(text, t, node, "inventory");
	d = inv >= 0 && t[inv].type == JSON_OBJ ? json_find(text, t, inv, "disks") : -1;
	return d >= 0 && t[d].type == JSON_ARR ? t[d].size : 0;
}

static void print_node_row(const char *text, const struct json_tok *t, int n)
{
	char id[32] = "?", state[16] = "?", machine[256] = "-", host[256] = "-", addr[64] = "-";
	char seen[32];
	int64_t last = 0;

	json_str(text, t, n, "node_id", id, sizeof(id));
	json_str(text, t, n, "state", state, sizeof(state));
	json_str(text, t, n, "machine_id", machine, sizeof(machine));
	json_str(text, t, n, "hostname", host, sizeof(host));
	json_str(text, t, n, "addr", addr, sizeof(addr));
	json_int(text, t, n, "last_seen_ms", &last);
	age(last, seen);
	printf("%-10s %-9s %-36s %-20s %-15s %-10s %d\n", id, state, machine[0] ? machine : "-",
	       host[0] ? host : "-", addr[0] ? addr : "-", seen, disk_count(text, t, n));
}

static int cmd_nodes(void)
{
	struct http1_resp r = { 0 };
	struct json_tok *t = NULL;
	int arr, rc = 1;

	if (call("GET", "/v1/nodes", NULL, &r) || parse_reply(&r, &t))
		goto out;
	arr = json_find(r.body, t, 0, "nodes");
	if (arr < 0 || t[arr].type != JSON_ARR) {
		fprintf(stderr, "cairn-nodectl: the reply has no node list\n");
		goto out;
	}
	printf("%-10s %-9s %-36s %-20s %-15s %-10s %s\n", "ID", "STATE", "MACHINE", "HOSTNAME",
	       "ADDR", "LAST-SEEN", "DISKS");
	for (int i = 0; i < t[arr].size; i++)
		print_node_row(r.body, t, json_elem(t, arr, i));
	rc = 0;
out:
	free(t);
	free(r.body);
	return rc;
}

static bool id_ok(const char *id)
{
	size_t n = strlen(id);

	return n > 0 && n < 16 && strspn(id, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

/* node ID, drain ID, remove ID: the node as the controller has it now. */
static int cmd_node(const char *method, const char *id, const char *suffix, int json)
{
	struct http1_resp r = { 0 };
	struct json_tok *t = NULL;
	char path[64], state[16] = "?";
	int rc = 1;

	if (!id_ok(id)) {
		fprintf(stderr, "cairn-nodectl: '%s' is not a node id (like node-0001)\n", id);
		return 2;
	}
	snprintf(path, sizeof(path), "/v1/nodes/%s%s", id, suffix);
	if (call(method, path, NULL, &r))
		goto out;
	if (json) {
		fwrite(r.body, 1, r.body_len, stdout);
	} else {
		if (parse_reply(&r, &t))
			goto out;
		json_str(r.body, t, 0, "state", state, sizeof(state));
		printf("%s %s\n", id, state);
	}
	rc = 0;
out:
	free(t);
	free(r.body);
	return rc;
}

static void print_map_row(const char *text, const struct json_tok *t, int n)
{
	char id[32] = "?", state[16] = "?", iaddr[64] = "", seed[32] = "?";
	int64_t weight = 0;

	json_str(text, t, n, "node_id", id, sizeof(id));
	json_str(text, t, n, "state", state, sizeof(state));
	json_int(text, t, n, "weight", &weight);
	json_str(text, t, n, "internal_addr", iaddr, sizeof(iaddr));
	json_str(text, t, n, "seed", seed, sizeof(seed));
	printf("%s %s %lld %s %s\n", id, state, (long long)weight, iaddr[0] ? iaddr : "-", seed);
}

/* map: "version N", then one line per node; --json: the reply as it came. */
static int cmd_map(void)
{
	struct http1_resp r = { 0 };
	struct json_tok *t = NULL;
	int64_t version;
	int arr, rc = 1;

	if (call("GET", "/v1/map", NULL, &r))
		goto out;
	if (cfg.json) {
		fwrite(r.body, 1, r.body_len, stdout);
		rc = 0;
		goto out;
	}
	if (parse_reply(&r, &t))
		goto out;
	arr = json_find(r.body, t, 0, "nodes");
	if (json_int(r.body, t, 0, "version", &version) || arr < 0 || t[arr].type != JSON_ARR) {
		fprintf(stderr, "cairn-nodectl: the reply is not a map\n");
		goto out;
	}
	printf("version %lld\n", (long long)version);
	for (int i = 0; i < t[arr].size; i++)
		print_map_row(r.body, t, json_elem(t, arr, i));
	rc = 0;
out:
	free(t);
	free(r.body);
	return rc;
}

static int cmd_pin(void)
{
	char ca[PKI_PEM_MAX], token[256], pin[PKI_PIN_HEX];

	if (load_creds(ca, token, 0))
		return 1;
	if (pki_pin(ca, pin)) {
		fprintf(stderr, "cairn-nodectl: the CA file is not a PEM certificate\n");
		return 1;
	}
	printf("sha256:%s\n", pin);
	return 0;
}

/* "a.b.c.d/len" into the network address and netmask (dotted). -1 when malformed. */
static int parse_cidr(const char *cidr, char net[16], char mask[16])
{
	unsigned a, b, c, d, len;
	char tail;
	uint32_t ip, m;

	if (sscanf(cidr, "%u.%u.%u.%u/%u%c", &a, &b, &c, &d, &len, &tail) != 5 ||
	    a > 255 || b > 255 || c > 255 || d > 255 || len < 1 || len > 32)
		return -1;
	m = len == 32 ? 0xffffffffu : ~(0xffffffffu >> len);
	ip = (a << 24 | b << 16 | c << 8 | d) & m;
	snprintf(net, 16, "%u.%u.%u.%u", ip >> 24, ip >> 16 & 255, ip >> 8 & 255, ip & 255);
	snprintf(mask, 16, "%u.%u.%u.%u", m >> 24, m >> 16 & 255, m >> 8 & 255, m & 255);
	return 0;
}

static int cmd_pxe_snippet(void)
{
	static const char tftp[] = "/srv/cairn/tftp";
	char net[16], mask[16], url[512];
	size_t n;

	if (!cfg.subnet || parse_cidr(cfg.subnet, net, mask) < 0) {
		fprintf(stderr, "cairn-nodectl: pxe-snippet wants --subnet A.B.C.D/LEN\n");
		return 2;
	}
	n = cfg.http ? strlen(cfg.http) : 0;
	if (n < 8 || n > 400 || strncmp(cfg.http, "http://", 7) != 0 ||
	    strcspn(cfg.http, " \t\r\n'\"\\") != n) {
		fprintf(stderr, "cairn-nodectl: pxe-snippet wants --http http://HOST:PORT (the controller's --boot-listen)\n");
		return 2;
	}
	snprintf(url, sizeof(url), "%.*s/boot.ipxe", (int)(cfg.http[n - 1] == '/' ? n - 1 : n), cfg.http);
	printf("# Cairn network boot for %s: dnsmasq as a proxy DHCP server (the network's own DHCP\n"
	       "# server still hands out the addresses) and a TFTP server. Legacy BIOS PXE ROMs load\n"
	       "# iPXE (undionly.kpxe) first; iPXE then runs cairn.ipxe, which chain-loads the\n"
	       "# controller's %s (Xen, dom0 kernel, initramfs over HTTP).\n"
	       "# Generated by cairn-nodectl pxe-snippet. Install (Debian: apt-get install dnsmasq ipxe):\n"
	       "#   save this as /etc/dnsmasq.d/cairn-pxe.conf, then\n"
	       "#   mkdir -p %s && cp /usr/lib/ipxe/undionly.kpxe %s/\n"
	       "#   printf '#!ipxe\\nchain %s\\n' > %s/cairn.ipxe\n"
	       "#   systemctl restart dnsmasq\n"
	       "port=0\n"
	       "log-dhcp\n"
	       "dhcp-range=%s,proxy,%s\n"
	       "dhcp-no-override\n"
	       "enable-tftp\n"
	       "tftp-root=%s\n"
	       "# iPXE identifies itself with DHCP option 175.\n"
	       "dhcp-match=set:ipxe,175\n"
	       "pxe-service=tag:!ipxe,x86PC,\"Cairn: load iPXE\",undionly.kpxe\n"
	       "pxe-service=tag:ipxe,x86PC,\"Cairn: boot\",cairn.ipxe\n",
	       cfg.subnet, url, tftp, tftp, url, tftp, net, mask, tftp);
	return 0;
}

static int dispatch(int npos, const char *pos[])
{
	const char *cmd = npos > 0 ? pos[0] : "";

	if (strcmp(cmd, "token") == 0 && npos == 2 && strcmp(pos[1], "create") == 0)
		return cmd_token_create();
	if (strcmp(cmd, "nodes") == 0 && npos == 1)
		return cmd_nodes();
	if (strcmp(cmd, "node") == 0 && npos == 2)
		return cmd_node("GET", pos[1], "", 1);
	if (strcmp(cmd, "drain") == 0 && npos == 2)
		return cmd_node("POST", pos[1], "/drain", 0);
	if (strcmp(cmd, "remove") == 0 && npos == 2)
		return cmd_node("DELETE", pos[1], "", 0);
	if (strcmp(cmd, "map") == 0 && npos == 1)
		return cmd_map();
	if (strcmp(cmd, "pin") == 0 && npos == 1)
		return cmd_pin();
	if (strcmp(cmd, "pxe-snippet") == 0 && npos == 1)
		return cmd_pxe_snippet();
	fprintf(stderr, "cairn-nodectl: %s%s (see --help)\n", npos ? "unknown command or wrong arguments: " : "no command",
		cmd);
	return 2;
}

int main(int argc, char **argv)
{
	const char *pos[NCTL_POS_MAX];
	int npos = parse_args(argc, argv, pos);

	if (npos < 0)
		return 2;
	if (cfg.help) {
		usage(stdout);
		return 0;
	}
	return dispatch(npos, pos);
}
