/* agent pty: a program started through agent_pty_spawn sees the initial
 * window size from its first byte, has a fresh environment, and an exec
 * failure is reported to the caller. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent/shell_pty.h"
#include "agent/user.h"
#include "common/err.h"

/* Read the master until EIO/EOF (the child closed the slave) or 10 s. */
static size_t
read_all(int fd, char *out, size_t max)
{
	struct pollfd pfd;
	size_t n = 0;
	ssize_t r;
	int i;

	for (i = 0; i < 200 && n + 1 < max; i++) {
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 50) <= 0)
			continue;
		r = read(fd, out + n, max - 1 - n);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	out[n] = '\0';
	return n;
}

static void
reap(pid_t pid, int *status)
{
	int i;

	for (i = 0; i < 200; i++) {
		if (waitpid(pid, status, WNOHANG) == pid)
			return;
		usleep(10000);
	}
	fail_msg("child %d did not exit", (int)pid);
}

static void
test_size_and_output(void **state)
{
	char *const argv[] = { "sh", "-c", "stty size; echo hi", NULL };
	char *const envp[] = { "PATH=" AGENT_SESSION_PATH, NULL };
	struct agent_spawn sp;
	char out[512], err[256];
	int master, status;
	pid_t pid;

	(void)state;
	memset(&sp, 0, sizeof(sp));
	sp.path = "/bin/sh";
	sp.argv = argv;
	sp.envp = envp;
	sp.rows = 50;
	sp.cols = 132;
	assert_int_equal(agent_pty_spawn(&sp, &master, &pid, err,
	    sizeof(err)), 0);
	assert_true(master >= 0);
	read_all(master, out, sizeof(out));
	assert_non_null(strstr(out, "50 132"));
	assert_non_null(strstr(out, "hi"));
	reap(pid, &status);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	close(master);
}

static void
test_login_env_and_fds(void **state)
{
	struct agent_session_cmd cmd;
	struct agent_user u;
	struct agent_spawn sp;
	char out[4096], err[256];
	int master, status, leak;
	pid_t pid;

	(void)state;
	assert_int_equal(agent_user_self(&u, err, sizeof(err)), 0);
	assert_int_equal(u.switch_user, 0);
	assert_int_equal(agent_session_cmd_build(&cmd, &u,
	    "echo \"T=$TERM L=$LANG H=$HOME\"; ls /proc/self/fd | tr '\\n' ' ';"
	    " echo; stty size; echo end"), 0);
	assert_string_equal(cmd.argv[0], "sh");
	/* A descriptor of ours that must not reach the child. */
	leak = dup(1);
	assert_true(leak > 2);
	memset(&sp, 0, sizeof(sp));
	sp.path = cmd.path;
	sp.argv = cmd.argv;
	sp.envp = cmd.envp;
	sp.user = &u;
	sp.cwd = u.home;
	assert_int_equal(agent_pty_spawn(&sp, &master, &pid, err,
	    sizeof(err)), 0);
	read_all(master, out, sizeof(out));
	assert_non_null(strstr(out, "T=xterm-256color L=C.UTF-8 H="));
	/* Only 0, 1, 2 and ls's own directory descriptor (3). */
	assert_non_null(strstr(out, "0 1 2 3 \r\n"));
	assert_non_null(strstr(out, "end"));
	reap(pid, &status);
	close(master);
	close(leak);
	agent_session_cmd_free(&cmd);

	/* A login shell is argv[0] "-<name>". */
	assert_int_equal(agent_session_cmd_build(&cmd, &u, NULL), 0);
	assert_int_equal(cmd.argv[0][0], '-');
	assert_ptr_equal(cmd.path, u.shell);
	agent_session_cmd_free(&cmd);
}

static void
test_exec_failure(void **state)
{
	char *const argv[] = { "nope", NULL };
	char *const envp[] = { NULL };
	struct agent_spawn sp;
	char err[256];
	int master;
	pid_t pid;

	(void)state;
	memset(&sp, 0, sizeof(sp));
	sp.path = "/nonexistent/porthole-test-shell";
	sp.argv = argv;
	sp.envp = envp;
	assert_int_equal(agent_pty_spawn(&sp, &master, &pid, err,
	    sizeof(err)), PH_ERR_IO);
	assert_int_equal(master, -1);
	assert_non_null(strstr(err, "exec /nonexistent/porthole-test-shell"));
	assert_non_null(strstr(err, "No such file"));
}

