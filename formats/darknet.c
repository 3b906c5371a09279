// Darknet networks: the .cfg description (INI-like sections) and .weights.
// Semantics follow darknet's src/parser.c: a line is stripped of all
// whitespace, '#' or ';' starts a comment line, "[type]" starts a section,
// anything else is key=value.  Every key is either understood, checked to
// hold its no-op default, or a training-only setting; anything else is an
// error naming the section, because silently ignoring it could change the
// computation.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "libcommon/util/alloc.h"
#include "libcommon/util/io.h"
#include "libcommon/util/le.h"
#include "import.h"
#include "import_internal.h"

#define DN_MAX_CFG (4u << 20)
#define DN_MAX_DIM 65536

typedef struct {
	char *key, *val;
	int used;
} Opt;
typedef struct {
	char *type;
	int line;
	Opt *opt;
	int n, cap;
} Section;

typedef struct {
	const char *file;
	Section *sec;
	int nsec;
	int cur;          // section being parsed, for messages
	char *err;
	size_t errlen;
} P;

__attribute__((format(printf, 2, 3)))
static int perr(P *p, const char *fmt, ...)
{
	char why[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	const Section *s = &p->sec[p->cur];
	if (p->cur > 0)
		return err_set(p->err, p->errlen, "%s: section %d [%.40s] (layer %d, "
		              "line %d): %s", p->file, p->cur + 1, s->type, p->cur - 1,
		              s->line, why);
	return err_set(p->err, p->errlen, "%s: section %d [%.40s] (line %d): %s",
	              p->file, p->cur + 1, s->type, s->line, why);
}

static Opt *find(Section *s, const char *key)
{
	for (int i = 0; i < s->n; i++)
		if (!strcmp(s->opt[i].key, key)) {
			s->opt[i].used = 1;
			return &s->opt[i];
		}
	return NULL;
}

// A whole decimal integer (darknet uses atoi; we refuse junk instead).
static int get_int(P *p, const char *key, int def, int lo, int hi, int *v)
{
	Opt *o = find(&p->sec[p->cur], key);
	if (!o) {
		*v = def;
		return 0;
	}
	char *end;
	long x = strtol(o->val, &end, 10);
	if (!*o->val || *end || x < lo || x > hi)
		return perr(p, "%s=%.40s: expected an integer in [%d, %d]", key,
		            o->val, lo, hi);
	*v = (int)x;
	return 0;
}

// Keys that must hold darknet's default when present (non-default values
// change the computation in ways this engine does not implement).
static int must_be(P *p, const char *key, double def)
{
	Opt *o = find(&p->sec[p->cur], key);
	if (!o)
		return 0;
	char *end;
	double x = strtod(o->val, &end);
	if (!*o->val || *end || x != def)
		return perr(p, "%s=%.40s is not supported (only %g)", key, o->val, def);
	return 0;
}

static int activation(P *p, int def, int *act)
{
	Opt *o = find(&p->sec[p->cur], "activation");
	if (!o) {
		*act = def;
		return 0;
	}
	static const struct { const char *n; int a; } acts[] = {
		{ "linear", DN_LINEAR }, { "leaky", DN_LEAKY }, { "relu", DN_RELU },
		{ "logistic", DN_LOGISTIC },
	};
	for (size_t i = 0; i < sizeof acts / sizeof *acts; i++)
		if (!strcmp(o->val, acts[i].n)) {
			*act = acts[i].a;
			return 0;
		}
	return perr(p, "activation=%.40s is not supported (linear, leaky, relu, "
	            "logistic)", o->val);
}

// Keys never affecting inference (training settings); the rest of a
// section's keys must have been used.
static int leftovers(P *p, const char *const *ignore)
{
	Section *s = &p->sec[p->cur];
	for (int i = 0; i < s->n; i++) {
		if (s->opt[i].used)
			continue;
		int ok = 0;
		for (const char *const *k = ignore; k && *k; k++)
			if (!strcmp(*k, s->opt[i].key))
				ok = 1;
		if (!ok)
			return perr(p, "unsupported key '%.40s'", s->opt[i].key);
	}
	return 0;
}

static void free_sections(Section *sec, int n)
{
	for (int i = 0; i < n; i++)
		free(sec[i].opt);
	free(sec);
}

// RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF.
static int utf8_ok(const unsigned char *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned c = p[i];
		size_t k;
		unsigned min, v;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			k = 1, min = 0x80, v = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			k = 2, min = 0x800, v = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			k = 3, min = 0x10000, v = c & 0x07;
		} else {
			return 0;
		}
		if (n - i <= k)
			return 0;
		for (size_t j = 1; j <= k; j++) {
			if ((p[i + j] & 0xc0) != 0x80)
				return 0;
			v = v << 6 | (p[i + j] & 0x3f);
		}
		if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
			return 0;
		i += k + 1;
	}
	return 1;
}

