/* porthole-agent: enrol this machine (`register`), then keep its control
 * channel to portholed open and run sessions (`run`). It never listens on
 * any port. */
#include <curl/curl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "agent/control.h"
#include "agent/record_upload.h"
#include "agent/register.h"
#include "agent/runcommand.h"
#include "agent/state.h"
#include "agent/update.h"
#include "agent/version.h"
#include "common/err.h"
#include "common/log.h"
#include "common/tls.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: porthole-agent register (--endpoint URL | --region R) "
	    "--ca FILE\n"
	    "                               --code CODE --id ID\n"
	    "                               [--state-dir DIR] [--name NAME]\n"
	    "                               [--proxy URL] [--no-proxy LIST]\n"
	    "       porthole-agent run [--state-dir DIR]\n"
	    "       porthole-agent version\n"
	    "\n"
	    "The state directory (default %s, or $PORTHOLE_AGENT_STATE_DIR)\n"
	    "holds key.pem, cert.pem, ca.pem and agent.json. Setting in\n"
	    "agent.json: \"SudoersEntry\": false stops the agent from creating\n"
	    "/etc/sudoers.d/ssm-agent-users when it creates ssm-user;\n"
	    "\"RecordSessions\": false records no session;\n"
	    "\"RecordSpoolMaxBytes\": N bounds the session records not yet\n"
	    "delivered to portholed (default 256 MiB; see docs/operator.md);\n"
	    "\"Proxy\": {\"Url\": \"http://host:port\", \"NoProxy\": \"a\"}\n"
	    "sends everything through an HTTP CONNECT proxy (without it:\n"
	    "https_proxy and no_proxy; register --proxy saves it).\n"
	    "--region R without --endpoint: https://ssm.R.amazonaws.com,\n"
	    "as AWS's agent derives it (a private DNS name for portholed).\n"
	    "Logging level: PORTHOLE_LOG=debug|info|warn|error.\n",
	    AGENT_STATE_DIR_DEFAULT);
}

static const char *
default_state_dir(void)
{
	const char *d = getenv("PORTHOLE_AGENT_STATE_DIR");

	return d != NULL && d[0] != '\0' ? d : AGENT_STATE_DIR_DEFAULT;
}

static int
cmd_register(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "endpoint", required_argument, NULL, 'e' },
		{ "ca", required_argument, NULL, 'c' },
		{ "code", required_argument, NULL, 'k' },
		{ "id", required_argument, NULL, 'i' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "name", required_argument, NULL, 'n' },
		{ "proxy", required_argument, NULL, 'p' },
		{ "no-proxy", required_argument, NULL, 'x' },
		{ "region", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct agent_register_opts o;
	const char *region = NULL;
	char endpoint[128];
	int ch, rc;

	memset(&o, 0, sizeof(o));
	o.state_dir = default_state_dir();
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'e': o.endpoint = optarg; break;
		case 'c': o.ca_file = optarg; break;
		case 'k': o.code = optarg; break;
		case 'i': o.id = optarg; break;
		case 's': o.state_dir = optarg; break;
		case 'n': o.name = optarg; break;
		case 'p': o.proxy = optarg; break;
		case 'x': o.no_proxy = optarg; break;
		case 'r': region = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	/* As AWS's agent: the region names the endpoint unless one is
	 * given. */
	if (o.endpoint == NULL && region != NULL) {
		if (agent_register_region_endpoint(region, endpoint,
		    sizeof(endpoint)) != 0) {
			fprintf(stderr, "porthole-agent: --region must be a "
			    "region name such as us-east-1\n");
			return 2;
		}
		o.endpoint = endpoint;
	}
	if (optind != argc || o.endpoint == NULL || o.ca_file == NULL ||
	    o.code == NULL || o.id == NULL) {
		fprintf(stderr, "porthole-agent: register needs --endpoint "
		    "(or --region), --ca, --code and --id\n");
		usage(stderr);
		return 2;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "porthole-agent: cannot initialise libcurl\n");
		return 1;
	}
	rc = agent_register_run(&o);
	curl_global_cleanup();
	return rc;
}

struct run_ctx {
	uv_loop_t *loop;
	struct agent_control *ctl;
	struct runcommand *rc;
	uv_signal_t sigterm, sigint;
	int stopping;
};

static void
on_stopped(void *arg)
{
	struct run_ctx *r = arg;

	r->ctl = NULL; /* freed, or abandoned on a forced stop */
	uv_stop(r->loop);
}

/* Run Command stopped (its steps killed, their results on disk): now the
 * control channel. */
static void
on_runcommand_stopped(void *arg)
{
	struct run_ctx *r = arg;

	r->rc = NULL;
	agent_control_set_runcommand(r->ctl, NULL);
	agent_control_shutdown(r->ctl, on_stopped, r);
}

