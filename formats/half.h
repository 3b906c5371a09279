// 16-bit floats (IEEE binary16 and bfloat16) widened to f32, exactly.
#ifndef CNNPIPE_HALF_H
#define CNNPIPE_HALF_H
#include <stdint.h>
float f16_to_f32(uint16_t h);
float bf16_to_f32(uint16_t h);
#endif
