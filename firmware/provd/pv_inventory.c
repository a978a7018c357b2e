/* pv_inventory.c — the machine's inventory from sysfs and proc. Every read is optional (a
 * VM has no DMI serial, a container no /sys/block): what is missing stays empty, and the
 * controller decides whether the inventory is good enough. */
#include "pv_inventory.h"
#include "pv_util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PV_PATH_MAX	512

/* Printable ASCII only, leading blanks dropped: the values go into JSON and logs. */
static void clean(char *s)
{
	char *p = s;

	while (*p == ' ' || *p == '\t')
		p++;
	memmove(s, p, strlen(p) + 1);
	for (p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			*p = '?';
}

static int read_attr(const char *root, const char *rel, char *out, size_t max)
{
	char path[2 * PV_PATH_MAX];
	int rc;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	rc = pv_read_small(path, out, max);
	if (rc < 0)
		out[0] = 0;
	else
		clean(out);
	return rc;
}

static bool path_exists(const char *root, const char *rel)
{
	char path[2 * PV_PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	return stat(path, &st) == 0;
}

/* "0-3,5,7-8" -> 7; 0 when unreadable. */
static int count_cpu_list(const char *s)
{
	int n = 0;

	while (*s) {
		char *end;
		long a = strtol(s, &end, 10), b = a;

		if (end == s)
			return 0;
		if (*end == '-')
			b = strtol(end + 1, &end, 10);
		if (b < a)
			return 0;
		n += (int)(b - a + 1);
		s = end;
		if (*s == ',')
			s++;
		else if (*s)
			return 0;
	}
	return n;
}

/* The CPU model and, when sysfs does not say, the processor count. */
static void read_cpuinfo(const char *proc_root, struct pv_inv *inv, int *nproc)
{
	static const char *const keys[] = { "model name", "Processor", "cpu model", "Model" };
	char path[PV_PATH_MAX], line[512];
	FILE *f;
	int best = 4;

	snprintf(path, sizeof(path), "%s/cpuinfo", proc_root);
	f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');
		size_t kl;

		if (!colon)
			continue;
		for (kl = (size_t)(colon - line); kl && isspace((unsigned char)line[kl - 1]); kl--)
			;
		if (kl == 9 && strncmp(line, "processor", 9) == 0)
			(*nproc)++;
		for (int k = 0; k < best; k++) {
			if (strlen(keys[k]) == kl && strncmp(line, keys[k], kl) == 0) {
				pv_copy(inv->cpu_model, sizeof(inv->cpu_model), colon + 1);
				inv->cpu_model[strcspn(inv->cpu_model, "\n")] = 0;
				clean(inv->cpu_model);
				best = k;
			}
		}
	}
	fclose(f);
}

static void read_cpu_mem(const char *sys_root, const char *proc_root, struct pv_inv *inv)
{
	char buf[PV_STR_MAX], path[PV_PATH_MAX], line[256];
	int nproc = 0;
	FILE *f;

	read_cpuinfo(proc_root, inv, &nproc);
	if (read_attr(sys_root, "devices/system/cpu/online", buf, sizeof(buf)) > 0)
		inv->cpus = count_cpu_list(buf);
	if (inv->cpus <= 0)
		inv->cpus = nproc;
	snprintf(path, sizeof(path), "%s/meminfo", proc_root);
	f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long kb;

		if (sscanf(line, "MemTotal: %llu kB", &kb) == 1) {
			inv->mem_bytes = (uint64_t)kb * 1024;
			break;
		}
	}
	fclose(f);
}

static bool uuid_ok(char *u)
{
	size_t n = strlen(u);

	for (size_t i = 0; i < n; i++)
		u[i] = (char)tolower((unsigned char)u[i]);
	if (n != 36 || strspn(u, "0123456789abcdef-") != n)
		return false;
	return strspn(u, "0-") != n && strspn(u, "f-") != n;	/* unset firmware values */
}

static int cmp_nic(const void *a, const void *b)
{
	return strcmp(((const struct pv_nic *)a)->name, ((const struct pv_nic *)b)->name);
}

