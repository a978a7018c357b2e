/* test_provd.c — the node agent's pure parts: boot keys (kernel command line quoting, the
 * config file, missing keys), the inventory from a fake sysfs/proc tree, blank-disk
 * detection on regular files, the storagefsd config and the saved identity. */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../firmware/provd/pv_cmdline.h"
#include "../../firmware/provd/pv_disk.h"
#include "../../firmware/provd/pv_heartbeat.h"
#include "../../firmware/provd/pv_inventory.h"
#include "../../firmware/provd/pv_join.h"
#include "../../firmware/provd/pv_state.h"
#include "../../firmware/provd/pv_util.h"
#include "../../lib/fileio.h"
#include "../../lib/config.h"
#include "../../lib/json.h"

#define PIN_UP "ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789"
#define PIN_LO "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"

TEST(provd_cmdline_keys)
{
	struct pv_boot b = { 0 };
	char why[128];

	CHECK_INT(pv_cmdline_parse(&b, "BOOT_IMAGE=/vmlinuz root=/dev/ram0 quiet "
				   "cairn.controller=10.0.0.1:8443 cairn.token=cjt1.0011.aabb "
				   "cairn.ca-hash=sha256:" PIN_UP " cairn.wipe=vdb,/dev/vdc "
				   "cairn.future=1 console=ttyS0\n", why, sizeof(why)), 0);
	CHECK_STR(b.host, "10.0.0.1");
	CHECK_STR(b.port, "8443");
	CHECK_STR(b.token, "cjt1.0011.aabb");
	CHECK_STR(b.pin, PIN_LO);
	CHECK_INT(b.nwipe, 2);
	CHECK(pv_boot_wipe_has(&b, "vdb"));
	CHECK(pv_boot_wipe_has(&b, "vdc"));
	CHECK(!pv_boot_wipe_has(&b, "vda"));
	CHECK_INT(pv_boot_check_join(&b, why, sizeof(why)), 0);
}

TEST(provd_cmdline_quoting_and_defaults)
{
	struct pv_boot b = { 0 };
	char why[128];

	CHECK_INT(pv_cmdline_parse(&b, "a=\"x y\" cairn.controller=\"ctl.example\" "
				   "\"cairn.token=cjt1.aa.bb\" b=\"c d\"", why, sizeof(why)), 0);
	CHECK_STR(b.host, "ctl.example");
	CHECK_STR(b.port, "7443");
	CHECK_STR(b.token, "cjt1.aa.bb");
	CHECK_INT(pv_cmdline_parse(&b, "cairn.controller=[fd00::1]:9443", why, sizeof(why)), 0);
	CHECK_STR(b.host, "fd00::1");
	CHECK_STR(b.port, "9443");
	/* missing keys are named */
	CHECK_INT(pv_boot_check_join(&b, why, sizeof(why)), -EINVAL);
	CHECK(strstr(why, "cairn.ca-hash") != NULL);
	CHECK(strstr(why, "cairn.token") == NULL);
	memset(&b, 0, sizeof(b));
	CHECK_INT(pv_cmdline_parse(&b, "quiet", why, sizeof(why)), 0);
	CHECK_INT(pv_boot_check_join(&b, why, sizeof(why)), -EINVAL);
	CHECK(strstr(why, "cairn.controller") && strstr(why, "cairn.token"));
}

TEST(provd_cmdline_bad_values)
{
	static const char *const bad[] = {
		"cairn.ca-hash=" PIN_LO,			/* no sha256: */
		"cairn.ca-hash=sha256:abcd",			/* short */
		"cairn.ca-hash=sha256:" PIN_LO "00",		/* long */
		"cairn.ca-hash=sha256:zz" PIN_LO,
		"cairn.controller=fd00::1",			/* v6 without brackets */
		"cairn.controller=host:70000",
		"cairn.controller=host:",
		"cairn.controller=:7443",
		"cairn.token",					/* no value */
		"cairn.token=",
		"cairn.wipe=../../etc",
	};
	char why[128];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct pv_boot b = { 0 };

		why[0] = 0;
		if (pv_cmdline_parse(&b, bad[i], why, sizeof(why)) != -EINVAL) {
			test_fail(__FILE__, __LINE__, "accepted: %s", bad[i]);
			return;
		}
		CHECK(why[0] != 0);
	}
}

