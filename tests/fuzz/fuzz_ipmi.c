/* fuzz_ipmi.c — libFuzzer target for firmware/ipmi's decoders: whatever a BMC answers, an
 * SDR record, a sensor reading and a SEL entry decode within their bytes, and the text made
 * of them is terminated, bounded and printable. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../firmware/ipmi/ipmi_sdr.h"
#include "../../firmware/ipmi/ipmi_sel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_text(const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);

	if (n == cap)
		abort();
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ipmi_sdr s;
	struct ipmi_reading r;
	struct ipmi_sel e;
	struct ipmi_sel_info info;
	char buf[IPMI_SEL_LINE_MAX];
	double v;

	/* Copies, so that ASan sees any read past the input. */
	uint8_t *copy = malloc(size ? size : 1);

	if (!copy)
		return 0;
	memcpy(copy, data, size);
	if (ipmi_sdr_decode(copy, size, &s) == 0) {
		check_text(s.name, sizeof(s.name));
		check_text(ipmi_unit_name(&s), 64);
		check_text(ipmi_sensor_type_name(s.sensor_type), 64);
		(void)ipmi_sdr_convert(&s, size ? copy[0] : 0, &v);
		if (ipmi_reading_decode(copy, size < 4 ? size : 4, &r) == 0) {
			ipmi_reading_status(&s, &r, buf, sizeof(buf));
			check_text(buf, sizeof(buf));
		}
	}
	if (ipmi_sel_decode(copy, size, &e) == 0) {
		ipmi_sel_format(&e, buf, sizeof(buf));
		check_text(buf, sizeof(buf));
		ipmi_sel_format(&e, buf, 7);
		check_text(buf, 7);
	}
	(void)ipmi_sel_info_decode(copy, size, &info);
	free(copy);
	return 0;
}
