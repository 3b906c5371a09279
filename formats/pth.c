// torch.save'd state_dicts (.pth), both layouts:
//  - zip (PyTorch >= 1.6): <prefix>/data.pkl, whose persistent ids
//    ('storage', type, key, location, numel) name raw little-endian
//    storages <prefix>/data/<key>;
//  - legacy single stream (torch.save(..., _use_new_zipfile_serialization=
//    False), and every checkpoint of the fast.ai 0.7 era): five pickles --
//    magic number, protocol version, sys_info, the state_dict, the sorted
//    storage keys -- then per key a u64 element count and the raw data
//    (torch/serialization.py: _legacy_save).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "libcommon/util/alloc.h"
#include "libcommon/util/io.h"
#include "libcommon/util/le.h"
#include "import.h"
#include "import_internal.h"

// torch/serialization.py: MAGIC_NUMBER = 0x1950a86a20f9469cfc6c, pickled as
// a 10-byte LONG1; PROTOCOL_VERSION = 1001.
static const unsigned char legacy_magic[10] = {
	0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19
};
#define LEGACY_PROTOCOL 1001

// Where a storage's bytes are.
typedef struct {
	const char *key;
	size_t key_len;
	int st;
	const unsigned char *data;
	size_t numel;           // elements available
	int seen;
} Store;

static int keycmp(const char *a, size_t al, const char *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);
	return c ? c : (al > bl) - (al < bl);
}

static int store_cmp(const void *x, const void *y)
{
	const Store *a = x, *b = y;
	return keycmp(a->key, a->key_len, b->key, b->key_len);
}

static Store *store_find(Store *s, size_t n, const char *key, size_t kl)
{
	Store k = { .key = key, .key_len = kl };
	return bsearch(&k, s, n, sizeof *s, store_cmp);
}

