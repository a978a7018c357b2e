/* test_pki.c — the cluster PKI: CA -> key -> CSR -> certificate -> verify, the extensions
 * issued certificates carry, rejection of foreign or tampered material, and the CA pin. */
#include "test.h"

#include <errno.h>
#include <stdio.h>

#include <mbedtls/oid.h>
#include <mbedtls/x509_crt.h>

#include "../../lib/hash.h"
#include "../../lib/pki.h"

/* The DER inside a PEM (one object). */
static int pem_der(const char *pem, unsigned char *der, size_t max)
{
	char b64[PKI_PEM_MAX];
	const char *p = strchr(pem, '\n'), *end = strstr(pem, "-----END");
	size_t n = 0;

	if (!p || !end)
		return -1;
	for (p++; p < end; p++)
		if (*p != '\n')
			b64[n++] = *p;
	return base64_decode(b64, n, der, max);
}

static void der_pem(const unsigned char *der, size_t len, const char *label, char *out)
{
	char b64[PKI_PEM_MAX];
	size_t n = base64_encode(der, len, b64);
	int o = sprintf(out, "-----BEGIN %s-----\n", label);

	for (size_t i = 0; i < n; i += 64)
		o += sprintf(out + o, "%.*s\n", (int)(n - i < 64 ? n - i : 64), b64 + i);
	sprintf(out + o, "-----END %s-----\n", label);
}

struct ca {
	char key[PKI_PEM_MAX], crt[PKI_PEM_MAX];
};

static int ca_make(struct ca *ca, const char *cn)
{
	int err = pki_key_new(ca->key);

	return err ? err : pki_ca_new(ca->key, cn, 7300, ca->crt);
}

static int crt_load(mbedtls_x509_crt *crt, const char *pem)
{
	mbedtls_x509_crt_init(crt);
	return mbedtls_x509_crt_parse(crt, (const unsigned char *)pem, strlen(pem) + 1);
}

TEST(pki_issue_and_verify)
{
	static struct ca ca;
	char key[PKI_PEM_MAX], csr[PKI_PEM_MAX], crt[PKI_PEM_MAX], cn[PKI_CN_MAX];
	mbedtls_x509_crt x;
	bool eku_ok, eku_wrong;

	CHECK_INT(ca_make(&ca, "cairn-ca-test"), 0);
	CHECK(strstr(ca.crt, "-----BEGIN CERTIFICATE-----\n") == ca.crt);
	CHECK_INT(pki_key_new(key), 0);
	CHECK(strstr(key, "-----BEGIN EC PRIVATE KEY-----") != NULL);
	CHECK_INT(pki_csr_new(key, "whatever-node-says", csr), 0);
	CHECK_INT(pki_csr_cn(csr, cn), 0);
	CHECK_STR(cn, "whatever-node-says");
	CHECK_INT(pki_sign(ca.key, ca.crt, csr, "node-0001", 7, 30, 0, crt), 0);
	CHECK_INT(pki_verify(ca.crt, crt), 0);
	CHECK_INT(pki_cert_cn(crt, cn), 0);
	CHECK_STR(cn, "node-0001");			/* the issuer's choice */
	CHECK_INT(pki_cert_cn(ca.crt, cn), 0);
	CHECK_STR(cn, "cairn-ca-test");

	CHECK_INT(crt_load(&x, crt), 0);
	eku_ok = mbedtls_x509_crt_check_extended_key_usage(&x, MBEDTLS_OID_CLIENT_AUTH,
			MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH)) == 0;
	eku_wrong = mbedtls_x509_crt_check_extended_key_usage(&x, MBEDTLS_OID_SERVER_AUTH,
			MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH)) == 0;
	CHECK(!x.ca_istrue && eku_ok && !eku_wrong);
	CHECK(mbedtls_x509_crt_check_key_usage(&x, MBEDTLS_X509_KU_DIGITAL_SIGNATURE) == 0);
	CHECK(mbedtls_x509_crt_check_key_usage(&x, MBEDTLS_X509_KU_KEY_CERT_SIGN) != 0);
	CHECK(x.serial.len == 1 && x.serial.p[0] == 7);	/* minimal DER */
	mbedtls_x509_crt_free(&x);

	/* A node's certificate serves its peers too: both usages. */
	CHECK_INT(pki_sign(ca.key, ca.crt, csr, "node-0002", 8, 30, PKI_CLIENT_SERVER, crt), 0);
	CHECK_INT(crt_load(&x, crt), 0);
	CHECK(mbedtls_x509_crt_check_extended_key_usage(&x, MBEDTLS_OID_CLIENT_AUTH,
			MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH)) == 0);
	CHECK(mbedtls_x509_crt_check_extended_key_usage(&x, MBEDTLS_OID_SERVER_AUTH,
			MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH)) == 0);
	mbedtls_x509_crt_free(&x);

	CHECK_INT(crt_load(&x, ca.crt), 0);
	CHECK(x.ca_istrue && x.max_pathlen == 1);	/* mbedtls stores pathlen + 1 */
	CHECK(mbedtls_x509_crt_check_key_usage(&x, MBEDTLS_X509_KU_KEY_CERT_SIGN |
						   MBEDTLS_X509_KU_CRL_SIGN) == 0);
	mbedtls_x509_crt_free(&x);
}

