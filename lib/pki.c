/* pki.c — the cluster's certificates with mbedtls 2.28: EC P-256 keys, the self-signed CA,
 * CSRs and their proof of possession, certificates issued from CSRs, pins and checks. Each
 * call seeds its own DRBG (no shared state: callers may run on several threads). */
#include "pki.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <mbedtls/base64.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/md.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>
#include <mbedtls/x509_csr.h>

#include "hash.h"

#define PKI_DAYS_MAX	36500
#define PKI_BACKDATE_S	3600		/* tolerate clocks an hour behind the issuer's */
#define PKI_CA_SERIAL	16		/* random bytes */

struct rng {
	mbedtls_entropy_context ent;
	mbedtls_ctr_drbg_context drbg;
};

static int rng_init(struct rng *r)
{
	static const char pers[] = "cairn-pki";

	mbedtls_entropy_init(&r->ent);
	mbedtls_ctr_drbg_init(&r->drbg);
	if (mbedtls_ctr_drbg_seed(&r->drbg, mbedtls_entropy_func, &r->ent,
				  (const unsigned char *)pers, sizeof(pers) - 1) != 0)
		return -EIO;
	return 0;
}

static void rng_fini(struct rng *r)
{
	mbedtls_ctr_drbg_free(&r->drbg);
	mbedtls_entropy_free(&r->ent);
}

/* A CN we put in a subject string: mbedtls parses "CN=..." itself, so nothing that string
 * syntax treats specially (',', '=', '\\', '+', quotes) may reach it. */
static bool cn_ok(const char *cn, size_t len)
{
	if (len == 0 || len >= PKI_CN_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = cn[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.' || c == '_' || c == ':' || c == '@'))
			return false;
	}
	return true;
}

/* The single CN of a distinguished name. */
static int name_cn(const mbedtls_x509_name *n, char cn[PKI_CN_MAX])
{
	const mbedtls_x509_name *found = NULL;

	for (; n; n = n->next) {
		if (n->oid.p && MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) == 0) {
			if (found)
				return -EINVAL;
			found = n;
		}
	}
	if (!found)
		return -EINVAL;
	if (found->val.len >= PKI_CN_MAX)
		return -ENAMETOOLONG;
	if (!cn_ok((const char *)found->val.p, found->val.len))
		return -EINVAL;
	memcpy(cn, found->val.p, found->val.len);
	cn[found->val.len] = '\0';
	return 0;
}

static int subject(const char *cn, char out[PKI_CN_MAX + 4])
{
	if (!cn || !cn_ok(cn, strlen(cn)))
		return -EINVAL;
	snprintf(out, PKI_CN_MAX + 4, "CN=%s", cn);
	return 0;
}

/* Only EC P-256 keys, ours and the nodes'. */
static bool key_is_p256(const mbedtls_pk_context *pk)
{
	return mbedtls_pk_get_type(pk) == MBEDTLS_PK_ECKEY &&
	       mbedtls_pk_ec(*pk)->grp.id == MBEDTLS_ECP_DP_SECP256R1;
}

static int key_parse(mbedtls_pk_context *pk, const char *pem)
{
	if (!pem || mbedtls_pk_parse_key(pk, (const unsigned char *)pem, strlen(pem) + 1,
					 NULL, 0) != 0)
		return -EINVAL;
	return key_is_p256(pk) ? 0 : -EINVAL;
}

static int crt_parse(mbedtls_x509_crt *crt, const char *pem)
{
	if (!pem || mbedtls_x509_crt_parse(crt, (const unsigned char *)pem, strlen(pem) + 1) != 0)
		return -EINVAL;
	return 0;
}

/* Parses a CSR and checks its signature with its own key: the sender holds the key. */
static int csr_load(mbedtls_x509_csr *csr, const char *pem)
{
	unsigned char hash[MBEDTLS_MD_MAX_SIZE];
	const mbedtls_md_info_t *md;

	if (!pem || mbedtls_x509_csr_parse(csr, (const unsigned char *)pem, strlen(pem) + 1) != 0)
		return -EINVAL;
	if (!key_is_p256(&csr->pk) || csr->sig_pk != MBEDTLS_PK_ECDSA ||
	    (csr->sig_md != MBEDTLS_MD_SHA256 && csr->sig_md != MBEDTLS_MD_SHA384 &&
	     csr->sig_md != MBEDTLS_MD_SHA512))
		return -EINVAL;
	md = mbedtls_md_info_from_type(csr->sig_md);
	if (!md || mbedtls_md(md, csr->cri.p, csr->cri.len, hash) != 0)
		return -EINVAL;
	if (mbedtls_pk_verify(&csr->pk, csr->sig_md, hash, mbedtls_md_get_size(md),
			      csr->sig.p, csr->sig.len) != 0)
		return -EINVAL;
	return 0;
}

