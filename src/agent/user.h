/* user: who a session runs as (spec 7.6, 9.2): the RunAs user, ssm-user
 * (created on first use when the agent is root) or the agent's own user. */
#ifndef PORTHOLE_AGENT_USER_H
#define PORTHOLE_AGENT_USER_H

#include <stddef.h>
#include <sys/types.h>

#define AGENT_SSM_USER "ssm-user"
#define AGENT_SUDOERS_FILE "/etc/sudoers.d/ssm-agent-users"
#define AGENT_MAX_GROUPS 256

struct agent_user {
	char name[64];
	uid_t uid;
	gid_t gid;
	char home[1024];
	char shell[1024];    /* the login shell to exec (already vetted) */
	gid_t groups[AGENT_MAX_GROUPS];
	int ngroups;         /* supplementary groups (getgrouplist) */
	int switch_user;     /* 1: the child drops to uid/gid/groups */
};

/* Look up name in the user database and fill u, including its groups and
 * a usable login shell. switch_user is set when the agent is root. */
int agent_user_lookup(const char *name, struct agent_user *u, char *err,
    size_t errlen);
/* The agent's own user (non-root agents run sessions as themselves). */
int agent_user_self(struct agent_user *u, char *err, size_t errlen);
/* spec 9.2: make sure ssm-user exists: useradd when it does not and, for a
 * user created now, the sudoers file unless sudoers_entry is 0. */
int agent_user_ensure_ssm_user(int sudoers_entry, char *err, size_t errlen);

/* Choose the program for a login shell: the passwd shell when it is an
 * executable real shell, else /bin/bash, else /bin/sh. */
void agent_user_pick_shell(const char *pw_shell, char *out, size_t out_len);

#endif
