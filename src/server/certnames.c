/* certnames: the server certificate's names as a set. */
#include "server/certnames.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "common/err.h"
#include "server/init.h"

/* The form a name is kept and compared in. */
static int
canon(const char *name, char out[CERTNAME_SIZE])
{
	unsigned char bin[16];
	size_t i;

	if (!pki_name_valid(name))
		return PH_ERR_INVALID;
	if (inet_pton(AF_INET, name, bin) == 1)
		return inet_ntop(AF_INET, bin, out, CERTNAME_SIZE) != NULL ? 0 :
		    PH_ERR_INVALID;
	if (inet_pton(AF_INET6, name, bin) == 1)
		return inet_ntop(AF_INET6, bin, out, CERTNAME_SIZE) != NULL ?
		    0 : PH_ERR_INVALID;
	/* pki_name_valid bounds a DNS name to 253 characters. */
	for (i = 0; name[i] != '\0' && i < CERTNAME_SIZE - 1; i++)
		out[i] = (char)tolower((unsigned char)name[i]);
	out[i] = '\0';
	return 0;
}

int
certnames_has(const struct certnames *cn, const char *name)
{
	char c[CERTNAME_SIZE];
	size_t i;

	if (canon(name, c) != 0)
		return 0;
	for (i = 0; i < cn->n; i++)
		if (strcmp(cn->name[i], c) == 0)
			return 1;
	return 0;
}

int
certnames_add(struct certnames *cn, const char *name)
{
	char c[CERTNAME_SIZE];
	size_t i;

	if (name == NULL || canon(name, c) != 0)
		return PH_ERR_INVALID;
	for (i = 0; i < cn->n; i++)
		if (strcmp(cn->name[i], c) == 0)
			return 0;
	if (cn->n >= PKI_NAMES_MAX)
		return PH_ERR_TOOBIG;
	memcpy(cn->name[cn->n++], c, sizeof(c));
	return 0;
}

int
certnames_add_aws(struct certnames *cn, const char *region)
{
	/* Regional services; the partition's DNS suffix follows. */
	static const char *const regional[] = { "ssm", "ssmmessages",
	    "ec2messages", "kms", "sts", "cloudtrail" };
	char name[CERTNAME_SIZE];
	const char *suffix = "amazonaws.com";
	size_t i;
	int rc;

	if (!server_init_region_valid(region))
		return PH_ERR_INVALID;
	if (strncmp(region, "cn-", 3) == 0)
		suffix = "amazonaws.com.cn";
	for (i = 0; i < sizeof(regional) / sizeof(regional[0]); i++) {
		snprintf(name, sizeof(name), "%s.%s.%s", regional[i], region,
		    suffix);
		if ((rc = certnames_add(cn, name)) != 0)
			return rc;
	}
	/* IAM has one endpoint per partition; STS's global one is the
	 * default of older SDKs. */
	if (strncmp(region, "cn-", 3) == 0)
		snprintf(name, sizeof(name), "iam.cn-north-1.amazonaws.com.cn");
	else if (strncmp(region, "us-gov-", 7) == 0)
		snprintf(name, sizeof(name), "iam.us-gov.amazonaws.com");
	else {
		if ((rc = certnames_add(cn, "sts.amazonaws.com")) != 0)
			return rc;
		snprintf(name, sizeof(name), "iam.amazonaws.com");
	}
	return certnames_add(cn, name);
}

int
certnames_add_cert(struct certnames *cn, X509 *cert)
{
	GENERAL_NAMES *gens;
	const GENERAL_NAME *g;
	const unsigned char *d;
	char text[CERTNAME_SIZE];
	int i, len, rc = 0;

	gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	if (gens == NULL)
		return 0;
	for (i = 0; i < sk_GENERAL_NAME_num(gens) && rc == 0; i++) {
		g = sk_GENERAL_NAME_value(gens, i);
		if (g->type == GEN_DNS) {
			d = ASN1_STRING_get0_data(g->d.dNSName);
			len = ASN1_STRING_length(g->d.dNSName);
			if (len <= 0 || len >= CERTNAME_SIZE ||
			    memchr(d, '\0', (size_t)len) != NULL)
				continue;
			memcpy(text, d, (size_t)len);
			text[len] = '\0';
		} else if (g->type == GEN_IPADD) {
			d = ASN1_STRING_get0_data(g->d.iPAddress);
			len = ASN1_STRING_length(g->d.iPAddress);
			if ((len != 4 && len != 16) || inet_ntop(len == 4 ?
			    AF_INET : AF_INET6, d, text, sizeof(text)) == NULL)
				continue;
		} else
			continue;
		/* A name we would not issue (not ours) is dropped. */
		rc = certnames_add(cn, text);
		if (rc == PH_ERR_INVALID)
			rc = 0;
	}
	GENERAL_NAMES_free(gens);
	return rc;
}

int
certnames_split(char *arg, const char **names, size_t *n, size_t max)
{
	char *save = NULL, *tok;

	for (tok = strtok_r(arg, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		if (*n >= max)
			return PH_ERR_TOOBIG;
		names[(*n)++] = tok;
	}
	return 0;
}

void
certnames_ptrs(const struct certnames *cn, const char *out[PKI_NAMES_MAX])
{
	size_t i;

	for (i = 0; i < cn->n && i < PKI_NAMES_MAX; i++)
		out[i] = cn->name[i];
}
