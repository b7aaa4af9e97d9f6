/* sysinfo: what the agent reports about its machine when it opens the
 * control channel (porthole's extension of OpenControlChannel, spec 2.3). */
#ifndef PORTHOLE_AGENT_SYSINFO_H
#define PORTHOLE_AGENT_SYSINFO_H

#include <stddef.h>

struct agent_sysinfo {
	char platform_name[128];    /* os-release NAME */
	char platform_version[64];  /* os-release VERSION_ID */
	char hostname[256];
	char ip_address[64];        /* first non-loopback IPv4 */
};

/* Read NAME and VERSION_ID from os-release text (shell-style assignments,
 * values optionally quoted). Missing keys give empty strings. */
void agent_osrelease_parse(const char *text, size_t n, char *name,
    size_t name_len, char *version, size_t version_len);
/* Fill in everything; never fails (unknown values are "" or 127.0.0.1). */
void agent_sysinfo_collect(struct agent_sysinfo *si);

#endif
