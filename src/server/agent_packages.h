/* agent_packages: the agent builds portholed hosts for aws:updateSsmAgent
 * (AWS-UpdateSSMAgent). `portholed agent-package add FILE --version V`
 * copies a build to DATA_DIR/agent-packages/ (0644) and records its
 * platform, version, size, SHA-256 and signature (common/pkgsig.h, made
 * with the CA key) in the agent_packages table (schema v8). Agents fetch a
 * build over mutual TLS with their instance certificate:
 *   GET /v1/agent-package?platform=P[&version=V]
 * answers the bytes with X-Porthole-Package-Platform, -Version, -Sha256
 * and -Signature headers; no version means the newest for P. The agent
 * checks the signature and the digest itself (portholed does not: a blob
 * changed on disk is the agent's to refuse). */
#ifndef PORTHOLE_AGENT_PACKAGES_H
#define PORTHOLE_AGENT_PACKAGES_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/buf.h"
#include "common/http.h"
#include "common/pkgsig.h"
#include "server/server.h"

#define AGENT_PACKAGES_DIR "agent-packages"
#define AGENT_PACKAGES_PATH "/v1/agent-package"

struct store;

struct agent_package {
	char platform[PKGSIG_PLATFORM_MAX + 1];
	char version[PKGSIG_VERSION_MAX + 1];
	char sha256[PKGSIG_SHA256_HEX];
	int64_t size;
	char signature[PKGSIG_B64_MAX + 1];
	char file[128];          /* under DATA_DIR/agent-packages/ */
	int64_t created_ms;
};

/* ---- the table -------------------------------------------------------- */

/* PH_ERR_EXISTS if that platform already has that version. */
int store_agent_package_put(struct store *st, const struct agent_package *p);
/* version NULL or "": the newest of the platform. PH_ERR_NOTFOUND. */
int store_agent_package_get(struct store *st, const char *platform,
    const char *version, struct agent_package *out);
/* Every package, by platform, oldest version first; fn returns non-zero
 * to stop. */
int store_agent_package_foreach(struct store *st,
    int (*fn)(void *arg, const struct agent_package *p), void *arg);
/* The newest version hosted for an operating system (a PlatformType such
 * as "Linux": every platform "linux-*"); PH_ERR_NOTFOUND if none. */
int store_agent_package_latest_os(struct store *st, const char *os,
    char out[PKGSIG_VERSION_MAX + 1]);

/* ---- the subcommands ------------------------------------------------- */

/* `portholed agent-package add`: sign and host the file at path. err
 * explains a failure for the operator. */
int agent_packages_add(const char *data_dir, const char *path,
    const char *platform, const char *version, char *err, size_t errlen);
/* `portholed agent-package list`: one line per package to f. */
int agent_packages_list(const char *data_dir, FILE *f, char *err,
    size_t errlen);

/* ---- the download route ---------------------------------------------- */

int agent_packages_is_request(const char *path);
void agent_packages_handle(struct server *srv, struct http_request *req);
/* All of agent_packages_handle but the HTTP plumbing: the status, the
 * extra headers ("Name: value\r\n"...) and the body (the package, or a
 * JSON error) for a request by the client certificate CN peer_cn. 0, or
 * PH_ERR_NOMEM when the answer could not be built. */
int agent_packages_process(struct server *srv, const char *method,
    const char *path, const char *query, const char *peer_cn, int *status,
    char *headers, size_t headers_len, struct buf *body);

#endif