TEST(provd_config_file_keys)
{
	struct pv_boot b = { 0 };
	char why[128];

	CHECK_INT(pv_cmdline_parse(&b, "cairn.controller=a:1 cairn.token=old", why, sizeof(why)), 0);
	CHECK_INT(pv_cmdline_parse_conf(&b, "# local override\n\n  cairn.token=cjt1.new.x  \r\n"
					"cairn.ca-hash=sha256:" PIN_LO "\n", why, sizeof(why)), 0);
	CHECK_STR(b.token, "cjt1.new.x");
	CHECK_STR(b.host, "a");
	CHECK_STR(b.pin, PIN_LO);
	CHECK_INT(pv_cmdline_parse_conf(&b, "cairn.token=x\ncairn.bogus=1\n", why, sizeof(why)),
		  -EINVAL);
	CHECK(strstr(why, "line 2") != NULL);
	CHECK_INT(pv_cmdline_parse_conf(&b, "controller=x\n", why, sizeof(why)), -EINVAL);
}

/* --- a fake sysfs + proc tree --- */

static void put(const char *root, const char *rel, const char *text)
{
	char path[1024], dir[1024];

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = 0;
	if (file_mkdirs(dir, 0755) == 0) {
		FILE *f = fopen(path, "w");

		if (f) {
			fputs(text, f);
			fclose(f);
		}
	}
}

static void fake_tree(const char *root, bool with_uuid)
{
	put(root, "proc/cpuinfo", "processor\t: 0\nmodel name\t: Test CPU @ 2.0GHz\n\n"
	    "processor\t: 1\nmodel name\t: Test CPU @ 2.0GHz\n");
	put(root, "proc/meminfo", "MemTotal:        2048000 kB\nMemFree: 1 kB\n");
	put(root, "sys/devices/system/cpu/online", "0-3,6\n");
	if (with_uuid)
		put(root, "sys/class/dmi/id/product_uuid", "4C4C4544-0042-3010-8052-B4C04F4E3732\n");
	put(root, "sys/class/dmi/id/product_serial", "SER-42\n");
	put(root, "sys/class/net/lo/address", "00:00:00:00:00:00\n");
	put(root, "sys/class/net/br0/address", "02:00:00:00:00:01\n");
	put(root, "sys/class/net/eth0/address", "52:54:00:12:34:56\n");
	put(root, "sys/class/net/eth0/device/vendor", "0x1af4\n");
	put(root, "sys/block/vdb/size", "2097152\n");
	put(root, "sys/block/vdb/device/model", "  QEMU HARDDISK   \n");
	put(root, "sys/block/vdb/device/serial", "disk-b\n");
	put(root, "sys/block/vdb/queue/rotational", "1\n");
	put(root, "sys/block/vda/size", "1024\n");
	put(root, "sys/block/vda/wwid", "naa.5000\n");
	put(root, "sys/block/vda/queue/rotational", "0\n");
	put(root, "sys/block/loop0/size", "100\n");
	put(root, "sys/block/sr0/size", "100\n");
	put(root, "sys/block/dm-0/size", "100\n");
	put(root, "sys/block/zram0/size", "100\n");
	put(root, "sys/block/sdz/size", "0\n");	/* an empty card reader */
	put(root, "sys/block/mmcblk0boot0/size", "8192\n");
	put(root, "sys/block/vda/ro", "1\n");
}

