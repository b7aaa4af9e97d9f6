/* Error codes shared by every module: functions that can fail return 0 or
 * one of these (negative). Detail goes to the log or an out-parameter. */
#ifndef PORTHOLE_ERR_H
#define PORTHOLE_ERR_H

#include <stddef.h>

enum ph_err {
	PH_OK = 0,
	PH_ERR_NOMEM = -1,     /* allocation failed */
	PH_ERR_TOOBIG = -2,    /* a limit was reached (buffer, frame, message) */
	PH_ERR_SHORT = -3,     /* fewer bytes than the format needs */
	PH_ERR_INVALID = -4,   /* malformed input */
	PH_ERR_DIGEST = -5,    /* payload digest mismatch */
	PH_ERR_IO = -6,        /* system or network I/O failed */
	PH_ERR_NOTFOUND = -7,  /* no such object */
	PH_ERR_EXISTS = -8,    /* object already exists */
	PH_ERR_DENIED = -9,    /* not authenticated or not allowed */
	PH_ERR_STATE = -10,    /* not allowed in the current state */
	PH_ERR_CRYPTO = -11,   /* a cryptographic operation failed */
	PH_ERR_AGAIN = -12,    /* not ready yet: retry later */
	PH_ERR_EXPIRED = -13,  /* a time limit has passed */
};

const char *ph_strerror(int err);

/* A message for an err[errlen] out-parameter, formatted as by snprintf;
 * nothing when err is NULL or errlen 0. */
void ph_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
