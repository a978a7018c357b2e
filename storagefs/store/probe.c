/* probe.c — the disk health prober: every STORE_PROBE_MS it marks disks offline or back
 * online (waking the scrubber), takes up a replacement disk found in an offline disk's
 * slot (or the same disk back in another directory) while the daemon runs, and clears the
 * full mark of disks that got space back. */
#include "store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/log.h"

#define PROBE_NOTE_TAKEUP	100	/* vol->probe_note: a failed take-up was logged */

/* Where a new volume in slot i gets its bucket rows: the first volume, or the first online
 * other one when slot 0 is the one replaced. NULL when no other disk is online. */
static struct vol *bucket_source(struct store *st, int i)
{
	for (int j = 0; j < st->nvols; j++) {
		struct vol *v = store_vol(st, j);

		if (j != i && vol_online(v))
			return v;
	}
	return NULL;
}

/* Puts nv in slot i once its bucket rows agree with the others'. Bucket create and delete
 * wait meanwhile; the old volume is retired, never freed, as operations that began before
 * the swap may still hold it (it is offline, so none new picks it). */
static int slot_swap(struct store *st, int i, struct vol *nv)
{
	struct vol *old = store_vol(st, i), *src;
	int rc;

	pthread_rwlock_wrlock(&st->bucket_lock);
	src = bucket_source(st, i);
	rc = src ? store_buckets_reconcile(st, src, nv) : -ENODEV;
	if (!rc) {
		pthread_mutex_lock(&st->mu);
		old->retired_next = st->retired;
		st->retired = old;
		__atomic_store_n(&st->vols[i], nv, __ATOMIC_RELEASE);
		pthread_mutex_unlock(&st->mu);
	}
	pthread_rwlock_unlock(&st->bucket_lock);
	return rc;
}

/* Opens what slot i's path now holds: a new volume with the slot's placement seed (an
 * empty directory), or the same disk elsewhere (its label names this disk). */
static int slot_take_up(struct store *st, int i, enum vol_health h)
{
	struct vol *old = store_vol(st, i), *nv = NULL;
	struct vol_label want = st->ident;
	int rc;

	if (!bucket_source(st, i)) {
		rc = -ENODEV;		/* nothing to copy buckets or objects from: at start-up */
		goto out_fail;
	}
	want.place = old->seed;
	want.has_place = h == VOL_EMPTY;
	if ((rc = vol_open(old->path, &want, &nv)))
		goto out_fail;
	if (h == VOL_EMPTY ? !nv->fresh : memcmp(nv->id, old->id, VOL_ID_LEN) != 0) {
		rc = -EXDEV;		/* changed under the probe: look again next time */
		goto out_close;
	}
	if (nv->seed != old->seed)
		log_warnx("store_disk_place_changed vol=%s old=%016llx new=%016llx", nv->path,
			  (unsigned long long)old->seed, (unsigned long long)nv->seed);
	if ((rc = slot_swap(st, i, nv)))
		goto out_close;
	if (h == VOL_EMPTY)
		log_info("store_disk_replaced vol=%s old_id=%s id=%s place=%016llx msg=\"empty disk taken up: rebuilding\"",
			 nv->path, old->id_hex, nv->id_hex, (unsigned long long)nv->seed);
	else
		log_info("store_disk_reopened vol=%s id=%s msg=\"the disk is back in another directory\"",
			 nv->path, nv->id_hex);
	store_scrub_wake(st, h == VOL_EMPTY ? i : -1);
	return 0;

out_close:
	vol_close(nv);
out_fail:
	if (old->probe_note != PROBE_NOTE_TAKEUP)	/* once, not every probe */
		log_warnx("store_disk_takeup_failed vol=%s id=%s rc=%d", old->path, old->id_hex,
			  rc);
	old->probe_note = PROBE_NOTE_TAKEUP;
	return rc;
}

void store_probe(struct store *st)
{
	pthread_mutex_lock(&st->probe_mu);
	for (int i = 0; i < st->nvols; i++) {
		struct vol *v = store_vol(st, i);
		enum vol_health h = vol_probe(v);

		if (h == VOL_BACK)
			store_scrub_wake(st, -1);	/* its extra copies elsewhere can go */
		else if (h == VOL_EMPTY || h == VOL_MOVED)
			slot_take_up(st, i, h);
		if (vol_online(v))
			vol_space_probe(v);
	}
	pthread_mutex_unlock(&st->probe_mu);
}

static void *prober_main(void *arg)
{
	struct store *st = arg;

	while (!store_nap(st, STORE_PROBE_MS, NULL))
		store_probe(st);
	return NULL;
}

int store_prober_start(struct store *st)
{
	int rc = -pthread_create(&st->prober, NULL, prober_main, st);

	if (!rc)
		st->prober_on = true;
	return rc;
}
