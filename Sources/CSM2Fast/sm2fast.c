// Verification-only SM2 arithmetic on sm2p256v1. See include/sm2fast.h and
// docs/adr/0012-fast-sm2-verification-engine.md.
//
// Field elements: four 64-bit limbs, least significant first, in Montgomery form
// (a * 2^256 mod p), always fully reduced into [0, p). p = 2^256 - 2^224 - 2^96 + 2^64 - 1
// is -1 modulo 2^64, so the Montgomery factor -p^-1 mod 2^64 is 1 and each reduction step
// needs no extra multiplication to find its quotient digit.
// Points: Jacobian (X, Y, Z) with x = X/Z^2, y = Y/Z^3; Z = 0 is the point at infinity.
// a = -3, so doubling uses the a = -3 formula. Every exceptional case of the addition
// formulas (an input at infinity, equal inputs, opposite inputs) is handled by a branch:
// the inputs are public, so nothing needs to be constant time.
#include "sm2fast.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned __int128 u128;
typedef uint64_t fe[4];

typedef struct { fe x, y, z; } jac;
typedef quarry_sm2fast_point aff;

static const uint64_t P[4] = {0xFFFFFFFFFFFFFFFFull, 0xFFFFFFFF00000000ull, 0xFFFFFFFFFFFFFFFFull, 0xFFFFFFFEFFFFFFFFull};
static const uint64_t N[4] = {0x53BBF40939D54123ull, 0x7203DF6B21C6052Bull, 0xFFFFFFFFFFFFFFFFull, 0xFFFFFFFEFFFFFFFFull};
static const uint64_t B[4] = {0xDDBCBD414D940E93ull, 0xF39789F515AB8F92ull, 0x4D5A9E4BCF6509A7ull, 0x28E9FA9E9D9F5E34ull};
static const uint64_t GX[4] = {0x715A4589334C74C7ull, 0x8FE30BBFF2660BE1ull, 0x5F9904466A39C994ull, 0x32C4AE2C1F198119ull};
static const uint64_t GY[4] = {0x02DF32E52139F0A0ull, 0xD0A9877CC62A4740ull, 0x59BDCEE36B692153ull, 0xBC3736A2F4F6779Cull};
/// 2^256 mod p = 2^224 + 2^96 - 2^64 + 1: the Montgomery form of 1.
static const uint64_t ONE[4] = {0x0000000000000001ull, 0x00000000FFFFFFFFull, 0x0000000000000000ull, 0x0000000100000000ull};

// Set once by initialise() (pthread_once), read-only afterwards.
static fe R2;            // 2^512 mod p, to enter Montgomery form
static fe B_M;           // b in Montgomery form
static uint64_t P_MINUS_N[4];
static aff G_TABLE[32][128];   // G_TABLE[i][k-1] = k * 2^(8i) * G, k = 1...128
static aff G_TOP;              // 2^256 * G (the carry digit of the signed recoding)

// MARK: - 256-bit integers

static inline __attribute__((always_inline)) int int_is_zero(const uint64_t a[4]) { return (a[0] | a[1] | a[2] | a[3]) == 0; }

/// -1, 0 or 1.
static inline __attribute__((always_inline)) int int_compare(const uint64_t a[4], const uint64_t b[4]) {
    for (int i = 3; i >= 0; i--) {
        if (a[i] != b[i]) return a[i] < b[i] ? -1 : 1;
    }
    return 0;
}

/// r = a + b, returns the carry.
static inline __attribute__((always_inline)) uint64_t int_add(uint64_t r[4], const uint64_t a[4], const uint64_t b[4]) {
    u128 c = 0;
    for (int i = 0; i < 4; i++) {
        c += (u128)a[i] + b[i];
        r[i] = (uint64_t)c;
        c >>= 64;
    }
    return (uint64_t)c;
}

/// r = a - b, returns the borrow.
static inline __attribute__((always_inline)) uint64_t int_sub(uint64_t r[4], const uint64_t a[4], const uint64_t b[4]) {
    uint64_t borrow = 0;
    for (int i = 0; i < 4; i++) {
        u128 d = (u128)a[i] - b[i] - borrow;
        r[i] = (uint64_t)d;
        borrow = (uint64_t)(d >> 64) & 1;
    }
    return borrow;
}

