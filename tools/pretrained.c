// pretrained: a pretrained backbone's weights -> a cnnpipe model file, with a
// new fast.ai head for the dataset's classes or the backbone's own ImageNet
// classifier (--imagenet).  See pretrained(1).
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "libcommon/util/alloc.h"
#include "libcommon/engine/backbone.h"
#include "formats/stream_classes.h"
#include "libcommon/util/classes.h"
#include "libcommon/util/err.h"
#include "formats/import.h"
#include "libcommon/util/io.h"
#include "libcommon/engine/model_check.h"
#include "libcommon/engine/model_file.h"
#include "formats/stream.h"

#define USAGE "pretrained -a ARCH -w WEIGHTS [--cfg FILE] (-c CLASSES | --classes-from STREAM) [--seed N] -o MODEL\n" \
              "       pretrained -a ARCH -w WEIGHTS [--cfg FILE] --imagenet [--labels FILE] -o MODEL"

#define CFG_CAP (4u << 20)
#define LABELS_CAP (16u << 20)

// -c 3 means classes "0,1,2"; otherwise the names themselves.
static char *classes_arg(const char *arg)
{
	const char *p = arg;
	while (*p >= '0' && *p <= '9')
		p++;
	if (*p || !*arg)
		return xstrdup(arg);
	long n = parse_long("-c", arg, 2, 100000);
	char *s = xmalloc((size_t)n * 7 + 1);
	size_t o = 0;
	for (long i = 0; i < n; i++)
		o += (size_t)sprintf(s + o, "%s%ld", i ? "," : "", i);
	return s;
}

// One label per line (ImageNet order) -> comma-separated.
static char *read_labels(const char *path, int want)
{
	size_t len;
	char *t = read_file(path, LABELS_CAP, &len);
	char *out = xmalloc(len + 1);
	size_t o = 0;
	int n = 0;
	char *line = t;
	while (line < t + len) {
		char *e = memchr(line, '\n', (size_t)(t + len - line));
		size_t l = e ? (size_t)(e - line) : (size_t)(t + len - line);
		if (l && line[l - 1] == '\r')
			l--;
		if (memchr(line, ',', l))
			die("%s: line %d: a class name may not contain ','", path, n + 1);
		if (!l)
			die("%s: line %d: empty label", path, n + 1);
		if (n)
			out[o++] = ',';
		memcpy(out + o, line, l);
		o += l;
		n++;
		line = e ? e + 1 : t + len;
	}
	out[o] = 0;
	free(t);
	if (n != want)
		die("%s: %d labels, the classifier has %d outputs", path, n, want);
	return out;
}

static char *numbered(int n)
{
	char *s = xmalloc((size_t)n * 7 + 1);
	size_t o = 0;
	for (int i = 0; i < n; i++)
		o += (size_t)sprintf(s + o, "%s%d", i ? "," : "", i);
	return s;
}

static int is_safetensors(const char *path)
{
	size_t n = strlen(path);
	if (n >= 12 && !strcmp(path + n - 12, ".safetensors"))
		return 1;
	// content: u64 header length, then the JSON header's '{'
	FILE *f = fopen(path, "rb");
	if (!f)
		return 0;
	unsigned char b[9];
	int r = fread(b, 1, 9, f) == 9 && b[8] == '{';
	fclose(f);
	return r;
}

static long long file_size(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		die_errno("%s", path);
	fseek(f, 0, SEEK_END);
	long long n = ftell(f);
	fclose(f);
	return n;
}

