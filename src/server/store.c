/* store: portholed's state in one SQLite file (WAL, foreign keys, busy
 * timeout). Every statement is a constant string with bound parameters.
 * The schema is versioned with PRAGMA user_version; migrations[] holds one
 * step per version. The file and its WAL are created mode 0600 because the
 * IAM secret keys are kept in it as they are (encrypting them under a root
 * key is still to do). */
#include "server/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sqlite3.h>

#include "common/err.h"
#include "common/log.h"
#include "server/authz.h"
#include "server/store_iam.h"
#include "server/store_internal.h"
#include "server/store_journal.h"

#define STORE_BUSY_TIMEOUT_MS 5000
#define STORE_SALT_LEN 16
#define STORE_HASH_LEN 32
/* botocore TokenValue: at most 300 characters. */
#define STORE_TOKEN_MAX_LEN 300
#define STORE_FIELD_MAX 1024



/* ---- schema ------------------------------------------------------------- */

static const char *const migrations[] = {
	/* version 1 */
	"CREATE TABLE iam_users ("
	" name TEXT PRIMARY KEY,"
	" arn TEXT NOT NULL UNIQUE,"
	" is_root_admin INTEGER NOT NULL DEFAULT 0,"
	" active INTEGER NOT NULL DEFAULT 1,"
	" created_ms INTEGER NOT NULL);"
	"CREATE TABLE iam_access_keys ("
	" akid TEXT PRIMARY KEY,"
	" user_name TEXT NOT NULL REFERENCES iam_users(name)"
	"  ON DELETE CASCADE,"
	" secret TEXT NOT NULL,"
	" active INTEGER NOT NULL DEFAULT 1,"
	" created_ms INTEGER NOT NULL);"
	"CREATE INDEX iam_access_keys_user ON iam_access_keys(user_name);"
	"CREATE TABLE activations ("
	" id TEXT PRIMARY KEY,"
	" code_salt BLOB NOT NULL,"
	" code_hash BLOB NOT NULL,"
	" iam_role TEXT NOT NULL,"
	" description TEXT NOT NULL DEFAULT '',"
	" default_instance_name TEXT NOT NULL DEFAULT '',"
	" registration_limit INTEGER NOT NULL,"
	" registrations_count INTEGER NOT NULL DEFAULT 0,"
	" expiration_ms INTEGER NOT NULL,"
	" created_ms INTEGER NOT NULL);"
	"CREATE TABLE instances ("
	" id TEXT PRIMARY KEY,"
	" name TEXT NOT NULL DEFAULT '',"
	" activation_id TEXT NOT NULL DEFAULT '',"
	" iam_role TEXT NOT NULL DEFAULT '',"
	" registration_ms INTEGER NOT NULL,"
	" cert_serial TEXT NOT NULL DEFAULT '',"
	" cert_fingerprint TEXT NOT NULL DEFAULT '',"
	" deregistered INTEGER NOT NULL DEFAULT 0,"
	" deregistered_ms INTEGER NOT NULL DEFAULT 0,"
	" ping_status TEXT NOT NULL DEFAULT 'ConnectionLost',"
	" last_ping_ms INTEGER NOT NULL DEFAULT 0,"
	" agent_version TEXT NOT NULL DEFAULT '',"
	" platform_type TEXT NOT NULL DEFAULT '',"
	" platform_name TEXT NOT NULL DEFAULT '',"
	" platform_version TEXT NOT NULL DEFAULT '',"
	" ip_address TEXT NOT NULL DEFAULT '',"
	" computer_name TEXT NOT NULL DEFAULT '');"
	"CREATE TABLE tags ("
	" resource_type TEXT NOT NULL,"
	" resource_id TEXT NOT NULL,"
	" key TEXT NOT NULL,"
	" value TEXT NOT NULL,"
	" PRIMARY KEY (resource_type, resource_id, key));"
	"CREATE TABLE sessions ("
	" id TEXT PRIMARY KEY,"
	" target TEXT NOT NULL,"
	" owner TEXT NOT NULL,"
	" status TEXT NOT NULL,"
	" document_name TEXT NOT NULL,"
	" reason TEXT NOT NULL DEFAULT '',"
	" details TEXT NOT NULL DEFAULT '',"
	" max_session_duration TEXT NOT NULL DEFAULT '',"
	" start_ms INTEGER NOT NULL,"
	" end_ms INTEGER NOT NULL DEFAULT 0,"
	" token_hash BLOB,"
	" token_expiry_ms INTEGER NOT NULL DEFAULT 0,"
	" token_used INTEGER NOT NULL DEFAULT 1);"
	"CREATE INDEX sessions_start ON sessions(start_ms);"
	"CREATE INDEX sessions_status ON sessions(status);"
	"CREATE TABLE documents ("
	" name TEXT PRIMARY KEY,"
	" document_type TEXT NOT NULL,"
	" content TEXT NOT NULL,"
	" builtin INTEGER NOT NULL DEFAULT 0,"
	" created_ms INTEGER NOT NULL);"
	"PRAGMA user_version = 1;",
	/* version 2: document versions. documents.content stays the default
	 * version's content; the triggers keep version 1 of a built-in
	 * document in step with what st_seed_documents writes. */
	"CREATE TABLE document_versions ("
	" name TEXT NOT NULL REFERENCES documents(name) ON DELETE CASCADE,"
	" version INTEGER NOT NULL,"
	" content TEXT NOT NULL,"
	" document_format TEXT NOT NULL DEFAULT 'JSON',"
	" version_name TEXT NOT NULL DEFAULT '',"
	" created_ms INTEGER NOT NULL,"
	" PRIMARY KEY (name, version));"
	"ALTER TABLE documents ADD COLUMN default_version INTEGER NOT NULL "
	" DEFAULT 1;"
	"ALTER TABLE documents ADD COLUMN latest_version INTEGER NOT NULL "
	" DEFAULT 1;"
	"ALTER TABLE documents ADD COLUMN display_name TEXT NOT NULL "
	" DEFAULT '';"
	"ALTER TABLE documents ADD COLUMN target_type TEXT NOT NULL "
	" DEFAULT '';"
	"INSERT INTO document_versions (name, version, content, created_ms)"
	" SELECT name, 1, content, created_ms FROM documents;"
	"CREATE TRIGGER documents_builtin_insert AFTER INSERT ON documents"
	" WHEN NEW.builtin = 1 BEGIN"
	" INSERT OR REPLACE INTO document_versions (name, version, content,"
	"  created_ms) VALUES (NEW.name, 1, NEW.content, NEW.created_ms);"
	" END;"
	"CREATE TRIGGER documents_builtin_update AFTER UPDATE OF content ON"
	" documents WHEN NEW.builtin = 1 BEGIN"
	" UPDATE document_versions SET content = NEW.content"
	"  WHERE name = NEW.name AND version = 1;"
	" END;"
	"PRAGMA user_version = 2;",
	/* version 3: IAM (store_iam.c) and STS credentials (store_sts.c).
	 * Names are unique case-insensitively, as IAM's are; user ids of
	 * rows written before this version are given at open, in C. */
	"ALTER TABLE iam_users ADD COLUMN user_id TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE iam_users ADD COLUMN path TEXT NOT NULL DEFAULT '/';"
	"ALTER TABLE iam_users ADD COLUMN password_last_used_ms INTEGER"
	" NOT NULL DEFAULT 0;"
	"CREATE UNIQUE INDEX iam_users_lname ON iam_users(lower(name));"
	"ALTER TABLE iam_access_keys ADD COLUMN last_used_ms INTEGER NOT NULL"
	" DEFAULT 0;"
	"ALTER TABLE iam_access_keys ADD COLUMN last_used_service TEXT NOT NULL"
	" DEFAULT '';"
	"ALTER TABLE iam_access_keys ADD COLUMN last_used_region TEXT NOT NULL"
	" DEFAULT '';"
	"CREATE TABLE iam_login_profiles ("
	" user_name TEXT PRIMARY KEY,"
	" salt BLOB NOT NULL,"
	" hash BLOB NOT NULL,"
	" scrypt_n INTEGER NOT NULL,"
	" scrypt_r INTEGER NOT NULL,"
	" scrypt_p INTEGER NOT NULL,"
	" password_reset_required INTEGER NOT NULL DEFAULT 0,"
	" created_ms INTEGER NOT NULL);"
	"CREATE TABLE iam_groups ("
	" name TEXT PRIMARY KEY,"
	" group_id TEXT NOT NULL,"
	" path TEXT NOT NULL DEFAULT '/',"
	" arn TEXT NOT NULL UNIQUE,"
	" created_ms INTEGER NOT NULL);"
	"CREATE UNIQUE INDEX iam_groups_lname ON iam_groups(lower(name));"
	"CREATE TABLE iam_group_members ("
	" group_name TEXT NOT NULL,"
	" user_name TEXT NOT NULL,"
	" added_ms INTEGER NOT NULL,"
	" PRIMARY KEY (group_name, user_name));"
	"CREATE INDEX iam_group_members_user ON iam_group_members(user_name);"
	"CREATE TABLE iam_roles ("
	" name TEXT PRIMARY KEY,"
	" role_id TEXT NOT NULL,"
	" path TEXT NOT NULL DEFAULT '/',"
	" arn TEXT NOT NULL UNIQUE,"
	" trust_policy TEXT NOT NULL,"
	" description TEXT NOT NULL DEFAULT '',"
	" max_session_duration INTEGER NOT NULL DEFAULT 3600,"
	" created_ms INTEGER NOT NULL);"
	"CREATE UNIQUE INDEX iam_roles_lname ON iam_roles(lower(name));"
	"CREATE TABLE iam_inline_policies ("
	" entity_type TEXT NOT NULL,"
	" entity_name TEXT NOT NULL,"
	" policy_name TEXT NOT NULL,"
	" document TEXT NOT NULL,"
	" PRIMARY KEY (entity_type, entity_name, policy_name));"
	"CREATE TABLE iam_policies ("
	" arn TEXT PRIMARY KEY,"
	" name TEXT NOT NULL,"
	" policy_id TEXT NOT NULL,"
	" path TEXT NOT NULL DEFAULT '/',"
	" description TEXT NOT NULL DEFAULT '',"
	" default_version TEXT NOT NULL DEFAULT 'v1',"
	" next_version INTEGER NOT NULL DEFAULT 2,"
	" is_aws INTEGER NOT NULL DEFAULT 0,"
	" created_ms INTEGER NOT NULL,"
	" updated_ms INTEGER NOT NULL);"
	"CREATE UNIQUE INDEX iam_policies_lname ON iam_policies(is_aws,"
	" lower(name));"
	"CREATE TABLE iam_policy_versions ("
	" policy_arn TEXT NOT NULL,"
	" version_id TEXT NOT NULL,"
	" document TEXT NOT NULL,"
	" created_ms INTEGER NOT NULL,"
	" PRIMARY KEY (policy_arn, version_id));"
	"CREATE TABLE iam_attachments ("
	" entity_type TEXT NOT NULL,"
	" entity_name TEXT NOT NULL,"
	" policy_arn TEXT NOT NULL,"
	" PRIMARY KEY (entity_type, entity_name, policy_arn));"
	"CREATE INDEX iam_attachments_policy ON iam_attachments(policy_arn);"
	"CREATE TABLE sts_credentials (akid TEXT PRIMARY KEY, secret TEXT NOT"
	" NULL, token_hash BLOB NOT NULL, role_name TEXT NOT NULL, session_name"
	" TEXT NOT NULL, source_arn TEXT NOT NULL, expiry_ms INTEGER NOT NULL,"
	" created_ms INTEGER NOT NULL);"
	"PRAGMA user_version = 3;",
	/* version 4: the session policies of a role session (store_sts.c):
	 * the inline document and a JSON array of managed policy ARNs, ''
	 * when none was given. */
	"ALTER TABLE sts_credentials ADD COLUMN session_policy TEXT NOT NULL"
	" DEFAULT '';"
	"ALTER TABLE sts_credentials ADD COLUMN session_policy_arns TEXT NOT"
	" NULL DEFAULT '';"
	"PRAGMA user_version = 4;",
	/* version 5: the sink's delivery queue (store_sink.c): one row per
	 * file of a finished record, kept after delivery for OutputUrl.
	 * state: 0 queued, 1 delivered, 2 lost (the file vanished). */
	"CREATE TABLE sink_queue ("
	" session_id TEXT NOT NULL,"
	" path TEXT NOT NULL,"
	" bucket TEXT NOT NULL DEFAULT '',"
	" object_key TEXT NOT NULL DEFAULT '',"
	" sse INTEGER NOT NULL DEFAULT 0,"
	" kms_key_id TEXT NOT NULL DEFAULT '',"
	" url TEXT NOT NULL DEFAULT '',"
	" queued_ms INTEGER NOT NULL,"
	" next_ms INTEGER NOT NULL DEFAULT 0,"
	" attempts INTEGER NOT NULL DEFAULT 0,"
	" state INTEGER NOT NULL DEFAULT 0,"
	" done_ms INTEGER NOT NULL DEFAULT 0,"
	" PRIMARY KEY (session_id, path));"
	"CREATE INDEX sink_queue_due ON sink_queue (state, next_ms);"
	"PRAGMA user_version = 5;",
	/* version 6: session records (store_records.c): the recording
	 * preferences each session started with, and the record's state.
	 * The bytes are files under DATA_DIR/records/. */
	"CREATE TABLE session_records ("
	" session_id TEXT PRIMARY KEY,"
	" s3_bucket TEXT NOT NULL DEFAULT '',"
	" s3_prefix TEXT NOT NULL DEFAULT '',"
	" s3_encrypt INTEGER NOT NULL DEFAULT 0,"
	" kms_key_id TEXT NOT NULL DEFAULT '',"
	" complete INTEGER NOT NULL DEFAULT 0,"
	" length INTEGER NOT NULL DEFAULT 0,"
	" completed_ms INTEGER NOT NULL DEFAULT 0,"
	" rendered INTEGER NOT NULL DEFAULT 0,"
	" created_ms INTEGER NOT NULL);"
	"CREATE INDEX session_records_pending ON session_records"
	"(complete, rendered);"
	"PRAGMA user_version = 6;",
	/* version 7: Run Command (store_commands.c): one row per SendCommand
	 * and one per target instance. JSON columns hold what the API shows
	 * (Parameters, Targets, CommandPlugins) as text. */
	"CREATE TABLE commands ("
	" command_id TEXT PRIMARY KEY,"
	" document_name TEXT NOT NULL,"
	" document_version TEXT NOT NULL DEFAULT '',"
	" comment TEXT,"
	" parameters_json TEXT NOT NULL DEFAULT '{}',"
	" targets_json TEXT NOT NULL DEFAULT '[]',"
	" instance_ids_json TEXT NOT NULL DEFAULT '[]',"
	" content_json TEXT NOT NULL DEFAULT '{}',"
	" owner_arn TEXT NOT NULL DEFAULT '',"
	" requested_ms INTEGER NOT NULL,"
	" expires_ms INTEGER NOT NULL,"
	" timeout_seconds INTEGER NOT NULL,"
	" max_concurrency TEXT NOT NULL DEFAULT '50',"
	" max_errors TEXT NOT NULL DEFAULT '0',"
	" status TEXT NOT NULL,"
	" status_details TEXT NOT NULL DEFAULT '',"
	" target_count INTEGER NOT NULL DEFAULT 0,"
	" completed_count INTEGER NOT NULL DEFAULT 0,"
	" error_count INTEGER NOT NULL DEFAULT 0,"
	" delivery_timed_out_count INTEGER NOT NULL DEFAULT 0,"
	" output_s3_bucket TEXT,"
	" output_s3_prefix TEXT,"
	" output_s3_region TEXT,"
	" service_role_arn TEXT,"
	" notification_json TEXT,"
	" cloudwatch_json TEXT,"
	" alarm_json TEXT);"
	"CREATE INDEX commands_requested ON commands (requested_ms);"
	"CREATE INDEX commands_status ON commands (status);"
	"CREATE TABLE command_invocations ("
	" command_id TEXT NOT NULL REFERENCES commands(command_id)"
	"  ON DELETE CASCADE,"
	" instance_id TEXT NOT NULL,"
	" instance_name TEXT NOT NULL DEFAULT '',"
	" seq INTEGER NOT NULL,"
	" status TEXT NOT NULL,"
	" status_details TEXT NOT NULL DEFAULT '',"
	" requested_ms INTEGER NOT NULL,"
	" delivered_ms INTEGER NOT NULL DEFAULT 0,"
	" started_ms INTEGER NOT NULL DEFAULT 0,"
	" ended_ms INTEGER NOT NULL DEFAULT 0,"
	" response_code INTEGER NOT NULL DEFAULT -1,"
	" stdout_text TEXT NOT NULL DEFAULT '',"
	" stderr_text TEXT NOT NULL DEFAULT '',"
	" stdout_url TEXT,"
	" stderr_url TEXT,"
	" plugins_json TEXT NOT NULL DEFAULT '[]',"
	" PRIMARY KEY (command_id, instance_id));"
	"CREATE INDEX command_invocations_instance ON command_invocations"
	" (instance_id, requested_ms);"
	"PRAGMA user_version = 7;",
	/* version 8: hosted agent builds (agent_packages.c). The bytes are
	 * files under DATA_DIR/agent-packages/; the signature is portholed's
	 * over platform, version and SHA-256 (common/pkgsig.h). */
	"CREATE TABLE agent_packages ("
	" platform TEXT NOT NULL,"
	" version TEXT NOT NULL,"
	" sha256 TEXT NOT NULL,"
	" size INTEGER NOT NULL,"
	" signature TEXT NOT NULL,"
	" file TEXT NOT NULL,"
	" created_ms INTEGER NOT NULL,"
	" PRIMARY KEY (platform, version));"
	"PRAGMA user_version = 8;",
	/* version 9: web console sessions (store_console.c), keyed by the
	 * SHA-256 of the cookie token, and the temporary credentials of an
	 * IAM user issued under one (store_sts_issue_user): user_name set
	 * instead of role_name, console_session the session's id. */
	"CREATE TABLE console_sessions ("
	" id TEXT PRIMARY KEY,"
	" user_name TEXT NOT NULL,"
	" csrf TEXT NOT NULL,"
	" source_ip TEXT NOT NULL DEFAULT '',"
	" created_ms INTEGER NOT NULL,"
	" expiry_ms INTEGER NOT NULL);"
	"ALTER TABLE sts_credentials ADD COLUMN user_name TEXT NOT NULL"
	" DEFAULT '';"
	"ALTER TABLE sts_credentials ADD COLUMN console_session TEXT NOT NULL"
	" DEFAULT '';"
	"CREATE INDEX sts_credentials_console ON sts_credentials"
	" (console_session);"
	"PRAGMA user_version = 9;",
};

