/* init: `portholed init` creates a data directory. */
#ifndef PORTHOLE_INIT_H
#define PORTHOLE_INIT_H

int server_init_main(int argc, char **argv);

#endif
