/* version: the version this agent reports (AgentVersion). It lives alone
 * in version.c so that a program can link the agent's library with a
 * version.c of its own: the tests build an agent that reports an older
 * version (tests/CMakeLists.txt) to update it through AWS-UpdateSSMAgent. */
#ifndef PORTHOLE_AGENT_VERSION_H
#define PORTHOLE_AGENT_VERSION_H

/* "3.3.1000.0": PORTHOLE_AGENT_VERSION of the build. */
const char *agent_version(void);

#endif
