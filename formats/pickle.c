// A minimal unpickler for torch.save'd state_dicts.  It builds plain data
// (ints, strings, tuples, lists, dicts) and recognises a short whitelist of
// globals by name -- collections.OrderedDict, torch._utils'
// _rebuild_tensor(_v2) and _rebuild_parameter, torch.<Type>Storage -- whose
// effects it models itself.  Nothing from the file is ever executed; any
// other global or opcode is refused by name.  No recursion; every object
// lives in one arena freed by pk_free.
#include <stdlib.h>
#include <string.h>
#include "libcommon/util/alloc.h"
#include "libcommon/util/le.h"
#include "import_internal.h"

struct Pickle {
	PObj **objs;
	size_t nobj, capobj;
	PObj *none, *yes, *no;
	// per load
	PObj **stack;
	size_t sp, capstack;
	size_t marks[PK_MAX_MARKS];
	int nmarks;
	PObj **memo;
	size_t capmemo, nmemo;   // nmemo: distinct slots set (for MEMOIZE)
};

Pickle *pk_new(void)
{
	return xcalloc(1, sizeof(Pickle));
}

void pk_free(Pickle *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nobj; i++) {
		free(p->objs[i]->items);
		free(p->objs[i]->size);
		free(p->objs[i]);
	}
	free(p->objs);
	free(p->stack);
	free(p->memo);
	free(p);
}

static PObj *newobj(Pickle *p, int type)
{
	if (p->nobj >= PK_MAX_OBJECTS)
		return NULL;
	if (p->nobj == p->capobj) {
		p->capobj = p->capobj ? 2 * p->capobj : 256;
		p->objs = xrealloc(p->objs, p->capobj * sizeof *p->objs);
	}
	PObj *o = xcalloc(1, sizeof *o);
	o->type = type;
	p->objs[p->nobj++] = o;
	return o;
}

static void additem(PObj *c, PObj *v)
{
	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 8;
		c->items = xrealloc(c->items, (size_t)c->cap * sizeof *c->items);
	}
	c->items[c->n++] = v;
}

static void push(Pickle *p, PObj *o)
{
	if (p->sp == p->capstack) {
		p->capstack = p->capstack ? 2 * p->capstack : 64;
		p->stack = xrealloc(p->stack, p->capstack * sizeof *p->stack);
	}
	p->stack[p->sp++] = o;
}

static const char *typename(const PObj *o)
{
	static const char *n[] = { "?", "None", "bool", "int", "int", "float",
	                           "str", "tuple", "list", "dict", "global",
	                           "storage", "tensor" };
	return o->type >= PK_NONE && o->type <= PK_TENSOR ? n[o->type] : "?";
}

static int streq(const PObj *o, const char *s)
{
	return o->type == PK_STR && o->slen == strlen(s) &&
	       memcmp(o->s, s, o->slen) == 0;
}

static const struct { const char *name; int st; } storages[] = {
	{ "FloatStorage", ST_F32 }, { "DoubleStorage", ST_F64 },
	{ "HalfStorage", ST_F16 }, { "BFloat16Storage", ST_BF16 },
	{ "LongStorage", ST_I64 }, { "IntStorage", ST_I32 },
	{ "ShortStorage", ST_I16 }, { "CharStorage", ST_I8 },
	{ "ByteStorage", ST_U8 }, { "BoolStorage", ST_BOOL },
};

// Resolves module.name against the whitelist; fills o or returns -1.
static int resolve_global(PObj *o, const char *mod, size_t ml, const char *nm,
                          size_t nl)
{
#define IS(s, l, lit) ((l) == sizeof(lit) - 1 && memcmp(s, lit, l) == 0)
	if (IS(mod, ml, "collections") && IS(nm, nl, "OrderedDict")) {
		o->i = G_ODICT;
		return 0;
	}
	if (IS(mod, ml, "torch._utils")) {
		if (IS(nm, nl, "_rebuild_tensor_v2"))
			o->i = G_REBUILD_V2;
		else if (IS(nm, nl, "_rebuild_tensor"))
			o->i = G_REBUILD;
		else if (IS(nm, nl, "_rebuild_parameter"))
			o->i = G_REBUILD_PARAM;
		else
			return -1;
		return 0;
	}
	if (IS(mod, ml, "torch"))
		for (size_t i = 0; i < sizeof storages / sizeof *storages; i++)
			if (nl == strlen(storages[i].name) &&
			    memcmp(nm, storages[i].name, nl) == 0) {
				o->i = G_STORAGE;
				o->st = storages[i].st;
				return 0;
			}
	return -1;
#undef IS
}

