// safetensors: u64 little-endian header length N, N bytes of JSON
//   {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [b, e]}, ...,
//    "__metadata__": {"k": "v"}}
// then the data, offsets relative to its start.  The JSON parser below
// accepts exactly that schema (strict JSON, no floats, no nesting beyond it).
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "libcommon/util/alloc.h"
#include "libcommon/util/io.h"
#include "libcommon/util/le.h"
#include "import.h"
#include "import_internal.h"

// The reference implementation refuses headers over 100 MB too.
#define ST_MAX_HEADER (100u << 20)

typedef struct {
	char *name;
	int st, ndim;
	int64_t dims[TENSOR_MAX_DIMS];
	uint64_t begin, end;
} Entry;

typedef struct {
	const unsigned char *p, *s, *e;  // cursor, start, end
	char why[200];
} J;

__attribute__((format(printf, 2, 3)))
static int jfail(J *j, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(j->why, sizeof j->why, fmt, ap);
	va_end(ap);
	return -1;
}
#define JFAIL jfail

static void ws(J *j)
{
	while (j->p < j->e && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' ||
	                       *j->p == '\r'))
		j->p++;
}

static int expect(J *j, char c)
{
	ws(j);
	if (j->p >= j->e || *j->p != c)
		return JFAIL(j, "expected '%c'", c);
	j->p++;
	return 0;
}

static int hex4(const unsigned char *p, unsigned *v)
{
	*v = 0;
	for (int i = 0; i < 4; i++) {
		int c = p[i], d;
		if (c >= '0' && c <= '9') d = c - '0';
		else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
		else return -1;
		*v = *v << 4 | (unsigned)d;
	}
	return 0;
}

// A JSON string, decoded to UTF-8 in a malloc'd, NUL-terminated buffer
// (*len excludes the NUL; embedded NULs make it an invalid name later).
static int jstring(J *j, char **out, size_t *len)
{
	*out = NULL;
	ws(j);
	if (j->p >= j->e || *j->p != '"')
		return JFAIL(j, "expected a string");
	j->p++;
	char *b = xmalloc((size_t)(j->e - j->p) + 1);
	size_t n = 0;
	for (;;) {
		if (j->p >= j->e) {
			free(b);
			return JFAIL(j, "unterminated string");
		}
		unsigned c = *j->p++;
		if (c == '"')
			break;
		if (c < 0x20) {
			free(b);
			return JFAIL(j, "control character in a string");
		}
		if (c != '\\') {
			b[n++] = (char)c;
			continue;
		}
		if (j->p >= j->e) {
			free(b);
			return JFAIL(j, "unterminated string");
		}
		c = *j->p++;
		switch (c) {
		case '"': case '\\': case '/': b[n++] = (char)c; break;
		case 'b': b[n++] = '\b'; break;
		case 'f': b[n++] = '\f'; break;
		case 'n': b[n++] = '\n'; break;
		case 'r': b[n++] = '\r'; break;
		case 't': b[n++] = '\t'; break;
		case 'u': {
			unsigned u, lo;
			if (j->e - j->p < 4 || hex4(j->p, &u)) {
				free(b);
				return JFAIL(j, "bad \\u escape");
			}
			j->p += 4;
			if (u >= 0xd800 && u < 0xdc00) {
				if (j->e - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u' ||
				    hex4(j->p + 2, &lo) || lo < 0xdc00 || lo > 0xdfff) {
					free(b);
					return JFAIL(j, "unpaired surrogate in \\u escape");
				}
				j->p += 6;
				u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
			} else if (u >= 0xdc00 && u < 0xe000) {
				free(b);
				return JFAIL(j, "unpaired surrogate in \\u escape");
			}
			// At most 4 bytes for the 6 or 12 consumed: fits in b.
			if (u < 0x80) {
				b[n++] = (char)u;
			} else if (u < 0x800) {
				b[n++] = (char)(0xc0 | u >> 6);
				b[n++] = (char)(0x80 | (u & 0x3f));
			} else if (u < 0x10000) {
				b[n++] = (char)(0xe0 | u >> 12);
				b[n++] = (char)(0x80 | ((u >> 6) & 0x3f));
				b[n++] = (char)(0x80 | (u & 0x3f));
			} else {
				b[n++] = (char)(0xf0 | u >> 18);
				b[n++] = (char)(0x80 | ((u >> 12) & 0x3f));
				b[n++] = (char)(0x80 | ((u >> 6) & 0x3f));
				b[n++] = (char)(0x80 | (u & 0x3f));
			}
			break;
		}
		default:
			free(b);
			return JFAIL(j, "bad escape '\\%c'", c >= 0x20 && c < 0x7f ? c : '?');
		}
	}
	b[n] = 0;
	*out = b;
	*len = n;
	return 0;
}

