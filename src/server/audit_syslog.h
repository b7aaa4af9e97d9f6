/* audit_syslog: the audit trail's copy to syslog(3) (journald or rsyslog),
 * apart from audit.c because <syslog.h>'s LOG_* names collide with
 * common/log.h's. Facility LOG_AUTHPRIV: security events, kept where only
 * root reads them; LOG_NOTICE for allowed calls, LOG_WARNING for failed
 * and denied ones. */
#ifndef PORTHOLE_AUDIT_SYSLOG_H
#define PORTHOLE_AUDIT_SYSLOG_H

void audit_syslog_open(void);
void audit_syslog_line(int failed, const char *line);
void audit_syslog_close(void);

#endif
