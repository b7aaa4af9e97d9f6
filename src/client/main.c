/* porthole: the engineer's client. Invoked as session-manager-plugin it
 * follows the AWS CLI's contract (spec 1); invoked as porthole it signs its
 * own StartSession and runs the same session code. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "client/audit.h"
#include "client/awsapi.h"
#include "client/awscfg.h"
#include "client/escape.h"
#include "client/kms.h"
#include "client/logs.h"
#include "client/plugin.h"
#include "client/sendcmd.h"
#include "client/session.h"
#include "client/tty.h"
#include "common/err.h"
#include "common/log.h"
#include "common/proxy.h"

/* Exit statuses: the AWS CLI exits 255 when a call fails, 2 is the usual
 * "bad command line". */
#define MAIN_EXIT_API 255
#define MAIN_EXIT_USAGE 2

/* What ResumeSession needs: the configuration of the original caller. */
struct main_resume {
	struct client_awscfg *cfg;
	int cfg_ok;
};

static void
main_synopsis(FILE *f)
{
	fprintf(f,
	    "usage: porthole start-session --target ID [--document-name NAME]\n"
	    "           [--parameters JSON|Key=Value,...] [--profile P]\n"
	    "           [--region R] [--endpoint-url URL]\n"
	    "           [--keepalive SECONDS] [--escape-char C|^X|none]\n"
	    "       porthole logs SESSION-ID [--text|--cast|--raw]\n"
	    "       porthole logs --status\n"
	    "       porthole replay SESSION-ID [--speed N]\n"
	    "       porthole audit [--since T] [--until T] [--user U] "
	    "[--event E]\n"
	    "       porthole send-command --document-name D "
	    "(--targets T | --instance-ids I)\n"
	    "           [--parameters name=value] [--wait] ... "
	    "(send-command --help)\n"
	    "       porthole --version\n"
	    "       porthole --help\n");
}

static void
main_usage(FILE *f)
{
	main_synopsis(f);
	fprintf(f,
	    "\n"
	    "Opens a session on a managed server through portholed (or AWS\n"
	    "Systems Manager). Credentials, region, endpoint and CA bundle\n"
	    "are found like the AWS CLI finds them (AWS_* environment,\n"
	    "~/.aws). --endpoint-url serves both SSM and KMS.\n"
	    "Installed as session-manager-plugin, porthole is what\n"
	    "`aws ssm start-session` runs; there KMS calls go to\n"
	    "AWS_ENDPOINT_URL_KMS, else AWS_ENDPOINT_URL, else the profile's\n"
	    "endpoint_url, else AWS's KMS endpoint for the region.\n"
	    "\n"
	    "Port forwarding and ssh (docs/port-forwarding.md):\n"
	    "  --document-name AWS-StartPortForwardingSession\n"
	    "      --parameters portNumber=80,localPortNumber=9999\n"
	    "  listens on localhost:9999 (0: a free port, printed; or\n"
	    "  localConnectionType=unix,localUnixSocket=PATH) and forwards\n"
	    "  each connection; ...ToRemoteHost adds host=NAME. As an ssh\n"
	    "  ProxyCommand, AWS-StartSSHSession --parameters portNumber=%%p\n"
	    "  forwards standard input and output. Ctrl-C ends the session.\n"
	    "\n"
	    "send-command runs a Command document on managed servers\n"
	    "(SendCommand; with --wait, progress and each server's result;\n"
	    "porthole send-command --help).\n"
	    "\n"
	    "Encrypted sessions: when the session preferences name a KMS key,\n"
	    "porthole asks KMS (GenerateDataKey, with your credentials) for\n"
	    "the session key and prints \"This session is encrypted using\n"
	    "AWS KMS.\" before the prompt.\n"
	    "\n"
	    "Keep-alive: a ping every SECONDS (default %d, 0 turns pings off;\n"
	    "also PORTHOLE_KEEPALIVE, for both modes). A connection silent\n"
	    "for three intervals is re-established with ResumeSession.\n"
	    "\n"
	    "Escapes (when standard input is a terminal, as in ssh): after\n"
	    "Enter, or first thing in the session,\n"
	    "  ~.   end the session here and terminate it (exit status 255;\n"
	    "       0 as session-manager-plugin)\n"
	    "  ~?   list the escapes\n"
	    "  ~~   send one ~\n"
	    "  ~ followed by anything else sends both characters.\n"
	    "--escape-char (or PORTHOLE_ESCAPE_CHAR, for both modes) picks\n"
	    "another escape character; none turns escapes off.\n"
	    "\n"
	    "Exit status: 0 when the session ended normally, the remote\n"
	    "exit code of a non-interactive command\n"
	    "(AWS-StartNonInteractiveCommand, whose standard error goes to\n"
	    "standard error), 1 when the session failed or the connection\n"
	    "was lost, 2 for a bad command line, 255 after ~. or when an API\n"
	    "call failed.\n",
	    CLIENT_KEEPALIVE_DEFAULT);
}

