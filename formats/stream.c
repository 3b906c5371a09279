// The tensor stream: the byte layout is specified in man/man5/cnnpipe-tensor.5.
//
//   preamble  64 bytes: magic 89 'C' 'N' 'P' 0D 0A 1A 0A, u32 version, zeros
//   chunk     at a 64-byte aligned offset:
//     0  tag[4]      "CNPH" header, "CNPR" record, "CNPE" end
//     4  u32 crc     CRC-32 of bytes [8, len) of the chunk
//     8  u64 len     whole chunk, a multiple of 64
//    16  u32 desc    descriptor bytes, starting at 32
//    20  u32 count   metadata entries (H, E) or tensors (R)
//    24  u64 seq     R: record index; E: record count; H: 0
//    32  descriptor, zero padding to 64, then (R) tensor data
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "libcommon/util/alloc.h"
#include "crc32.h"
#include "libcommon/util/err.h"
#include "libcommon/util/io.h"
#include "libcommon/util/le.h"
#include "libcommon/util/strmap.h"
#include "stream.h"

#define VERSION 1
#define PREAMBLE 64
#define CHUNK_HDR 32
#define MAX_DIM TENSOR_MAX_DIM
static const unsigned char MAGIC[8] = { 0x89, 'C', 'N', 'P', 0x0D, 0x0A, 0x1A, 0x0A };

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

// ---- metadata -------------------------------------------------------------

// A chunk's metadata: the map (hashed, in insertion order) and, for a
// writer, the bytes its descriptor will take, kept within the cap as keys
// are set so that the error comes where the key is set.
typedef struct {
	StrMap map;
	size_t desc;
} MetaList;

static size_t entry_bytes(size_t klen, size_t vlen) { return 8 + klen + vlen; }

static const char *meta_find(const MetaList *l, const char *key)
{
	return strmap_get(&l->map, key);
}

static void meta_free(MetaList *l)
{
	strmap_free(&l->map);
	l->desc = 0;
}

// ---- the stream object ------------------------------------------------------

struct Stream {
	int writing;
	char *path;          // as given ("-" for the standard streams)
	const char *label;   // for messages: path or "standard input/output"
	// reading
	FILE *f;
	const unsigned char *mem;
	size_t memlen, mempos;
	uint64_t offset;     // bytes consumed so far
	int ended, failed;
	int has_stop;        // stream_stop_at: reads end before record stop_at
	uint64_t stop_at;
	int trailer_read;    // the end chunk's keys have joined meta
	char err[512];
	// writing
	AtomicOut out;
	int header_written;
	MetaList trailer;    // keys set after the header went out
	// both
	MetaList meta;
	uint64_t count;
	unsigned char *chunk; size_t chunkcap;   // scratch for descriptors
};

static _Thread_local char last_error[512];

const char *stream_last_error(void) { return last_error; }
const char *stream_error(const Stream *s) { return s->err; }
const char *stream_path(const Stream *s) { return s->label; }
uint64_t stream_count(const Stream *s) { return s->count; }