static void
on_signal(uv_signal_t *h, int signum)
{
	struct run_ctx *r = h->data;

	if (r->stopping)
		return;
	r->stopping = 1;
	log_info("event=signal signal=%s", signum == SIGTERM ? "TERM" : "INT");
	/* A second signal then kills the agent the default way. */
	uv_signal_stop(&r->sigterm);
	uv_signal_stop(&r->sigint);
	uv_close((uv_handle_t *)&r->sigterm, NULL);
	uv_close((uv_handle_t *)&r->sigint, NULL);
	if (r->rc != NULL)
		runcommand_shutdown(r->rc, on_runcommand_stopped, r);
	else
		agent_control_shutdown(r->ctl, on_stopped, r);
}

static int
cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "state-dir", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = default_state_dir();
	struct agent_state st;
	struct tls_ctx *tls = NULL;
	struct rec_upload_cfg rc_cfg;
	struct rec_uploader *upl = NULL;
	char rec_dir[AGENT_PATH_MAX + 16];
	struct run_ctx r;
	char err[512];
	int ch, rc;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 's': dir = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (agent_state_load(&st, dir, err, sizeof(err)) != 0) {
		fprintf(stderr, "porthole-agent: %s\n", err);
		return 1;
	}
	rc = tls_ctx_new_client(&tls, st.ca_path, st.cert_path, st.key_path);
	if (rc != 0) {
		fprintf(stderr, "porthole-agent: cannot load the TLS identity "
		    "in %s: %s\n", st.dir, ph_strerror(rc));
		return 1;
	}
	/* A peer that vanished mid-write must not kill the agent. */
	signal(SIGPIPE, SIG_IGN);
	memset(&r, 0, sizeof(r));
	r.loop = uv_default_loop();
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "porthole-agent: cannot initialise libcurl\n");
		tls_ctx_free(tls);
		return 1;
	}
	/* Before anything dials: every route follows these settings. */
	if (agent_proxy_setup(&st, err, sizeof(err)) != 0) {
		fprintf(stderr, "porthole-agent: %s\n", err);
		curl_global_cleanup();
		tls_ctx_free(tls);
		return 1;
	}
	/* Records left by an earlier run are finished and sent first. */
	memset(&rc_cfg, 0, sizeof(rc_cfg));
	snprintf(rec_dir, sizeof(rec_dir), "%s/records", st.dir);
	rc_cfg.dir = rec_dir;
	rc_cfg.endpoint = st.endpoint;
	rc_cfg.ca_file = st.ca_path;
	rc_cfg.cert_file = st.cert_path;
	rc_cfg.key_file = st.key_path;
	rc_cfg.spool_max = st.record_spool_max;
	if (rec_upload_new(&upl, &rc_cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "porthole-agent: %s\n", err);
		tls_ctx_free(tls);
		return 1;
	}
	if (agent_control_new(&r.ctl, r.loop, tls, &st) != 0) {
		fprintf(stderr, "porthole-agent: out of memory\n");
		rec_upload_free(upl);
		tls_ctx_free(tls);
		return 1;
	}
	agent_control_set_recorder(r.ctl, upl);
	/* Commands left unfinished by an earlier run are reported from
	 * here (commands/ in the state directory). */
	if (runcommand_new(&r.rc, r.loop, st.dir, st.instance_id,
	    agent_control_send_frame, r.ctl) != 0) {
		log_error("event=runcommand_unavailable dir=%s/commands",
		    st.dir);
		r.rc = NULL;
	} else {
		runcommand_set_state(r.rc, &st);
		agent_control_set_runcommand(r.ctl, r.rc);
	}
	uv_signal_init(r.loop, &r.sigterm);
	uv_signal_init(r.loop, &r.sigint);
	r.sigterm.data = &r;
	r.sigint.data = &r;
	uv_signal_start(&r.sigterm, on_signal, SIGTERM);
	uv_signal_start(&r.sigint, on_signal, SIGINT);
	log_info("event=agent_start version=%s instance=%s endpoint=%s",
	    agent_version(), st.instance_id, st.endpoint);
	if (st.record_off)
		log_warn("event=recording_off reason=\"agent.json "
		    "RecordSessions is false\"");
	agent_control_start(r.ctl);
	uv_run(r.loop, UV_RUN_DEFAULT);
	log_info("event=agent_stopped");
	/* After a forced stop handles are still open: the process exits
	 * without tearing them down one by one. What is not delivered
	 * stays in the spool for the next start. */
	rec_upload_drain(upl, REC_UPLOAD_DRAIN_MS);
	rec_upload_free(upl);
	if (r.ctl == NULL && uv_loop_close(r.loop) == 0)
		tls_ctx_free(tls);
	curl_global_cleanup();
	return 0;
}

int
main(int argc, char **argv)
{
	log_set_program("porthole-agent");
	log_init_from_env();
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "register") == 0)
		return cmd_register(argc - 1, argv + 1);
	if (strcmp(argv[1], "run") == 0)
		return cmd_run(argc - 1, argv + 1);
	/* Started by an aws:updateSsmAgent step (update.h), not by hand. */
	if (strcmp(argv[1], "update-watchdog") == 0)
		return update_watchdog_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "version") == 0 ||
	    strcmp(argv[1], "--version") == 0) {
		printf("porthole-agent %s\n", agent_version());
		return 0;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "porthole-agent: unknown command %s\n", argv[1]);
	usage(stderr);
	return 2;
}