#define STORE_SCHEMA_VERSION \
	((int)(sizeof(migrations) / sizeof(migrations[0])))

/* The session documents AWS provides in every account (spec 9.1, 9.4).
 * Re-written at every start so a new release updates them. */
#define PORT_PATTERN \
	"^([1-9]|[1-9][0-9]{1,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|" \
	"65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$"
#define LOCAL_PORT_PATTERN \
	"^([0-9]|[1-9][0-9]{1,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|" \
	"65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$"
#define SHELL_PROPS(cmd) \
	"{\"windows\":{\"commands\":\"" cmd "\",\"runAsElevated\":false}," \
	"\"linux\":{\"commands\":\"" cmd "\",\"runAsElevated\":false}," \
	"\"macos\":{\"commands\":\"" cmd "\",\"runAsElevated\":false}}"

static const struct {
	const char *name;
	const char *content;
} builtin_docs[] = {
	{ "SSM-SessionManagerRunShell",
	  "{\"schemaVersion\":\"1.0\","
	  "\"description\":\"Document to hold regional settings for Session "
	  "Manager\",\"sessionType\":\"Standard_Stream\","
	  "\"inputs\":{\"s3BucketName\":\"\",\"s3KeyPrefix\":\"\","
	  "\"s3EncryptionEnabled\":true,\"cloudWatchLogGroupName\":\"\","
	  "\"cloudWatchEncryptionEnabled\":true,"
	  "\"cloudWatchStreamingEnabled\":true,"
	  "\"idleSessionTimeout\":\"20\",\"maxSessionDuration\":\"\","
	  "\"kmsKeyId\":\"\",\"runAsEnabled\":false,"
	  "\"runAsDefaultUser\":\"\","
	  "\"shellProfile\":{\"windows\":\"\",\"linux\":\"\"}}}" },
	{ "AWS-StartInteractiveCommand",
	  "{\"schemaVersion\":\"1.0\","
	  "\"description\":\"Document to run a single interactive command on "
	  "an instance\",\"sessionType\":\"InteractiveCommands\","
	  "\"parameters\":{\"command\":{\"type\":\"String\","
	  "\"description\":\"The command to run on the instance\"}},"
	  "\"properties\":" SHELL_PROPS("{{ command }}") "}" },
	{ "AWS-StartNonInteractiveCommand",
	  "{\"schemaVersion\":\"1.0\","
	  "\"description\":\"Document to run a single command on an instance "
	  "without a terminal\",\"sessionType\":\"NonInteractiveCommands\","
	  "\"parameters\":{\"command\":{\"type\":\"String\","
	  "\"description\":\"The command to run on the instance\"}},"
	  "\"properties\":" SHELL_PROPS("{{ command }}") "}" },
	{ "AWS-StartPortForwardingSession",
	  "{\"schemaVersion\":\"1.0\","
	  "\"description\":\"Document to start a port forwarding session\","
	  "\"sessionType\":\"Port\","
	  "\"parameters\":{\"portNumber\":{\"type\":\"String\","
	  "\"description\":\"(Optional) Port number on the instance\","
	  "\"allowedPattern\":\"" PORT_PATTERN "\",\"default\":\"80\"},"
	  "\"localPortNumber\":{\"type\":\"String\","
	  "\"description\":\"(Optional) Local port number; 0 picks a free "
	  "one\",\"allowedPattern\":\"" LOCAL_PORT_PATTERN "\","
	  "\"default\":\"0\"}},"
	  "\"properties\":{\"portNumber\":\"{{ portNumber }}\","
	  "\"type\":\"LocalPortForwarding\","
	  "\"localPortNumber\":\"{{ localPortNumber }}\"}}" },
	{ "AWS-StartPortForwardingSessionToRemoteHost",
	  "{\"schemaVersion\":\"1.0\","
	  "\"description\":\"Document to start a port forwarding session to "
	  "a remote host\",\"sessionType\":\"Port\","
	  "\"parameters\":{\"host\":{\"type\":\"String\","
	  "\"description\":\"Host name or IP address of the destination\","
	  "\"allowedPattern\":\"^[a-zA-Z0-9._:%-]{1,253}$\"},"
	  "\"portNumber\":{\"type\":\"String\","
	  "\"description\":\"(Optional) Port number on the remote host\","
	  "\"allowedPattern\":\"" PORT_PATTERN "\",\"default\":\"80\"},"
	  "\"localPortNumber\":{\"type\":\"String\","
	  "\"description\":\"(Optional) Local port number; 0 picks a free "
	  "one\",\"allowedPattern\":\"" LOCAL_PORT_PATTERN "\","
	  "\"default\":\"0\"}},"
	  "\"properties\":{\"portNumber\":\"{{ portNumber }}\","
	  "\"type\":\"LocalPortForwarding\","
	  "\"localPortNumber\":\"{{ localPortNumber }}\","
	  "\"host\":\"{{ host }}\"}}" },
	{ "AWS-StartSSHSession",
	  "{\"schemaVersion\":\"1.0\","
	  "\"description\":\"Document to start an SSH session\","
	  "\"sessionType\":\"Port\","
	  "\"parameters\":{\"portNumber\":{\"type\":\"String\","
	  "\"description\":\"(Optional) Port number of the SSH server\","
	  "\"allowedPattern\":\"" PORT_PATTERN "\",\"default\":\"22\"}},"
	  "\"properties\":{\"portNumber\":\"{{ portNumber }}\"}}" },
};

/* The Command documents AWS provides in every account (issue 12), with
 * AWS's content: schema 1.2, so the same bytes AWS serves. */
#define EXEC_TIMEOUT_PATTERN \
	"([1-9][0-9]{0,4})|(1[0-6][0-9]{4})|(17[0-1][0-9]{3})|" \
	"(172[0-7][0-9]{2})|(172800)"
#define SCRIPT_DOC(desc, cmddesc, timeoutdesc, plugin) \
	"{\"schemaVersion\":\"1.2\",\"description\":\"" desc "\"," \
	"\"parameters\":{\"commands\":{\"type\":\"StringList\"," \
	"\"description\":\"" cmddesc "\",\"minItems\":1," \
	"\"displayType\":\"textarea\"},\"workingDirectory\":{" \
	"\"type\":\"String\",\"default\":\"\",\"description\":" \
	"\"(Optional) The path to the working directory on your " \
	"instance.\",\"maxChars\":4096},\"executionTimeout\":{" \
	"\"type\":\"String\",\"default\":\"3600\",\"description\":\"" \
	timeoutdesc "\",\"allowedPattern\":\"" EXEC_TIMEOUT_PATTERN "\"}}," \
	"\"runtimeConfig\":{\"" plugin "\":{\"properties\":[{" \
	"\"id\":\"0." plugin "\",\"runCommand\":\"{{ commands }}\"," \
	"\"workingDirectory\":\"{{ workingDirectory }}\"," \
	"\"timeoutSeconds\":\"{{ executionTimeout }}\"}]}}}"

