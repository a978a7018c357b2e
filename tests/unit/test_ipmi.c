/* test_ipmi.c — the IPMI decoders of firmware/ipmi: sensor data records (full, compact,
 * short, lying about their length), the linear conversion, readings, SEL entries and info. */
#include "test.h"

#include "../../firmware/ipmi/ipmi_sdr.h"
#include "../../firmware/ipmi/ipmi_sel.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>

/* A compact record like the watchdog of QEMU's ipmi-bmc-sim (40 bytes, name at 31). */
static const uint8_t compact_watchdog[] = {
	0x00, 0x00, 0x51, 0x02, 35, 0x20, 0x00, 0x00,
	0x23, 0x01, 0x63, 0x00, 0x23, 0x6f, 0x0f, 0x01,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0xc8, 'W', 'a', 't', 'c', 'h', 'd', 'o', 'g',
};

/* A full threshold temperature sensor #0x30: degrees C, M=1 B=-40 (Bexp 0), R exp 0,
 * unsigned readings; named "CPU Temp". */
static void full_temp(uint8_t *r, size_t *len)
{
	static const char name[] = "CPU Temp";

	memset(r, 0, 64);
	r[0] = 0x07; r[1] = 0x00; r[2] = 0x51; r[3] = 0x01;
	r[5] = 0x20; r[7] = 0x30; r[12] = 0x01; r[13] = 0x01;
	r[20] = 0x00; r[21] = 1;			/* unsigned, degrees C */
	r[24] = 1;					/* M = 1 */
	r[26] = (uint8_t)(-40 & 0xff); r[27] = 0xc0;	/* B = -40 (10-bit) */
	r[47] = 0xc0 | 8;
	memcpy(r + 48, name, 8);
	*len = 48 + 8;
	r[4] = (uint8_t)(*len - 5);
}

TEST(ipmi_sdr_compact)
{
	struct ipmi_sdr s;

	CHECK_INT(ipmi_sdr_decode(compact_watchdog, sizeof(compact_watchdog), &s), 0);
	CHECK_INT(s.type, IPMI_SDR_COMPACT);
	CHECK_INT(s.owner, 0x20);
	CHECK_INT(s.number, 0);
	CHECK_INT(s.sensor_type, 0x23);
	CHECK_STR(s.name, "Watchdog");
	CHECK_STR(ipmi_sensor_type_name(s.sensor_type), "Watchdog 2");
	double v;
	CHECK(!ipmi_sdr_convert(&s, 10, &v));	/* compact records carry no formula */
}

TEST(ipmi_sdr_full_linear)
{
	uint8_t r[64];
	size_t len;
	struct ipmi_sdr s;
	double v = 0;

	full_temp(r, &len);
	CHECK_INT(ipmi_sdr_decode(r, len, &s), 0);
	CHECK_INT(s.id, 7);
	CHECK_INT(s.number, 0x30);
	CHECK_INT(s.m, 1);
	CHECK_INT(s.b, -40);
	CHECK_STR(s.name, "CPU Temp");
	CHECK_STR(ipmi_unit_name(&s), "degrees C");
	CHECK(ipmi_sdr_convert(&s, 75, &v));
	CHECK(fabs(v - 35.0) < 1e-9);
	/* M = -2 (two's complement over 10 bits), R exp = -1, 2's complement readings */
	r[24] = 0xfe; r[25] = 0xc0; r[29] = 0xf0; r[20] = 0x80;
	CHECK_INT(ipmi_sdr_decode(r, len, &s), 0);
	CHECK_INT(s.m, -2);
	CHECK_INT(s.rexp, -1);
	CHECK(ipmi_sdr_convert(&s, 0xfb, &v));	/* x = -5: (-2*-5 + -40) / 10 = -3 */
	CHECK(fabs(v - -3.0) < 1e-9);
	r[20] = 0xc0;				/* no analog reading */
	CHECK_INT(ipmi_sdr_decode(r, len, &s), 0);
	CHECK(!ipmi_sdr_convert(&s, 1, &v));
	r[20] = 0; r[23] = 1;			/* ln(y): not converted */
	CHECK_INT(ipmi_sdr_decode(r, len, &s), 0);
	CHECK(!ipmi_sdr_convert(&s, 1, &v));
}

TEST(ipmi_sdr_bounds)
{
	uint8_t r[64];
	size_t len;
	struct ipmi_sdr s;

	full_temp(r, &len);
	CHECK_INT(ipmi_sdr_decode(r, 4, &s), -EINVAL);		/* no header */
	CHECK_INT(ipmi_sdr_decode(r, len - 1, &s), -EINVAL);	/* shorter than it says */
	r[4] = 40;						/* too short for a full record */
	CHECK_INT(ipmi_sdr_decode(r, len, &s), -EINVAL);
	/* an id string longer than the record is cut at the record's end */
	full_temp(r, &len);
	r[47] = 0xc0 | 31;
	CHECK_INT(ipmi_sdr_decode(r, len, &s), 0);
	CHECK_STR(s.name, "CPU Temp");
	/* control characters never reach the terminal */
	r[48] = 0x1b;
	CHECK_INT(ipmi_sdr_decode(r, len, &s), 0);
	CHECK_STR(s.name, "?PU Temp");
	/* another record type: id and type only */
	r[3] = 0x12;
	CHECK_INT(ipmi_sdr_decode(r, len, &s), 0);
	CHECK_INT(s.type, 0x12);
	CHECK_STR(s.name, "");
}