static int pem_err(int ret)
{
	if (ret == 0)
		return 0;
	if (ret == MBEDTLS_ERR_BASE64_BUFFER_TOO_SMALL || ret == MBEDTLS_ERR_ASN1_BUF_TOO_SMALL)
		return -ENOSPC;
	return -EIO;
}

int pki_key_new(char *key_pem)
{
	mbedtls_pk_context pk;
	struct rng r;
	int err;

	mbedtls_pk_init(&pk);
	err = rng_init(&r);
	if (err)
		goto out;
	err = -EIO;
	if (mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) != 0 ||
	    mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(pk),
				mbedtls_ctr_drbg_random, &r.drbg) != 0)
		goto out;
	err = pem_err(mbedtls_pk_write_key_pem(&pk, (unsigned char *)key_pem, PKI_PEM_MAX));
out:
	mbedtls_pk_free(&pk);
	rng_fini(&r);
	return err;
}

static int validity(mbedtls_x509write_cert *w, int days)
{
	time_t now = time(NULL), from = now - PKI_BACKDATE_S, to = now + (time_t)days * 86400;
	char a[16], b[16];
	struct tm tm;

	if (days <= 0 || days > PKI_DAYS_MAX)
		return -EINVAL;
	if (!gmtime_r(&from, &tm) || strftime(a, sizeof(a), "%Y%m%d%H%M%S", &tm) != 14 ||
	    !gmtime_r(&to, &tm) || strftime(b, sizeof(b), "%Y%m%d%H%M%S", &tm) != 14)
		return -EINVAL;
	return mbedtls_x509write_crt_set_validity(w, a, b) == 0 ? 0 : -EINVAL;
}

static int serial_set(mbedtls_x509write_cert *w, const unsigned char *be, size_t len)
{
	mbedtls_mpi s;
	int ret;

	mbedtls_mpi_init(&s);
	ret = mbedtls_mpi_read_binary(&s, be, len);
	if (ret == 0)
		ret = mbedtls_x509write_crt_set_serial(w, &s);
	mbedtls_mpi_free(&s);
	return ret == 0 ? 0 : -EIO;
}

/* The fields every certificate we issue has: names, keys, validity, SHA-256, key ids. */
static int crt_base(mbedtls_x509write_cert *w, const char *subj, const char *issuer,
		    mbedtls_pk_context *subj_key, mbedtls_pk_context *issuer_key, int days)
{
	int err;

	mbedtls_x509write_crt_set_version(w, MBEDTLS_X509_CRT_VERSION_3);
	mbedtls_x509write_crt_set_md_alg(w, MBEDTLS_MD_SHA256);
	mbedtls_x509write_crt_set_subject_key(w, subj_key);
	mbedtls_x509write_crt_set_issuer_key(w, issuer_key);
	if (mbedtls_x509write_crt_set_subject_name(w, subj) != 0 ||
	    mbedtls_x509write_crt_set_issuer_name(w, issuer) != 0)
		return -EINVAL;
	err = validity(w, days);
	if (err)
		return err;
	if (mbedtls_x509write_crt_set_subject_key_identifier(w) != 0 ||
	    mbedtls_x509write_crt_set_authority_key_identifier(w) != 0)
		return -EIO;
	return 0;
}

static int ca_fill(mbedtls_x509write_cert *w, mbedtls_pk_context *key, const char *cn,
		   int days, struct rng *r)
{
	unsigned char serial[PKI_CA_SERIAL];
	char subj[PKI_CN_MAX + 4];
	int err = subject(cn, subj);

	if (err)
		return err;
	err = crt_base(w, subj, subj, key, key, days);
	if (err)
		return err;
	if (mbedtls_ctr_drbg_random(&r->drbg, serial, sizeof(serial)) != 0)
		return -EIO;
	serial[0] = (serial[0] & 0x7f) | 0x40;	/* positive, full length */
	err = serial_set(w, serial, sizeof(serial));
	if (err)
		return err;
	if (mbedtls_x509write_crt_set_basic_constraints(w, 1, 0) != 0 ||
	    mbedtls_x509write_crt_set_key_usage(w, MBEDTLS_X509_KU_KEY_CERT_SIGN |
						   MBEDTLS_X509_KU_CRL_SIGN) != 0)
		return -EIO;
	return 0;
}

