// A minimal zip reader for PyTorch checkpoints: torch.save writes every
// entry uncompressed ("stored"), so that is all this accepts.  Every length
// and offset is checked against the buffer before use.
#include <stdlib.h>
#include <string.h>
#include "libcommon/util/alloc.h"
#include "libcommon/util/le.h"
#include "crc32.h"
#include "import_internal.h"

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOC64 0x07064b50u

// Reads the zip64 end-of-central-directory record the locator at `loc`
// points to.
static int eocd64(const unsigned char *buf, size_t len, size_t loc,
                  uint64_t *count, uint64_t *cd_size, uint64_t *cd_off,
                  char *err, size_t errlen)
{
	if (loc < 20 || le_get32(buf + loc - 20) != SIG_LOC64)
		return err_set(err, errlen, "zip: zip64 end record locator missing");
	uint64_t off = le_get64(buf + loc - 20 + 8);
	if (off > len || len - off < 56 || le_get32(buf + off) != SIG_EOCD64)
		return err_set(err, errlen, "zip: bad zip64 end record offset %llu",
		              (unsigned long long)off);
	*count = le_get64(buf + off + 32);
	*cd_size = le_get64(buf + off + 40);
	*cd_off = le_get64(buf + off + 48);
	return 0;
}

int zip_open_mem(const unsigned char *buf, size_t len, Zip *z, char *err,
                 size_t errlen)
{
	memset(z, 0, sizeof *z);
	if (len < 22)
		return err_set(err, errlen, "zip: too short (%zu bytes)", len);
	// The end record sits in the last 22 + 65535 (comment) bytes.
	size_t pos = len - 22, lo = len > 22 + 65535 ? len - 22 - 65535 : 0;
	int found = 0;
	for (;; pos--) {
		if (le_get32(buf + pos) == SIG_EOCD &&
		    pos + 22 + (size_t)le_get16(buf + pos + 20) <= len) {
			found = 1;
			break;
		}
		if (pos == lo)
			break;
	}
	if (!found)
		return err_set(err, errlen, "zip: no end of central directory "
		              "(truncated?)");
	uint64_t count = le_get16(buf + pos + 10), cd_size = le_get32(buf + pos + 12),
	         cd_off = le_get32(buf + pos + 16);
	if (le_get16(buf + pos + 4) != 0 || le_get16(buf + pos + 6) != 0)
		return err_set(err, errlen, "zip: multi-disk archives are not supported");
	if (count == 0xffff || cd_size == 0xffffffffu || cd_off == 0xffffffffu) {
		if (eocd64(buf, len, pos, &count, &cd_size, &cd_off, err, errlen))
			return -1;
	}
	if (cd_off > len || cd_size > len - cd_off)
		return err_set(err, errlen, "zip: central directory (offset %llu, "
		              "%llu bytes) lies outside the file (%zu bytes)",
		              (unsigned long long)cd_off,
		              (unsigned long long)cd_size, len);
	if (count > cd_size / 46)
		return err_set(err, errlen, "zip: %llu entries cannot fit in a "
		              "%llu-byte central directory",
		              (unsigned long long)count, (unsigned long long)cd_size);
	z->e = xcalloc(count ? count : 1, sizeof *z->e);
	const unsigned char *p = buf + cd_off, *end = p + cd_size;
	for (uint64_t i = 0; i < count; i++) {
		if (end - p < 46 || le_get32(p) != SIG_CENTRAL) {
			err_set(err, errlen, "zip: bad central directory entry %llu",
			       (unsigned long long)i);
			goto fail;
		}
		unsigned flags = le_get16(p + 8), method = le_get16(p + 10);
		uint32_t crc = le_get32(p + 16);
		uint64_t csize = le_get32(p + 20), usize = le_get32(p + 24);
		size_t nl = le_get16(p + 28), xl = le_get16(p + 30), cl = le_get16(p + 32);
		uint64_t lofs = le_get32(p + 42);
		if ((size_t)(end - p) - 46 < nl + xl + cl) {
			err_set(err, errlen, "zip: central directory entry %llu overruns "
			       "the directory", (unsigned long long)i);
			goto fail;
		}
		const char *name = (const char *)p + 46;
		int nshow = nl > 200 ? 200 : (int)nl;
		// Zip64 sizes/offset, present in that order for each field saturated.
		const unsigned char *x = p + 46 + nl, *xe = x + xl;
		while (xe - x >= 4) {
			unsigned id = le_get16(x), sz = le_get16(x + 2);
			if ((size_t)(xe - x) - 4 < sz)
				break;
			if (id == 0x0001) {
				const unsigned char *q = x + 4, *qe = q + sz;
				uint64_t *f[3] = { &usize, &csize, &lofs };
				for (int k = 0; k < 3; k++) {
					if (*f[k] != 0xffffffffu)
						continue;
					if (qe - q < 8) {
						err_set(err, errlen, "zip: entry '%.*s': short zip64 "
						       "field", nshow, name);
						goto fail;
					}
					*f[k] = le_get64(q);
					q += 8;
				}
			}
			x += 4 + sz;
		}
		if (flags & 1) {
			err_set(err, errlen, "zip: entry '%.*s' is encrypted", nshow, name);
			goto fail;
		}
		if (method != 0) {
			err_set(err, errlen, "zip: entry '%.*s' is compressed (method %u); "
			       "only stored entries are supported", nshow, name, method);
			goto fail;
		}
		if (csize != usize) {
			err_set(err, errlen, "zip: stored entry '%.*s' has compressed size "
			       "%llu != size %llu", nshow, name,
			       (unsigned long long)csize, (unsigned long long)usize);
			goto fail;
		}
		if (lofs > len || len - lofs < 30 || le_get32(buf + lofs) != SIG_LOCAL) {
			err_set(err, errlen, "zip: entry '%.*s': bad local header offset "
			       "%llu", nshow, name, (unsigned long long)lofs);
			goto fail;
		}
		uint64_t data = lofs + 30 + le_get16(buf + lofs + 26) + le_get16(buf + lofs + 28);
		if (data > len || usize > len - data) {
			err_set(err, errlen, "zip: entry '%.*s' (%llu bytes at offset %llu) "
			       "extends past the end of the file (%zu bytes)", nshow, name,
			       (unsigned long long)usize, (unsigned long long)data, len);
			goto fail;
		}
		ZipEntry *e = &z->e[z->n++];
		e->name = name;
		e->name_len = nl;
		e->data = buf + data;
		e->size = (size_t)usize;
		e->crc = crc;
		p += 46 + nl + xl + cl;
	}
	return 0;
fail:
	zip_free(z);
	return -1;
}

const ZipEntry *zip_find(const Zip *z, const char *name, size_t name_len)
{
	for (int i = 0; i < z->n; i++)
		if (z->e[i].name_len == name_len &&
		    memcmp(z->e[i].name, name, name_len) == 0)
			return &z->e[i];
	return NULL;
}

int zip_check(ZipEntry *e, char *err, size_t errlen)
{
	if (e->checked)
		return 0;
	uint32_t c = crc32_update(0, e->data, e->size);
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
	// Lets a fuzzer mutate the pickle and storages inside an archive.
	c = e->crc;
#endif
	if (c != e->crc)
		return err_set(err, errlen, "zip: entry '%.*s': CRC-32 mismatch "
		              "(corrupt file)", e->name_len > 200 ? 200 : (int)e->name_len,
		              e->name);
	e->checked = 1;
	return 0;
}

void zip_free(Zip *z)
{
	free(z->e);
	memset(z, 0, sizeof *z);
}
