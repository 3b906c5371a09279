// The importers (formats/import.h): every tensor of the PyTorch-made fixtures
// (tests/gen_import_fixtures.py) compared exactly, and malformed inputs --
// every truncation, byte flips, forbidden globals, unexpected opcodes, bad
// safetensors headers, mismatched darknet weights -- refused with a message
// "<file>: <what is wrong>", never a crash.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "libcommon/util/err.h"
#include "formats/import.h"
#include "formats/stream.h"
#include "check.h"
#include "libcommon/util/io.h"
#include "libcommon/util/le.h"

#define FIX "tests/fixtures/import/"

// The records of tests/fixtures/import/expected.stream.
static Record expect[2];

static void load_expected(void)
{
	Stream *s = xstream_open_read(FIX "expected.stream");
	for (int i = 0; i < 2; i++) {
		record_init(&expect[i]);
		CHECK(xstream_read_record(s, &expect[i]) == 1);
	}
	stream_close(s);
}

// Same names in the same order, same dtype, shape and bytes.
static int same(const Record *a, const Record *b)
{
	if (a->n != b->n) {
		fprintf(stderr, "  %d tensors, expected %d\n", a->n, b->n);
		return 0;
	}
	for (int i = 0; i < a->n; i++) {
		const Tensor *x = &a->t[i], *y = &b->t[i];
		if (strcmp(x->name, y->name) || x->dtype != y->dtype ||
		    x->ndim != y->ndim || x->nbytes != y->nbytes ||
		    memcmp(x->dims, y->dims, sizeof(int64_t) * (size_t)x->ndim) ||
		    memcmp(x->data, y->data, x->nbytes)) {
			fprintf(stderr, "  tensor %d: '%s' differs from '%s'\n", i, x->name,
			        y->name);
			return 0;
		}
	}
	return 1;
}

static int starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void test_good_files(void)
{
	char err[512] = "";
	Record r;
	record_init(&r);
	CHECK(import_pth(FIX "sd_zip.pth", &r, err, sizeof err) == 0);
	CHECK(same(&r, &expect[0]));
	Tensor *t = record_find(&r, "1.num_batches_tracked");
	CHECK(t && t->dtype == DT_I64 && t->ndim == 0 && *(int64_t *)t->data == 2);
	record_free(&r);
	record_init(&r);
	CHECK(import_pth(FIX "sd_legacy.pth", &r, err, sizeof err) == 0);
	CHECK(same(&r, &expect[0]));
	record_free(&r);
	record_init(&r);
	CHECK(import_safetensors(FIX "sd.safetensors", &r, err, sizeof err) == 0);
	CHECK(same(&r, &expect[1]));
	t = record_find(&r, "bn.num_batches_tracked");
	CHECK(t && t->dtype == DT_I64 && *(int64_t *)t->data == 12345678901LL);
	record_free(&r);
	CHECK(import_pth("/nonexistent.pth", &r, err, sizeof err) == -1 &&
	      starts(err, "/nonexistent.pth: "));
}

// Every prefix of a valid file is refused cleanly; returns how many were.
typedef int (*ImportFn)(const void *, size_t, const char *, Record *, char *,
                        size_t);
static void every_truncation(const char *path, ImportFn fn)
{
	size_t len;
	unsigned char *b = read_file(path, CHECK_FILE_CAP, &len);
	int bad = 0;
	Record r;
	record_init(&r);
	for (size_t n = 0; n < len; n++) {
		char err[512] = "";
		unsigned char *c = malloc(n + 1);   // exact size: ASan sees overreads
		memcpy(c, b, n);
		if (fn(c, n, "x.bin", &r, err, sizeof err) != -1 || !starts(err, "x.bin: ")
		    || r.n != 0) {
			if (!bad++)
				fprintf(stderr, "  %s cut at %zu: accepted or bad message '%s'\n",
				        path, n, err);
		}
		free(c);
	}
	CHECK(bad == 0);
	record_free(&r);
	free(b);
}

