/* main.c — cairn-ipmi: what the node's BMC knows, read through the kernel's IPMI driver
 * (/dev/ipmi0): identity and chassis state, the sensors of its SDR repository with their
 * readings, the System Event Log, and the Serial-over-LAN settings. Read-only. */
#include "ipmi_dev.h"
#include "ipmi_sdr.h"
#include "ipmi_sel.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_BMC	1	/* the BMC refused or did not answer */
#define EXIT_USAGE	2
#define EXIT_NODEV	3	/* no /dev/ipmi0 */
#define SDR_CHUNK	16	/* bytes per Get SDR: KCS BMCs often refuse much more */
#define SDR_RECORDS_MAX	1024	/* a loop guard against a repository that links in circles */
#define SEL_ENTRIES_MAX	8192
#define SEL_SHOW_MAX	200

static void usage(FILE *out)
{
	fprintf(out,
		"usage: cairn-ipmi [--dev PATH] COMMAND\n"
		"  info            the BMC's identity (Get Device ID) and the chassis state\n"
		"  sensors         every full/compact sensor of the SDR repository with its reading\n"
		"  sel [N]         the System Event Log: its size and the last N entries (default 20)\n"
		"  sol [CHANNEL]   the Serial-over-LAN settings of a LAN channel (default 1)\n"
		"Reads /dev/ipmi0 (kernel modules ipmi_si and ipmi_devintf). Exit status: 0 done,\n"
		"1 the BMC refused or did not answer, 2 usage, 3 no IPMI device (no BMC found).\n");
}

/* One command; prints why on failure. 0, or EXIT_BMC. */
static int cmd(struct ipmi_dev *d, uint8_t netfn, uint8_t c, const uint8_t *req, size_t reqlen,
	       uint8_t *resp, size_t cap, size_t *len, const char *what, uint8_t *ccout)
{
	uint8_t cc = 0;
	int rc = ipmi_dev_cmd(d, netfn, c, req, reqlen, &cc, resp, cap, len);

	if (ccout)
		*ccout = rc < 0 ? 0xff : cc;
	if (rc < 0) {
		fprintf(stderr, "cairn-ipmi: %s: %s\n", what, strerror(-rc));
		return EXIT_BMC;
	}
	if (cc != 0) {
		if (!ccout)
			fprintf(stderr, "cairn-ipmi: %s: completion code 0x%02x %s\n", what, cc,
				ipmi_cc_name(cc));
		return EXIT_BMC;
	}
	return 0;
}

static const char *restore_policy(unsigned p)
{
	static const char *const names[] = { "stay off", "restore previous", "always on", "unknown" };

	return names[p & 3];
}

static int do_info(struct ipmi_dev *d)
{
	uint8_t r[IPMI_MSG_MAX];
	size_t n;
	int rc = cmd(d, IPMI_NETFN_APP, 0x01, NULL, 0, r, sizeof(r), &n, "Get Device ID", NULL);

	if (rc)
		return rc;
	if (n < 11) {
		fprintf(stderr, "cairn-ipmi: Get Device ID: %zu bytes, expected 11\n", n);
		return EXIT_BMC;
	}
	printf("bmc:           device id 0x%02x revision %u, firmware %u.%02x, IPMI %u.%u%s\n",
	       r[0], r[1] & 0x0f, r[2] & 0x7f, r[3], r[4] & 0x0f, r[4] >> 4,
	       r[2] & 0x80 ? " (firmware update in progress)" : "");
	printf("manufacturer:  %u (IANA enterprise number)\n",
	       (unsigned)(r[6] | r[7] << 8 | (r[8] & 0x0f) << 16));
	printf("product:       %u\n", (unsigned)(r[9] | r[10] << 8));
	rc = cmd(d, IPMI_NETFN_CHASSIS, 0x01, NULL, 0, r, sizeof(r), &n, "Get Chassis Status", NULL);
	if (rc)
		return rc;
	if (n < 3) {
		fprintf(stderr, "cairn-ipmi: Get Chassis Status: %zu bytes, expected 3\n", n);
		return EXIT_BMC;
	}
	printf("chassis power: %s, after power loss: %s%s%s%s%s\n", r[0] & 1 ? "on" : "off",
	       restore_policy(r[0] >> 5), r[0] & 0x02 ? ", power overload" : "",
	       r[0] & 0x08 ? ", power fault" : "", r[0] & 0x10 ? ", power control fault" : "",
	       r[0] & 0x04 ? ", interlock" : "");
	printf("chassis:       %s%s%s%s\n", r[2] & 0x0f ? "" : "no fault",
	       r[2] & 0x01 ? "intrusion " : "", r[2] & 0x04 ? "drive fault " : "",
	       r[2] & 0x08 ? "cooling/fan fault" : "");
	return 0;
}

