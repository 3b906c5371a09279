// A PNG's compressed pixel data checked against its header before
// stb_image inflates it: stb_image grows its buffer for whatever the IDAT
// stream holds (up to 4 GB), and a few hundred KB of deflate can make
// hundreds of MB for a 100x100 image.
#ifndef CNNPIPE_PNG_CHECK_H
#define CNNPIPE_PNG_CHECK_H
#include <stddef.h>

// buf: a whole PNG file.  0 when its IDAT data inflates to at most twice
// the rows its header's pixels need (or is no PNG: not this check's to
// say); -1 with the reason in err when it would make more, or when its
// chunks or its zlib stream are broken.  Inflates for real only when deflate's
// limit (1032:1) leaves it in doubt: data compressed over 500 times.
int png_check_inflate(const unsigned char *buf, size_t len, char *err, size_t errlen);

#endif
