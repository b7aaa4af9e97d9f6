/* state: the agent's state directory, written by `register` and read by
 * `run`:
 *   key.pem     the EC P-256 private key (0600, never leaves the machine)
 *   cert.pem    the client certificate portholed issued for it
 *   ca.pem      the CA that signs portholed's server certificate
 *   agent.json  {"InstanceId","Endpoint","Region"} plus optional settings:
 *               "SudoersEntry": false  do not create
 *                 /etc/sudoers.d/ssm-agent-users for a new ssm-user
 *                 (default true, spec 9.2)
 *               "RecordSessions": false  record no session (default
 *                 true; records already spooled are still delivered)
 *               "RecordSpoolMaxBytes": N  session records not yet
 *                 acknowledged by portholed before sessions' output
 *                 waits (default 256 MiB, at least 1 MiB)
 *               "DeniedPortForwardingRemoteIPs": ["169.254.169.254",
 *                 "10.0.0.0/8", "fd00::/8", ...]  destinations port
 *                 forwarding refuses (addresses or CIDR blocks, at
 *                 most 64; replaces the default list of the EC2
 *                 link-local services, portfwd_deny.h)
 *               "Proxy": {"Url": "http://[user:password@]host:port",
 *                 "NoProxy": "host,.domain,10.0.0.1:8443"}  the HTTP
 *                 CONNECT proxy for everything the agent sends; when
 *                 present it replaces https_proxy/no_proxy from the
 *                 environment ("Url": "" means direct; proxy.h)
 */
#ifndef PORTHOLE_AGENT_STATE_H
#define PORTHOLE_AGENT_STATE_H

#include <stddef.h>

#include "agent/portfwd_deny.h"

#define AGENT_STATE_DIR_DEFAULT "/var/lib/porthole-agent"
#define AGENT_STATE_FILE_MAX ((size_t)64 * 1024)
#define AGENT_INSTANCE_ID_MAX 63
#define AGENT_PATH_MAX 4096

struct agent_state {
	char dir[AGENT_PATH_MAX - 32];
	char instance_id[AGENT_INSTANCE_ID_MAX + 1];
	char endpoint[1024];     /* https://host:port as registered */
	char region[64];
	char ws_base[1024];      /* wss://host:port, derived from endpoint */
	int sudoers_entry;       /* SudoersEntry, default 1 */
	/* RecordSessions false; stored inverted so that a zeroed struct
	 * records */
	int record_off;
	unsigned long long record_spool_max; /* RecordSpoolMaxBytes */
	/* DeniedPortForwardingRemoteIPs; zeroed: the default list */
	struct pf_denylist deny;
	/* Proxy: proxy_set is 1 when agent.json has the object (then the
	 * environment is not read). Strings may hold credentials. */
	int proxy_set;
	char proxy_url[1024];
	char no_proxy[2048];
	char key_path[AGENT_PATH_MAX];
	char cert_path[AGENT_PATH_MAX];
	char ca_path[AGENT_PATH_MAX];
	char config_path[AGENT_PATH_MAX];
};

/* Parse agent.json text into st (dir and paths untouched). err explains a
 * failure. */
int agent_state_parse(struct agent_state *st, const char *text, size_t n,
    char *err, size_t errlen);
/* Load dir/agent.json and check that the key, certificate and CA files
 * are there. */
int agent_state_load(struct agent_state *st, const char *dir, char *err,
    size_t errlen);
/* Read agent.json's Proxy object (o is the parsed file) into st. */
int agent_state_proxy(struct agent_state *st, const void *o, char *err,
    size_t errlen);
/* Make the process's proxy configuration (proxy_set_default) from st's
 * Proxy setting, or from the environment when agent.json has none; logs
 * where it came from (never the credentials). */
int agent_proxy_setup(const struct agent_state *st, char *err,
    size_t errlen);

/* Fill in dir and the four file paths. */
int agent_state_set_dir(struct agent_state *st, const char *dir);

/* "https://host:port[/...]" -> "wss://host:port" (no path, no slash).
 * PH_ERR_INVALID for anything but an https URL with a host. */
int agent_endpoint_to_ws(const char *endpoint, char *out, size_t out_len);

/* Write n bytes to path atomically: a temporary file in the same
 * directory created with mode (never wider), fsync, rename over path. */
int agent_write_file_atomic(const char *path, const void *p, size_t n,
    unsigned mode);
/* Read a whole small file (at most max bytes) into a NUL-terminated
 * malloc'd string. */
int agent_read_file(const char *path, size_t max, char **out, size_t *len);

#endif
