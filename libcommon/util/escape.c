// Escaping text for messages (escape.h).
#include <stdio.h>
#include <string.h>
#include "alloc.h"
#include "escape.h"

// The length of the well-formed UTF-8 sequence at p (at most n bytes), 0
// when none starts there (RFC 3629: no overlong forms, no surrogates,
// nothing above U+10FFFF).
static size_t utf8_len(const unsigned char *p, size_t n)
{
	unsigned c = p[0];
	size_t len;
	unsigned lo = 0x80, hi = 0xBF;   // the second byte's range
	if (c >= 0xC2 && c <= 0xDF) {
		len = 2;
	} else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else {
		return 0;
	}
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t k = 2; k < len; k++)
		if (p[k] < 0x80 || p[k] > 0xBF)
			return 0;
	// C1 controls (U+0080..U+009F): a terminal may take U+009B for CSI.
	if (c == 0xC2 && p[1] <= 0x9F)
		return 0;
	return len;
}

char *text_escape(const char *s, size_t max)
{
	size_t n = strlen(s);
	size_t lim = max && n > max ? max : n;
	// At most 4 output bytes per input byte, and the tail.
	size_t cap = 4 * lim + 48;
	char *out = xmalloc(cap), *o = out;
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; i < lim;) {
		unsigned c = p[i];
		const char *two = c == '\n' ? "\\n" : c == '\t' ? "\\t" : c == '\r' ? "\\r"
		                : c == '\\' ? "\\\\" : NULL;
		size_t u;
		if (two) {
			memcpy(o, two, 2);
			o += 2;
			i++;
		} else if (c >= 0x20 && c < 0x7F) {
			*o++ = (char)c;
			i++;
		} else if (c >= 0x80 && (u = utf8_len(p + i, lim - i)) > 0) {
			memcpy(o, p + i, u);
			o += u;
			i += u;
		} else {
			o += snprintf(o, 5, "\\x%02x", c);
			i++;
		}
	}
	if (lim < n)
		o += snprintf(o, 48, " ... (%zu bytes)", n);
	*o = 0;
	return out;
}
