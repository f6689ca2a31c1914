// Thin shim over libsecp256k1 (ECDSA only; recovery is not used).
#ifndef QUARRY_CSECP256K1_SHIM_H
#define QUARRY_CSECP256K1_SHIM_H
#include <secp256k1.h>
// Compound flag macros Swift cannot import.
static const unsigned int QUARRY_SECP256K1_CONTEXT_NONE = SECP256K1_CONTEXT_NONE;
static const unsigned int QUARRY_SECP256K1_EC_COMPRESSED = SECP256K1_EC_COMPRESSED;
static const unsigned int QUARRY_SECP256K1_EC_UNCOMPRESSED = SECP256K1_EC_UNCOMPRESSED;
#endif