// Flips every byte: either refused with a message or accepted (a flipped
// float in the legacy layout has no checksum); never a crash.
static void every_flip(const char *path, ImportFn fn, int must_fail_in_zip)
{
	size_t len;
	unsigned char *b = read_file(path, CHECK_FILE_CAP, &len);
	int bad = 0, refused = 0;
	Record r;
	record_init(&r);
	for (size_t i = 0; i < len; i++) {
		char err[512] = "";
		b[i] ^= 0x5a;
		int rc = fn(b, len, "x.bin", &r, err, sizeof err);
		if (rc == -1) {
			refused++;
			if (!starts(err, "x.bin: ") || r.n != 0)
				bad++;
		}
		record_clear(&r);
		b[i] ^= 0x5a;
	}
	CHECK(bad == 0);
	if (must_fail_in_zip)
		CHECK(refused > (int)len / 2);
	record_free(&r);
	free(b);
}

// Imports a file that must be refused with a message containing `what`.
static void refused(const char *path, const char *what)
{
	char err[512] = "";
	Record r;
	record_init(&r);
	int rc = import_pth(path, &r, err, sizeof err);
	CHECK(rc == -1);
	CHECK(starts(err, path) && strstr(err, what));
	if (rc != -1 || !strstr(err, what))
		fprintf(stderr, "  %s: got '%s', wanted '%s'\n", path, err, what);
	record_free(&r);
}

// A legacy-layout file around a hand-written pickle.
static int legacy(const char *pickle, size_t plen, char *err, size_t errlen)
{
	static const unsigned char head[] =
		"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19."  // magic
		"\x80\x02M\xe9\x03."                                      // 1001
		"\x80\x02}q\x00.";                                          // sys_info
	static const unsigned char keys[] = "\x80\x02]q\x00.";
	unsigned char buf[1024];
	size_t hl = sizeof head - 1, kl = sizeof keys - 1;
	memcpy(buf, head, hl);
	memcpy(buf + hl, pickle, plen);
	memcpy(buf + hl + plen, keys, kl);
	Record r;
	record_init(&r);
	int rc = import_pth_mem(buf, hl + plen + kl, "p.pth", &r, err, errlen);
	record_free(&r);
	return rc;
}
#define LEGACY(lit, err) legacy(lit, sizeof(lit) - 1, err, sizeof err)

