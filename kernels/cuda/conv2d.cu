// 2-D convolution through cuDNN (cross-correlation, zero padding, no groups:
// PyTorch's Conv2d), forward, fused forward and both backward passes.
//
// Each distinct shape gets a plan: its descriptors and, found once on first
// use, the fastest algorithm of each pass that fits the workspace cap
// (cudnnFind*, i.e. PyTorch's cudnn.benchmark), kept for the process.  The
// backward calls carry no ConvCache, so plans are keyed on the shape alone,
// in one table; the ConvCache of the table holds nothing (cuDNN needs no
// weight-derived data kept between calls).
//
// Math: CUDNN_FMA_MATH (plain f32) and only the direct and GEMM algorithms
// unless CNNPIPE_CUDA_TF32=1, so that the results stay within f32 rounding
// of conv2d_forward_ref.
//   x: (N, C, H, W), w: (K, C, R, S), b: (K) or NULL, y, res: (N, K, P, Q)
#include <stdlib.h>
#include <string.h>
#include "ops_cuda.cuh"

// The workspace a pass may ask for; algorithms wanting more are passed over.
#define WORKSPACE_CAP ((size_t)1 << 30)

struct ConvCache { int unused; };

typedef struct {
	ConvShape s;
	cudnnTensorDescriptor_t x, y, b;
	cudnnFilterDescriptor_t w;
	cudnnConvolutionDescriptor_t conv;
	int have_fwd, have_bwd_data, have_bwd_filter;
	cudnnConvolutionFwdAlgo_t fwd;
	cudnnConvolutionBwdDataAlgo_t bwd_data;
	cudnnConvolutionBwdFilterAlgo_t bwd_filter;
	size_t fwd_ws, bwd_data_ws, bwd_filter_ws;
} ConvPlan;

static ConvPlan *plans;
static int nplans, cap_plans;

static int same_shape(const ConvShape *a, const ConvShape *b)
{
	return a->N == b->N && a->C == b->C && a->H == b->H && a->W == b->W &&
	       a->K == b->K && a->R == b->R && a->S == b->S &&
	       a->stride == b->stride && a->pad == b->pad;
}

static ConvPlan *plan_for(const ConvShape *s)
{
	for (int i = 0; i < nplans; i++)
		if (same_shape(&plans[i].s, s))
			return &plans[i];
	if (nplans == cap_plans) {
		int cap = cap_plans ? 2 * cap_plans : 32;
		ConvPlan *p = (ConvPlan *)realloc(plans, (size_t)cap * sizeof *p);
		if (!p)
			die("cuda: conv plans: out of memory");
		plans = p;
		cap_plans = cap;
	}
	ConvPlan *p = &plans[nplans];
	memset(p, 0, sizeof *p);
	p->s = *s;
	CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->x));
	CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->y));
	CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->b));
	CUDNN_CHECK(cudnnCreateFilterDescriptor(&p->w));
	CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&p->conv));
	nplans++;   // from here on teardown destroys what was made
	CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT,
	                                       s->N, s->C, s->H, s->W));
	CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT,
	                                       s->N, s->K, s->P, s->Q));
	CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->b, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT,
	                                       1, s->K, 1, 1));
	CUDNN_CHECK(cudnnSetFilter4dDescriptor(p->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW,
	                                       s->K, s->C, s->R, s->S));
	CUDNN_CHECK(cudnnSetConvolution2dDescriptor(p->conv, s->pad, s->pad, s->stride,
	                                            s->stride, 1, 1,
	                                            CUDNN_CROSS_CORRELATION,
	                                            CUDNN_DATA_FLOAT));
	CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv, cuda_tf32() ? CUDNN_DEFAULT_MATH
	                                                             : CUDNN_FMA_MATH));
	int n, c, h, w;
	CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(p->conv, p->x, p->w,
	                                                  &n, &c, &h, &w));
	if (n != s->N || c != s->K || h != s->P || w != s->Q)
		die("cuda: conv2d: cuDNN's output (%d, %d, %d, %d) is not the shape's "
		    "(%d, %d, %d, %d)", n, c, h, w, s->N, s->K, s->P, s->Q);
	return p;
}

