/* cmdstore: Run Command's files under STATE_DIR/commands (0700):
 *   replies/<MessageId>.json  an agent_job_reply not yet acknowledged
 *                             (0600): {"messageId","commandId","final",
 *                             "createdMs","payload"}
 *   <CommandId>/              one command's directory: state.json, the
 *                             steps' scripts and whole output
 * Replies are written (fsync, rename) before they are sent and deleted on
 * agent_job_reply_ack. */
#ifndef PORTHOLE_AGENT_CMDSTORE_H
#define PORTHOLE_AGENT_CMDSTORE_H

#include <stddef.h>
#include <stdint.h>

/* Replies read back per pass, at most. */
#define CMDSTORE_LIST_MAX 256

struct cmdstore_reply {
	uint8_t id[16];
	char command_id[65];
	int final;
	uint64_t created_ms;
	char *payload;
};

/* Create root and root/replies (0700). */
int cmdstore_prepare(const char *root);
int cmdstore_reply_save(const char *root, const uint8_t id[16],
    const char *command_id, int final, uint64_t created_ms,
    const char *payload);
/* 0, or PH_ERR_NOTFOUND when there was no such reply. */
int cmdstore_reply_delete(const char *root, const uint8_t id[16]);
/* Read the stored reply id into r and delete its file: PH_ERR_NOTFOUND
 * when there is none. */
int cmdstore_reply_take(const char *root, const uint8_t id[16],
    struct cmdstore_reply *r);
/* Up to max stored replies, oldest first (malloc'd array, free with
 * cmdstore_replies_free). Unreadable files are removed. */
int cmdstore_reply_list(const char *root, struct cmdstore_reply **out,
    size_t *n, size_t max);
void cmdstore_replies_free(struct cmdstore_reply *r, size_t n);
/* Parse one stored reply file's text. */
int cmdstore_reply_parse(const char *text, size_t len,
    struct cmdstore_reply *r);

/* Remove a directory tree (a command's directory; depth bounded, no
 * symlinks followed). */
int cmdstore_rmtree(const char *path);
/* Read at most max bytes from the start of path (a missing file is empty).
 * *out is malloc'd and NUL-terminated. */
int cmdstore_read_head(const char *path, size_t max, char **out,
    size_t *len);

#endif
