// Thin shim over OpenSSL 3.0's libcrypto: only headers, plus the few compound
// macros Swift cannot import, re-exported as constants.
#ifndef QUARRY_COPENSSL_SHIM_H
#define QUARRY_COPENSSL_SHIM_H
#include <openssl/evp.h>
#include <openssl/ec.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/core_names.h>
#include <openssl/x509.h>
#include <openssl/pem.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>

static const int QUARRY_EVP_PKEY_KEYPAIR = EVP_PKEY_KEYPAIR;
static const int QUARRY_EVP_PKEY_PUBLIC_KEY = EVP_PKEY_PUBLIC_KEY;
static const int QUARRY_NID_sm2 = NID_sm2;
#endif