void cu_conv_plans_free(void)
{
	for (int i = 0; i < nplans; i++) {
		cudnnDestroyTensorDescriptor(plans[i].x);
		cudnnDestroyTensorDescriptor(plans[i].y);
		cudnnDestroyTensorDescriptor(plans[i].b);
		cudnnDestroyFilterDescriptor(plans[i].w);
		cudnnDestroyConvolutionDescriptor(plans[i].conv);
	}
	free(plans);
	plans = NULL;
	nplans = cap_plans = 0;
}

// The algorithms that transform the problem (FFT, Winograd) trade f32
// accuracy for speed: errors of 1e-5 to 1e-4 of the scale against 1e-6 for
// the direct and GEMM ones.  In plain f32 (the default) only the latter are
// used, so results stay within f32 rounding of the reference; with
// CNNPIPE_CUDA_TF32=1 speed wins and all may be.
static int exact_fwd(cudnnConvolutionFwdAlgo_t a)
{
	return a == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM ||
	       a == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM ||
	       a == CUDNN_CONVOLUTION_FWD_ALGO_GEMM ||
	       a == CUDNN_CONVOLUTION_FWD_ALGO_DIRECT;
}

static int exact_bwd_data(cudnnConvolutionBwdDataAlgo_t a)
{
	return a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_0 || a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
}

static int exact_bwd_filter(cudnnConvolutionBwdFilterAlgo_t a)
{
	return a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0 ||
	       a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1 ||
	       a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3;
}

// A result of cudnnFind* that may be used: it ran, fits the cap, and (f32
// unless TF32 was asked for) neither rounds its inputs to tensor-core
// precision nor transforms the problem (exact: exact_* above).
template <typename Perf>
static int usable(const Perf *r, int exact)
{
	if (r->status != CUDNN_STATUS_SUCCESS || r->memory > WORKSPACE_CAP)
		return 0;
	if (cuda_tf32())
		return 1;
	return exact && r->mathType != CUDNN_TENSOR_OP_MATH &&
	       r->mathType != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
}

static void find_fwd(ConvPlan *p)
{
	cudnnConvolutionFwdAlgoPerf_t r[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
	int got = 0;
	CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithm(cuda_cudnn(), p->x, p->w, p->conv,
	        p->y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, r));
	for (int i = 0; i < got; i++)   // fastest first
		if (usable(&r[i], exact_fwd(r[i].algo))) {
			p->fwd = r[i].algo;
			p->fwd_ws = r[i].memory;
			p->have_fwd = 1;
			return;
		}
	die("cuda: conv2d forward (%d, %d, %d, %d) * (%d, %d, %d, %d): cuDNN has no "
	    "algorithm within %zu bytes of workspace", p->s.N, p->s.C, p->s.H, p->s.W,
	    p->s.K, p->s.C, p->s.R, p->s.S, (size_t)WORKSPACE_CAP);
}

static void find_bwd_data(ConvPlan *p)
{
	cudnnConvolutionBwdDataAlgoPerf_t r[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
	int got = 0;
	CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithm(cuda_cudnn(), p->w, p->y,
	        p->conv, p->x, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &got, r));
	for (int i = 0; i < got; i++)
		if (usable(&r[i], exact_bwd_data(r[i].algo))) {
			p->bwd_data = r[i].algo;
			p->bwd_data_ws = r[i].memory;
			p->have_bwd_data = 1;
			return;
		}
	die("cuda: conv2d backward data (%d, %d, %d, %d): cuDNN has no algorithm "
	    "within %zu bytes of workspace", p->s.N, p->s.C, p->s.H, p->s.W,
	    (size_t)WORKSPACE_CAP);
}

static void find_bwd_filter(ConvPlan *p)
{
	cudnnConvolutionBwdFilterAlgoPerf_t r[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
	int got = 0;
	CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithm(cuda_cudnn(), p->x, p->y,
	        p->conv, p->w, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &got, r));
	for (int i = 0; i < got; i++)
		if (usable(&r[i], exact_bwd_filter(r[i].algo))) {
			p->bwd_filter = r[i].algo;
			p->bwd_filter_ws = r[i].memory;
			p->have_bwd_filter = 1;
			return;
		}
	die("cuda: conv2d backward filter (%d, %d, %d, %d): cuDNN has no algorithm "
	    "within %zu bytes of workspace", p->s.N, p->s.C, p->s.H, p->s.W,
	    (size_t)WORKSPACE_CAP);
}

