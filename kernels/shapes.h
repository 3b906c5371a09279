// The shapes of the operations, shared by every backend (the CPU one in
// kernels/cpu, the CUDA one planned) and by the engine that plans buffers.
#ifndef CNNPIPE_SHAPES_H
#define CNNPIPE_SHAPES_H

// x: (N, C, H, W), w: (K, C, R, S), b: (K) or NULL, y: (N, K, P, Q)
// P = (H + 2*pad - R) / stride + 1, Q likewise; zero padding; no groups.
typedef struct { int N, C, H, W, K, R, S, stride, pad, P, Q; } ConvShape;
ConvShape conv_shape(int N, int C, int H, int W, int K, int R, int S,
                     int stride, int pad);

// The fused convolution's epilogue activation (backend.h, conv_fused).
enum { CONV_ACT_NONE, CONV_ACT_RELU, CONV_ACT_LEAKY };

// x: (N, C, H, W), y: (N, C, P, Q); window k x k, stride, padding `pad` at
// top/left; P, Q given by the caller (so both PyTorch's and darknet's output
// rules fit).  Window cells outside x are ignored by max and counted as
// zeros by avg (PyTorch's count_include_pad=True).
typedef struct { int N, C, H, W, k, stride, pad, P, Q; } PoolShape;
PoolShape pool_shape(int N, int C, int H, int W, int k, int stride, int pad);  // PyTorch floor rule

// darknet's shortcut (see kernels/cpu/ops.h, shortcut_forward):
// x, y: (N, C, H, W); a: (N, Ca, Ha, Wa).
typedef struct { int N, C, H, W, Ca, Ha, Wa; } ShortcutShape;

#endif
