/* test_ctl_state.c — unit tests of the controller's model (firmware/controller/ctl_state.c):
 * journal replay, a torn or damaged journal, the token rules (expiry, uses, replay, bad
 * tokens), duplicate machines, removal, restarts; plus the inventory rules (ctl_inv.c) and
 * the boot script (ctl_boot.c). */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../firmware/controller/ctl_boot.h"
#include "../../firmware/controller/ctl_inv.h"
#include "../../firmware/controller/ctl_json.h"
#include "../../firmware/controller/ctl_state.h"

#define T0	1700000000000LL		/* "now" in the tests, ms */
#define HB	10			/* heartbeat period, s */

static int sign_calls;

static int fake_sign(void *ud, const char *node_id, uint64_t serial, char *cert_pem)
{
	int *fail = ud;

	sign_calls++;
	if (fail && *fail)
		return -EINVAL;
	snprintf(cert_pem, CTL_CERT_MAX, "CERT %s %llu\n", node_id, (unsigned long long)serial);
	return 0;
}

static struct ctl_join join_of(const char *token, const char *machine, const char *csr_hash)
{
	return (struct ctl_join){ .token = token, .machine_id = machine, .hostname = "h",
				  .addr = "10.0.0.9", .csr_hash = csr_hash,
				  .inventory = "{\"machine_id\":\"m\",\"cpus\":2,\"disks\":[]}",
				  .sign = fake_sign };
}

static int do_join(struct ctl_state *st, const char *token, const char *machine, int64_t now,
		   char id[CTL_ID_MAX])
{
	static char cert[CTL_CERT_MAX];
	struct ctl_join j = join_of(token, machine, machine);	/* csr hash: any per-machine text */

	return ctl_join(st, &j, now, id, cert);
}

static char *journal_path(void)
{
	static char p[512];

	snprintf(p, sizeof(p), "%s/journal.log", test_tmpdir());
	return p;
}

static off_t file_size(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? sb.st_size : -1;
}

TEST(ctl_state_replay_keeps_nodes_tokens_and_states)
{
	struct ctl_state *st;
	char tok[CTL_TOKEN_MAX], id1[CTL_ID_MAX], id2[CTL_ID_MAX], tid[17];
	struct ctl_beat b = { .uptime_s = -1, .capacity_bytes = -1, .free_bytes = -1 };
	enum ctl_node_state s;
	int64_t exp;

	CHECK_INT(ctl_state_open(test_tmpdir(), HB, &st), 0);
	CHECK_INT(ctl_token_new(st, 3600, 3, T0, tok, &exp), 0);
	CHECK_INT(exp, T0 + 3600 * 1000);
	CHECK_INT(do_join(st, tok, "machine-a", T0, id1), 0);
	CHECK_INT(do_join(st, tok, "machine-b", T0, id2), 0);
	CHECK_STR(id1, "node-0001");
	CHECK_STR(id2, "node-0002");
	CHECK_INT(ctl_heartbeat(st, id1, &b, T0 + 5, &s), 0);
	CHECK_INT(s, CTL_UP);
	CHECK_INT(ctl_node_drain(st, id2, T0 + 6), 0);
	ctl_state_free(st);

	CHECK_INT(ctl_state_open(test_tmpdir(), HB, &st), 0);
	CHECK_INT(ctl_node_count(st), 2);
	CHECK_INT(ctl_node_state(st, id1, T0 + 10, &s), 0);
	CHECK_INT(s, CTL_UP);
	CHECK_INT(ctl_node_state(st, id2, T0 + 10, &s), 0);
	CHECK_INT(s, CTL_DRAINING);
	snprintf(tid, sizeof(tid), "%.16s", tok + 5);
	CHECK_INT(ctl_token_uses(st, tid), 1);
	/* Ids keep counting after a restart. */
	CHECK_INT(do_join(st, tok, "machine-c", T0, id1), 0);
	CHECK_STR(id1, "node-0003");
	CHECK_INT(ctl_token_uses(st, tid), 0);
	ctl_state_free(st);
}

