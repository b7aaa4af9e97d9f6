/* api_ssm_commands: Run Command's API actions (X-Amz-Target
 * AmazonSSM.<Action>), shapes as botocore's ssm 2014-11-06 model:
 * SendCommand creates a command and one invocation per target in the
 * store (store_commands.h) and hands it to the dispatcher (commands.h);
 * ListCommands, ListCommandInvocations and GetCommandInvocation read
 * them; CancelCommand asks the dispatcher to cancel.
 * Authorised as AWS does: ssm:SendCommand on the document's ARN and on
 * each target instance's ARN (so ssm:resourceTag conditions apply); the
 * other four on "*". */
#ifndef PORTHOLE_API_SSM_COMMANDS_H
#define PORTHOLE_API_SSM_COMMANDS_H

#include <jansson.h>

#include "server/api.h"

/* AWS's limits of GetCommandInvocation's output, in characters. */
#define API_CMD_STDOUT_MAX 24000
#define API_CMD_STDERR_MAX 8000

int api_ssm_send_command(const struct api_call *c, json_t *in, json_t *out,
    struct api_error *err);
int api_ssm_list_commands(const struct api_call *c, json_t *in,
    json_t *out, struct api_error *err);
int api_ssm_list_command_invocations(const struct api_call *c, json_t *in,
    json_t *out, struct api_error *err);
int api_ssm_get_command_invocation(const struct api_call *c, json_t *in,
    json_t *out, struct api_error *err);
int api_ssm_cancel_command(const struct api_call *c, json_t *in,
    json_t *out, struct api_error *err);

#endif
