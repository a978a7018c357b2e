/* test_ctl_state.c — unit tests of the controller's model (firmware/controller/ctl_state.c):
 * journal replay, a torn or damaged journal, the token rules (expiry, uses, replay, bad
 * tokens), duplicate machines, removal, restarts; the cluster map (seeds, weights, the
 * version, down/up, long-poll waits, an old journal); plus the inventory rules (ctl_inv.c)
 * and the boot script (ctl_boot.c). */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../firmware/controller/ctl_boot.h"
#include "../../firmware/controller/ctl_inv.h"
#include "../../firmware/controller/ctl_json.h"
#include "../../firmware/controller/ctl_state.h"
#include "../../lib/hash.h"

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
	CHECK_INT(ctl_node_state(st, id1, &s), 0);
	CHECK_INT(s, CTL_UP);
	CHECK_INT(ctl_node_state(st, id2, &s), 0);
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
	CHECK_INT(ctl_node_state(st, "node-0001", &s), 0);
	CHECK_INT(s, CTL_GONE);
	CHECK_INT(ctl_heartbeat(st, "node-0001", &b, T0, &s), -EIDRM);
	ctl_state_free(st);
}

TEST(ctl_state_silent_node_goes_down_and_comes_back)
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
	CHECK_INT(ctl_map_sweep(st, T0 + limit), 0);
	CHECK_INT(ctl_node_state(st, id, &s), 0);
	CHECK_INT(s, CTL_UP);
	CHECK_INT(ctl_map_sweep(st, T0 + limit + 1), 1);
	CHECK_INT(ctl_node_state(st, id, &s), 0);
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
	CHECK_INT(ctl_node_json(st, id, &w), 0);
	CHECK(json_w_end(&w) > 0);
	CHECK(strstr(buf, "\"state\":\"up\"") != NULL);
	CHECK(strstr(buf, "\"inventory\":{\"machine_id\":\"m\",\"cpus\":2,\"disks\":[]}") != NULL);
	CHECK(strstr(buf, "\"disks\":[{\"name\":\"vdb\"}]") != NULL);
	CHECK(strstr(buf, "\"health\":\"ok\"") != NULL);
	CHECK(strstr(buf, "\"s3_endpoint\":\"http://10.0.0.9:9000\"") != NULL);
	json_w_init(&w, buf, sizeof(buf) - 1);
	CHECK_INT(ctl_node_json(st, "node-0099", &w), -ENOENT);
	ctl_state_free(st);
}

/* ------------------------------------------------------------------ the map */

#define GIB	(1LL << 30)
#define NO_BEAT	{ .uptime_s = -1, .capacity_bytes = -1, .free_bytes = -1 }

/* A join whose inventory has two disks of gib/2 GiB each. */
static int join_sized(struct ctl_state *st, const char *token, const char *machine, int64_t gib,
		      char id[CTL_ID_MAX])
{
	static char cert[CTL_CERT_MAX];
	char inv[256];
	struct ctl_join j = join_of(token, machine, machine);

	snprintf(inv, sizeof(inv), "{\"machine_id\":\"%s\",\"cpus\":2,\"disks\":[{\"name\":\"vdb\",\"size_bytes\":%lld},{\"name\":\"vdc\",\"size_bytes\":%lld}]}",
		 machine, (long long)(gib * GIB / 2), (long long)(gib * GIB / 2));
	j.inventory = inv;
	return ctl_join(st, &j, T0, id, cert);
}

static int64_t version(struct ctl_state *st)
{
	return (int64_t)ctl_map_version(st);
}

TEST(ctl_map_seeds_are_random_and_stable_across_replay)
{
	struct ctl_state *st;
	struct ctl_map_node m1, m2, again;
	char tok[CTL_TOKEN_MAX], id1[CTL_ID_MAX], id2[CTL_ID_MAX];
	int64_t exp, v;

	CHECK_INT(ctl_state_open(test_tmpdir(), HB, &st), 0);
	CHECK_INT(ctl_token_new(st, 3600, 2, T0, tok, &exp), 0);
	CHECK_INT(do_join(st, tok, "machine-a", T0, id1), 0);
	CHECK_INT(do_join(st, tok, "machine-b", T0, id2), 0);
	CHECK_INT(ctl_map_node(st, id1, &m1), 0);
	CHECK_INT(ctl_map_node(st, id2, &m2), 0);
	CHECK_INT(strlen(m1.seed), CTL_SEED_HEX);
	CHECK_INT(strspn(m1.seed, "0123456789abcdef"), CTL_SEED_HEX);
	CHECK(strcmp(m1.seed, m2.seed) != 0);
	v = version(st);
	ctl_state_free(st);
	CHECK_INT(ctl_state_open(test_tmpdir(), HB, &st), 0);
	CHECK_INT(ctl_map_node(st, id1, &again), 0);
	CHECK_STR(again.seed, m1.seed);
	CHECK_INT(ctl_map_node(st, id2, &again), 0);
	CHECK_STR(again.seed, m2.seed);
	CHECK_INT(version(st), v);
	CHECK_INT(ctl_map_node(st, "node-0042", &again), -ENOENT);
	ctl_state_free(st);
}