static struct client_awscfg main_cfg;
static int main_cfg_ok;

/* {"SessionId": id}, escaped by jansson (ids come from the server). */
static int
main_session_body(struct buf *req, const char *session_id)
{
	json_t *o = json_pack("{s:s}", "SessionId", session_id);
	char *j;
	int rc;

	if (o == NULL)
		return PH_ERR_INVALID;
	j = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (j == NULL)
		return PH_ERR_NOMEM;
	rc = buf_append_str(req, j);
	free(j);
	return rc;
}

/* ssm:ResumeSession for a reconnect (spec 1.3). Runs on a worker thread;
 * reads main_cfg only. */
static int
main_resume(void *ud, const char *session_id, char **token, char *err,
    size_t errlen)
{
	struct client_start_response r;
	struct buf req, resp;
	long status = 0;
	int rc;

	*token = NULL;
	if (!main_cfg_ok) {
		snprintf(err, errlen, "%s", main_cfg.error[0] ? main_cfg.error :
		    "no credentials to call ResumeSession with");
		return PH_ERR_DENIED;
	}
	buf_init(&req, 4096);
	buf_init(&resp, CLIENT_AWSAPI_MAX_RESPONSE);
	rc = main_session_body(&req, session_id);
	if (rc == 0)
		rc = client_awsapi_call(&main_cfg, "AmazonSSM.ResumeSession",
		    "ssm", buf_cstr(&req), &status, &resp, err, errlen);
	if (rc == 0) {
		rc = client_start_response_parse(&r, (const char *)resp.data,
		    resp.len, 0, err, errlen);
		if (rc == 0)
			*token = r.token; /* transferred; NULL: timed out */
		r.token = NULL;
		client_start_response_free(&r);
	}
	buf_free(&req);
	buf_free(&resp);
	return rc;
}

/* ssm:TerminateSession when the session cannot go on (spec 1.3). Runs
 * on a worker thread; reads main_cfg only. */
static int
main_terminate(void *ud, const char *session_id, long timeout_s, char *err,
    size_t errlen)
{
	struct buf req, resp;
	long status = 0;
	int rc;

	if (!main_cfg_ok) {
		snprintf(err, errlen, "no credentials to call TerminateSession "
		    "with");
		return PH_ERR_DENIED;
	}
	buf_init(&req, 4096);
	buf_init(&resp, CLIENT_AWSAPI_MAX_RESPONSE);
	rc = main_session_body(&req, session_id);
	if (rc == 0)
		rc = client_awsapi_call_timeout(&main_cfg,
		    "AmazonSSM.TerminateSession", "ssm", buf_cstr(&req),
		    &status, &resp, err, errlen, timeout_s);
	buf_free(&req);
	buf_free(&resp);
	return rc;
}

/* kms:GenerateDataKey for an encrypted session (spec 6.1), with the
 * user's own credentials. Runs on a worker thread; reads main_cfg only. */
static int
main_kms(void *ud, const struct client_kms_request *rq,
    uint8_t key[CLIENT_KMS_DATA_KEY_LEN], char **blob, char *err,
    size_t errlen)
{
	*blob = NULL;
	if (!main_cfg_ok) {
		snprintf(err, errlen, "%s", main_cfg.error[0] ? main_cfg.error :
		    "no credentials to call KMS with");
		return PH_ERR_DENIED;
	}
	return client_kms_generate_data_key(&main_cfg, rq, key, blob, err,
	    errlen);
}

/* PORTHOLE_KEEPALIVE / PORTHOLE_ESCAPE_CHAR (both modes) and the
 * start-session flags, which win. Returns 0, or -1 after a message. In
 * plugin mode (lenient) the session has been started already: a bad
 * value is reported and the default used. */
