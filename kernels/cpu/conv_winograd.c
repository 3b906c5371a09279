// Winograd F(4x4, 3x3) for 3x3 stride-1 convolutions (Lavin & Gray, "Fast
// Algorithms for Convolutional Neural Networks", 2015; points 0, +-1, +-2,
// inf): Y = A^T [ (G g G^T) (.) (B^T d B) ] A per 6x6 input tile and 4x4
// output tile, i.e. 36 multiplies per 16 outputs instead of 144.  The
// elementwise products summed over channels become 36 sgemms
//   M[xi]: (K, T) = U[xi]: (K, C) . V[xi]: (C, T)
// over a chunk of T tiles.  A chunk is a run of whole tile rows (possibly
// from several images) so the transforms run along contiguous tile rows,
// which the compiler vectorises: input rows are split into the 4 phases of
// the tile stride first.
//   x: (N, C, H, W), w: (K, C, 3, 3), y: (N, K, P, Q)
// Accuracy: the transforms add rounding (factors up to 8 and 1/24); against
// the double reference the error is a few 1e-6 relative to max|y| (see
// test_ops.c), about 10x the direct sgemm path's.
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#undef I   // <complex.h> (via cblas.h) defines I; ops.h uses it as a name
#include "alloc.h"
#include "ops.h"
#include "ops_internal.h"
#include "threads.h"

// U[xi][k][c] = (G g G^T)[i][j], xi = 6i + j.  U: (36, K, C)
static void filter_transform(int K, int C, const float *w, float *U)
{
	static const float G[6][3] = {
		{ 1.0f / 4, 0, 0 },
		{ -1.0f / 6, -1.0f / 6, -1.0f / 6 },
		{ -1.0f / 6, 1.0f / 6, -1.0f / 6 },
		{ 1.0f / 24, 1.0f / 12, 1.0f / 6 },
		{ 1.0f / 24, -1.0f / 12, 1.0f / 6 },
		{ 0, 0, 1 },
	};
	const size_t KC = (size_t)K * C;
	for (int k = 0; k < K; k++)
		for (int c = 0; c < C; c++) {
			const float *g = w + ((size_t)k * C + c) * 9;
			float t[6][3];   // G g
			for (int i = 0; i < 6; i++)
				for (int j = 0; j < 3; j++)
					t[i][j] = G[i][0] * g[j] + G[i][1] * g[3 + j] + G[i][2] * g[6 + j];
			for (int i = 0; i < 6; i++)
				for (int j = 0; j < 6; j++)
					U[(size_t)(i * 6 + j) * KC + (size_t)k * C + c] =
						t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2];
		}
}

// B^T applied to six vectors d0..d5 of length n, writing o0..o5 (stride os).
static inline void bt6(int n, const float *d0, const float *d1, const float *d2,
                       const float *d3, const float *d4, const float *d5,
                       float *o, size_t os)
{
	float *o0 = o, *o1 = o + os, *o2 = o + 2 * os, *o3 = o + 3 * os,
	      *o4 = o + 4 * os, *o5 = o + 5 * os;
	for (int m = 0; m < n; m++) {
		float a = d0[m], b = d1[m], c = d2[m], d = d3[m], e = d4[m], f = d5[m];
		o0[m] = 4 * a - 5 * c + e;
		o1[m] = -4 * b - 4 * c + d + e;
		o2[m] = 4 * b - 4 * c - d + e;
		o3[m] = -2 * b - c + 2 * d + e;
		o4[m] = 2 * b - c - 2 * d + e;
		o5[m] = 4 * b - 5 * d + f;
	}
}

