/* netaddr.h — listen addresses ("127.0.0.1:9000", "[::1]:9000", ":9000", "*:9000",
 * "localhost:9000") parsed into socket addresses, listening sockets made from them, and
 * socket addresses printed back as "ip:port" / "[ip6]:port". One place for the three
 * servers (S3, the controller, the internal API). */
#ifndef CAIRN_NETADDR_H
#define CAIRN_NETADDR_H

#include <stddef.h>
#include <sys/socket.h>

#define NET_ADDR_MAX	56	/* "[" INET6_ADDRSTRLEN "]:65535" */

enum {
	NET_NONBLOCK	= 1,	/* the listening socket is non-blocking */
	NET_REUSEPORT	= 2,	/* SO_REUSEPORT: one listener per event loop on the same port */
};

/* Numeric host (or empty, "*", "::": every interface, IPv6 dual-stack) and port. -EINVAL. */
int net_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *sl);
/* A bound, listening TCP socket on *ss (close-on-exec; flags NET_*). The IPv6 "any" address
 * falls back to IPv4 where the kernel has no IPv6 (*ss and *sl are updated); with port 0
 * the chosen port is written back too. Returns the fd or -errno. */
int net_listen(struct sockaddr_storage *ss, socklen_t *sl, int backlog, int flags);
/* net_parse_listen + net_listen; the bound address as text into bound[NET_ADDR_MAX] (may
 * be NULL). Returns the fd or -errno. */
int net_listen_str(const char *addr, int backlog, int flags, char *bound);
/* Splits "host:port" or "[v6]:port" (or "host" alone when defport is not NULL) into host and
 * a numeric port 1..65535. A bare IPv6 address needs brackets. 0 or -EINVAL. */
int net_split_hostport(const char *s, char *host, size_t hmax, char *port, size_t pmax,
		       const char *defport);
/* "ip:port" or "[ip6]:port" ("unknown" for other families). */
void net_addr_str(const struct sockaddr_storage *ss, char *buf, size_t len);

#endif
