/* fuzz_kms_policy: KMS key policy parsing and evaluation. Input: the
 * policy text (NUL bytes end it early, as a C string would). A policy
 * that parses is evaluated for a few callers and actions, and the one-call
 * form must agree with parse + eval. The glob matcher is driven by the
 * input too: its first line is a pattern, the second the subject. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/kms_policy.h"
#include "fuzzin.h"

#define ACCT "123456789012"
#define KEY "arn:aws:kms:us-east-1:" ACCT \
	":key/0b1f2c3d-4e5f-4061-8273-9a8b7c6d5e4f"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct kms_policy_who whos[] = {
	{ "arn:aws:iam::" ACCT ":user/admin", NULL, ACCT, 1, NULL, 0 },
	{ "arn:aws:iam::" ACCT ":user/bob", NULL, ACCT, 0, NULL, 0 },
	{ "arn:aws:sts::" ACCT ":assumed-role/porthole-role/mi-0123",
	    "arn:aws:iam::" ACCT ":role/porthole-role", ACCT, 1, NULL, 0 },
	{ "arn:aws:iam::999999999999:user/eve", NULL, "999999999999", 0,
	    NULL, 0 },
};

static const char *const actions[] = {
	"kms:Decrypt", "kms:GenerateDataKey", "kms:PutKeyPolicy", "KMS:ENCRYPT",
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kms_policy *p = NULL;
	char msg[512], *text, *nl;
	size_t i, j;
	int d;

	if (size > KMS_POLICY_MAX * 2)
		return 0;
	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (kms_policy_parse(text, &p, msg, sizeof(msg)) == 0) {
		for (i = 0; i < sizeof(whos) / sizeof(whos[0]); i++)
			for (j = 0; j < sizeof(actions) / sizeof(actions[0]);
			    j++) {
				d = kms_policy_eval(p, &whos[i], actions[j],
				    KEY);
				if (d != kms_policy_eval_text(text, &whos[i],
				    actions[j], KEY))
					abort();
			}
		kms_policy_free(p);
	} else if (msg[0] == '\0')
		abort();	/* a refusal says why */
	else if (kms_policy_eval_text(text, &whos[0], actions[0], KEY) ==
	    KMS_POLICY_ALLOW)
		abort();	/* an unparsable policy allows nothing */
	/* The glob matcher: "pattern\nsubject". */
	if ((nl = strchr(text, '\n')) != NULL && size < 4096) {
		*nl = '\0';
		(void)kms_policy_glob(text, nl + 1, 0);
		(void)kms_policy_glob(text, nl + 1, 1);
	}
	free(text);
	return 0;
}
