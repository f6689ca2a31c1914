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
#include <openssl/encoder.h>
#include <openssl/decoder.h>
#include <openssl/param_build.h>
#include <openssl/bio.h>

static const int QUARRY_EVP_PKEY_KEYPAIR = EVP_PKEY_KEYPAIR;
static const int QUARRY_EVP_PKEY_PUBLIC_KEY = EVP_PKEY_PUBLIC_KEY;
static const int QUARRY_NID_sm2 = NID_sm2;
static const int QUARRY_EVP_PKEY_PRIVATE_KEY = EVP_PKEY_PRIVATE_KEY;

// C strings with static storage. OpenSSL keeps some string pointers it is given
// (OSSL_PARAM keys and values until OSSL_PARAM_BLD_to_param, EVP_PKEY_CTX key type
// names, encoder/decoder input/output types and structures) beyond the call, so a
// temporary C string bridged from a Swift String must never be passed for them.
static const char *const QUARRY_NAME_SM2 = "SM2";
static const char *const QUARRY_NAME_DER = "DER";
static const char *const QUARRY_NAME_PEM = "PEM";
static const char *const QUARRY_NAME_PRIVATE_KEY_INFO = "PrivateKeyInfo";
static const char *const QUARRY_NAME_SUBJECT_PUBLIC_KEY_INFO = "SubjectPublicKeyInfo";
static const char *const QUARRY_PARAM_GROUP_NAME = OSSL_PKEY_PARAM_GROUP_NAME;
static const char *const QUARRY_PARAM_PUB_KEY = OSSL_PKEY_PARAM_PUB_KEY;
static const char *const QUARRY_PARAM_PRIV_KEY = OSSL_PKEY_PARAM_PRIV_KEY;

/// OPENSSL_free is a macro; this frees memory OpenSSL allocated for us.
static inline void quarry_openssl_free(void *p) { OPENSSL_free(p); }
#endif
