/* pv_disk.c — probing, formatting and mounting the data disks. The rule that matters: a
 * disk is formatted only when it reads as blank or the operator named it in cairn.wipe;
 * everything else that is not already a Cairn data disk is left alone and reported. */
#include "pv_disk.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../lib/log.h"
#include "pv_util.h"

#define PV_CHUNK	(64 * 1024)
#define EXT_SB_OFF	1024
#define EXT_MAGIC_OFF	(EXT_SB_OFF + 56)
#define EXT_LABEL_OFF	(EXT_SB_OFF + 120)

const char *pv_probe_name(enum pv_probe_kind k)
{
	static const char *const n[] = { "blank", "cairn", "ext", "partitioned", "data" };

	return n[k];
}

const char *pv_disk_state_name(enum pv_disk_state s)
{
	static const char *const n[] = { "ok", "foreign", "other_cluster", "error" };

	return n[s];
}

/* true when [off, off + len) of fd reads as zeros; -errno on a read error. */
static int span_zero(int fd, uint64_t off, uint64_t len, unsigned char *buf)
{
	while (len > 0) {
		size_t want = len < PV_CHUNK ? (size_t)len : PV_CHUNK;
		ssize_t n = pread(fd, buf, want, (off_t)off);

		if (n < 0)
			return -errno;
		if (n == 0)
			return 1;	/* short device: the rest does not exist */
		for (ssize_t i = 0; i < n; i++)
			if (buf[i])
				return 0;
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 1;
}

/* Classifies from the first chunk (it holds the MBR, both GPT header places and the ext
 * superblock). */
static void classify_head(const unsigned char *b, size_t n, struct pv_probe *out)
{
	if (n >= 512 && b[510] == 0x55 && b[511] == 0xAA) {
		out->kind = PV_PROBE_PARTS;
		return;
	}
	if ((n >= 520 && memcmp(b + 512, "EFI PART", 8) == 0) ||
	    (n >= 4104 && memcmp(b + 4096, "EFI PART", 8) == 0)) {
		out->kind = PV_PROBE_PARTS;
		return;
	}
	if (n >= EXT_LABEL_OFF + 16 && b[EXT_MAGIC_OFF] == 0x53 && b[EXT_MAGIC_OFF + 1] == 0xEF) {
		const char *digits;

		memcpy(out->label, b + EXT_LABEL_OFF, 16);
		out->label[16] = 0;
		out->kind = PV_PROBE_EXT;
		digits = out->label + strlen(PV_LABEL_PREFIX);
		if (strncmp(out->label, PV_LABEL_PREFIX, strlen(PV_LABEL_PREFIX)) == 0 && *digits &&
		    strspn(digits, "0123456789") == strlen(digits) && strlen(digits) <= 4 &&
		    atoi(digits) > 0) {
			out->kind = PV_PROBE_CAIRN;
			out->index = atoi(digits);
		}
		return;
	}
	out->kind = PV_PROBE_DATA;
}

int pv_disk_probe_fd(int fd, uint64_t size, struct pv_probe *out)
{
	unsigned char *buf = malloc(PV_CHUNK);
	ssize_t n;
	int rc = 0, z;

	memset(out, 0, sizeof(*out));
	if (!buf)
		return -ENOMEM;
	n = pread(fd, buf, PV_CHUNK, 0);
	if (n < 0) {
		rc = -errno;
		goto out_free;
	}
	classify_head(buf, (size_t)n, out);
	if (out->kind != PV_PROBE_DATA)
		goto out_free;
	z = span_zero(fd, 0, PV_BLANK_SPAN, buf);
	if (z == 1 && size > 2 * PV_BLANK_SPAN)
		z = span_zero(fd, size - PV_BLANK_SPAN, PV_BLANK_SPAN, buf);
	if (z < 0)
		rc = z;
	else if (z == 1)
		out->kind = PV_PROBE_BLANK;
out_free:
	free(buf);
	return rc;
}

int pv_disk_probe(const char *path, struct pv_probe *out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;
	off_t size;

	if (fd < 0)
		return -errno;
	size = lseek(fd, 0, SEEK_END);
	rc = size < 0 ? -errno : pv_disk_probe_fd(fd, (uint64_t)size, out);
	close(fd);	/* read-only */
	return rc;
}

/* 1 when src names dev or one of its partitions (sdb1, nvme0n1p1); *part says which. */
static int src_is(const char *src, const char *dev, bool *part)
{
	size_t dl = strlen(dev);

	if (strncmp(src, dev, dl) != 0)
		return 0;
	if (src[dl] == 0)
		return 1;
	*part = isdigit((unsigned char)src[dl]) ||
		(src[dl] == 'p' && isdigit((unsigned char)src[dl + 1]));
	return *part;
}

/* Where dev is mounted according to the mounts file, into dir; 1 found, 0 not. A mounted
 * partition of dev counts too (part set). The mounts file may name the path given to
 * mount(2) or the node it resolves to: both are checked. */
static int find_mount(const char *mounts, const char *dev, char *dir, size_t max, bool *part)
{
	char line[1024], src[512], mnt[512], real[PATH_MAX];
	FILE *f = fopen(mounts, "re");
	int found = 0;

	*part = false;
	if (!f)
		return 0;
	if (!realpath(dev, real))
		pv_copy(real, sizeof(real), dev);
	while (!found && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%511s %511s", src, mnt) != 2)
			continue;
		found = src_is(src, dev, part) || src_is(src, real, part);
		if (found)
			pv_copy(dir, max, mnt);
	}
	fclose(f);
	return found;
}

static int run_mkfs(const char *prog, const char *dev, const char *label)
{
	pid_t pid;
	int st;

	for (int attempt = 0; attempt < 2; attempt++) {
		const char *p = attempt ? "mkfs.ext2" : prog;

		pid = fork();
		if (pid < 0)
			return -errno;
		if (pid == 0) {
			int null = open("/dev/null", O_WRONLY);

			if (null >= 0)
				dup2(null, 1);
			if (attempt)
				execlp(p, p, "-F", "-L", label, "-m", "0", dev, (char *)NULL);
			else
				execlp(p, p, "-q", "-t", "ext4", "-F", "-L", label, "-m", "0", dev,
				       (char *)NULL);
			_exit(errno == ENOENT ? 127 : 126);
		}
		while (waitpid(pid, &st, 0) < 0)
			if (errno != EINTR)
				return -errno;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 127 || strcmp(prog, "mke2fs") != 0)
			break;	/* only a missing default mke2fs falls back to busybox */
		log_warnx("provd_mkfs_missing prog=%s msg=\"trying busybox mkfs.ext2\"", prog);
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	log_errorx("provd_mkfs_failed dev=%s status=%d", dev, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	return -EIO;
}

static int mount_at(const struct pv_disk_opts *o, const char *dev, struct pv_disk *d)
{
	snprintf(d->dir, sizeof(d->dir), "%s/%d", o->mount_root, d->index);
	if ((mkdir(o->mount_root, 0755) < 0 && errno != EEXIST) ||
	    (mkdir(d->dir, 0755) < 0 && errno != EEXIST))
		return -errno;
	if (mount(dev, d->dir, "ext4", MS_NOATIME, NULL) == 0)
		return 0;
	if (mount(dev, d->dir, "ext2", MS_NOATIME, NULL) == 0)	/* busybox's mkfs.ext2 */
		return 0;
	return -errno;
}

static void set_state(struct pv_disk *d, enum pv_disk_state s, const char *msg)
{
	d->state = s;
	pv_copy(d->msg, sizeof(d->msg), msg);
}

static bool index_used(const struct pv_disks *ds, int upto, int idx)
{
	for (int i = 0; i < upto; i++)
		if (ds->v[i].index == idx && ds->v[i].state == PV_DS_OK)
			return true;
	return false;
}

/* First pass over one disk: probe it, keep Cairn disks (claiming their N), mark the rest
 * foreign unless it may be formatted (then state error + msg "format" until pass two). */
static void disk_probe_one(const struct pv_disk_opts *o, struct pv_disks *ds, int i,
			   bool read_only, struct pv_probe *pr)
{
	struct pv_disk *d = &ds->v[i];
	char dev[PV_DIR_MAX], mnt[PV_DIR_MAX], msg[PV_MSG_MAX];
	bool part, wipe = pv_boot_wipe_has(o->boot, d->name);
	int mounted, rc;

	snprintf(dev, sizeof(dev), "%s/%s", o->dev_dir, d->name);
	mounted = find_mount(o->mounts, dev, mnt, sizeof(mnt), &part);
	rc = pv_disk_probe(dev, pr);
	if (rc < 0) {
		snprintf(msg, sizeof(msg), "cannot read: %s", strerror(-rc));
		set_state(d, PV_DS_ERROR, msg);
	} else if (mounted && (part || pr->kind != PV_PROBE_CAIRN)) {
		snprintf(msg, sizeof(msg), "in use: mounted at %.80s", mnt);
		set_state(d, PV_DS_FOREIGN, msg);
	} else if (pr->kind == PV_PROBE_CAIRN && index_used(ds, i, pr->index)) {
		snprintf(msg, sizeof(msg), "label %s is on another disk too", pr->label);
		set_state(d, PV_DS_FOREIGN, msg);
	} else if (pr->kind == PV_PROBE_CAIRN) {
		d->index = pr->index;
		set_state(d, PV_DS_OK, "");
		if (mounted)
			pv_copy(d->dir, sizeof(d->dir), mnt);
		if (wipe)
			log_info("provd_disk_wipe_skipped dev=%s label=%s msg=\"already a Cairn data disk\"",
				 dev, pr->label);
	} else if (read_only) {
		set_state(d, PV_DS_FOREIGN, "read-only device");
	} else if (pr->kind == PV_PROBE_BLANK || wipe) {
		set_state(d, PV_DS_ERROR, "format");
	} else {
		snprintf(msg, sizeof(msg), "holds %s%s%s: not formatted (name it in cairn.wipe= to allow)",
			 pv_probe_name(pr->kind), pr->label[0] ? " labelled " : "", pr->label);
		set_state(d, PV_DS_FOREIGN, msg);
	}
	log_info("provd_disk_probe dev=%s kind=%s label=\"%s\" wipe=%d state=%s", dev,
		 rc < 0 ? "unreadable" : pv_probe_name(pr->kind), pr->label, wipe,
		 strcmp(d->msg, "format") ? pv_disk_state_name(d->state) : "to_format");
	if (d->state == PV_DS_FOREIGN)
		log_warnx("provd_disk_foreign dev=%s msg=\"%s\"", dev, d->msg);
}

/* Second pass: format what pass one allowed (with the lowest free N), mount Cairn disks. */
static void disk_ready_one(const struct pv_disk_opts *o, struct pv_disks *ds, int i)
{
	struct pv_disk *d = &ds->v[i];
	char dev[PV_DIR_MAX], label[32], msg[PV_MSG_MAX];
	struct pv_probe pr;
	int rc;

	snprintf(dev, sizeof(dev), "%s/%s", o->dev_dir, d->name);
	if (d->state == PV_DS_ERROR && strcmp(d->msg, "format") == 0) {
		for (d->index = 1; index_used(ds, ds->n, d->index); d->index++)
			;
		snprintf(label, sizeof(label), PV_LABEL_PREFIX "%d", d->index);
		log_info("provd_step step=format dev=%s label=%s prog=%s", dev, label, o->mkfs);
		rc = run_mkfs(o->mkfs, dev, label);
		if (!rc)
			rc = pv_disk_probe(dev, &pr);
		if (!rc && (pr.kind != PV_PROBE_CAIRN || pr.index != d->index))
			rc = -EIO;
		if (rc) {
			set_state(d, PV_DS_ERROR, "formatting failed");
			return;
		}
		set_state(d, PV_DS_OK, "");
	}
	if (d->state != PV_DS_OK || d->dir[0])
		return;
	rc = mount_at(o, dev, d);
	if (rc) {
		snprintf(msg, sizeof(msg), "mount failed: %s", strerror(-rc));
		log_errorx("provd_disk_mount_failed dev=%s dir=%s err=\"%s\"", dev, d->dir, strerror(-rc));
		set_state(d, PV_DS_ERROR, msg);
		d->dir[0] = 0;
		return;
	}
	log_info("provd_step step=mount dev=%s dir=%s", dev, d->dir);
}

int pv_disk_prepare(const struct pv_disk_opts *o, const struct pv_inv *inv, struct pv_disks *out)
{
	struct pv_probe pr;

	out->n = 0;
	out->v = calloc((size_t)inv->ndisks + 1, sizeof(*out->v));
	if (!out->v)
		return -ENOMEM;
	for (int i = 0; i < inv->ndisks; i++) {
		pv_copy(out->v[i].name, sizeof(out->v[i].name), inv->disks[i].name);
		out->n++;
		disk_probe_one(o, out, i, inv->disks[i].read_only, &pr);
	}
	for (int i = 0; i < out->n; i++)
		disk_ready_one(o, out, i);
	return 0;
}

int pv_disk_from_dirs(const char *const *dirs, int n, struct pv_disks *out)
{
	struct stat st;

	out->n = 0;
	out->v = calloc((size_t)n + 1, sizeof(*out->v));
	if (!out->v)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		struct pv_disk *d = &out->v[out->n++];

		if (strlen(dirs[i]) >= sizeof(d->dir))
			return -ENAMETOOLONG;
		pv_copy(d->name, sizeof(d->name), dirs[i]);
		pv_copy(d->dir, sizeof(d->dir), dirs[i]);
		d->index = i + 1;
		if (stat(dirs[i], &st) < 0 || !S_ISDIR(st.st_mode)) {
			log_errorx("provd_data_dir_missing dir=%s", dirs[i]);
			set_state(d, PV_DS_ERROR, "not a directory");
			d->dir[0] = 0;
		}
	}
	return 0;
}

void pv_disks_fini(struct pv_disks *d)
{
	free(d->v);
	d->v = NULL;
	d->n = 0;
}

int pv_disk_label_cluster(const char *dir, char out[33])
{
	char path[PV_DIR_MAX + 32], text[512], *p;
	int n;

	snprintf(path, sizeof(path), "%s/.cairn/format", dir);
	n = pv_read_small(path, text, sizeof(text));
	if (n < 0)
		return n;
	for (p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, "cluster ", 8) == 0 && strspn(p + 8, "0123456789abcdef") == 32) {
			memcpy(out, p + 8, 32);
			out[32] = 0;
			return 0;
		}
	}
	return -EUCLEAN;
}