// Reads an int tuple (sizes, strides) of at most TENSOR_MAX_DIMS.
static int int_tuple(const PObj *t, int64_t *out, int *n)
{
	if (t->type != PK_TUPLE || t->n > TENSOR_MAX_DIMS)
		return -1;
	for (int i = 0; i < t->n; i++) {
		if (t->items[i]->type != PK_INT || t->items[i]->i < 0)
			return -1;
		out[i] = t->items[i]->i;
	}
	*n = t->n;
	return 0;
}

// _rebuild_tensor(_v2)(storage, offset, size, stride, ...) -> PK_TENSOR.
static PObj *rebuild(Pickle *p, const PObj *args, char *why, size_t whylen)
{
	const PObj *st = args->items[0], *off = args->items[1];
	if (st->type != PK_STORAGE) {
		snprintf(why, whylen, "tensor rebuilt from a %s, not a storage",
		         typename(st));
		return NULL;
	}
	if (off->type != PK_INT || off->i < 0) {
		snprintf(why, whylen, "bad tensor storage offset");
		return NULL;
	}
	int64_t size[TENSOR_MAX_DIMS], stride[TENSOR_MAX_DIMS];
	int nd, ns;
	if (int_tuple(args->items[2], size, &nd) ||
	    int_tuple(args->items[3], stride, &ns) || nd != ns) {
		snprintf(why, whylen, "bad tensor size/stride (need matching tuples "
		         "of at most %d non-negative ints)", TENSOR_MAX_DIMS);
		return NULL;
	}
	PObj *t = newobj(p, PK_TENSOR);
	if (!t) {
		snprintf(why, whylen, "too many objects");
		return NULL;
	}
	t->storage = (PObj *)st;
	t->offset = off->i;
	t->ndim = nd;
	t->size = xmalloc_array(2 * TENSOR_MAX_DIMS, sizeof(int64_t));
	t->stride = t->size + TENSOR_MAX_DIMS;
	memcpy(t->size, size, sizeof size);
	memcpy(t->stride, stride, sizeof stride);
	return t;
}

// The persistent id of a storage: ('storage', type, key, location, numel)
// in the zip layout, plus view metadata (None or (view_key, offset, numel))
// in the legacy layout.
static PObj *persistent(Pickle *p, const PObj *pid, char *why, size_t whylen)
{
	if (pid->type != PK_TUPLE || (pid->n != 5 && pid->n != 6) ||
	    !streq(pid->items[0], "storage")) {
		snprintf(why, whylen, "persistent id is not a ('storage', ...) tuple");
		return NULL;
	}
	PObj *const *it = pid->items;
	if (it[1]->type != PK_GLOBAL || it[1]->i != G_STORAGE) {
		snprintf(why, whylen, "persistent id: storage type is a %s",
		         typename(it[1]));
		return NULL;
	}
	if (it[2]->type != PK_STR || it[3]->type != PK_STR ||
	    it[4]->type != PK_INT || it[4]->i < 0) {
		snprintf(why, whylen, "persistent id: bad key/location/size");
		return NULL;
	}
	PObj *s = newobj(p, PK_STORAGE);
	if (!s) {
		snprintf(why, whylen, "too many objects");
		return NULL;
	}
	s->st = it[1]->st;
	s->key = it[2]->s;
	s->key_len = it[2]->slen;
	s->numel = it[4]->i;
	s->view_off = 0;
	s->view_numel = s->numel;
	if (pid->n == 6 && it[5]->type != PK_NONE) {
		const PObj *v = it[5];
		if (v->type != PK_TUPLE || v->n != 3 || v->items[0]->type != PK_STR ||
		    v->items[1]->type != PK_INT || v->items[2]->type != PK_INT ||
		    v->items[1]->i < 0 || v->items[2]->i < 0 ||
		    v->items[1]->i > s->numel ||
		    v->items[2]->i > s->numel - v->items[1]->i) {
			snprintf(why, whylen, "persistent id: bad storage view");
			return NULL;
		}
		s->view_off = v->items[1]->i;
		s->view_numel = v->items[2]->i;
	}
	return s;
}