static void int_load(uint64_t r[4], const uint8_t in[32]) {
    for (int i = 0; i < 4; i++) {
        uint64_t v = 0;
        for (int j = 0; j < 8; j++) v = (v << 8) | in[(3 - i) * 8 + j];
        r[i] = v;
    }
}

static void int_store(uint8_t out[32], const uint64_t a[4]) {
    for (int i = 0; i < 4; i++) {
        for (int j = 0; j < 8; j++) out[(3 - i) * 8 + j] = (uint8_t)(a[i] >> (56 - 8 * j));
    }
}

// MARK: - Scalars modulo n (plain integers, not Montgomery form)

/// r = (a + b) mod n for a, b < n.
static inline __attribute__((always_inline)) void scalar_add(uint64_t r[4], const uint64_t a[4], const uint64_t b[4]) {
    uint64_t s[4], d[4];
    uint64_t carry = int_add(s, a, b);
    uint64_t borrow = int_sub(d, s, N);
    const uint64_t *pick = (carry || !borrow) ? d : s;
    memcpy(r, pick, sizeof(s));
}

/// r = (a - b) mod n for a, b < n.
static inline __attribute__((always_inline)) void scalar_sub(uint64_t r[4], const uint64_t a[4], const uint64_t b[4]) {
    uint64_t d[4];
    if (int_sub(d, a, b)) int_add(d, d, N);
    memcpy(r, d, sizeof(d));
}

/// x mod n for any 256-bit x (2^256 < 2n, so one subtraction is enough).
static inline __attribute__((always_inline)) void scalar_reduce(uint64_t r[4], const uint64_t x[4]) {
    uint64_t d[4];
    if (int_sub(d, x, N)) memcpy(d, x, sizeof(d));
    memcpy(r, d, sizeof(d));
}

// MARK: - Field arithmetic modulo p

static inline __attribute__((always_inline)) int fe_is_zero(const fe a) { return int_is_zero(a); }
static inline __attribute__((always_inline)) int fe_equal(const fe a, const fe b) {
    return ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3])) == 0;
}
static inline __attribute__((always_inline)) void fe_copy(fe r, const fe a) { memcpy(r, a, sizeof(fe)); }

// Carry chains through clang's add/subtract-with-carry builtins (SwiftPM compiles C
// with clang), which become adc/sbb sequences.
typedef uint64_t limb;
typedef unsigned long long carry_t;  // the builtins' carry type
#define ADC(r, a, b, cin, cout) ((r) = __builtin_addcll((a), (b), (cin), &(cout)))
#define SBB(r, a, b, bin, bout) ((r) = __builtin_subcll((a), (b), (bin), &(bout)))

/// r = t - p if (carry, t) >= p, else t; for (carry, t) < 2p.
static inline __attribute__((always_inline)) void fe_finish(fe r, limb t0, limb t1, limb t2, limb t3, carry_t carry) {
    carry_t b;
    limb u0, u1, u2, u3;
    SBB(u0, t0, P[0], 0, b);
    SBB(u1, t1, P[1], b, b);
    SBB(u2, t2, P[2], b, b);
    SBB(u3, t3, P[3], b, b);
    limb mask = (limb)0 - (carry | (b ^ 1));  // all ones when t - p is the answer
    r[0] = (u0 & mask) | (t0 & ~mask);
    r[1] = (u1 & mask) | (t1 & ~mask);
    r[2] = (u2 & mask) | (t2 & ~mask);
    r[3] = (u3 & mask) | (t3 & ~mask);
}

static inline __attribute__((always_inline)) void fe_add(fe r, const fe a, const fe b) {
    carry_t c;
    limb t0, t1, t2, t3;
    ADC(t0, a[0], b[0], 0, c);
    ADC(t1, a[1], b[1], c, c);
    ADC(t2, a[2], b[2], c, c);
    ADC(t3, a[3], b[3], c, c);
    fe_finish(r, t0, t1, t2, t3, c);
}

