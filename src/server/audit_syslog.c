/* audit_syslog: see audit_syslog.h. */
#include "server/audit_syslog.h"

#include <syslog.h>

void
audit_syslog_open(void)
{
	openlog("portholed-audit", LOG_PID | LOG_NDELAY, LOG_AUTHPRIV);
}

void
audit_syslog_line(int failed, const char *line)
{
	syslog(LOG_AUTHPRIV | (failed ? LOG_WARNING : LOG_NOTICE), "%s", line);
}

void
audit_syslog_close(void)
{
	closelog();
}
