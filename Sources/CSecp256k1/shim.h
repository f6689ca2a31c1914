// Thin shim over libsecp256k1 (ECDSA only; recovery is not used).
#ifndef QUARRY_CSECP256K1_SHIM_H
#define QUARRY_CSECP256K1_SHIM_H
#include <secp256k1.h>
#endif
