/* server: the state one portholed process shares between its modules. */
#ifndef PORTHOLE_SERVER_H
#define PORTHOLE_SERVER_H

#include <uv.h>

/* Files of a data directory (portholed init creates them). */
#define SERVER_DB_FILE "porthole.db"

struct store;
struct gateway;
struct tls_ctx;
struct kms;
struct authz_cache;
struct sink;
struct records;
struct audit;
struct commands;
struct console;

struct server {
	uv_loop_t *loop;
	struct store *store;
	struct gateway *gw;
	struct tls_ctx *tls;
	struct kms *kms;       /* KMS key store; NULL: KMS unavailable */
	struct authz_cache *authz;  /* authz.c's decisions cache, or NULL */
	struct sink *sink;     /* finished records' delivery (sink.c) */
	struct records *records;  /* record appends' queue (records.c) */
	struct audit *audit;   /* the audit trail (audit.h), or NULL */
	struct commands *commands; /* Run Command's dispatcher, or NULL */
	struct console *console;   /* the web console (console.h), or NULL */
	char data_dir[512];
	char region[32];       /* default signing region, e.g. us-east-1 */
	char account_id[13];   /* 12 digits */
	int shutting_down;
	/* config.json RecordingStrict: no session for a bucket while the
	 * sink is unhealthy (records.c). */
	int recording_strict;
};

#endif
