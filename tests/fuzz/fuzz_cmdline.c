/* fuzz_cmdline.c — libFuzzer target for the agent's boot settings: the kernel command line
 * and the key=value config file (firmware/provd/pv_cmdline.c). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../firmware/provd/pv_cmdline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pv_boot b;
	char why[256], host[PV_HOST_MAX], port[PV_PORT_MAX];
	char *text = malloc(size + 1);

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	memset(&b, 0, sizeof(b));
	if (pv_cmdline_parse(&b, text, why, sizeof(why)) == 0) {
		pv_boot_check_join(&b, why, sizeof(why));
		pv_boot_wipe_has(&b, "vdb");
		if (b.host[0])
			pv_split_hostport(b.host, host, sizeof(host), port, sizeof(port));
	}
	memset(&b, 0, sizeof(b));
	pv_cmdline_parse_conf(&b, text, why, sizeof(why));
	pv_split_hostport(text, host, sizeof(host), port, sizeof(port));
	free(text);
	return 0;
}
