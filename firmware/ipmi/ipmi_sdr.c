/* ipmi_sdr.c — owns the decoding of sensor data records and sensor readings, and the
 * conversion of raw readings to units. Bytes come from the BMC: every offset is checked
 * against the record's length, and names are made printable before anyone prints them. */
#include "ipmi_sdr.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Offsets in a record, header included (IPMI 2.0 tables 43-1 and 43-2). */
#define SDR_OWNER	5
#define SDR_LUN		6
#define SDR_NUMBER	7
#define SDR_STYPE	12
#define SDR_RTYPE	13
#define SDR_UNITS1	20
#define SDR_UNIT	21
#define FULL_LINEAR	23
#define FULL_M		24
#define FULL_B		26
#define FULL_EXP	29
#define FULL_IDLEN	47
#define COMPACT_IDLEN	31

int ipmi_sdr_header(const uint8_t *rec, size_t len, uint16_t *id, size_t *total)
{
	if (len < IPMI_SDR_HEADER)
		return -EINVAL;
	*id = (uint16_t)(rec[0] | rec[1] << 8);
	*total = IPMI_SDR_HEADER + (size_t)rec[4];
	return 0;
}

static int sign_extend(unsigned v, unsigned bits)
{
	unsigned sign = 1u << (bits - 1);

	v &= (1u << bits) - 1;
	return (int)(v ^ sign) - (int)sign;
}

/* The id string: 8-bit ASCII or 6-bit packed ASCII; anything unprintable becomes '?'. */
static void sdr_name(const uint8_t *rec, size_t len, size_t at, char *name)
{
	size_t n = 0;

	name[0] = '\0';
	if (at >= len)
		return;
	unsigned tl = rec[at], kind = tl >> 6, slen = tl & 0x1f;
	const uint8_t *s = rec + at + 1;

	if (slen > len - at - 1)
		slen = (unsigned)(len - at - 1);
	if (kind == 3) {
		for (unsigned i = 0; i < slen && n < IPMI_SDR_NAME_MAX; i++)
			name[n++] = (char)s[i];
	} else if (kind == 2) {
		/* 6-bit packed: four characters (0x20 + code) in every three bytes, LSB first */
		for (unsigned bit = 0; bit + 6 <= slen * 8 && n < IPMI_SDR_NAME_MAX; bit += 6) {
			unsigned v = s[bit / 8] >> (bit % 8);

			if (bit % 8 > 2 && bit / 8 + 1 < slen)
				v |= (unsigned)s[bit / 8 + 1] << (8 - bit % 8);
			name[n++] = (char)(0x20 + (v & 0x3f));
		}
	}
	while (n > 0 && (name[n - 1] == ' ' || name[n - 1] == '\0'))
		n--;
	name[n] = '\0';
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)name[i] < 0x20 || (unsigned char)name[i] > 0x7e)
			name[i] = '?';
	}
}

int ipmi_sdr_decode(const uint8_t *rec, size_t len, struct ipmi_sdr *out)
{
	size_t total;

	memset(out, 0, sizeof(*out));
	if (ipmi_sdr_header(rec, len, &out->id, &total) < 0 || total > len)
		return -EINVAL;
	out->type = rec[3];
	if (out->type != IPMI_SDR_FULL && out->type != IPMI_SDR_COMPACT)
		return 0;
	if (total <= (out->type == IPMI_SDR_FULL ? FULL_IDLEN : COMPACT_IDLEN))
		return -EINVAL;
	out->owner = rec[SDR_OWNER];
	out->lun = rec[SDR_LUN] & 3;
	out->number = rec[SDR_NUMBER];
	out->sensor_type = rec[SDR_STYPE];
	out->reading_type = rec[SDR_RTYPE];
	out->units1 = rec[SDR_UNITS1];
	out->unit = rec[SDR_UNIT];
	if (out->type == IPMI_SDR_FULL) {
		out->linearization = rec[FULL_LINEAR] & 0x7f;
		out->m = (int16_t)sign_extend(rec[FULL_M] | (rec[FULL_M + 1] & 0xc0u) << 2, 10);
		out->b = (int16_t)sign_extend(rec[FULL_B] | (rec[FULL_B + 1] & 0xc0u) << 2, 10);
		out->rexp = (int8_t)sign_extend(rec[FULL_EXP] >> 4, 4);
		out->bexp = (int8_t)sign_extend(rec[FULL_EXP] & 0x0f, 4);
		sdr_name(rec, total, FULL_IDLEN, out->name);
	} else {
		sdr_name(rec, total, COMPACT_IDLEN, out->name);
	}
	return 0;
}