static void test_pickles(void)
{
	char err[512];
	// An empty OrderedDict is a valid (empty) state_dict.
	CHECK(LEGACY("\x80\x02" "ccollections\nOrderedDict\nq\x00)Rq\x01.", err) == 0);
	CHECK(LEGACY("\x80\x02}q\x00.", err) == 0);
	// Python 2's OrderedDict([[k, v]]) form, with a tensor, and a
	// SHORT_BINSTRING key; the data is missing, so it fails there.
	CHECK(LEGACY("\x80\x02" "ccollections\nOrderedDict\n]U\x01" "a"
	             "ctorch._utils\n_rebuild_tensor\n((U\x07" "storage"
	             "ctorch\nFloatStorage\nU\x01" "0" "U\x03" "cpu" "K\x04NtQK\x00K\x04\x85K\x01\x85tR"
	             "\x86" "a" "\x85R.", err) == -1 && strstr(err, "'a': storage not in the key list"));
	CHECK(LEGACY("\x80\x02" "ccollections\nOrderedDict\n]K\x01" "a\x85R.", err) == -1 &&
	      strstr(err, "not a pair"));
	// Unexpected opcodes: INT (text), POP, a protocol-0 STRING.
	CHECK(LEGACY("\x80\x02}I42\n.", err) == -1 && strstr(err, "unsupported opcode 0x49"));
	CHECK(LEGACY("\x80\x02}0.", err) == -1 && strstr(err, "opcode 0x30"));
	CHECK(strstr(err, "p.pth: state_dict: pickle byte ") == err);
	// Forbidden globals, by name, whether called or not.
	CHECK(LEGACY("\x80\x02" "cos\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85R.", err) == -1
	      && strstr(err, "forbidden global 'os.system'"));
	CHECK(LEGACY("\x80\x02" "cbuiltins\neval\n.", err) == -1 &&
	      strstr(err, "forbidden global 'builtins.eval'"));
	CHECK(LEGACY("\x80\x02" "ctorch\nload\n.", err) == -1 &&
	      strstr(err, "forbidden global 'torch.load'"));
	CHECK(LEGACY("\x80\x04\x8c\x02os\x8c\x06system\x93.", err) == -1 &&
	      strstr(err, "forbidden global 'os.system'"));
	// Calling a storage type, or REDUCE on a non-global.
	CHECK(LEGACY("\x80\x02" "ctorch\nFloatStorage\n)R.", err) == -1 &&
	      strstr(err, "not callable"));
	CHECK(LEGACY("\x80\x02})R.", err) == -1 && strstr(err, "REDUCE"));
	// Stack underflow, MARK misuse, unset memo, truncated string.
	CHECK(LEGACY("\x80\x02s.", err) == -1 && strstr(err, "underflow"));
	CHECK(LEGACY("\x80\x02(.", err) == -1 && strstr(err, "underflow"));
	CHECK(LEGACY("\x80\x02}(K\x01u.", err) == -1 && strstr(err, "odd"));
	CHECK(LEGACY("\x80\x02h\x05.", err) == -1 && strstr(err, "memo index 5 not set"));
	CHECK(LEGACY("\x80\x02X\xff\x00\x00\x00" "ab.", err) == -1 && strstr(err, "truncated"));
	CHECK(LEGACY("\x80\x02r\xff\xff\xff\x7f.", err) == -1 && strstr(err, "underflow"));
	CHECK(LEGACY("\x80\x02}r\xff\xff\xff\x7f.", err) == -1 && strstr(err, "too large"));
	// Nesting deeper than the MARK cap.
	char deep[200] = "\x80\x02";
	memset(deep + 2, '(', 100);
	CHECK(legacy(deep, 102, err, sizeof err) == -1 && strstr(err, "nested too deep"));
	// A state_dict whose value is not a tensor, or whose key is not a name.
	CHECK(LEGACY("\x80\x02}X\x01\x00\x00\x00" "aK\x01s.", err) == -1 &&
	      strstr(err, "'a': not a tensor"));
	CHECK(LEGACY("\x80\x02}K\x01K\x01s.", err) == -1 && strstr(err, "not a valid tensor name"));
	CHECK(LEGACY("\x80\x02]q\x00.", err) == -1 && strstr(err, "not a state_dict"));
	// A tensor on a storage the file does not contain.
	CHECK(LEGACY("\x80\x02}X\x01\x00\x00\x00" "a" "ctorch._utils\n_rebuild_tensor_v2\n"
	             "((X\x07\x00\x00\x00" "storage" "ctorch\nFloatStorage\nX\x01\x00\x00\x00"
	             "0" "X\x03\x00\x00\x00" "cpu" "K\x04NtQK\x00K\x04\x85K\x01\x85\x89}tRs.",
	             err) == -1 && strstr(err, "'a': storage not in the key list"));
}

static void test_bad_pth(void)
{
	refused(FIX "bad_deflated.pth", "compressed (method 8)");
	refused(FIX "bad_storage_size.pth", "holds 428 bytes, not 108 f32 elements");
	refused(FIX "bad_global_zip.pth", "forbidden global 'posix.system'");
	refused(FIX "bad_global_legacy.pth", "forbidden global 'posix.system'");
	refused("tests/unit/test_import.c", "not a PyTorch checkpoint");
	every_truncation(FIX "sd_zip.pth", import_pth_mem);
	every_truncation(FIX "sd_legacy.pth", import_pth_mem);
	every_flip(FIX "sd_zip.pth", import_pth_mem, 1);
	every_flip(FIX "sd_legacy.pth", import_pth_mem, 0);
}

