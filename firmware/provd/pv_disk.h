/* pv_disk.h — the data disks: what a block device holds (blank, a Cairn data filesystem,
 * anything else), formatting only blank disks or those the operator listed in cairn.wipe,
 * mounting cairn-dataN at <mount root>/N, and the per-disk state reported in heartbeats.
 * A disk holding anything else is never written to. */
#ifndef CAIRN_PV_DISK_H
#define CAIRN_PV_DISK_H

#include <stdbool.h>
#include <stdint.h>

#include "pv_cmdline.h"
#include "pv_inventory.h"

#define PV_LABEL_PREFIX	"cairn-data"
#define PV_BLANK_SPAN	(1024 * 1024)	/* zeros at the start (and the end) mean blank */
#define PV_DIR_MAX	256
#define PV_MSG_MAX	128

enum pv_probe_kind {
	PV_PROBE_BLANK,		/* all zeros where signatures live */
	PV_PROBE_CAIRN,		/* ext2/3/4 labelled cairn-dataN */
	PV_PROBE_EXT,		/* ext2/3/4 with another label */
	PV_PROBE_PARTS,		/* an MBR or GPT partition table */
	PV_PROBE_DATA,		/* something else, not zero */
};

struct pv_probe {
	enum pv_probe_kind kind;
	char label[17];		/* the ext volume label, when ext */
	int index;		/* N of cairn-dataN */
};

/* Looks at the first PV_BLANK_SPAN bytes of fd (a device or a file of `size` bytes) and,
 * when size allows, the last ones too (a backup GPT, end-of-disk RAID metadata). 0 or
 * -errno (a read error: never call such a disk blank). */
int pv_disk_probe_fd(int fd, uint64_t size, struct pv_probe *out);
int pv_disk_probe(const char *path, struct pv_probe *out);
const char *pv_probe_name(enum pv_probe_kind k);

enum pv_disk_state { PV_DS_OK, PV_DS_FOREIGN, PV_DS_OTHER_CLUSTER, PV_DS_ERROR };

struct pv_disk {
	char name[PV_NAME_MAX];		/* "vdb", or the directory for --data-dir */
	char dir[PV_DIR_MAX];		/* where it is mounted ("" unless ok/other_cluster) */
	int index;			/* N */
	enum pv_disk_state state;
	char msg[PV_MSG_MAX];		/* why not ok */
};

struct pv_disks {
	struct pv_disk *v;		/* malloc'ed */
	int n;
};

struct pv_disk_opts {
	const char *dev_dir;		/* "/dev" */
	const char *mount_root;		/* "/data" */
	const char *mounts;		/* "/proc/mounts" */
	const char *mkfs;		/* "mke2fs"; "mkfs.ext2" (busybox) when it is absent */
	const struct pv_boot *boot;	/* the wipe list */
};

/* Probes every inventory disk, formats blank (and wipe-listed) ones, mounts the Cairn ones.
 * Each step logs one line. 0 or -ENOMEM; per-disk failures are in the disk states. */
int pv_disk_prepare(const struct pv_disk_opts *o, const struct pv_inv *inv, struct pv_disks *out);
/* Plain directories as data disks (tests): each must exist. */
int pv_disk_from_dirs(const char *const *dirs, int n, struct pv_disks *out);
void pv_disks_fini(struct pv_disks *d);
/* Marks other_cluster the disks whose DIR/.cairn/format names another cluster than this
 * node's: the controller's cluster id when a label carries it, else the first labelled
 * disk's. */
void pv_disk_check_labels(struct pv_disks *d, const char *cluster_id);
/* The directories of the usable disks, by N, into dirs[max]: their count. */
int pv_disk_data_dirs(const struct pv_disks *d, const char **dirs, int max);
const char *pv_disk_state_name(enum pv_disk_state s);
/* The cluster id (hex) in DIR/.cairn/format into out[33]; -ENOENT when unlabelled. */
int pv_disk_label_cluster(const char *dir, char out[33]);

#endif