TEST(ctl_state_torn_tail_is_cut_and_appends_go_on)
{
	struct ctl_state *st;
	char tok[CTL_TOKEN_MAX], id[CTL_ID_MAX];
	const char torn[] = "{\"op\":\"node\",\"node_id\":\"node-0009\",\"mach";
	int64_t exp;
	off_t whole;
	int fd;

	CHECK_INT(ctl_state_open(test_tmpdir(), HB, &st), 0);
	CHECK_INT(ctl_token_new(st, 3600, 5, T0, tok, &exp), 0);
	CHECK_INT(do_join(st, tok, "machine-a", T0, id), 0);
	ctl_state_free(st);
	whole = file_size(journal_path());
	fd = open(journal_path(), O_WRONLY | O_APPEND);
	CHECK(fd >= 0);
	CHECK_INT(write(fd, torn, sizeof(torn) - 1), (long long)sizeof(torn) - 1);
	close(fd);

	CHECK_INT(ctl_state_open(test_tmpdir(), HB, &st), 0);
	CHECK_INT(file_size(journal_path()), whole);
	CHECK_INT(ctl_node_count(st), 1);
	CHECK_INT(do_join(st, tok, "machine-b", T0, id), 0);
	CHECK_STR(id, "node-0002");
	ctl_state_free(st);
	CHECK_INT(ctl_state_open(test_tmpdir(), HB, &st), 0);
	CHECK_INT(ctl_node_count(st), 2);
	ctl_state_free(st);
}

TEST(ctl_state_damaged_record_refuses_to_start)
{
	struct ctl_state *st;
	char tok[CTL_TOKEN_MAX];
	const char bad[] = "{\"op\":\"state\",\"node_id\":\"node-0042\",\"state\":\"up\",\"ms\":1}\n";
	int64_t exp;
	off_t before;
	int fd;

	CHECK_INT(ctl_state_open(test_tmpdir(), HB, &st), 0);
	CHECK_INT(ctl_token_new(st, 60, 1, T0, tok, &exp), 0);
	ctl_state_free(st);
	fd = open(journal_path(), O_WRONLY | O_APPEND);
	CHECK(fd >= 0);
	CHECK_INT(write(fd, bad, sizeof(bad) - 1), (long long)sizeof(bad) - 1);
	close(fd);
	before = file_size(journal_path());
	CHECK_INT(ctl_state_open(test_tmpdir(), HB, &st), -EBADMSG);
	CHECK(st == NULL);
	CHECK_INT(file_size(journal_path()), before);	/* nothing cut: an operator looks */
}

TEST(ctl_state_token_expiry)
{
	struct ctl_state *st;
	char tok[CTL_TOKEN_MAX], id[CTL_ID_MAX];
	int64_t exp;

	CHECK_INT(ctl_state_open(test_tmpdir(), HB, &st), 0);
	CHECK_INT(ctl_token_new(st, 1, 5, T0, tok, &exp), 0);
	CHECK_INT(do_join(st, tok, "machine-a", T0 + 1000, id), -EKEYEXPIRED);
	CHECK_INT(ctl_node_count(st), 0);
	CHECK_INT(do_join(st, tok, "machine-a", T0 + 999, id), 0);
	CHECK_INT(ctl_token_new(st, 0, 1, T0, tok, &exp), -EINVAL);
	CHECK_INT(ctl_token_new(st, CTL_TOKEN_TTL_MAX_S + 1, 1, T0, tok, &exp), -EINVAL);
	CHECK_INT(ctl_token_new(st, 60, 0, T0, tok, &exp), -EINVAL);
	ctl_state_free(st);
}

TEST(ctl_state_token_uses_and_replay_after_restart)
{
	struct ctl_state *st;
	char tok[CTL_TOKEN_MAX], id[CTL_ID_MAX];
	int64_t exp;

	CHECK_INT(ctl_state_open(test_tmpdir(), HB, &st), 0);
	CHECK_INT(ctl_token_new(st, 3600, 1, T0, tok, &exp), 0);
	CHECK_INT(do_join(st, tok, "machine-a", T0, id), 0);
	CHECK_INT(do_join(st, tok, "machine-b", T0, id), -EKEYREVOKED);
	CHECK_INT(ctl_node_count(st), 1);
	ctl_state_free(st);
	CHECK_INT(ctl_state_open(test_tmpdir(), HB, &st), 0);
	CHECK_INT(do_join(st, tok, "machine-b", T0, id), -EKEYREVOKED);
	CHECK_INT(ctl_node_count(st), 1);
	ctl_state_free(st);
}

