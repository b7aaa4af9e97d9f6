/* agent noninteractive: a command runs without a terminal, stdin is
 * /dev/null, stdout and stderr arrive apart and intact (also when the
 * consumer takes little at a time), the exit status is the one a shell
 * gives (127 not found, 128+signal), and shell-style splitting refuses
 * what sh would refuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <uv.h>

#include "agent/noninteractive.h"
#include "agent/shell_pty.h"
#include "agent/user.h"
#include "common/buf.h"
#include "common/err.h"

struct run {
	struct buf out, err;
	int code;
	int exited;
	int calls_after_exit;
	size_t take_max;     /* 0: take everything */
	struct agent_ni *ni;
	uv_timer_t resume;
	int signal_after_output; /* signal the command at its first byte */
	int signalled;
};

static size_t
on_output(void *ud, enum agent_ni_stream st, const uint8_t *p, size_t n)
{
	struct run *r = ud;
	size_t k = n;

	if (r->exited)
		r->calls_after_exit++;
	if (r->take_max > 0 && k > r->take_max)
		k = r->take_max;
	assert_int_equal(buf_append(st == AGENT_NI_STDOUT ? &r->out : &r->err,
	    p, k), 0);
	if (r->signal_after_output && !r->signalled) {
		r->signalled = 1;
		assert_int_equal(agent_ni_signal(r->ni, SIGTERM), 0);
	}
	return k;
}

static void
on_exit_cb(void *ud, int code)
{
	struct run *r = ud;

	assert_int_equal(r->exited, 0);
	r->exited = 1;
	r->code = code;
}

static const struct agent_ni_cbs cbs = {
	.on_output = on_output,
	.on_exit = on_exit_cb,
};

static char *envp[] = { "PATH=" AGENT_SESSION_PATH, "LANG=C", NULL };

/* The consumer resumes every few milliseconds, as acknowledgements would
 * make it. */
static void
resume_cb(uv_timer_t *t)
{
	struct run *r = t->data;

	if (r->ni != NULL && !r->exited)
		agent_ni_resume(r->ni);
}

static void
closed_cb(uv_handle_t *h)
{
	(void)h;
}

/* Run line to its end (at most 30 s); returns agent_ni_start's result. */
static int
run_line(struct run *r, const char *line, char *errtxt, size_t errlen)
{
	struct agent_ni_argv av;
	struct agent_ni_spawn sp;
	uv_loop_t loop;
	uint64_t t0;
	int rc, i;

	buf_init(&r->out, (size_t)64 << 20);
	buf_init(&r->err, (size_t)64 << 20);
	assert_int_equal(uv_loop_init(&loop), 0);
	rc = agent_ni_split(line, &av, errtxt, errlen);
	if (rc != 0) {
		assert_int_equal(uv_loop_close(&loop), 0);
		return rc;
	}
	memset(&sp, 0, sizeof(sp));
	sp.argv = av.argv;
	sp.envp = envp;
	sp.path = AGENT_SESSION_PATH;
	sp.cwd = "/";
	rc = agent_ni_start(&r->ni, &loop, &sp, &cbs, r, &r->code, errtxt,
	    errlen);
	agent_ni_argv_free(&av);
	if (rc != 0) {
		assert_null(r->ni);
		assert_int_equal(uv_run(&loop, UV_RUN_NOWAIT), 0);
		assert_int_equal(uv_loop_close(&loop), 0);
		return rc;
	}
	uv_timer_init(&loop, &r->resume);
	r->resume.data = r;
	uv_timer_start(&r->resume, resume_cb, 2, 2);
	t0 = uv_hrtime();
	while (!r->exited) {
		uv_run(&loop, UV_RUN_ONCE);
		if ((uv_hrtime() - t0) / 1000000 > 30000)
			fail_msg("the command did not end");
	}
	uv_timer_stop(&r->resume);
	uv_close((uv_handle_t *)&r->resume, closed_cb);
	agent_ni_close(r->ni);
	r->ni = NULL;
	for (i = 0; i < 1000 && uv_run(&loop, UV_RUN_NOWAIT) != 0; i++)
		usleep(1000);
	assert_int_equal(uv_loop_close(&loop), 0);
	return 0;
}

static void
run_free(struct run *r)
{
	buf_free(&r->out);
	buf_free(&r->err);
}