static int fail(Stream *s, uint64_t at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(Stream *s, uint64_t at, const char *fmt, ...)
{
	char what[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	snprintf(s->err, sizeof s->err, "%s: byte %llu: %s", s->label,
	         (unsigned long long)at, what);
	snprintf(last_error, sizeof last_error, "%s", s->err);
	s->failed = 1;
	return -1;
}

static Stream *stream_new(const char *path, int writing)
{
	Stream *s = xcalloc(1, sizeof *s);
	s->writing = writing;
	s->path = xstrdup(path);
	s->label = strcmp(path, "-") ? s->path
	           : writing ? "standard output" : "standard input";
	return s;
}

static void stream_free(Stream *s)
{
	meta_free(&s->meta);
	meta_free(&s->trailer);
	free(s->chunk);
	free(s->path);
	free(s);
}

// Reads exactly n bytes unless the input ends; returns bytes read.
static size_t src_read(Stream *s, void *buf, size_t n)
{
	size_t got;
	if (s->mem) {
		got = s->memlen - s->mempos < n ? s->memlen - s->mempos : n;
		memcpy(buf, s->mem + s->mempos, got);
		s->mempos += got;
	} else {
		got = 0;
		while (got < n) {
			size_t k = fread((char *)buf + got, 1, n - got, s->f);
			if (k == 0)
				break;
			got += k;
		}
	}
	s->offset += got;
	return got;
}

static int src_error(Stream *s)
{
	return !s->mem && ferror(s->f);
}

static void scratch(Stream *s, size_t n)
{
	if (n > s->chunkcap) {
		free(s->chunk);
		s->chunk = xaligned_alloc(64, n);
		s->chunkcap = n;
	}
}

// Reads a whole chunk into *buf (reallocated as data arrive, never beyond
// the chunk's checked length) and verifies length, padding and CRC.
// Returns the chunk length, or 0 after fail().
// Reads and checks a chunk's 32-byte header (tag, length, descriptor
// length; not the CRC, which covers the whole chunk).  Returns the chunk
// length, or 0 after fail().
static uint64_t read_chunk_header(Stream *s, unsigned char *hdr, const char *want_tag)
{
	uint64_t start = s->offset;
	size_t got = src_read(s, hdr, CHUNK_HDR);
	if (got < CHUNK_HDR) {
		if (src_error(s))
			return fail(s, start, "read error: %s", strerror(errno)), 0;
		if (got == 0)
			return fail(s, start, "truncated stream: no end chunk"), 0;
		return fail(s, s->offset, "truncated chunk header (%zu of 32 bytes)", got), 0;
	}
	if (want_tag && memcmp(hdr, want_tag, 4) != 0)
		return fail(s, start, "expected a %s chunk", want_tag), 0;
	if (memcmp(hdr, "CNPH", 4) && memcmp(hdr, "CNPR", 4) && memcmp(hdr, "CNPE", 4))
		return fail(s, start, "unknown chunk tag (corrupt stream)"), 0;
	uint64_t len = le_get64(hdr + 8);
	uint32_t desc = le_get32(hdr + 16);
	int is_rec = memcmp(hdr, "CNPR", 4) == 0;
	uint64_t maxlen = is_rec ? STREAM_MAX_RECORD_BYTES
	                         : align64(CHUNK_HDR + STREAM_MAX_DESC_BYTES);
	if (len < 64 || len % 64)
		return fail(s, start, "chunk length %llu is not a positive multiple of 64",
		            (unsigned long long)len), 0;
	if (len > maxlen)
		return fail(s, start, "chunk length %llu exceeds the cap of %llu bytes",
		            (unsigned long long)len, (unsigned long long)maxlen), 0;
	if (desc > STREAM_MAX_DESC_BYTES)
		return fail(s, start, "descriptor length %u exceeds the cap of %u bytes", desc,
		            STREAM_MAX_DESC_BYTES), 0;
	if (CHUNK_HDR + (uint64_t)desc > len)
		return fail(s, start, "descriptor length %u does not fit the chunk", desc), 0;
	return len;
}

static uint64_t read_chunk(Stream *s, unsigned char **buf, size_t *cap,
                           const char *want_tag)
{
	uint64_t start = s->offset;
	unsigned char hdr[CHUNK_HDR];
	uint64_t len = read_chunk_header(s, hdr, want_tag);
	if (!len)
		return 0;
	// Grow the buffer as the bytes arrive, so that a lying length in a short
	// stream costs no more memory than the stream itself.
	size_t have = CHUNK_HDR;
	if (*cap < 65536) {
		free(*buf);
		*cap = 65536;
		*buf = xaligned_alloc(64, *cap);
	}
	memcpy(*buf, hdr, CHUNK_HDR);
	while (have < len) {
		if (have == *cap) {
			size_t ncap = *cap * 2 < len ? *cap * 2 : len;
			unsigned char *nb = xaligned_alloc(64, ncap);
			memcpy(nb, *buf, have);
			free(*buf);
			*buf = nb;
			*cap = ncap;
		}
		size_t want = (len < *cap ? len : *cap) - have;
		size_t k = src_read(s, *buf + have, want);
		have += k;
		if (k < want) {
			if (src_error(s))
				return fail(s, s->offset, "read error: %s", strerror(errno)), 0;
			return fail(s, s->offset, "truncated chunk: %llu of %llu bytes",
			            (unsigned long long)have, (unsigned long long)len), 0;
		}
	}
	uint32_t crc = crc32_update(0, *buf + 8, len - 8);
	if (crc != le_get32(*buf + 4))
		return fail(s, start, "checksum mismatch (stored %08x, computed %08x)",
		            le_get32(*buf + 4), crc), 0;
	return len;
}

// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above
// U+10FFFF.
static int valid_utf8(const unsigned char *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned c = p[i];
		size_t k;
		unsigned lo = 0x80, hi = 0xbf;
		if (c < 0x80) { i++; continue; }
		else if (c >= 0xc2 && c <= 0xdf) k = 1;
		else if (c == 0xe0) { k = 2; lo = 0xa0; }
		else if (c == 0xed) { k = 2; hi = 0x9f; }
		else if (c >= 0xe1 && c <= 0xef) k = 2;
		else if (c == 0xf0) { k = 3; lo = 0x90; }
		else if (c >= 0xf1 && c <= 0xf3) k = 3;
		else if (c == 0xf4) { k = 3; hi = 0x8f; }
		else return 0;
		if (n - i <= k)
			return 0;
		if (p[i + 1] < lo || p[i + 1] > hi)
			return 0;
		for (size_t j = 2; j <= k; j++)
			if (p[i + j] < 0x80 || p[i + j] > 0xbf)
				return 0;
		i += k + 1;
	}
	return 1;
}

// Parses a metadata descriptor into out (empty).  A key may appear only
// once within one chunk; the caller decides how the chunk joins the stream.
static int parse_meta(Stream *s, const unsigned char *c, uint64_t start, StrMap *out)
{
	uint32_t desc = le_get32(c + 16), count = le_get32(c + 20);
	uint64_t len = le_get64(c + 8);
	if (len != align64(CHUNK_HDR + (size_t)desc))
		return fail(s, start, "chunk length does not match its descriptor");
	// Each entry takes at least 9 bytes, so a count beyond desc/9 is a lie
	// told before a single entry is read.
	if (count > desc / STREAM_META_ENTRY_MIN)
		return fail(s, start, "%u metadata entries cannot fit a descriptor of %u bytes",
		            count, desc);
	const unsigned char *p = c + CHUNK_HDR, *end = p + desc;
	for (uint32_t i = 0; i < count; i++) {
		uint32_t kl, vl;
		if (end - p < 4 || (kl = le_get32(p), (uint64_t)(end - p - 4) < kl))
			return fail(s, start, "metadata entry %u: key runs past the descriptor", i);
		const char *k = (const char *)p + 4;
		p += 4 + kl;
		if (!tensor_name_valid(k, kl))
			return fail(s, start, "metadata entry %u: invalid key", i);
		if (end - p < 4 || (vl = le_get32(p), (uint64_t)(end - p - 4) < vl))
			return fail(s, start, "metadata entry %u: value runs past the descriptor", i);
		const unsigned char *v = p + 4;
		p += 4 + vl;
		if (memchr(v, 0, vl))
			return fail(s, start, "metadata %.*s: NUL byte in value", (int)kl, k);
		if (!valid_utf8(v, vl))
			return fail(s, start, "metadata %.*s: value is not UTF-8", (int)kl, k);
		if (!strmap_add(out, k, kl, (const char *)v, vl))
			return fail(s, start, "metadata key %.*s appears twice", (int)kl, k);
	}
	if (p != end)
		return fail(s, start, "%zu stray bytes after the metadata", (size_t)(end - p));
	for (const unsigned char *q = end; q < c + len; q++)
		if (*q)
			return fail(s, start, "nonzero padding after the metadata");
	return 0;
}

// Joins the end chunk's metadata (parsed into t) to the header's.  Only the
// header sets a key it holds: an end chunk that repeated one would give a
// reader two answers (one at open, another at the end), so it is refused.
// Read again after a seek, the end chunk is the one already joined.
static int join_trailer(Stream *s, StrMap *t, uint64_t start)
{
	if (s->trailer_read) {
		strmap_free(t);
		return 0;
	}
	for (size_t i = 0; i < t->n; i++)
		if (strmap_find(&s->meta.map, t->e[i].key, t->e[i].klen) >= 0) {
			fail(s, start, "metadata key %s is in both the header and the end chunk",
			     t->e[i].key);
			strmap_free(t);
			return -1;
		}
	for (size_t i = 0; i < t->n; i++)
		strmap_add(&s->meta.map, t->e[i].key, t->e[i].klen, t->e[i].val, t->e[i].vlen);
	s->trailer.map = *t;
	s->trailer_read = 1;
	return 0;
}

static Stream *open_common(Stream *s)
{
	unsigned char pre[PREAMBLE];
	size_t got = src_read(s, pre, PREAMBLE);
	if (src_error(s)) {
		fail(s, got, "read error: %s", strerror(errno));
		goto bad;
	}
	if (got == 0) {
		fail(s, 0, "empty stream");
		goto bad;
	}
	if (got < 8 || memcmp(pre, MAGIC, 8) != 0) {
		fail(s, 0, "not a cnnpipe tensor stream (bad magic)");
		goto bad;
	}
	if (got < PREAMBLE) {
		fail(s, got, "truncated preamble");
		goto bad;
	}
	uint32_t version = le_get32(pre + 8);
	if (version != VERSION) {
		fail(s, 8, "unsupported format version %u (this reader knows %d)", version, VERSION);
		goto bad;
	}
	for (int i = 12; i < PREAMBLE; i++)
		if (pre[i]) {
			fail(s, i, "nonzero reserved byte in the preamble");
			goto bad;
		}
	uint64_t start = s->offset;
	if (!read_chunk(s, &s->chunk, &s->chunkcap, "CNPH"))
		goto bad;
	if (le_get64(s->chunk + 24) != 0) {
		fail(s, start, "header chunk sequence field is not 0");
		goto bad;
	}
	if (parse_meta(s, s->chunk, start, &s->meta.map) < 0)
		goto bad;
	return s;
bad:
	if (s->f && s->f != stdin)
		fclose(s->f);
	stream_free(s);
	return NULL;
}

Stream *stream_open_read(const char *path)
{
	Stream *s = stream_new(path, 0);
	if (strcmp(path, "-") == 0) {
		s->f = stdin;
	} else if (!(s->f = fopen(path, "rb"))) {
		snprintf(last_error, sizeof last_error, "%s: %s", path, strerror(errno));
		stream_free(s);
		return NULL;
	}
	return open_common(s);
}

Stream *stream_open_mem(const void *buf, size_t len, const char *name)
{
	Stream *s = stream_new(name, 0);
	s->mem = buf ? buf : (const void *)"";
	s->memlen = len;
	return open_common(s);
}

// Decodes a record chunk (already CRC-checked, in r->buf) into r's table.
static int parse_record(Stream *s, Record *r, uint64_t start)
{
	const unsigned char *c = r->buf;
	uint64_t len = le_get64(c + 8);
	uint32_t desc = le_get32(c + 16), count = le_get32(c + 20);
	if (count > STREAM_MAX_TENSORS)
		return fail(s, start, "record has %u tensors (at most %d)", count, STREAM_MAX_TENSORS);
	const unsigned char *p = c + CHUNK_HDR, *end = p + desc;
	uint64_t pos = CHUNK_HDR + (uint64_t)desc;   // first byte not yet accounted for
	r->n = 0;
	for (uint32_t i = 0; i < count; i++) {
		if (end - p < 4)
			return fail(s, start, "tensor %u: descriptor truncated", i);
		uint16_t nl = le_get16(p);
		if ((size_t)(end - p) < 2u + nl + 2u)
			return fail(s, start, "tensor %u: descriptor truncated", i);
		const unsigned char *name = p + 2;
		if (!tensor_name_valid((const char *)name, nl))
			return fail(s, start, "tensor %u: invalid name", i);
		int dtype = p[2 + nl];
		int ndim = p[3 + nl];
		p += 4 + nl;
		char nm[TENSOR_NAME_MAX + 1];
		memcpy(nm, name, nl);
		nm[nl] = 0;
		if (!dtype_size(dtype))
			return fail(s, start, "tensor %s: unknown dtype code %d", nm, dtype);
		if (ndim > TENSOR_MAX_DIMS)
			return fail(s, start, "tensor %s: %d dimensions (at most %d)", nm, ndim, TENSOR_MAX_DIMS);
		if (dtype == DT_STR && ndim != 1)
			return fail(s, start, "tensor %s: a str tensor has 1 dimension, not %d", nm, ndim);
		if ((size_t)(end - p) < 8u * ndim + 16u)
			return fail(s, start, "tensor %s: descriptor truncated", nm);
		Tensor *t = record_slot(r);
		memset(t, 0, sizeof *t);
		memcpy(t->name, nm, nl + 1);
		t->dtype = dtype;
		t->ndim = ndim;
		uint64_t nbytes = dtype_size(dtype);
		for (int d = 0; d < ndim; d++) {
			uint64_t v = le_get64(p + 8 * d);
			if (v >= MAX_DIM)
				return fail(s, start, "tensor %s: dimension %d is %lld (negative or absurd)",
				            nm, d, (long long)v);
			if (v == 0 && dtype != DT_STR)
				return fail(s, start, "tensor %s: dimension %d is zero", nm, d);
			t->dims[d] = (int64_t)v;
			if (v && nbytes > STREAM_MAX_RECORD_BYTES / v)
				return fail(s, start, "tensor %s: byte size overflows the record cap", nm);
			nbytes *= v;
		}
		p += 8 * ndim;
		uint64_t off = le_get64(p), nb = le_get64(p + 8);
		p += 16;
		if (nb != nbytes)
			return fail(s, start, "tensor %s: %llu data bytes, its shape needs %llu", nm,
			            (unsigned long long)nb, (unsigned long long)nbytes);
		// The layout is canonical: each tensor's data start at the first
		// 64-byte boundary after the previous one's (after the descriptor
		// for the first), so a stream has exactly one encoding.
		if (off != align64(pos))
			return fail(s, start, "tensor %s: data offset %llu, expected %llu", nm,
			            (unsigned long long)off, (unsigned long long)align64(pos));
		if (off > len || nb > len - off)
			return fail(s, start, "tensor %s: data lie outside the chunk", nm);
		for (uint64_t q = pos; q < off; q++)
			if (c[q])
				return fail(s, start, "tensor %s: nonzero padding before its data", nm);
		for (int j = 0; j < r->n - 1; j++)
			if (strcmp(r->t[j].name, nm) == 0)
				return fail(s, start, "tensor name %s appears twice", nm);
		t->nbytes = nb;
		t->offset = off;
		t->data = r->buf + off;
		pos = off + nb;
	}
	if (p != end)
		return fail(s, start, "%zu stray bytes after the tensor descriptors", (size_t)(end - p));
	if (align64(pos) != len)
		return fail(s, start, "chunk length %llu does not end with its last tensor",
		            (unsigned long long)len);
	for (uint64_t q = pos; q < len; q++)
		if (c[q])
			return fail(s, start, "nonzero padding at the end of the record");
	r->used = len;
	return 0;
}

int stream_read_record(Stream *s, Record *r)
{
	if (s->failed)
		return -1;
	if (s->ended || (s->has_stop && s->count >= s->stop_at))
		return 0;
	uint64_t start = s->offset;
	// The record's own buffer receives the chunk; its tensors are views into it.
	r->n = 0;
	r->used = 0;
	if (!read_chunk(s, &r->buf, &r->bufcap, NULL))
		return -1;
	const unsigned char *c = r->buf;
	if (memcmp(c, "CNPE", 4) == 0) {
		if (le_get64(c + 24) != s->count)
			return fail(s, start, "end chunk counts %llu records, the stream had %llu",
			            (unsigned long long)le_get64(c + 24), (unsigned long long)s->count);
		StrMap t;
		strmap_init(&t);
		if (parse_meta(s, c, start, &t) < 0) {
			strmap_free(&t);
			return -1;
		}
		if (join_trailer(s, &t, start) < 0)
			return -1;
		unsigned char extra;
		if (src_read(s, &extra, 1) != 0)
			return fail(s, s->offset - 1, "data after the end chunk");
		s->ended = 1;
		return 0;
	}
	if (memcmp(c, "CNPR", 4) != 0)
		return fail(s, start, "unexpected header chunk inside the stream");
	if (le_get64(c + 24) != s->count)
		return fail(s, start, "record sequence number %llu, expected %llu (records lost "
		            "or reordered)", (unsigned long long)le_get64(c + 24),
		            (unsigned long long)s->count);
	if (parse_record(s, r, start) < 0) {
		r->n = 0;
		return -1;
	}
	r->index = s->count++;
	return 1;
}

int stream_skip_record(Stream *s)
{
	if (s->failed)
		return -1;
	if (s->ended || (s->has_stop && s->count >= s->stop_at))
		return 0;
	uint64_t start = s->offset;
	unsigned char hdr[CHUNK_HDR];
	uint64_t len = read_chunk_header(s, hdr, NULL);
	if (!len)
		return -1;
	if (memcmp(hdr, "CNPR", 4) != 0) {
		// the end chunk (or a misplaced header): read it whole, checked
		Record r;
		record_init(&r);
		int k = stream_seek_record(s, start, s->count) < 0 ? -1 : stream_read_record(s, &r);
		record_free(&r);
		return k;   // 0 or -1: the chunk is no record
	}
	if (le_get64(hdr + 24) != s->count)
		return fail(s, start, "record sequence number %llu, expected %llu (records lost "
		            "or reordered)", (unsigned long long)le_get64(hdr + 24),
		            (unsigned long long)s->count);
	uint64_t next = start + len, size = 0;
	struct stat st;
	if (s->mem)
		size = s->memlen;
	else if (fstat(fileno(s->f), &st) == 0 && S_ISREG(st.st_mode))
		size = (uint64_t)st.st_size;
	else
		return fail(s, start, "cannot skip a record: not a file");
	if (next > size)
		return fail(s, size, "truncated chunk: %llu of %llu bytes",
		            (unsigned long long)(size - start), (unsigned long long)len);
	uint64_t count = s->count + 1;
	if (stream_seek_record(s, next, count) < 0)
		return -1;
	return 1;
}

uint64_t stream_tell(const Stream *s) { return s->offset; }

int stream_seek_record(Stream *s, uint64_t offset, uint64_t index)
{
	if (s->writing)
		return fail(s, offset, "cannot seek a stream being written");
	if (offset % 64)
		return fail(s, offset, "cannot seek: not a chunk offset (a multiple of 64)");
	if (s->mem) {
		if (offset > s->memlen)
			return fail(s, offset, "cannot seek past the end (%zu bytes)", s->memlen);
		s->mempos = (size_t)offset;
	} else if (offset > (uint64_t)INT64_MAX) {
		return fail(s, offset, "cannot seek: offset out of range");
	} else if (fseeko(s->f, (off_t)offset, SEEK_SET) != 0) {
		return fail(s, offset, "cannot seek: %s", strerror(errno));
	}
	s->offset = offset;
	s->count = index;
	s->ended = 0;
	s->failed = 0;
	return 0;
}

void stream_stop_at(Stream *s, uint64_t index)
{
	s->has_stop = 1;
	s->stop_at = index;
}

const char *stream_meta_get(const Stream *s, const char *key)
{
	const char *v = s->writing ? meta_find(&s->trailer, key) : NULL;
	return v ? v : meta_find(&s->meta, key);
}

int stream_meta_len(const Stream *s) { return (int)s->meta.map.n; }
const char *stream_meta_key(const Stream *s, int i) { return s->meta.map.e[i].key; }
const char *stream_meta_val(const Stream *s, int i) { return s->meta.map.e[i].val; }
int stream_trailer_len(const Stream *s) { return (int)s->trailer.map.n; }
const char *stream_trailer_key(const Stream *s, int i) { return s->trailer.map.e[i].key; }
const char *stream_trailer_val(const Stream *s, int i) { return s->trailer.map.e[i].val; }

// ---- writing ----------------------------------------------------------------

Stream *stream_open_write(const char *path)
{
	Stream *s = stream_new(path, 1);
	atomic_open(&s->out, path);
	// A large stdio buffer: fewer write calls for big records.
	setvbuf(s->out.f, NULL, _IOFBF, 1 << 20);
	return s;
}

// Sets key = val in l (the header's or the end chunk's), dying, with the
// file's name, on what no reader would accept: the one size limit is the
// descriptor cap, the same the reader enforces, so whatever was read can be
// written again.
static void meta_put(Stream *s, MetaList *l, const char *key, const char *val,
                     const char *chunk)
{
	size_t kl = strlen(key), vl = strlen(val);
	if (!tensor_name_valid(key, kl))
		die("%s: invalid metadata key '%s'", s->label, key);
	if (!valid_utf8((const unsigned char *)val, vl))
		die("%s: metadata %s: value is not UTF-8", s->label, key);
	const char *old = meta_find(l, key);
	size_t desc = l->desc - (old ? entry_bytes(kl, strlen(old)) : 0);
	if (vl > STREAM_MAX_DESC_BYTES || desc + entry_bytes(kl, vl) > STREAM_MAX_DESC_BYTES)
		die("%s: metadata %s: the %s's metadata would exceed the descriptor cap of "
		    "%u bytes", s->label, key, chunk, STREAM_MAX_DESC_BYTES);
	strmap_set(&l->map, key, val);
	l->desc = desc + entry_bytes(kl, vl);
}

void stream_meta_set(Stream *s, const char *key, const char *val)
{
	if (s->header_written) {
		stream_meta_set_end(s, key, val);
		return;
	}
	if (meta_find(&s->trailer, key))
		die("%s: metadata %s: already set for the end chunk, so not allowed in the "
		    "header", s->label, key);
	meta_put(s, &s->meta, key, val, "header");
}

void stream_meta_set_end(Stream *s, const char *key, const char *val)
{
	if (meta_find(&s->meta, key))
		die("%s: metadata %s is in the header: the end chunk may not set it again",
		    s->label, key);
	meta_put(s, &s->trailer, key, val, "end chunk");
}

void stream_meta_setf(Stream *s, const char *key, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	stream_meta_set(s, key, buf);
}

void stream_meta_copy(Stream *s, const Stream *src)
{
	for (size_t i = 0; i < src->meta.map.n; i++)
		stream_meta_set(s, src->meta.map.e[i].key, src->meta.map.e[i].val);
}

static int out_write(Stream *s, const void *p, size_t n, uint32_t *crc, int first)
{
	if (!first)
		*crc = crc32_update(*crc, p, n);
	if (n && fwrite(p, 1, n, s->out.f) != n) {
		snprintf(s->err, sizeof s->err, "%s: write error: %s", s->label, strerror(errno));
		s->failed = 1;
		return -1;
	}
	return 0;
}

static const unsigned char ZEROS[64];

// Builds a header or end chunk from a metadata list and writes it.
static int write_meta_chunk(Stream *s, const char *tag, const MetaList *l, uint64_t seq)
{
	const StrMap *m = &l->map;
	size_t desc = l->desc;
	size_t len = align64(CHUNK_HDR + desc);
	scratch(s, len);
	unsigned char *c = s->chunk;
	memset(c, 0, len);
	memcpy(c, tag, 4);
	le_put64(c + 8, len);
	le_put32(c + 16, (uint32_t)desc);
	le_put32(c + 20, (uint32_t)m->n);
	le_put64(c + 24, seq);
	unsigned char *p = c + CHUNK_HDR;
	for (size_t i = 0; i < m->n; i++) {
		const StrMapEntry *e = &m->e[i];
		le_put32(p, (uint32_t)e->klen);
		memcpy(p + 4, e->key, e->klen);
		p += 4 + e->klen;
		le_put32(p, (uint32_t)e->vlen);
		memcpy(p + 4, e->val, e->vlen);
		p += 4 + e->vlen;
	}
	le_put32(c + 4, crc32_update(0, c + 8, len - 8));
	uint32_t dummy = 0;
	return out_write(s, c, len, &dummy, 1);
}

static int write_header(Stream *s)
{
	if (s->header_written)
		return 0;
	unsigned char pre[PREAMBLE] = { 0 };
	memcpy(pre, MAGIC, 8);
	le_put32(pre + 8, VERSION);
	uint32_t dummy = 0;
	if (out_write(s, pre, PREAMBLE, &dummy, 1) < 0 ||
	    write_meta_chunk(s, "CNPH", &s->meta, 0) < 0)
		return -1;
	s->header_written = 1;
	return 0;
}

int stream_write_header(Stream *s)
{
	return s->failed ? -1 : write_header(s);
}

int stream_write_record(Stream *s, const Record *r)
{
	if (s->failed || write_header(s) < 0)
		return -1;
	size_t desc = 0;
	for (int i = 0; i < r->n; i++)
		desc += 4 + strlen(r->t[i].name) + 8 * (size_t)r->t[i].ndim + 16;
	if (desc > STREAM_MAX_DESC_BYTES)
		die("%s: record %llu: descriptor of %zu bytes exceeds the cap of %u bytes",
		    s->label, (unsigned long long)s->count, desc, STREAM_MAX_DESC_BYTES);
	size_t dstart = align64(CHUNK_HDR + desc), pos = dstart;
	size_t hlen = dstart;
	scratch(s, hlen);
	unsigned char *c = s->chunk;
	memset(c, 0, hlen);
	unsigned char *p = c + CHUNK_HDR;
	for (int i = 0; i < r->n; i++) {
		const Tensor *t = &r->t[i];
		size_t nl = strlen(t->name);
		le_put16(p, (uint16_t)nl);
		memcpy(p + 2, t->name, nl);
		p[2 + nl] = (unsigned char)t->dtype;
		p[3 + nl] = (unsigned char)t->ndim;
		p += 4 + nl;
		for (int d = 0; d < t->ndim; d++, p += 8)
			le_put64(p, (uint64_t)t->dims[d]);
		le_put64(p, pos);
		le_put64(p + 8, t->nbytes);
		p += 16;
		pos = align64(pos + t->nbytes);
	}
	size_t len = r->n ? pos : dstart;
	if (len > STREAM_MAX_RECORD_BYTES)
		die("%s: record of %zu bytes exceeds the cap", s->label, len);
	memcpy(c, "CNPR", 4);
	le_put64(c + 8, len);
	le_put32(c + 16, (uint32_t)desc);
	le_put32(c + 20, (uint32_t)r->n);
	le_put64(c + 24, s->count);
	// The CRC covers everything after its own field: compute it over the
	// pieces first, then write them.
	uint32_t crc = crc32_update(0, c + 8, hlen - 8);
	size_t at = dstart;
	for (int i = 0; i < r->n; i++) {
		const Tensor *t = &r->t[i];
		crc = crc32_update(crc, t->data, t->nbytes);
		at += t->nbytes;
		crc = crc32_update(crc, ZEROS, align64(at) - at);
		at = align64(at);
	}
	le_put32(c + 4, crc);
	uint32_t dummy = 0;
	if (out_write(s, c, hlen, &dummy, 1) < 0)
		return -1;
	at = dstart;
	for (int i = 0; i < r->n; i++) {
		const Tensor *t = &r->t[i];
		if (out_write(s, t->data, t->nbytes, &dummy, 1) < 0)
			return -1;
		at += t->nbytes;
		if (out_write(s, ZEROS, align64(at) - at, &dummy, 1) < 0)
			return -1;
		at = align64(at);
	}
	s->count++;
	return 0;
}

int stream_finish(Stream *s)
{
	int rc = -1;
	if (!s->failed && write_header(s) == 0 &&
	    write_meta_chunk(s, "CNPE", &s->trailer, s->count) == 0) {
		atomic_commit(&s->out);   // dies naming the file on a failed flush
		rc = 0;
	} else {
		atomic_abort(&s->out);
	}
	if (rc < 0)
		snprintf(last_error, sizeof last_error, "%s", s->err);
	stream_free(s);
	return rc;
}

void stream_close(Stream *s)
{
	if (!s)
		return;
	if (s->writing)
		atomic_abort(&s->out);
	else if (s->f && s->f != stdin)
		fclose(s->f);
	stream_free(s);
}

// ---- die-on-error forms ------------------------------------------------------

Stream *xstream_open_read(const char *path)
{
	Stream *s = stream_open_read(path);
	if (!s)
		die("%s", stream_last_error());
	return s;
}

Stream *xstream_open_write(const char *path)
{
	return stream_open_write(path);
}

int xstream_read_record(Stream *s, Record *r)
{
	int rc = stream_read_record(s, r);
	if (rc < 0)
		die("%s", s->err);
	return rc;
}

void xstream_write_record(Stream *s, const Record *r)
{
	if (stream_write_record(s, r) < 0)
		die("%s", s->err);
}

void xstream_write_header(Stream *s)
{
	if (stream_write_header(s) < 0)
		die("%s", s->err);
}

void xstream_finish(Stream *s)
{
	if (stream_finish(s) < 0)
		die("%s", stream_last_error());
}
