/* certcmd: `portholed cert show` prints the server certificate's names,
 * `portholed cert reissue` replaces the certificate (and its key) with one
 * for more or other names, signed by the same CA: agents keep their
 * certificates and clients their CA bundle (the private-network setup of
 * docs/operator.md, where portholed answers under AWS's endpoint names). */
#ifndef PORTHOLE_CERTCMD_H
#define PORTHOLE_CERTCMD_H

#include <stddef.h>

struct certnames;

struct cert_reissue_opts {
	const char *data_dir;
	const char *const *hostnames;   /* names to add */
	size_t nhostnames;
	int aws_names;                  /* add certnames_add_aws(region) */
	const char *region;             /* NULL: config.json's Region */
	int replace;                    /* drop the current names */
};

/* Issue and install the new server.pem / server.key (each written beside
 * and renamed over the old one) and record the names in config.json's
 * Hostnames. *out gets the names. Errors are explained on stderr;
 * PH_ERR_INVALID for bad options. A running portholed serves the new
 * certificate after SIGHUP or a restart. */
int server_cert_reissue(const struct cert_reissue_opts *o,
    struct certnames *out);

/* `portholed cert ...` (argv[0] is "cert"); the exit status. */
int server_cert_main(int argc, char **argv);

#endif