/* Reads one SDR of the repository into rec (at most IPMI_SDR_MAX bytes). *next gets the
 * following record's id. 0, EXIT_BMC, or -EAGAIN when the reservation was cancelled. */
static int sdr_read(struct ipmi_dev *d, uint16_t resv, uint16_t id, uint8_t *rec,
		    size_t *reclen, uint16_t *next)
{
	uint8_t r[IPMI_MSG_MAX], cc;
	size_t n, total = IPMI_SDR_HEADER, got = 0;
	uint16_t rid;

	while (got < total) {
		size_t want = total - got < SDR_CHUNK ? total - got : SDR_CHUNK;
		uint8_t q[6] = { resv & 0xff, resv >> 8, id & 0xff, id >> 8, (uint8_t)got,
				 (uint8_t)want };

		if (cmd(d, IPMI_NETFN_STORAGE, 0x23, q, sizeof(q), r, sizeof(r), &n, "Get SDR", &cc)) {
			if (cc == 0xc5)
				return -EAGAIN;
			fprintf(stderr, "cairn-ipmi: Get SDR 0x%04x: completion code 0x%02x %s\n", id,
				cc, ipmi_cc_name(cc));
			return EXIT_BMC;
		}
		if (n != 2 + want) {
			fprintf(stderr, "cairn-ipmi: Get SDR 0x%04x: %zu bytes, expected %zu\n", id, n,
				2 + want);
			return EXIT_BMC;
		}
		*next = (uint16_t)(r[0] | r[1] << 8);
		memcpy(rec + got, r + 2, want);
		got += want;
		if (got == IPMI_SDR_HEADER && ipmi_sdr_header(rec, got, &rid, &total) < 0)
			return EXIT_BMC;
	}
	*reclen = total;
	return 0;
}

static void sensor_line(struct ipmi_dev *d, const struct ipmi_sdr *s)
{
	uint8_t r[IPMI_MSG_MAX], cc, num = s->number;
	char val[48], st[48];
	struct ipmi_reading rd;
	double v;
	size_t n;

	if (s->owner != 0x20 || s->lun != 0) {
		snprintf(val, sizeof(val), "(owner 0x%02x lun %u)", s->owner, s->lun);
		snprintf(st, sizeof(st), "not read");
	} else if (cmd(d, IPMI_NETFN_SENSOR, 0x2d, &num, 1, r, sizeof(r), &n, "", &cc) ||
		   ipmi_reading_decode(r, n, &rd) < 0) {
		snprintf(val, sizeof(val), "no reading");
		snprintf(st, sizeof(st), "cc 0x%02x %s", cc, ipmi_cc_name(cc));
	} else {
		if (rd.unavailable)
			snprintf(val, sizeof(val), "-");
		else if (ipmi_sdr_convert(s, rd.raw, &v))
			snprintf(val, sizeof(val), "%.2f %s", v, ipmi_unit_name(s));
		else
			snprintf(val, sizeof(val), "raw 0x%02x", rd.raw);
		ipmi_reading_status(s, &rd, st, sizeof(st));
	}
	/* 80 columns for a serial terminal: long types and readings are cut */
	printf("%-16s #%-3u %-18.18s %-22.22s %s\n", s->name[0] ? s->name : "(no name)", s->number,
	       ipmi_sensor_type_name(s->sensor_type), val, st);
}