TEST(ctl_map_version_moves_once_per_change)
{
	static char cert[CTL_CERT_MAX];
	struct ctl_state *st;
	struct ctl_beat b = NO_BEAT;
	char tok[CTL_TOKEN_MAX], id[CTL_ID_MAX], id2[CTL_ID_MAX];
	enum ctl_node_state s;
	struct ctl_join j;
	int64_t exp;

	CHECK_INT(ctl_state_open(test_tmpdir(), HB, &st), 0);
	CHECK_INT(version(st), 0);
	CHECK_INT(ctl_token_new(st, 3600, 1, T0, tok, &exp), 0);
	CHECK_INT(version(st), 0);				/* tokens are not the map */
	j = join_of(tok, "machine-a", "csr-a");
	CHECK_INT(ctl_join(st, &j, T0, id, cert), 0);
	CHECK_INT(version(st), 1);
	CHECK_INT(ctl_join(st, &j, T0, id, cert), 0);		/* a retry: nothing new */
	CHECK_INT(version(st), 1);
	CHECK_INT(do_join(st, tok, "machine-b", T0, id2), -EKEYREVOKED);
	CHECK_INT(version(st), 1);
	CHECK_INT(ctl_heartbeat(st, id, &b, T0 + 1, &s), 0);	/* joining -> up */
	CHECK_INT(version(st), 2);
	CHECK_INT(ctl_heartbeat(st, id, &b, T0 + 2, &s), 0);	/* nothing the map shows */
	CHECK_INT(version(st), 2);
	b.internal_addr = "10.0.0.9:7480";
	CHECK_INT(ctl_heartbeat(st, id, &b, T0 + 3, &s), 0);
	CHECK_INT(version(st), 3);
	CHECK_INT(ctl_heartbeat(st, id, &b, T0 + 4, &s), 0);	/* the same address again */
	CHECK_INT(version(st), 3);
	b.s3_endpoint = "http://10.0.0.9:9000";
	CHECK_INT(ctl_heartbeat(st, id, &b, T0 + 5, &s), 0);
	CHECK_INT(version(st), 4);
	b.internal_addr = "10.0.0.10:7480";
	CHECK_INT(ctl_heartbeat(st, id, &b, T0 + 6, &s), 0);
	CHECK_INT(version(st), 5);
	CHECK_INT(ctl_node_drain(st, id, T0 + 7), 0);
	CHECK_INT(version(st), 6);
	CHECK_INT(ctl_node_drain(st, id, T0 + 8), 0);		/* already draining */
	CHECK_INT(version(st), 6);
	CHECK_INT(ctl_node_remove(st, id, T0 + 9), 0);
	CHECK_INT(version(st), 7);
	CHECK_INT(ctl_node_remove(st, id, T0 + 10), 0);
	CHECK_INT(version(st), 7);
	CHECK_INT(ctl_heartbeat(st, id, &b, T0 + 11, &s), -EIDRM);
	CHECK_INT(version(st), 7);
	b.internal_addr = "0123456789012345678901234567890123456789012345678901234567890:80";
	CHECK_INT(ctl_heartbeat(st, id, &b, T0 + 12, &s), -EINVAL);	/* too long: refused */
	CHECK_INT(version(st), 7);
	ctl_state_free(st);
	CHECK_INT(ctl_state_open(test_tmpdir(), HB, &st), 0);
	CHECK_INT(version(st), 7);
	ctl_state_free(st);
}