static int
main_session_options(struct client_session_params *sp, const char *ka_flag,
    const char *esc_flag, int lenient)
{
	const char *v;
	int n;

	sp->keepalive_s = 0;  /* the default */
	sp->escape_char = 0;
	v = ka_flag != NULL ? ka_flag : getenv("PORTHOLE_KEEPALIVE");
	if (v != NULL && *v != '\0') {
		if (client_parse_keepalive(v, &n) != 0) {
			fprintf(stderr, "porthole: %s wants a number of "
			    "seconds from 0 to %d, not \"%.64s\"\n",
			    ka_flag != NULL ? "--keepalive" :
			    "PORTHOLE_KEEPALIVE", CLIENT_KEEPALIVE_MAX, v);
			if (!lenient)
				return -1;
		} else
			sp->keepalive_s = n == 0 ? -1 : n;
	}
	v = esc_flag != NULL ? esc_flag : getenv("PORTHOLE_ESCAPE_CHAR");
	if (v != NULL && *v != '\0') {
		if (client_escape_parse(v, &n) != 0) {
			fprintf(stderr, "porthole: %s wants one character, ^X "
			    "or none, not \"%.64s\"\n", esc_flag != NULL ?
			    "--escape-char" : "PORTHOLE_ESCAPE_CHAR", v);
			if (!lenient)
				return -1;
		} else
			sp->escape_char = n;
	}
	return 0;
}

/* The data channel's CA bundle: the configuration's (AWS_CA_BUNDLE or the
 * profile's ca_bundle); session.c falls back to SSL_CERT_FILE. */
static const char *
main_ca_bundle(void)
{
	const char *ca;

	if (main_cfg_ok && main_cfg.ca_bundle[0] != '\0')
		return main_cfg.ca_bundle;
	ca = getenv("AWS_CA_BUNDLE");
	return ca != NULL && *ca != '\0' ? ca : NULL;
}

static int
main_plugin(int argc, char **argv)
{
	struct client_session_params sp;
	struct client_plugin_args a;
	int rc;

	rc = client_plugin_parse(&a, argc, argv, NULL, NULL);
	/* spec 1.2: the response variable is removed once read. */
	if (a.response_env != NULL)
		(void)unsetenv(a.response_env);
	switch (a.action) {
	case CLIENT_PLUGIN_BANNER:
		printf("\nThe Session Manager plugin was installed "
		    "successfully. Use the AWS CLI to start a session.\n\n");
		return 0;
	case CLIENT_PLUGIN_VERSION:
		printf("%s\n", PORTHOLE_CLIENT_VERSION);
		return 0;
	case CLIENT_PLUGIN_UNKNOWN_OP:
		printf("\nUnknown operation %s. \nUse session-manager-plugin "
		    "--version to check the version.\n\n", a.unknown);
		return 0;
	case CLIENT_PLUGIN_INVALID_OP:
		/* The official plugin exits 0 here; a wrong call is an error
		 * the caller should see. */
		printf("Invalid Operation\n");
		client_plugin_args_free(&a);
		return CLIENT_EXIT_FAIL;
	case CLIENT_PLUGIN_FAIL:
		printf("Cannot perform start session: %s\n", a.err);
		client_plugin_args_free(&a);
		return CLIENT_EXIT_FAIL;
	case CLIENT_PLUGIN_START:
		break;
	}
	(void)rc;
	/* argv2 region, argv4 profile, argv6 endpoint are the defaults of our
	 * own calls (ResumeSession); argv6 is SSM's only, KMS calls go where
	 * AWS_ENDPOINT_URL_KMS / AWS_ENDPOINT_URL / the profile say. Without
	 * credentials the session still runs; a reconnect or an encrypted
	 * session would fail. */
	main_cfg_ok = client_awscfg_load_plugin(&main_cfg, a.profile, a.region,
	    a.endpoint) == 0;
	if (!main_cfg_ok)
		log_warn("event=config_unusable err=\"%s\"", main_cfg.error);
	memset(&sp, 0, sizeof(sp));
	(void)main_session_options(&sp, NULL, NULL, 1);
	sp.session_id = a.resp.session_id;
	sp.token = a.resp.token;
	sp.stream_url = a.resp.stream_url;
	sp.target = a.target;
	sp.ca_file = main_ca_bundle();
	sp.plugin_mode = 1;
	sp.legacy_cli = a.legacy;
	sp.resume = main_resume;
	sp.terminate = main_terminate;
	sp.kms_data_key = main_kms;
	rc = client_session_run(&sp);
	client_plugin_args_free(&a);
	client_awscfg_clear(&main_cfg);
	return rc;
}