PObj *pk_load(Pickle *p, const unsigned char *buf, size_t len, size_t base,
              size_t *used, char *err, size_t errlen)
{
	size_t pos = 0, op_at = 0;
	char why[256] = "";
	p->sp = 0;
	p->nmarks = 0;
	p->nmemo = 0;
	if (p->memo)
		memset(p->memo, 0, p->capmemo * sizeof *p->memo);
	if (!p->none) {
		p->none = newobj(p, PK_NONE);
		p->yes = newobj(p, PK_BOOL);
		p->yes->i = 1;
		p->no = newobj(p, PK_BOOL);
	}
#define FAIL(...) do { snprintf(why, sizeof why, __VA_ARGS__); goto fail; } while (0)
#define NEED(n) do { if (len - pos < (size_t)(n)) FAIL("truncated"); } while (0)
#define NEWOBJ(v, t) do { if (!((v) = newobj(p, (t)))) FAIL("too many objects (more than %d)", PK_MAX_OBJECTS); } while (0)
#define POP(v) do { if (p->sp == 0 || (p->nmarks && p->sp <= p->marks[p->nmarks - 1])) FAIL("stack underflow"); (v) = p->stack[--p->sp]; } while (0)
#define TOP() (p->stack[p->sp - 1])
#define NEEDTOP() do { if (p->sp == 0 || (p->nmarks && p->sp <= p->marks[p->nmarks - 1])) FAIL("stack underflow"); } while (0)
#define POPMARK(m) do { if (!p->nmarks) FAIL("no MARK"); (m) = p->marks[--p->nmarks]; } while (0)
	for (;;) {
		op_at = pos;
		NEED(1);
		unsigned op = buf[pos++];
		PObj *o, *a, *b;
		size_t m, n;
		switch (op) {
		case 0x80: // PROTO
			NEED(1);
			if (buf[pos] < 2 || buf[pos] > 5)
				FAIL("unsupported pickle protocol %u", buf[pos]);
			pos++;
			break;
		case 0x95: // FRAME: a length hint only
			NEED(8);
			pos += 8;
			break;
		case '.': // STOP
			POP(o);
			*used = pos;
			return o;
		case '(': // MARK
			if (p->nmarks == PK_MAX_MARKS)
				FAIL("MARKs nested too deep (more than %d)", PK_MAX_MARKS);
			p->marks[p->nmarks++] = p->sp;
			break;
		case '}': NEWOBJ(o, PK_DICT); push(p, o); break;
		case ']': NEWOBJ(o, PK_LIST); push(p, o); break;
		case ')': NEWOBJ(o, PK_TUPLE); push(p, o); break;
		case 'N': push(p, p->none); break;
		case 0x88: push(p, p->yes); break;
		case 0x89: push(p, p->no); break;
		case 't': // TUPLE
			POPMARK(m);
			NEWOBJ(o, PK_TUPLE);
			for (size_t i = m; i < p->sp; i++)
				additem(o, p->stack[i]);
			p->sp = m;
			push(p, o);
			break;
		case 0x85: case 0x86: case 0x87: // TUPLE1..3
			n = op - 0x84;
			NEWOBJ(o, PK_TUPLE);
			if (p->sp < n || (p->nmarks && p->sp - n < p->marks[p->nmarks - 1]))
				FAIL("stack underflow");
			for (size_t i = p->sp - n; i < p->sp; i++)
				additem(o, p->stack[i]);
			p->sp -= n;
			push(p, o);
			break;
		case 'J': // BININT
			NEED(4);
			NEWOBJ(o, PK_INT);
			o->i = (int32_t)le_get32(buf + pos);
			pos += 4;
			push(p, o);
			break;
		case 'K': // BININT1
			NEED(1);
			NEWOBJ(o, PK_INT);
			o->i = buf[pos++];
			push(p, o);
			break;
		case 'M': // BININT2
			NEED(2);
			NEWOBJ(o, PK_INT);
			o->i = le_get16(buf + pos);
			pos += 2;
			push(p, o);
			break;
		case 0x8a: // LONG1: n-byte little-endian two's complement
			NEED(1);
			n = buf[pos++];
			NEED(n);
			if (n <= 8) {
				NEWOBJ(o, PK_INT);
				uint64_t v = 0;
				for (size_t i = 0; i < n; i++)
					v |= (uint64_t)buf[pos + i] << (8 * i);
				if (n > 0 && n < 8 && (buf[pos + n - 1] & 0x80))
					v |= ~(uint64_t)0 << (8 * n);
				o->i = (int64_t)v;
			} else {
				NEWOBJ(o, PK_BIGINT);
				o->s = (const char *)buf + pos;
				o->slen = n;
			}
			pos += n;
			push(p, o);
			break;
		case 'G': { // BINFLOAT: big-endian double
			NEED(8);
			uint64_t v = be_get64(buf + pos);
			NEWOBJ(o, PK_FLOAT);
			memcpy(&o->f, &v, 8);
			pos += 8;
			push(p, o);
			break;
		}
		case 'X': case 0x8c: case 0x8d: case 'U': case 'T': { // strings
			uint64_t l;
			if (op == 'X') { NEED(4); l = le_get32(buf + pos); pos += 4; }
			else if (op == 0x8d) { NEED(8); l = le_get64(buf + pos); pos += 8; }
			else if (op == 'T') {
				NEED(4);
				if ((int32_t)le_get32(buf + pos) < 0)
					FAIL("negative string length");
				l = le_get32(buf + pos);
				pos += 4;
			} else { NEED(1); l = buf[pos++]; }
			if (l > len - pos)
				FAIL("truncated (string of %llu bytes)", (unsigned long long)l);
			NEWOBJ(o, PK_STR);
			o->s = (const char *)buf + pos;
			o->slen = (size_t)l;
			pos += (size_t)l;
			push(p, o);
			break;
		}
		case 'q': case 'r': case 0x94: { // BINPUT, LONG_BINPUT, MEMOIZE
			size_t idx;
			if (op == 'q') { NEED(1); idx = buf[pos++]; }
			else if (op == 'r') { NEED(4); idx = le_get32(buf + pos); pos += 4; }
			else idx = p->nmemo;
			NEEDTOP();
			if (idx >= PK_MAX_MEMO)
				FAIL("memo index %zu too large", idx);
			if (idx >= p->capmemo) {
				size_t c = p->capmemo ? p->capmemo : 64;
				while (c <= idx)
					c *= 2;
				p->memo = xrealloc(p->memo, c * sizeof *p->memo);
				memset(p->memo + p->capmemo, 0, (c - p->capmemo) * sizeof *p->memo);
				p->capmemo = c;
			}
			if (!p->memo[idx])
				p->nmemo++;
			p->memo[idx] = TOP();
			break;
		}
		case 'h': case 'j': { // BINGET, LONG_BINGET
			size_t idx;
			if (op == 'h') { NEED(1); idx = buf[pos++]; }
			else { NEED(4); idx = le_get32(buf + pos); pos += 4; }
			if (idx >= p->capmemo || !p->memo[idx])
				FAIL("memo index %zu not set", idx);
			push(p, p->memo[idx]);
			break;
		}
		case 'c': case 0x93: { // GLOBAL, STACK_GLOBAL
			const char *mod, *nm;
			size_t ml, nl;
			if (op == 'c') {
				const unsigned char *e1 = memchr(buf + pos, '\n', len - pos);
				if (!e1)
					FAIL("truncated GLOBAL");
				mod = (const char *)buf + pos;
				ml = (size_t)(e1 - (buf + pos));
				pos += ml + 1;
				const unsigned char *e2 = memchr(buf + pos, '\n', len - pos);
				if (!e2)
					FAIL("truncated GLOBAL");
				nm = (const char *)buf + pos;
				nl = (size_t)(e2 - (buf + pos));
				pos += nl + 1;
			} else {
				POP(b);
				POP(a);
				if (a->type != PK_STR || b->type != PK_STR)
					FAIL("STACK_GLOBAL of non-strings");
				mod = a->s, ml = a->slen, nm = b->s, nl = b->slen;
			}
			NEWOBJ(o, PK_GLOBAL);
			if (resolve_global(o, mod, ml, nm, nl)) {
				char cm[64], cn[64];
				imp_printable(cm, sizeof cm, mod, ml);
				imp_printable(cn, sizeof cn, nm, nl);
				FAIL("forbidden global '%s.%s' (not part of a state_dict)", cm, cn);
			}
			push(p, o);
			break;
		}
		case 'Q': // BINPERSID
			POP(a);
			if (!(o = persistent(p, a, why, sizeof why)))
				goto fail;
			push(p, o);
			break;
		case 'R': // REDUCE
			POP(a);
			POP(b);
			if (b->type != PK_GLOBAL)
				FAIL("REDUCE: calling a %s", typename(b));
			if (a->type != PK_TUPLE)
				FAIL("REDUCE: arguments are a %s", typename(a));
			switch (b->i) {
			case G_ODICT:
				// Python 3 pickles OrderedDict() then SETITEMS; Python 2
				// (checkpoints of 2017) OrderedDict([[k, v], ...]).
				NEWOBJ(o, PK_DICT);
				if (a->n == 0)
					break;
				if (a->n != 1 || a->items[0]->type != PK_LIST)
					FAIL("OrderedDict with unexpected arguments");
				for (int i = 0; i < a->items[0]->n; i++) {
					const PObj *kv = a->items[0]->items[i];
					if ((kv->type != PK_LIST && kv->type != PK_TUPLE) || kv->n != 2)
						FAIL("OrderedDict item is not a pair");
					additem(o, kv->items[0]);
					additem(o, kv->items[1]);
				}
				break;
			case G_REBUILD_V2:
				if (a->n != 6 && a->n != 7)
					FAIL("_rebuild_tensor_v2 with %d arguments", a->n);
				if (!(o = rebuild(p, a, why, sizeof why)))
					goto fail;
				break;
			case G_REBUILD:
				if (a->n != 4)
					FAIL("_rebuild_tensor with %d arguments", a->n);
				if (!(o = rebuild(p, a, why, sizeof why)))
					goto fail;
				break;
			case G_REBUILD_PARAM:
				if (a->n != 3 || a->items[0]->type != PK_TENSOR)
					FAIL("bad _rebuild_parameter arguments");
				o = a->items[0];
				break;
			default:
				FAIL("REDUCE: a storage type is not callable here");
			}
			push(p, o);
			break;
		case 'b': // BUILD: only the state of an OrderedDict (its _metadata)
			POP(a);
			NEEDTOP();
			if (TOP()->type != PK_DICT)
				FAIL("BUILD on a %s", typename(TOP()));
			break;
		case 's': // SETITEM
			POP(b);
			POP(a);
			NEEDTOP();
			if (TOP()->type != PK_DICT)
				FAIL("SETITEM on a %s", typename(TOP()));
			additem(TOP(), a);
			additem(TOP(), b);
			break;
		case 'u': // SETITEMS
			POPMARK(m);
			if ((p->sp - m) % 2)
				FAIL("SETITEMS with an odd number of items");
			if (m == 0 || (p->nmarks && m <= p->marks[p->nmarks - 1]))
				FAIL("stack underflow");
			o = p->stack[m - 1];
			if (o->type != PK_DICT)
				FAIL("SETITEMS on a %s", typename(o));
			for (size_t i = m; i < p->sp; i++)
				additem(o, p->stack[i]);
			p->sp = m;
			break;
		case 'a': // APPEND
			POP(a);
			NEEDTOP();
			if (TOP()->type != PK_LIST)
				FAIL("APPEND on a %s", typename(TOP()));
			additem(TOP(), a);
			break;
		case 'e': // APPENDS
			POPMARK(m);
			if (m == 0 || (p->nmarks && m <= p->marks[p->nmarks - 1]))
				FAIL("stack underflow");
			o = p->stack[m - 1];
			if (o->type != PK_LIST)
				FAIL("APPENDS on a %s", typename(o));
			for (size_t i = m; i < p->sp; i++)
				additem(o, p->stack[i]);
			p->sp = m;
			break;
		default:
			FAIL("unsupported opcode 0x%02x", op);
		}
	}
fail:
	err_set(err, errlen, "pickle byte %zu: %s", base + op_at, why);
	return NULL;
#undef FAIL
#undef NEED
#undef NEWOBJ
#undef POP
#undef TOP
#undef NEEDTOP
#undef POPMARK
}
