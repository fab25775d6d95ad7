/*
 * cocopagehash.c: a keyed, fast, non-cryptographic 64-bit page hash
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "util/cocopagehash.h"

/*
 * The page hash. Eight 64-bit lanes, each taking one word of every
 * 64-byte stripe: the word is added to a per-lane sum, and the product of
 * the two 32-bit halves of the word XORed with a per-stripe key to the
 * lane's accumulator (the key advances every stripe, so moving data inside
 * the page changes the hash). Every 1 KiB the sum is folded in and the
 * lanes are scrambled with a shift-xor and an odd multiply; the eight
 * lanes are folded with a 64-bit finaliser at the end. All of it is
 * 32x32->64 multiplies, adds and xors, so x86-64 runs it four lanes at a
 * time with AVX2 when the CPU has it; the portable code computes the same
 * value. Own code; the odd constants are the usual golden-ratio and
 * finaliser multipliers.
 */
#define COCO_HASH_P1 0x9E3779B185EBCA87ULL
#define COCO_HASH_P2 0xC2B2AE3D27D4EB4FULL
#define COCO_HASH_P3 0x165667B19E3779F9ULL
#define COCO_HASH_P32 0x9E3779B1ULL
#define COCO_HASH_M1 0xFF51AFD7ED558CCDULL
#define COCO_HASH_M2 0xC4CEB9FE1A85EC53ULL
#define COCO_HASH_LANES 8
#define COCO_HASH_STRIPE (COCO_HASH_LANES * 8)
#define COCO_HASH_BLOCK 1024

static inline uint64_t
cocoHashRotl(uint64_t x, unsigned int r)
{
    return (x << r) | (x >> (64 - r));
}

static inline uint64_t
cocoHashFinal(uint64_t h)
{
    h ^= h >> 33;
    h *= COCO_HASH_M1;
    h ^= h >> 33;
    h *= COCO_HASH_M2;
    h ^= h >> 33;
    return h;
}

static void
cocoPageHashKeys(uint64_t seed, uint64_t key[COCO_HASH_LANES])
{
    size_t i;

    for (i = 0; i < COCO_HASH_LANES; i++)
        key[i] = cocoHashFinal(seed + (i + 1) * COCO_HASH_P1);
}

static uint64_t
cocoPageHashFold(uint64_t seed, const uint64_t acc[COCO_HASH_LANES])
{
    uint64_t h = seed ^ COCO_HASH_P2;
    size_t i;

    for (i = 0; i < COCO_HASH_LANES; i++)
        h = cocoHashRotl(h ^ cocoHashFinal(acc[i] + i), 27) * COCO_HASH_P1 +
            COCO_HASH_P3;
    h = cocoHashFinal(h);
    return h ? h : 1;
}

/* The hash of @page; with @copy, each stripe is also stored there as it is
 * read, so the hash is exactly that of the copy. */
static uint64_t
cocoPageHashPortable(const void *page, uint8_t *copy, uint64_t seed)
{
    const uint8_t *p = page;
    uint64_t acc[COCO_HASH_LANES], sum[COCO_HASH_LANES];
    uint64_t key[COCO_HASH_LANES], kv[COCO_HASH_LANES];
    size_t block, off, i;

    cocoPageHashKeys(seed, key);
    for (i = 0; i < COCO_HASH_LANES; i++) {
        acc[i] = key[i] ^ COCO_HASH_P3;
        sum[i] = 0;
    }

    for (block = 0; block < COCO_PAGE_HASH_SIZE; block += COCO_HASH_BLOCK) {
        memcpy(kv, key, sizeof(kv));
        for (off = 0; off < COCO_HASH_BLOCK; off += COCO_HASH_STRIPE) {
            uint64_t w[COCO_HASH_LANES];

            memcpy(w, p + block + off, sizeof(w));
            if (copy)
                memcpy(copy + block + off, w, sizeof(w));
            for (i = 0; i < COCO_HASH_LANES; i++) {
                uint64_t k = w[i] ^ kv[i];

                sum[i] += w[i];
                acc[i] += (k & 0xFFFFFFFFULL) * (k >> 32);
                kv[i] += COCO_HASH_P2;
            }
        }
        for (i = 0; i < COCO_HASH_LANES; i++) {
            uint64_t a = acc[i] + sum[i];

            a ^= a >> 47;
            a ^= key[i];
            acc[i] = a * COCO_HASH_P32;
            sum[i] = 0;
        }
    }
    return cocoPageHashFold(seed, acc);
}

#if defined(__x86_64__) && defined(__GNUC__)
# include <immintrin.h>

# define COCO_PAGE_HASH_AVX2 1