static int
main_start_session(const struct client_cli_args *a)
{
	struct client_session_params sp;
	struct client_start_response r;
	struct buf resp;
	char err[1024], *req = NULL;
	long status = 0;
	int rc;

	memset(&sp, 0, sizeof(sp));
	if (main_session_options(&sp, a->keepalive, a->escape_char, 0) != 0)
		return MAIN_EXIT_USAGE;
	if (client_awscfg_load(&main_cfg, a->profile, a->region,
	    a->endpoint_url) != 0) {
		fprintf(stderr, "\n%s\n", main_cfg.error);
		return MAIN_EXIT_API;
	}
	main_cfg_ok = 1;
	if (client_cli_start_request(a, &req, err, sizeof(err)) != 0) {
		fprintf(stderr, "porthole: %s\n", err);
		return MAIN_EXIT_USAGE;
	}
	buf_init(&resp, CLIENT_AWSAPI_MAX_RESPONSE);
	err[0] = '\0';
	rc = client_awsapi_call(&main_cfg, "AmazonSSM.StartSession", "ssm",
	    req, &status, &resp, err, sizeof(err));
	free(req);
	if (rc != 0) {
		/* Like the CLI: the message on stderr, exit status 255. */
		fprintf(stderr, "\n%s\n", err[0] ? err : ph_strerror(rc));
		buf_free(&resp);
		return MAIN_EXIT_API;
	}
	rc = client_start_response_parse(&r, (const char *)resp.data,
	    resp.len, 1, err, sizeof(err));
	buf_free(&resp);
	if (rc != 0) {
		fprintf(stderr, "\nporthole: unusable StartSession response: "
		    "%s\n", err);
		return MAIN_EXIT_API;
	}
	sp.session_id = r.session_id;
	sp.token = r.token;
	sp.stream_url = r.stream_url;
	sp.target = a->target;
	sp.ca_file = main_ca_bundle();
	sp.plugin_mode = 0;
	sp.resume = main_resume;
	sp.terminate = main_terminate;
	sp.kms_data_key = main_kms;
	rc = client_session_run(&sp);
	client_start_response_free(&r);
	client_awscfg_clear(&main_cfg);
	return rc;
}

static int
main_porthole(int argc, char **argv)
{
	struct client_cli_args a;

	/* Session records (logs.c), with options of their own. */
	if (argc > 1 && (strcmp(argv[1], "logs") == 0 ||
	    strcmp(argv[1], "replay") == 0))
		return client_logs_main(argc - 1, argv + 1);
	/* The audit trail has its own options (client/audit.h). */
	if (argc >= 2 && strcmp(argv[1], "audit") == 0)
		return client_audit_main(argc - 1, argv + 1);
	/* Run Command (client/sendcmd.h). */
	if (argc >= 2 && strcmp(argv[1], "send-command") == 0)
		return client_sendcmd_main(argc - 1, argv + 1);
	if (client_cli_parse(&a, argc, argv) != 0) {
		fprintf(stderr, "porthole: %s\n\n", a.err);
		main_synopsis(stderr);
		return MAIN_EXIT_USAGE;
	}
	switch (a.action) {
	case CLIENT_CLI_HELP:
		main_usage(stdout);
		return 0;
	case CLIENT_CLI_VERSION:
		printf("%s\n", PORTHOLE_CLIENT_VERSION);
		return 0;
	case CLIENT_CLI_START_SESSION:
		return main_start_session(&a);
	case CLIENT_CLI_USAGE:
		break;
	}
	main_synopsis(stderr);
	return MAIN_EXIT_USAGE;
}

int
main(int argc, char **argv)
{
	struct proxy_config *px = NULL;
	char err[300];
	int rc;

	log_set_program("porthole");
	/* Quiet by default: the terminal belongs to the remote session.
	 * PORTHOLE_LOG=debug|info|... overrides. */
	log_set_level(LOG_ERROR);
	log_init_from_env();
	/* Before any thread exists (ResumeSession runs on a worker). */
	curl_global_init(CURL_GLOBAL_DEFAULT);
	/* https_proxy/no_proxy for every request and the data channel. */
	if (proxy_config_from_env(&px, err, sizeof(err)) != 0) {
		fprintf(stderr, "porthole: %s\n", err);
		return 1;
	}
	proxy_set_default(px);
	client_tty_init();
	if (client_invoked_as_plugin(argv[0]))
		rc = main_plugin(argc, argv);
	else
		rc = main_porthole(argc, argv);
	fflush(stdout);
	return rc;
}