static inline __attribute__((always_inline)) void fe_sub(fe r, const fe a, const fe b) {
    carry_t c;
    limb t0, t1, t2, t3;
    SBB(t0, a[0], b[0], 0, c);
    SBB(t1, a[1], b[1], c, c);
    SBB(t2, a[2], b[2], c, c);
    SBB(t3, a[3], b[3], c, c);
    limb mask = (limb)0 - c;  // add p back after a borrow
    limb r0, r1, r2, r3;
    ADC(r0, t0, P[0] & mask, 0, c);
    ADC(r1, t1, P[1] & mask, c, c);
    ADC(r2, t2, P[2] & mask, c, c);
    ADC(r3, t3, P[3] & mask, c, c);
    r[0] = r0; r[1] = r1; r[2] = r2; r[3] = r3;
}

static inline __attribute__((always_inline)) void fe_negate(fe r, const fe a) {
    static const fe zero = {0, 0, 0, 0};
    fe_sub(r, zero, a);
}

/// Montgomery reduction of t (t < p * 2^256): r = t / 2^256 mod p, in four steps. In step
/// i the quotient digit is m = t[i] (-p^-1 = 1 mod 2^64), and adding m * p clears limb i.
/// With p = 2^256 - 2^224 - 2^96 + 2^64 - 1 that addition needs no multiplication: it adds
/// m * (2^64 + 2^256) - m * (2^96 + 2^224) at limb i, that is D = [m - lo, -hi, -lo, m - hi]
/// at limbs i+1...i+4 where lo = (m << 32) mod 2^64 and hi = m >> 32. D is non-negative and
/// below 2^256 (so its subtraction chain ends without a borrow), and its top limb is at
/// most 2^64 - 2^32, so the carry left over from the previous step (into limb i+4) can be
/// added to it without overflow instead of being propagated through the limbs above.
static inline __attribute__((always_inline)) void fe_reduce(fe r, limb t[8]) {
    carry_t pending = 0;
    for (int i = 0; i < 4; i++) {
        limb m = t[i], lo = m << 32, hi = m >> 32;
        carry_t b, c;
        limb d0, d1, d2, d3;
        SBB(d0, m, lo, 0, b);
        SBB(d1, 0, hi, b, b);
        SBB(d2, 0, lo, b, b);
        SBB(d3, m, hi, b, b);
        d3 += pending;
        ADC(t[i + 1], t[i + 1], d0, 0, c);
        ADC(t[i + 2], t[i + 2], d1, c, c);
        ADC(t[i + 3], t[i + 3], d2, c, c);
        ADC(t[i + 4], t[i + 4], d3, c, c);
        pending = c;
    }
    fe_finish(r, t[4], t[5], t[6], t[7], pending);
}

static inline __attribute__((always_inline)) void fe_mul(fe r, const fe a, const fe b) {
    limb t[8];
    for (int i = 0; i < 4; i++) {
        uint64_t carry = 0;
        for (int j = 0; j < 4; j++) {
            u128 acc = (u128)a[i] * b[j] + (i == 0 ? 0 : t[i + j]) + carry;
            t[i + j] = (uint64_t)acc;
            carry = (uint64_t)(acc >> 64);
        }
        t[i + 4] = carry;
    }
    fe_reduce(r, t);
}

