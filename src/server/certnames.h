/* certnames: the subject alternative names of portholed's server
 * certificate as a set: DNS names (lower case) and IP addresses (canonical
 * text, so "0:0::1" and "::1" are one name), in the order first added.
 * `portholed init` and `portholed cert reissue` build it from --hostname,
 * the AWS endpoint names of a region and an existing certificate. */
#ifndef PORTHOLE_CERTNAMES_H
#define PORTHOLE_CERTNAMES_H

#include <stddef.h>

#include <openssl/x509.h>

#include "server/pki.h"

#define CERTNAME_SIZE 254   /* a DNS name of 253 characters, NUL */

struct certnames {
	char name[PKI_NAMES_MAX][CERTNAME_SIZE];
	size_t n;
};

/* Add one name (a DNS name pki_name_valid accepts, or an IPv4/IPv6
 * literal); one already there is not added again. PH_ERR_INVALID for a
 * bad name, PH_ERR_TOOBIG when PKI_NAMES_MAX are there. */
int certnames_add(struct certnames *cn, const char *name);

/* The names under which tools reach AWS's endpoints for region by
 * default, which portholed answers to in a private network (the VPC
 * endpoints' private DNS names): ssm, ssmmessages, ec2messages, kms, sts
 * and cloudtrail of the region, and the global sts and iam names.
 * PH_ERR_INVALID if region is not region-shaped. */
int certnames_add_aws(struct certnames *cn, const char *region);

/* Every DNS and IP name of cert's subjectAltName (others are skipped). */
int certnames_add_cert(struct certnames *cn, X509 *cert);

/* 1 if the set holds name (compared as certnames_add stores it). */
int certnames_has(const struct certnames *cn, const char *name);

/* A --hostname value split at commas (arg is cut in place): its names
 * go to names[*n...], *n counting them; PH_ERR_TOOBIG past max names. */
int certnames_split(char *arg, const char **names, size_t *n, size_t max);

/* Pointers to the names, for pki_server_cert_issue. */
void certnames_ptrs(const struct certnames *cn,
    const char *out[PKI_NAMES_MAX]);

#endif