static int cmp_blk(const void *a, const void *b)
{
	return strcmp(((const struct pv_blk *)a)->name, ((const struct pv_blk *)b)->name);
}

static int read_nics(const char *sys_root, struct pv_inv *inv)
{
	char dir[PV_PATH_MAX], rel[PV_PATH_MAX];
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/class/net", sys_root);
	d = opendir(dir);
	if (!d)
		return 0;
	inv->nics = calloc(PV_NICS_MAX, sizeof(*inv->nics));
	if (!inv->nics) {
		closedir(d);
		return -ENOMEM;
	}
	while ((de = readdir(d)) && inv->nnics < PV_NICS_MAX) {
		struct pv_nic *n = &inv->nics[inv->nnics];

		if (de->d_name[0] == '.' || strcmp(de->d_name, "lo") == 0 ||
		    strlen(de->d_name) >= sizeof(n->name))
			continue;
		snprintf(rel, sizeof(rel), "class/net/%s/address", de->d_name);
		if (read_attr(sys_root, rel, n->mac, sizeof(n->mac)) <= 0 ||
		    strspn(n->mac, "0:") == strlen(n->mac))
			continue;
		pv_copy(n->name, sizeof(n->name), de->d_name);
		snprintf(rel, sizeof(rel), "class/net/%s/device", de->d_name);
		n->physical = path_exists(sys_root, rel);
		inv->nnics++;
	}
	closedir(d);
	qsort(inv->nics, (size_t)inv->nnics, sizeof(*inv->nics), cmp_nic);
	return 0;
}

bool pv_inv_skip_blk(const char *name)
{
	static const char *const skip[] = { "loop", "ram", "zram", "dm-", "sr", "md", "nbd", "fd" };

	for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
		if (strncmp(name, skip[i], strlen(skip[i])) == 0)
			return true;
	/* eMMC hardware boot and RPMB areas: firmware's, never data */
	if (strncmp(name, "mmcblk", 6) == 0 && (strstr(name, "boot") || strstr(name, "rpmb")))
		return true;
	return name[0] == '.';
}

static void read_blk(const char *sys_root, const char *name, struct pv_blk *b)
{
	static const char *const serials[] = { "device/serial", "serial", "wwid", "device/wwid" };
	char rel[PV_PATH_MAX], buf[64];

	pv_copy(b->name, sizeof(b->name), name);
	snprintf(rel, sizeof(rel), "block/%s/size", name);
	if (read_attr(sys_root, rel, buf, sizeof(buf)) > 0)
		b->size_bytes = strtoull(buf, NULL, 10) * 512;
	snprintf(rel, sizeof(rel), "block/%s/device/model", name);
	read_attr(sys_root, rel, b->model, sizeof(b->model));
	for (size_t i = 0; i < sizeof(serials) / sizeof(serials[0]) && !b->serial[0]; i++) {
		snprintf(rel, sizeof(rel), "block/%s/%s", name, serials[i]);
		read_attr(sys_root, rel, b->serial, sizeof(b->serial));
	}
	snprintf(rel, sizeof(rel), "block/%s/queue/rotational", name);
	b->rotational = read_attr(sys_root, rel, buf, sizeof(buf)) > 0 && buf[0] == '1';
	snprintf(rel, sizeof(rel), "block/%s/ro", name);
	b->read_only = read_attr(sys_root, rel, buf, sizeof(buf)) > 0 && buf[0] == '1';
}