static int sdr_reserve(struct ipmi_dev *d, uint16_t *resv)
{
	uint8_t r[IPMI_MSG_MAX], cc;
	size_t n;

	*resv = 0;	/* BMCs without reservations accept 0 */
	if (cmd(d, IPMI_NETFN_STORAGE, 0x22, NULL, 0, r, sizeof(r), &n, "Reserve SDR", &cc) == 0 &&
	    n >= 2)
		*resv = (uint16_t)(r[0] | r[1] << 8);
	return 0;
}

static int do_sensors(struct ipmi_dev *d)
{
	uint8_t rec[IPMI_SDR_MAX];
	uint16_t id = 0, next = 0, resv;
	int count = 0, other = 0, retries = 0, rc;
	struct ipmi_sdr s;
	size_t len;

	sdr_reserve(d, &resv);
	printf("%-16s %-4s %-18s %-22s %s\n", "SENSOR", "NUM", "TYPE", "READING", "STATUS");
	for (int i = 0; i < SDR_RECORDS_MAX && id != 0xffff; i++) {
		rc = sdr_read(d, resv, id, rec, &len, &next);
		if (rc == -EAGAIN && retries++ < 3) {
			sdr_reserve(d, &resv);
			i--;
			continue;
		}
		if (rc)
			return EXIT_BMC;
		if (ipmi_sdr_decode(rec, len, &s) < 0) {
			fprintf(stderr, "cairn-ipmi: SDR 0x%04x: malformed record (type 0x%02x, %zu bytes)\n",
				id, rec[3], len);
		} else if (s.type == IPMI_SDR_FULL || s.type == IPMI_SDR_COMPACT) {
			sensor_line(d, &s);
			count++;
		} else {
			other++;
		}
		if (next == id)
			break;
		id = next;
	}
	printf("%d sensors, %d other records\n", count, other);
	return 0;
}

static int do_sel(struct ipmi_dev *d, int show)
{
	static char lines[SEL_SHOW_MAX][IPMI_SEL_LINE_MAX];
	uint8_t r[IPMI_MSG_MAX];
	struct ipmi_sel_info info;
	struct ipmi_sel e;
	uint16_t id = 0;
	int total = 0;
	size_t n;

	if (cmd(d, IPMI_NETFN_STORAGE, 0x40, NULL, 0, r, sizeof(r), &n, "Get SEL Info", NULL))
		return EXIT_BMC;
	if (ipmi_sel_info_decode(r, n, &info) < 0) {
		fprintf(stderr, "cairn-ipmi: Get SEL Info: %zu bytes, expected 13\n", n);
		return EXIT_BMC;
	}
	printf("SEL: version %u.%u, %u entries, %u bytes free\n", info.version & 0x0f,
	       info.version >> 4, info.entries, info.free_bytes);
	for (int i = 0; info.entries && i < SEL_ENTRIES_MAX && id != 0xffff; i++) {
		uint8_t q[6] = { 0, 0, id & 0xff, id >> 8, 0, 0xff };

		if (cmd(d, IPMI_NETFN_STORAGE, 0x43, q, sizeof(q), r, sizeof(r), &n, "Get SEL Entry",
			NULL))
			return EXIT_BMC;
		if (n < 2 + IPMI_SEL_ENTRY || ipmi_sel_decode(r + 2, n - 2, &e) < 0) {
			fprintf(stderr, "cairn-ipmi: Get SEL Entry: %zu bytes, expected 18\n", n);
			return EXIT_BMC;
		}
		ipmi_sel_format(&e, lines[total % SEL_SHOW_MAX], IPMI_SEL_LINE_MAX);
		total++;
		uint16_t next = (uint16_t)(r[0] | r[1] << 8);

		if (next == id)
			break;
		id = next;
	}
	for (int i = total > show ? total - show : 0; i < total; i++)
		printf("%s\n", lines[i % SEL_SHOW_MAX]);
	return 0;
}