// A non-negative integer below 2^63.
static int juint(J *j, uint64_t *v)
{
	ws(j);
	if (j->p >= j->e || *j->p < '0' || *j->p > '9')
		return JFAIL(j, "expected a non-negative integer");
	if (*j->p == '0' && j->e - j->p > 1 && j->p[1] >= '0' && j->p[1] <= '9')
		return JFAIL(j, "leading zero in a number");
	*v = 0;
	while (j->p < j->e && *j->p >= '0' && *j->p <= '9') {
		if (*v > (((uint64_t)1 << 63) - 10) / 10)
			return JFAIL(j, "number too large");
		*v = *v * 10 + (uint64_t)(*j->p++ - '0');
	}
	if (j->p < j->e && (*j->p == '.' || *j->p == 'e' || *j->p == 'E'))
		return JFAIL(j, "expected an integer");
	return 0;
}

// [u, u, ...] with at most `max` elements.
static int juint_array(J *j, uint64_t *v, int max, int *n)
{
	*n = 0;
	if (expect(j, '['))
		return -1;
	ws(j);
	if (j->p < j->e && *j->p == ']') {
		j->p++;
		return 0;
	}
	for (;;) {
		if (*n == max)
			return JFAIL(j, "array longer than %d", max);
		if (juint(j, &v[(*n)++]))
			return -1;
		ws(j);
		if (j->p < j->e && *j->p == ',') {
			j->p++;
			continue;
		}
		return expect(j, ']');
	}
}

static const struct { const char *name; int st; } dtypes[] = {
	{ "F32", ST_F32 }, { "F16", ST_F16 }, { "BF16", ST_BF16 }, { "F64", ST_F64 },
	{ "I64", ST_I64 }, { "I32", ST_I32 }, { "I16", ST_I16 }, { "I8", ST_I8 },
	{ "U8", ST_U8 }, { "BOOL", ST_BOOL },
};