static inline __attribute__((always_inline)) void fe_sqr(fe r, const fe a) {
    limb t[8];
    u128 acc;
    uint64_t c;
    // Off-diagonal products a[i] * a[j], i < j.
    acc = (u128)a[0] * a[1];             t[1] = (uint64_t)acc; c = (uint64_t)(acc >> 64);
    acc = (u128)a[0] * a[2] + c;         t[2] = (uint64_t)acc; c = (uint64_t)(acc >> 64);
    acc = (u128)a[0] * a[3] + c;         t[3] = (uint64_t)acc; t[4] = (uint64_t)(acc >> 64);
    acc = (u128)a[1] * a[2] + t[3];      t[3] = (uint64_t)acc; c = (uint64_t)(acc >> 64);
    acc = (u128)a[1] * a[3] + t[4] + c;  t[4] = (uint64_t)acc; t[5] = (uint64_t)(acc >> 64);
    acc = (u128)a[2] * a[3] + t[5];      t[5] = (uint64_t)acc; t[6] = (uint64_t)(acc >> 64);
    // Double them.
    t[7] = t[6] >> 63;
    t[6] = (t[6] << 1) | (t[5] >> 63);
    t[5] = (t[5] << 1) | (t[4] >> 63);
    t[4] = (t[4] << 1) | (t[3] >> 63);
    t[3] = (t[3] << 1) | (t[2] >> 63);
    t[2] = (t[2] << 1) | (t[1] >> 63);
    t[1] = t[1] << 1;
    // Add the squares a[i]^2 at limbs 2i, 2i + 1.
    u128 sq;
    sq = (u128)a[0] * a[0];
    t[0] = (uint64_t)sq;
    acc = (u128)t[1] + (uint64_t)(sq >> 64);                 t[1] = (uint64_t)acc; c = (uint64_t)(acc >> 64);
    sq = (u128)a[1] * a[1];
    acc = (u128)t[2] + (uint64_t)sq + c;                     t[2] = (uint64_t)acc; c = (uint64_t)(acc >> 64);
    acc = (u128)t[3] + (uint64_t)(sq >> 64) + c;             t[3] = (uint64_t)acc; c = (uint64_t)(acc >> 64);
    sq = (u128)a[2] * a[2];
    acc = (u128)t[4] + (uint64_t)sq + c;                     t[4] = (uint64_t)acc; c = (uint64_t)(acc >> 64);
    acc = (u128)t[5] + (uint64_t)(sq >> 64) + c;             t[5] = (uint64_t)acc; c = (uint64_t)(acc >> 64);
    sq = (u128)a[3] * a[3];
    acc = (u128)t[6] + (uint64_t)sq + c;                     t[6] = (uint64_t)acc; c = (uint64_t)(acc >> 64);
    t[7] = t[7] + (uint64_t)(sq >> 64) + c;  // a^2 < 2^512: no carry out
    fe_reduce(r, t);
}

/// Montgomery form of a plain value x < p.
static inline __attribute__((always_inline)) void fe_from_int(fe r, const uint64_t x[4]) { fe_mul(r, x, R2); }

/// The plain value of a Montgomery-form element.
static inline __attribute__((always_inline)) void fe_to_int(uint64_t r[4], const fe a) {
    static const fe plain_one = {1, 0, 0, 0};
    fe_mul(r, a, plain_one);
}

/// r = a^(p-2) = a^-1 (a != 0), with a fixed 4-bit window over the exponent.
static void fe_invert(fe r, const fe a) {
    fe powers[16];
    fe_copy(powers[0], ONE);
    fe_copy(powers[1], a);
    for (int i = 2; i < 16; i++) fe_mul(powers[i], powers[i - 1], a);
    uint64_t exponent[4];
    static const uint64_t two[4] = {2, 0, 0, 0};
    int_sub(exponent, P, two);
    fe acc;
    fe_copy(acc, ONE);
    for (int nibble = 63; nibble >= 0; nibble--) {
        for (int k = 0; k < 4; k++) fe_sqr(acc, acc);
        unsigned digit = (unsigned)(exponent[nibble / 16] >> (4 * (nibble % 16))) & 15;
        if (digit) fe_mul(acc, acc, powers[digit]);
    }
    fe_copy(r, acc);
}

// MARK: - Points

static inline __attribute__((always_inline)) void jac_set_infinity(jac *r) { memset(r, 0, sizeof(*r)); }
static inline __attribute__((always_inline)) int jac_is_infinity(const jac *p) { return fe_is_zero(p->z); }

static inline __attribute__((always_inline)) void jac_from_affine(jac *r, const aff *a) {
    fe_copy(r->x, a->x);
    fe_copy(r->y, a->y);
    fe_copy(r->z, ONE);
}

