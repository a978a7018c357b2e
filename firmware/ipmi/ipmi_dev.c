/* ipmi_dev.c — owns the exchange with /dev/ipmi0: the kernel's ioctl ABI (declared here,
 * from linux/ipmi.h, because the musl build sees no kernel headers), matching answers to
 * requests by sequence number, and the timeout. */
#include "ipmi_dev.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

/* linux/ipmi.h (UAPI, stable): the system interface address and the message structures. */
#define K_SYSTEM_INTERFACE_ADDR_TYPE	0x0c
#define K_BMC_CHANNEL			0xf
#define K_RESPONSE_RECV_TYPE		1
#define K_MAX_ADDR_SIZE			32

struct k_si_addr {
	int addr_type;
	short channel;
	unsigned char lun;
};
struct k_addr {
	int addr_type;
	short channel;
	char data[K_MAX_ADDR_SIZE];
};
struct k_msg {
	unsigned char netfn;
	unsigned char cmd;
	unsigned short data_len;
	unsigned char *data;
};
struct k_req {
	unsigned char *addr;
	unsigned int addr_len;
	long msgid;
	struct k_msg msg;
};
struct k_recv {
	int recv_type;
	unsigned char *addr;
	unsigned int addr_len;
	long msgid;
	struct k_msg msg;
};
#define K_IOC_MAGIC		'i'
#define K_RECEIVE_MSG_TRUNC	_IOWR(K_IOC_MAGIC, 11, struct k_recv)
#define K_SEND_COMMAND		_IOR(K_IOC_MAGIC, 13, struct k_req)

int ipmi_dev_open(struct ipmi_dev *d, const char *path)
{
	d->seq = 0;
	d->fd = open(path, O_RDWR | O_CLOEXEC);
	return d->fd < 0 ? -errno : 0;
}

void ipmi_dev_close(struct ipmi_dev *d)
{
	if (d->fd >= 0)
		close(d->fd);	/* read-only use of a character device: nothing to lose */
	d->fd = -1;
}

static long ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int dev_send(struct ipmi_dev *d, uint8_t netfn, uint8_t cmd, const uint8_t *req,
		    size_t reqlen)
{
	struct k_si_addr a = { K_SYSTEM_INTERFACE_ADDR_TYPE, K_BMC_CHANNEL, 0 };
	uint8_t data[IPMI_MSG_MAX];
	struct k_req r;

	if (reqlen > sizeof(data))
		return -EMSGSIZE;
	if (reqlen)
		memcpy(data, req, reqlen);
	memset(&r, 0, sizeof(r));
	r.addr = (unsigned char *)&a;
	r.addr_len = sizeof(a);
	r.msgid = ++d->seq;
	r.msg.netfn = netfn;
	r.msg.cmd = cmd;
	r.msg.data_len = (unsigned short)reqlen;
	r.msg.data = data;
	return ioctl(d->fd, K_SEND_COMMAND, &r) < 0 ? -errno : 0;
}

/* Receives one message; 1 when it is the answer to our last request, 0 for anything else
 * (an event, a late answer to an earlier request), -errno on error. */
static int dev_recv(struct ipmi_dev *d, uint8_t *cc, uint8_t *resp, size_t cap,
		    size_t *resplen)
{
	uint8_t data[IPMI_MSG_MAX];
	struct k_addr a;
	struct k_recv r;

	memset(&r, 0, sizeof(r));
	r.addr = (unsigned char *)&a;
	r.addr_len = sizeof(a);
	r.msg.data = data;
	r.msg.data_len = sizeof(data);
	if (ioctl(d->fd, K_RECEIVE_MSG_TRUNC, &r) < 0 && errno != EMSGSIZE)
		return -errno;
	if (r.recv_type != K_RESPONSE_RECV_TYPE || r.msgid != d->seq)
		return 0;
	if (r.msg.data_len < 1 || r.msg.data_len > sizeof(data))
		return -EPROTO;
	*cc = data[0];
	*resplen = r.msg.data_len - 1u;
	if (*resplen > cap)
		return -EMSGSIZE;
	memcpy(resp, data + 1, *resplen);
	return 1;
}

int ipmi_dev_cmd(struct ipmi_dev *d, uint8_t netfn, uint8_t cmd, const uint8_t *req,
		 size_t reqlen, uint8_t *cc, uint8_t *resp, size_t cap, size_t *resplen)
{
	long deadline = ms_now() + IPMI_TIMEOUT_MS;
	int rc = dev_send(d, netfn, cmd, req, reqlen);

	while (rc == 0) {
		struct pollfd p = { .fd = d->fd, .events = POLLIN };
		long left = deadline - ms_now();

		if (left <= 0)
			return -ETIMEDOUT;
		rc = poll(&p, 1, (int)left);
		if (rc < 0 && errno == EINTR)
			rc = 0;
		else if (rc < 0)
			return -errno;
		else if (rc > 0)
			rc = dev_recv(d, cc, resp, cap, resplen);
	}
	return rc < 0 ? rc : 0;
}

const char *ipmi_cc_name(uint8_t cc)
{
	switch (cc) {
	case 0x00: return "ok";
	case 0xc0: return "node busy";
	case 0xc1: return "invalid command";
	case 0xc2: return "invalid command for this LUN";
	case 0xc3: return "timeout";
	case 0xc4: return "out of space";
	case 0xc5: return "reservation cancelled";
	case 0xc6: return "request data truncated";
	case 0xc7: return "request data length invalid";
	case 0xc8: return "request data field length limit exceeded";
	case 0xc9: return "parameter out of range";
	case 0xca: return "cannot return the requested number of bytes";
	case 0xcb: return "requested sensor, data or record not present";
	case 0xcc: return "invalid data field in request";
	case 0xcd: return "command illegal for this sensor or record type";
	case 0xce: return "command response could not be provided";
	case 0xd5: return "command not supported in the present state";
	case 0xff: return "unspecified error";
	default: return "";
	}
}