static const char *sol_rate(uint8_t v)
{
	static const char *const rates[] = { [6] = "9600", [7] = "19200", [8] = "38400",
					     [9] = "57600", [10] = "115200" };

	v &= 0x0f;
	if (v == 0)
		return "the serial port's setting";
	return v < sizeof(rates) / sizeof(rates[0]) && rates[v] ? rates[v] : "unknown";
}

/* One SOL parameter: 0 with its data in r (n bytes after the revision byte), or EXIT_BMC. */
static int sol_param(struct ipmi_dev *d, uint8_t chan, uint8_t param, uint8_t *r, size_t *n)
{
	uint8_t q[4] = { chan & 0x0f, param, 0, 0 }, cc;
	uint8_t resp[IPMI_MSG_MAX];
	size_t len;

	if (cmd(d, IPMI_NETFN_TRANSPORT, 0x22, q, sizeof(q), resp, sizeof(resp), &len, "", &cc)) {
		printf("SOL parameter %u: not available from this BMC (completion code 0x%02x %s)\n",
		       param, cc, ipmi_cc_name(cc));
		return EXIT_BMC;
	}
	if (len < 2) {
		printf("SOL parameter %u: %zu bytes, expected 2 or more\n", param, len);
		return EXIT_BMC;
	}
	*n = len - 1;
	memcpy(r, resp + 1, *n);
	return 0;
}

static int do_sol(struct ipmi_dev *d, uint8_t chan)
{
	uint8_t r[IPMI_MSG_MAX];
	size_t n;

	printf("SOL on LAN channel %u:\n", chan);
	if (sol_param(d, chan, 1, r, &n))
		return EXIT_BMC;
	printf("  enabled:          %s\n", r[0] & 1 ? "yes" : "no");
	if (sol_param(d, chan, 5, r, &n) == 0)
		printf("  bit rate (saved): %s\n", sol_rate(r[0]));
	if (sol_param(d, chan, 6, r, &n) == 0)
		printf("  bit rate (now):   %s\n", sol_rate(r[0]));
	if (sol_param(d, chan, 9, r, &n) == 0 && n >= 2)
		printf("  UDP port:         %u\n", (unsigned)(r[0] | r[1] << 8));
	return 0;
}

static int run(struct ipmi_dev *d, int argc, char **argv)
{
	const char *c = argv[0];
	char *end;
	long v;

	if (strcmp(c, "info") == 0 && argc == 1)
		return do_info(d);
	if (strcmp(c, "sensors") == 0 && argc == 1)
		return do_sensors(d);
	if ((strcmp(c, "sel") == 0 || strcmp(c, "sol") == 0) && argc <= 2) {
		v = c[1] == 'e' ? 20 : 1;
		if (argc == 2) {
			v = strtol(argv[1], &end, 10);
			if (*end || v < 0 || v > (c[1] == 'e' ? SEL_SHOW_MAX : 15)) {
				usage(stderr);
				return EXIT_USAGE;
			}
		}
		return c[1] == 'e' ? do_sel(d, (int)v) : do_sol(d, (uint8_t)v);
	}
	usage(stderr);
	return EXIT_USAGE;
}

int main(int argc, char **argv)
{
	const char *path = IPMI_DEV_PATH;
	struct ipmi_dev d;
	int rc;

	if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc > 2 && strcmp(argv[1], "--dev") == 0) {
		path = argv[2];
		argc -= 2;
		argv += 2;
	}
	if (argc < 2 || (strcmp(argv[1], "info") && strcmp(argv[1], "sensors") &&
			 strcmp(argv[1], "sel") && strcmp(argv[1], "sol"))) {
		usage(stderr);
		return EXIT_USAGE;
	}
	rc = ipmi_dev_open(&d, path);
	if (rc < 0) {
		fprintf(stderr, "cairn-ipmi: %s: %s: %s\n", path, strerror(-rc),
			rc == -ENOENT ? "no BMC (the kernel's ipmi_si found no KCS/SMIC/BT interface, "
			"or ipmi_si/ipmi_devintf are not loaded: dmesg | grep -i ipmi)" : "cannot open");
		return EXIT_NODEV;
	}
	rc = run(&d, argc - 1, argv + 1);
	ipmi_dev_close(&d);
	return rc;
}
