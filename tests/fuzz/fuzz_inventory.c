/* fuzz_inventory.c — libFuzzer target for the controller's checks of what a joining node
 * sends: the JSON body and its inventory rules (firmware/controller/ctl_inv.c, ctl_json.c). */
#include <stdint.h>
#include <stdlib.h>

#include "../../firmware/controller/ctl_inv.h"
#include "../../firmware/controller/ctl_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_tok *toks = NULL;
	char machine[256], host[256], *norm = NULL, *copy = NULL;
	const char *why = NULL;
	int n = ctl_json_parse((const char *)data, size, 4096, &toks);

	if (n > 0 && toks[0].type == JSON_OBJ) {
		int inv = json_find((const char *)data, toks, 0, "inventory");

		if (ctl_inv_check((const char *)data, toks, inv >= 0 ? inv : 0, &norm, machine, host,
				  &why) == 0) {
			struct json_w w;
			char out[CTL_INV_JSON_MAX + 64];

			/* The normalized copy must parse and re-embed (it goes to the journal). */
			json_w_init(&w, out, sizeof(out));
			if (ctl_json_embed(&w, norm) != 0 || json_w_end(&w) < 0)
				abort();
		}
		ctl_json_dup((const char *)data, toks, 0, 4096, &copy);
	}
	free(copy);
	free(norm);
	free(toks);
	return 0;
}
