// CRC-32 as in zlib, PNG and Python's zlib.crc32 (reflected polynomial
// 0xEDB88320, initial value and final xor 0xFFFFFFFF).
#ifndef CNNPIPE_CRC32_H
#define CNNPIPE_CRC32_H
#include <stddef.h>
#include <stdint.h>
// Continues a running CRC: crc32_update(0, ...) starts one.
uint32_t crc32_update(uint32_t crc, const void *buf, size_t n);
#endif
