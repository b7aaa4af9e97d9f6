/* hex: decoding with OpenSSL's digit table. */
#include "common/hex.h"

#include <openssl/crypto.h>

int
hex_byte(const char *p)
{
	int hi, lo;

	if ((hi = OPENSSL_hexchar2int((unsigned char)p[0])) < 0 ||
	    (lo = OPENSSL_hexchar2int((unsigned char)p[1])) < 0)
		return -1;
	return hi << 4 | lo;
}