static const struct {
	const char *name;
	const char *content;
} builtin_command_docs[] = {
	{ "AWS-RunShellScript",
	  SCRIPT_DOC("Run a shell script or specify the commands to run.",
	  "(Required) Specify a shell script or a command to run.",
	  "(Optional) The time in seconds for a command to complete before "
	  "it is considered to have failed. Default is 3600 (1 hour). "
	  "Maximum is 172800 (48 hours).", "aws:runShellScript") },
	{ "AWS-RunPowerShellScript",
	  SCRIPT_DOC("Run a PowerShell script or specify the paths to scripts "
	  "to run.", "(Required) Specify the commands to run or the paths to "
	  "existing scripts on the instance.",
	  "(Optional) The time in seconds for a command to be completed "
	  "before it is considered to have failed. Default is 3600 (1 hour). "
	  "Maximum is 172800 (48 hours).", "aws:runPowerShellScript") },
	{ "AWS-UpdateSSMAgent",
	  "{\"schemaVersion\":\"1.2\",\"description\":\"Update the Amazon SSM "
	  "Agent to the latest version or specified version.\","
	  "\"parameters\":{\"version\":{\"default\":\"\",\"description\":"
	  "\"(Optional) A specific version of the Amazon SSM Agent to "
	  "install. If not specified, the agent will be updated to the latest "
	  "version.\",\"type\":\"String\"},\"allowDowngrade\":{\"default\":"
	  "\"false\",\"description\":\"(Optional) Allow the Amazon SSM Agent "
	  "service to be downgraded to an earlier version. If set to false, "
	  "the service can be upgraded to newer versions only (default). If "
	  "set to true, specify the earlier version.\",\"type\":\"String\","
	  "\"allowedValues\":[\"true\",\"false\"]}},\"runtimeConfig\":{"
	  "\"aws:updateSsmAgent\":{\"properties\":[{\"agentName\":"
	  "\"amazon-ssm-agent\",\"source\":\"https://s3.{Region}.amazonaws.com/"
	  "amazon-ssm-{Region}/ssm-agent-manifest.json\",\"allowDowngrade\":"
	  "\"{{ allowDowngrade }}\",\"targetVersion\":\"{{ version }}\"}]}}}" },
};

/* ---- small helpers ------------------------------------------------------ */

int64_t
st_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
st_prep(struct store *st, const char *sql, sqlite3_stmt **out)
{
	if (sqlite3_prepare_v2(st->db, sql, -1, out, NULL) != SQLITE_OK) {
		log_error("event=store_error op=prepare err=\"%s\"",
		    sqlite3_errmsg(st->db));
		*out = NULL;
		return PH_ERR_IO;
	}
	return 0;
}

int
st_text(sqlite3_stmt *s, int i, const char *v)
{
	if (v == NULL)
		return sqlite3_bind_null(s, i);
	return sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
}

/* Bind a string the peer reported, cut to a sane length. */
int
st_text_bounded(sqlite3_stmt *s, int i, const char *v, size_t max)
{
	if (v == NULL)
		v = "";
	return sqlite3_bind_text(s, i, v, (int)strnlen(v, max),
	    SQLITE_TRANSIENT);
}

void
st_col(sqlite3_stmt *s, int i, char *out, size_t size)
{
	const unsigned char *v = sqlite3_column_text(s, i);

	snprintf(out, size, "%s", v != NULL ? (const char *)v : "");
}

int
st_step_done(struct store *st, sqlite3_stmt *s, const char *op)
{
	int rc = sqlite3_step(s);

	if (rc == SQLITE_DONE)
		return 0;
	if (rc == SQLITE_CONSTRAINT)
		return PH_ERR_EXISTS;
	log_error("event=store_error op=%s err=\"%s\"", op,
	    sqlite3_errmsg(st->db));
	return PH_ERR_IO;
}

int
st_exec(struct store *st, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		log_error("event=store_error op=exec err=\"%s\"",
		    msg ? msg : "?");
		sqlite3_free(msg);
		return PH_ERR_IO;
	}
	return 0;
}

int
st_begin(struct store *st)
{
	/* A ROLLBACK that failed (disk trouble) must not leave every later
	 * write inside a dead transaction. */
	st_rollback(st);
	return st_exec(st, "BEGIN IMMEDIATE");
}

int
st_commit(struct store *st)
{
	return st_exec(st, "COMMIT");
}

void
st_rollback(struct store *st)
{
	if (!sqlite3_get_autocommit(st->db))
		(void)st_exec(st, "ROLLBACK");
}

int
st_random(void *p, size_t n)
{
	return RAND_bytes(p, (int)n) == 1 ? 0 : PH_ERR_CRYPTO;
}

/* n characters drawn uniformly from alphabet (rejection sampling). */
int
st_random_chars(char *out, size_t n, const char *alphabet)
{
	size_t alen = strlen(alphabet), i = 0, j;
	unsigned limit = 256 - (256 % (unsigned)alen);
	uint8_t rnd[64];

	while (i < n) {
		if (st_random(rnd, sizeof(rnd)) != 0)
			return PH_ERR_CRYPTO;
		for (j = 0; j < sizeof(rnd) && i < n; j++)
			if (rnd[j] < limit)
				out[i++] = alphabet[rnd[j] % alen];
	}
	out[n] = '\0';
	return 0;
}

static int
st_sha256(const void *a, size_t alen, const void *b, size_t blen,
    uint8_t out[STORE_HASH_LEN])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned olen = 0;
	int ok;

	if (ctx == NULL)
		return PH_ERR_NOMEM;
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
	    EVP_DigestUpdate(ctx, a, alen) == 1 &&
	    (blen == 0 || EVP_DigestUpdate(ctx, b, blen) == 1) &&
	    EVP_DigestFinal_ex(ctx, out, &olen) == 1 &&
	    olen == STORE_HASH_LEN;
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : PH_ERR_CRYPTO;
}

static int
st_is_terminal(const char *status)
{
	return strcmp(status, "Terminated") == 0 ||
	    strcmp(status, "Failed") == 0;
}

/* ---- changes not written yet ------------------------------------------- */

/* Entries written per attempt, so a long outage does not stall the loop
 * when it ends; the rest go at the next attempt. */
#define STORE_FLUSH_BATCH 4096

static int st_instance_apply(struct store *st, const struct sj_entry *e);
static int st_session_set_status(struct store *st, const char *session_id,
    const char *status, const char *reason, int64_t now_ms);

static int64_t
st_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Write pending entries, oldest first, until one fails to write (then
 * the rest wait for the next attempt, at most one per STORE_RETRY_MS
 * unless forced). An entry the database refuses (the session ended
 * meanwhile, the instance was deregistered) is dropped. Returns how many
 * are still pending. */
static size_t
st_journal_flush(struct store *st, int force)
{
	const struct sj_entry *e;
	size_t done = 0, n;
	int64_t now;
	int rc;

	if (st->flushing || sj_count(st->journal) == 0)
		return sj_count(st->journal);
	now = st_mono_ms();
	if (!force && now < st->retry_at)
		return sj_count(st->journal);
	st->flushing = 1;
	for (n = 0; n < STORE_FLUSH_BATCH &&
	    (e = sj_first(st->journal)) != NULL; n++) {
		if (e->kind == SJ_SESSION)
			rc = st_session_set_status(st, e->id, e->status,
			    e->reason != NULL ? e->reason : "", e->at_ms);
		else
			rc = st_instance_apply(st, e);
		if (rc == PH_ERR_IO || rc == PH_ERR_NOMEM) {
			st->retry_at = now + STORE_RETRY_MS;
			break;
		}
		if (rc != 0)
			log_info("event=store_journal_skip id=%s err=\"%s\"",
			    e->id, ph_strerror(rc));
		else
			done++;
		sj_drop(st->journal, e);
	}
	st->flushing = 0;
	if (done > 0)
		log_info("event=store_journal_written count=%zu pending=%zu",
		    done, sj_count(st->journal));
	if (sj_count(st->journal) == 0) {
		if (st->lost > 0)
			log_error("event=store_journal_lost count=%zu",
			    st->lost);
		st->deferring = 0;
		st->lost = 0;
	}
	return sj_count(st->journal);
}

size_t
store_retry(struct store *st)
{
	return st != NULL ? st_journal_flush(st, 1) : 0;
}

/* Before a change to a record: write out what is pending. Non-zero if
 * the record still has a pending change, which the new one then joins
 * so that a record's changes reach the database in order. */
static int
st_pending(struct store *st, enum sj_kind kind, const char *id)
{
	if (sj_count(st->journal) == 0)
		return 0;
	(void)st_journal_flush(st, 0);
	return sj_find(st->journal, kind, id) != NULL;
}

/* jrc: what keeping a change that could not be written returned. */
static int
st_defer(struct store *st, const char *op, const char *id, int jrc)
{
	if (jrc == 0) {
		/* One warning per outage: keep-alives alone would flood. */
		if (!st->deferring)
			log_warn("event=store_deferred op=%s id=%s "
			    "note=\"writes fail; state changes wait in "
			    "memory\"", op, id);
		st->deferring = 1;
		st->retry_at = st_mono_ms() + STORE_RETRY_MS;
		return 0;
	}
	if (jrc == PH_ERR_STATE || jrc == PH_ERR_INVALID)
		return jrc;
	/* Full (or out of memory): this change is lost, as before. Said
	 * once, and counted when the outage ends. */
	if (st->lost++ == 0)
		log_error("event=store_journal_full op=%s id=%s pending=%zu "
		    "err=\"%s\"", op, id, sj_count(st->journal),
		    ph_strerror(jrc));
	return PH_ERR_IO;
}

/* What a pending change makes of a record read from the database. */
static void
st_instance_overlay(struct store *st, struct instance_rec *in)
{
	const struct sj_entry *e;

	e = sj_find(st->journal, SJ_INSTANCE, in->id);
	if (e == NULL || in->deregistered)
		return;
	if (e->ping != SJ_PING_SAME)
		snprintf(in->ping_status, sizeof(in->ping_status), "%s",
		    e->ping == SJ_PING_ONLINE ? "Online" : "ConnectionLost");
	if (e->last_ping_ms > in->last_ping_ms)
		in->last_ping_ms = e->last_ping_ms;
	if (e->has_info) {
		snprintf(in->agent_version, sizeof(in->agent_version), "%s",
		    e->agent_version);
		snprintf(in->platform_type, sizeof(in->platform_type), "%s",
		    e->platform_type);
		snprintf(in->platform_name, sizeof(in->platform_name), "%s",
		    e->platform_name);
		snprintf(in->platform_version, sizeof(in->platform_version),
		    "%s", e->platform_version);
		snprintf(in->ip_address, sizeof(in->ip_address), "%s",
		    e->ip_address);
		snprintf(in->computer_name, sizeof(in->computer_name), "%s",
		    e->computer_name);
	}
}

static void
st_session_overlay(struct store *st, struct session_info *si)
{
	struct session_rec *r = &si->rec;
	const struct sj_entry *e;

	e = sj_find(st->journal, SJ_SESSION, r->session_id);
	if (e == NULL || st_is_terminal(r->status))
		return;
	snprintf(r->status, sizeof(r->status), "%s", e->status);
	if (e->reason != NULL)
		snprintf(si->details, sizeof(si->details), "%s", e->reason);
	r->end_ms = st_is_terminal(e->status) ?
	    (e->at_ms > 0 ? e->at_ms : 1) : 0;
}

/* A session whose end is pending. */
static int
st_session_ending(struct store *st, const char *session_id)
{
	const struct sj_entry *e;

	e = sj_find(st->journal, SJ_SESSION, session_id);
	return e != NULL && st_is_terminal(e->status);
}

/* ---- open / close ------------------------------------------------------- */

static int
st_migrate(struct store *st)
{
	sqlite3_stmt *s = NULL;
	int version, i, rc;

	if ((rc = st_prep(st, "PRAGMA user_version", &s)) != 0)
		return rc;
	version = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
	sqlite3_finalize(s);
	if (version < 0)
		return PH_ERR_IO;
	if (version > STORE_SCHEMA_VERSION) {
		log_error("event=store_error op=open err=\"schema version "
		    "%d is newer than this portholed (%d)\"", version,
		    STORE_SCHEMA_VERSION);
		return PH_ERR_STATE;
	}
	for (i = version; i < STORE_SCHEMA_VERSION; i++) {
		if ((rc = st_begin(st)) != 0)
			return rc;
		if ((rc = st_exec(st, migrations[i])) != 0 ||
		    (rc = st_commit(st)) != 0) {
			st_rollback(st);
			return rc;
		}
		log_info("event=store_migrated version=%d", i + 1);
	}
	return 0;
}