/// r = 2p (dbl-2001-b, a = -3). Infinity doubles to infinity (Z stays 0); there is no point
/// of order 2 on this curve. r may be p.
static void jac_double(jac *r, const jac *p) {
    fe delta, gamma, beta, alpha, t1, t2, four_beta;
    fe_sqr(delta, p->z);
    fe_sqr(gamma, p->y);
    fe_mul(beta, p->x, gamma);
    fe_sub(t1, p->x, delta);
    fe_add(t2, p->x, delta);
    fe_mul(alpha, t1, t2);
    fe_add(t1, alpha, alpha);
    fe_add(alpha, t1, alpha);              // alpha = 3 (X - delta)(X + delta)
    fe_add(t1, p->y, p->z);
    fe_sqr(t1, t1);
    fe_sub(t1, t1, gamma);
    fe_sub(r->z, t1, delta);               // Z3 = (Y + Z)^2 - gamma - delta
    fe_add(four_beta, beta, beta);
    fe_add(four_beta, four_beta, four_beta);
    fe_sqr(t1, alpha);
    fe_sub(t1, t1, four_beta);
    fe_sub(r->x, t1, four_beta);           // X3 = alpha^2 - 8 beta
    fe_sub(t1, four_beta, r->x);
    fe_mul(t1, alpha, t1);
    fe_sqr(t2, gamma);
    fe_add(t2, t2, t2);
    fe_add(t2, t2, t2);
    fe_add(t2, t2, t2);
    fe_sub(r->y, t1, t2);                  // Y3 = alpha (4 beta - X3) - 8 gamma^2
}

/// r = p + q, q affine (madd-2007-bl). r may be p.
static void jac_add_affine(jac *r, const jac *p, const aff *q) {
    if (jac_is_infinity(p)) {
        jac_from_affine(r, q);
        return;
    }
    fe z1z1, u2, s2, h, rr, hh, i, j, v, x3, y3, t, z3;
    fe_sqr(z1z1, p->z);
    fe_mul(u2, q->x, z1z1);
    fe_mul(s2, q->y, p->z);
    fe_mul(s2, s2, z1z1);
    fe_sub(h, u2, p->x);
    fe_sub(rr, s2, p->y);
    if (fe_is_zero(h)) {
        if (fe_is_zero(rr)) jac_double(r, p);  // p == q
        else jac_set_infinity(r);              // p == -q
        return;
    }
    fe_add(rr, rr, rr);
    fe_sqr(hh, h);
    fe_add(i, hh, hh);
    fe_add(i, i, i);
    fe_mul(j, h, i);
    fe_mul(v, p->x, i);
    fe_sqr(x3, rr);
    fe_sub(x3, x3, j);
    fe_sub(x3, x3, v);
    fe_sub(x3, x3, v);                     // X3 = r^2 - J - 2V
    fe_sub(t, v, x3);
    fe_mul(y3, rr, t);
    fe_mul(t, p->y, j);
    fe_add(t, t, t);
    fe_sub(y3, y3, t);                     // Y3 = r (V - X3) - 2 Y1 J
    fe_add(z3, p->z, h);
    fe_sqr(z3, z3);
    fe_sub(z3, z3, z1z1);
    fe_sub(z3, z3, hh);                    // Z3 = (Z1 + H)^2 - Z1Z1 - HH
    fe_copy(r->x, x3);
    fe_copy(r->y, y3);
    fe_copy(r->z, z3);
}

/// r = p + q, both Jacobian (add-2007-bl). r may be p or q.
static void jac_add(jac *r, const jac *p, const jac *q) {
    if (jac_is_infinity(p)) { *r = *q; return; }
    if (jac_is_infinity(q)) { *r = *p; return; }
    fe z1z1, z2z2, u1, u2, s1, s2, h, rr, i, j, v, x3, y3, z3, t;
    fe_sqr(z1z1, p->z);
    fe_sqr(z2z2, q->z);
    fe_mul(u1, p->x, z2z2);
    fe_mul(u2, q->x, z1z1);
    fe_mul(s1, p->y, q->z);
    fe_mul(s1, s1, z2z2);
    fe_mul(s2, q->y, p->z);
    fe_mul(s2, s2, z1z1);
    fe_sub(h, u2, u1);
    fe_sub(rr, s2, s1);
    if (fe_is_zero(h)) {
        if (fe_is_zero(rr)) jac_double(r, p);
        else jac_set_infinity(r);
        return;
    }
    fe_add(rr, rr, rr);
    fe_add(i, h, h);
    fe_sqr(i, i);
    fe_mul(j, h, i);
    fe_mul(v, u1, i);
    fe_sqr(x3, rr);
    fe_sub(x3, x3, j);
    fe_sub(x3, x3, v);
    fe_sub(x3, x3, v);
    fe_sub(t, v, x3);
    fe_mul(y3, rr, t);
    fe_mul(t, s1, j);
    fe_add(t, t, t);
    fe_sub(y3, y3, t);
    fe_add(z3, p->z, q->z);
    fe_sqr(z3, z3);
    fe_sub(z3, z3, z1z1);
    fe_sub(z3, z3, z2z2);
    fe_mul(z3, z3, h);
    fe_copy(r->x, x3);
    fe_copy(r->y, y3);
    fe_copy(r->z, z3);
}

