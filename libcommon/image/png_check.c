// The inflated size of a PNG's pixel data (png_check.h).
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "stb_image.h"
#include "libcommon/util/alloc.h"
#include "libcommon/util/err.h"
#include "libcommon/util/le.h"
#include "png_check.h"

// Deflate codes at best 258 bytes (the longest match) in 2 bits.
#define DEFLATE_MAX_RATIO 1032

int png_check_inflate(const unsigned char *buf, size_t len, char *err, size_t errlen)
{
	if (len < 33 || memcmp(buf, "\x89PNG\r\n\x1a\n", 8) != 0)
		return 0;
	// The chunks: length, type, data, CRC.  CgBI (Apple's): a raw deflate
	// stream, no zlib header.
	uint64_t w = 0, h = 0, idat = 0;
	unsigned bits = 0;
	int cgbi = 0;
	for (size_t p = 8; p + 12 <= len;) {
		uint32_t n = be_get32(buf + p);
		const unsigned char *type = buf + p + 4;
		if (n > len - p - 12)
			return err_set(err, errlen, "bad PNG: chunk runs past the end of the file");
		if (memcmp(type, "CgBI", 4) == 0)
			cgbi = 1;
		if (memcmp(type, "IHDR", 4) == 0 && n >= 13) {
			w = be_get32(buf + p + 8);
			h = be_get32(buf + p + 12);
			// Bits a pixel: depth times the channels of its colour type
			// (grey, -, RGB, palette index, grey+alpha, -, RGBA).
			static const unsigned chans[7] = { 1, 0, 3, 1, 2, 0, 4 };
			unsigned depth = buf[p + 16], ct = buf[p + 17];
			bits = ct < 7 ? depth * chans[ct] : 0;
		}
		if (memcmp(type, "IDAT", 4) == 0)
			idat += n;
		if (memcmp(type, "IEND", 4) == 0)
			break;
		p += 12 + (size_t)n;
	}
	if (!w || !h || !bits || !idat || w > 1u << 20 || h > 1u << 20)
		return 0;   // the caller's size checks or stb_image say what is wrong
	// The rows, interlaced or not: the pixels, and per row of each of the 7
	// passes a filter byte and a part-filled last byte.
	uint64_t raw = (w * h * bits + 7) / 8 + 14 * h + 16;
	if (idat * DEFLATE_MAX_RATIO <= 2 * raw)
		return 0;
	if (2 * raw + 1 > INT32_MAX || idat > INT32_MAX)
		return err_set(err, errlen, "bad PNG: %llux%llu is too large", (unsigned long long)w,
		               (unsigned long long)h);
	char *in = xmalloc(idat), *out = xmalloc(2 * raw + 1);
	size_t k = 0;
	for (size_t p = 8; p + 12 <= len;) {
		uint32_t n = be_get32(buf + p);
		if (memcmp(buf + p + 4, "IDAT", 4) == 0) {
			memcpy(in + k, buf + p + 8, n);
			k += n;
		}
		if (memcmp(buf + p + 4, "IEND", 4) == 0)
			break;
		p += 12 + (size_t)n;
	}
	int got = cgbi ? stbi_zlib_decode_noheader_buffer(out, (int)(2 * raw + 1), in, (int)idat)
	               : stbi_zlib_decode_buffer(out, (int)(2 * raw + 1), in, (int)idat);
	free(in);
	free(out);
	if (got < 0 || (uint64_t)got > 2 * raw)
		return err_set(err, errlen, "bad PNG: pixel data that does not inflate, or inflates "
		               "to over twice what %llux%llu needs", (unsigned long long)w,
		               (unsigned long long)h);
	return 0;
}
