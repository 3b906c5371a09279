#include <pthread.h>
#include <string.h>
#include "crc32.h"
#if defined(__x86_64__)
#include <immintrin.h>
#endif

// Slicing-by-8: eight 256-entry tables let the loop fold 8 bytes per step.
static uint32_t table[8][256];
static int has_pclmul;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void make_tables(void)
{
#if defined(__x86_64__)
	has_pclmul = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
#endif
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
		table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
}

#if defined(__x86_64__)
// Carry-less multiplication folding (Gopal et al., "Fast CRC Computation
// for Generic Polynomials Using PCLMULQDQ Instruction", Intel 2009): four
// 128-bit lanes are folded forward 512 bits at a time, then into one lane,
// then reduced to 32 bits (Barrett).  The constants are x^k mod P(x),
// bit-reflected, for the polynomial of zlib's CRC-32.
// c: the running (inverted) state; n: a multiple of 16, at least 64.
__attribute__((target("pclmul,sse4.1")))
static uint32_t crc32_fold(uint32_t c, const unsigned char *p, size_t n)
{
	const __m128i k1k2 = _mm_set_epi64x(0x1c6e41596, 0x154442bd4);
	const __m128i k3k4 = _mm_set_epi64x(0x0ccaa009e, 0x1751997d0);
	const __m128i k5 = _mm_set_epi64x(0, 0x163cd6124);
	const __m128i poly_mu = _mm_set_epi64x(0x1f7011641, 0x1db710641);
	const __m128i mask32 = _mm_set_epi32(0, 0, 0, -1);
	__m128i x0 = _mm_loadu_si128((const __m128i *)p);
	__m128i x1 = _mm_loadu_si128((const __m128i *)(p + 16));
	__m128i x2 = _mm_loadu_si128((const __m128i *)(p + 32));
	__m128i x3 = _mm_loadu_si128((const __m128i *)(p + 48));
	x0 = _mm_xor_si128(x0, _mm_cvtsi32_si128((int)c));
	p += 64;
	n -= 64;
#define FOLD(x, k, next) _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), \
	_mm_clmulepi64_si128(x, k, 0x11)), next)
	for (; n >= 64; n -= 64, p += 64) {
		x0 = FOLD(x0, k1k2, _mm_loadu_si128((const __m128i *)p));
		x1 = FOLD(x1, k1k2, _mm_loadu_si128((const __m128i *)(p + 16)));
		x2 = FOLD(x2, k1k2, _mm_loadu_si128((const __m128i *)(p + 32)));
		x3 = FOLD(x3, k1k2, _mm_loadu_si128((const __m128i *)(p + 48)));
	}
	x0 = FOLD(x0, k3k4, x1);
	x0 = FOLD(x0, k3k4, x2);
	x0 = FOLD(x0, k3k4, x3);
	for (; n >= 16; n -= 16, p += 16)
		x0 = FOLD(x0, k3k4, _mm_loadu_si128((const __m128i *)p));
#undef FOLD
	// 128 -> 64 bits
	x0 = _mm_xor_si128(_mm_clmulepi64_si128(x0, k3k4, 0x10), _mm_srli_si128(x0, 8));
	// 64 -> 32 bits
	x1 = _mm_srli_si128(x0, 4);
	x0 = _mm_xor_si128(_mm_clmulepi64_si128(_mm_and_si128(x0, mask32), k5, 0x00), x1);
	// Barrett reduction
	x1 = _mm_clmulepi64_si128(_mm_and_si128(x0, mask32), poly_mu, 0x10);
	x1 = _mm_clmulepi64_si128(_mm_and_si128(x1, mask32), poly_mu, 0x00);
	return (uint32_t)_mm_extract_epi32(_mm_xor_si128(x1, x0), 1);
}
#endif

uint32_t crc32_update(uint32_t crc, const void *buf, size_t n)
{
	pthread_once(&once, make_tables);
	const unsigned char *p = buf;
	uint32_t c = ~crc;
#if defined(__x86_64__)
	if (has_pclmul && n >= 64) {
		size_t m = n & ~(size_t)15;
		c = crc32_fold(c, p, m);
		p += m;
		n -= m;
	}
#endif
	while (n >= 8) {
		uint32_t lo, hi;
		memcpy(&lo, p, 4);
		memcpy(&hi, p + 4, 4);
		lo ^= c;   // little-endian host assumed (x86-64, aarch64)
		c = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^
		    table[5][(lo >> 16) & 0xff] ^ table[4][lo >> 24] ^
		    table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^
		    table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
		p += 8;
		n -= 8;
	}
	while (n--)
		c = table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
	return ~c;
}
