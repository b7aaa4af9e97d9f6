/* pki: portholed's certificate authority (OpenSSL 3). */
#ifndef PORTHOLE_PKI_H
#define PORTHOLE_PKI_H

#include <stddef.h>

#endif