static int name_cmp(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

// Copies tensor t (elements of storage bytes `src`, `avail` elements long)
// into the record as `tname`, converted; *budget bounds the bytes emitted.
static int emit(Record *out, int n0, const char *name, const char *tname,
                const PObj *t, const unsigned char *src, size_t avail,
                size_t *budget, char *err, size_t errlen)
{
	int st = t->storage->st, nd = t->ndim;
	size_t es = st_size(st);
	uint64_t numel = 1;
	for (int k = 0; k < nd; k++) {
		if ((uint64_t)t->size[k] > ((uint64_t)1 << 62) ||
		    (t->size[k] && numel > ((uint64_t)1 << 62) / (uint64_t)t->size[k]))
			return err_set(err, errlen, "%s: '%s': size overflows", name, tname);
		numel *= (uint64_t)t->size[k];
	}
	int dt = st_out_dtype(st);
	size_t osz = dtype_size(dt);
	if (numel > *budget / osz)
		return err_set(err, errlen, "%s: '%s': %llu elements is more than the "
		              "file could hold", name, tname, (unsigned long long)numel);
	if (numel) {
		// Highest element read; strides are non-negative (checked).
		uint64_t last = (uint64_t)t->offset;
		for (int k = 0; k < nd; k++) {
			uint64_t s = (uint64_t)t->stride[k], d = (uint64_t)t->size[k] - 1;
			if (s > ((uint64_t)1 << 62) || (d && s > (((uint64_t)1 << 62) - last) / d))
				return err_set(err, errlen, "%s: '%s': stride overflows", name,
				              tname);
			last += s * d;
		}
		if (last >= avail)
			return err_set(err, errlen, "%s: '%s' (%s, offset %lld) reads element "
			              "%llu of a storage of %zu elements", name, tname,
			              st_name(st), (long long)t->offset,
			              (unsigned long long)last, avail);
	}
	if (imp_shape_ok(out, n0, name, tname, dt, nd, t->size, err, errlen))
		return -1;
	*budget -= numel * osz;
	unsigned char *dst = record_add(out, tname, dt, nd, t->size, NULL);
	if (!numel)
		return 0;
	src += (size_t)t->offset * es;
	int contiguous = 1;
	uint64_t expect = 1;
	for (int k = nd - 1; k >= 0; k--) {
		if (t->size[k] != 1 && (uint64_t)t->stride[k] != expect)
			contiguous = 0;
		expect *= (uint64_t)t->size[k];
	}
	if (contiguous || nd == 0) {
		st_convert(src, st, numel, 1, dst);
		return 0;
	}
	// Strided view: convert row by row along the last dimension.
	int64_t idx[TENSOR_MAX_DIMS] = { 0 };
	size_t row = (size_t)t->size[nd - 1], rows = numel / row;
	for (size_t r = 0; r < rows; r++) {
		size_t off = 0;
		for (int k = 0; k < nd - 1; k++)
			off += (size_t)idx[k] * (size_t)t->stride[k];
		st_convert(src + off * es, st, row, (size_t)t->stride[nd - 1],
		           dst + r * row * osz);
		for (int k = nd - 2; k >= 0; k--) {
			if (++idx[k] < t->size[k])
				break;
			idx[k] = 0;
		}
	}
	return 0;
}

// Checks the top-level object is a dict of str -> tensor with valid,
// unique names; copies the names into *names (NUL-terminated, malloc'd).
static int check_dict(const PObj *d, const char *name, char ***names,
                      char *err, size_t errlen)
{
	*names = NULL;
	if (d->type != PK_DICT)
		return err_set(err, errlen, "%s: not a state_dict (the pickle holds a "
		              "non-dict)", name);
	int n = d->n / 2;
	if (n > STREAM_MAX_TENSORS)
		return err_set(err, errlen, "%s: %d tensors (at most %d)", name, n,
		              STREAM_MAX_TENSORS);
	char **nm = xcalloc((size_t)n + 1, sizeof *nm);
	for (int i = 0; i < n; i++) {
		const PObj *k = d->items[2 * i], *v = d->items[2 * i + 1];
		char shown[80];
		if (k->type != PK_STR || !imp_name_ok(k->s, k->slen)) {
			if (k->type == PK_STR)
				imp_printable(shown, sizeof shown, k->s, k->slen);
			err_set(err, errlen, "%s: state_dict key %d%s%s%s is not a valid "
			       "tensor name (1-%d printable ASCII characters)", name, i,
			       k->type == PK_STR ? " '" : "", k->type == PK_STR ? shown : "",
			       k->type == PK_STR ? "'" : "", TENSOR_NAME_MAX);
			goto fail;
		}
		nm[i] = xmalloc(k->slen + 1);
		memcpy(nm[i], k->s, k->slen);
		nm[i][k->slen] = 0;
		if (v->type != PK_TENSOR) {
			err_set(err, errlen, "%s: '%s': not a tensor", name, nm[i]);
			goto fail;
		}
	}
	char **sorted = xmalloc_array((size_t)n + 1, sizeof *sorted);
	memcpy(sorted, nm, (size_t)n * sizeof *nm);
	qsort(sorted, (size_t)n, sizeof *sorted, name_cmp);
	for (int i = 1; i < n; i++)
		if (!strcmp(sorted[i - 1], sorted[i])) {
			err_set(err, errlen, "%s: '%s': duplicate key", name, sorted[i]);
			free(sorted);
			goto fail;
		}
	free(sorted);
	*names = nm;
	return 0;
fail:
	for (int i = 0; i < n; i++)
		free(nm[i]);
	free(nm);
	return -1;
}

static void free_names(char **nm, int n)
{
	if (!nm)
		return;
	for (int i = 0; i < n; i++)
		free(nm[i]);
	free(nm);
}

static int load_zip(const unsigned char *buf, size_t len, const char *name,
                    Record *out, char *err, size_t errlen)
{
	int n0 = out->n;
	Zip z;
	char e2[256];
	if (zip_open_mem(buf, len, &z, e2, sizeof e2))
		return err_set(err, errlen, "%s: %s", name, e2);
	int rc = -1;
	Pickle *pk = NULL;
	char **names = NULL;
	int n = 0;
	// The archive's top folder is named after the file torch.save wrote;
	// torch reads the first "<prefix>/data.pkl".
	ZipEntry *pkl = NULL;
	size_t plen = 0;
	for (int i = 0; i < z.n && !pkl; i++) {
		const ZipEntry *e = &z.e[i];
		const char *sl = memchr(e->name, '/', e->name_len);
		if (sl && e->name_len - (size_t)(sl - e->name) == 9 &&
		    memcmp(sl, "/data.pkl", 9) == 0 && sl - e->name <= 200) {
			pkl = &z.e[i];
			plen = (size_t)(sl - e->name);
		}
	}
	if (!pkl) {
		err_set(err, errlen, "%s: no <archive>/data.pkl in the zip (not a "
		       "torch.save checkpoint)", name);
		goto done;
	}
	char path[512];
	memcpy(path, pkl->name, plen);
	memcpy(path + plen, "/byteorder", 10);
	ZipEntry *bo = (ZipEntry *)zip_find(&z, path, plen + 10);
	if (bo && !(bo->size == 6 && !memcmp(bo->data, "little", 6))) {
		err_set(err, errlen, "%s: big-endian checkpoints are not supported",
		       name);
		goto done;
	}
	if (zip_check(pkl, e2, sizeof e2)) {
		err_set(err, errlen, "%s: %s", name, e2);
		goto done;
	}
	pk = pk_new();
	size_t used;
	PObj *d = pk_load(pk, pkl->data, pkl->size, 0, &used, e2, sizeof e2);
	if (!d) {
		err_set(err, errlen, "%s: data.pkl: %s", name, e2);
		goto done;
	}
	if (check_dict(d, name, &names, err, errlen))
		goto done;
	n = d->n / 2;
	size_t budget = 8 * len + (1 << 20);
	for (int i = 0; i < n; i++) {
		const PObj *t = d->items[2 * i + 1], *s = t->storage;
		char key[64];
		imp_printable(key, sizeof key, s->key, s->key_len);
		if (s->key_len > 200) {
			err_set(err, errlen, "%s: '%s': storage key too long", name, names[i]);
			goto done;
		}
		memcpy(path + plen, "/data/", 6);
		memcpy(path + plen + 6, s->key, s->key_len);
		ZipEntry *e = (ZipEntry *)zip_find(&z, path, plen + 6 + s->key_len);
		if (!e) {
			err_set(err, errlen, "%s: '%s': storage '%s' missing from the zip",
			       name, names[i], key);
			goto done;
		}
		size_t es = st_size(s->st);
		if (e->size % es || (uint64_t)s->numel != e->size / es) {
			err_set(err, errlen, "%s: '%s': storage '%s' holds %zu bytes, not "
			       "%lld %s elements", name, names[i], key, e->size,
			       (long long)s->numel, st_name(s->st));
			goto done;
		}
		if (zip_check(e, e2, sizeof e2)) {
			err_set(err, errlen, "%s: %s", name, e2);
			goto done;
		}
		if (emit(out, n0, name, names[i], t, e->data, e->size / es, &budget, err,
		         errlen))
			goto done;
	}
	rc = 0;
done:
	free_names(names, n);
	pk_free(pk);
	zip_free(&z);
	return rc;
}

static int load_legacy(const unsigned char *buf, size_t len, const char *name,
                       Record *out, char *err, size_t errlen)
{
	int n0 = out->n;
	Pickle *pk = pk_new();
	char e2[256];
	char **names = NULL;
	int n = 0, rc = -1;
	Store *stores = NULL;
	size_t pos = 0, used;
	PObj *obj[5];
	static const char *what[5] = { "magic number", "protocol version",
	                               "sys_info", "state_dict", "storage keys" };
	for (int i = 0; i < 5; i++) {
		obj[i] = pk_load(pk, buf + pos, len - pos, pos, &used, e2, sizeof e2);
		if (!obj[i]) {
			err_set(err, errlen, "%s: %s: %s", name, what[i], e2);
			goto done;
		}
		pos += used;
		if (i == 0 && !(obj[0]->type == PK_BIGINT && obj[0]->slen == 10 &&
		                !memcmp(obj[0]->s, legacy_magic, 10))) {
			err_set(err, errlen, "%s: not a PyTorch checkpoint (bad magic "
			       "number)", name);
			goto done;
		}
		if (i == 1 && !(obj[1]->type == PK_INT && obj[1]->i == LEGACY_PROTOCOL)) {
			err_set(err, errlen, "%s: unsupported legacy protocol version", name);
			goto done;
		}
		if (i == 2) {
			const PObj *si = obj[2];
			if (si->type != PK_DICT) {
				err_set(err, errlen, "%s: sys_info is not a dict", name);
				goto done;
			}
			for (int k = 0; k + 1 < si->n; k += 2)
				if (si->items[k]->type == PK_STR && si->items[k]->slen == 13 &&
				    !memcmp(si->items[k]->s, "little_endian", 13) &&
				    !(si->items[k + 1]->type == PK_BOOL && si->items[k + 1]->i)) {
					err_set(err, errlen, "%s: big-endian checkpoints are not "
					       "supported", name);
					goto done;
				}
		}
	}
	if (check_dict(obj[3], name, &names, err, errlen))
		goto done;
	n = obj[3]->n / 2;
	const PObj *keys = obj[4];
	if (keys->type != PK_LIST) {
		err_set(err, errlen, "%s: storage key list is not a list", name);
		goto done;
	}
	size_t nk = (size_t)keys->n;
	stores = xcalloc(nk + 1, sizeof *stores);
	for (size_t i = 0; i < nk; i++) {
		if (keys->items[i]->type != PK_STR) {
			err_set(err, errlen, "%s: storage key %zu is not a string", name, i);
			goto done;
		}
		stores[i].key = keys->items[i]->s;
		stores[i].key_len = keys->items[i]->slen;
	}
	// Element types come from the tensors' storages.
	qsort(stores, nk, sizeof *stores, store_cmp);
	for (size_t i = 1; i < nk; i++)
		if (!store_cmp(&stores[i - 1], &stores[i])) {
			err_set(err, errlen, "%s: duplicate storage key", name);
			goto done;
		}
	for (int i = 0; i < n; i++) {
		const PObj *s = obj[3]->items[2 * i + 1]->storage;
		Store *st = store_find(stores, nk, s->key, s->key_len);
		if (!st) {
			err_set(err, errlen, "%s: '%s': storage not in the key list", name,
			       names[i]);
			goto done;
		}
		if (st->st && (st->st != s->st || st->numel != (size_t)s->numel)) {
			err_set(err, errlen, "%s: '%s': storage used with two types or "
			       "sizes", name, names[i]);
			goto done;
		}
		st->st = s->st;
		st->numel = (size_t)s->numel;
	}
	// The data, in the order of the (unsorted) key list.
	for (size_t i = 0; i < nk; i++) {
		const PObj *k = keys->items[i];
		Store *st = store_find(stores, nk, k->s, k->slen);
		char key[64];
		imp_printable(key, sizeof key, k->s, k->slen);
		if (!st->st) {
			err_set(err, errlen, "%s: storage '%s' is used by no tensor", name,
			       key);
			goto done;
		}
		size_t es = st_size(st->st);
		if (len - pos < 8) {
			err_set(err, errlen, "%s: truncated at byte %zu (storage '%s' size)",
			       name, pos, key);
			goto done;
		}
		uint64_t cnt = le_get64(buf + pos);
		pos += 8;
		if (cnt != st->numel) {
			err_set(err, errlen, "%s: storage '%s' has %llu elements, its "
			       "tensors say %zu", name, key, (unsigned long long)cnt,
			       st->numel);
			goto done;
		}
		if (cnt > (len - pos) / es) {
			err_set(err, errlen, "%s: truncated at byte %zu (storage '%s': %llu "
			       "%s elements)", name, pos, key, (unsigned long long)cnt,
			       st_name(st->st));
			goto done;
		}
		st->data = buf + pos;
		st->seen = 1;
		pos += (size_t)cnt * es;
	}
	if (pos != len) {
		err_set(err, errlen, "%s: %zu bytes left over after the last storage",
		       name, len - pos);
		goto done;
	}
	size_t budget = 8 * len + (1 << 20);
	for (int i = 0; i < n; i++) {
		const PObj *t = obj[3]->items[2 * i + 1], *s = t->storage;
		Store *st = store_find(stores, nk, s->key, s->key_len);
		if (emit(out, n0, name, names[i], t,
		         st->data + (size_t)s->view_off * st_size(s->st),
		         (size_t)s->view_numel, &budget, err, errlen))
			goto done;
	}
	rc = 0;
done:
	free(stores);
	free_names(names, n);
	pk_free(pk);
	return rc;
}

int import_pth_mem(const void *buf, size_t len, const char *name, Record *out,
                   char *err, size_t errlen)
{
	const unsigned char *b = buf;
	int rc;
	if (len >= 4 && !memcmp(b, "PK\3\4", 4))
		rc = load_zip(b, len, name, out, err, errlen);
	else if (len >= 2 && b[0] == 0x80)
		rc = load_legacy(b, len, name, out, err, errlen);
	else
		rc = err_set(err, errlen, "%s: not a PyTorch checkpoint (neither a zip "
		            "archive nor a legacy pickle stream)", name);
	if (rc)
		record_clear(out);
	return rc;
}

int import_pth(const char *path, Record *out, char *err, size_t errlen)
{
	MappedFile m;
	if (map_file(path, &m, err, errlen))
		return -1;
	int rc = import_pth_mem(m.p, m.len, path, out, err, errlen);
	unmap_file(&m);
	return rc;
}