// A^T applied to six vectors of length n, writing four (stride os).
static inline void at4(int n, const float *m0, const float *m1, const float *m2,
                       const float *m3, const float *m4, const float *m5,
                       float *o, size_t os)
{
	float *o0 = o, *o1 = o + os, *o2 = o + 2 * os, *o3 = o + 3 * os;
	for (int m = 0; m < n; m++) {
		float a = m0[m], b = m1[m], c = m2[m], d = m3[m], e = m4[m], f = m5[m];
		float s1 = b + c, d1 = b - c, s2 = d + e, d2 = d - e;
		o0[m] = a + s1 + s2;
		o1[m] = d1 + 2 * d2;
		o2[m] = s1 + 4 * s2;
		o3[m] = d1 + 8 * d2 + f;
	}
}

typedef struct {
	const ConvShape *s;
	const float *x, *b, *U;
	float *y;
	int TH, TW, rows_per_chunk;
	size_t nrows;   // N * TH tile rows
} WinoJob;

static void wino_slice(void *ctx, size_t c0, size_t c1, int thread)
{
	(void)thread;
	WinoJob *j = ctx;
	const ConvShape *s = j->s;
	const int C = s->C, K = s->K, TW = j->TW, TH = j->TH;
	const int Tmax = j->rows_per_chunk * TW;
	const int TWp = TW + 1;
	float *V = xmalloc_array((size_t)36 * C * Tmax, sizeof(float));
	float *M = xmalloc_array((size_t)36 * K * Tmax, sizeof(float));
	float *ph = xmalloc_array((size_t)4 * TWp + 4 * TWp, sizeof(float));
	float *rowT = xmalloc_array((size_t)36 * TWp, sizeof(float));   // [r][j][tw]
	float *buf = xmalloc_array((size_t)4 * TWp, sizeof(float));
	float *sT = xmalloc_array((size_t)24 * TWp, sizeof(float));     // [a][j][tw]
	float *oT = xmalloc_array((size_t)16 * TWp, sizeof(float));     // [a][b][tw]
	for (size_t chunk = c0; chunk < c1; chunk++) {
		size_t r0 = chunk * j->rows_per_chunk;
		size_t r1 = r0 + j->rows_per_chunk;
		if (r1 > j->nrows)
			r1 = j->nrows;
		const int T = (int)(r1 - r0) * TW;
		const size_t CT = (size_t)C * T, KT = (size_t)K * T;
		// input transform: V[xi][c][t]
		for (size_t row = r0; row < r1; row++) {
			int n = (int)(row / TH), th = (int)(row % TH);
			int t0 = (int)(row - r0) * TW;
			for (int c = 0; c < C; c++) {
				const float *xc = j->x + ((size_t)n * C + c) * s->H * s->W;
				for (int r = 0; r < 6; r++) {
					int ih = 4 * th - s->pad + r;
					// buf[u] = x[ih][u - pad], zero outside
					if (ih < 0 || ih >= s->H) {
						memset(buf, 0, sizeof(float) * 4 * TWp);
					} else {
						const float *xr = xc + (size_t)ih * s->W;
						for (int u = 0; u < 4 * TWp; u++) {
							int iw = u - s->pad;
							buf[u] = (iw >= 0 && iw < s->W) ? xr[iw] : 0.0f;
						}
					}
					// phases: ph[p][m] = buf[4m + p]
					for (int m = 0; m < TWp; m++)
						for (int p = 0; p < 4; p++)
							ph[p * TWp + m] = buf[4 * m + p];
					bt6(TW, ph, ph + TWp, ph + 2 * TWp, ph + 3 * TWp, ph + 1,
					    ph + TWp + 1, rowT + (size_t)r * 6 * TWp, TWp);
				}
				// columns done (rowT[r][j]); now B^T over r for each j
				for (int jj = 0; jj < 6; jj++) {
					float *o = V + (size_t)jj * CT + (size_t)c * T + t0;
					bt6(TW, rowT + (0 * 6 + jj) * TWp, rowT + (1 * 6 + jj) * TWp,
					    rowT + (2 * 6 + jj) * TWp, rowT + (3 * 6 + jj) * TWp,
					    rowT + (4 * 6 + jj) * TWp, rowT + (5 * 6 + jj) * TWp,
					    o, 6 * CT);   // xi = 6i + jj
				}
			}
		}
		for (int xi = 0; xi < 36; xi++)
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, K, T, C, 1.0f,
			            j->U + (size_t)xi * K * C, C, V + (size_t)xi * CT, T,
			            0.0f, M + (size_t)xi * KT, T);
		// output transform
		for (size_t row = r0; row < r1; row++) {
			int n = (int)(row / TH), th = (int)(row % TH);
			int t0 = (int)(row - r0) * TW;
			for (int k = 0; k < K; k++) {
				const float *mk = M + (size_t)k * T + t0;
				// A^T over i (rows) for each column j: sT[a][j][tw]
				for (int jj = 0; jj < 6; jj++)
					at4(TW, mk + (size_t)(0 * 6 + jj) * KT, mk + (size_t)(1 * 6 + jj) * KT,
					    mk + (size_t)(2 * 6 + jj) * KT, mk + (size_t)(3 * 6 + jj) * KT,
					    mk + (size_t)(4 * 6 + jj) * KT, mk + (size_t)(5 * 6 + jj) * KT,
					    sT + (size_t)jj * TWp, (size_t)6 * TWp);
				float bias = j->b ? j->b[k] : 0.0f;
				float *yk = j->y + ((size_t)n * K + k) * s->P * s->Q;
				for (int a = 0; a < 4; a++) {
					int oh = 4 * th + a;
					if (oh >= s->P)
						break;
					const float *sa = sT + (size_t)a * 6 * TWp;
					at4(TW, sa, sa + TWp, sa + 2 * TWp, sa + 3 * TWp, sa + 4 * TWp,
					    sa + 5 * TWp, oT, TWp);
					float *yr = yk + (size_t)oh * s->Q;
					for (int tw = 0; tw < TW; tw++)
						for (int bb = 0; bb < 4; bb++) {
							int ow = 4 * tw + bb;
							if (ow < s->Q)
								yr[ow] = oT[bb * TWp + tw] + bias;
						}
				}
			}
		}
	}
	free(V); free(M); free(ph); free(rowT); free(buf); free(sT); free(oT);
}