// A safetensors file from a header and n data bytes.
static int st(const char *json, size_t n, char *err, size_t errlen)
{
	size_t hl = strlen(json);
	unsigned char *b = calloc(1, 8 + hl + n);
	le_put64(b, hl);
	memcpy(b + 8, json, hl);
	Record r;
	record_init(&r);
	int rc = import_safetensors_mem(b, 8 + hl + n, "s.st", &r, err, errlen);
	if (rc == 0 && r.n == 1 && r.t[0].dtype == DT_F32)
		CHECK(((float *)r.t[0].data)[0] == 0.0f);
	record_free(&r);
	free(b);
	return rc;
}

static void test_safetensors(void)
{
	char err[512];
	const char *ok = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
	CHECK(st(ok, 8, err, sizeof err) == 0);
	CHECK(st("{}", 0, err, sizeof err) == 0);
	CHECK(st(" { \"__metadata__\" : {\"k\":\"v\\u00e9\"} } ", 0, err, sizeof err) == 0);
	struct { const char *json; size_t n; const char *what; } bad[] = {
		{ ok, 4, "do not hold 8 bytes within the 4 data bytes" },
		{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 8, "do not hold 8" },
		{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "data_offsets [8, 0]" },
		{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
		  "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[2,6]}}", 8, "'b' overlaps 'a'" },
		{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
		  "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "duplicate" },
		{ "{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, "unsupported dtype 'F8_E4M3'" },
		{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}", 0, "empty" },
		{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, "expected an integer" },
		{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "non-negative integer" },
		{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "lacks data_offsets" },
		{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4, "unknown key" },
		{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},}", 4, "expected a string" },
		{ "{\"a b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "printable" },
		{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}} x", 4, "trailing" },
		{ "{\"__metadata__\":{\"k\":1}}", 0, "expected a string" },
		{ "{\"\\ud800\":1}", 0, "surrogate" },
		{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, "longer than 8" },
		{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,4]}}", 4, "too large" },
		{ "[1]", 0, "expected '{'" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		err[0] = 0;
		int rc = st(bad[i].json, bad[i].n, err, sizeof err);
		CHECK(rc == -1 && starts(err, "s.st: ") && strstr(err, bad[i].what));
		if (rc != -1 || !strstr(err, bad[i].what))
			fprintf(stderr, "  case %zu: got '%s', wanted '%s'\n", i, err, bad[i].what);
	}
	// A header length beyond the file.
	unsigned char h[16] = { 0xff, 0xff, 0, 0, 0, 0, 0, 0, '{', '}' };
	Record r;
	record_init(&r);
	CHECK(import_safetensors_mem(h, sizeof h, "s.st", &r, err, sizeof err) == -1 &&
	      strstr(err, "header length 65535 exceeds"));
	record_free(&r);
	every_truncation(FIX "sd.safetensors", import_safetensors_mem);
	every_flip(FIX "sd.safetensors", import_safetensors_mem, 0);
}

// ---- darknet ----

static const char small_cfg[] =
	"[net]\n# comment\nbatch=64\nwidth=8\nheight = 6\nchannels=3\nlearning_rate=0.1\n\n"
	"[convolutional]\nbatch_normalize=1\nfilters=4\nsize=3\nstride=1\npad=1\n"
	"activation=leaky\n"
	"[maxpool]\nsize=2\nstride=2\n"
	"[convolutional]\nfilters=4\nsize=1\nstride=1\npad=1\nactivation=linear\n"
	"[shortcut]\nfrom=-2\nactivation=linear\n"
	"[maxpool]\nsize=3\nstride=1\n"
	"[dropout]\nprobability=.5\n"
	"[avgpool]\n[softmax]\ngroups=1\n[cost]\ntype=sse\n";

static int parse(const char *cfg, DarknetNet *net, char *err, size_t errlen)
{
	return darknet_parse_cfg_mem(cfg, strlen(cfg), "n.cfg", net, err, errlen);
}