int ipmi_reading_decode(const uint8_t *data, size_t len, struct ipmi_reading *out)
{
	memset(out, 0, sizeof(*out));
	if (len < 2)
		return -EINVAL;
	out->raw = data[0];
	/* bit 5: reading unavailable; bit 6 clear: scanning disabled */
	out->unavailable = (data[1] & 0x20) || !(data[1] & 0x40);
	if (len >= 3)
		out->state = data[2];
	if (len >= 4)
		out->state2 = data[3] & 0x7f;
	return 0;
}

static double pow10i(int e)
{
	double v = 1;

	for (; e > 0; e--)
		v *= 10;
	for (; e < 0; e++)
		v /= 10;
	return v;
}

bool ipmi_sdr_convert(const struct ipmi_sdr *s, uint8_t raw, double *out)
{
	int x;

	if (s->type != IPMI_SDR_FULL || s->linearization != 0)
		return false;
	switch (s->units1 >> 6) {
	case 0: x = raw; break;
	case 1: x = raw & 0x80 ? -(int)(~raw & 0x7f) : raw; break;
	case 2: x = (int8_t)raw; break;
	default: return false;	/* no analog reading */
	}
	*out = ((double)s->m * x + (double)s->b * pow10i(s->bexp)) * pow10i(s->rexp);
	return true;
}

/* IPMI 2.0 table 43-15, the codes servers use. */
static const char *const units[] = {
	[1] = "degrees C", [2] = "degrees F", [3] = "K", [4] = "Volts", [5] = "Amps",
	[6] = "Watts", [7] = "Joules", [8] = "Coulombs", [9] = "VA", [18] = "RPM", [19] = "Hz",
	[20] = "microseconds", [21] = "milliseconds", [22] = "seconds", [23] = "minutes",
	[24] = "hours", [25] = "days", [26] = "weeks", [70] = "bytes", [71] = "kilobytes",
	[72] = "megabytes", [73] = "gigabytes", [79] = "errors", [84] = "CFM",
};

const char *ipmi_unit_name(const struct ipmi_sdr *s)
{
	if (s->units1 & 1)
		return "%";
	if (s->unit < sizeof(units) / sizeof(units[0]) && units[s->unit])
		return units[s->unit];
	return "";
}

void ipmi_reading_status(const struct ipmi_sdr *s, const struct ipmi_reading *r, char *buf,
			 size_t cap)
{
	static const char *const thr[] = {
		"lower non-critical", "lower critical", "lower non-recoverable",
		"upper non-critical", "upper critical", "upper non-recoverable",
	};
	const char *worst = "ok";

	if (cap == 0)
		return;
	if (r->unavailable) {
		snprintf(buf, cap, "unavailable");
		return;
	}
	if (s->reading_type != 0x01) {
		snprintf(buf, cap, "0x%02x%02x", r->state2, r->state);
		return;
	}
	/* the most severe crossing: non-recoverable over critical over non-critical */
	static const int order[] = { 5, 2, 4, 1, 3, 0 };

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		if (r->state & (1u << order[i])) {
			worst = thr[order[i]];
			break;
		}
	}
	snprintf(buf, cap, "%s", worst);
}

/* IPMI 2.0 table 42-3. */
static const char *const sensor_types[] = {
	[0x01] = "Temperature", [0x02] = "Voltage", [0x03] = "Current", [0x04] = "Fan",
	[0x05] = "Chassis intrusion", [0x06] = "Security violation", [0x07] = "Processor",
	[0x08] = "Power supply", [0x09] = "Power unit", [0x0a] = "Cooling device",
	[0x0b] = "Other units", [0x0c] = "Memory", [0x0d] = "Drive slot",
	[0x0e] = "POST memory resize", [0x0f] = "System firmware progress",
	[0x10] = "Event logging disabled", [0x11] = "Watchdog 1", [0x12] = "System event",
	[0x13] = "Critical interrupt", [0x14] = "Button/switch", [0x15] = "Module/board",
	[0x16] = "Microcontroller", [0x17] = "Add-in card", [0x18] = "Chassis",
	[0x19] = "Chip set", [0x1a] = "Other FRU", [0x1b] = "Cable/interconnect",
	[0x1c] = "Terminator", [0x1d] = "System boot", [0x1e] = "Boot error",
	[0x1f] = "OS boot", [0x20] = "OS stop", [0x21] = "Slot/connector",
	[0x22] = "System ACPI power state", [0x23] = "Watchdog 2", [0x24] = "Platform alert",
	[0x25] = "Entity presence", [0x26] = "Monitor ASIC", [0x27] = "LAN",
	[0x28] = "Management subsystem health", [0x29] = "Battery", [0x2a] = "Session audit",
	[0x2b] = "Version change", [0x2c] = "FRU state",
};

const char *ipmi_sensor_type_name(uint8_t type)
{
	if (type < sizeof(sensor_types) / sizeof(sensor_types[0]) && sensor_types[type])
		return sensor_types[type];
	return "";
}