TEST(ctl_map_down_and_up_move_the_version_once_each)
{
	struct ctl_state *st;
	struct ctl_beat b = NO_BEAT;
	char tok[CTL_TOKEN_MAX], id[CTL_ID_MAX], id2[CTL_ID_MAX];
	enum ctl_node_state s;
	int64_t exp, v, limit = (int64_t)CTL_DOWN_PERIODS * HB * 1000;

	CHECK_INT(ctl_state_open(test_tmpdir(), HB, &st), 0);
	CHECK_INT(ctl_token_new(st, 3600, 2, T0, tok, &exp), 0);
	CHECK_INT(do_join(st, tok, "machine-a", T0, id), 0);
	CHECK_INT(do_join(st, tok, "machine-b", T0, id2), 0);	/* stays joining: never down */
	CHECK_INT(ctl_heartbeat(st, id, &b, T0, &s), 0);
	v = version(st);
	CHECK_INT(ctl_map_sweep(st, T0 + limit), 0);
	CHECK_INT(version(st), v);
	CHECK_INT(ctl_map_sweep(st, T0 + limit + 1), 1);
	CHECK_INT(version(st), v + 1);
	CHECK_INT(ctl_map_sweep(st, T0 + 5 * limit), 0);	/* down already */
	CHECK_INT(version(st), v + 1);
	CHECK_INT(ctl_node_state(st, id2, &s), 0);
	CHECK_INT(s, CTL_JOINING);
	CHECK_INT(ctl_heartbeat(st, id, &b, T0 + 5 * limit, &s), 0);
	CHECK_INT(s, CTL_UP);
	CHECK_INT(version(st), v + 2);
	CHECK_INT(ctl_heartbeat(st, id, &b, T0 + 5 * limit + 1, &s), 0);
	CHECK_INT(version(st), v + 2);
	/* a draining node that falls silent stays draining */
	CHECK_INT(ctl_node_drain(st, id, T0 + 5 * limit + 2), 0);
	CHECK_INT(ctl_map_sweep(st, T0 + 20 * limit), 0);
	CHECK_INT(ctl_node_state(st, id, &s), 0);
	CHECK_INT(s, CTL_DRAINING);
	ctl_state_free(st);
}

TEST(ctl_map_restart_gives_silent_nodes_their_periods_again)
{
	struct ctl_state *st;
	struct ctl_beat b = NO_BEAT;
	char tok[CTL_TOKEN_MAX], id[CTL_ID_MAX];
	enum ctl_node_state s;
	int64_t exp, v, later = T0 + 3600 * 1000, limit = (int64_t)CTL_DOWN_PERIODS * HB * 1000;

	CHECK_INT(ctl_state_open(test_tmpdir(), HB, &st), 0);
	CHECK_INT(ctl_token_new(st, 3600, 1, T0, tok, &exp), 0);
	CHECK_INT(do_join(st, tok, "machine-a", T0, id), 0);
	CHECK_INT(ctl_heartbeat(st, id, &b, T0, &s), 0);
	v = version(st);
	ctl_state_free(st);
	/* an hour later: the node was last heard at T0, but this controller has not listened yet */
	CHECK_INT(ctl_state_open(test_tmpdir(), HB, &st), 0);
	CHECK_INT(ctl_map_sweep(st, later), 0);
	CHECK_INT(ctl_map_sweep(st, later + limit), 0);
	CHECK_INT(version(st), v);
	CHECK_INT(ctl_map_sweep(st, later + limit + 1), 1);
	CHECK_INT(ctl_node_state(st, id, &s), 0);
	CHECK_INT(s, CTL_DOWN);
	CHECK_INT(version(st), v + 1);
	ctl_state_free(st);
	/* down is journaled: it stays down, at the same version */
	CHECK_INT(ctl_state_open(test_tmpdir(), HB, &st), 0);
	CHECK_INT(ctl_node_state(st, id, &s), 0);
	CHECK_INT(s, CTL_DOWN);
	CHECK_INT(version(st), v + 1);
	ctl_state_free(st);
}