static void
test_stdout_stderr_apart(void **state)
{
	struct run r;
	char err[256];

	(void)state;
	memset(&r, 0, sizeof(r));
	assert_int_equal(run_line(&r, "sh -c 'echo to-out; echo to-err >&2; "
	    "echo more; exit 3'", err, sizeof(err)), 0);
	assert_int_equal(r.code, 3);
	assert_string_equal(buf_cstr(&r.out), "to-out\nmore\n");
	assert_string_equal(buf_cstr(&r.err), "to-err\n");
	assert_int_equal(r.calls_after_exit, 0);
	run_free(&r);
}

static void
test_stderr_only(void **state)
{
	struct run r;
	char err[256];

	(void)state;
	memset(&r, 0, sizeof(r));
	assert_int_equal(run_line(&r, "sh -c 'echo only-err 1>&2'", err,
	    sizeof(err)), 0);
	assert_int_equal(r.code, 0);
	assert_int_equal(r.out.len, 0);
	assert_string_equal(buf_cstr(&r.err), "only-err\n");
	run_free(&r);
}

static void
test_no_terminal_no_stdin(void **state)
{
	struct run r;
	char err[256];

	(void)state;
	memset(&r, 0, sizeof(r));
	/* stdin is /dev/null: cat ends at once; no controlling terminal. */
	assert_int_equal(run_line(&r, "sh -c 'cat; test -t 0 || echo no-tty; "
	    "ls -l /proc/self/fd/0; (: </dev/tty) 2>/dev/null || "
	    "echo no-ctty'", err, sizeof(err)), 0);
	assert_non_null(strstr(buf_cstr(&r.out), "no-tty\n"));
	assert_non_null(strstr(buf_cstr(&r.out), "/dev/null"));
	assert_non_null(strstr(buf_cstr(&r.out), "no-ctty"));
	run_free(&r);
}

static void
test_not_found(void **state)
{
	struct run r;
	char err[256];

	(void)state;
	memset(&r, 0, sizeof(r));
	assert_int_equal(run_line(&r, "no-such-command-here --x", err,
	    sizeof(err)), PH_ERR_NOTFOUND);
	assert_int_equal(r.code, AGENT_NI_EXIT_NOT_FOUND);
	assert_non_null(strstr(err, "no-such-command-here: command not "
	    "found"));
	run_free(&r);

	/* A path that does not exist, and one that is not executable. */
	memset(&r, 0, sizeof(r));
	assert_int_equal(run_line(&r, "/nonexistent/dir/prog", err,
	    sizeof(err)), PH_ERR_NOTFOUND);
	assert_int_equal(r.code, 127);
	run_free(&r);
	memset(&r, 0, sizeof(r));
	assert_int_equal(run_line(&r, "/etc/passwd", err, sizeof(err)),
	    PH_ERR_DENIED);
	assert_int_equal(r.code, AGENT_NI_EXIT_NOT_EXECUTABLE);
	run_free(&r);

	/* Through sh, the shell's own 127. */
	memset(&r, 0, sizeof(r));
	assert_int_equal(run_line(&r, "sh -c no-such-command-here", err,
	    sizeof(err)), 0);
	assert_int_equal(r.code, 127);
	assert_true(r.err.len > 0);
	run_free(&r);
}

static void
test_huge_output_backpressure(void **state)
{
	struct run r;
	char err[256], line[32];
	struct buf want;
	int i;

	(void)state;
	buf_init(&want, (size_t)16 << 20);
	for (i = 1; i <= 300000; i++) {
		snprintf(line, sizeof(line), "%d\n", i);
		assert_int_equal(buf_append_str(&want, line), 0);
	}
	/* Everything at once. */
	memset(&r, 0, sizeof(r));
	assert_int_equal(run_line(&r, "seq 1 300000", err, sizeof(err)), 0);
	assert_int_equal(r.code, 0);
	assert_int_equal(r.out.len, want.len);
	assert_memory_equal(r.out.data, want.data, want.len);
	run_free(&r);

	/* A consumer taking 4 KiB at a time, stalled in between: the
	 * bytes still arrive whole, and in order, with stderr apart. */
	memset(&r, 0, sizeof(r));
	r.take_max = 4096;
	assert_int_equal(run_line(&r, "sh -c 'seq 1 300000; "
	    "seq 1 50000 >&2; exit 5'", err, sizeof(err)), 0);
	assert_int_equal(r.code, 5);
	assert_int_equal(r.out.len, want.len);
	assert_memory_equal(r.out.data, want.data, want.len);
	assert_true(r.err.len > 0);
	assert_memory_equal(r.err.data, want.data, r.err.len);
	assert_int_equal(r.calls_after_exit, 0);
	run_free(&r);
	buf_free(&want);
}

