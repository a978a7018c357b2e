/* netaddr.c — listen address parsing, listening sockets, address printing; see netaddr.h. */
#include "netaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int parse_port(const char *s, in_port_t *port)
{
	char *end;
	long v;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	v = strtol(s, &end, 10);
	if (*end || v > 65535)
		return -EINVAL;
	*port = htons((in_port_t)v);
	return 0;
}

int net_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *sl)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	const char *colon = strrchr(s, ':');
	char host[INET6_ADDRSTRLEN];
	size_t hlen;

	memset(ss, 0, sizeof(*ss));
	if (!colon)
		return -EINVAL;
	hlen = (size_t)(colon - s);
	if (hlen >= 2 && s[0] == '[' && s[hlen - 1] == ']') {
		s++;
		hlen -= 2;
	}
	if (hlen >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, hlen);
	host[hlen] = 0;
	if (!hlen || !strcmp(host, "*") || !strcmp(host, "::")) {
		sin6->sin6_family = AF_INET6;	/* dual-stack "any"; v4 fallback at bind */
		sin6->sin6_addr = in6addr_any;
		*sl = sizeof(*sin6);
		return parse_port(colon + 1, &sin6->sin6_port);
	}
	if (!strcmp(host, "localhost"))
		strcpy(host, "127.0.0.1");
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		*sl = sizeof(*sin);
		return parse_port(colon + 1, &sin->sin_port);
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		*sl = sizeof(*sin6);
		return parse_port(colon + 1, &sin6->sin6_port);
	}
	return -EINVAL;
}

/* The IPv6 "any" address falls back to IPv4 where the kernel has no IPv6. */
static int any_to_v4(struct sockaddr_storage *ss, socklen_t *sl)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY) };

	if (ss->ss_family != AF_INET6 || memcmp(&sin6->sin6_addr, &in6addr_any, sizeof(in6addr_any)))
		return -EAFNOSUPPORT;
	sin.sin_port = sin6->sin6_port;
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, &sin, sizeof(sin));
	*sl = sizeof(sin);
	return 0;
}

int net_listen(struct sockaddr_storage *ss, socklen_t *sl, int backlog, int flags)
{
	int type = SOCK_STREAM | SOCK_CLOEXEC | (flags & NET_NONBLOCK ? SOCK_NONBLOCK : 0);
	int one = 1, zero = 0, err, fd = socket(ss->ss_family, type, 0);

	if (fd < 0 && errno == EAFNOSUPPORT && any_to_v4(ss, sl) == 0)
		fd = socket(AF_INET, type, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (flags & NET_REUSEPORT &&
	     setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) ||
	    (ss->ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) < 0) ||
	    bind(fd, (struct sockaddr *)ss, *sl) < 0 || listen(fd, backlog) < 0 ||
	    getsockname(fd, (struct sockaddr *)ss, sl) < 0) {
		err = -errno;
		close(fd);	/* never used: nothing to lose */
		return err;
	}
	return fd;
}

int net_listen_str(const char *addr, int backlog, int flags, char *bound)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd = net_parse_listen(addr, &ss, &sl);

	if (fd < 0)
		return fd;
	fd = net_listen(&ss, &sl, backlog, flags);
	if (fd >= 0 && bound)
		net_addr_str(&ss, bound, NET_ADDR_MAX);
	return fd;
}

int net_split_hostport(const char *s, char *host, size_t hmax, char *port, size_t pmax,
		       const char *defport)
{
	const char *hs = s, *he, *p = NULL;

	if (*s == '[') {
		hs = s + 1;
		he = strchr(hs, ']');
		if (!he || (he[1] && he[1] != ':'))
			return -EINVAL;
		if (he[1] == ':')
			p = he + 2;
	} else {
		he = strrchr(s, ':');
		if (he && strchr(s, ':') != he)
			return -EINVAL;	/* a bare IPv6 address needs brackets */
		if (he)
			p = he + 1;
		else
			he = s + strlen(s);
	}
	if (he == hs || (size_t)(he - hs) >= hmax)
		return -EINVAL;
	if (!p)
		p = defport;
	if (!p || !*p || strlen(p) >= pmax || strspn(p, "0123456789") != strlen(p) ||
	    atol(p) < 1 || atol(p) > 65535)
		return -EINVAL;
	memcpy(host, hs, (size_t)(he - hs));
	host[he - hs] = 0;
	memcpy(port, p, strlen(p) + 1);
	return 0;
}

void net_addr_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(sin->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ntohs(sin6->sin6_port));
	} else {
		snprintf(buf, len, "unknown");
	}
}
