// The insertion-ordered string map (strmap.h): entries in an array, an
// open-addressing index of entry numbers beside it, linear probing.
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include "alloc.h"
#include "err.h"
#include "le.h"
#include "strmap.h"

// ---- SipHash-2-4 (Aumasson and Bernstein, 2012) ------------------------------

static uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

#define SIPROUND do { \
	v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32); \
	v2 += v3; v3 = rotl(v3, 16); v3 ^= v2; \
	v0 += v3; v3 = rotl(v3, 21); v3 ^= v0; \
	v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32); } while (0)

uint64_t siphash24(uint64_t k0, uint64_t k1, const void *data, size_t n)
{
	const unsigned char *p = data;
	uint64_t v0 = k0 ^ 0x736f6d6570736575ull, v1 = k1 ^ 0x646f72616e646f6dull;
	uint64_t v2 = k0 ^ 0x6c7967656e657261ull, v3 = k1 ^ 0x7465646279746573ull;
	size_t whole = n & ~(size_t)7;
	for (size_t i = 0; i < whole; i += 8) {
		uint64_t m = le_get64(p + i);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	// The last block: the remaining bytes, and the length's low byte on top.
	uint64_t m = (uint64_t)(n & 0xff) << 56;
	for (size_t i = whole; i < n; i++)
		m |= (uint64_t)p[i] << (8 * (i - whole));
	v3 ^= m;
	SIPROUND;
	SIPROUND;
	v0 ^= m;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

// ---- the process's hash key ------------------------------------------------

static uint64_t hash_key[2];
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void make_key(void)
{
	if (getrandom(hash_key, sizeof hash_key, 0) == (ssize_t)sizeof hash_key)
		return;
	// No entropy source (an old kernel, a sandbox): still different per run.
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	hash_key[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
	hash_key[1] = (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)&ts;
}

static uint64_t hash_of(const char *key, size_t klen)
{
	pthread_once(&key_once, make_key);
	return siphash24(hash_key[0], hash_key[1], key, klen);
}

// ---- the map -------------------------------------------------------------------

static _Thread_local uint64_t probes;

uint64_t strmap_probes(void) { return probes; }

void strmap_init(StrMap *m) { memset(m, 0, sizeof *m); }

void strmap_free(StrMap *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->e[i].key);
		free(m->e[i].val);
	}
	free(m->e);
	free(m->slot);
	strmap_init(m);
}

// The slot holding key, or the empty slot where it would go; counts the
// slots examined into *seen.
static size_t lookup(const StrMap *m, const char *key, size_t klen, uint64_t h,
                     uint64_t *seen)
{
	size_t mask = m->nslot - 1;
	for (size_t j = (size_t)h & mask;; j = (j + 1) & mask) {
		++*seen;
		uint32_t s = m->slot[j];
		if (!s)
			return j;
		const StrMapEntry *e = &m->e[s - 1];
		if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0)
			return j;
	}
}

long strmap_find(const StrMap *m, const char *key, size_t klen)
{
	if (!m->n)
		return -1;
	uint64_t seen = 0;
	uint32_t s = m->slot[lookup(m, key, klen, hash_of(key, klen), &seen)];
	return s ? (long)s - 1 : -1;
}

const char *strmap_get(const StrMap *m, const char *key)
{
	long i = strmap_find(m, key, strlen(key));
	return i < 0 ? NULL : m->e[i].val;
}

// Doubles the index (and re-places every entry) when one more key would fill
// it over half: probe sequences stay short on average.
static void grow_index(StrMap *m)
{
	if (2 * (m->n + 1) <= m->nslot)
		return;
	if (m->n >= STRMAP_MAX)
		die("more than %zu keys in one map", STRMAP_MAX);
	size_t ns = m->nslot ? 2 * m->nslot : 16;
	free(m->slot);
	m->slot = xcalloc(ns, sizeof *m->slot);
	m->nslot = ns;
	for (size_t i = 0; i < m->n; i++) {
		size_t j = (size_t)m->e[i].hash & (ns - 1);
		while (m->slot[j])
			j = (j + 1) & (ns - 1);
		m->slot[j] = (uint32_t)(i + 1);
	}
}

static char *copy(const char *s, size_t n)
{
	char *c = xmalloc(n + 1);
	memcpy(c, s, n);
	c[n] = 0;
	return c;
}

int strmap_add(StrMap *m, const char *key, size_t klen, const char *val, size_t vlen)
{
	grow_index(m);
	uint64_t h = hash_of(key, klen);
	size_t j = lookup(m, key, klen, h, &probes);
	if (m->slot[j])
		return 0;
	if (m->n == m->cap) {
		m->cap = m->cap ? 2 * m->cap : 16;
		m->e = xrealloc(m->e, sizeof *m->e * m->cap);
	}
	m->e[m->n] = (StrMapEntry){ copy(key, klen), copy(val, vlen), klen, vlen, h };
	m->slot[j] = (uint32_t)(++m->n);
	return 1;
}

void strmap_set(StrMap *m, const char *key, const char *val)
{
	size_t klen = strlen(key), vlen = strlen(val);
	if (strmap_add(m, key, klen, val, vlen))
		return;
	uint64_t seen = 0;
	StrMapEntry *e = &m->e[m->slot[lookup(m, key, klen, hash_of(key, klen), &seen)] - 1];
	probes += seen;
	char *v = copy(val, vlen);   // val may be e->val itself
	free(e->val);
	e->val = v;
	e->vlen = vlen;
}