static void
test_killed_is_128_plus_signal(void **state)
{
	struct run r;
	char err[256];

	(void)state;
	memset(&r, 0, sizeof(r));
	r.signal_after_output = 1;
	assert_int_equal(run_line(&r, "sh -c 'echo started; exec sleep 20'",
	    err, sizeof(err)), 0);
	assert_int_equal(r.code, 128 + SIGTERM);
	assert_string_equal(buf_cstr(&r.out), "started\n");
	run_free(&r);
	memset(&r, 0, sizeof(r));
	assert_int_equal(run_line(&r, "sh -c 'kill -9 $$'", err, sizeof(err)),
	    0);
	assert_int_equal(r.code, 128 + SIGKILL);
	run_free(&r);
}

/* A background process that keeps stdout open does not hold the exit
 * back for long. */
static void
test_background_holder(void **state)
{
	struct run r;
	char err[256];
	uint64_t t0;

	(void)state;
	memset(&r, 0, sizeof(r));
	t0 = uv_hrtime();
	assert_int_equal(run_line(&r, "sh -c 'echo fg; sleep 5 & exit 4'",
	    err, sizeof(err)), 0);
	assert_int_equal(r.code, 4);
	assert_string_equal(buf_cstr(&r.out), "fg\n");
	assert_true((uv_hrtime() - t0) / 1000000 < 4000);
	run_free(&r);
}

static void
test_close_while_running(void **state)
{
	struct agent_ni_argv av;
	struct agent_ni_spawn sp;
	struct run r;
	uv_loop_t loop;
	char err[256];
	pid_t pid;
	int i;

	(void)state;
	memset(&r, 0, sizeof(r));
	buf_init(&r.out, 1 << 20);
	buf_init(&r.err, 1 << 20);
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(agent_ni_split("sleep 30", &av, err, sizeof(err)),
	    0);
	memset(&sp, 0, sizeof(sp));
	sp.argv = av.argv;
	sp.envp = envp;
	sp.path = AGENT_SESSION_PATH;
	assert_int_equal(agent_ni_start(&r.ni, &loop, &sp, &cbs, &r, &r.code,
	    err, sizeof(err)), 0);
	agent_ni_argv_free(&av);
	pid = agent_ni_pid(r.ni);
	assert_true(pid > 1);
	agent_ni_close(r.ni);
	/* SIGHUP ends sleep; the loop drains and ni frees itself. */
	for (i = 0; i < 5000 && uv_run(&loop, UV_RUN_NOWAIT) != 0; i++)
		usleep(1000);
	assert_int_equal(uv_loop_close(&loop), 0);
	assert_int_equal(r.exited, 0);
	assert_int_equal(kill(pid, 0), -1);
	run_free(&r);
}

static void
test_split(void **state)
{
	struct agent_ni_argv a;
	char err[128];

	(void)state;
	assert_int_equal(agent_ni_split("  sh -c 'exit 7'  ", &a, err,
	    sizeof(err)), 0);
	assert_int_equal(a.argc, 3);
	assert_string_equal(a.argv[0], "sh");
	assert_string_equal(a.argv[1], "-c");
	assert_string_equal(a.argv[2], "exit 7");
	assert_null(a.argv[3]);
	agent_ni_argv_free(&a);

	assert_int_equal(agent_ni_split("a\"b c\"'d'\\ e \"\\$x\\\\\\q\" ''"
	    " # comment\nnext", &a, err, sizeof(err)), 0);
	assert_int_equal(a.argc, 4);
	assert_string_equal(a.argv[0], "ab cd e");
	assert_string_equal(a.argv[1], "$x\\\\q");
	assert_string_equal(a.argv[2], "");
	assert_string_equal(a.argv[3], "next");
	agent_ni_argv_free(&a);

	/* A list parameter arrives one command a line. */
	assert_int_equal(agent_ni_split("echo a\\\nb", &a, err,
	    sizeof(err)), 0);
	assert_int_equal(a.argc, 2);
	assert_string_equal(a.argv[1], "ab");
	agent_ni_argv_free(&a);
}