TEST(ctl_state_retried_join_gets_the_same_answer)
{
	static char cert1[CTL_CERT_MAX], cert2[CTL_CERT_MAX];
	struct ctl_state *st;
	char tok[CTL_TOKEN_MAX], id1[CTL_ID_MAX], id2[CTL_ID_MAX];
	struct ctl_join j;
	int64_t exp;

	CHECK_INT(ctl_state_open(test_tmpdir(), HB, &st), 0);
	CHECK_INT(ctl_token_new(st, 3600, 1, T0, tok, &exp), 0);
	j = join_of(tok, "machine-a", "csr-1");
	CHECK_INT(ctl_join(st, &j, T0, id1, cert1), 0);
	CHECK_INT(ctl_join(st, &j, T0 + 1, id2, cert2), 0);
	CHECK_STR(id1, id2);
	CHECK_STR(cert1, cert2);
	CHECK_INT(ctl_node_count(st), 1);
	/* Another CSR is another join: the single-use token is spent. */
	j = join_of(tok, "machine-a", "csr-2");
	CHECK_INT(ctl_join(st, &j, T0 + 2, id2, cert2), -EKEYREVOKED);
	ctl_state_free(st);
}

TEST(ctl_state_bad_tokens_change_nothing)
{
	struct ctl_state *st;
	char tok[CTL_TOKEN_MAX], bad[CTL_TOKEN_MAX], id[CTL_ID_MAX], tid[17];
	int64_t exp;
	off_t size;

	CHECK_INT(ctl_state_open(test_tmpdir(), HB, &st), 0);
	CHECK_INT(ctl_token_new(st, 3600, 1, T0, tok, &exp), 0);
	snprintf(tid, sizeof(tid), "%.16s", tok + 5);
	size = file_size(journal_path());
	CHECK_INT(do_join(st, "", "m", T0, id), -EACCES);
	CHECK_INT(do_join(st, "cjt1.nothex", "m", T0, id), -EACCES);
	memcpy(bad, tok, sizeof(bad));
	bad[sizeof(bad) - 2] = bad[sizeof(bad) - 2] == '0' ? '1' : '0';	/* wrong secret */
	CHECK_INT(do_join(st, bad, "m", T0, id), -EACCES);
	memcpy(bad, tok, sizeof(bad));
	bad[5] = bad[5] == '0' ? '1' : '0';				/* unknown id */
	CHECK_INT(do_join(st, bad, "m", T0, id), -EACCES);
	memcpy(bad, tok, sizeof(bad));
	bad[7] = 'A';							/* upper-case hex */
	CHECK_INT(do_join(st, bad, "m", T0, id), -EACCES);
	CHECK_INT(ctl_node_count(st), 0);
	CHECK_INT(ctl_token_uses(st, tid), 1);
	CHECK_INT(file_size(journal_path()), size);
	ctl_state_free(st);
}

TEST(ctl_state_failed_sign_changes_nothing)
{
	static char cert[CTL_CERT_MAX];
	struct ctl_state *st;
	char tok[CTL_TOKEN_MAX], id[CTL_ID_MAX], tid[17];
	int fail = 1;
	struct ctl_join j;
	int64_t exp;

	CHECK_INT(ctl_state_open(test_tmpdir(), HB, &st), 0);
	CHECK_INT(ctl_token_new(st, 3600, 1, T0, tok, &exp), 0);
	snprintf(tid, sizeof(tid), "%.16s", tok + 5);
	j = join_of(tok, "machine-a", "x");
	j.sign_ud = &fail;
	CHECK_INT(ctl_join(st, &j, T0, id, cert), -EINVAL);
	CHECK_INT(ctl_node_count(st), 0);
	CHECK_INT(ctl_token_uses(st, tid), 1);
	fail = 0;
	CHECK_INT(ctl_join(st, &j, T0, id, cert), 0);
	CHECK_STR(id, "node-0001");
	CHECK_STR(cert, "CERT node-0001 1\n");
	ctl_state_free(st);
}