static int read_disks(const char *sys_root, struct pv_inv *inv)
{
	char dir[PV_PATH_MAX];
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/block", sys_root);
	d = opendir(dir);
	if (!d)
		return 0;
	inv->disks = calloc(PV_DISKS_MAX, sizeof(*inv->disks));
	if (!inv->disks) {
		closedir(d);
		return -ENOMEM;
	}
	while ((de = readdir(d)) && inv->ndisks < PV_DISKS_MAX) {
		if (pv_inv_skip_blk(de->d_name) || strlen(de->d_name) >= PV_NAME_MAX)
			continue;
		read_blk(sys_root, de->d_name, &inv->disks[inv->ndisks]);
		if (inv->disks[inv->ndisks].size_bytes > 0)	/* empty card readers, ejected media */
			inv->ndisks++;
		else
			memset(&inv->disks[inv->ndisks], 0, sizeof(inv->disks[0]));
	}
	closedir(d);
	qsort(inv->disks, (size_t)inv->ndisks, sizeof(*inv->disks), cmp_blk);
	return 0;
}

/* The DMI product UUID, else the MAC of the first physical NIC, else of any NIC. */
static void pick_machine_id(const char *sys_root, struct pv_inv *inv)
{
	char uuid[PV_STR_MAX];

	read_attr(sys_root, "class/dmi/id/product_serial", inv->dmi_serial, sizeof(inv->dmi_serial));
	if (read_attr(sys_root, "class/dmi/id/product_uuid", uuid, sizeof(uuid)) > 0 && uuid_ok(uuid)) {
		pv_copy(inv->machine_id, sizeof(inv->machine_id), uuid);
		return;
	}
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < inv->nnics; i++) {
			if (pass == 0 && !inv->nics[i].physical)
				continue;
			pv_copy(inv->machine_id, sizeof(inv->machine_id), inv->nics[i].mac);
			return;
		}
	}
}

int pv_inv_collect(const char *sys_root, const char *proc_root, struct pv_inv *inv)
{
	int rc;

	memset(inv, 0, sizeof(*inv));
	if (gethostname(inv->hostname, sizeof(inv->hostname) - 1) < 0)
		inv->hostname[0] = 0;
	clean(inv->hostname);
	read_cpu_mem(sys_root, proc_root, inv);
	if ((rc = read_nics(sys_root, inv)) || (rc = read_disks(sys_root, inv))) {
		pv_inv_fini(inv);
		return rc;
	}
	pick_machine_id(sys_root, inv);
	return 0;
}

void pv_inv_fini(struct pv_inv *inv)
{
	free(inv->nics);
	free(inv->disks);
	inv->nics = NULL;
	inv->disks = NULL;
	inv->nnics = inv->ndisks = 0;
}

const struct pv_blk *pv_inv_disk(const struct pv_inv *inv, const char *name)
{
	for (int i = 0; i < inv->ndisks; i++)
		if (strcmp(inv->disks[i].name, name) == 0)
			return &inv->disks[i];
	return NULL;
}

void pv_inv_json(const struct pv_inv *inv, struct json_w *w)
{
	json_w_obj(w);
	json_w_kstr(w, "machine_id", inv->machine_id);
	json_w_kstr(w, "hostname", inv->hostname);
	json_w_kstr(w, "dmi_serial", inv->dmi_serial);
	json_w_kstr(w, "cpu_model", inv->cpu_model);
	json_w_kint(w, "cpus", inv->cpus);
	json_w_kint(w, "mem_bytes", (int64_t)inv->mem_bytes);
	json_w_key(w, "nics");
	json_w_arr(w);
	for (int i = 0; i < inv->nnics; i++) {
		json_w_obj(w);
		json_w_kstr(w, "name", inv->nics[i].name);
		json_w_kstr(w, "mac", inv->nics[i].mac);
		json_w_obj_end(w);
	}
	json_w_arr_end(w);
	json_w_key(w, "disks");
	json_w_arr(w);
	for (int i = 0; i < inv->ndisks; i++) {
		const struct pv_blk *b = &inv->disks[i];

		json_w_obj(w);
		json_w_kstr(w, "name", b->name);
		json_w_kint(w, "size_bytes", (int64_t)b->size_bytes);
		json_w_kstr(w, "model", b->model);
		json_w_kstr(w, "serial", b->serial);
		json_w_kbool(w, "rotational", b->rotational);
		json_w_obj_end(w);
	}
	json_w_arr_end(w);
	json_w_obj_end(w);
}
