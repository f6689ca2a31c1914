// Verification-only SM2 arithmetic on the curve sm2p256v1 (GB/T 32918.5), specialised
// for speed. Public data only: nothing here is constant time, and nothing here signs.
// Design and figures: docs/adr/0012-fast-sm2-verification-engine.md; the arithmetic is
// specified in docs/spec/crypto.md section 3.7.
//
// Byte strings are big-endian. Every function is thread-safe: the generator table is
// built once (pthread_once) and never written again; the other state is the caller's.
#ifndef QUARRY_SM2FAST_H
#define QUARRY_SM2FAST_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// A validated affine point of sm2p256v1 (never the point at infinity), coordinates in
/// the engine's internal (Montgomery) form. Only quarry_sm2fast_point_decode makes one.
typedef struct {
    uint64_t x[4];
    uint64_t y[4];
} quarry_sm2fast_point;

/// Per-key precomputation: the odd multiples 1, 3, ..., 15 of P, 2^64 P, 2^128 P and
/// 2^192 P as affine points (2 KiB). Built by quarry_sm2fast_table_build.
typedef struct {
    quarry_sm2fast_point multiples[4][8];
} quarry_sm2fast_table;

/// Decodes X || Y (64 bytes, the public key without its 04 prefix). Returns 1 and fills
/// `out` when X < p, Y < p and y^2 = x^3 - 3x + b (mod p); returns 0 otherwise. (No
/// affine point is the point at infinity, and the cofactor is 1, so such a point is a
/// valid public key.)
int quarry_sm2fast_point_decode(quarry_sm2fast_point *out, const uint8_t xy[64]);

/// Encodes a point back to X || Y (64 bytes).
void quarry_sm2fast_point_encode(uint8_t xy[64], const quarry_sm2fast_point *point);

/// Fills `table` for `point`.
void quarry_sm2fast_table_build(quarry_sm2fast_table *table, const quarry_sm2fast_point *point);

/// The SM2 verification equation for the digest e (32 bytes, the integer SM3(Z || M)) and
/// the signature r, s (32 bytes each) under `point`. Returns 1 only when 1 <= r, s <= n-1,
/// t = (r + s) mod n != 0, (x1, y1) = s*G + t*P is not the point at infinity and
/// (e + x1) mod n = r. Returns 0 otherwise.
int quarry_sm2fast_verify(const quarry_sm2fast_point *point, const uint8_t e[32],
                          const uint8_t r[32], const uint8_t s[32]);

/// The same as quarry_sm2fast_verify, with P given by its precomputed table.
int quarry_sm2fast_verify_table(const quarry_sm2fast_table *table, const uint8_t e[32],
                                const uint8_t r[32], const uint8_t s[32]);

/// Test support: k*G + m*P as X || Y (64 bytes), computed by the engine's own routines
/// (comb for G, wNAF for P, or the table when `table` is not NULL). Returns 0 when the
/// result is the point at infinity. k and m are any 32-byte values (reduced mod n first).
int quarry_sm2fast_combination(uint8_t xy[64], const uint8_t k[32], const uint8_t m[32],
                               const quarry_sm2fast_point *point, const quarry_sm2fast_table *table);

#ifdef __cplusplus
}
#endif

#endif