// Splits the (copied, modifiable) text into sections.
static int split(P *p, char *text, size_t len)
{
	int line = 0, cap = 0;
	char *s = text, *end = text + len;
	while (s < end) {
		char *nl = memchr(s, '\n', (size_t)(end - s));
		char *e = nl ? nl : end;
		line++;
		// A model file keeps the cfg as its text (a UTF-8 metadata value,
		// cut at a NUL), so bytes that cannot be kept are refused here.
		if (memchr(s, '\0', (size_t)(e - s)))
			return err_set(p->err, p->errlen, "%s: line %d: a NUL byte (a cfg "
			              "is text)", p->file, line);
		if (!utf8_ok((const unsigned char *)s, (size_t)(e - s)))
			return err_set(p->err, p->errlen, "%s: line %d: not UTF-8 text",
			              p->file, line);
		// darknet's strip(): remove every space, tab and CR.
		char *w = s;
		for (char *r = s; r < e; r++)
			if (*r != ' ' && *r != '\t' && *r != '\r')
				*w++ = *r;
		*w = 0;
		char *ln = s;
		s = e + 1;
		if (!*ln || *ln == '#' || *ln == ';')
			continue;
		if (*ln == '[') {
			char *close = strchr(ln, ']');
			if (!close || close[1])
				return err_set(p->err, p->errlen, "%s: line %d: bad section "
				              "header", p->file, line);
			*close = 0;
			if (p->nsec == cap) {
				cap = cap ? 2 * cap : 32;
				p->sec = xrealloc(p->sec, (size_t)cap * sizeof *p->sec);
			}
			Section *sc = &p->sec[p->nsec++];
			memset(sc, 0, sizeof *sc);
			sc->type = ln + 1;
			sc->line = line;
			continue;
		}
		char *eq = strchr(ln, '=');
		if (!eq || eq == ln)
			return err_set(p->err, p->errlen, "%s: line %d: expected key=value "
			              "or [section]", p->file, line);
		if (!p->nsec)
			return err_set(p->err, p->errlen, "%s: line %d: option outside any "
			              "section", p->file, line);
		*eq = 0;
		Section *sc = &p->sec[p->nsec - 1];
		for (int i = 0; i < sc->n; i++)
			if (!strcmp(sc->opt[i].key, ln))
				return err_set(p->err, p->errlen, "%s: line %d: key '%.40s' "
				              "repeated in the section", p->file, line, ln);
		if (sc->n == sc->cap) {
			sc->cap = sc->cap ? 2 * sc->cap : 8;
			sc->opt = xrealloc(sc->opt, (size_t)sc->cap * sizeof *sc->opt);
		}
		sc->opt[sc->n++] = (Opt){ ln, eq + 1, 0 };
	}
	if (!p->nsec)
		return err_set(p->err, p->errlen, "%s: no sections", p->file);
	return 0;
}

static const char *const ign_conv[] = { "stopbackward", "learning_rate",
	"dot", "train", NULL };
static const char *const ign_pool[] = { "stopbackward", NULL };
static const char *const ign_cost[] = { "type", "scale", "ratio",
	"noobject_scale", "thresh", NULL };
static const char *const ign_dropout[] = { "probability", NULL };