TEST(ctl_map_weight_follows_capacity_beyond_ten_percent)
{
	struct ctl_state *st;
	struct ctl_beat b = NO_BEAT;
	struct ctl_map_node m;
	char tok[CTL_TOKEN_MAX], id[CTL_ID_MAX], id2[CTL_ID_MAX];
	enum ctl_node_state s;
	int64_t exp, v;

	CHECK_INT(ctl_state_open(test_tmpdir(), HB, &st), 0);
	CHECK_INT(ctl_token_new(st, 3600, 2, T0, tok, &exp), 0);
	CHECK_INT(join_sized(st, tok, "machine-a", 100, id), 0);
	CHECK_INT(ctl_map_node(st, id, &m), 0);
	CHECK_INT(m.weight, 100);				/* the inventory's disks */
	CHECK_INT(do_join(st, tok, "machine-b", T0, id2), 0);	/* no disks: the least weight */
	CHECK_INT(ctl_map_node(st, id2, &m), 0);
	CHECK_INT(m.weight, 1);
	b.capacity_bytes = 95 * GIB;				/* what mkfs left: -5 % */
	CHECK_INT(ctl_heartbeat(st, id, &b, T0 + 1, &s), 0);
	v = version(st);
	CHECK_INT(ctl_map_node(st, id, &m), 0);
	CHECK_INT(m.weight, 100);
	b.capacity_bytes = 110 * GIB;				/* +10 %: not more than 10 */
	CHECK_INT(ctl_heartbeat(st, id, &b, T0 + 2, &s), 0);
	CHECK_INT(version(st), v);
	b.capacity_bytes = 111 * GIB - GIB / 4;			/* rounds to 111: +11 % */
	CHECK_INT(ctl_heartbeat(st, id, &b, T0 + 3, &s), 0);
	CHECK_INT(version(st), v + 1);
	CHECK_INT(ctl_map_node(st, id, &m), 0);
	CHECK_INT(m.weight, 111);
	b.capacity_bytes = 100 * GIB;				/* -9.9 % of 111 */
	CHECK_INT(ctl_heartbeat(st, id, &b, T0 + 4, &s), 0);
	CHECK_INT(version(st), v + 1);
	b.capacity_bytes = 0;					/* every disk gone: weight 1 */
	CHECK_INT(ctl_heartbeat(st, id, &b, T0 + 5, &s), 0);
	CHECK_INT(version(st), v + 2);
	CHECK_INT(ctl_map_node(st, id, &m), 0);
	CHECK_INT(m.weight, 1);
	b.capacity_bytes = 300 * GIB;
	CHECK_INT(ctl_heartbeat(st, id, &b, T0 + 6, &s), 0);
	CHECK_INT(version(st), v + 3);
	ctl_state_free(st);
	CHECK_INT(ctl_state_open(test_tmpdir(), HB, &st), 0);	/* the weight is journaled */
	CHECK_INT(ctl_map_node(st, id, &m), 0);
	CHECK_INT(m.weight, 300);
	CHECK_INT(version(st), v + 3);
	ctl_state_free(st);
}

TEST(ctl_map_json_lists_members_not_gone)
{
	static char buf[16384];
	struct ctl_state *st;
	struct ctl_beat b = NO_BEAT;
	struct ctl_map_info mi = { "c0ffee", 3, 2 };
	struct ctl_map_node m;
	char tok[CTL_TOKEN_MAX], id[CTL_ID_MAX], id2[CTL_ID_MAX], want[256];
	enum ctl_node_state s;
	struct json_w w;
	int64_t exp;

	CHECK_INT(ctl_state_open(test_tmpdir(), HB, &st), 0);
	CHECK_INT(ctl_token_new(st, 3600, 2, T0, tok, &exp), 0);
	CHECK_INT(join_sized(st, tok, "machine-a", 64, id), 0);
	CHECK_INT(do_join(st, tok, "machine-b", T0, id2), 0);
	b.internal_addr = "10.0.0.11:7480";
	b.s3_endpoint = "http://10.0.0.11:9000";
	CHECK_INT(ctl_heartbeat(st, id, &b, T0 + 1, &s), 0);
	CHECK_INT(ctl_node_remove(st, id2, T0 + 2), 0);
	CHECK_INT(ctl_map_node(st, id, &m), 0);
	json_w_init(&w, buf, sizeof(buf) - 1);
	CHECK_INT(ctl_map_json(st, &mi, &w), 4);
	CHECK(json_w_end(&w) > 0);
	snprintf(want, sizeof(want), "{\"version\":4,\"cluster_id\":\"c0ffee\",\"replicas\":3,\"write_quorum\":2,\"nodes\":[{\"node_id\":\"%s\",\"state\":\"up\",\"seed\":\"%s\",\"weight\":64,\"internal_addr\":\"10.0.0.11:7480\",\"s3_endpoint\":\"http://10.0.0.11:9000\"}]}",
		 id, m.seed);
	CHECK_STR(buf, want);
	ctl_state_free(st);
}

struct waiter {
	struct ctl_state *st;
	uint64_t since;
	int rc;
};

static void *wait_main(void *arg)
{
	struct waiter *wt = arg;

	wt->rc = ctl_map_wait(wt->st, wt->since, 10000);
	return NULL;
}

