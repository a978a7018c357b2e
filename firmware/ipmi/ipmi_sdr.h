/* ipmi_sdr.h — decoding of IPMI Sensor Data Records (full and compact sensors), of Get
 * Sensor Reading answers, and the linear conversion of a full sensor's raw reading
 * (IPMI 2.0 §43, §35.14, §36.3). Pure: no I/O, no allocation; every length checked. */
#ifndef CAIRN_IPMI_SDR_H
#define CAIRN_IPMI_SDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IPMI_SDR_HEADER		5	/* record id (2), version, type, length */
#define IPMI_SDR_MAX		(IPMI_SDR_HEADER + 255)
#define IPMI_SDR_FULL		0x01
#define IPMI_SDR_COMPACT	0x02
#define IPMI_SDR_NAME_MAX	32	/* the id string is at most 16 bytes; BCD-plus doubles it */

/* One sensor record; only the fields the console shows. */
struct ipmi_sdr {
	uint16_t id;		/* record id */
	uint8_t type;		/* IPMI_SDR_FULL, IPMI_SDR_COMPACT or another (then nothing else set) */
	uint8_t owner;		/* sensor owner (slave address of the controller: 0x20 = the BMC) */
	uint8_t lun;
	uint8_t number;		/* sensor number */
	uint8_t sensor_type;	/* IPMI 2.0 table 42-3 (0x01 temperature ...) */
	uint8_t reading_type;	/* event/reading type code: 0x01 threshold, else discrete */
	uint8_t units1;		/* analog data format (7:6), percentage (0) */
	uint8_t unit;		/* base unit code */
	/* full sensors: y = (M*x + B*10^Bexp) * 10^Rexp when linearization is 0 (linear) */
	uint8_t linearization;
	int16_t m, b;		/* 10-bit two's complement */
	int8_t rexp, bexp;	/* 4-bit two's complement */
	char name[IPMI_SDR_NAME_MAX + 1];
};

/* The header of a record: its id and the total length (header included). -EINVAL if short. */
int ipmi_sdr_header(const uint8_t *rec, size_t len, uint16_t *id, size_t *total);

/* Decodes a record of len bytes (header included) into out. 0, or -EINVAL when the record is
 * shorter than its header says or than its type needs. Records of other types decode with
 * only id and type set. */
int ipmi_sdr_decode(const uint8_t *rec, size_t len, struct ipmi_sdr *out);

/* A Get Sensor Reading answer (after the completion code). */
struct ipmi_reading {
	uint8_t raw;
	bool unavailable;	/* "reading/state unavailable", or scanning disabled */
	uint8_t state;		/* threshold bits (threshold sensors) or discrete state bits 0-7 */
	uint8_t state2;		/* discrete state bits 8-14 (0 when absent) */
};
int ipmi_reading_decode(const uint8_t *data, size_t len, struct ipmi_reading *out);

/* The value of raw for a full, linear, analog sensor; false when it cannot be converted
 * (compact record, non-linear, no analog reading). */
bool ipmi_sdr_convert(const struct ipmi_sdr *s, uint8_t raw, double *out);

/* "degrees C", "Volts", "RPM" ... ("" for unspecified/unknown, "%" for percentage). */
const char *ipmi_unit_name(const struct ipmi_sdr *s);

/* The threshold status as text ("ok", "upper critical" ...) for threshold sensors, or the
 * asserted discrete states as "0x...."; writes into buf (NUL-terminated, truncated). */
void ipmi_reading_status(const struct ipmi_sdr *s, const struct ipmi_reading *r, char *buf,
			 size_t cap);

/* The sensor type's name (table 42-3), "" if unknown. */
const char *ipmi_sensor_type_name(uint8_t type);

#endif