static int parse_layer(P *p, DarknetNet *net, int i, int *c, int *h, int *w)
{
	Section *s = &p->sec[p->cur];
	DarknetLayer *l = &net->layers[i];
	memset(l, 0, sizeof *l);
	l->in_c = *c, l->in_h = *h, l->in_w = *w;
	l->out_c = *c, l->out_h = *h, l->out_w = *w;
	l->from = -1;
	if (!strcmp(s->type, "convolutional") || !strcmp(s->type, "conv")) {
		int pad, padding;
		l->type = DN_CONV;
		if (get_int(p, "filters", 1, 1, DN_MAX_DIM, &l->filters) ||
		    get_int(p, "size", 1, 1, 1024, &l->size) ||
		    get_int(p, "stride", 1, 1, 1024, &l->stride) ||
		    get_int(p, "pad", 0, 0, 1, &pad) ||
		    get_int(p, "padding", 0, 0, 1024, &padding) ||
		    get_int(p, "batch_normalize", 0, 0, 1, &l->batch_normalize) ||
		    activation(p, DN_LOGISTIC, &l->activation) ||
		    must_be(p, "groups", 1) || must_be(p, "dilation", 1) ||
		    must_be(p, "binary", 0) || must_be(p, "xnor", 0) ||
		    must_be(p, "flipped", 0) || must_be(p, "dontload", 0) ||
		    must_be(p, "dontloadscales", 0) || must_be(p, "antialiasing", 0) ||
		    must_be(p, "stride_x", l->stride) || must_be(p, "stride_y", l->stride) ||
		    leftovers(p, ign_conv))
			return -1;
		// darknet parse_convolutional: pad=1 overrides padding with size/2.
		l->pad = pad ? l->size / 2 : padding;
		long oh = ((long)*h + 2L * l->pad - l->size) / l->stride + 1;
		long ow = ((long)*w + 2L * l->pad - l->size) / l->stride + 1;
		if (*h + 2L * l->pad < l->size || *w + 2L * l->pad < l->size)
			return perr(p, "%dx%d kernel larger than the padded %dx%d input",
			            l->size, l->size, *h, *w);
		l->out_c = l->filters, l->out_h = (int)oh, l->out_w = (int)ow;
	} else if (!strcmp(s->type, "maxpool")) {
		l->type = DN_MAXPOOL;
		l->activation = DN_LINEAR;
		if (get_int(p, "stride", 1, 1, 1024, &l->stride) ||
		    get_int(p, "size", l->stride, 1, 1024, &l->size) ||
		    get_int(p, "padding", l->size - 1, 0, 1024, &l->pad) ||
		    must_be(p, "stride_x", l->stride) || must_be(p, "stride_y", l->stride) ||
		    must_be(p, "maxpool_depth", 0) || must_be(p, "antialiasing", 0) ||
		    leftovers(p, ign_pool))
			return -1;
		// darknet make_maxpool_layer: out = (w + padding - size)/stride + 1,
		// the window starting at -padding/2.
		if (*h + l->pad < l->size || *w + l->pad < l->size)
			return perr(p, "pool window %d larger than the %dx%d input",
			            l->size, *h, *w);
		l->out_h = (*h + l->pad - l->size) / l->stride + 1;
		l->out_w = (*w + l->pad - l->size) / l->stride + 1;
	} else if (!strcmp(s->type, "avgpool") || !strcmp(s->type, "avg")) {
		// darknet's avgpool is global.
		l->type = DN_AVGPOOL;
		if (leftovers(p, ign_pool))
			return -1;
		l->out_h = l->out_w = 1;
	} else if (!strcmp(s->type, "shortcut")) {
		int from;
		l->type = DN_SHORTCUT;
		if (!find(s, "from"))
			return perr(p, "missing from=");
		if (get_int(p, "from", 0, -DN_MAX_DIM, DN_MAX_DIM, &from) ||
		    activation(p, DN_LINEAR, &l->activation) ||
		    must_be(p, "alpha", 1) || must_be(p, "beta", 1) ||
		    leftovers(p, ign_pool))
			return -1;
		{
			Opt *wt = find(s, "weights_type");
			if (wt && strcmp(wt->val, "none"))
				return perr(p, "weights_type=%.40s is not supported", wt->val);
		}
		// darknet parse_shortcut: negative from is relative to this layer.
		l->from = from < 0 ? i + from : from;
		if (l->from < 0 || l->from >= i)
			return perr(p, "from=%d does not name an earlier layer", from);
		// Shapes may differ, as in darknet's resnet cfgs (a stride-2 block
		// adds its input): darknet's shortcut_cpu then subsamples the larger
		// map by the integer ratio of the widths (equal to that of the
		// heights, darknet asserts it) and adds the first min(c) channels.
		const DarknetLayer *f = &net->layers[l->from];
		int w1 = f->out_w, h1 = f->out_h, w2 = *w, h2 = *h;
		int ok = w1 >= w2 ? (w1 % w2 == 0 && h1 % h2 == 0 && h1 >= h2 &&
		                     w1 / w2 == h1 / h2)
		                  : (w2 % w1 == 0 && h2 % h1 == 0 && h2 >= h1 &&
		                     w2 / w1 == h2 / h1);
		if (!ok)
			return perr(p, "layer %d's output (%dx%dx%d) cannot be added to "
			            "the input (%dx%dx%d): the sizes are not in an "
			            "integer ratio", l->from, f->out_c, h1, w1, *c, h2, w2);
	} else if (!strcmp(s->type, "softmax") || !strcmp(s->type, "soft")) {
		l->type = DN_SOFTMAX;
		if (must_be(p, "groups", 1) || must_be(p, "temperature", 1) ||
		    must_be(p, "spatial", 0) || leftovers(p, (const char *const[]){
		    "noloss", NULL }))
			return -1;
	} else if (!strcmp(s->type, "cost")) {
		l->type = DN_COST;
		if (leftovers(p, ign_cost))
			return -1;
	} else if (!strcmp(s->type, "dropout")) {
		// Identity at inference.
		l->type = DN_DROPOUT;
		if (must_be(p, "dropblock", 0) || leftovers(p, ign_dropout))
			return -1;
	} else {
		return perr(p, "unsupported section type");
	}
	if ((int64_t)l->out_c * l->out_h * l->out_w > DN_MAX_ACTIVATION)
		return perr(p, "output %dx%dx%d: more than %lld values per image",
		            l->out_c, l->out_h, l->out_w, (long long)DN_MAX_ACTIVATION);
	*c = l->out_c, *h = l->out_h, *w = l->out_w;
	return 0;
}

