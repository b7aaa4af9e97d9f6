/* store_journal: the state changes the store could not write yet (disk
 * full, I/O error), kept in memory until writes succeed again. One entry
 * per session or instance: a later change of the same record merges into
 * its pending entry, which moves to the end, so entries are written in
 * the order of their latest change. Bounded; no I/O of its own (store.c
 * writes the entries and reads them to show the state meanwhile). */
#ifndef PORTHOLE_STORE_JOURNAL_H
#define PORTHOLE_STORE_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "server/store.h"

#define STORE_JOURNAL_MAX 16384

enum sj_kind {
	SJ_SESSION = 1,
	SJ_INSTANCE = 2,
};

enum sj_ping {
	SJ_PING_SAME = 0,          /* not changed */
	SJ_PING_ONLINE,
	SJ_PING_LOST,
};

struct sj_entry {
	struct sj_entry *prev, *next;
	enum sj_kind kind;
	char id[SESSION_ID_MAX];
	/* SJ_SESSION: the status to set and its reason ("" keeps details) */
	char status[16];
	char *reason;
	int64_t at_ms;
	/* SJ_INSTANCE */
	enum sj_ping ping;
	int has_info;              /* the fields below were reported */
	char agent_version[32];
	char platform_type[16];
	char platform_name[128];
	char platform_version[64];
	char ip_address[64];
	char computer_name[256];
	int64_t last_ping_ms;      /* 0: not changed */
};

struct store_journal;

int sj_new(struct store_journal **out, size_t max);
void sj_free(struct store_journal *j);
size_t sj_count(const struct store_journal *j);

/* A session status change. Terminal states (Terminated, Failed) are final
 * here too: PH_ERR_STATE if a different one is pending, 0 (nothing to
 * do) for a repeat. PH_ERR_TOOBIG when the journal is full. */
int sj_session(struct store_journal *j, const char *session_id,
    const char *status, const char *reason, int64_t at_ms);
/* Instance transitions, as store_instance_connected/disconnected/seen.
 * A "seen" that finds the journal full is dropped (the next keep-alive
 * refreshes it) and returns 0. */
int sj_instance_connected(struct store_journal *j, const char *instance_id,
    const struct instance_conn_info *info, int64_t at_ms);
int sj_instance_disconnected(struct store_journal *j,
    const char *instance_id);
int sj_instance_seen(struct store_journal *j, const char *instance_id,
    int64_t at_ms);

/* The pending entry of a record, or NULL. */
const struct sj_entry *sj_find(const struct store_journal *j,
    enum sj_kind kind, const char *id);
/* The oldest pending entry, or NULL; sj_drop removes one once written
 * (or found pointless). */
const struct sj_entry *sj_first(const struct store_journal *j);
void sj_drop(struct store_journal *j, const struct sj_entry *e);

int sj_is_terminal(const char *status);

#endif
