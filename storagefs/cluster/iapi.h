/* iapi.h — the internal API server (docs/CLUSTER.md "Internal API"): node-to-node requests
 * over mutual TLS on the node's --internal-listen address, answered from the local store.
 * Only clients whose certificate the cluster CA issued for a node in the current map are
 * served. Blocking: one thread per connection, at most max_conns at once. */
#ifndef CAIRN_CLUSTER_IAPI_H
#define CAIRN_CLUSTER_IAPI_H

#include "../store/store.h"
#include "cbucket.h"
#include "cmap_sync.h"

#define IAPI_MAX_CONNS		64
#define IAPI_TIMEOUT_MS		30000	/* handshake and each read/write */
#define IAPI_IDLE_MS		15000	/* a kept-alive connection waiting for its next request */
#define IAPI_KEEP_MAX		1000	/* requests on one connection */
#define IAPI_DRAIN_MS		5000	/* stop: requests in progress may finish this long */
#define IAPI_CHUNK		(256 * 1024)	/* body bytes per read/write */
#define IAPI_LIST_REPLY_MAX	(8 * 1024 * 1024)

struct iapi_config {
	const char *listen;		/* host:port, [v6]:port or :port (port 0: any) */
	struct store *st;
	struct cmap_sync *maps;		/* who may call: node ids in the current map */
	struct cbucket *buckets;	/* the bucket log (NULL: bucket changes unversioned) */
	/* Completes an upload whose home is this node and replicates the object (the
	 * coordinator's cstore_mpu_complete); NULL: uploads are not served. */
	int (*mpu_complete)(void *ctx, const char *bucket, const char *upload_id,
			    const struct store_mpu_part *parts, int nparts,
			    struct store_objinfo *out);
	void *mpu_ctx;
	const char *cert_pem, *key_pem;	/* this node's certificate and key */
	const char *ca_pem;		/* the cluster CA: the only issuer of clients */
	int max_conns;			/* 0: IAPI_MAX_CONNS */
	int timeout_ms;			/* 0: IAPI_TIMEOUT_MS */
};

struct iapi;

/* Binds, and serves on a thread of its own. -EINVAL (address or keys), -errno. */
int iapi_start(const struct iapi_config *cfg, struct iapi **out);
/* The bound address, "ip:port". */
const char *iapi_addr(const struct iapi *a);
/* Stops accepting, lets requests finish for up to IAPI_DRAIN_MS, then cuts the rest off;
 * returns once no thread uses the store or the map any more. NULL is fine. */
void iapi_stop(struct iapi *a);

#endif