static int tensor_obj(J *j, Entry *t)
{
	int have = 0;   // bits: dtype, shape, offsets
	if (expect(j, '{'))
		return -1;
	for (;;) {
		char *k;
		size_t kl;
		if (jstring(j, &k, &kl))
			return -1;
		int bit = !strcmp(k, "dtype") ? 1 : !strcmp(k, "shape") ? 2 :
		          !strcmp(k, "data_offsets") ? 4 : 0;
		free(k);
		if (!bit)
			return JFAIL(j, "unknown key in a tensor entry");
		if (have & bit)
			return JFAIL(j, "repeated key in a tensor entry");
		have |= bit;
		if (expect(j, ':'))
			return -1;
		if (bit == 1) {
			char *d;
			size_t dl;
			if (jstring(j, &d, &dl))
				return -1;
			t->st = 0;
			for (size_t i = 0; i < sizeof dtypes / sizeof *dtypes; i++)
				if (!strcmp(d, dtypes[i].name))
					t->st = dtypes[i].st;
			if (!t->st) {
				char shown[24];
				snprintf(shown, sizeof shown, "%s", d);
				for (char *c = shown; *c; c++)
					if (*c < 0x20 || *c > 0x7e)
						*c = '?';
				free(d);
				return JFAIL(j, "unsupported dtype '%s'", shown);
			}
			free(d);
		} else if (bit == 2) {
			uint64_t v[TENSOR_MAX_DIMS];
			if (juint_array(j, v, TENSOR_MAX_DIMS, &t->ndim))
				return -1;
			for (int i = 0; i < t->ndim; i++) {
				if (v[i] >= ((uint64_t)1 << 40))
					return JFAIL(j, "dimension too large");
				t->dims[i] = (int64_t)v[i];
			}
		} else {
			uint64_t v[2];
			int n;
			if (juint_array(j, v, 2, &n))
				return -1;
			if (n != 2)
				return JFAIL(j, "data_offsets needs 2 numbers");
			t->begin = v[0];
			t->end = v[1];
		}
		ws(j);
		if (j->p < j->e && *j->p == ',') {
			j->p++;
			continue;
		}
		if (expect(j, '}'))
			return -1;
		if (have != 7)
			return JFAIL(j, "tensor entry lacks %s", !(have & 1) ? "dtype" :
			             !(have & 2) ? "shape" : "data_offsets");
		return 0;
	}
}

static int metadata_obj(J *j)
{
	if (expect(j, '{'))
		return -1;
	ws(j);
	if (j->p < j->e && *j->p == '}') {
		j->p++;
		return 0;
	}
	for (;;) {
		char *s;
		size_t l;
		if (jstring(j, &s, &l))
			return -1;
		free(s);
		if (expect(j, ':') || jstring(j, &s, &l))
			return -1;
		free(s);
		ws(j);
		if (j->p < j->e && *j->p == ',') {
			j->p++;
			continue;
		}
		return expect(j, '}');
	}
}

static int by_begin(const void *x, const void *y)
{
	const Entry *a = *(Entry *const *)x, *b = *(Entry *const *)y;
	return (a->begin > b->begin) - (a->begin < b->begin);
}

static int by_name(const void *x, const void *y)
{
	return strcmp((*(Entry *const *)x)->name, (*(Entry *const *)y)->name);
}