TEST(provd_inventory_fake_sysfs)
{
	char sys[512], proc[512];
	struct pv_inv inv;

	fake_tree(test_tmpdir(), true);
	snprintf(sys, sizeof(sys), "%s/sys", test_tmpdir());
	snprintf(proc, sizeof(proc), "%s/proc", test_tmpdir());
	CHECK_INT(pv_inv_collect(sys, proc, &inv), 0);
	CHECK_STR(inv.machine_id, "4c4c4544-0042-3010-8052-b4c04f4e3732");
	CHECK_STR(inv.dmi_serial, "SER-42");
	CHECK_STR(inv.cpu_model, "Test CPU @ 2.0GHz");
	CHECK_INT(inv.cpus, 5);
	CHECK_INT(inv.mem_bytes, 2048000LL * 1024);
	CHECK_INT(inv.nnics, 2);
	CHECK_STR(inv.nics[0].name, "br0");
	CHECK_STR(inv.nics[1].name, "eth0");
	CHECK_STR(inv.nics[1].mac, "52:54:00:12:34:56");
	CHECK_INT(inv.ndisks, 2);
	CHECK_STR(inv.disks[0].name, "vda");
	CHECK_STR(inv.disks[0].serial, "naa.5000");
	CHECK_INT(inv.disks[0].rotational, 0);
	CHECK_INT(inv.disks[0].read_only, 1);
	CHECK_INT(inv.disks[1].read_only, 0);
	CHECK_STR(inv.disks[1].name, "vdb");
	CHECK_INT(inv.disks[1].size_bytes, 2097152LL * 512);
	CHECK_STR(inv.disks[1].model, "QEMU HARDDISK");
	CHECK_STR(inv.disks[1].serial, "disk-b");
	CHECK_INT(inv.disks[1].rotational, 1);
	pv_inv_fini(&inv);
}

TEST(provd_inventory_mac_fallback_and_json)
{
	char sys[512], proc[512], buf[8192], s[64];
	struct json_tok toks[256];
	struct pv_inv inv;
	struct json_w w;
	int64_t v;
	int n, arr;

	fake_tree(test_tmpdir(), false);
	snprintf(sys, sizeof(sys), "%s/sys", test_tmpdir());
	snprintf(proc, sizeof(proc), "%s/proc", test_tmpdir());
	CHECK_INT(pv_inv_collect(sys, proc, &inv), 0);
	/* the physical NIC, though br0 sorts first */
	CHECK_STR(inv.machine_id, "52:54:00:12:34:56");
	json_w_init(&w, buf, sizeof(buf));
	pv_inv_json(&inv, &w);
	n = json_w_end(&w);
	pv_inv_fini(&inv);
	CHECK(n > 0);
	n = json_parse(buf, (size_t)n, toks, 256);
	CHECK(n > 0);
	CHECK_INT(json_str(buf, toks, 0, "machine_id", s, sizeof(s)), 0);
	CHECK_STR(s, "52:54:00:12:34:56");
	CHECK_INT(json_int(buf, toks, 0, "cpus", &v), 0);
	CHECK_INT(v, 5);
	arr = json_find(buf, toks, 0, "disks");
	CHECK(arr > 0 && toks[arr].type == JSON_ARR && toks[arr].size == 2);
	CHECK_INT(json_int(buf, toks, json_elem(toks, arr, 1), "size_bytes", &v), 0);
	CHECK_INT(v, 2097152LL * 512);
	arr = json_find(buf, toks, 0, "nics");
	CHECK(arr > 0 && toks[arr].size == 2);
}

/* --- blank detection --- */

static int make_file(const char *name, size_t size, long off, const unsigned char *bytes,
		     size_t n, char *path, size_t max)
{
	int fd;

	snprintf(path, max, "%s/%s", test_tmpdir(), name);
	fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)size) < 0)
		return -1;
	if (n && pwrite(fd, bytes, n, off) != (ssize_t)n)
		return -1;
	return close(fd);
}