static int
st_seed_documents(struct store *st)
{
	sqlite3_stmt *s = NULL;
	size_t i;
	int rc = 0;

	size_t nsession = sizeof(builtin_docs) / sizeof(builtin_docs[0]);
	size_t ncommand = sizeof(builtin_command_docs) /
	    sizeof(builtin_command_docs[0]);

	if ((rc = st_prep(st, "INSERT INTO documents (name, document_type, "
	    "content, builtin, created_ms) VALUES (?1, ?4, ?2, 1, ?3) "
	    "ON CONFLICT (name) DO UPDATE SET content = excluded.content "
	    "WHERE builtin = 1 AND content <> excluded.content", &s)) != 0)
		return rc;
	for (i = 0; i < nsession + ncommand; i++) {
		sqlite3_reset(s);
		if (i < nsession) {
			st_text(s, 1, builtin_docs[i].name);
			st_text(s, 2, builtin_docs[i].content);
			st_text(s, 4, "Session");
		} else {
			st_text(s, 1, builtin_command_docs[i - nsession].name);
			st_text(s, 2,
			    builtin_command_docs[i - nsession].content);
			st_text(s, 4, "Command");
		}
		sqlite3_bind_int64(s, 3, st_now_ms());
		if ((rc = st_step_done(st, s, "seed_documents")) != 0)
			break;
	}
	sqlite3_finalize(s);
	return rc;
}

/* An errno in words an operator acts on. */
static const char *
st_errno_words(int e)
{
	switch (e) {
	case EROFS:
		return "the file system is read-only (EROFS)";
	case EACCES:
		return "permission denied (EACCES)";
	case EPERM:
		return "operation not permitted (EPERM)";
	case ENOSPC:
		return "no space left on the device (ENOSPC)";
	case EDQUOT:
		return "the disk quota is exhausted (EDQUOT)";
	case ENOENT:
		return "it does not exist";
	}
	return strerror(e);
}

/* Why SQLite could not open or set up the database: its message, and
 * the system error behind it if there was one. */
static void
st_open_why(struct store *st, int rc, char *why, size_t size)
{
	int e;

	if (rc == PH_ERR_STATE) {
		snprintf(why, size, "it was written by a newer portholed");
		return;
	}
	if (st == NULL || st->db == NULL) {
		snprintf(why, size, "%s", ph_strerror(rc));
		return;
	}
	e = sqlite3_system_errno(st->db);
	if (e != 0)
		snprintf(why, size, "%s: %s", sqlite3_errmsg(st->db),
		    st_errno_words(e));
	else
		snprintf(why, size, "%s", sqlite3_errmsg(st->db));
}

int
store_open(struct store **out, const char *path)
{
	return store_open_ex(out, path, STORE_OPEN_CREATE, NULL, 0);
}

int
store_open_ex(struct store **out, const char *path, int flags, char *why,
    size_t why_size)
{
	struct store *st = NULL;
	char dummy[8];
	int fd, e, rc = PH_ERR_IO;

	*out = NULL;
	if (why == NULL || why_size == 0) {
		why = dummy;
		why_size = sizeof(dummy);
	}
	why[0] = '\0';
	/* Create the file ourselves so it is never readable by others, even
	 * for a moment; SQLite gives its WAL and shm files the same mode. */
	fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW |
	    ((flags & STORE_OPEN_CREATE) ? O_CREAT : 0), 0600);
	if (fd < 0 || fchmod(fd, 0600) != 0) {
		e = errno;
		log_error("event=store_error op=open path=%s err=\"%s\"", path,
		    strerror(e));
		snprintf(why, why_size, "%s", st_errno_words(e));
		if (fd >= 0)
			close(fd);
		return e == ENOENT ? PH_ERR_NOTFOUND : e == EACCES ||
		    e == EPERM ? PH_ERR_DENIED : PH_ERR_IO;
	}
	close(fd);
	if ((st = calloc(1, sizeof(*st))) == NULL)
		return PH_ERR_NOMEM;
	if ((rc = sj_new(&st->journal, STORE_JOURNAL_MAX)) != 0)
		goto fail;
	rc = PH_ERR_IO;
	if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK) {
		log_error("event=store_error op=open path=%s err=\"%s\"", path,
		    st->db ? sqlite3_errmsg(st->db) : "?");
		goto fail;
	}
	sqlite3_busy_timeout(st->db, STORE_BUSY_TIMEOUT_MS);
	sqlite3_extended_result_codes(st->db, 0);
	if ((rc = st_exec(st, "PRAGMA journal_mode = WAL")) != 0 ||
	    (rc = st_exec(st, "PRAGMA synchronous = NORMAL")) != 0 ||
	    (rc = st_exec(st, "PRAGMA foreign_keys = ON")) != 0 ||
	    (rc = st_exec(st, "PRAGMA secure_delete = ON")) != 0)
		goto fail;
	if ((rc = st_migrate(st)) != 0 || (rc = st_seed_documents(st)) != 0 ||
	    (rc = store_iam_open(st)) != 0)
		goto fail;
	/* One portholed owns this file: at start no agent is connected, so
	 * an Online left by a crash is stale. */
	if (!(flags & STORE_OPEN_SHARED) && (rc = st_exec(st, "UPDATE "
	    "instances SET ping_status = 'ConnectionLost' WHERE ping_status "
	    "<> 'ConnectionLost'")) != 0)
		goto fail;
	*out = st;
	return 0;
fail:
	rc = rc != 0 ? rc : PH_ERR_IO;
	st_open_why(st, rc, why, why_size);
	store_close(st);
	return rc;
}

void
store_close(struct store *st)
{
	size_t left, before;

	if (st == NULL)
		return;
	/* A last try: batch after batch while they make progress. */
	left = sj_count(st->journal);
	do {
		before = left;
		if (st->db != NULL && before > 0)
			left = st_journal_flush(st, 1);
	} while (left > 0 && left < before);
	if (left > 0)
		log_error("event=store_journal_lost count=%zu", left);
	sj_free(st->journal);
	if (st->db != NULL)
		sqlite3_close(st->db);
	free(st);
}

/* ---- tags --------------------------------------------------------------- */

static int
st_tags_count(struct store *st, const char *rtype, const char *rid,
    int64_t *count)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = st_prep(st, "SELECT count(*) FROM tags WHERE "
	    "resource_type = ?1 AND resource_id = ?2", &s)) != 0)
		return rc;
	st_text(s, 1, rtype);
	st_text(s, 2, rid);
	if (sqlite3_step(s) == SQLITE_ROW)
		*count = sqlite3_column_int64(s, 0);
	else
		rc = PH_ERR_IO;
	sqlite3_finalize(s);
	return rc;
}

/* Inside a transaction. */
static int
st_tags_put(struct store *st, const char *rtype, const char *rid,
    const struct store_tag *tags, size_t ntags)
{
	sqlite3_stmt *s = NULL;
	size_t i;
	int rc;

	if ((rc = st_prep(st, "INSERT INTO tags (resource_type, resource_id, "
	    "key, value) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO UPDATE SET "
	    "value = excluded.value", &s)) != 0)
		return rc;
	for (i = 0; i < ntags && rc == 0; i++) {
		sqlite3_reset(s);
		st_text(s, 1, rtype);
		st_text(s, 2, rid);
		st_text(s, 3, tags[i].key);
		st_text(s, 4, tags[i].value ? tags[i].value : "");
		rc = st_step_done(st, s, "tags_put");
	}
	sqlite3_finalize(s);
	return rc;
}

int
store_tags_add(struct store *st, const char *resource_type,
    const char *resource_id, const struct store_tag *tags, size_t ntags,
    size_t max_total)
{
	int64_t count = 0;
	int rc;

	if ((rc = st_begin(st)) != 0)
		return rc;
	if ((rc = st_tags_put(st, resource_type, resource_id, tags,
	    ntags)) != 0)
		goto fail;
	if ((rc = st_tags_count(st, resource_type, resource_id, &count)) != 0)
		goto fail;
	if ((uint64_t)count > max_total) {
		rc = PH_ERR_TOOBIG;
		goto fail;
	}
	if ((rc = st_commit(st)) != 0)
		goto fail;
	st->authz_generation++;
	return 0;
fail:
	st_rollback(st);
	return rc;
}

int
store_tags_remove(struct store *st, const char *resource_type,
    const char *resource_id, const char *const *keys, size_t nkeys)
{
	sqlite3_stmt *s = NULL;
	size_t i;
	int rc;

	if ((rc = st_begin(st)) != 0)
		return rc;
	if ((rc = st_prep(st, "DELETE FROM tags WHERE resource_type = ?1 AND "
	    "resource_id = ?2 AND key = ?3", &s)) != 0)
		goto fail;
	for (i = 0; i < nkeys && rc == 0; i++) {
		sqlite3_reset(s);
		st_text(s, 1, resource_type);
		st_text(s, 2, resource_id);
		st_text(s, 3, keys[i]);
		rc = st_step_done(st, s, "tags_remove");
	}
	sqlite3_finalize(s);
	if (rc != 0 || (rc = st_commit(st)) != 0)
		goto fail;
	st->authz_generation++;
	return 0;
fail:
	st_rollback(st);
	return rc;
}

uint64_t
store_authz_generation(const struct store *st)
{
	return st->authz_generation;
}

int
store_tags_foreach(struct store *st, const char *resource_type,
    const char *resource_id,
    void (*fn)(void *arg, const char *key, const char *value), void *arg)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = st_prep(st, "SELECT key, value FROM tags WHERE "
	    "resource_type = ?1 AND resource_id = ?2 ORDER BY key", &s)) != 0)
		return rc;
	st_text(s, 1, resource_type);
	st_text(s, 2, resource_id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		fn(arg, (const char *)sqlite3_column_text(s, 0),
		    (const char *)sqlite3_column_text(s, 1));
	rc = rc == SQLITE_DONE ? 0 : PH_ERR_IO;
	sqlite3_finalize(s);
	return rc;
}

static int
st_tags_drop(struct store *st, const char *rtype, const char *rid)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = st_prep(st, "DELETE FROM tags WHERE resource_type = ?1 AND "
	    "resource_id = ?2", &s)) != 0)
		return rc;
	st_text(s, 1, rtype);
	st_text(s, 2, rid);
	rc = st_step_done(st, s, "tags_drop");
	sqlite3_finalize(s);
	return rc;
}

/* ---- activations -------------------------------------------------------- */

int
store_activation_rules(int code_ok, int64_t now_ms, int64_t expiration_ms,
    int registration_limit, int registrations_count)
{
	/* The code first: without it nobody learns whether an id expired. */
	if (!code_ok)
		return PH_ERR_DENIED;
	if (now_ms >= expiration_ms)
		return PH_ERR_EXPIRED;
	if (registrations_count >= registration_limit)
		return PH_ERR_TOOBIG;
	return 0;
}

const char *
store_activation_error_type(int rc)
{
	switch (rc) {
	case 0: return "";
	case PH_ERR_DENIED: return "InvalidActivation";
	case PH_ERR_EXPIRED: return "ActivationExpired";
	case PH_ERR_TOOBIG: return "ActivationLimitExceeded";
	case PH_ERR_INVALID: return "ValidationException";
	}
	return "InternalServerError";
}

const char *
store_activation_error_message(int rc)
{
	switch (rc) {
	case 0: return "";
	case PH_ERR_DENIED:
		return "The activation ID or code is not valid.";
	case PH_ERR_EXPIRED:
		return "The activation has expired.";
	case PH_ERR_TOOBIG:
		return "The activation has reached its registration limit.";
	case PH_ERR_INVALID:
		return "The registration request is not valid.";
	}
	return "The registration could not be stored.";
}