static void
test_split_garbage(void **state)
{
	static const char *bad[] = {
		"", "   ", "\t\r\n", "# only a comment", "'unterminated",
		"\"unterminated", "ends with \\", "a 'b\" c",
	};
	struct agent_ni_argv a;
	char err[128], *big;
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_not_equal(agent_ni_split(bad[i], &a, err,
		    sizeof(err)), 0);
		assert_true(err[0] != '\0');
		assert_null(a.argv);
		assert_null(a.store);
	}
	assert_int_not_equal(agent_ni_split(NULL, &a, err, sizeof(err)), 0);
	/* Too many words. */
	n = (AGENT_NI_MAX_WORDS + 1) * 2;
	big = malloc(n + 1);
	assert_non_null(big);
	for (i = 0; i < n; i += 2) {
		big[i] = 'x';
		big[i + 1] = ' ';
	}
	big[n] = '\0';
	assert_int_equal(agent_ni_split(big, &a, err, sizeof(err)),
	    PH_ERR_TOOBIG);
	/* Exactly the limit is fine. */
	big[AGENT_NI_MAX_WORDS * 2] = '\0';
	assert_int_equal(agent_ni_split(big, &a, err, sizeof(err)), 0);
	assert_int_equal(a.argc, AGENT_NI_MAX_WORDS);
	agent_ni_argv_free(&a);
	free(big);
	/* Bytes that are not text pass through as they are. */
	assert_int_equal(agent_ni_split("\x01\xff\xfe x", &a, err,
	    sizeof(err)), 0);
	assert_int_equal(a.argc, 2);
	assert_string_equal(a.argv[0], "\x01\xff\xfe");
	agent_ni_argv_free(&a);
	agent_ni_argv_free(NULL);
}

static void
test_empty_command(void **state)
{
	char *argv0[] = { NULL };
	struct agent_ni_spawn sp;
	struct agent_ni *ni = NULL;
	uv_loop_t loop;
	char err[128];
	int code = 0;

	(void)state;
	assert_int_equal(uv_loop_init(&loop), 0);
	memset(&sp, 0, sizeof(sp));
	sp.argv = argv0;
	sp.envp = envp;
	assert_int_equal(agent_ni_start(&ni, &loop, &sp, &cbs, NULL, &code,
	    err, sizeof(err)), PH_ERR_INVALID);
	assert_null(ni);
	/* An empty word is no program. */
	{
		char *argv1[] = { "", NULL };

		sp.argv = argv1;
		sp.path = AGENT_SESSION_PATH;
		assert_int_equal(agent_ni_start(&ni, &loop, &sp, &cbs, NULL,
		    &code, err, sizeof(err)), PH_ERR_NOTFOUND);
		assert_int_equal(code, 127);
	}
	assert_int_equal(uv_loop_close(&loop), 0);
}

static void
test_runs_as_user(void **state)
{
	struct agent_ni_argv av;
	struct agent_ni_spawn sp;
	struct agent_user u;
	struct run r;
	uv_loop_t loop;
	char err[256], want[64];
	int i;

	(void)state;
	if (geteuid() != 0 ||
	    agent_user_lookup("nobody", &u, err, sizeof(err)) != 0)
		skip();
	memset(&r, 0, sizeof(r));
	buf_init(&r.out, 1 << 20);
	buf_init(&r.err, 1 << 20);
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(agent_ni_split("id -u", &av, err, sizeof(err)), 0);
	memset(&sp, 0, sizeof(sp));
	sp.argv = av.argv;
	sp.envp = envp;
	sp.path = AGENT_SESSION_PATH;
	sp.user = &u;
	sp.cwd = u.home;
	assert_int_equal(agent_ni_start(&r.ni, &loop, &sp, &cbs, &r, &r.code,
	    err, sizeof(err)), 0);
	agent_ni_argv_free(&av);
	for (i = 0; i < 10000 && !r.exited; i++)
		uv_run(&loop, UV_RUN_ONCE);
	assert_int_equal(r.exited, 1);
	agent_ni_close(r.ni);
	for (i = 0; i < 1000 && uv_run(&loop, UV_RUN_NOWAIT) != 0; i++)
		usleep(1000);
	assert_int_equal(uv_loop_close(&loop), 0);
	snprintf(want, sizeof(want), "%u\n", (unsigned)u.uid);
	assert_string_equal(buf_cstr(&r.out), want);
	run_free(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_split_garbage),
		cmocka_unit_test(test_empty_command),
		cmocka_unit_test(test_stdout_stderr_apart),
		cmocka_unit_test(test_stderr_only),
		cmocka_unit_test(test_no_terminal_no_stdin),
		cmocka_unit_test(test_not_found),
		cmocka_unit_test(test_huge_output_backpressure),
		cmocka_unit_test(test_killed_is_128_plus_signal),
		cmocka_unit_test(test_background_holder),
		cmocka_unit_test(test_close_while_running),
		cmocka_unit_test(test_runs_as_user),
	};

	/* The agent ignores SIGPIPE; so does this test. */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
