// A map of strings to strings that keeps insertion order, with a hash index
// so that adding or finding a key costs O(1) expected whatever the number of
// keys: stream metadata may hold a million keys from an untrusted file.  The
// hash is SipHash-2-4 under a key drawn once per process, so a crafted set of
// keys cannot be made to collide on purpose (hash flooding).
#ifndef CNNPIPE_STRMAP_H
#define CNNPIPE_STRMAP_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
	char *key, *val;
	size_t klen, vlen;
	uint64_t hash;
} StrMapEntry;

typedef struct {
	StrMapEntry *e;   // entries in insertion order
	size_t n, cap;
	uint32_t *slot;   // open addressing: entry index + 1, 0 = empty; at most half full
	size_t nslot;     // a power of two (0 before the first key)
} StrMap;

#define STRMAP_MAX ((size_t)1 << 30)   // entries; the index stores them in 32 bits

void strmap_init(StrMap *m);
void strmap_free(StrMap *m);   // and leaves m empty, ready for reuse
// The index of key (klen bytes, no NUL needed), or -1.
long strmap_find(const StrMap *m, const char *key, size_t klen);
const char *strmap_get(const StrMap *m, const char *key);   // NULL if absent
// Adds key = val at the end unless key is present; returns 1 if added, 0 if
// present (m unchanged).  Copies both; neither may hold a NUL byte.
int strmap_add(StrMap *m, const char *key, size_t klen, const char *val, size_t vlen);
// Sets key = val: a present key keeps its place and gets the new value.
void strmap_set(StrMap *m, const char *key, const char *val);
// Slots this thread's adds and sets have examined so far: the unit tests
// count them to check that building a map of n keys costs O(n).
uint64_t strmap_probes(void);
// SipHash-2-4 of p under the 128-bit key k (little-endian halves k0, k1).
uint64_t siphash24(uint64_t k0, uint64_t k1, const void *p, size_t n);

#endif