int main(int argc, char **argv)
{
	prog_init(argc, argv, USAGE);
	const char *arch = NULL, *weights = NULL, *cfgpath = NULL, *classes = NULL,
	           *from = NULL, *labels = NULL, *out = NULL;
	int imagenet = 0;
	uint64_t seed = 1;
	enum { O_CFG = 256, O_FROM, O_SEED, O_IMAGENET, O_LABELS };
	static const struct option longopts[] = {
		{ "arch", required_argument, 0, 'a' },
		{ "weights", required_argument, 0, 'w' },
		{ "cfg", required_argument, 0, O_CFG },
		{ "classes", required_argument, 0, 'c' },
		{ "classes-from", required_argument, 0, O_FROM },
		{ "seed", required_argument, 0, O_SEED },
		{ "imagenet", no_argument, 0, O_IMAGENET },
		{ "labels", required_argument, 0, O_LABELS },
		{ "output", required_argument, 0, 'o' },
		{ 0, 0, 0, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "a:w:c:o:", longopts, NULL)) != -1) {
		switch (c) {
		case 'a': arch = optarg; break;
		case 'w': weights = optarg; break;
		case O_CFG: cfgpath = optarg; break;
		case 'c': classes = optarg; break;
		case O_FROM: from = optarg; break;
		case O_SEED: seed = (uint64_t)parse_long("--seed", optarg, 0, 0x7fffffffffffffffL); break;
		case O_IMAGENET: imagenet = 1; break;
		case O_LABELS: labels = optarg; break;
		case 'o': out = optarg; break;
		default: die_usage(NULL);
		}
	}
	if (optind != argc)
		die_usage("unexpected argument '%s'", argv[optind]);
	if (!arch || !weights || !out)
		die_usage("-a, -w and -o are required");
	if (imagenet && (classes || from))
		die_usage("--imagenet keeps the ImageNet classes: no -c/--classes-from");
	if (!imagenet && !!classes == !!from)
		die_usage("give one of -c CLASSES, --classes-from STREAM or --imagenet");
	if (!imagenet && labels)
		die_usage("--labels goes with --imagenet");
	int darknet = !strcmp(arch, "darknet");
	if (strcmp(arch, "resnet18") && strcmp(arch, "resnet34") &&
	    strcmp(arch, "resnet50") && !darknet)
		die_usage("-a %s: unknown architecture (resnet18, resnet34, resnet50, darknet)", arch);
	if (darknet != !!cfgpath)
		die_usage(darknet ? "-a darknet needs --cfg FILE" : "--cfg goes with -a darknet");

	char *cls = NULL;
	if (classes)
		cls = classes_arg(classes);
	else if (from)
		cls = stream_read_classes(from);
	int K = cls ? classes_count(cls, classes ? "-c" : from) : 0;

	// The whole pretrained network first: every tensor of the weights file
	// must fit it (the classifier included), then the body moves under the
	// new head.  The cfg is parsed once, the weights copied once (the
	// imported record becomes the full network's parameters).
	char *cfg = NULL;
	size_t cfglen = 0;
	char err[1024];
	DarknetNet dn;
	if (darknet) {
		cfg = read_file(cfgpath, CFG_CAP, &cfglen);
		if (darknet_parse_cfg_mem(cfg, cfglen, cfgpath, &dn, err, sizeof err) < 0)
			die("%s", err);
	}
	// The weights before the network, built only listing its parameters:
	// they are checked against the weights' shapes and take their memory,
	// so a cfg describing a huge network is refused before any of it is
	// allocated.
	Record w;
	record_init(&w);
	int rc;
	if (darknet)
		rc = darknet_load_weights(weights, &dn, &w, err, sizeof err);
	else if (is_safetensors(weights))
		rc = import_safetensors(weights, &w, err, sizeof err);
	else
		rc = import_pth(weights, &w, err, sizeof err);
	if (rc < 0)
		die("%s", err);
	ModelSpec spec = { .arch = arch, .head = HEAD_IMAGENET, .cfg_text = cfg,
	                   .cfg_len = cfglen, .darknet = darknet ? &dn : NULL,
	                   .weights_follow = 1 };
	Model full;
	if (model_build(&full, &spec, err, sizeof err) < 0)
		die("%s: %s", darknet ? cfgpath : arch, err);
	if (model_adopt_params(&full, &w, weights, err, sizeof err) < 0)
		die("%s (not %s weights?)", err, arch);
	record_free(&w);
	// what a model file may not hold (model_save would refuse it later)
	if (model_check(&full, err, sizeof err) < 0)
		die("%s: %s", weights, err);
	if (darknet)
		model_darknet_fix_bn(&full);

	const char *base = strrchr(weights, '/');
	base = base ? base + 1 : weights;
	char prov[1200];
	snprintf(prov, sizeof prov, "%s (%lld bytes)%s%s", base, file_size(weights),
	         darknet ? ", cfg " : "", darknet ? cfgpath : "");
	if (imagenet) {
		full.classes = labels ? read_labels(labels, full.num_classes)
		                      : numbered(full.num_classes);
		full.provenance = xstrdup(prov);
		model_save(&full, out);
	} else {
		Model net;
		spec.head = HEAD_FASTAI;
		spec.num_classes = K;
		spec.init_head = 1;
		spec.seed = seed;
		spec.weights_follow = 0;
		if (model_build(&net, &spec, err, sizeof err) < 0)
			die("%s: %s", arch, err);
		// same architecture: every body tensor is there with its shape
		if (model_load_tensors(&net, &full.params, 1, 0, weights, err, sizeof err) < 0)
			die("%s", err);
		net.classes = cls;
		cls = NULL;
		net.provenance = xstrdup(prov);
		// fast.ai 0.7 conv_learner.py: ConvLearner.__init__ calls
		// self.freeze(): a new learner trains only its head.
		model_freeze_to(&net, net.ngroups - 1);
		model_save(&net, out);
		model_free(&net);
	}
	model_free(&full);
	if (darknet)
		darknet_free(&dn);
	free(cls);
	free(cfg);
	return 0;
}