void pv_disk_check_labels(struct pv_disks *d, const char *cluster_id)
{
	char ref[33] = "", have[33];

	for (int i = 0; i < d->n; i++) {
		if (d->v[i].state != PV_DS_OK || pv_disk_label_cluster(d->v[i].dir, have))
			continue;
		if (!ref[0] || (cluster_id && strcmp(have, cluster_id) == 0))
			memcpy(ref, have, sizeof(ref));
	}
	for (int i = 0; i < d->n; i++) {
		if (d->v[i].state != PV_DS_OK || pv_disk_label_cluster(d->v[i].dir, have) ||
		    strcmp(have, ref) == 0)
			continue;
		set_state(&d->v[i], PV_DS_OTHER_CLUSTER, "labelled for another cluster");
		log_warnx("provd_disk_other_cluster disk=%s dir=%s cluster=%s ours=%s msg=\"not given to storagefsd\"",
			  d->v[i].name, d->v[i].dir, have, ref);
	}
}

int pv_disk_data_dirs(const struct pv_disks *d, const char **dirs, int max)
{
	int n = 0;

	for (int want = 1, left = d->n; left > 0 && n < max; want++) {
		for (int i = 0; i < d->n; i++) {
			if (d->v[i].index != want)
				continue;
			left--;
			if (d->v[i].state == PV_DS_OK && d->v[i].dir[0] && n < max)
				dirs[n++] = d->v[i].dir;
		}
		if (want > 100000)
			break;
	}
	return n;
}