/// Converts `count` points, none at infinity, to affine with one inversion (Montgomery's
/// trick). `scratch` holds `count` field elements.
static void jac_to_affine_batch(aff *out, const jac *in, int count, fe *scratch) {
    fe_copy(scratch[0], in[0].z);
    for (int k = 1; k < count; k++) fe_mul(scratch[k], scratch[k - 1], in[k].z);
    fe inverse;
    fe_invert(inverse, scratch[count - 1]);
    for (int k = count - 1; k >= 0; k--) {
        fe zinv, zinv2, zinv3;
        if (k > 0) {
            fe_mul(zinv, inverse, scratch[k - 1]);
            fe_mul(inverse, inverse, in[k].z);
        } else {
            fe_copy(zinv, inverse);
        }
        fe_sqr(zinv2, zinv);
        fe_mul(zinv3, zinv2, zinv);
        fe_mul(out[k].x, in[k].x, zinv2);
        fe_mul(out[k].y, in[k].y, zinv3);
    }
}

static inline __attribute__((always_inline)) void aff_negate(aff *r, const aff *a) {
    fe_copy(r->x, a->x);
    fe_negate(r->y, a->y);
}

// MARK: - Initialisation

static void initialise(void) {
    // R2 = 2^256 * (2^256 mod p) mod p, by 256 doublings of the Montgomery one.
    fe r;
    fe_copy(r, ONE);
    for (int i = 0; i < 256; i++) fe_add(r, r, r);
    fe_copy(R2, r);
    fe_from_int(B_M, B);
    int_sub(P_MINUS_N, P, N);

    aff g;
    fe_from_int(g.x, GX);
    fe_from_int(g.y, GY);
    const int count = 32 * 128 + 1;
    jac *points = malloc(sizeof(jac) * count);
    fe *scratch = malloc(sizeof(fe) * count);
    aff *affine = malloc(sizeof(aff) * count);
    if (!points || !scratch || !affine) abort();  // 400 KiB at start-up
    jac base;
    jac_from_affine(&base, &g);
    for (int i = 0; i < 32; i++) {
        points[i * 128] = base;
        for (int k = 1; k < 128; k++) jac_add(&points[i * 128 + k], &points[i * 128 + k - 1], &base);
        jac_double(&base, &points[i * 128 + 127]);  // 256 * 2^(8i) G
    }
    points[count - 1] = base;
    jac_to_affine_batch(affine, points, count, scratch);
    memcpy(G_TABLE, affine, sizeof(G_TABLE));
    G_TOP = affine[count - 1];
    free(points);
    free(scratch);
    free(affine);
}

static pthread_once_t initialised = PTHREAD_ONCE_INIT;
static inline __attribute__((always_inline)) void ensure_initialised(void) { pthread_once(&initialised, initialise); }

// MARK: - Scalar multiplication

/// acc += k * G for k < 2^256, by the comb over signed base-256 digits: k = sum d_i 256^i
/// with d_i in [-128, 127] plus a final carry digit, each digit one table lookup and one
/// mixed addition, no doubling.
static void add_generator_multiple(jac *acc, const uint64_t k[4]) {
    int carry = 0;
    for (int i = 0; i < 32; i++) {
        int v = (int)((k[i / 8] >> (8 * (i % 8))) & 0xFF) + carry;
        int d;
        if (v >= 128) { d = v - 256; carry = 1; } else { d = v; carry = 0; }
        if (d > 0) {
            jac_add_affine(acc, acc, &G_TABLE[i][d - 1]);
        } else if (d < 0) {
            aff negated;
            aff_negate(&negated, &G_TABLE[i][-d - 1]);
            jac_add_affine(acc, acc, &negated);
        }
    }
    if (carry) jac_add_affine(acc, acc, &G_TOP);
}

