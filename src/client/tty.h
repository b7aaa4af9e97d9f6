/* tty: the user's terminal. Raw mode like ssh's (no ISIG, ICANON, ECHO,
 * IXON, ICRNL, OPOST) so Ctrl-C, Ctrl-Z and Ctrl-\ travel as bytes to the
 * remote side (docs/decisions.md), and a restore that runs on every exit
 * path: atexit, SIGTERM/SIGHUP, and explicit calls before messages. The
 * original file status flags of fds 0 and 1 are restored too (libuv's
 * uv_poll_init makes them non-blocking, and they are shared with the
 * parent shell). */
#ifndef PORTHOLE_CLIENT_TTY_H
#define PORTHOLE_CLIENT_TTY_H

/* Remember the state of fds 0 and 1 and install the restore hooks (atexit,
 * SIGTERM, SIGHUP). Call once, before anything changes them. */
void client_tty_init(void);
/* Put stdin (if it is a terminal) into raw mode. Returns 1 if it did, 0 if
 * stdin is not a terminal, a negative PH_ERR_* on failure. */
int client_tty_raw(void);
/* Re-apply raw mode (after SIGCONT) if it was on. */
void client_tty_reraw(void);
/* Restore termios and fd flags. Idempotent and async-signal-safe. */
void client_tty_restore(void);
int client_tty_is_raw(void);

/* Terminal size for the PayloadType 3 message (spec 7.1): stdout's window
 * size; 300x100 (the spec's fallback) if stdout is a terminal whose size
 * cannot be read; 80x24 if stdout is not a terminal. */
void client_tty_winsize(unsigned *cols, unsigned *rows);

/* Line ending for our own messages: "\r\n" while raw (no OPOST), "\n"
 * otherwise. */
const char *client_tty_eol(void);

#endif
