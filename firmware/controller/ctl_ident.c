/* ctl_ident.c — making and loading the controller's identity files. Each file is made only
 * when missing, so a crash half-way through the first start is finished by the next. */
#include "ctl_ident.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../../lib/json.h"
#include "../../lib/log.h"
#include "ctl_file.h"

static int cluster_new(const char *dir, struct ctl_ident *id)
{
	char ak[21], sk[41], buf[512];
	int n, err;

	err = ctl_random_hex(id->cluster_id, 16);
	if (!err)
		err = ctl_random_hex(ak + 2, 9);
	if (!err)
		err = ctl_random_hex(sk, 20);
	if (err)
		return err;
	ak[0] = 'C';
	ak[1] = 'K';
	for (char *p = ak; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	n = snprintf(buf, sizeof(buf), "{\"cluster_id\": \"%s\", \"access_key\": \"%s\", \"secret_key\": \"%s\", \"replicas\": 3, \"heartbeat_s\": 10}\n",
		     id->cluster_id, ak, sk);
	return ctl_file_write(dir, "cluster.json", buf, (size_t)n, 0600);
}

static int cluster_load(const char *dir, struct ctl_ident *id)
{
	struct json_tok t[32];
	char buf[1024];
	int64_t r, hb;
	ssize_t len = ctl_file_read(dir, "cluster.json", buf, sizeof(buf));

	if (len == -ENOENT) {
		int err = cluster_new(dir, id);

		if (err)
			return err;
		len = ctl_file_read(dir, "cluster.json", buf, sizeof(buf));
	}
	if (len < 0)
		return (int)len;
	if (json_parse(buf, (size_t)len, t, 32) < 1 || t[0].type != JSON_OBJ ||
	    json_str(buf, t, 0, "cluster_id", id->cluster_id, sizeof(id->cluster_id)) ||
	    json_str(buf, t, 0, "access_key", id->access_key, sizeof(id->access_key)) ||
	    json_str(buf, t, 0, "secret_key", id->secret_key, sizeof(id->secret_key)) ||
	    json_int(buf, t, 0, "replicas", &r) || r < 1 || r > 16 ||
	    json_int(buf, t, 0, "heartbeat_s", &hb) || hb < 1 || hb > 3600)
		return -EBADMSG;
	id->replicas = (int)r;
	id->heartbeat_s = (int)hb;
	return 0;
}

/* Reads dir/name into pem, or makes it with make() and writes it with mode. */
static int pem_file(const char *dir, const char *name, mode_t mode, char *pem,
		    int (*make)(struct ctl_ident *id, char *pem), struct ctl_ident *id)
{
	ssize_t len = ctl_file_read(dir, name, pem, PKI_PEM_MAX);
	int err;

	if (len != -ENOENT)
		return len < 0 ? (int)len : 0;
	err = make(id, pem);
	if (err)
		return err;
	log_info("ctl_ident_created file=%s", name);
	return ctl_file_write(dir, name, pem, strlen(pem), mode);
}

static int make_key(struct ctl_ident *id, char *pem)
{
	(void)id;
	return pki_key_new(pem);
}

static int make_ca(struct ctl_ident *id, char *pem)
{
	char cn[PKI_CN_MAX];

	snprintf(cn, sizeof(cn), "cairn-ca-%s", id->cluster_id);
	return pki_ca_new(id->ca_key, cn, CTL_CA_DAYS, pem);
}

static int make_server_cert(struct ctl_ident *id, char *pem)
{
	char csr[PKI_PEM_MAX];
	uint32_t r;
	int err = pki_csr_new(id->server_key, CTL_SERVER_CN, csr);

	if (!err)
		err = ctl_random(&r, sizeof(r));
	if (err)
		return err;
	return pki_sign(id->ca_key, id->ca_cert, csr, CTL_SERVER_CN, CTL_SERVER_SERIAL_BASE + r,
			CTL_SERVER_DAYS, PKI_SERVER, pem);
}

static int make_admin_token(struct ctl_ident *id, char *pem)
{
	int err = ctl_random_hex(pem, 32);

	(void)id;
	if (!err)
		strcat(pem, "\n");
	return err;
}

/* The server certificate must come from this CA; one from an older CA is remade. */
static int server_cert(const char *dir, struct ctl_ident *id)
{
	int err = pem_file(dir, "server.crt", 0644, id->server_cert, make_server_cert, id);

	if (err || pki_verify(id->ca_cert, id->server_cert) == 0)
		return err;
	log_warnx("ctl_ident_server_cert_replaced why=not_from_this_ca");
	err = make_server_cert(id, id->server_cert);
	if (!err)
		err = ctl_file_write(dir, "server.crt", id->server_cert, strlen(id->server_cert), 0644);
	return err;
}

static int admin_token(const char *dir, struct ctl_ident *id)
{
	char tok[PKI_PEM_MAX];
	size_t n;
	int err = pem_file(dir, "admin.token", 0600, tok, make_admin_token, id);

	if (err)
		return err;
	n = strcspn(tok, " \t\r\n");
	if (n < 16 || n >= sizeof(id->admin_token))
		return -EBADMSG;
	memcpy(id->admin_token, tok, n);
	id->admin_token[n] = 0;
	return 0;
}

int ctl_ident_load(const char *dir, struct ctl_ident *id)
{
	const char *step = "state_dir";
	int err = 0;

	memset(id, 0, sizeof(*id));
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		err = -errno;
		goto out;
	}
	step = "cluster.json";
	if ((err = cluster_load(dir, id)) != 0)
		goto out;
	step = "ca.key";
	if ((err = pem_file(dir, "ca.key", 0600, id->ca_key, make_key, id)) != 0)
		goto out;
	step = "ca.crt";
	if ((err = pem_file(dir, "ca.crt", 0644, id->ca_cert, make_ca, id)) != 0 ||
	    (err = pki_pin(id->ca_cert, id->pin_hex)) != 0)
		goto out;
	step = "server.key";
	if ((err = pem_file(dir, "server.key", 0600, id->server_key, make_key, id)) != 0)
		goto out;
	step = "server.crt";
	if ((err = server_cert(dir, id)) != 0)
		goto out;
	step = "admin.token";
	err = admin_token(dir, id);
out:
	if (err)
		log_errorx("ctl_ident_failed dir=%s file=%s err=%d msg=\"%s\"", dir, step, err,
			   strerror(-err));
	return err;
}