static void
test_resize_and_shell_pick(void **state)
{
	char *const argv[] = { "sh", "-c", "sleep 0.3; stty size", NULL };
	char *const envp[] = { "PATH=" AGENT_SESSION_PATH, NULL };
	struct agent_spawn sp;
	char out[512], err[256], sh[64];
	int master, status;
	pid_t pid;

	(void)state;
	memset(&sp, 0, sizeof(sp));
	sp.path = "/bin/sh";
	sp.argv = argv;
	sp.envp = envp;
	sp.rows = 24;
	sp.cols = 80;
	assert_int_equal(agent_pty_spawn(&sp, &master, &pid, err,
	    sizeof(err)), 0);
	assert_int_equal(agent_pty_resize(master, 33, 99), 0);
	read_all(master, out, sizeof(out));
	assert_non_null(strstr(out, "33 99"));
	reap(pid, &status);
	close(master);

	agent_user_pick_shell("/usr/sbin/nologin", sh, sizeof(sh));
	assert_true(strcmp(sh, "/bin/bash") == 0 || strcmp(sh, "/bin/sh") == 0);
	agent_user_pick_shell("/bin/sh", sh, sizeof(sh));
	assert_string_equal(sh, "/bin/sh");
	agent_user_pick_shell("relative", sh, sizeof(sh));
	assert_true(sh[0] == '/');
}

static void
test_signal_group(void **state)
{
	char *const argv[] = { "sh", "-c", "sleep 30", NULL };
	char *const envp[] = { "PATH=" AGENT_SESSION_PATH, NULL };
	struct agent_spawn sp;
	char err[256];
	int master, status;
	pid_t pid;

	(void)state;
	memset(&sp, 0, sizeof(sp));
	sp.path = "/bin/sh";
	sp.argv = argv;
	sp.envp = envp;
	assert_int_equal(agent_pty_spawn(&sp, &master, &pid, err,
	    sizeof(err)), 0);
	/* Another session's group, or nonsense ids: nothing is hit. */
	assert_int_equal(agent_pty_signal_group(getsid(0), pid, SIGKILL), 0);
	assert_int_equal(agent_pty_signal_group(pid, 1, SIGKILL), 0);
	assert_int_equal(agent_pty_signal_group(0, 0, SIGKILL), 0);
	assert_true(agent_pty_signal_group(pid, pid, SIGKILL) >= 1);
	reap(pid, &status);
	assert_true(WIFSIGNALED(status) || WIFEXITED(status));
	close(master);
}

#define PSIZE(s) agent_pty_parse_size(s, strlen(s), &rows, &cols)

static void
test_parse_size(void **state)
{
	unsigned short rows = 0, cols = 0;
	char big[400];

	(void)state;
	assert_int_equal(PSIZE("{\"cols\":132,\"rows\":50}"), 0);
	assert_int_equal(rows, 50);
	assert_int_equal(cols, 132);
	assert_int_equal(PSIZE("{\"Cols\":1,\"ROWS\":2}"), 0);
	assert_int_equal(rows, 2);
	assert_int_equal(cols, 1);
	assert_int_equal(PSIZE("{\"cols\":0,\"rows\":5}"), PH_ERR_INVALID);
	assert_int_equal(PSIZE("{\"cols\":70000,\"rows\":5}"),
	    PH_ERR_INVALID);
	assert_int_equal(PSIZE("{\"cols\":-1,\"rows\":5}"), PH_ERR_INVALID);
	assert_int_equal(PSIZE("{\"cols\":\"80\",\"rows\":5}"),
	    PH_ERR_INVALID);
	assert_int_equal(PSIZE("{\"cols\":80}"), PH_ERR_INVALID);
	assert_int_equal(PSIZE("garbage"), PH_ERR_INVALID);
	assert_int_equal(PSIZE(""), PH_ERR_INVALID);
	memset(big, ' ', sizeof(big));
	assert_int_equal(agent_pty_parse_size(big, sizeof(big), &rows, &cols),
	    PH_ERR_TOOBIG);
	/* Unchanged by the failures. */
	assert_int_equal(rows, 2);
	assert_int_equal(cols, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_size_and_output),
		cmocka_unit_test(test_login_env_and_fds),
		cmocka_unit_test(test_exec_failure),
		cmocka_unit_test(test_resize_and_shell_pick),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_signal_group),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