int
store_activation_create(struct store *st, const struct activation_new *a,
    int64_t now_ms, char id_out[STORE_ACTIVATION_ID_SIZE],
    char code_out[STORE_ACTIVATION_CODE_LEN + 1])
{
	static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789";
	uint8_t salt[STORE_SALT_LEN], hash[STORE_HASH_LEN], u[16];
	sqlite3_stmt *s = NULL;
	int rc;

	id_out[0] = code_out[0] = '\0';
	if (a->iam_role == NULL || a->registration_limit < 1)
		return PH_ERR_INVALID;
	/* A v4 UUID, lower case as botocore's ActivationId pattern wants. */
	if ((rc = st_random(u, sizeof(u))) != 0 ||
	    (rc = st_random(salt, sizeof(salt))) != 0 ||
	    (rc = st_random_chars(code_out, STORE_ACTIVATION_CODE_LEN,
	    alnum)) != 0)
		goto out;
	u[6] = (u[6] & 0x0f) | 0x40;
	u[8] = (u[8] & 0x3f) | 0x80;
	snprintf(id_out, STORE_ACTIVATION_ID_SIZE,
	    "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
	    "%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2], u[3], u[4], u[5],
	    u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
	if ((rc = st_sha256(salt, sizeof(salt), code_out,
	    STORE_ACTIVATION_CODE_LEN, hash)) != 0)
		goto out;
	if ((rc = st_begin(st)) != 0)
		goto out;
	if ((rc = st_prep(st, "INSERT INTO activations (id, code_salt, "
	    "code_hash, iam_role, description, default_instance_name, "
	    "registration_limit, expiration_ms, created_ms) VALUES (?1, ?2, "
	    "?3, ?4, ?5, ?6, ?7, ?8, ?9)", &s)) != 0)
		goto out;
	st_text(s, 1, id_out);
	sqlite3_bind_blob(s, 2, salt, sizeof(salt), SQLITE_TRANSIENT);
	sqlite3_bind_blob(s, 3, hash, sizeof(hash), SQLITE_TRANSIENT);
	st_text(s, 4, a->iam_role);
	st_text(s, 5, a->description ? a->description : "");
	st_text(s, 6, a->default_instance_name ? a->default_instance_name :
	    "");
	sqlite3_bind_int(s, 7, a->registration_limit);
	sqlite3_bind_int64(s, 8, a->expiration_ms);
	sqlite3_bind_int64(s, 9, now_ms);
	if ((rc = st_step_done(st, s, "activation_create")) != 0)
		goto out;
	if ((rc = st_tags_put(st, "Activation", id_out, a->tags,
	    a->ntags)) != 0)
		goto out;
	rc = st_commit(st);
out:
	sqlite3_finalize(s);
	if (rc != 0) {
		st_rollback(st);
		OPENSSL_cleanse(code_out, STORE_ACTIVATION_CODE_LEN + 1);
		id_out[0] = code_out[0] = '\0';
	}
	return rc;
}

#define ACT_COLUMNS "id, description, default_instance_name, iam_role, " \
	"registration_limit, registrations_count, expiration_ms, created_ms"

static void
st_activation_row(sqlite3_stmt *s, struct activation_rec *a)
{
	memset(a, 0, sizeof(*a));
	st_col(s, 0, a->id, sizeof(a->id));
	st_col(s, 1, a->description, sizeof(a->description));
	st_col(s, 2, a->default_instance_name,
	    sizeof(a->default_instance_name));
	st_col(s, 3, a->iam_role, sizeof(a->iam_role));
	a->registration_limit = sqlite3_column_int(s, 4);
	a->registrations_count = sqlite3_column_int(s, 5);
	a->expiration_ms = sqlite3_column_int64(s, 6);
	a->created_ms = sqlite3_column_int64(s, 7);
}

int
store_activation_get(struct store *st, const char *id,
    struct activation_rec *out)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = st_prep(st, "SELECT " ACT_COLUMNS " FROM activations "
	    "WHERE id = ?1", &s)) != 0)
		return rc;
	st_text(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		st_activation_row(s, out);
		rc = 0;
	} else {
		rc = rc == SQLITE_DONE ? PH_ERR_NOTFOUND : PH_ERR_IO;
	}
	sqlite3_finalize(s);
	return rc;
}

int
store_activation_foreach(struct store *st,
    int (*fn)(void *arg, const struct activation_rec *a), void *arg)
{
	struct activation_rec *a = NULL;
	sqlite3_stmt *s = NULL;
	int rc;

	if ((a = malloc(sizeof(*a))) == NULL)
		return PH_ERR_NOMEM;
	if ((rc = st_prep(st, "SELECT " ACT_COLUMNS " FROM activations "
	    "ORDER BY created_ms, rowid", &s)) != 0)
		goto out;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		st_activation_row(s, a);
		if (fn(arg, a) != 0)
			break;
	}
	rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : PH_ERR_IO;
out:
	sqlite3_finalize(s);
	free(a);
	return rc;
}

int
store_activation_delete(struct store *st, const char *id)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = st_begin(st)) != 0)
		return rc;
	if ((rc = st_prep(st, "DELETE FROM activations WHERE id = ?1",
	    &s)) != 0)
		goto fail;
	st_text(s, 1, id);
	if ((rc = st_step_done(st, s, "activation_delete")) != 0)
		goto fail;
	if (sqlite3_changes(st->db) == 0) {
		rc = PH_ERR_NOTFOUND;
		goto fail;
	}
	if ((rc = st_tags_drop(st, "Activation", id)) != 0 ||
	    (rc = st_commit(st)) != 0)
		goto fail;
	sqlite3_finalize(s);
	return 0;
fail:
	sqlite3_finalize(s);
	st_rollback(st);
	return rc;
}

int
store_activation_register(struct store *st, const char *activation_id,
    const char *code, int64_t now_ms, const char *name,
    const char *cert_fingerprint, char instance_id_out[21],
    char iam_role_out[STORE_IAM_ROLE_SIZE])
{
	static const uint8_t dummy_salt[STORE_SALT_LEN];
	uint8_t salt[STORE_SALT_LEN], want[STORE_HASH_LEN], got[STORE_HASH_LEN];
	char default_name[STORE_TEXT_SIZE], hex[18];
	sqlite3_stmt *s = NULL;
	int rc, found = 0, code_ok, limit = 0, count = 0, tries;
	int64_t expiration = 0;
	size_t codelen;

	instance_id_out[0] = iam_role_out[0] = '\0';
	default_name[0] = '\0';
	if (activation_id == NULL || code == NULL)
		return PH_ERR_DENIED;
	codelen = strnlen(code, 256);
	if (codelen >= 256)
		return PH_ERR_DENIED;
	if ((rc = st_begin(st)) != 0)
		return rc;
	if ((rc = st_prep(st, "SELECT code_salt, code_hash, iam_role, "
	    "default_instance_name, registration_limit, registrations_count, "
	    "expiration_ms FROM activations WHERE id = ?1", &s)) != 0)
		goto fail;
	st_text(s, 1, activation_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW &&
	    sqlite3_column_bytes(s, 0) == STORE_SALT_LEN &&
	    sqlite3_column_bytes(s, 1) == STORE_HASH_LEN) {
		found = 1;
		memcpy(salt, sqlite3_column_blob(s, 0), STORE_SALT_LEN);
		memcpy(want, sqlite3_column_blob(s, 1), STORE_HASH_LEN);
		st_col(s, 2, iam_role_out, STORE_IAM_ROLE_SIZE);
		st_col(s, 3, default_name, sizeof(default_name));
		limit = sqlite3_column_int(s, 4);
		count = sqlite3_column_int(s, 5);
		expiration = sqlite3_column_int64(s, 6);
	} else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		rc = PH_ERR_IO;
		goto fail;
	}
	sqlite3_finalize(s);
	s = NULL;
	/* Hash even for an unknown id so both answers take as long. */
	if (!found) {
		memcpy(salt, dummy_salt, sizeof(salt));
		memset(want, 0xff, sizeof(want));
	}
	if ((rc = st_sha256(salt, sizeof(salt), code, codelen, got)) != 0)
		goto fail;
	code_ok = found && CRYPTO_memcmp(want, got, STORE_HASH_LEN) == 0;
	if ((rc = store_activation_rules(code_ok, now_ms, expiration, limit,
	    count)) != 0)
		goto fail;

	if ((rc = st_prep(st, "INSERT INTO instances (id, name, "
	    "activation_id, iam_role, registration_ms, cert_fingerprint) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6)", &s)) != 0)
		goto fail;
	for (tries = 0; tries < 5; tries++) {
		/* botocore ManagedInstanceId: "mi-" and 17 hex digits. */
		if ((rc = st_random_chars(hex, 17, "0123456789abcdef")) != 0)
			goto fail;
		snprintf(instance_id_out, 21, "mi-%s", hex);
		sqlite3_reset(s);
		st_text(s, 1, instance_id_out);
		st_text_bounded(s, 2, name != NULL && name[0] != '\0' ? name :
		    default_name, STORE_FIELD_MAX);
		st_text(s, 3, activation_id);
		st_text(s, 4, iam_role_out);
		sqlite3_bind_int64(s, 5, now_ms);
		st_text_bounded(s, 6, cert_fingerprint, 127);
		if ((rc = st_step_done(st, s, "instance_create")) !=
		    PH_ERR_EXISTS)
			break;
	}
	sqlite3_finalize(s);
	s = NULL;
	if (rc != 0)
		goto fail;
	if ((rc = st_prep(st, "UPDATE activations SET registrations_count = "
	    "registrations_count + 1 WHERE id = ?1", &s)) != 0)
		goto fail;
	st_text(s, 1, activation_id);
	if ((rc = st_step_done(st, s, "activation_count")) != 0)
		goto fail;
	sqlite3_finalize(s);
	s = NULL;
	/* AWS: the activation's tags are applied to the instances it
	 * registers. */
	if ((rc = st_prep(st, "INSERT OR REPLACE INTO tags (resource_type, "
	    "resource_id, key, value) SELECT 'ManagedInstance', ?1, key, "
	    "value FROM tags WHERE resource_type = 'Activation' AND "
	    "resource_id = ?2", &s)) != 0)
		goto fail;
	st_text(s, 1, instance_id_out);
	st_text(s, 2, activation_id);
	if ((rc = st_step_done(st, s, "instance_tags")) != 0)
		goto fail;
	sqlite3_finalize(s);
	s = NULL;
	if ((rc = st_commit(st)) != 0)
		goto fail;
	log_info("event=instance_registered instance=%s activation=%s",
	    instance_id_out, activation_id);
	return 0;
fail:
	sqlite3_finalize(s);
	st_rollback(st);
	instance_id_out[0] = iam_role_out[0] = '\0';
	return rc;
}

/* ---- instances ---------------------------------------------------------- */

static int
st_instance_connected(struct store *st, const char *instance_id,
    const struct instance_conn_info *info, int64_t now_ms)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = st_prep(st, "UPDATE instances SET ping_status = 'Online', "
	    "last_ping_ms = ?2, agent_version = ?3, platform_type = ?4, "
	    "platform_name = ?5, platform_version = ?6, ip_address = ?7, "
	    "computer_name = ?8 WHERE id = ?1 AND deregistered = 0",
	    &s)) != 0)
		return rc;
	st_text(s, 1, instance_id);
	sqlite3_bind_int64(s, 2, now_ms);
	st_text_bounded(s, 3, info ? info->agent_version : NULL, 31);
	st_text_bounded(s, 4, info ? info->platform_type : NULL, 15);
	st_text_bounded(s, 5, info ? info->platform_name : NULL, 127);
	st_text_bounded(s, 6, info ? info->platform_version : NULL, 63);
	st_text_bounded(s, 7, info ? info->ip_address : NULL, 63);
	st_text_bounded(s, 8, info ? info->computer_name : NULL, 255);
	rc = st_step_done(st, s, "instance_connected");
	if (rc == 0 && sqlite3_changes(st->db) == 0)
		rc = PH_ERR_NOTFOUND;
	sqlite3_finalize(s);
	return rc;
}

static int
st_instance_disconnected(struct store *st, const char *instance_id,
    int64_t now_ms)
{
	sqlite3_stmt *s = NULL;
	int rc;

	(void)now_ms; /* LastPingDateTime stays the last time it was seen */
	if ((rc = st_prep(st, "UPDATE instances SET ping_status = "
	    "'ConnectionLost' WHERE id = ?1", &s)) != 0)
		return rc;
	st_text(s, 1, instance_id);
	rc = st_step_done(st, s, "instance_disconnected");
	if (rc == 0 && sqlite3_changes(st->db) == 0)
		rc = PH_ERR_NOTFOUND;
	sqlite3_finalize(s);
	return rc;
}

static int
st_instance_seen(struct store *st, const char *instance_id,
    int64_t now_ms)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = st_prep(st, "UPDATE instances SET last_ping_ms = ?2 "
	    "WHERE id = ?1 AND deregistered = 0", &s)) != 0)
		return rc;
	st_text(s, 1, instance_id);
	sqlite3_bind_int64(s, 2, now_ms);
	rc = st_step_done(st, s, "instance_seen");
	if (rc == 0 && sqlite3_changes(st->db) == 0)
		rc = PH_ERR_NOTFOUND;
	sqlite3_finalize(s);
	return rc;
}