TEST(provd_disk_blank_detection)
{
	static const unsigned char magic[] = { 0x53, 0xEF }, mbr[] = { 0x55, 0xAA }, one[] = { 1 };
	unsigned char sb[2 + 62 + 16] = { 0x53, 0xEF };
	char path[512];
	struct pv_probe pr;

	CHECK_INT(make_file("zero", 4 << 20, 0, NULL, 0, path, sizeof(path)), 0);
	CHECK_INT(pv_disk_probe(path, &pr), 0);
	CHECK_INT(pr.kind, PV_PROBE_BLANK);

	CHECK_INT(make_file("ext", 4 << 20, 1080, magic, 2, path, sizeof(path)), 0);
	CHECK_INT(pv_disk_probe(path, &pr), 0);
	CHECK_INT(pr.kind, PV_PROBE_EXT);

	memcpy(sb + 64, "cairn-data3", 11);	/* s_volume_name: superblock + 120 = 1080 + 64 */
	CHECK_INT(make_file("cairn", 4 << 20, 1080, sb, sizeof(sb), path, sizeof(path)), 0);
	CHECK_INT(pv_disk_probe(path, &pr), 0);
	CHECK_INT(pr.kind, PV_PROBE_CAIRN);
	CHECK_INT(pr.index, 3);
	CHECK_STR(pr.label, "cairn-data3");

	memcpy(sb + 64, "cairn-dataX", 11);
	CHECK_INT(make_file("cairnx", 4 << 20, 1080, sb, sizeof(sb), path, sizeof(path)), 0);
	CHECK_INT(pv_disk_probe(path, &pr), 0);
	CHECK_INT(pr.kind, PV_PROBE_EXT);

	CHECK_INT(make_file("mbr", 4 << 20, 510, mbr, 2, path, sizeof(path)), 0);
	CHECK_INT(pv_disk_probe(path, &pr), 0);
	CHECK_INT(pr.kind, PV_PROBE_PARTS);

	CHECK_INT(make_file("gpt", 4 << 20, 512, (const unsigned char *)"EFI PART", 8, path,
			    sizeof(path)), 0);
	CHECK_INT(pv_disk_probe(path, &pr), 0);
	CHECK_INT(pr.kind, PV_PROBE_PARTS);

	/* a byte late in the first MiB, and one in the last MiB: not blank */
	CHECK_INT(make_file("late", 4 << 20, (1 << 20) - 1, one, 1, path, sizeof(path)), 0);
	CHECK_INT(pv_disk_probe(path, &pr), 0);
	CHECK_INT(pr.kind, PV_PROBE_DATA);
	CHECK_INT(make_file("tail", 4 << 20, (4 << 20) - 100, one, 1, path, sizeof(path)), 0);
	CHECK_INT(pv_disk_probe(path, &pr), 0);
	CHECK_INT(pr.kind, PV_PROBE_DATA);
	/* past the first MiB and before the last one: still blank */
	CHECK_INT(make_file("mid", 4 << 20, 2 << 20, one, 1, path, sizeof(path)), 0);
	CHECK_INT(pv_disk_probe(path, &pr), 0);
	CHECK_INT(pr.kind, PV_PROBE_BLANK);
	/* small device */
	CHECK_INT(make_file("small", 8192, 0, NULL, 0, path, sizeof(path)), 0);
	CHECK_INT(pv_disk_probe(path, &pr), 0);
	CHECK_INT(pr.kind, PV_PROBE_BLANK);
	snprintf(path, sizeof(path), "%s/absent", test_tmpdir());
	CHECK_INT(pv_disk_probe(path, &pr), -ENOENT);
}

/* --- what provd writes --- */

static struct pv_ident *test_ident(void)
{
	struct pv_ident *id = calloc(1, sizeof(*id));

	if (!id)
		return NULL;
	strcpy(id->node_id, "node-0007");
	strcpy(id->cluster_id, "00112233445566778899aabbccddeeff");
	strcpy(id->controller, "10.0.0.1:7443");
	strcpy(id->access_key, "CAIRNAK123");
	strcpy(id->secret_key, "secret/key+with=chars");
	id->replicas = 3;
	id->heartbeat_s = 7;
	strcpy(id->key_pem, "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----");
	strcpy(id->cert_pem, "-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----");
	strcpy(id->ca_pem, "-----BEGIN CERTIFICATE-----\nCCCC\n-----END CERTIFICATE-----");
	return id;
}

