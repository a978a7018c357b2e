/* ipmi_sel.c — owns the decoding of System Event Log entries and SEL info, and the one-line
 * text the console prints for an entry. The 16 bytes come from the BMC: nothing beyond them
 * is read, and only numbers and our own names reach the output. */
#include "ipmi_sel.h"
#include "ipmi_sdr.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int ipmi_sel_decode(const uint8_t *rec, size_t len, struct ipmi_sel *out)
{
	memset(out, 0, sizeof(*out));
	if (len < IPMI_SEL_ENTRY)
		return -EINVAL;
	memcpy(out->raw, rec, IPMI_SEL_ENTRY);
	out->id = (uint16_t)(rec[0] | rec[1] << 8);
	out->type = rec[2];
	if (out->type < 0xe0)
		out->timestamp = le32(rec + 3);
	if (out->type == IPMI_SEL_SYSTEM) {
		out->generator = (uint16_t)(rec[7] | rec[8] << 8);
		out->sensor_type = rec[10];
		out->sensor = rec[11];
		out->deassert = rec[12] >> 7;
		out->event_type = rec[12] & 0x7f;
		memcpy(out->data, rec + 13, 3);
	}
	return 0;
}

/* Timestamps below 0x20000000 count from the BMC's initialisation, not from 1970. */
static void sel_time(uint32_t ts, char *buf, size_t cap)
{
	time_t t = (time_t)ts;
	struct tm tm;

	if (ts == 0xffffffffu)
		snprintf(buf, cap, "(no time)");
	else if (ts < 0x20000000u)
		snprintf(buf, cap, "boot+%us", (unsigned)ts);
	else if (!gmtime_r(&t, &tm) || !strftime(buf, cap, "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(buf, cap, "%u", (unsigned)ts);
}

void ipmi_sel_format(const struct ipmi_sel *e, char *buf, size_t cap)
{
	char when[32];
	const uint8_t *r = e->raw;

	if (cap == 0)
		return;
	if (e->type >= 0xe0) {
		snprintf(buf, cap, "0x%04x OEM record 0x%02x: %02x %02x %02x %02x %02x %02x %02x %02x %02x %02x %02x %02x %02x",
			 e->id, e->type, r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11],
			 r[12], r[13], r[14], r[15]);
		return;
	}
	sel_time(e->timestamp, when, sizeof(when));
	if (e->type != IPMI_SEL_SYSTEM) {
		snprintf(buf, cap, "0x%04x %s OEM record 0x%02x: %02x %02x %02x %02x %02x %02x", e->id,
			 when, e->type, r[10], r[11], r[12], r[13], r[14], r[15]);
		return;
	}
	char tn[32];

	snprintf(tn, sizeof(tn), "%s", ipmi_sensor_type_name(e->sensor_type));
	if (!tn[0])
		snprintf(tn, sizeof(tn), "sensor type 0x%02x", e->sensor_type);
	snprintf(buf, cap, "0x%04x %s %s #%u %s, event type 0x%02x offset %u, data %02x %02x %02x",
		 e->id, when, tn, e->sensor, e->deassert ? "deasserted" : "asserted", e->event_type,
		 e->data[0] & 0x0f, e->data[0], e->data[1], e->data[2]);
}

int ipmi_sel_info_decode(const uint8_t *data, size_t len, struct ipmi_sel_info *out)
{
	memset(out, 0, sizeof(*out));
	if (len < 13)
		return -EINVAL;
	out->version = data[0];
	out->entries = (uint16_t)(data[1] | data[2] << 8);
	out->free_bytes = (uint16_t)(data[3] | data[4] << 8);
	out->last_add = le32(data + 5);
	out->last_erase = le32(data + 9);
	return 0;
}
