/* ipmi_dev.h — one request/response exchange with the local BMC through the kernel's IPMI
 * device (/dev/ipmi0: ipmi_si + ipmi_devintf), addressed to the system interface. */
#ifndef CAIRN_IPMI_DEV_H
#define CAIRN_IPMI_DEV_H

#include <stddef.h>
#include <stdint.h>

#define IPMI_DEV_PATH		"/dev/ipmi0"
#define IPMI_MSG_MAX		272	/* IPMI_MAX_MSG_LENGTH of linux/ipmi.h */
#define IPMI_TIMEOUT_MS		5000

/* Network functions (requests) and the completion codes we name. */
#define IPMI_NETFN_CHASSIS	0x00
#define IPMI_NETFN_SENSOR	0x04
#define IPMI_NETFN_APP		0x06
#define IPMI_NETFN_STORAGE	0x0a
#define IPMI_NETFN_TRANSPORT	0x0c

struct ipmi_dev {
	int fd;
	long seq;
};

/* Opens path (IPMI_DEV_PATH). 0 or -errno (-ENOENT: no BMC driver bound). */
int ipmi_dev_open(struct ipmi_dev *d, const char *path);
void ipmi_dev_close(struct ipmi_dev *d);

/* Sends netfn/cmd with req[0..reqlen) and waits for the answer: *cc gets the completion
 * code, resp[0..*resplen) the data after it (at most cap bytes; a longer answer is an
 * error). 0, or -errno: -ETIMEDOUT, -EMSGSIZE, -EPROTO (an answer without a completion
 * code), or the ioctl's error. */
int ipmi_dev_cmd(struct ipmi_dev *d, uint8_t netfn, uint8_t cmd, const uint8_t *req,
		 size_t reqlen, uint8_t *cc, uint8_t *resp, size_t cap, size_t *resplen);

/* "invalid command", "timeout" ... for a completion code ("" when unnamed). */
const char *ipmi_cc_name(uint8_t cc);

#endif
