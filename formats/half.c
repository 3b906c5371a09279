#include <string.h>
#include "half.h"

float f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16;
	uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff, bits;
	if (e == 0x1f) {
		bits = sign | 0x7f800000u | (m << 13);      // inf / nan
	} else if (e == 0) {
		if (m == 0) {
			bits = sign;
		} else {                                   // subnormal: normalise
			int sh = 0;
			while (!(m & 0x400)) {
				m <<= 1;
				sh++;
			}
			m &= 0x3ff;
			bits = sign | ((uint32_t)(127 - 15 + 1 - sh) << 23) | (m << 13);
		}
	} else {
		bits = sign | ((e + 127 - 15) << 23) | (m << 13);
	}
	float f;
	memcpy(&f, &bits, 4);
	return f;
}

float bf16_to_f32(uint16_t h)
{
	uint32_t bits = (uint32_t)h << 16;
	float f;
	memcpy(&f, &bits, 4);
	return f;
}
