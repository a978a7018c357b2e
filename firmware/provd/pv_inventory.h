/* pv_inventory.h — what this machine is, for the join: DMI ids, CPU, memory, NICs and block
 * disks, read from a sysfs root and a proc root (tests point both at fake trees), and
 * written as the inventory object of docs/PROVISIONING.md. */
#ifndef CAIRN_PV_INVENTORY_H
#define CAIRN_PV_INVENTORY_H

#include <stdbool.h>
#include <stdint.h>

#include "../../lib/json.h"

#define PV_STR_MAX	256		/* the spec's 255-byte string limit, plus NUL */
#define PV_NICS_MAX	64
#define PV_DISKS_MAX	256
#define PV_NAME_MAX	32

struct pv_nic {
	char name[PV_NAME_MAX];
	char mac[PV_NAME_MAX];
	bool physical;			/* has a device link (not a bridge, bond, veth...) */
};

struct pv_blk {
	char name[PV_NAME_MAX];
	uint64_t size_bytes;
	char model[PV_STR_MAX];
	char serial[PV_STR_MAX];
	bool rotational;
	bool read_only;
};

struct pv_inv {
	char machine_id[PV_STR_MAX];
	char hostname[PV_STR_MAX];
	char dmi_serial[PV_STR_MAX];
	char cpu_model[PV_STR_MAX];
	int cpus;
	uint64_t mem_bytes;
	struct pv_nic *nics;		/* malloc'ed, sorted by name */
	int nnics;
	struct pv_blk *disks;		/* malloc'ed, sorted by name */
	int ndisks;
};

/* Reads everything (sys_root: "/sys", proc_root: "/proc"). Missing files leave fields empty;
 * only an allocation failure is an error (-ENOMEM). Free with pv_inv_fini. */
int pv_inv_collect(const char *sys_root, const char *proc_root, struct pv_inv *inv);
void pv_inv_fini(struct pv_inv *inv);
/* The inventory object (the writer must be where a value goes). */
void pv_inv_json(const struct pv_inv *inv, struct json_w *w);
/* The disk of that name, or NULL. */
const struct pv_blk *pv_inv_disk(const struct pv_inv *inv, const char *name);
/* true for kernel block devices that are never data disks (loop, ram, zram, dm-, sr...). */
bool pv_inv_skip_blk(const char *name);

#endif
