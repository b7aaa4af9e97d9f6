/* pki: portholed's certificate authority. */
#include "server/pki.h"
