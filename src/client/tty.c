/* tty: raw mode, restore on every exit path, window size. */
#include "client/tty.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "common/err.h"

/* Written before the handlers are installed and read from them: keep to
 * plain data and async-signal-safe calls. */
static struct termios tty_saved;
static volatile sig_atomic_t tty_have_saved;
static volatile sig_atomic_t tty_raw_on;
static int tty_fl[2] = { -1, -1 };
static int tty_inited;

void
client_tty_restore(void)
{
	int saved = errno, fd;

	if (tty_raw_on && tty_have_saved) {
		/* TCSADRAIN: let our last output reach the screen first. */
		(void)tcsetattr(STDIN_FILENO, TCSADRAIN, &tty_saved);
		tty_raw_on = 0;
	}
	for (fd = 0; fd < 2; fd++) {
		if (tty_fl[fd] != -1 && fcntl(fd, F_GETFL) != tty_fl[fd])
			(void)fcntl(fd, F_SETFL, tty_fl[fd]);
	}
	errno = saved;
}

static void
tty_atexit(void)
{
	client_tty_restore();
}

/* SIGTERM / SIGHUP: put the terminal back, then die of the same signal so
 * the parent sees what happened. */
static void
tty_fatal_signal(int sig)
{
	struct sigaction sa;

	client_tty_restore();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	(void)sigaction(sig, &sa, NULL);
	(void)raise(sig);
}

void
client_tty_init(void)
{
	struct sigaction sa;
	int fd;

	if (tty_inited)
		return;
	tty_inited = 1;
	for (fd = 0; fd < 2; fd++)
		tty_fl[fd] = fcntl(fd, F_GETFL);
	atexit(tty_atexit);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = tty_fatal_signal;
	sigemptyset(&sa.sa_mask);
	(void)sigaction(SIGTERM, &sa, NULL);
	(void)sigaction(SIGHUP, &sa, NULL);
	/* A closed stdout shows up as EPIPE from write(), handled there. */
	sa.sa_handler = SIG_IGN;
	(void)sigaction(SIGPIPE, &sa, NULL);
}

static int
tty_apply_raw(void)
{
	struct termios t = tty_saved;

	/* The set ssh uses: bytes in and out unchanged, no signals from the
	 * keyboard, no flow control, no echo; the remote PTY does all that. */
	t.c_iflag |= IGNPAR;
	t.c_iflag &= ~(ISTRIP | INLCR | IGNCR | ICRNL | IXON | IXANY | IXOFF);
#ifdef IUCLC
	t.c_iflag &= ~IUCLC;
#endif
	t.c_lflag &= ~(ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHONL);
#ifdef IEXTEN
	t.c_lflag &= ~IEXTEN;
#endif
	t.c_oflag &= ~OPOST;
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (tcsetattr(STDIN_FILENO, TCSADRAIN, &t) != 0)
		return PH_ERR_IO;
	tty_raw_on = 1;
	return 0;
}

int
client_tty_raw(void)
{
	if (!isatty(STDIN_FILENO))
		return 0;
	if (!tty_have_saved) {
		if (tcgetattr(STDIN_FILENO, &tty_saved) != 0)
			return PH_ERR_IO;
		tty_have_saved = 1;
	}
	if (tty_apply_raw() != 0)
		return PH_ERR_IO;
	return 1;
}

void
client_tty_reraw(void)
{
	if (tty_have_saved && tty_raw_on)
		(void)tty_apply_raw();
}

int
client_tty_is_raw(void)
{
	return tty_raw_on != 0;
}

void
client_tty_winsize(unsigned *cols, unsigned *rows)
{
	struct winsize ws;

	if (!isatty(STDOUT_FILENO)) {
		*cols = 80;
		*rows = 24;
		return;
	}
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 &&
	    ws.ws_row > 0) {
		*cols = ws.ws_col;
		*rows = ws.ws_row;
		return;
	}
	/* spec 7.1: the official plugin's fallback. */
	*cols = 300;
	*rows = 100;
}

const char *
client_tty_eol(void)
{
	return tty_raw_on ? "\r\n" : "\n";
}
