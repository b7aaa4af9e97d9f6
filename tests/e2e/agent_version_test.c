/* The version of the test agent tests/CMakeLists.txt builds: replaces
 * src/agent/version.c, which the linker then leaves out. */
#include "agent/version.h"

const char *
agent_version(void)
{
	return PORTHOLE_TEST_AGENT_VERSION;
}
