/* ipmi_sel.h — decoding of System Event Log entries (IPMI 2.0 §32) and their one-line text.
 * Pure: no I/O, no allocation; every length checked. */
#ifndef CAIRN_IPMI_SEL_H
#define CAIRN_IPMI_SEL_H

#include <stddef.h>
#include <stdint.h>

#define IPMI_SEL_ENTRY		16	/* every SEL record is 16 bytes */
#define IPMI_SEL_SYSTEM		0x02	/* system event record */
#define IPMI_SEL_LINE_MAX	160

struct ipmi_sel {
	uint16_t id;
	uint8_t type;		/* 0x02 system event; 0xc0-0xdf OEM timestamped; 0xe0-0xff OEM */
	uint32_t timestamp;	/* seconds since 1970, or since BMC init when < 0x20000000 */
	uint16_t generator;
	uint8_t sensor_type;
	uint8_t sensor;
	uint8_t deassert;	/* 1: the event is a deassertion */
	uint8_t event_type;	/* event/reading type code */
	uint8_t data[3];
	uint8_t raw[IPMI_SEL_ENTRY];
};

/* Decodes one 16-byte entry; -EINVAL when len < 16. */
int ipmi_sel_decode(const uint8_t *rec, size_t len, struct ipmi_sel *out);

/* One line: "0x0001 2026-01-02 03:04:05 Temperature #3 asserted, data 01 ff ff" (UTC). */
void ipmi_sel_format(const struct ipmi_sel *e, char *buf, size_t cap);

/* A Get SEL Info answer (after the completion code). */
struct ipmi_sel_info {
	uint8_t version;
	uint16_t entries;
	uint16_t free_bytes;
	uint32_t last_add, last_erase;
};
int ipmi_sel_info_decode(const uint8_t *data, size_t len, struct ipmi_sel_info *out);

#endif