/* A pending instance entry, in one statement: only what changed is
 * set. A deregistered instance keeps what deregistering set. */
static int
st_instance_apply(struct store *st, const struct sj_entry *e)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = st_prep(st, "UPDATE instances SET "
	    "ping_status = coalesce(?2, ping_status), "
	    "last_ping_ms = CASE WHEN ?3 > last_ping_ms THEN ?3 "
	    "ELSE last_ping_ms END, "
	    "agent_version = coalesce(?4, agent_version), "
	    "platform_type = coalesce(?5, platform_type), "
	    "platform_name = coalesce(?6, platform_name), "
	    "platform_version = coalesce(?7, platform_version), "
	    "ip_address = coalesce(?8, ip_address), "
	    "computer_name = coalesce(?9, computer_name) "
	    "WHERE id = ?1 AND deregistered = 0", &s)) != 0)
		return rc;
	st_text(s, 1, e->id);
	if (e->ping != SJ_PING_SAME)
		st_text(s, 2, e->ping == SJ_PING_ONLINE ? "Online" :
		    "ConnectionLost");
	if (e->last_ping_ms > 0)
		sqlite3_bind_int64(s, 3, e->last_ping_ms);
	if (e->has_info) {
		st_text(s, 4, e->agent_version);
		st_text(s, 5, e->platform_type);
		st_text(s, 6, e->platform_name);
		st_text(s, 7, e->platform_version);
		st_text(s, 8, e->ip_address);
		st_text(s, 9, e->computer_name);
	}
	rc = st_step_done(st, s, "instance_apply");
	if (rc == 0 && sqlite3_changes(st->db) == 0)
		rc = PH_ERR_NOTFOUND;
	sqlite3_finalize(s);
	return rc;
}

int
store_instance_connected(struct store *st, const char *instance_id,
    const struct instance_conn_info *info, int64_t now_ms)
{
	int rc = PH_ERR_IO;

	if (!st_pending(st, SJ_INSTANCE, instance_id) &&
	    (rc = st_instance_connected(st, instance_id, info, now_ms)) !=
	    PH_ERR_IO)
		return rc;
	return st_defer(st, "instance_connected", instance_id,
	    sj_instance_connected(st->journal, instance_id, info, now_ms));
}

int
store_instance_disconnected(struct store *st, const char *instance_id,
    int64_t now_ms)
{
	int rc = PH_ERR_IO;

	if (!st_pending(st, SJ_INSTANCE, instance_id) &&
	    (rc = st_instance_disconnected(st, instance_id, now_ms)) !=
	    PH_ERR_IO)
		return rc;
	return st_defer(st, "instance_disconnected", instance_id,
	    sj_instance_disconnected(st->journal, instance_id));
}

int
store_instance_seen(struct store *st, const char *instance_id,
    int64_t now_ms)
{
	int rc = PH_ERR_IO;

	if (!st_pending(st, SJ_INSTANCE, instance_id) &&
	    (rc = st_instance_seen(st, instance_id, now_ms)) != PH_ERR_IO)
		return rc;
	return st_defer(st, "instance_seen", instance_id,
	    sj_instance_seen(st->journal, instance_id, now_ms));
}

/* One statement for the periodic refresh: this portholed owns the file
 * and resets every instance at start, so the Online rows are exactly its
 * open control channels. */
int
store_instances_seen_online(struct store *st, int64_t now_ms)
{
	sqlite3_stmt *s = NULL;
	int rc;

	/* Not kept when it fails: the caller repeats it anyway. */
	(void)st_journal_flush(st, 0);
	if ((rc = st_prep(st, "UPDATE instances SET last_ping_ms = ?1 "
	    "WHERE ping_status = 'Online' AND deregistered = 0", &s)) != 0)
		return rc;
	sqlite3_bind_int64(s, 1, now_ms);
	rc = st_step_done(st, s, "instances_seen_online");
	sqlite3_finalize(s);
	return rc;
}

int
store_instance_active(struct store *st, const char *instance_id)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (instance_id == NULL)
		return PH_ERR_NOTFOUND;
	if ((rc = st_prep(st, "SELECT 1 FROM instances WHERE id = ?1 AND "
	    "deregistered = 0", &s)) != 0)
		return rc;
	st_text(s, 1, instance_id);
	rc = sqlite3_step(s);
	rc = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? PH_ERR_NOTFOUND :
	    PH_ERR_IO;
	sqlite3_finalize(s);
	return rc;
}

int
store_instance_set_cert(struct store *st, const char *instance_id,
    const char *cert_serial, const char *cert_fingerprint)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = st_prep(st, "UPDATE instances SET cert_serial = "
	    "coalesce(?2, cert_serial), cert_fingerprint = coalesce(?3, "
	    "cert_fingerprint) WHERE id = ?1 AND deregistered = 0", &s)) != 0)
		return rc;
	st_text(s, 1, instance_id);
	if (cert_serial != NULL)
		st_text_bounded(s, 2, cert_serial, 127);
	if (cert_fingerprint != NULL)
		st_text_bounded(s, 3, cert_fingerprint, 127);
	rc = st_step_done(st, s, "instance_set_cert");
	if (rc == 0 && sqlite3_changes(st->db) == 0)
		rc = PH_ERR_NOTFOUND;
	sqlite3_finalize(s);
	return rc;
}

#define INST_COLUMNS "id, name, activation_id, iam_role, registration_ms, " \
	"cert_serial, cert_fingerprint, deregistered, ping_status, " \
	"last_ping_ms, agent_version, platform_type, platform_name, " \
	"platform_version, ip_address, computer_name"

static void
st_instance_row(sqlite3_stmt *s, struct instance_rec *in)
{
	memset(in, 0, sizeof(*in));
	st_col(s, 0, in->id, sizeof(in->id));
	st_col(s, 1, in->name, sizeof(in->name));
	st_col(s, 2, in->activation_id, sizeof(in->activation_id));
	st_col(s, 3, in->iam_role, sizeof(in->iam_role));
	in->registration_ms = sqlite3_column_int64(s, 4);
	st_col(s, 5, in->cert_serial, sizeof(in->cert_serial));
	st_col(s, 6, in->cert_fingerprint, sizeof(in->cert_fingerprint));
	in->deregistered = sqlite3_column_int(s, 7);
	st_col(s, 8, in->ping_status, sizeof(in->ping_status));
	in->last_ping_ms = sqlite3_column_int64(s, 9);
	st_col(s, 10, in->agent_version, sizeof(in->agent_version));
	st_col(s, 11, in->platform_type, sizeof(in->platform_type));
	st_col(s, 12, in->platform_name, sizeof(in->platform_name));
	st_col(s, 13, in->platform_version, sizeof(in->platform_version));
	st_col(s, 14, in->ip_address, sizeof(in->ip_address));
	st_col(s, 15, in->computer_name, sizeof(in->computer_name));
}

int
store_instance_get(struct store *st, const char *instance_id,
    struct instance_rec *out)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = st_prep(st, "SELECT " INST_COLUMNS " FROM instances "
	    "WHERE id = ?1", &s)) != 0)
		return rc;
	st_text(s, 1, instance_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		st_instance_row(s, out);
		st_instance_overlay(st, out);
		rc = 0;
	} else {
		rc = rc == SQLITE_DONE ? PH_ERR_NOTFOUND : PH_ERR_IO;
	}
	sqlite3_finalize(s);
	return rc;
}

int
store_instance_foreach(struct store *st,
    int (*fn)(void *arg, const struct instance_rec *in), void *arg)
{
	struct instance_rec *in;
	sqlite3_stmt *s = NULL;
	int rc;

	if ((in = malloc(sizeof(*in))) == NULL)
		return PH_ERR_NOMEM;
	if ((rc = st_prep(st, "SELECT " INST_COLUMNS " FROM instances "
	    "WHERE deregistered = 0 ORDER BY id", &s)) != 0)
		goto out;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		st_instance_row(s, in);
		st_instance_overlay(st, in);
		if (fn(arg, in) != 0)
			break;
	}
	rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : PH_ERR_IO;
out:
	sqlite3_finalize(s);
	free(in);
	return rc;
}

int
store_instance_deregister(struct store *st, const char *instance_id,
    int64_t now_ms)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = st_begin(st)) != 0)
		return rc;
	if ((rc = st_prep(st, "UPDATE instances SET deregistered = 1, "
	    "deregistered_ms = ?2, ping_status = 'ConnectionLost' WHERE "
	    "id = ?1 AND deregistered = 0", &s)) != 0)
		goto fail;
	st_text(s, 1, instance_id);
	sqlite3_bind_int64(s, 2, now_ms);
	if ((rc = st_step_done(st, s, "instance_deregister")) != 0)
		goto fail;
	if (sqlite3_changes(st->db) == 0) {
		rc = PH_ERR_NOTFOUND;
		goto fail;
	}
	if ((rc = st_tags_drop(st, "ManagedInstance", instance_id)) != 0 ||
	    (rc = st_commit(st)) != 0)
		goto fail;
	st->authz_generation++;     /* its tags are gone */
	sqlite3_finalize(s);
	log_info("event=instance_deregistered instance=%s", instance_id);
	return 0;
fail:
	sqlite3_finalize(s);
	st_rollback(st);
	return rc;
}

/* ---- sessions ----------------------------------------------------------- */

static int
st_valid_status(const char *status)
{
	static const char *const ok[] = { "Connected", "Connecting",
	    "Disconnected", "Terminating", "Terminated", "Failed" };
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strcmp(status, ok[i]) == 0)
			return 1;
	return 0;
}

int
store_session_create(struct store *st, const struct session_rec *rec,
    const char *max_session_duration)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (rec->session_id[0] == '\0' || !st_valid_status(rec->status))
		return PH_ERR_INVALID;
	if ((rc = st_prep(st, "INSERT INTO sessions (id, target, owner, "
	    "status, document_name, reason, max_session_duration, start_ms, "
	    "end_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)", &s)) != 0)
		return rc;
	st_text(s, 1, rec->session_id);
	st_text(s, 2, rec->target);
	st_text(s, 3, rec->owner);
	st_text(s, 4, rec->status);
	st_text(s, 5, rec->document_name);
	st_text(s, 6, rec->reason);
	st_text(s, 7, max_session_duration ? max_session_duration : "");
	sqlite3_bind_int64(s, 8, rec->start_ms);
	sqlite3_bind_int64(s, 9, st_is_terminal(rec->status) ?
	    rec->start_ms : 0);
	rc = st_step_done(st, s, "session_create");
	sqlite3_finalize(s);
	return rc;
}

#define SESS_COLUMNS "id, target, owner, status, document_name, reason, " \
	"start_ms, end_ms, details, max_session_duration"

static void
st_session_row(sqlite3_stmt *s, struct session_info *si)
{
	struct session_rec *r = &si->rec;

	memset(si, 0, sizeof(*si));
	st_col(s, 0, r->session_id, sizeof(r->session_id));
	st_col(s, 1, r->target, sizeof(r->target));
	st_col(s, 2, r->owner, sizeof(r->owner));
	st_col(s, 3, r->status, sizeof(r->status));
	st_col(s, 4, r->document_name, sizeof(r->document_name));
	st_col(s, 5, r->reason, sizeof(r->reason));
	r->start_ms = sqlite3_column_int64(s, 6);
	r->end_ms = sqlite3_column_int64(s, 7);
	st_col(s, 8, si->details, sizeof(si->details));
	st_col(s, 9, si->max_session_duration,
	    sizeof(si->max_session_duration));
}

static int
st_session_info_row(struct store *st, const char *session_id,
    struct session_info *out)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = st_prep(st, "SELECT " SESS_COLUMNS " FROM sessions "
	    "WHERE id = ?1", &s)) != 0)
		return rc;
	st_text(s, 1, session_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		st_session_row(s, out);
		rc = 0;
	} else {
		rc = rc == SQLITE_DONE ? PH_ERR_NOTFOUND : PH_ERR_IO;
	}
	sqlite3_finalize(s);
	return rc;
}

int
store_session_get_info(struct store *st, const char *session_id,
    struct session_info *out)
{
	int rc;

	if ((rc = st_session_info_row(st, session_id, out)) == 0)
		st_session_overlay(st, out);
	return rc;
}

/* The database's row, without pending changes. */
static int
st_session_get_row(struct store *st, const char *session_id,
    struct session_rec *out)
{
	struct session_info *si = malloc(sizeof(*si));
	int rc;

	if (si == NULL)
		return PH_ERR_NOMEM;
	if ((rc = st_session_info_row(st, session_id, si)) == 0)
		*out = si->rec;
	free(si);
	return rc;
}

int
store_session_get(struct store *st, const char *session_id,
    struct session_rec *out)
{
	struct session_info *si = malloc(sizeof(*si));
	int rc;