TEST(provd_sfs_conf_matches_storagefsd_options)
{
	const char *dirs[] = { "/data/1", "/data/2" };
	struct pv_ident *id = test_ident();
	const char *ak = NULL, *region = NULL, *cluster = NULL, *ilisten = NULL;
	struct config_list data = { 0 }, aks = { 0 }, sks = { 0 };
	const struct config_opt opts[] = {	/* the names storagefs/main.c reads */
		{ "access-key", CONFIG_LIST, &aks, 0, 0, "AK", "" },
		{ "secret-key", CONFIG_LIST, &sks, 0, 0, "SK", "" },
		{ "region", CONFIG_STR, &region, 0, 0, "R", "" },
		{ "cluster", CONFIG_STR, &cluster, 0, 0, "DIR", "" },
		{ "internal-listen", CONFIG_STR, &ilisten, 0, 0, "ADDR", "" },
		{ "data", CONFIG_LIST, &data, 0, 0, "DIR", "" },
	};
	struct pv_sfsconf sc = { .region = "eu-west-1", .cluster_dir = "/data/1/.cairn-node",
				 .internal_port = 7480, .dirs = dirs, .ndirs = 2 };
	char path[512];
	struct stat st;

	CHECK(id != NULL);
	snprintf(path, sizeof(path), "%s/sfs.conf", test_tmpdir());
	CHECK_INT(pv_sfsconf_write(path, id, &sc), 0);
	CHECK_INT(stat(path, &st), 0);
	CHECK_INT(st.st_mode & 0777, 0600);
	CHECK_INT(config_parse_file(opts, 6, path), 0);
	CHECK_STR(cluster, "/data/1/.cairn-node");
	CHECK_STR(ilisten, "0.0.0.0:7480");
	CHECK_INT(aks.n, 1);
	ak = aks.v[0];
	CHECK_STR(ak, "CAIRNAK123");
	CHECK_STR(sks.v[0], "secret/key+with=chars");
	CHECK_STR(region, "eu-west-1");
	CHECK_INT(data.n, 2);
	CHECK_STR(data.v[1], "/data/2");
	/* config_parse_file's strings belong to the caller (a daemon keeps them for good) */
	free((char *)aks.v[0]);
	free((char *)sks.v[0]);
	free((char *)region);
	free((char *)cluster);
	free((char *)ilisten);
	free((char *)data.v[0]);
	free((char *)data.v[1]);
	/* a value that would break the line format is refused, and nothing is written */
	strcpy(id->secret_key, "bad\nregion = x");
	unlink(path);
	CHECK_INT(pv_sfsconf_write(path, id, &sc), -EINVAL);
	CHECK(access(path, F_OK) != 0);
	free(id);
}

