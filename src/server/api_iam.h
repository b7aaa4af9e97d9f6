/* api_iam: the IAM API (Query protocol, 2010-05-08) over store_iam:
 * users, access keys, login profiles, groups, roles, inline and managed
 * policies and their attachments, as botocore's iam model describes
 * them. Every action asks api_authorize with its IAM action and the
 * resource ARN AWS documents. */
#ifndef PORTHOLE_API_IAM_H
#define PORTHOLE_API_IAM_H

#include "server/api_query.h"

#define API_IAM_NAMESPACE "https://iam.amazonaws.com/doc/2010-05-08/"

int api_iam_dispatch(const struct api_call *c, const char *action,
    const struct api_form *in, struct api_xml *out, struct api_error *err);

/* IAM's default password policy for user's new password: 0, or
 * PasswordPolicyViolation set in err. */
int api_iam_password_ok(const char *pw, const char *user,
    struct api_error *err);

#endif