static void test_darknet_cfg(void)
{
	char err[512] = "";
	DarknetNet net;
	CHECK(parse(small_cfg, &net, err, sizeof err) == 0);
	CHECK(net.n == 9 && net.width == 8 && net.height == 6 && net.channels == 3);
	if (net.n == 9) {
		DarknetLayer *l = net.layers;
		CHECK(l[0].type == DN_CONV && l[0].pad == 1 && l[0].activation == DN_LEAKY &&
		      l[0].batch_normalize && l[0].out_c == 4 && l[0].out_h == 6 && l[0].out_w == 8);
		// darknet maxpool: padding = size-1 = 1, out = (6 + 1 - 2)/2 + 1 = 3.
		CHECK(l[1].type == DN_MAXPOOL && l[1].pad == 1 && l[1].out_h == 3 && l[1].out_w == 4);
		CHECK(l[2].type == DN_CONV && l[2].pad == 0 && l[2].in_c == 4 && !l[2].batch_normalize);
		CHECK(l[3].type == DN_SHORTCUT && l[3].from == 1 && l[3].out_c == 4);
		// size 3 stride 1, padding 2: same size.
		CHECK(l[4].type == DN_MAXPOOL && l[4].out_h == 3 && l[4].out_w == 4);
		CHECK(l[5].type == DN_DROPOUT && l[6].type == DN_AVGPOOL &&
		      l[6].out_c == 4 && l[6].out_h == 1 && l[6].out_w == 1);
		CHECK(l[7].type == DN_SOFTMAX && l[8].type == DN_COST);
	}
	darknet_free(&net);
	// A resnet-style downsampling shortcut: 2x the size, other channels.
	CHECK(parse("[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=2\n"
	            "[convolutional]\nfilters=4\nsize=3\nstride=2\npad=1\n"
	            "[shortcut]\nfrom=-2\nactivation=leaky\n", &net, err, sizeof err) == 0 &&
	      net.layers[2].from == 0 && net.layers[2].out_c == 4 &&
	      net.layers[2].out_h == 4 && net.layers[2].activation == DN_LEAKY);
	darknet_free(&net);
	struct { const char *cfg, *what; } bad[] = {
		{ "[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=2\ngroups=2\n",
		  "section 2 [convolutional] (layer 0, line 5): groups=2 is not supported" },
		{ "[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=2\nactivation=mish\n",
		  "activation=mish" },
		{ "[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=2\nfoo=1\n",
		  "unsupported key 'foo'" },
		{ "[net]\nwidth=8\nheight=8\nchannels=3\n[maxpool]\nsize=2\n[yolo]\n",
		  "section 3 [yolo] (layer 1, line 7): unsupported section type" },
		{ "[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=2\n"
		  "[convolutional]\nfilters=3\nsize=3\n[shortcut]\nfrom=-2\n", "not in an integer ratio" },
		{ "[net]\nwidth=8\nheight=8\nchannels=3\n[shortcut]\nfrom=-1\n", "earlier layer" },
		{ "[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=x\n", "filters=x" },
		{ "[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nsize=9\n", "larger than" },
		{ "[net]\nwidth=8\nchannels=3\n", "width, height and channels" },
		{ "[convolutional]\nfilters=2\n", "first section must be [net]" },
		{ "width=3\n", "outside any section" },
		{ "[net]\nwidth\n", "line 2: expected key=value" },
		{ "[net\n", "bad section header" },
		{ "", "no sections" },
		{ "[net]\nwidth=8\nwidth=9\n", "repeated" },
		// what a model file could not keep, or a network past the caps
		{ "[net]\nwidth=8\nheight=8\nchannels=3\n# caf\xe9 (Latin-1)\n",
		  "n.cfg: line 5: not UTF-8 text" },
		{ "[net]\nwidth=4097\nheight=8\nchannels=3\n", "width=4097: expected an "
		  "integer in [1, 4096]" },
		{ "[net]\nwidth=4096\nheight=4096\nchannels=3\n[convolutional]\n"
		  "filters=17\n[maxpool]\n", "(layer 0, line 5): output 17x4096x4096: "
		  "more than 268435456 values per image" },
		{ "[net]\nwidth=4096\nheight=4096\nchannels=17\n", "input 17x4096x4096" },
	};
	// A NUL byte: a model file's copy of the cfg would end there.
	static const char nul[] = "[net]\nwidth=8\nheight=8\nchannels=3\n[maxpool]\n"
	                          "size=2\0#\n[avgpool]\n";
	CHECK(darknet_parse_cfg_mem(nul, sizeof nul - 1, "n.cfg", &net, err, sizeof err) == -1 &&
	      strstr(err, "n.cfg: line 6: a NUL byte (a cfg is text)") && !net.layers);
	CHECK(parse("[net]\nwidth=8\nheight=8\nchannels=3\n# caf\xc3\xa9\n", &net, err,
	            sizeof err) == 0);   // UTF-8 is text
	darknet_free(&net);
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		err[0] = 0;
		int rc = parse(bad[i].cfg, &net, err, sizeof err);
		CHECK(rc == -1 && starts(err, "n.cfg: ") && strstr(err, bad[i].what) &&
		      net.layers == NULL);
		if (rc != -1 || !strstr(err, bad[i].what))
			fprintf(stderr, "  cfg case %zu: got '%s', wanted '%s'\n", i, err, bad[i].what);
	}
}