TEST(pki_server_cert_and_foreign_ca)
{
	static struct ca ca, other;
	char key[PKI_PEM_MAX], csr[PKI_PEM_MAX], crt[PKI_PEM_MAX];
	mbedtls_x509_crt x;
	int eku;

	CHECK_INT(ca_make(&ca, "cairn-ca-a"), 0);
	CHECK_INT(ca_make(&other, "cairn-ca-a"), 0);	/* same name, other key */
	CHECK_INT(pki_key_new(key), 0);
	CHECK_INT(pki_csr_new(key, "cairn-controller", csr), 0);
	CHECK_INT(pki_sign(ca.key, ca.crt, csr, "cairn-controller", 1, 1, 1, crt), 0);
	CHECK_INT(crt_load(&x, crt), 0);
	eku = mbedtls_x509_crt_check_extended_key_usage(&x, MBEDTLS_OID_SERVER_AUTH,
			MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH));
	mbedtls_x509_crt_free(&x);
	CHECK_INT(eku, 0);
	CHECK_INT(pki_verify(ca.crt, crt), 0);
	CHECK_INT(pki_verify(other.crt, crt), -EKEYREJECTED);
	CHECK_INT(pki_verify(other.crt, ca.crt), -EKEYREJECTED);
	CHECK_INT(pki_verify(ca.crt, ca.crt), 0);
	CHECK_INT(pki_verify("junk", crt), -EINVAL);
	/* A CA key that does not match the CA certificate signs nothing. */
	CHECK_INT(pki_sign(other.key, ca.crt, csr, "x", 2, 1, 1, crt), -EINVAL);
}

TEST(pki_pin_stable)
{
	static struct ca ca, other;
	char pin[PKI_PIN_HEX], pin2[PKI_PIN_HEX], want[PKI_PIN_HEX];
	unsigned char der[PKI_PEM_MAX], sum[SHA256_LEN];
	int n;

	CHECK_INT(ca_make(&ca, "cairn-ca-pin"), 0);
	CHECK_INT(ca_make(&other, "cairn-ca-pin"), 0);
	CHECK_INT(pki_pin(ca.crt, pin), 0);
	CHECK_INT(pki_pin(ca.crt, pin2), 0);
	CHECK_STR(pin, pin2);
	CHECK_INT(strlen(pin), 64);
	CHECK_INT(strspn(pin, "0123456789abcdef"), 64);
	n = pem_der(ca.crt, der, sizeof(der));
	CHECK(n > 0);
	sha256(der, (size_t)n, sum);
	hex_encode(sum, sizeof(sum), want);
	CHECK_STR(pin, want);				/* SHA-256 of the DER */
	CHECK_INT(pki_pin(other.crt, pin2), 0);
	CHECK(strcmp(pin, pin2) != 0);
	CHECK_INT(pki_pin("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", pin),
		  -EINVAL);
}