TEST(ctl_state_duplicate_machine_and_removal)
{
	struct ctl_state *st;
	struct ctl_beat b = { .uptime_s = -1, .capacity_bytes = -1, .free_bytes = -1 };
	char tok[CTL_TOKEN_MAX], id[CTL_ID_MAX];
	enum ctl_node_state s;
	int64_t exp;

	CHECK_INT(ctl_state_open(test_tmpdir(), HB, &st), 0);
	CHECK_INT(ctl_token_new(st, 3600, 10, T0, tok, &exp), 0);
	CHECK_INT(do_join(st, tok, "machine-a", T0, id), 0);
	CHECK_INT(do_join(st, tok, "machine-a", T0, id), 0);	/* same csr: the retry */
	CHECK_INT(ctl_heartbeat(st, "node-0001", &b, T0, &s), 0);
	CHECK_INT(do_join(st, tok, "machine-a", T0, id), -EEXIST);	/* up now: no retry */
	CHECK_INT(ctl_node_count(st), 1);
	CHECK_INT(ctl_node_remove(st, "node-0001", T0), 0);
	CHECK_INT(ctl_node_remove(st, "node-0001", T0), 0);
	CHECK_INT(ctl_heartbeat(st, "node-0001", &b, T0, &s), -EIDRM);
	CHECK_INT(ctl_node_drain(st, "node-0001", T0), -EIDRM);
	CHECK_INT(ctl_node_drain(st, "node-0077", T0), -ENOENT);
	CHECK_INT(ctl_heartbeat(st, "node-0077", &b, T0, &s), -ENOENT);
	/* A removed machine may join again, under a new id. */
	CHECK_INT(do_join(st, tok, "machine-a", T0, id), 0);
	CHECK_STR(id, "node-0002");
	ctl_state_free(st);
	CHECK_INT(ctl_state_open(test_tmpdir(), HB, &st), 0);
	CHECK_INT(ctl_node_state(st, "node-0001", T0, &s), 0);
	CHECK_INT(s, CTL_GONE);
	CHECK_INT(ctl_heartbeat(st, "node-0001", &b, T0, &s), -EIDRM);
	ctl_state_free(st);
}

TEST(ctl_state_silent_node_reads_down)
{
	struct ctl_state *st;
	struct ctl_beat b = { .uptime_s = -1, .capacity_bytes = -1, .free_bytes = -1 };
	char tok[CTL_TOKEN_MAX], id[CTL_ID_MAX];
	enum ctl_node_state s;
	int64_t exp, limit = (int64_t)CTL_DOWN_PERIODS * HB * 1000;

	CHECK_INT(ctl_state_open(test_tmpdir(), HB, &st), 0);
	CHECK_INT(ctl_token_new(st, 3600, 1, T0, tok, &exp), 0);
	CHECK_INT(do_join(st, tok, "machine-a", T0, id), 0);
	CHECK_INT(ctl_heartbeat(st, id, &b, T0, &s), 0);
	CHECK_INT(ctl_node_state(st, id, T0 + limit, &s), 0);
	CHECK_INT(s, CTL_UP);
	CHECK_INT(ctl_node_state(st, id, T0 + limit + 1, &s), 0);
	CHECK_INT(s, CTL_DOWN);
	CHECK_INT(ctl_heartbeat(st, id, &b, T0 + limit + 2, &s), 0);
	CHECK_INT(s, CTL_UP);
	ctl_state_free(st);
}

TEST(ctl_state_node_json_carries_inventory_and_heartbeat)
{
	static char buf[16384];
	struct ctl_state *st;
	struct ctl_beat b = { .s3_endpoint = "http://10.0.0.9:9000", .health = "\"ok\"",
			      .disks = "[{\"name\":\"vdb\"}]", .uptime_s = 5, .capacity_bytes = 100,
			      .free_bytes = 50 };
	char tok[CTL_TOKEN_MAX], id[CTL_ID_MAX];
	enum ctl_node_state s;
	struct json_w w;
	int64_t exp;

	CHECK_INT(ctl_state_open(test_tmpdir(), HB, &st), 0);
	CHECK_INT(ctl_token_new(st, 3600, 1, T0, tok, &exp), 0);
	CHECK_INT(do_join(st, tok, "machine-a", T0, id), 0);
	CHECK_INT(ctl_heartbeat(st, id, &b, T0 + 1, &s), 0);
	json_w_init(&w, buf, sizeof(buf) - 1);
	CHECK_INT(ctl_node_json(st, id, T0 + 2, &w), 0);
	CHECK(json_w_end(&w) > 0);
	CHECK(strstr(buf, "\"state\":\"up\"") != NULL);
	CHECK(strstr(buf, "\"inventory\":{\"machine_id\":\"m\",\"cpus\":2,\"disks\":[]}") != NULL);
	CHECK(strstr(buf, "\"disks\":[{\"name\":\"vdb\"}]") != NULL);
	CHECK(strstr(buf, "\"health\":\"ok\"") != NULL);
	CHECK(strstr(buf, "\"s3_endpoint\":\"http://10.0.0.9:9000\"") != NULL);
	json_w_init(&w, buf, sizeof(buf) - 1);
	CHECK_INT(ctl_node_json(st, "node-0099", T0, &w), -ENOENT);
	ctl_state_free(st);
}