/// Bits [bit, bit + count) of the little-endian limbs k (count <= 5); bits beyond are 0.
static inline __attribute__((always_inline)) int scalar_bits(const uint64_t *k, int limbs, int bit, int count) {
    int limb = bit >> 6, offset = bit & 63;
    uint64_t v = 0;
    if (limb < limbs) v = k[limb] >> offset;
    if (offset + count > 64 && limb + 1 < limbs) v |= k[limb + 1] << (64 - offset);
    return (int)(v & ((1u << count) - 1));
}

/// Width-5 NAF of k (`limbs` limbs) in `length` digits, which must exceed k's bit length:
/// every non-zero digit is odd and in [-15, 15], and any 5 consecutive digits hold at most
/// one non-zero digit. Returns the index of the highest non-zero digit, or -1 for k = 0.
static int wnaf5(int8_t *digits, const uint64_t *k, int limbs, int length) {
    memset(digits, 0, (size_t)length);
    int bit = 0, carry = 0, highest = -1;
    while (bit < length) {
        if (scalar_bits(k, limbs, bit, 1) == carry) {
            bit++;
            continue;
        }
        int now = length - bit < 5 ? length - bit : 5;
        int word = scalar_bits(k, limbs, bit, now) + carry;
        carry = (word >> 4) & 1;
        word -= carry << 5;
        digits[bit] = (int8_t)word;
        highest = bit;
        bit += now;
    }
    return highest;
}

/// r = m * P, 0 < m < n, from P alone: 256 doublings and a width-5 NAF over a Jacobian
/// table of 1P, 3P, ..., 15P.
static void multiply_point(jac *r, const uint64_t m[4], const aff *point) {
    jac odd[8], twice;
    jac_from_affine(&odd[0], point);
    jac_double(&twice, &odd[0]);
    for (int k = 1; k < 8; k++) jac_add(&odd[k], &odd[k - 1], &twice);
    int8_t digits[257];
    int highest = wnaf5(digits, m, 4, 257);
    jac_set_infinity(r);
    for (int i = highest; i >= 0; i--) {
        if (!jac_is_infinity(r)) jac_double(r, r);
        int d = digits[i];
        if (d > 0) {
            jac_add(r, r, &odd[(d - 1) / 2]);
        } else if (d < 0) {
            jac negated = odd[(-d - 1) / 2];
            fe_negate(negated.y, negated.y);
            jac_add(r, r, &negated);
        }
    }
}

/// r = m * P, 0 < m < n, from P's table: m = sum m_j 2^(64 j) with 64-bit m_j, each m_j
/// in width-5 NAF against the affine odd multiples of 2^(64 j) P, so 64 shared doublings.
static void multiply_table(jac *r, const uint64_t m[4], const quarry_sm2fast_table *table) {
    int8_t digits[4][65];
    int highest = -1;
    for (int j = 0; j < 4; j++) {
        int h = wnaf5(digits[j], &m[j], 1, 65);
        if (h > highest) highest = h;
    }
    jac_set_infinity(r);
    for (int i = highest; i >= 0; i--) {
        if (!jac_is_infinity(r)) jac_double(r, r);
        for (int j = 0; j < 4; j++) {
            int d = digits[j][i];
            if (d > 0) {
                jac_add_affine(r, r, &table->multiples[j][(d - 1) / 2]);
            } else if (d < 0) {
                aff negated;
                aff_negate(&negated, &table->multiples[j][(-d - 1) / 2]);
                jac_add_affine(r, r, &negated);
            }
        }
    }
}

// MARK: - Public functions

int quarry_sm2fast_point_decode(quarry_sm2fast_point *out, const uint8_t xy[64]) {
    ensure_initialised();
    uint64_t x[4], y[4];
    int_load(x, xy);
    int_load(y, xy + 32);
    if (int_compare(x, P) >= 0 || int_compare(y, P) >= 0) return 0;
    aff a;
    fe_from_int(a.x, x);
    fe_from_int(a.y, y);
    fe x2, x3, three_x, rhs, lhs;
    fe_sqr(x2, a.x);
    fe_mul(x3, x2, a.x);
    fe_add(three_x, a.x, a.x);
    fe_add(three_x, three_x, a.x);
    fe_sub(rhs, x3, three_x);
    fe_add(rhs, rhs, B_M);
    fe_sqr(lhs, a.y);
    if (!fe_equal(lhs, rhs)) return 0;
    *out = a;
    return 1;
}

