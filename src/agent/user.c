#include "agent/user.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"

void
agent_user_pick_shell(const char *pw_shell, char *out, size_t out_len)
{
	const char *base;

	if (pw_shell != NULL && pw_shell[0] == '/') {
		base = strrchr(pw_shell, '/') + 1;
		/* nologin and false mean "no interactive login", but a
		 * session was authorised by policy: give it a real shell. */
		if (strcmp(base, "nologin") != 0 &&
		    strcmp(base, "false") != 0 &&
		    access(pw_shell, X_OK) == 0 &&
		    strlen(pw_shell) < out_len) {
			snprintf(out, out_len, "%s", pw_shell);
			return;
		}
	}
	if (access("/bin/bash", X_OK) == 0)
		snprintf(out, out_len, "/bin/bash");
	else
		snprintf(out, out_len, "/bin/sh");
}

static int
user_fill(const struct passwd *pw, struct agent_user *u, char *err,
    size_t errlen)
{
	int n;

	memset(u, 0, sizeof(*u));
	if (strlen(pw->pw_name) >= sizeof(u->name) ||
	    strlen(pw->pw_dir) >= sizeof(u->home)) {
		ph_errf(err, errlen, "user name or home directory too long");
		return PH_ERR_TOOBIG;
	}
	snprintf(u->name, sizeof(u->name), "%s", pw->pw_name);
	snprintf(u->home, sizeof(u->home), "%s",
	    pw->pw_dir[0] == '/' ? pw->pw_dir : "/");
	u->uid = pw->pw_uid;
	u->gid = pw->pw_gid;
	agent_user_pick_shell(pw->pw_shell, u->shell, sizeof(u->shell));
	/* Groups are resolved here, in the parent: after fork only
	 * async-signal-safe calls are made, and setgroups is one. */
	n = AGENT_MAX_GROUPS;
	if (getgrouplist(pw->pw_name, pw->pw_gid, u->groups, &n) < 0) {
		log_warn("event=groups_truncated user=%s count=%d",
		    pw->pw_name, n);
		n = AGENT_MAX_GROUPS;
	}
	u->ngroups = n;
	u->switch_user = geteuid() == 0;
	return 0;
}

int
agent_user_lookup(const char *name, struct agent_user *u, char *err,
    size_t errlen)
{
	struct passwd *pw;

	errno = 0;
	pw = getpwnam(name);
	if (pw == NULL) {
		ph_errf(err, errlen, "user %s does not exist", name);
		return PH_ERR_NOTFOUND;
	}
	return user_fill(pw, u, err, errlen);
}

int
agent_user_self(struct agent_user *u, char *err, size_t errlen)
{
	struct passwd *pw;
	int rc;

	pw = getpwuid(geteuid());
	if (pw == NULL) {
		ph_errf(err, errlen, "the agent's uid %u has no passwd entry",
		    (unsigned)geteuid());
		return PH_ERR_NOTFOUND;
	}
	rc = user_fill(pw, u, err, errlen);
	u->switch_user = 0; /* already this user */
	return rc;
}

/* Run useradd with a fixed argv (no shell) and wait for it. */
static int
user_run_useradd(char *const argv[], char *err, size_t errlen)
{
	int status, devnull;
	pid_t pid, w;

	pid = fork();
	if (pid < 0) {
		ph_errf(err, errlen, "fork: %s", strerror(errno));
		return PH_ERR_IO;
	}
	if (pid == 0) {
		devnull = open("/dev/null", O_RDWR);
		if (devnull >= 0) {
			dup2(devnull, 0);
			dup2(devnull, 1);
		}
		/* useradd lives in sbin, which a service's PATH may lack. */
		execv("/usr/sbin/useradd", argv);
		execv("/sbin/useradd", argv);
		execvp(argv[0], argv);
		_exit(127);
	}
	do
		w = waitpid(pid, &status, 0);
	while (w < 0 && errno == EINTR);
	if (w < 0) {
		ph_errf(err, errlen, "waitpid: %s", strerror(errno));
		return PH_ERR_IO;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		ph_errf(err, errlen, "%s failed (%s %d)", argv[0],
		    WIFEXITED(status) ? "exit status" : "signal",
		    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		return PH_ERR_IO;
	}
	return 0;
}

static int
user_sudoers(char *err, size_t errlen)
{
	/* spec 9.2: exactly these two lines, final mode 0440. */
	static const char rules[] = "# User rules for ssm-user\n"
	    "ssm-user ALL=(ALL) NOPASSWD:ALL\n";
	size_t off = 0;
	ssize_t w;
	int fd;

	fd = open(AGENT_SUDOERS_FILE, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
	    O_NOFOLLOW, 0440);
	if (fd < 0) {
		if (errno == EEXIST) {
			/* An existing file is left as it is, only its mode is
			 * made what sudo requires. */
			if (chmod(AGENT_SUDOERS_FILE, 0440) != 0)
				log_warn("event=sudoers_chmod_failed "
				    "err=\"%s\"", strerror(errno));
			return 0;
		}
		ph_errf(err, errlen, "cannot create %s: %s",
		    AGENT_SUDOERS_FILE, strerror(errno));
		return PH_ERR_IO;
	}
	while (off < sizeof(rules) - 1) {
		w = write(fd, rules + off, sizeof(rules) - 1 - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			ph_errf(err, errlen, "cannot write %s: %s",
			    AGENT_SUDOERS_FILE, strerror(errno));
			close(fd);
			unlink(AGENT_SUDOERS_FILE);
			return PH_ERR_IO;
		}
		off += (size_t)w;
	}
	fchmod(fd, 0440);
	close(fd);
	log_info("event=sudoers_created path=%s", AGENT_SUDOERS_FILE);
	return 0;
}

int
agent_user_ensure_ssm_user(int sudoers_entry, char *err, size_t errlen)
{
	static char *const useradd[] = { "useradd", "-m", "-s", "/bin/bash",
	    AGENT_SSM_USER, NULL };
	struct stat sb;
	int rc;

	if (getpwnam(AGENT_SSM_USER) != NULL)
		return 0; /* spec 9.2: existing users are left alone */
	log_info("event=creating_user user=%s", AGENT_SSM_USER);
	rc = user_run_useradd(useradd, err, errlen);
	if (rc != 0)
		return rc;
	if (getpwnam(AGENT_SSM_USER) == NULL) {
		ph_errf(err, errlen, "useradd did not create %s",
		    AGENT_SSM_USER);
		return PH_ERR_IO;
	}
	if (!sudoers_entry)
		return 0;
	if (stat("/etc/sudoers.d", &sb) != 0 || !S_ISDIR(sb.st_mode)) {
		/* No sudo on this machine: nothing to configure. */
		log_info("event=sudoers_skipped reason=\"no /etc/sudoers.d\"");
		return 0;
	}
	return user_sudoers(err, errlen);
}