	if (si == NULL)
		return PH_ERR_NOMEM;
	if ((rc = store_session_get_info(st, session_id, si)) == 0)
		*out = si->rec;
	free(si);
	return rc;
}

static int
st_session_set_status(struct store *st, const char *session_id,
    const char *status, const char *reason, int64_t now_ms)
{
	struct session_rec cur;
	sqlite3_stmt *s = NULL;
	int rc;

	if (status == NULL || !st_valid_status(status))
		return PH_ERR_INVALID;
	if ((rc = st_begin(st)) != 0)
		return rc;
	if ((rc = st_session_get_row(st, session_id, &cur)) != 0)
		goto fail;
	/* Terminal states are final; repeating one is not an error. */
	if (st_is_terminal(cur.status)) {
		rc = strcmp(cur.status, status) == 0 ? 0 : PH_ERR_STATE;
		goto fail;
	}
	if ((rc = st_prep(st, "UPDATE sessions SET status = ?2, details = "
	    "CASE WHEN ?3 <> '' THEN ?3 ELSE details END, end_ms = ?4, "
	    "token_used = CASE WHEN ?4 <> 0 THEN 1 ELSE token_used END "
	    "WHERE id = ?1", &s)) != 0)
		goto fail;
	st_text(s, 1, session_id);
	st_text(s, 2, status);
	st_text_bounded(s, 3, reason, STORE_FIELD_MAX);
	sqlite3_bind_int64(s, 4, st_is_terminal(status) ?
	    (now_ms > 0 ? now_ms : 1) : 0);
	if ((rc = st_step_done(st, s, "session_set_status")) != 0 ||
	    (rc = st_commit(st)) != 0)
		goto fail;
	sqlite3_finalize(s);
	return 0;
fail:
	sqlite3_finalize(s);
	st_rollback(st);
	return rc;
}

int
store_session_set_status(struct store *st, const char *session_id,
    const char *status, const char *reason, int64_t now_ms)
{
	int rc = PH_ERR_IO;

	if (status == NULL || !st_valid_status(status))
		return PH_ERR_INVALID;
	if (!st_pending(st, SJ_SESSION, session_id) &&
	    (rc = st_session_set_status(st, session_id, status, reason,
	    now_ms)) != PH_ERR_IO)
		return rc;
	return st_defer(st, "session_set_status", session_id,
	    sj_session(st->journal, session_id, status, reason, now_ms));
}

/* base64url without padding (RFC 4648 section 5). */
static void
st_b64url(const uint8_t *p, size_t n, char *out)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t i, o = 0;
	uint32_t v;

	for (i = 0; i + 2 < n; i += 3) {
		v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		out[o++] = a[v >> 18 & 63];
		out[o++] = a[v >> 12 & 63];
		out[o++] = a[v >> 6 & 63];
		out[o++] = a[v & 63];
	}
	if (n - i == 1) {
		v = (uint32_t)p[i] << 16;
		out[o++] = a[v >> 18 & 63];
		out[o++] = a[v >> 12 & 63];
	} else if (n - i == 2) {
		v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
		out[o++] = a[v >> 18 & 63];
		out[o++] = a[v >> 12 & 63];
		out[o++] = a[v >> 6 & 63];
	}
	out[o] = '\0';
}

int
store_session_issue_token(struct store *st, const char *session_id,
    int64_t now_ms, int64_t ttl_ms, char token_out[STORE_TOKEN_SIZE])
{
	uint8_t raw[32], hash[STORE_HASH_LEN];
	sqlite3_stmt *s = NULL;
	int rc;

	token_out[0] = '\0';
	if (st_session_ending(st, session_id))
		return PH_ERR_STATE;
	if ((rc = st_random(raw, sizeof(raw))) != 0)
		return rc;
	st_b64url(raw, sizeof(raw), token_out);   /* 43 characters */
	OPENSSL_cleanse(raw, sizeof(raw));
	if ((rc = st_sha256(token_out, strlen(token_out), NULL, 0,
	    hash)) != 0)
		goto out;
	if ((rc = st_prep(st, "UPDATE sessions SET token_hash = ?2, "
	    "token_expiry_ms = ?3, token_used = 0 WHERE id = ?1 AND "
	    "status NOT IN ('Terminated', 'Failed')", &s)) != 0)
		goto out;
	st_text(s, 1, session_id);
	sqlite3_bind_blob(s, 2, hash, sizeof(hash), SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 3, now_ms + ttl_ms);
	rc = st_step_done(st, s, "session_issue_token");
	if (rc == 0 && sqlite3_changes(st->db) == 0)
		rc = PH_ERR_STATE;
out:
	sqlite3_finalize(s);
	if (rc != 0)
		OPENSSL_cleanse(token_out, STORE_TOKEN_SIZE);
	return rc;
}

int
store_session_consume_token(struct store *st, const char *session_id,
    const char *token, int64_t now_ms)
{
	uint8_t got[STORE_HASH_LEN], want[STORE_HASH_LEN];
	sqlite3_stmt *s = NULL;
	int rc, ok;
	size_t n;

	if (session_id == NULL || token == NULL)
		return PH_ERR_DENIED;
	n = strnlen(token, STORE_TOKEN_MAX_LEN + 1);
	if (n == 0 || n > STORE_TOKEN_MAX_LEN)
		return PH_ERR_DENIED;
	if ((rc = st_sha256(token, n, NULL, 0, got)) != 0)
		return rc;
	if ((rc = st_begin(st)) != 0)
		return rc;
	if ((rc = st_prep(st, "SELECT token_hash, token_expiry_ms, "
	    "token_used, status FROM sessions WHERE id = ?1", &s)) != 0)
		goto fail;
	st_text(s, 1, session_id);
	if (sqlite3_step(s) != SQLITE_ROW ||
	    sqlite3_column_bytes(s, 0) != STORE_HASH_LEN) {
		rc = PH_ERR_DENIED;
		goto fail;
	}
	memcpy(want, sqlite3_column_blob(s, 0), STORE_HASH_LEN);
	ok = CRYPTO_memcmp(want, got, STORE_HASH_LEN) == 0;
	ok &= sqlite3_column_int(s, 2) == 0;
	ok &= now_ms < sqlite3_column_int64(s, 1);
	ok &= !st_is_terminal((const char *)sqlite3_column_text(s, 3));
	ok &= !st_session_ending(st, session_id);
	sqlite3_finalize(s);
	s = NULL;
	if (!ok) {
		rc = PH_ERR_DENIED;
		goto fail;
	}
	if ((rc = st_prep(st, "UPDATE sessions SET token_used = 1 WHERE "
	    "id = ?1", &s)) != 0)
		goto fail;
	st_text(s, 1, session_id);
	if ((rc = st_step_done(st, s, "session_consume_token")) != 0 ||
	    (rc = st_commit(st)) != 0)
		goto fail;
	sqlite3_finalize(s);
	return 0;
fail:
	sqlite3_finalize(s);
	st_rollback(st);
	return rc;
}

struct open_sess {
	char id[SESSION_ID_MAX];
	char target[64];
};

int
store_session_foreach_open(struct store *st,
    void (*fn)(void *arg, const char *session_id, const char *target),
    void *arg)
{
	struct open_sess *v = NULL, *nv;
	size_t n = 0, cap = 0, i;
	sqlite3_stmt *s = NULL;
	int rc;

	/* Collected first so fn may write to the store. */
	if ((rc = st_prep(st, "SELECT id, target FROM sessions WHERE status "
	    "NOT IN ('Terminated', 'Failed') ORDER BY start_ms", &s)) != 0)
		return rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			if ((nv = realloc(v, cap * sizeof(*v))) == NULL) {
				rc = PH_ERR_NOMEM;
				goto out;
			}
			v = nv;
		}
		st_col(s, 0, v[n].id, sizeof(v[n].id));
		st_col(s, 1, v[n].target, sizeof(v[n].target));
		n++;
	}
	if (rc != SQLITE_DONE) {
		rc = PH_ERR_IO;
		goto out;
	}
	sqlite3_finalize(s);
	s = NULL;
	for (i = 0; i < n; i++)
		if (!st_session_ending(st, v[i].id))
			fn(arg, v[i].id, v[i].target);
	rc = 0;
out:
	sqlite3_finalize(s);
	free(v);
	return rc;
}

int
store_session_query(struct store *st, const struct session_query *q,
    int (*fn)(void *arg, const struct session_info *s), void *arg)
{
	struct session_info *si;
	sqlite3_stmt *s = NULL;
	int rc, pending, skip, given = 0;

	if ((si = malloc(sizeof(*si))) == NULL)
		return PH_ERR_NOMEM;
	if ((rc = st_prep(st, "SELECT " SESS_COLUMNS " FROM sessions WHERE "
	    "(?1 IS NULL OR CASE WHEN status IN ('Terminated', 'Failed') "
	    "THEN 1 ELSE 0 END = ?1) "
	    "AND (?2 IS NULL OR id = ?2) "
	    "AND (?3 IS NULL OR target = ?3) "
	    "AND (?4 IS NULL OR owner = ?4) "
	    "AND (?5 IS NULL OR status = ?5) "
	    "AND start_ms >= ?6 AND start_ms < ?7 "
	    "ORDER BY start_ms DESC, id LIMIT ?8 OFFSET ?9", &s)) != 0)
		goto out;
	/* With status changes pending, the state and the status filter and
	 * the paging are applied here, to the state as it will be. */
	pending = sj_count(st->journal) > 0;
	if (!pending) {
		sqlite3_bind_int(s, 1, q->history ? 1 : 0);
		st_text(s, 5, q->status);
		sqlite3_bind_int(s, 8, q->limit);
		sqlite3_bind_int(s, 9, q->offset);
	} else {
		sqlite3_bind_int64(s, 8, INT64_MAX);
		sqlite3_bind_int(s, 9, 0);
	}
	st_text(s, 2, q->session_id);
	st_text(s, 3, q->target);
	st_text(s, 4, q->owner);
	sqlite3_bind_int64(s, 6, q->after_ms);
	sqlite3_bind_int64(s, 7, q->before_ms);
	skip = pending ? q->offset : 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		st_session_row(s, si);
		if (pending) {
			st_session_overlay(st, si);
			if (st_is_terminal(si->rec.status) !=
			    (q->history != 0) || (q->status != NULL &&
			    strcmp(q->status, si->rec.status) != 0))
				continue;
			if (skip > 0) {
				skip--;
				continue;
			}
			if (given++ >= q->limit)
				break;
		}
		if (fn(arg, si) != 0)
			break;
	}
	rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : PH_ERR_IO;
out:
	sqlite3_finalize(s);
	free(si);
	return rc;
}

/* ---- documents ---------------------------------------------------------- */

int
store_document_get(struct store *st, const char *name, char **content_out,
    char type_out[32])
{
	sqlite3_stmt *s = NULL;
	const char *v;
	int rc;

	*content_out = NULL;
	if ((rc = st_prep(st, "SELECT content, document_type FROM documents "
	    "WHERE name = ?1", &s)) != 0)
		return rc;
	st_text(s, 1, name);
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		rc = rc == SQLITE_DONE ? PH_ERR_NOTFOUND : PH_ERR_IO;
		goto out;
	}
	v = (const char *)sqlite3_column_text(s, 0);
	if ((*content_out = strdup(v ? v : "")) == NULL) {
		rc = PH_ERR_NOMEM;
		goto out;
	}
	if (type_out != NULL)
		st_col(s, 1, type_out, 32);
	rc = 0;
out:
	sqlite3_finalize(s);
	return rc;
}

/* ---- documents, with versions ------------------------------------------- */

#define ST_DOC_COLS \
	"d.name, d.document_type, v.document_format, v.version_name, " \
	"d.display_name, d.target_type, d.builtin, v.version, " \
	"d.default_version, d.latest_version, v.created_ms, v.content"

void
store_document_rec_clear(struct document_rec *d)
{
	if (d == NULL)
		return;
	free(d->content);
	memset(d, 0, sizeof(*d));
}

static int
st_document_row(sqlite3_stmt *s, struct document_rec *d)
{
	const char *v;

	memset(d, 0, sizeof(*d));
	st_col(s, 0, d->name, sizeof(d->name));
	st_col(s, 1, d->document_type, sizeof(d->document_type));
	st_col(s, 2, d->document_format, sizeof(d->document_format));
	st_col(s, 3, d->version_name, sizeof(d->version_name));
	st_col(s, 4, d->display_name, sizeof(d->display_name));
	st_col(s, 5, d->target_type, sizeof(d->target_type));
	d->builtin = sqlite3_column_int(s, 6);
	d->version = sqlite3_column_int64(s, 7);
	d->default_version = sqlite3_column_int64(s, 8);
	d->latest_version = sqlite3_column_int64(s, 9);
	d->created_ms = sqlite3_column_int64(s, 10);
	v = (const char *)sqlite3_column_text(s, 11);
	if ((d->content = strdup(v != NULL ? v : "")) == NULL)
		return PH_ERR_NOMEM;
	return 0;
}