/* The loads and stores below are the unaligned forms (loadu/storeu); the
 * pointer casts they need trip clang's -Wcast-align all the same. */
# pragma GCC diagnostic push
# pragma GCC diagnostic ignored "-Wcast-align"
__attribute__((target("avx2"), always_inline)) static inline uint64_t
cocoPageHashAVX2Body(const void *page, uint8_t *copy, uint64_t seed)
{
    const uint8_t *p = page;
    uint64_t keys[COCO_HASH_LANES], out[COCO_HASH_LANES];
    __m256i acc[2], sum[2], key[2], kv[2];
    const __m256i step = _mm256_set1_epi64x((long long)COCO_HASH_P2);
    const __m256i p32 = _mm256_set1_epi64x((long long)COCO_HASH_P32);
    size_t block, off, j;

    cocoPageHashKeys(seed, keys);
    for (j = 0; j < 2; j++) {
        key[j] = _mm256_loadu_si256((const __m256i *)(keys + 4 * j));
        acc[j] = _mm256_xor_si256(key[j],
                                  _mm256_set1_epi64x((long long)COCO_HASH_P3));
        sum[j] = _mm256_setzero_si256();
    }

    for (block = 0; block < COCO_PAGE_HASH_SIZE; block += COCO_HASH_BLOCK) {
        kv[0] = key[0];
        kv[1] = key[1];
        for (off = 0; off < COCO_HASH_BLOCK; off += COCO_HASH_STRIPE) {
            for (j = 0; j < 2; j++) {
                __m256i w = _mm256_loadu_si256(
                    (const __m256i *)(p + block + off + 32 * j));
                __m256i k = _mm256_xor_si256(w, kv[j]);

                if (copy)
                    _mm256_storeu_si256(
                        (__m256i *)(copy + block + off + 32 * j), w);
                sum[j] = _mm256_add_epi64(sum[j], w);
                acc[j] = _mm256_add_epi64(
                    acc[j], _mm256_mul_epu32(k, _mm256_srli_epi64(k, 32)));
                kv[j] = _mm256_add_epi64(kv[j], step);
            }
        }
        for (j = 0; j < 2; j++) {
            __m256i a = _mm256_add_epi64(acc[j], sum[j]);
            __m256i hi;

            a = _mm256_xor_si256(a, _mm256_srli_epi64(a, 47));
            a = _mm256_xor_si256(a, key[j]);
            /* a * P32 mod 2^64 = lo(a) * P32 + (hi(a) * P32 << 32) */
            hi = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), p32);
            acc[j] = _mm256_add_epi64(_mm256_mul_epu32(a, p32),
                                      _mm256_slli_epi64(hi, 32));
            sum[j] = _mm256_setzero_si256();
        }
    }
    _mm256_storeu_si256((__m256i *)out, acc[0]);
    _mm256_storeu_si256((__m256i *)(out + 4), acc[1]);
    return cocoPageHashFold(seed, out);
}

__attribute__((target("avx2"))) static uint64_t
cocoPageHashAVX2(const void *page, uint64_t seed)
{
    return cocoPageHashAVX2Body(page, NULL, seed);
}

__attribute__((target("avx2"))) static uint64_t
cocoPageHashCopyAVX2(void *copy, const void *page, uint64_t seed)
{
    return cocoPageHashAVX2Body(page, copy, seed);
}
# pragma GCC diagnostic pop
#endif

static bool
cocoPageHashHaveAVX2(void)
{
#ifdef COCO_PAGE_HASH_AVX2
    static int avx2 = -1;
    int have = __atomic_load_n(&avx2, __ATOMIC_RELAXED);

    if (have < 0) {
        have = __builtin_cpu_supports("avx2") ? 1 : 0;
        __atomic_store_n(&avx2, have, __ATOMIC_RELAXED);
    }
    return have;
#else
    return false;
#endif
}

uint64_t
cocoPageHashGeneric(const void *page, uint64_t seed)
{
    return cocoPageHashPortable(page, NULL, seed);
}

uint64_t
cocoPageHash(const void *page, uint64_t seed)
{
#ifdef COCO_PAGE_HASH_AVX2
    if (cocoPageHashHaveAVX2())
        return cocoPageHashAVX2(page, seed);
#endif
    return cocoPageHashPortable(page, NULL, seed);
}

uint64_t
cocoPageHashCopy(void *copy, const void *page, uint64_t seed)
{
#ifdef COCO_PAGE_HASH_AVX2
    if (cocoPageHashHaveAVX2())
        return cocoPageHashCopyAVX2(copy, page, seed);
#endif
    return cocoPageHashPortable(page, copy, seed);
}