int darknet_parse_cfg_mem(const char *text, size_t len, const char *name,
                          DarknetNet *net, char *err, size_t errlen)
{
	memset(net, 0, sizeof *net);
	if (len > DN_MAX_CFG)
		return err_set(err, errlen, "%s: cfg larger than %u bytes", name,
		              DN_MAX_CFG);
	char *t = xmalloc(len + 1);
	memcpy(t, text, len);
	t[len] = 0;
	P p = { .file = name, .err = err, .errlen = errlen };
	int rc = -1;
	if (split(&p, t, len))
		goto done;
	if (strcmp(p.sec[0].type, "net") && strcmp(p.sec[0].type, "network")) {
		err_set(err, errlen, "%s: the first section must be [net]", name);
		goto done;
	}
	int c, h, w;
	if (get_int(&p, "width", 0, 1, DN_MAX_INPUT, &w) ||
	    get_int(&p, "height", 0, 1, DN_MAX_INPUT, &h) ||
	    get_int(&p, "channels", 0, 1, DN_MAX_DIM, &c))
		goto done;
	if (!w || !h || !c) {
		perr(&p, "width, height and channels are required");
		goto done;
	}
	if ((int64_t)c * h * w > DN_MAX_ACTIVATION) {
		perr(&p, "input %dx%dx%d: more than %lld values per image", c, h, w,
		     (long long)DN_MAX_ACTIVATION);
		goto done;
	}
	// Every other [net] key is a training setting (batch, learning_rate,
	// augmentation...).
	net->width = w, net->height = h, net->channels = c;
	net->n = p.nsec - 1;
	net->layers = xcalloc((size_t)net->n + 1, sizeof *net->layers);
	for (int i = 0; i < net->n; i++) {
		p.cur = i + 1;
		if (parse_layer(&p, net, i, &c, &h, &w))
			goto done;
	}
	rc = 0;
done:
	free_sections(p.sec, p.nsec);
	free(t);
	if (rc)
		darknet_free(net);
	return rc;
}

int darknet_parse_cfg(const char *path, DarknetNet *net, char *err,
                      size_t errlen)
{
	MappedFile m;
	memset(net, 0, sizeof *net);
	if (map_file(path, &m, err, errlen))
		return -1;
	int rc = darknet_parse_cfg_mem((const char *)m.p, m.len, path, net, err,
	                               errlen);
	unmap_file(&m);
	return rc;
}

void darknet_free(DarknetNet *net)
{
	free(net->layers);
	memset(net, 0, sizeof *net);
}

// Bytes of one convolutional's tensors in a .weights file.
static uint64_t conv_bytes(const DarknetLayer *l)
{
	uint64_t f = (uint64_t)l->filters;
	uint64_t nw = f * (uint64_t)l->in_c * (uint64_t)l->size * (uint64_t)l->size;
	return 4 * ((l->batch_normalize ? 4 : 1) * f + nw);
}

uint64_t darknet_weights_bytes(const DarknetNet *net)
{
	uint64_t n = 0;
	for (int i = 0; i < net->n; i++)
		if (net->layers[i].type == DN_CONV)
			n += conv_bytes(&net->layers[i]);
	return n;
}