static int
st_document_exists(struct store *st, const char *name, int *builtin)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = st_prep(st, "SELECT builtin FROM documents WHERE name = ?1",
	    &s)) != 0)
		return rc;
	st_text(s, 1, name);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		if (builtin != NULL)
			*builtin = sqlite3_column_int(s, 0);
		rc = 0;
	} else {
		rc = rc == SQLITE_DONE ? PH_ERR_NOTFOUND : PH_ERR_IO;
	}
	sqlite3_finalize(s);
	return rc;
}

int
store_document_version_get(struct store *st, const char *name,
    int64_t version, const char *version_name, struct document_rec *out)
{
	sqlite3_stmt *s = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = st_document_exists(st, name, NULL)) != 0)
		return rc;
	if ((rc = st_prep(st, "SELECT " ST_DOC_COLS " FROM documents d "
	    "JOIN document_versions v ON v.name = d.name WHERE d.name = ?1 "
	    "AND v.version = CASE ?2 WHEN 0 THEN d.default_version "
	    "WHEN -1 THEN d.latest_version ELSE ?2 END "
	    "AND (?3 IS NULL OR v.version_name = ?3) "
	    "ORDER BY v.version DESC LIMIT 1", &s)) != 0)
		return rc;
	st_text(s, 1, name);
	sqlite3_bind_int64(s, 2, version);
	st_text(s, 3, version_name);
	/* A version name alone selects by name, whatever the number. */
	if (version_name != NULL && version == STORE_DOC_DEFAULT) {
		sqlite3_finalize(s);
		if ((rc = st_prep(st, "SELECT " ST_DOC_COLS " FROM documents d "
		    "JOIN document_versions v ON v.name = d.name "
		    "WHERE d.name = ?1 AND v.version_name = ?2 "
		    "ORDER BY v.version DESC LIMIT 1", &s)) != 0)
			return rc;
		st_text(s, 1, name);
		st_text(s, 2, version_name);
	}
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		rc = st_document_row(s, out);
	else
		rc = rc == SQLITE_DONE ? PH_ERR_INVALID : PH_ERR_IO;
	sqlite3_finalize(s);
	if (rc != 0)
		store_document_rec_clear(out);
	return rc;
}

static int
st_document_each(struct store *st, sqlite3_stmt *s,
    int (*fn)(void *arg, const struct document_rec *d), void *arg)
{
	struct document_rec d;
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if ((rc = st_document_row(s, &d)) != 0)
			return rc;
		rc = fn(arg, &d);
		store_document_rec_clear(&d);
		if (rc != 0)
			return 0;
	}
	return rc == SQLITE_DONE ? 0 : PH_ERR_IO;
}

int
store_document_version_foreach(struct store *st, const char *name,
    int (*fn)(void *arg, const struct document_rec *d), void *arg)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = st_document_exists(st, name, NULL)) != 0)
		return rc;
	if ((rc = st_prep(st, "SELECT " ST_DOC_COLS " FROM documents d "
	    "JOIN document_versions v ON v.name = d.name WHERE d.name = ?1 "
	    "ORDER BY v.version", &s)) != 0)
		return rc;
	st_text(s, 1, name);
	rc = st_document_each(st, s, fn, arg);
	sqlite3_finalize(s);
	return rc;
}

int
store_document_foreach(struct store *st,
    int (*fn)(void *arg, const struct document_rec *d), void *arg)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = st_prep(st, "SELECT " ST_DOC_COLS " FROM documents d "
	    "JOIN document_versions v ON v.name = d.name "
	    "AND v.version = d.default_version ORDER BY d.name", &s)) != 0)
		return rc;
	rc = st_document_each(st, s, fn, arg);
	sqlite3_finalize(s);
	return rc;
}

static int
st_document_version_put(struct store *st, const struct document_new *d,
    int64_t version, int64_t now_ms)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = st_prep(st, "INSERT INTO document_versions (name, version, "
	    "content, document_format, version_name, created_ms) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6)", &s)) != 0)
		return rc;
	st_text(s, 1, d->name);
	sqlite3_bind_int64(s, 2, version);
	st_text(s, 3, d->content);
	st_text(s, 4, d->document_format ? d->document_format : "JSON");
	st_text(s, 5, d->version_name ? d->version_name : "");
	sqlite3_bind_int64(s, 6, now_ms);
	rc = st_step_done(st, s, "document_version_put");
	sqlite3_finalize(s);
	return rc;
}

int
store_document_create(struct store *st, const struct document_new *d,
    int replace_builtin, int max_docs, int64_t now_ms)
{
	sqlite3_stmt *s = NULL;
	int rc, builtin = 0, n;

	if ((rc = st_begin(st)) != 0)
		return rc;
	rc = st_document_exists(st, d->name, &builtin);
	if (rc == 0 && (!builtin || !replace_builtin)) {
		rc = PH_ERR_EXISTS;
		goto fail;
	}
	if (rc == 0) {
		/* The account takes the document over: its versions go. */
		if ((rc = st_prep(st, "DELETE FROM documents WHERE name = ?1",
		    &s)) != 0)
			goto fail;
		st_text(s, 1, d->name);
		rc = st_step_done(st, s, "document_create");
		sqlite3_finalize(s);
		s = NULL;
		if (rc != 0)
			goto fail;
	} else if (rc != PH_ERR_NOTFOUND) {
		goto fail;
	}
	if ((rc = st_prep(st, "SELECT count(*) FROM documents WHERE "
	    "builtin = 0", &s)) != 0)
		goto fail;
	n = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
	sqlite3_finalize(s);
	s = NULL;
	if (n < 0) {
		rc = PH_ERR_IO;
		goto fail;
	}
	if (n >= max_docs) {
		rc = PH_ERR_TOOBIG;
		goto fail;
	}
	if ((rc = st_prep(st, "INSERT INTO documents (name, document_type, "
	    "content, builtin, created_ms, default_version, latest_version, "
	    "display_name, target_type) VALUES (?1, ?2, ?3, 0, ?4, 1, 1, "
	    "?5, ?6)", &s)) != 0)
		goto fail;
	st_text(s, 1, d->name);
	st_text(s, 2, d->document_type);
	st_text(s, 3, d->content);
	sqlite3_bind_int64(s, 4, now_ms);
	st_text(s, 5, d->display_name ? d->display_name : "");
	st_text(s, 6, d->target_type ? d->target_type : "");
	rc = st_step_done(st, s, "document_create");
	sqlite3_finalize(s);
	s = NULL;
	if (rc != 0 || (rc = st_document_version_put(st, d, 1, now_ms)) != 0 ||
	    (rc = st_commit(st)) != 0)
		goto fail;
	return 0;
fail:
	sqlite3_finalize(s);
	st_rollback(st);
	return rc;
}

int
store_document_add_version(struct store *st, const struct document_new *d,
    int make_default, int64_t now_ms, int64_t *version_out)
{
	sqlite3_stmt *s = NULL;
	int64_t latest = 0, count = 0;
	int rc;

	if ((rc = st_begin(st)) != 0)
		return rc;
	if ((rc = st_prep(st, "SELECT max(version), count(*) FROM "
	    "document_versions WHERE name = ?1", &s)) != 0)
		goto fail;
	st_text(s, 1, d->name);
	if (sqlite3_step(s) == SQLITE_ROW) {
		latest = sqlite3_column_int64(s, 0);
		count = sqlite3_column_int64(s, 1);
	}
	sqlite3_finalize(s);
	s = NULL;
	if (count == 0) {
		rc = PH_ERR_NOTFOUND;
		goto fail;
	}
	if (count >= STORE_DOC_VERSIONS_MAX) {
		rc = PH_ERR_TOOBIG;
		goto fail;
	}
	if ((rc = st_document_version_put(st, d, latest + 1, now_ms)) != 0)
		goto fail;
	/* builtin goes to 0 first, so the built-in triggers stay quiet and
	 * st_seed_documents never overwrites the account's content. */
	if ((rc = st_prep(st, "UPDATE documents SET builtin = 0, "
	    "latest_version = ?2, "
	    "display_name = coalesce(?3, display_name), "
	    "target_type = coalesce(?4, target_type) WHERE name = ?1",
	    &s)) != 0)
		goto fail;
	st_text(s, 1, d->name);
	sqlite3_bind_int64(s, 2, latest + 1);
	st_text(s, 3, d->display_name);
	st_text(s, 4, d->target_type);
	rc = st_step_done(st, s, "document_add_version");
	sqlite3_finalize(s);
	s = NULL;
	if (rc != 0)
		goto fail;
	if (make_default) {
		if ((rc = st_prep(st, "UPDATE documents SET "
		    "default_version = ?2, content = ?3 WHERE name = ?1",
		    &s)) != 0)
			goto fail;
		st_text(s, 1, d->name);
		sqlite3_bind_int64(s, 2, latest + 1);
		st_text(s, 3, d->content);
		rc = st_step_done(st, s, "document_add_version");
		sqlite3_finalize(s);
		s = NULL;
		if (rc != 0)
			goto fail;
	}
	if ((rc = st_commit(st)) != 0)
		goto fail;
	if (version_out != NULL)
		*version_out = latest + 1;
	return 0;
fail:
	sqlite3_finalize(s);
	st_rollback(st);
	return rc;
}

int
store_document_set_default(struct store *st, const char *name,
    int64_t version)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = st_document_exists(st, name, NULL)) != 0)
		return rc;
	if ((rc = st_prep(st, "UPDATE documents SET default_version = ?2, "
	    "content = (SELECT content FROM document_versions WHERE "
	    "name = ?1 AND version = ?2) WHERE name = ?1 AND EXISTS "
	    "(SELECT 1 FROM document_versions WHERE name = ?1 AND "
	    "version = ?2)", &s)) != 0)
		return rc;
	st_text(s, 1, name);
	sqlite3_bind_int64(s, 2, version);
	rc = st_step_done(st, s, "document_set_default");
	sqlite3_finalize(s);
	if (rc == 0 && sqlite3_changes(st->db) == 0)
		rc = PH_ERR_INVALID;
	return rc;
}

/* Delete one version of a document (not its default). */
static int
st_document_delete_version(struct store *st, const char *name,
    int64_t version)
{
	struct document_rec d;
	sqlite3_stmt *s = NULL;
	int rc;

	rc = store_document_version_get(st, name, version, NULL, &d);
	if (rc != 0)
		return rc;
	rc = d.default_version == version ? PH_ERR_STATE : 0;
	store_document_rec_clear(&d);
	if (rc != 0)
		return rc;
	if ((rc = st_begin(st)) != 0)
		return rc;
	if ((rc = st_prep(st, "DELETE FROM document_versions WHERE "
	    "name = ?1 AND version = ?2", &s)) != 0)
		goto fail;
	st_text(s, 1, name);
	sqlite3_bind_int64(s, 2, version);
	rc = st_step_done(st, s, "document_delete");
	sqlite3_finalize(s);
	s = NULL;
	if (rc != 0)
		goto fail;
	if ((rc = st_prep(st, "UPDATE documents SET latest_version = "
	    "(SELECT max(version) FROM document_versions WHERE name = ?1) "
	    "WHERE name = ?1", &s)) != 0)
		goto fail;
	st_text(s, 1, name);
	rc = st_step_done(st, s, "document_delete");
	sqlite3_finalize(s);
	s = NULL;
	if (rc != 0 || (rc = st_commit(st)) != 0)
		goto fail;
	return 0;
fail:
	sqlite3_finalize(s);
	st_rollback(st);
	return rc;
}

int
store_document_delete(struct store *st, const char *name, int64_t version)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (version != 0)
		return st_document_delete_version(st, name, version);
	if ((rc = st_document_exists(st, name, NULL)) != 0)
		return rc;
	if ((rc = st_begin(st)) != 0)
		return rc;
	if ((rc = st_prep(st, "DELETE FROM documents WHERE name = ?1",
	    &s)) != 0)
		goto fail;
	st_text(s, 1, name);
	rc = st_step_done(st, s, "document_delete");
	sqlite3_finalize(s);
	s = NULL;
	if (rc != 0 || (rc = st_tags_drop(st, "Document", name)) != 0 ||
	    (rc = st_commit(st)) != 0)
		goto fail;
	/* Built-in documents of that name come back as built. */
	return st_seed_documents(st);
fail:
	sqlite3_finalize(s);
	st_rollback(st);
	return rc;
}