int import_safetensors_mem(const void *buf, size_t len, const char *name,
                           Record *out, char *err, size_t errlen)
{
	const unsigned char *b = buf;
	Entry *ents = NULL;
	Entry **ord = NULL;
	int n = 0, cap = 0, rc = -1, meta = 0, n0 = out->n;
	if (len < 8) {
		err_set(err, errlen, "%s: too short for a safetensors file (%zu bytes)",
		       name, len);
		goto done;
	}
	uint64_t hlen = le_get64(b);
	if (hlen > ST_MAX_HEADER || hlen > len - 8) {
		err_set(err, errlen, "%s: header length %llu exceeds the file (%zu "
		       "bytes) or %u", name, (unsigned long long)hlen, len, ST_MAX_HEADER);
		goto done;
	}
	const unsigned char *data = b + 8 + hlen;
	size_t dlen = len - 8 - (size_t)hlen;
	J j = { .p = b + 8, .s = b + 8, .e = b + 8 + hlen };
	if (expect(&j, '{'))
		goto bad_json;
	ws(&j);
	if (j.p < j.e && *j.p == '}') {
		j.p++;
	} else {
		for (;;) {
			char *k;
			size_t kl;
			if (jstring(&j, &k, &kl))
				goto bad_json;
			if (expect(&j, ':')) {
				free(k);
				goto bad_json;
			}
			if (!strcmp(k, "__metadata__") && kl == 12) {
				free(k);
				if (meta++) {
					JFAIL(&j, "repeated __metadata__");
					goto bad_json;
				}
				if (metadata_obj(&j))
					goto bad_json;
			} else {
				if (!imp_name_ok(k, kl)) {
					free(k);
					JFAIL(&j, "tensor name is not 1-%d printable ASCII "
					      "characters", TENSOR_NAME_MAX);
					goto bad_json;
				}
				if (n == STREAM_MAX_TENSORS) {
					free(k);
					JFAIL(&j, "more than %d tensors", STREAM_MAX_TENSORS);
					goto bad_json;
				}
				if (n == cap) {
					cap = cap ? 2 * cap : 64;
					ents = xrealloc(ents, (size_t)cap * sizeof *ents);
				}
				memset(&ents[n], 0, sizeof *ents);
				ents[n++].name = k;
				if (tensor_obj(&j, &ents[n - 1])) {
					char w[sizeof j.why];
					memcpy(w, j.why, sizeof w);
					JFAIL(&j, "%.60s (in '%.80s')", w, k);
					goto bad_json;
				}
			}
			ws(&j);
			if (j.p < j.e && *j.p == ',') {
				j.p++;
				continue;
			}
			if (expect(&j, '}'))
				goto bad_json;
			break;
		}
	}
	ws(&j);
	if (j.p != j.e) {
		JFAIL(&j, "trailing characters after the header object");
		goto bad_json;
	}
	// Offsets and sizes, then overlaps (sorted by start) and duplicates.
	ord = xmalloc_array((size_t)n + 1, sizeof *ord);
	for (int i = 0; i < n; i++) {
		Entry *t = &ents[i];
		ord[i] = t;
		int dt = st_out_dtype(t->st);
		if (imp_shape_ok(out, n0, name, t->name, dt, t->ndim, t->dims, err, errlen))
			goto done;
		uint64_t bytes = st_size(t->st);
		for (int k = 0; k < t->ndim; k++)
			bytes *= (uint64_t)t->dims[k];   // < 2^32 after imp_shape_ok
		if (t->begin > t->end || t->end > dlen || t->end - t->begin != bytes) {
			err_set(err, errlen, "%s: '%s': data_offsets [%llu, %llu] do not "
			       "hold %llu bytes within the %zu data bytes", name, t->name,
			       (unsigned long long)t->begin, (unsigned long long)t->end,
			       (unsigned long long)bytes, dlen);
			goto done;
		}
	}
	qsort(ord, (size_t)n, sizeof *ord, by_name);
	for (int i = 1; i < n; i++)
		if (!strcmp(ord[i - 1]->name, ord[i]->name)) {
			err_set(err, errlen, "%s: '%s': duplicate tensor", name, ord[i]->name);
			goto done;
		}
	qsort(ord, (size_t)n, sizeof *ord, by_begin);
	for (int i = 1; i < n; i++)
		if (ord[i]->begin < ord[i - 1]->end) {
			err_set(err, errlen, "%s: '%s' overlaps '%s' in the data", name,
			       ord[i]->name, ord[i - 1]->name);
			goto done;
		}
	for (int i = 0; i < n; i++) {
		Entry *t = &ents[i];
		int dt = st_out_dtype(t->st);
		if (imp_shape_ok(out, n0, name, t->name, dt, t->ndim, t->dims, err, errlen))
			goto done;
		void *dst = record_add(out, t->name, dt, t->ndim, t->dims, NULL);
		size_t numel = (size_t)((t->end - t->begin) / st_size(t->st));
		st_convert(data + t->begin, t->st, numel, 1, dst);
	}
	rc = 0;
	goto done;
bad_json:
	err_set(err, errlen, "%s: header byte %zu: %s", name,
	       (size_t)(j.p - j.s) + 8, j.why);
done:
	for (int i = 0; i < n; i++)
		free(ents[i].name);
	free(ents);
	free(ord);
	if (rc)
		record_clear(out);
	return rc;
}

int import_safetensors(const char *path, Record *out, char *err, size_t errlen)
{
	MappedFile m;
	if (map_file(path, &m, err, errlen))
		return -1;
	int rc = import_safetensors_mem(m.p, m.len, path, out, err, errlen);
	unmap_file(&m);
	return rc;
}