void quarry_sm2fast_point_encode(uint8_t xy[64], const quarry_sm2fast_point *point) {
    uint64_t x[4], y[4];
    fe_to_int(x, point->x);
    fe_to_int(y, point->y);
    int_store(xy, x);
    int_store(xy + 32, y);
}

void quarry_sm2fast_table_build(quarry_sm2fast_table *table, const quarry_sm2fast_point *point) {
    ensure_initialised();
    jac points[32], base, twice;
    fe scratch[32];
    jac_from_affine(&base, point);
    for (int j = 0; j < 4; j++) {
        jac_double(&twice, &base);
        points[j * 8] = base;
        for (int k = 1; k < 8; k++) jac_add(&points[j * 8 + k], &points[j * 8 + k - 1], &twice);
        if (j < 3) {
            for (int i = 0; i < 64; i++) jac_double(&base, &base);
        }
    }
    jac_to_affine_batch(&table->multiples[0][0], points, 32, scratch);
}

/// The verification equation for either form of P (exactly one of point, table is set).
static int verify(const quarry_sm2fast_point *point, const quarry_sm2fast_table *table,
                  const uint8_t e_bytes[32], const uint8_t r_bytes[32], const uint8_t s_bytes[32]) {
    ensure_initialised();
    uint64_t r[4], s[4], e[4], t[4], c[4];
    int_load(r, r_bytes);
    int_load(s, s_bytes);
    if (int_is_zero(r) || int_compare(r, N) >= 0) return 0;
    if (int_is_zero(s) || int_compare(s, N) >= 0) return 0;
    scalar_add(t, r, s);
    if (int_is_zero(t)) return 0;
    int_load(e, e_bytes);
    scalar_reduce(e, e);
    scalar_sub(c, r, e);  // the x1 that makes (e + x1) mod n = r, reduced mod n

    jac sum;
    if (table) multiply_table(&sum, t, table);
    else multiply_point(&sum, t, point);
    add_generator_multiple(&sum, s);
    if (jac_is_infinity(&sum)) return 0;

    // x1 = X / Z^2 lies in [0, p) and p < 2n, so x1 = c or x1 = c + n (when c + n < p).
    // Compare X with candidate * Z^2 instead of inverting Z.
    fe zz, candidate, product;
    fe_sqr(zz, sum.z);
    fe_from_int(candidate, c);
    fe_mul(product, candidate, zz);
    if (fe_equal(product, sum.x)) return 1;
    if (int_compare(c, P_MINUS_N) < 0) {
        uint64_t c2[4];
        int_add(c2, c, N);
        fe_from_int(candidate, c2);
        fe_mul(product, candidate, zz);
        if (fe_equal(product, sum.x)) return 1;
    }
    return 0;
}

int quarry_sm2fast_verify(const quarry_sm2fast_point *point, const uint8_t e[32],
                          const uint8_t r[32], const uint8_t s[32]) {
    return verify(point, NULL, e, r, s);
}

int quarry_sm2fast_verify_table(const quarry_sm2fast_table *table, const uint8_t e[32],
                                const uint8_t r[32], const uint8_t s[32]) {
    return verify(NULL, table, e, r, s);
}

int quarry_sm2fast_combination(uint8_t xy[64], const uint8_t k_bytes[32], const uint8_t m_bytes[32],
                               const quarry_sm2fast_point *point, const quarry_sm2fast_table *table) {
    ensure_initialised();
    uint64_t k[4], m[4];
    int_load(k, k_bytes);
    int_load(m, m_bytes);
    scalar_reduce(k, k);
    scalar_reduce(m, m);
    jac sum;
    jac_set_infinity(&sum);
    if (!int_is_zero(m)) {
        if (table) multiply_table(&sum, m, table);
        else multiply_point(&sum, m, point);
    }
    add_generator_multiple(&sum, k);
    if (jac_is_infinity(&sum)) return 0;
    fe zinv, zinv2, zinv3;
    aff a;
    fe_invert(zinv, sum.z);
    fe_sqr(zinv2, zinv);
    fe_mul(zinv3, zinv2, zinv);
    fe_mul(a.x, sum.x, zinv2);
    fe_mul(a.y, sum.y, zinv3);
    quarry_sm2fast_point_encode(xy, &a);
    return 1;
}
