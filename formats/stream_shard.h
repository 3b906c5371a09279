// Shard i of n of a stream's records, for the stages that map records one
// by one (precompute, tta): the records [N(i-1)/n, Ni/n) of its N, the
// split imgprep --shard makes of its files, so that the shards' outputs
// joined with `tensor cat` are the bytes of the whole's.
#ifndef CNNPIPE_STREAM_SHARD_H
#define CNNPIPE_STREAM_SHARD_H
#include <stdint.h>
#include "formats/stream.h"

// Counts the records of a stream opened for reading and not yet read (a
// chunk header per record, stream_skip_record: the shard's own records get
// every check when they are read; the end chunk is read, so its metadata is
// at hand), then positions it at the shard's first record and
// makes it end after the shard's last.  1 <= i <= n.  Returns 0 with the
// shard's records in [*lo, *hi) and the whole's count in *total, or -1 with
// stream_error (a pipe cannot be sharded: it cannot be read twice).
int stream_shard(Stream *s, long i, long n, uint64_t *lo, uint64_t *hi, uint64_t *total);

// Copies the input's end-chunk counter `key` (e.g. skipped) to out's end
// chunk, when the input has it: its value from the last shard (or from an
// unsharded run), 0 from a shard before the end, so that `tensor cat`'s sum
// of the shards' counters is the whole's.
void stream_shard_counter(Stream *out, const Stream *in, const char *key, int last_shard);

// The argument of a --shard option, "i/n" (1 <= i <= n <= 1000000), as
// every sharded stage takes it; anything else is a usage error (exit 2).
void shard_option(const char *arg, long *i, long *n);

#endif