/* ------------------------------------------------------------------ inventory */

static int inv_check(const char *text, char machine[256])
{
	struct json_tok toks[4096];
	char host[256], *json = NULL;
	const char *why;
	int n = json_parse(text, strlen(text), toks, 4096), err;

	if (n < 1)
		return -100;
	err = ctl_inv_check(text, toks, 0, &json, machine, host, &why);
	if (!json != !!err)		/* a copy exactly when accepted */
		err = -101;
	free(json);
	return err;
}

#define GOOD_NICS "\"nics\":[{\"name\":\"eth0\",\"mac\":\"52:54:00:12:34:56\"}]"
#define GOOD_DISKS "\"disks\":[{\"name\":\"vdb\",\"size_bytes\":1073741824,\"model\":\"QEMU\",\"serial\":\"s1\",\"rotational\":false}]"

TEST(ctl_inventory_rules)
{
	char machine[256], big[40000];
	size_t n;

	CHECK_INT(inv_check("{\"machine_id\":\"abc\",\"hostname\":\"n1\",\"cpus\":4,\"mem_bytes\":1024,"
			    GOOD_NICS "," GOOD_DISKS ",\"extra\":{\"x\":[1,2]}}", machine), 0);
	CHECK_STR(machine, "abc");
	/* required fields */
	CHECK_INT(inv_check("{\"cpus\":4,\"mem_bytes\":1," GOOD_NICS "," GOOD_DISKS "}", machine), -EINVAL);
	CHECK_INT(inv_check("{\"machine_id\":\"\",\"cpus\":4,\"mem_bytes\":1," GOOD_NICS "," GOOD_DISKS "}", machine), -EINVAL);
	CHECK_INT(inv_check("{\"machine_id\":\"a\",\"mem_bytes\":1," GOOD_NICS "," GOOD_DISKS "}", machine), -EINVAL);
	CHECK_INT(inv_check("{\"machine_id\":\"a\",\"cpus\":4," GOOD_NICS "," GOOD_DISKS "}", machine), -EINVAL);
	CHECK_INT(inv_check("{\"machine_id\":\"a\",\"cpus\":4,\"mem_bytes\":1," GOOD_DISKS "}", machine), -EINVAL);
	CHECK_INT(inv_check("{\"machine_id\":\"a\",\"cpus\":4,\"mem_bytes\":1," GOOD_NICS "}", machine), -EINVAL);
	/* types and ranges */
	CHECK_INT(inv_check("{\"machine_id\":7,\"cpus\":4,\"mem_bytes\":1," GOOD_NICS "," GOOD_DISKS "}", machine), -EINVAL);
	CHECK_INT(inv_check("{\"machine_id\":\"a\",\"cpus\":0,\"mem_bytes\":1," GOOD_NICS "," GOOD_DISKS "}", machine), -EINVAL);
	CHECK_INT(inv_check("{\"machine_id\":\"a\",\"cpus\":\"4\",\"mem_bytes\":1," GOOD_NICS "," GOOD_DISKS "}", machine), -EINVAL);
	CHECK_INT(inv_check("{\"machine_id\":\"a\",\"cpus\":4,\"mem_bytes\":1.5," GOOD_NICS "," GOOD_DISKS "}", machine), -EINVAL);
	CHECK_INT(inv_check("{\"machine_id\":\"a\",\"cpus\":4,\"mem_bytes\":1,\"nics\":[{\"name\":\"e\"}]," GOOD_DISKS "}", machine), -EINVAL);
	CHECK_INT(inv_check("{\"machine_id\":\"a\",\"cpus\":4,\"mem_bytes\":1," GOOD_NICS ",\"disks\":[{\"name\":\"d\",\"size_bytes\":-1}]}", machine), -EINVAL);
	CHECK_INT(inv_check("{\"machine_id\":\"a\",\"cpus\":4,\"mem_bytes\":1," GOOD_NICS ",\"disks\":[{\"name\":\"d\",\"size_bytes\":1,\"rotational\":1}]}", machine), -EINVAL);
	CHECK_INT(inv_check("{\"machine_id\":\"a\",\"cpus\":4,\"mem_bytes\":1," GOOD_NICS ",\"disks\":{}}", machine), -EINVAL);
	/* a string of 256 bytes anywhere, even in an unknown field */
	n = (size_t)snprintf(big, sizeof(big), "{\"machine_id\":\"a\",\"cpus\":4,\"mem_bytes\":1," GOOD_NICS "," GOOD_DISKS ",\"note\":\"");
	memset(big + n, 'x', 256);
	snprintf(big + n + 256, sizeof(big) - n - 256, "\"}");
	CHECK_INT(inv_check(big, machine), -EINVAL);
	big[n + 255] = '"';
	big[n + 256] = '}';
	big[n + 257] = 0;
	CHECK_INT(inv_check(big, machine), 0);
	/* 65 NICs */
	n = (size_t)snprintf(big, sizeof(big), "{\"machine_id\":\"a\",\"cpus\":4,\"mem_bytes\":1," GOOD_DISKS ",\"nics\":[");
	for (int i = 0; i < 65; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "%s{\"name\":\"e%d\",\"mac\":\"m\"}", i ? "," : "", i);
	snprintf(big + n, sizeof(big) - n, "]}");
	CHECK_INT(inv_check(big, machine), -EINVAL);
	/* nesting deeper than CTL_JSON_DEPTH_MAX */
	CHECK_INT(inv_check("{\"machine_id\":\"a\",\"cpus\":4,\"mem_bytes\":1," GOOD_NICS "," GOOD_DISKS ",\"x\":[[[[[[[[[1]]]]]]]]]}", machine), -EINVAL);
}