/* Re-encodes csr with one byte changed: at -1 from the end (the signature) or at the CN. */
static void tamper(const char *csr, const char *at, char *out)
{
	unsigned char der[PKI_PEM_MAX];
	int n = pem_der(csr, der, sizeof(der));
	unsigned char *p = at ? memmem(der, (size_t)(n > 0 ? n : 0), at, strlen(at)) : NULL;

	if (n <= 0) {
		strcpy(out, "broken");
		return;
	}
	if (at && p)
		p[0] ^= 1;
	else if (!at)
		der[n - 1] ^= 1;
	der_pem(der, (size_t)n, "CERTIFICATE REQUEST", out);
}

TEST(pki_csr_tampered)
{
	static struct ca ca;
	char key[PKI_PEM_MAX], csr[PKI_PEM_MAX], bad[PKI_PEM_MAX], crt[PKI_PEM_MAX];
	char cn[PKI_CN_MAX];

	CHECK_INT(ca_make(&ca, "cairn-ca-t"), 0);
	CHECK_INT(pki_key_new(key), 0);
	CHECK_INT(pki_csr_new(key, "node-x", csr), 0);
	tamper(csr, NULL, bad);
	CHECK(strcmp(bad, csr) != 0);
	CHECK_INT(pki_csr_cn(bad, cn), -EINVAL);
	CHECK_INT(pki_sign(ca.key, ca.crt, bad, "node-1", 3, 1, 0, crt), -EINVAL);
	tamper(csr, "node-x", bad);
	CHECK(strcmp(bad, csr) != 0);
	CHECK_INT(pki_csr_cn(bad, cn), -EINVAL);
	tamper(csr, "no-such-bytes", bad);		/* unchanged: still fine */
	CHECK_STR(bad, csr);
	CHECK_INT(pki_csr_cn(bad, cn), 0);
	CHECK_INT(pki_csr_cn("garbage", cn), -EINVAL);
}

TEST(pki_bad_arguments)
{
	static struct ca ca;
	char key[PKI_PEM_MAX], csr[PKI_PEM_MAX], crt[PKI_PEM_MAX];
	char long_cn[PKI_CN_MAX + 1];

	memset(long_cn, 'a', PKI_CN_MAX);
	long_cn[PKI_CN_MAX] = '\0';
	CHECK_INT(ca_make(&ca, "cairn-ca-b"), 0);
	CHECK_INT(pki_key_new(key), 0);
	CHECK_INT(pki_csr_new(key, "a,O=evil", csr), -EINVAL);	/* no injected RDNs */
	CHECK_INT(pki_csr_new(key, "", csr), -EINVAL);
	CHECK_INT(pki_csr_new(key, long_cn, csr), -EINVAL);
	CHECK_INT(pki_csr_new("not a key", "n", csr), -EINVAL);
	CHECK_INT(pki_ca_new(key, "ca", 0, crt), -EINVAL);
	CHECK_INT(pki_csr_new(key, "node-2", csr), 0);
	CHECK_INT(pki_sign(ca.key, ca.crt, csr, "node-2", 0, 1, 0, crt), -EINVAL);  /* serial 0 */
	CHECK_INT(pki_sign(ca.key, ca.crt, csr, "a=b", 5, 1, 0, crt), -EINVAL);
	CHECK_INT(pki_sign(ca.key, ca.crt, csr, "node-2", 5, -1, 0, crt), -EINVAL);
	CHECK_INT(pki_sign(ca.key, ca.crt, csr, "node-2", UINT64_MAX, 1, 0, crt), 0);
	CHECK_INT(pki_verify(ca.crt, crt), 0);
}
