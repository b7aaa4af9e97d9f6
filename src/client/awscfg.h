/* awscfg: credentials and settings found the way the AWS CLI v1 finds them
 * (explicit arguments, environment, shared credentials and config files),
 * so `porthole` and `session-manager-plugin` sign as the CLI would. */
#ifndef PORTHOLE_CLIENT_AWSCFG_H
#define PORTHOLE_CLIENT_AWSCFG_H

#include <stddef.h>

/* Longest line accepted in ~/.aws/credentials and ~/.aws/config. Session
 * tokens run to a few KiB; anything past this is treated as a bad file. */
#define CLIENT_AWSCFG_MAX_LINE 8192
#define CLIENT_AWSCFG_MAX_FILE ((size_t)1 << 20)

struct client_awscfg {
	char profile[128];              /* profile used ("default" if none) */
	char access_key_id[129];
	char secret_access_key[257];
	char session_token[CLIENT_AWSCFG_MAX_LINE]; /* "" if none */
	char region[64];
	char endpoint[2048];            /* SSM endpoint URL */
	char kms_endpoint[2048];        /* KMS endpoint URL */
	char ca_bundle[4096];           /* "" = the system store */
	/* Where the credentials came from: "explicit", "env",
	 * "shared-credentials-file", "config-file". Never the secret. */
	const char *cred_source;
	char error[512];                /* why client_awscfg_load failed */
};

/* Fill cfg. profile NULL or "" means the default chain (AWS_PROFILE, else
 * "default"); a named profile disables the AWS_ACCESS_KEY_ID environment
 * credentials as in the CLI. region_override and endpoint_override (NULL or
 * "" when absent) win over everything else; the endpoint override applies
 * to both SSM and KMS (one portholed serves both). Returns 0, or
 * PH_ERR_NOTFOUND (no credentials, unknown profile, no region) /
 * PH_ERR_INVALID (unreadable or malformed file, bad value) with
 * cfg->error set to a message like the CLI's. */
int client_awscfg_load(struct client_awscfg *cfg, const char *profile,
    const char *region_override, const char *endpoint_override);

/* session-manager-plugin's variant: ssm_endpoint (argv6, the endpoint
 * the AWS CLI called StartSession on) applies to SSM only; KMS is found
 * the usual way (AWS_ENDPOINT_URL_KMS, AWS_ENDPOINT_URL, the profile's
 * endpoint_url, else AWS's public endpoint), which the official plugin
 * ignores (spec 11.2). */
int client_awscfg_load_plugin(struct client_awscfg *cfg, const char *profile,
    const char *region_override, const char *ssm_endpoint);

/* Zero the secret and token (call when done with cfg). */
void client_awscfg_clear(struct client_awscfg *cfg);

/* The endpoint for a service name ("kms" -> kms_endpoint, else endpoint). */
const char *client_awscfg_endpoint(const struct client_awscfg *cfg,
    const char *service);

#endif