int conv2d_winograd_applies(const ConvShape *s)
{
	return s->R == 3 && s->S == 3 && s->stride == 1 && s->pad <= 2 &&
	       s->P >= 4 && s->Q >= 4;
}

void conv2d_forward_winograd(const ConvShape *s, const float *x, const float *w,
                             const float *b, float *y)
{
	if (s->N == 0)
		return;
	WinoJob j = { .s = s, .x = x, .b = b, .y = y };
	j.TH = (s->P + 3) / 4;
	j.TW = (s->Q + 3) / 4;
	j.nrows = (size_t)s->N * j.TH;
	// Tiles per chunk: V and M of a chunk (36 * (C + K) * T floats) around
	// a few MB, but at least ~64 tiles so that the sgemms stay efficient.
	const char *e = getenv("CNNPIPE_WINO_TILES");
	long target = e ? atol(e) : (long)(6e6 / (36.0 * 4 * (s->C + s->K)));
	if (target < 64)
		target = 64;
	if (target > 1024)
		target = 1024;
	j.rows_per_chunk = (int)(target / j.TW);
	if (j.rows_per_chunk < 1)
		j.rows_per_chunk = 1;
	size_t nchunks = (j.nrows + j.rows_per_chunk - 1) / j.rows_per_chunk;
	float *U = xmalloc_array((size_t)36 * s->K * s->C, sizeof(float));
	filter_transform(s->K, s->C, w, U);
	j.U = U;
	int T = ops_threads();
	if (T > 1 && nchunks >= (size_t)T) {
		ops_blas_threads(1);
		parallel_for(nchunks, T, wino_slice, &j);
		ops_blas_threads(T);
	} else {
		wino_slice(&j, 0, nchunks, 0);
	}
	free(U);
}