int pki_ca_new(const char *key_pem, const char *cn, int days, char *cert_pem)
{
	mbedtls_x509write_cert w;
	mbedtls_pk_context key;
	struct rng r;
	int err;

	mbedtls_pk_init(&key);
	mbedtls_x509write_crt_init(&w);
	err = rng_init(&r);
	if (err)
		goto out;
	err = key_parse(&key, key_pem);
	if (err)
		goto out;
	err = ca_fill(&w, &key, cn, days, &r);
	if (err)
		goto out;
	err = pem_err(mbedtls_x509write_crt_pem(&w, (unsigned char *)cert_pem, PKI_PEM_MAX,
						mbedtls_ctr_drbg_random, &r.drbg));
out:
	mbedtls_x509write_crt_free(&w);
	mbedtls_pk_free(&key);
	rng_fini(&r);
	return err;
}

int pki_csr_new(const char *key_pem, const char *cn, char *csr_pem)
{
	char subj[PKI_CN_MAX + 4];
	mbedtls_x509write_csr w;
	mbedtls_pk_context key;
	struct rng r;
	int err;

	mbedtls_pk_init(&key);
	mbedtls_x509write_csr_init(&w);
	err = rng_init(&r);
	if (err)
		goto out;
	err = key_parse(&key, key_pem);
	if (!err)
		err = subject(cn, subj);
	if (err)
		goto out;
	mbedtls_x509write_csr_set_key(&w, &key);
	mbedtls_x509write_csr_set_md_alg(&w, MBEDTLS_MD_SHA256);
	err = -EINVAL;
	if (mbedtls_x509write_csr_set_subject_name(&w, subj) != 0)
		goto out;
	err = pem_err(mbedtls_x509write_csr_pem(&w, (unsigned char *)csr_pem, PKI_PEM_MAX,
						mbedtls_ctr_drbg_random, &r.drbg));
out:
	mbedtls_x509write_csr_free(&w);
	mbedtls_pk_free(&key);
	rng_fini(&r);
	return err;
}

int pki_csr_cn(const char *csr_pem, char cn[PKI_CN_MAX])
{
	mbedtls_x509_csr csr;
	int err;

	mbedtls_x509_csr_init(&csr);
	err = csr_load(&csr, csr_pem);
	if (!err)
		err = name_cn(&csr.subject, cn);
	mbedtls_x509_csr_free(&csr);
	return err;
}

/* extendedKeyUsage: SEQUENCE { OID id-kp-serverAuth and/or id-kp-clientAuth }. mbedtls 2.28
 * has no writer for it; the DER is fixed. */
static int eku_set(mbedtls_x509write_cert *w, enum pki_usage usage)
{
	static const char srv[] = MBEDTLS_OID_SERVER_AUTH, cli[] = MBEDTLS_OID_CLIENT_AUTH;
	const size_t olen = sizeof(srv) - 1;
	unsigned char der[2 + 2 * (2 + sizeof(srv) - 1)];
	size_t len = 2;

	_Static_assert(sizeof(srv) == sizeof(cli), "same OID length");
	for (int i = 0; i < 2; i++) {
		bool want = i == 0 ? usage != PKI_CLIENT : usage != PKI_SERVER;

		if (!want)
			continue;
		der[len] = 0x06;
		der[len + 1] = (unsigned char)olen;
		memcpy(der + len + 2, i == 0 ? srv : cli, olen);
		len += 2 + olen;
	}
	der[0] = 0x30;
	der[1] = (unsigned char)(len - 2);
	return mbedtls_x509write_crt_set_extension(w, MBEDTLS_OID_EXTENDED_KEY_USAGE,
						   MBEDTLS_OID_SIZE(MBEDTLS_OID_EXTENDED_KEY_USAGE),
						   0, der, len) == 0 ? 0 : -EIO;
}