TEST(ctl_map_wait_wakes_on_a_change_and_on_close)
{
	struct ctl_state *st;
	struct ctl_beat b = NO_BEAT;
	char tok[CTL_TOKEN_MAX], id[CTL_ID_MAX];
	enum ctl_node_state s;
	struct waiter wt;
	pthread_t t;
	int64_t exp;

	CHECK_INT(ctl_state_open(test_tmpdir(), HB, &st), 0);
	CHECK_INT(ctl_token_new(st, 3600, 1, T0, tok, &exp), 0);
	CHECK_INT(do_join(st, tok, "machine-a", T0, id), 0);
	CHECK_INT(ctl_map_wait(st, 0, 10000), 0);		/* an old version: at once */
	CHECK_INT(ctl_map_wait(st, 1, 50), -ETIMEDOUT);
	CHECK_INT(ctl_map_wait(st, 7, 50), -ETIMEDOUT);	/* a newer one than it has: held too */
	wt = (struct waiter){ st, 1, 1 };
	CHECK_INT(pthread_create(&t, NULL, wait_main, &wt), 0);
	usleep(50 * 1000);
	CHECK_INT(ctl_heartbeat(st, id, &b, T0 + 1, &s), 0);	/* joining -> up: version 2 */
	pthread_join(t, NULL);
	CHECK_INT(wt.rc, 0);
	wt = (struct waiter){ st, 2, 1 };
	CHECK_INT(pthread_create(&t, NULL, wait_main, &wt), 0);
	usleep(50 * 1000);
	ctl_map_close(st);
	pthread_join(t, NULL);
	CHECK_INT(wt.rc, -ECANCELED);
	CHECK_INT(ctl_map_wait(st, 2, 10000), -ECANCELED);
	ctl_state_free(st);
}

TEST(ctl_map_old_journal_replays_with_derived_seeds)
{
	/* A journal written before the map existed: no seed, no weight, no down records. */
	static const char old[] =
		"{\"op\":\"token\",\"id\":\"0123456789abcdef\",\"hash\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"expires_ms\":1700003600000,\"uses\":2}\n"
		"{\"op\":\"node\",\"node_id\":\"node-0001\",\"machine_id\":\"m1\",\"hostname\":\"h\",\"addr\":\"10.0.0.9\",\"joined_ms\":1700000000000,\"token\":\"0123456789abcdef\",\"csr_hash\":\"aa\",\"cert_serial\":1,\"cert\":\"C\",\"inventory\":{\"machine_id\":\"m1\",\"cpus\":2,\"mem_bytes\":1,\"nics\":[],\"disks\":[{\"name\":\"vdb\",\"size_bytes\":8589934592},{\"name\":\"vdc\",\"size_bytes\":8589934592}]}}\n"
		"{\"op\":\"node\",\"node_id\":\"node-0002\",\"machine_id\":\"m2\",\"hostname\":\"h\",\"addr\":\"10.0.0.9\",\"joined_ms\":1700000000000,\"token\":\"0123456789abcdef\",\"csr_hash\":\"bb\",\"cert_serial\":2,\"cert\":\"C\",\"inventory\":{\"machine_id\":\"m2\",\"cpus\":2,\"mem_bytes\":1,\"nics\":[],\"disks\":[]}}\n"
		"{\"op\":\"state\",\"node_id\":\"node-0001\",\"state\":\"up\",\"ms\":1700000001000}\n"
		"{\"op\":\"state\",\"node_id\":\"node-0002\",\"state\":\"draining\",\"ms\":1700000002000}\n";
	unsigned char d[SHA256_LEN];
	char want[2 * SHA256_LEN + 1];
	struct ctl_state *st;
	struct ctl_map_node m1, m2;
	int fd = open(journal_path(), O_WRONLY | O_CREAT | O_TRUNC, 0600);

	CHECK(fd >= 0);
	CHECK_INT(write(fd, old, sizeof(old) - 1), (long long)sizeof(old) - 1);
	close(fd);
	CHECK_INT(ctl_state_open(test_tmpdir(), HB, &st), 0);
	CHECK_INT(version(st), 4);				/* two joins, two state changes */
	CHECK_INT(ctl_map_node(st, "node-0001", &m1), 0);
	CHECK_INT(ctl_map_node(st, "node-0002", &m2), 0);
	sha256("cairn-node-seed:node-0001", 25, d);
	hex_encode(d, CTL_SEED_HEX / 2, want);
	CHECK_STR(m1.seed, want);
	CHECK(strcmp(m1.seed, m2.seed) != 0);
	CHECK_INT(m1.state, CTL_UP);
	CHECK_INT(m1.weight, 16);
	CHECK_STR(m1.internal_addr, "");
	CHECK_INT(m2.state, CTL_DRAINING);
	CHECK_INT(m2.weight, 1);
	ctl_state_free(st);
	CHECK_INT(ctl_state_open(test_tmpdir(), HB, &st), 0);
	CHECK_INT(ctl_map_node(st, "node-0001", &m2), 0);
	CHECK_STR(m2.seed, m1.seed);
	CHECK_INT(version(st), 4);
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