/* ------------------------------------------------------------------ boot script */

TEST(ctl_boot_template_matches_firmware_pxe)
{
	static char file[CTL_BOOT_SCRIPT_MAX];
	FILE *f = fopen("firmware/pxe/boot.ipxe.in", "r");
	size_t n;

	CHECK(f != NULL);	/* run from the repository's top (as make unit does) */
	n = fread(file, 1, sizeof(file) - 1, f);
	fclose(f);
	file[n] = 0;
	CHECK_STR(file, ctl_boot_template);
}

TEST(ctl_boot_render_fills_every_placeholder)
{
	static char out[CTL_BOOT_SCRIPT_MAX];
	struct ctl_boot b = { .xen_args = "console=com1", .dom0_args = "console=hvc0",
			      .pin_hex = "ab12" };

	CHECK_INT(ctl_boot_render(&b, ctl_boot_template, "http://10.0.0.2:8080", "10.0.0.2:7443",
				  "cjt1.x.y", out, sizeof(out)), 0);
	CHECK(strchr(out, '@') == NULL);
	CHECK(strstr(out, "\nkernel http://10.0.0.2:8080/xen console=com1\n") != NULL);
	CHECK(strstr(out, "\nmodule http://10.0.0.2:8080/vmlinuz console=hvc0 cairn.controller=10.0.0.2:7443 cairn.token=cjt1.x.y cairn.ca-hash=sha256:ab12\n") != NULL);
	CHECK(strstr(out, "\nmodule http://10.0.0.2:8080/initrd.img\nboot\n") != NULL);
	CHECK_INT(ctl_boot_render(&b, ctl_boot_template, "http://h", "h:1", NULL, out, sizeof(out)), 0);
	CHECK(strstr(out, "cairn.token") == NULL);
	CHECK_INT(ctl_boot_render(&b, ctl_boot_template, "http://h", "h:1", NULL, out, 64), -ENOSPC);
}