/* Everything of an issued certificate but its signature. */
static int leaf_fill(mbedtls_x509write_cert *w, mbedtls_x509_crt *ca, mbedtls_pk_context *ca_key,
		     mbedtls_x509_csr *csr, const char *cn, uint64_t serial, int days, enum pki_usage usage)
{
	char subj[PKI_CN_MAX + 4], issuer[PKI_CN_MAX + 4], ca_cn[PKI_CN_MAX];
	unsigned char be[8];
	int err;

	if (serial == 0)
		return -EINVAL;
	err = subject(cn, subj);
	if (!err)
		err = name_cn(&ca->subject, ca_cn);
	if (!err)
		err = subject(ca_cn, issuer);
	if (!err)
		err = crt_base(w, subj, issuer, &csr->pk, ca_key, days);
	if (err)
		return err;
	for (int i = 0; i < 8; i++)
		be[i] = (unsigned char)(serial >> (56 - 8 * i));
	err = serial_set(w, be, sizeof(be));
	if (err)
		return err;
	if (mbedtls_x509write_crt_set_basic_constraints(w, 0, -1) != 0 ||
	    mbedtls_x509write_crt_set_key_usage(w, MBEDTLS_X509_KU_DIGITAL_SIGNATURE) != 0)
		return -EIO;
	return eku_set(w, usage);
}

int pki_sign(const char *ca_key_pem, const char *ca_cert_pem, const char *csr_pem,
	     const char *cn, uint64_t serial, int days, enum pki_usage usage, char *cert_pem)
{
	mbedtls_x509write_cert w;
	mbedtls_pk_context ca_key;
	mbedtls_x509_crt ca;
	mbedtls_x509_csr csr;
	struct rng r;
	int err;

	mbedtls_pk_init(&ca_key);
	mbedtls_x509_crt_init(&ca);
	mbedtls_x509_csr_init(&csr);
	mbedtls_x509write_crt_init(&w);
	err = rng_init(&r);
	if (!err)
		err = key_parse(&ca_key, ca_key_pem);
	if (!err)
		err = crt_parse(&ca, ca_cert_pem);
	if (!err && mbedtls_pk_check_pair(&ca.pk, &ca_key) != 0)
		err = -EINVAL;
	if (!err)
		err = csr_load(&csr, csr_pem);
	if (!err)
		err = leaf_fill(&w, &ca, &ca_key, &csr, cn, serial, days, usage);
	if (!err)
		err = pem_err(mbedtls_x509write_crt_pem(&w, (unsigned char *)cert_pem, PKI_PEM_MAX,
							mbedtls_ctr_drbg_random, &r.drbg));
	mbedtls_x509write_crt_free(&w);
	mbedtls_x509_csr_free(&csr);
	mbedtls_x509_crt_free(&ca);
	mbedtls_pk_free(&ca_key);
	rng_fini(&r);
	return err;
}

int pki_pin(const char *cert_pem, char pin_hex[PKI_PIN_HEX])
{
	unsigned char pin[PKI_PIN_LEN];
	mbedtls_x509_crt crt;
	int err;

	mbedtls_x509_crt_init(&crt);
	err = crt_parse(&crt, cert_pem);
	if (!err) {
		sha256(crt.raw.p, crt.raw.len, pin);
		hex_encode(pin, sizeof(pin), pin_hex);
	}
	mbedtls_x509_crt_free(&crt);
	return err;
}

int pki_cert_cn(const char *cert_pem, char cn[PKI_CN_MAX])
{
	mbedtls_x509_crt crt;
	int err;

	mbedtls_x509_crt_init(&crt);
	err = crt_parse(&crt, cert_pem);
	if (!err)
		err = name_cn(&crt.subject, cn);
	mbedtls_x509_crt_free(&crt);
	return err;
}

int pki_verify(const char *ca_pem, const char *cert_pem)
{
	mbedtls_x509_crt ca, crt;
	uint32_t flags = 0;
	int err;

	mbedtls_x509_crt_init(&ca);
	mbedtls_x509_crt_init(&crt);
	err = crt_parse(&ca, ca_pem);
	if (!err)
		err = crt_parse(&crt, cert_pem);
	if (!err && mbedtls_x509_crt_verify(&crt, &ca, NULL, NULL, &flags, NULL, NULL) != 0)
		err = -EKEYREJECTED;
	mbedtls_x509_crt_free(&crt);
	mbedtls_x509_crt_free(&ca);
	return err;
}