int darknet_load_weights_mem(const void *buf, size_t len, const char *name,
                             const DarknetNet *net, Record *out, char *err,
                             size_t errlen)
{
	const unsigned char *b = buf;
	int n0 = out->n;
	if (len < 16)
		return err_set(err, errlen, "%s: too short for a darknet weights header "
		              "(%zu bytes)", name, len);
	int32_t major = (int32_t)le_get32(b), minor = (int32_t)le_get32(b + 4),
	        rev = (int32_t)le_get32(b + 8);
	if (major < 0 || major >= 1000 || minor < 0 || minor >= 1000)
		return err_set(err, errlen, "%s: header: version %d.%d.%d is not a "
		              "darknet weights version (0.1, 0.2 ...: major and minor "
		              "in 0 .. 999)", name, major, minor, rev);
	// darknet parser.c load_weights_upto: "seen" is 64-bit from version 0.2.
	size_t pos = major * 10 + minor >= 2 ? 20 : 16;
	uint64_t body = darknet_weights_bytes(net);
	size_t other = pos == 20 ? 16 : 20;
	if (len >= pos && len - pos != body && len >= other && len - other == body)
		return err_set(err, errlen, "%s: header: version %d.%d.%d means a "
		              "%zu-byte header (a %d-bit \"seen\"), but the layers of "
		              "the cfg fit the file exactly after a %zu-byte one: a bad "
		              "version number (or 4 bytes %s)", name, major, minor, rev,
		              pos, pos == 20 ? 64 : 32, other,
		              pos == 20 ? "missing" : "too many");
	if (len < pos)
		return err_set(err, errlen, "%s: truncated header", name);
	for (int i = 0; i < net->n; i++) {
		const DarknetLayer *l = &net->layers[i];
		if (l->type != DN_CONV)
			continue;
		uint64_t f = (uint64_t)l->filters;
		uint64_t nw = f * (uint64_t)l->in_c * (uint64_t)l->size * (uint64_t)l->size;
		uint64_t need = conv_bytes(l);
		if (need > len - pos) {
			record_clear(out);
			return err_set(err, errlen, "%s: layer %d (convolutional): needs "
			              "%llu bytes at offset %zu, only %zu left (truncated, "
			              "or not the weights of this cfg)", name, i,
			              (unsigned long long)need, pos, len - pos);
		}
		char nm[64];
		int64_t wd[4] = { l->filters, l->in_c, l->size, l->size }, fd = l->filters;
		snprintf(nm, sizeof nm, "layers.%d.conv.weight", i);
		if (imp_shape_ok(out, n0, name, nm, DT_F32, 4, wd, err, errlen)) {
			record_clear(out);
			return -1;
		}
		// File order: biases, [scales, rolling_mean, rolling_variance], weights.
		const unsigned char *bias = b + pos, *wts = bias + 4 * f *
		                            (l->batch_normalize ? 4 : 1);
		st_convert(wts, ST_F32, nw, 1, record_add(out, nm, DT_F32, 4, wd, NULL));
		if (l->batch_normalize) {
			static const char *bn[4] = { "bias", "weight", "running_mean",
			                             "running_var" };
			static const int order[4] = { 1, 0, 2, 3 };   // weight first
			for (int k = 0; k < 4; k++) {
				snprintf(nm, sizeof nm, "layers.%d.bn.%s", i, bn[order[k]]);
				st_convert(bias + 4 * f * (size_t)order[k], ST_F32, f, 1,
				           record_add(out, nm, DT_F32, 1, &fd, NULL));
			}
		} else {
			snprintf(nm, sizeof nm, "layers.%d.conv.bias", i);
			st_convert(bias, ST_F32, f, 1, record_add(out, nm, DT_F32, 1, &fd, NULL));
		}
		pos += need;
	}
	if (pos != len) {
		record_clear(out);
		return err_set(err, errlen, "%s: %zu bytes left over after the last "
		              "layer (not the weights of this cfg)", name, len - pos);
	}
	return 0;
}

int darknet_load_weights(const char *path, const DarknetNet *net, Record *out,
                         char *err, size_t errlen)
{
	MappedFile m;
	if (map_file(path, &m, err, errlen))
		return -1;
	int rc = darknet_load_weights_mem(m.p, m.len, path, net, out, err, errlen);
	unmap_file(&m);
	return rc;
}
