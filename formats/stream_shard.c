// Shards of a stream (stream_shard.h).
#include <stdlib.h>
#include <string.h>
#include "stream_shard.h"
#include "libcommon/util/alloc.h"
#include "libcommon/util/err.h"

int stream_shard(Stream *s, long i, long n, uint64_t *lo, uint64_t *hi, uint64_t *total)
{
	// A pipe: the first read would consume what the shard needs.
	uint64_t first = stream_tell(s), base = stream_count(s);
	if (stream_seek_record(s, first, base) < 0)
		return -1;
	uint64_t *at = NULL, end = first;
	size_t cap = 0, N = 0;
	for (;;) {
		uint64_t off = stream_tell(s);
		int k = stream_skip_record(s);
		if (k < 0) {
			free(at);
			return -1;
		}
		if (k == 0) {
			end = off;   // the end chunk: where an empty last shard begins
			break;
		}
		if (N == cap)
			at = xrealloc(at, (cap = cap ? 2 * cap : 1024) * sizeof *at);
		at[N++] = off;
	}
	*total = N;
	*lo = (uint64_t)N * (uint64_t)(i - 1) / (uint64_t)n;
	*hi = (uint64_t)N * (uint64_t)i / (uint64_t)n;
	int rc = stream_seek_record(s, *lo < N ? at[*lo] : end, base + *lo);
	free(at);
	if (rc < 0)
		return -1;
	if (*hi < N)
		stream_stop_at(s, base + *hi);
	*lo += base;
	*hi += base;
	return 0;
}

void stream_shard_counter(Stream *out, const Stream *in, const char *key, int last_shard)
{
	const char *v = stream_meta_get(in, key);
	if (v)
		stream_meta_set_end(out, key, last_shard ? v : "0");
}

void shard_option(const char *arg, long *i, long *n)
{
	char *e;
	const char *b = strchr(arg, '/');
	long a = strtol(arg, &e, 10), c = 0;
	int ok = b && e == b && *arg >= '0' && *arg <= '9' && b[1] >= '0' && b[1] <= '9';
	if (ok) {
		c = strtol(b + 1, &e, 10);
		ok = !*e && a >= 1 && c >= 1 && c <= 1000000 && a <= c;
	}
	if (!ok)
		die_usage("--shard: expected i/n with 1 <= i <= n, got '%s'", arg);
	*i = a;
	*n = c;
}
