/* iam_managed: the AWS-managed policies portholed knows, as data: the
 * ones Session Manager set-ups attach (arn:aws:iam::aws:policy/...). The
 * store writes them at open (store_iam_open) so they list, attach and
 * evaluate as any managed policy, and refreshes them when a release
 * changes a document. */
#ifndef PORTHOLE_IAM_MANAGED_H
#define PORTHOLE_IAM_MANAGED_H

#include <stddef.h>

struct iam_managed_policy {
	const char *name;
	const char *path;          /* "/" or "/service-role/" */
	const char *policy_id;     /* ANPA... */
	const char *description;
	const char *version_id;    /* the default version AWS publishes */
	const char *document;      /* JSON */
};

#define IAM_MANAGED_ARN_PREFIX "arn:aws:iam::aws:policy"

extern const struct iam_managed_policy iam_managed_policies[];
extern const size_t iam_managed_npolicies;

#endif
