// Importers of pretrained weights into a Record of named tensors.
//
// All importers return 0 on success, -1 on failure with a message in err
// ("<file>: <what is wrong>", naming the first offending tensor/offset).
// They never execute anything from the file, never allocate more than the
// file could hold, and convert every floating tensor to f32 (integer
// tensors such as num_batches_tracked become i64).
// `out` must be initialised (record_init); tensors are appended to it in file
// order (state_dict order for .pth, header order for safetensors).  On
// failure out is cleared (record_clear).  A strided (non-contiguous) view
// saved in a .pth is gathered into a contiguous tensor.
#ifndef CNNPIPE_IMPORT_H
#define CNNPIPE_IMPORT_H
#include <stddef.h>
#include <stdint.h>
#include "stream.h"

// torchvision checkpoint (.pth): a state_dict saved by torch.save, in the zip
// layout (PyTorch >= 1.6) or the legacy single-stream layout.  Tensor names
// are the state_dict keys ("conv1.weight", "layer1.0.bn1.running_var", ...).
int import_pth(const char *path, Record *out, char *err, size_t errlen);
int import_pth_mem(const void *buf, size_t len, const char *name, Record *out,
                   char *err, size_t errlen);

// safetensors: 8-byte header length, JSON header, raw data.
int import_safetensors(const char *path, Record *out, char *err, size_t errlen);
int import_safetensors_mem(const void *buf, size_t len, const char *name,
                           Record *out, char *err, size_t errlen);

// Darknet: a .cfg network description and its .weights.
enum { DN_CONV = 1, DN_MAXPOOL, DN_AVGPOOL, DN_SHORTCUT, DN_SOFTMAX, DN_COST,
       DN_CONNECTED, DN_DROPOUT, DN_ROUTE };
enum { DN_LINEAR = 0, DN_LEAKY, DN_RELU, DN_LOGISTIC };
typedef struct {
	int type;
	int filters, size, stride, pad;  // conv: pad in pixels (cfg pad=1 -> size/2)
	                                 // maxpool: darknet's total padding (default
	                                 // size-1); the window starts at -pad/2 and
	                                 // out = (in + pad - size)/stride + 1
	int batch_normalize, activation; // DN_LINEAR ... (conv default: logistic)
	int from;                        // shortcut: absolute index of the other input;
	                                 // out = input + layers[from]'s output (shapes
	                                 // may differ as in darknet's resnet cfgs:
	                                 // darknet shortcut_cpu adds the first
	                                 // min(c) channels, subsampling the larger
	                                 // map by the integer ratio of the sizes)
	int in_c, in_h, in_w, out_c, out_h, out_w;
} DarknetLayer;
typedef struct {
	int width, height, channels;     // from [net]
	int n;
	DarknetLayer *layers;
} DarknetNet;
// Caps of what a cfg may describe, checked while parsing (before anything
// is built): width and height at most DN_MAX_INPUT pixels, and no layer's
// output (the input's too) more than DN_MAX_ACTIVATION values for one image
// (1 GiB as f32).  The engine's model caps are the same (model.h).
#define DN_MAX_INPUT 4096
#define DN_MAX_ACTIVATION ((int64_t)1 << 28)
// Parses the cfg and infers every layer's shapes.  Unsupported sections or
// keys that change the computation are errors, and so are a NUL byte and
// text that is not UTF-8 (a model file keeps the cfg as a metadata value).
int darknet_parse_cfg(const char *path, DarknetNet *net, char *err, size_t errlen);
int darknet_parse_cfg_mem(const char *text, size_t len, const char *name,
                          DarknetNet *net, char *err, size_t errlen);
void darknet_free(DarknetNet *net);
// Reads .weights for net.  Tensor names, for layer index i (0-based, in cfg
// order): conv: "layers.<i>.conv.weight" (filters, in_c, size, size), and
// "layers.<i>.conv.bias" when not batch-normalised; batch-normalised:
// "layers.<i>.bn.weight" (darknet scales), "layers.<i>.bn.bias" (darknet
// biases), "layers.<i>.bn.running_mean", "layers.<i>.bn.running_var" (as
// stored: darknet divides by sqrt(var) + 1e-6, the caller adapts).
// The header's version decides its size as in darknet (a 64-bit "seen"
// from 0.2 on); a version outside 0 .. 999 or one whose header size leaves
// the file the wrong size for the cfg, when the other size fits it
// exactly, is refused as a bad version.  The sizes are checked against
// the file before any tensor is allocated.
// darknet_weights_bytes: the bytes the layers of net take after the header.
uint64_t darknet_weights_bytes(const DarknetNet *net);
int darknet_load_weights(const char *path, const DarknetNet *net, Record *out,
                         char *err, size_t errlen);
int darknet_load_weights_mem(const void *buf, size_t len, const char *name,
                             const DarknetNet *net, Record *out, char *err,
                             size_t errlen);

#endif