TEST(ipmi_sdr_name_6bit)
{
	uint8_t r[64];
	size_t len;
	struct ipmi_sdr s;

	full_temp(r, &len);
	/* "FAN1" packed 6-bit: F=0x26 A=0x21 N=0x2e 1=0x11 */
	unsigned v = 0x26 | 0x21 << 6 | 0x2e << 12 | 0x11 << 18;
	r[47] = 0x80 | 3;
	r[48] = v & 0xff; r[49] = (v >> 8) & 0xff; r[50] = (v >> 16) & 0xff;
	CHECK_INT(ipmi_sdr_decode(r, len, &s), 0);
	CHECK_STR(s.name, "FAN1");
}

TEST(ipmi_reading)
{
	const uint8_t ok[] = { 0x4b, 0xc0, 0x00 }, hot[] = { 0x60, 0x40, 0x18 };
	const uint8_t off[] = { 0x00, 0x20 }, disc[] = { 0x00, 0x40, 0x05, 0x81 };
	uint8_t r[64];
	size_t len;
	struct ipmi_sdr s;
	struct ipmi_reading rd;
	char st[48];

	full_temp(r, &len);
	CHECK_INT(ipmi_sdr_decode(r, len, &s), 0);
	CHECK_INT(ipmi_reading_decode(ok, 1, &rd), -EINVAL);
	CHECK_INT(ipmi_reading_decode(ok, sizeof(ok), &rd), 0);
	CHECK_INT(rd.raw, 0x4b);
	ipmi_reading_status(&s, &rd, st, sizeof(st));
	CHECK_STR(st, "ok");
	CHECK_INT(ipmi_reading_decode(hot, sizeof(hot), &rd), 0);
	ipmi_reading_status(&s, &rd, st, sizeof(st));
	CHECK_STR(st, "upper critical");
	CHECK_INT(ipmi_reading_decode(off, sizeof(off), &rd), 0);
	ipmi_reading_status(&s, &rd, st, sizeof(st));
	CHECK_STR(st, "unavailable");
	CHECK_INT(ipmi_sdr_decode(compact_watchdog, sizeof(compact_watchdog), &s), 0);
	CHECK_INT(ipmi_reading_decode(disc, sizeof(disc), &rd), 0);
	ipmi_reading_status(&s, &rd, st, sizeof(st));
	CHECK_STR(st, "0x0105");
	ipmi_reading_status(&s, &rd, st, 3);	/* truncated, still terminated */
	CHECK_STR(st, "0x");
}

TEST(ipmi_sel_system_event)
{
	/* id 0x0012, system event, 2024-01-01 00:00:00 UTC, generator 0x0020, EvM 0x04,
	 * temperature sensor #3, deassertion of threshold event offset 9 */
	const uint8_t e[] = { 0x12, 0x00, 0x02, 0x80, 0x00, 0x92, 0x65, 0x20, 0x00, 0x04,
			      0x01, 0x03, 0x81, 0x59, 0x60, 0x5a };
	struct ipmi_sel s;
	char line[IPMI_SEL_LINE_MAX];

	CHECK_INT(ipmi_sel_decode(e, sizeof(e) - 1, &s), -EINVAL);
	CHECK_INT(ipmi_sel_decode(e, sizeof(e), &s), 0);
	CHECK_INT(s.id, 0x12);
	CHECK_INT(s.timestamp, 1704067200);
	CHECK_INT(s.sensor, 3);
	CHECK_INT(s.deassert, 1);
	ipmi_sel_format(&s, line, sizeof(line));
	CHECK_STR(line, "0x0012 2024-01-01 00:00:00 Temperature #3 deasserted, event type 0x01 offset 9, data 59 60 5a");
	ipmi_sel_format(&s, line, 8);
	CHECK_STR(line, "0x0012 ");
}

TEST(ipmi_sel_other)
{
	uint8_t e[16] = { 0x01, 0x00, 0x02, 0x10, 0x00, 0x00, 0x00, 0x20, 0x00, 0x04,
			  0xee, 0x07, 0x6f, 0x01, 0xff, 0xff };
	struct ipmi_sel s;
	char line[IPMI_SEL_LINE_MAX];

	CHECK_INT(ipmi_sel_decode(e, sizeof(e), &s), 0);
	ipmi_sel_format(&s, line, sizeof(line));
	CHECK_STR(line, "0x0001 boot+16s sensor type 0xee #7 asserted, event type 0x6f offset 1, data 01 ff ff");
	e[2] = 0xf0;	/* OEM, no timestamp */
	CHECK_INT(ipmi_sel_decode(e, sizeof(e), &s), 0);
	ipmi_sel_format(&s, line, sizeof(line));
	CHECK_STR(line, "0x0001 OEM record 0xf0: 10 00 00 00 20 00 04 ee 07 6f 01 ff ff");
	e[2] = 0xc1;	/* OEM with a timestamp */
	CHECK_INT(ipmi_sel_decode(e, sizeof(e), &s), 0);
	ipmi_sel_format(&s, line, sizeof(line));
	CHECK_STR(line, "0x0001 boot+16s OEM record 0xc1: ee 07 6f 01 ff ff");
}

TEST(ipmi_sel_info)
{
	const uint8_t r[] = { 0x51, 0x03, 0x00, 0x00, 0x08, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f };
	struct ipmi_sel_info i;

	CHECK_INT(ipmi_sel_info_decode(r, 12, &i), -EINVAL);
	CHECK_INT(ipmi_sel_info_decode(r, sizeof(r), &i), 0);
	CHECK_INT(i.version, 0x51);
	CHECK_INT(i.entries, 3);
	CHECK_INT(i.free_bytes, 0x800);
	CHECK_INT(i.last_erase, 0xffffffffu);
}
