// Inverted dropout (torch.nn.Dropout / fastai's head): in training each value
// is kept with probability 1-p and scaled by 1/(1-p), so eval needs no
// rescaling.  The mask comes from the seeded PCG32 stream, one uniform per
// value in order, so a run is reproducible from the Rng state.
//   x, y, dy, dx, mask: (n)
#include <string.h>
#include "ops.h"
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

// ---- reference ------------------------------------------------------------
// Value by value: for 0 < p < 1 one rng_uniform per value, in order (the
// fast path's draws, so the same seed gives the same mask), kept when it
// is >= p, then y = x * (1/(1-p)) with the factor rounded to float once.
// p <= 0 keeps everything unscaled and draws nothing; p >= 1 drops
// everything and draws nothing.

void dropout_forward_ref(size_t n, float p, Rng *rng, const float *x, float *y,
                         uint8_t *mask)
{
	const int draw = !(p <= 0.0f) && !(p >= 1.0f);
	const float scale = draw ? 1.0f / (1.0f - p) : 1.0f;
	for (size_t i = 0; i < n; i++) {
		int keep = p <= 0.0f ? 1 : draw ? rng_uniform(rng) >= p : 0;
		y[i] = !keep ? 0.0f : draw ? x[i] * scale : x[i];
		if (mask)
			mask[i] = (uint8_t)keep;
	}
}

// dx = dy * (1/(1-p)) where mask is 1, 0 where it is 0; p <= 0: dx = dy.
void dropout_backward_ref(size_t n, float p, const uint8_t *mask,
                          const float *dy, float *dx)
{
	for (size_t i = 0; i < n; i++) {
		if (p <= 0.0f)
			dx[i] = dy[i];
		else if (p >= 1.0f)
			dx[i] = mask[i] ? dy[i] * 0.0f : 0.0f;
		else
			dx[i] = mask[i] ? dy[i] * (1.0f / (1.0f - p)) : 0.0f;
	}
}

// ---- fast path ------------------------------------------------------------

void dropout_forward(size_t n, float p, Rng *rng, const float *x, float *y,
                     uint8_t *mask)
{
	if (p <= 0.0f) {
		if (y != x)
			memmove(y, x, sizeof(float) * n);
		if (mask)
			memset(mask, 1, n);
		return;
	}
	if (p >= 1.0f) {   // everything dropped; avoid 1/0
		memset(y, 0, sizeof(float) * n);
		if (mask)
			memset(mask, 0, n);
		return;
	}
	const float scale = 1.0f / (1.0f - p);
	// the draws a block at a time, then the block without a branch: the
	// mask is a coin toss, which no branch predictor guesses
	float u[256];
	for (size_t i0 = 0; i0 < n; i0 += 256) {
		size_t m = n - i0 < 256 ? n - i0 : 256;
		rng_uniform_fill(rng, u, m);
		const float *xp = x + i0;
		float *yp = y + i0;
		size_t i = 0;
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
		const __m512 sv = _mm512_set1_ps(scale), pv = _mm512_set1_ps(p);
		for (; i + 16 <= m; i += 16) {
			__mmask16 keep = _mm512_cmp_ps_mask(_mm512_loadu_ps(u + i), pv, _CMP_GE_OQ);
			_mm512_storeu_ps(yp + i, _mm512_maskz_mul_ps(keep, _mm512_loadu_ps(xp + i), sv));
			if (mask)
				_mm_storeu_si128((__m128i *)(mask + i0 + i),
				                 _mm_maskz_set1_epi8(keep, 1));
		}
#endif
		for (; i < m; i++) {
			int keep = u[i] >= p;   // P(keep) = 1 - p
			yp[i] = keep ? xp[i] * scale : 0.0f;
			if (mask)
				mask[i0 + i] = (uint8_t)keep;
		}
	}
}

void dropout_backward(size_t n, float p, const uint8_t *mask,
                      const float *dy, float *dx)
{
	if (p <= 0.0f) {
		if (dx != dy)
			memmove(dx, dy, sizeof(float) * n);
		return;
	}
	const float scale = p >= 1.0f ? 0.0f : 1.0f / (1.0f - p);
	size_t i = 0;
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
	const __m512 sv = _mm512_set1_ps(scale);
	for (; i + 16 <= n; i += 16) {
		__mmask16 keep = _mm_test_epi8_mask(_mm_loadu_si128((const __m128i *)(mask + i)),
		                                    _mm_set1_epi8(-1));
		_mm512_storeu_ps(dx + i, _mm512_maskz_mul_ps(keep, _mm512_loadu_ps(dy + i), sv));
	}
#endif
	for (; i < n; i++)
		dx[i] = mask[i] ? dy[i] * scale : 0.0f;
}
