/* register: enrol this machine with portholed (docs/decisions.md
 * "Registration is its own endpoint"): make a key pair here, send a CSR
 * with the activation id and code, store what comes back in the state
 * directory (state.h). The private key never leaves the machine. */
#ifndef PORTHOLE_AGENT_REGISTER_H
#define PORTHOLE_AGENT_REGISTER_H

#include <stddef.h>

struct agent_register_opts {
	const char *endpoint;  /* https://host:port */
	const char *ca_file;   /* CA that signs portholed's certificate */
	const char *code;      /* activation code (a secret: never logged) */
	const char *id;        /* activation id */
	const char *state_dir;
	const char *name;      /* optional instance name */
	/* --proxy/--no-proxy: saved as agent.json's Proxy (NULL: keep an
	 * earlier agent.json's, else the environment's is used, unsaved) */
	const char *proxy;
	const char *no_proxy;
};

/* The endpoint AWS's agent derives from a region when none is given:
 * https://ssm.REGION.amazonaws.com (a private DNS name for portholed).
 * region: lower-case letters, digits and '-', 1 to 32 characters, not
 * starting or ending with '-'. 0, PH_ERR_INVALID, PH_ERR_TOOBIG. */
int agent_register_region_endpoint(const char *region, char *out,
    size_t size);

/* Run the registration; prints the result or a clear error and returns
 * the process exit status (0 or 1). */
int agent_register_run(const struct agent_register_opts *o);

#endif
