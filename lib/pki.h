/* pki.h — the cluster's certificates with mbedtls: an EC P-256 CA made once by the
 * controller, keys and CSRs made by nodes, certificates signed from CSRs, and the CA pin
 * (SHA-256 of the CA certificate's DER) that nodes are booted with. All PEM in, PEM out. */
#ifndef CAIRN_PKI_H
#define CAIRN_PKI_H

#include <stddef.h>
#include <stdint.h>

#define PKI_PEM_MAX	4096		/* one key, CSR or certificate */
#define PKI_CN_MAX	64
#define PKI_PIN_LEN	32		/* SHA-256 */
#define PKI_PIN_HEX	(2 * PKI_PIN_LEN + 1)

/* A new EC P-256 private key (PEM) into key_pem[PKI_PEM_MAX]. 0 or -errno. */
int pki_key_new(char *key_pem);
/* CNs are 1..PKI_CN_MAX-1 characters of [A-Za-z0-9._:@-] (mbedtls parses subject strings,
 * so ',', '=', '\\' and the like could forge extra name parts): others are -EINVAL.
 * `days` is 1..36500; certificates are valid from an hour ago (clock skew). */

/* A self-signed CA certificate for key_pem, subject "CN=<cn>", valid `days`
 * (basicConstraints CA, pathlen 0; keyUsage keyCertSign, cRLSign). */
int pki_ca_new(const char *key_pem, const char *cn, int days, char *cert_pem);
/* A CSR for key_pem with subject "CN=<cn>". */
int pki_csr_new(const char *key_pem, const char *cn, char *csr_pem);
/* Reads the subject CN of a CSR whose signature checks (proof of possession of its key).
 * -EINVAL: unparsable or bad signature; -ENAMETOOLONG: CN too long. */
int pki_csr_cn(const char *csr_pem, char cn[PKI_CN_MAX]);
/* What an issued certificate may be used for (its extendedKeyUsage, which mbedtls enforces
 * in the handshake). A node is both: it calls the controller and its peers (client) and
 * serves the internal API to its peers (server). */
enum pki_usage { PKI_CLIENT = 0, PKI_SERVER = 1, PKI_CLIENT_SERVER = 2 };

/* Signs a certificate for the CSR's public key with subject "CN=<cn>" (the issuer chooses
 * the CN, never the CSR), serial `serial` (not 0), valid `days`, issued by the CA, with
 * keyUsage digitalSignature and the extendedKeyUsage of `usage`. -EINVAL on a bad CSR (or a
 * CA key that does not match the CA certificate). */
int pki_sign(const char *ca_key_pem, const char *ca_cert_pem, const char *csr_pem,
	     const char *cn, uint64_t serial, int days, enum pki_usage usage, char *cert_pem);
/* The pin of a PEM certificate: SHA-256 of its DER, as lowercase hex (PKI_PIN_HEX). */
int pki_pin(const char *cert_pem, char pin_hex[PKI_PIN_HEX]);
/* The subject CN of a PEM certificate. */
int pki_cert_cn(const char *cert_pem, char cn[PKI_CN_MAX]);
/* 0 when cert_pem was issued by ca_pem and is within its validity, else -EKEYREJECTED
 * (-EINVAL when either does not parse). */
int pki_verify(const char *ca_pem, const char *cert_pem);

#endif
