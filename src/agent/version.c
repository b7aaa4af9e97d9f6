/* Nothing else may go in this file: see version.h. */
#include "agent/version.h"

const char *
agent_version(void)
{
	return PORTHOLE_AGENT_VERSION;
}