ConvCache *cu_conv_cache_new(void)
{
	ConvCache *c = (ConvCache *)calloc(1, sizeof *c);
	if (!c)
		die("cuda: conv cache: out of memory");
	return c;
}

void cu_conv_cache_free(ConvCache *c)
{
	free(c);
}

void cu_conv_cache_invalidate(ConvCache *c)
{
	(void)c;   // nothing derived from the weights is kept
}

// The epilogue, in conv_epilogue_range's order of operations:
//   v = (conv + b[k]) + res;  y = max(v, v*slope)  (slope 0: ReLU)
// with act NONE: y = v.  y: (N, K, PQ), b: (K) or NULL, res like y or NULL.
__global__ void conv_epilogue_kernel(size_t n, int K, size_t PQ, const float *b,
                                     const float *res, int act, float slope,
                                     float *y)
{
	GRID_STRIDE(i, n) {
		float v = y[i];
		if (b)
			v = v + b[(i / PQ) % (size_t)K];
		if (res)
			v = v + res[i];
		if (act != CONV_ACT_NONE) {
			float sv = __fmul_rn(v, act == CONV_ACT_RELU ? 0.0f : slope);
			v = v > sv ? v : sv;
		}
		y[i] = v;
	}
}

static void forward(const ConvShape *s, const float *x, const float *w,
                    const float *b, const float *res, int act, float slope,
                    float *y)
{
	if (s->N == 0)
		return;
	ConvPlan *p = plan_for(s);
	if (!p->have_fwd)
		find_fwd(p);
	const float one = 1.0f, zero = 0.0f;
	void *ws = p->fwd_ws ? cuda_workspace(p->fwd_ws) : NULL;
	CUDNN_CHECK(cudnnConvolutionForward(cuda_cudnn(), &one, p->x, x, p->w, w, p->conv,
	        p->fwd, ws, p->fwd_ws, &zero, p->y, y));
	if (!b && !res && act == CONV_ACT_NONE)
		return;
	size_t PQ = (size_t)s->P * s->Q, n = (size_t)s->N * s->K * PQ;
	conv_epilogue_kernel<<<grid_for(n), THREADS>>>(n, s->K, PQ, b, res, act, slope, y);
	LAUNCH_CHECK(conv_epilogue_kernel);
}

void cu_conv2d_forward(ConvCache *c, const ConvShape *s, const float *x,
                       const float *w, const float *b, float *y)
{
	(void)c;
	forward(s, x, w, b, NULL, CONV_ACT_NONE, 0.0f, y);
}

void cu_conv2d_forward_fused(ConvCache *c, const ConvShape *s, const float *x,
                             const float *w, const float *b, const float *res,
                             int act, float slope, float *y)
{
	(void)c;
	forward(s, x, w, b, res, act, slope, y);
}

// dx (=) through backward data; dw (+=) through backward filter with
// beta 1; db (+=) through backward bias with beta 1.
void cu_conv2d_backward(const ConvShape *s, const float *x, const float *w,
                        const float *dy, float *dx, float *dw, float *db)
{
	if (s->N == 0) {
		// no samples: dx is empty, the parameter gradients do not move
		return;
	}
	ConvPlan *p = plan_for(s);
	const float one = 1.0f, zero = 0.0f;
	if (dx) {
		if (!p->have_bwd_data)
			find_bwd_data(p);
		void *ws = p->bwd_data_ws ? cuda_workspace(p->bwd_data_ws) : NULL;
		CUDNN_CHECK(cudnnConvolutionBackwardData(cuda_cudnn(), &one, p->w, w, p->y, dy,
		        p->conv, p->bwd_data, ws, p->bwd_data_ws, &zero, p->x, dx));
	}
	if (dw) {
		if (!p->have_bwd_filter)
			find_bwd_filter(p);
		void *ws = p->bwd_filter_ws ? cuda_workspace(p->bwd_filter_ws) : NULL;
		CUDNN_CHECK(cudnnConvolutionBackwardFilter(cuda_cudnn(), &one, p->x, x, p->y, dy,
		        p->conv, p->bwd_filter, ws, p->bwd_filter_ws, &one, p->w, dw));
	}
	if (db)
		CUDNN_CHECK(cudnnConvolutionBackwardBias(cuda_cudnn(), &one, p->y, dy, &one,
		                                         p->b, db));
}
