#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>

const char *
ph_strerror(int err)
{
	switch (err) {
	case PH_OK: return "ok";
	case PH_ERR_NOMEM: return "out of memory";
	case PH_ERR_TOOBIG: return "too big";
	case PH_ERR_SHORT: return "truncated";
	case PH_ERR_INVALID: return "invalid";
	case PH_ERR_DIGEST: return "digest mismatch";
	case PH_ERR_IO: return "I/O error";
	case PH_ERR_NOTFOUND: return "not found";
	case PH_ERR_EXISTS: return "already exists";
	case PH_ERR_DENIED: return "denied";
	case PH_ERR_STATE: return "wrong state";
	case PH_ERR_CRYPTO: return "crypto failure";
	case PH_ERR_AGAIN: return "try again";
	case PH_ERR_EXPIRED: return "expired";
	}
	return "unknown error";
}

void
ph_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}