static void put_f(unsigned char *p, float f)
{
	memcpy(p, &f, 4);   // little-endian host (x86-64)
}

static void test_darknet_weights(void)
{
	char err[512] = "";
	DarknetNet net;
	CHECK(parse(small_cfg, &net, err, sizeof err) == 0);
	// Version 0.2.0: 64-bit "seen"; conv0: 4 biases, 4 scales, 4 means,
	// 4 variances, 4*3*3*3 weights; conv2: 4 biases, 4*4 weights.
	size_t n = 20 + 4 * (16 + 108) + 4 * (4 + 16);
	unsigned char *w = calloc(1, n + 1);
	w[4] = 2;
	for (size_t i = 20, k = 0; i < n; i += 4, k++)
		put_f(w + i, (float)k);
	Record r;
	record_init(&r);
	CHECK(darknet_load_weights_mem(w, n, "w.weights", &net, &r, err, sizeof err) == 0);
	Tensor *t;
	CHECK((t = record_find(&r, "layers.0.bn.bias")) && ((float *)t->data)[0] == 0);
	CHECK((t = record_find(&r, "layers.0.bn.weight")) && ((float *)t->data)[0] == 4);
	CHECK((t = record_find(&r, "layers.0.bn.running_mean")) && ((float *)t->data)[3] == 11);
	CHECK((t = record_find(&r, "layers.0.bn.running_var")) && ((float *)t->data)[0] == 12);
	CHECK((t = record_find(&r, "layers.0.conv.weight")) && t->ndim == 4 &&
	      t->dims[0] == 4 && t->dims[1] == 3 && t->dims[2] == 3 &&
	      ((float *)t->data)[107] == 123);
	CHECK((t = record_find(&r, "layers.2.conv.bias")) && ((float *)t->data)[0] == 124);
	CHECK((t = record_find(&r, "layers.2.conv.weight")) && t->dims[1] == 4 &&
	      ((float *)t->data)[15] == 143);
	CHECK(r.n == 7 && !record_find(&r, "layers.2.bn.weight"));
	// Appending a second copy is refused: the names are taken.
	CHECK(darknet_load_weights_mem(w, n, "w.weights", &net, &r, err, sizeof err) == -1 &&
	      strstr(err, "w.weights: 'layers.0.conv.weight': already in the record"));
	CHECK(r.n == 0);
	// Version 0.1: a 32-bit "seen" would shift everything by 4 bytes; the
	// layers fit a 20-byte header exactly, so the version is to blame.
	w[4] = 1;
	CHECK(darknet_load_weights_mem(w, n, "w.weights", &net, &r, err, sizeof err) == -1 &&
	      strstr(err, "w.weights: header: version 0.1.0 means a 16-byte header "
	                  "(a 32-bit \"seen\"), but the layers of the cfg fit the file "
	                  "exactly after a 20-byte one: a bad version number"));
	CHECK(darknet_load_weights_mem(w, n + 4, "w.weights", &net, &r, err, sizeof err) == -1 &&
	      strstr(err, "w.weights: 8 bytes left over after the last layer"));
	// Versions darknet never writes (its rule: major and minor below 1000).
	w[4] = 2;
	w[1] = 0x80;   // major 32768
	CHECK(darknet_load_weights_mem(w, n, "w.weights", &net, &r, err, sizeof err) == -1 &&
	      strstr(err, "w.weights: header: version 32768.2.0 is not a darknet weights version"));
	w[1] = 0;
	w[3] = 0xff;   // major negative
	CHECK(darknet_load_weights_mem(w, n, "w.weights", &net, &r, err, sizeof err) == -1 &&
	      strstr(err, "is not a darknet weights version"));
	w[3] = 0;
	CHECK(darknet_load_weights_mem(w, n - 8, "w.weights", &net, &r, err, sizeof err) == -1 &&
	      strstr(err, "w.weights: layer 2 (convolutional): needs 80 bytes at offset 516, only 72 left"));
	CHECK(r.n == 0);
	CHECK(darknet_load_weights_mem(w, n + 1, "w.weights", &net, &r, err, sizeof err) == -1 &&
	      strstr(err, "1 bytes left over"));
	for (size_t k = 0; k < n; k++) {
		unsigned char *c = malloc(k + 1);
		memcpy(c, w, k);
		int rc = darknet_load_weights_mem(c, k, "w.weights", &net, &r, err, sizeof err);
		free(c);
		if (rc != -1 || !starts(err, "w.weights: ")) {
			CHECK(0);
			break;
		}
	}
	record_free(&r);
	free(w);
	darknet_free(&net);
}