TEST(provd_state_roundtrip_and_move)
{
	struct pv_ident *id = test_ident(), *got = malloc(sizeof(*got));
	char ram[512], disk[512], path[600];
	struct stat st;

	CHECK(id && got);
	snprintf(ram, sizeof(ram), "%s/run/provd", test_tmpdir());
	snprintf(disk, sizeof(disk), "%s/d1/.cairn-node/provd", test_tmpdir());
	CHECK_INT(pv_state_load(ram, got), -ENOENT);
	CHECK_INT(pv_state_save(ram, id), 0);
	snprintf(path, sizeof(path), "%s/node.key", ram);
	CHECK_INT(stat(path, &st), 0);
	CHECK_INT(st.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/node.json", ram);
	CHECK_INT(stat(path, &st), 0);
	CHECK_INT(st.st_mode & 0777, 0600);
	CHECK_INT(stat(ram, &st), 0);
	CHECK_INT(st.st_mode & 0777, 0700);
	CHECK_INT(pv_state_load(ram, got), 0);
	CHECK_STR(got->node_id, "node-0007");
	CHECK_STR(got->controller, "10.0.0.1:7443");
	CHECK_STR(got->secret_key, "secret/key+with=chars");
	CHECK_INT(got->heartbeat_s, 7);
	CHECK_STR(got->cert_pem, id->cert_pem);
	CHECK_STR(got->key_pem, id->key_pem);
	CHECK_INT(pv_state_move(ram, disk, got), 0);
	CHECK_INT(pv_state_load(ram, got), -ENOENT);
	CHECK_INT(pv_state_load(disk, got), 0);
	CHECK_STR(got->ca_pem, id->ca_pem);
	/* a missing certificate is damage, not "no identity" */
	snprintf(path, sizeof(path), "%s/node.crt", disk);
	CHECK_INT(unlink(path), 0);
	CHECK_INT(pv_state_load(disk, got), -EUCLEAN);
	free(id);
	free(got);
}

static void write_label(const char *dir, const char *cluster)
{
	char path[600];
	char text[256];

	snprintf(path, sizeof(path), "%s/.cairn", dir);
	file_mkdirs(path, 0755);
	snprintf(path, sizeof(path), "%s/.cairn/format", dir);
	snprintf(text, sizeof(text), "cairn-disk 1\ncluster %s\nnode %s\ndisk %s\n", cluster,
		 cluster, cluster);
	file_write_atomic(path, text, strlen(text), 0644);
}

TEST(provd_disk_dirs_and_labels)
{
	char d[4][512], got[33];
	const char *dirs[4] = { d[0], d[1], d[2], d[3] }, *data[8];
	struct pv_disks ds;

	for (int i = 0; i < 4; i++) {
		snprintf(d[i], sizeof(d[i]), "%s/d%d", test_tmpdir(), i + 1);
		if (i < 3)
			CHECK_INT(file_mkdirs(d[i], 0755), 0);
	}
	write_label(d[0], "0123456789abcdef0123456789abcdef");
	write_label(d[2], "ffffffffffffffff0000000000000000");
	CHECK_INT(pv_disk_label_cluster(d[0], got), 0);
	CHECK_STR(got, "0123456789abcdef0123456789abcdef");
	CHECK_INT(pv_disk_label_cluster(d[1], got), -ENOENT);
	CHECK_INT(pv_disk_from_dirs(dirs, 4, &ds), 0);
	CHECK_INT(ds.v[3].state, PV_DS_ERROR);	/* d4 does not exist */
	pv_disk_check_labels(&ds, "not-a-label-of-any-disk");
	CHECK_INT(ds.v[0].state, PV_DS_OK);
	CHECK_INT(ds.v[1].state, PV_DS_OK);
	CHECK_INT(ds.v[2].state, PV_DS_OTHER_CLUSTER);
	CHECK_INT(pv_disk_data_dirs(&ds, data, 8), 2);
	CHECK_STR(data[0], d[0]);
	CHECK_STR(data[1], d[1]);
	pv_disks_fini(&ds);
	/* the controller's cluster id wins over the first disk's */
	CHECK_INT(pv_disk_from_dirs(dirs, 3, &ds), 0);
	pv_disk_check_labels(&ds, "ffffffffffffffff0000000000000000");
	CHECK_INT(ds.v[0].state, PV_DS_OTHER_CLUSTER);
	CHECK_INT(ds.v[2].state, PV_DS_OK);
	pv_disks_fini(&ds);
}

TEST(provd_heartbeat_and_join_bodies)
{
	char dir[512], *body = NULL, s[64];
	const char *dirs[1] = { dir };
	struct pv_ident *id = test_ident();
	struct pv_disks ds;
	struct pv_inv inv = { .cpus = 2, .mem_bytes = 1 << 20 };
	struct pv_hb_in in = { .disks = &ds, .s3_endpoint = "http://10.0.0.5:9000",
			       .proc_root = "/proc" };
	struct json_tok toks[128];
	size_t len;
	int64_t v;
	int n, arr;

	CHECK(id != NULL);
	in.id = id;
	snprintf(dir, sizeof(dir), "%s", test_tmpdir());
	strcpy(inv.machine_id, "m-1");
	CHECK_INT(pv_disk_from_dirs(dirs, 1, &ds), 0);
	CHECK_INT(pv_heartbeat_body(&in, &body, &len), 0);
	pv_disks_fini(&ds);
	n = json_parse(body, len, toks, 128);
	CHECK(n > 0);
	CHECK_INT(json_str(body, toks, 0, "health", s, sizeof(s)), 0);
	CHECK_STR(s, "ok");
	CHECK_INT(json_int(body, toks, 0, "capacity_bytes", &v), 0);
	CHECK(v > 0);
	arr = json_find(body, toks, 0, "disks");
	CHECK(arr > 0 && toks[arr].size == 1);
	CHECK_INT(json_str(body, toks, json_elem(toks, arr, 0), "state", s, sizeof(s)), 0);
	CHECK_STR(s, "ok");
	free(body);

	CHECK_INT(pv_join_body("cjt1.a.b", "-----BEGIN CERTIFICATE REQUEST-----\nx\n", &inv, &body,
			       &len), 0);
	n = json_parse(body, len, toks, 128);
	CHECK(n > 0);
	CHECK_INT(json_str(body, toks, 0, "token", s, sizeof(s)), 0);
	CHECK_STR(s, "cjt1.a.b");
	CHECK_INT(json_str(body, toks, json_find(body, toks, 0, "inventory"), "machine_id", s,
			   sizeof(s)), 0);
	CHECK_STR(s, "m-1");
	free(body);
	free(id);
}
