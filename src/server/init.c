/* init: `portholed init` creates a data directory. */
#include "server/init.h"

int
server_init_main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return 1;
}