// The real Tiny Darknet (../shared, skipped when absent).
static void test_tiny_darknet(void)
{
	const char *sh = getenv("CNNPIPE_SHARED");
	char cfg[512], wts[512], err[512] = "";
	snprintf(cfg, sizeof cfg, "%s/models/tinydarknet/tiny.cfg", sh ? sh : "../shared");
	snprintf(wts, sizeof wts, "%s/models/tinydarknet/tiny.weights", sh ? sh : "../shared");
	FILE *f = fopen(wts, "rb");
	if (!f) {
		printf("test_import: skipping Tiny Darknet (%s absent)\n", wts);
		return;
	}
	fclose(f);
	DarknetNet net;
	CHECK(darknet_parse_cfg(cfg, &net, err, sizeof err) == 0);
	CHECK(net.n == 23 && net.width == 224 && net.channels == 3);
	int convs = 0;
	for (int i = 0; i < net.n; i++)
		convs += net.layers[i].type == DN_CONV;
	CHECK(convs == 16);
	CHECK(net.n == 23 && net.layers[19].out_c == 1000 && net.layers[19].out_h == 14 &&
	      !net.layers[19].batch_normalize && net.layers[19].activation == DN_LINEAR);
	Record r;
	record_init(&r);
	CHECK(darknet_load_weights(wts, &net, &r, err, sizeof err) == 0);
	int64_t params = 0;
	for (int i = 0; i < r.n; i++)
		params += tensor_numel(&r.t[i]);
	// 16-byte header (version 0.1: 32-bit seen) + 1,046,488 floats = 4,185,968 bytes.
	CHECK(r.n == 15 * 5 + 2 && params == 1046488);
	CHECK(4 * params + 16 == 4185968);
	size_t len;
	unsigned char *b = read_file(wts, CHECK_FILE_CAP, &len);
	CHECK(len == 4185968);
	record_clear(&r);
	CHECK(darknet_load_weights_mem(b, len - 1, "t", &net, &r, err, sizeof err) == -1 &&
	      strstr(err, "layer 19 (convolutional)"));
	record_free(&r);
	free(b);
	darknet_free(&net);
}

int main(int argc, char **argv)
{
	prog_init(argc, argv, "test_import");
	load_expected();
	test_good_files();
	test_pickles();
	test_bad_pth();
	test_safetensors();
	test_darknet_cfg();
	test_darknet_weights();
	test_tiny_darknet();
	record_free(&expect[0]);
	record_free(&expect[1]);
	return check_done("test_import");
}
