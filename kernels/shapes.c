// Shape arithmetic of the operations (shapes.h).
#include "libcommon/util/err.h"
#include "shapes.h"

ConvShape conv_shape(int N, int C, int H, int W, int K, int R, int S,
                     int stride, int pad)
{
	ConvShape s = { N, C, H, W, K, R, S, stride, pad, 0, 0 };
	if (N < 0 || C < 1 || H < 1 || W < 1 || K < 1 || R < 1 || S < 1 ||
	    stride < 1 || pad < 0 || H + 2 * pad < R || W + 2 * pad < S)
		die("conv_shape: invalid shape");
	s.P = (H + 2 * pad - R) / stride + 1;
	s.Q = (W + 2 * pad - S) / stride + 1;
	return s;
}

PoolShape pool_shape(int N, int C, int H, int W, int k, int stride, int pad)
{
	PoolShape s = { N, C, H, W, k, stride, pad, 0, 0 };
	if (N < 0 || C < 1 || H < 1 || W < 1 || k < 1 || stride < 1 || pad < 0 ||
	    H + 2 * pad < k || W + 2 * pad < k)
		die("pool_shape: invalid shape");
	s.P = (H + 2 * pad - k) / stride + 1;
	s.Q = (W + 2 * pad - k) / stride + 1;
	return s;
}
