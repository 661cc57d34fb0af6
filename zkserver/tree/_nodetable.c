/* _nodetable: the native table of znodes (zkserver/tree/nodetable.py is the same in Python).
 *
 * Why native: a znode held as Python objects costs ~470 bytes (the Node object, the value's
 * bytes object, the path string, big ints, a dict entry, a slot in the parent's set of child
 * paths), ZooKeeper's heap ~460, and #13 asks for half of ZooKeeper's. Here a znode is one
 * malloc'd record: a 52-byte header, the fields that differ from their defaults (mzxid and
 * pzxid default to czxid, mtime to ctime, owner and the versions to 0), the UTF-8 path and
 * the value. Measured at 1M znodes (100-byte values): 208 bytes each, against 529 for the
 * Python table in the same harness.
 *
 * Records sit in a slot table (slot id -> record); an open-addressed, linear-probing index of
 * 32-bit slot ids is keyed by path (CPython's own hash of the path bytes, so a str key's cached
 * hash is used as is; tombstones on delete, as CPython's dict); a node's children are an
 * intrusive doubly linked list of slot ids, so removing one of a million children is O(1).
 *
 * A Node is a small handle (table, slot), made on each access from a free list. A record with
 * live handles is never freed: `remove` takes it out of the index and out of its parent's list,
 * and the slot is released when the last handle goes, so a removed node can still be read.
 * Iteration is in slot order: insertion order until slots freed by removals are reused.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define NIL 0xFFFFFFFFu
#define TOMB 0xFFFFFFFEu /* a deleted bucket (tombstone) */

enum {
    F_NONE = 1,       /* data is None */
    F_MZXID = 2,      /* optional fields present: */
    F_MTIME = 4,
    F_PZXID = 8,
    F_OWNER = 16,
    F_VER = 32,       /* version: int32 (setData) */
    F_DETACHED = 64,  /* removed; kept only for its live handles */
    F_ORPHAN = 128,   /* stored but not linked under a parent (parent missing) */
    F_ASCII = 256,    /* path is pure ASCII */
    F_CAVER = 512,    /* cversion, aversion: 2 x int32 (parents, setACL) */
};

typedef struct {
    int64_t czxid;
    int64_t ctime;
    uint32_t parent, first, next, prev;
    uint32_t nchild;
    uint32_t datalen;
    uint32_t acl;
    uint32_t pathlen;
    uint16_t flags;
    uint16_t handles; /* live Node handles (past 0xFFFF counted in Table.extra_handles) */
} Rec;

#define HDR ((size_t)52) /* bytes of Rec before its padding */
_Static_assert(sizeof(Rec) == 56, "Rec layout");

#define NOPT 6
static const uint16_t OPT_FLAGS[NOPT] = {F_MZXID, F_MTIME, F_PZXID, F_OWNER, F_VER, F_CAVER};
static const uint8_t OPT_SIZE[NOPT] = {8, 8, 8, 8, 4, 8};

static inline size_t opt_off(uint16_t flags, uint16_t f) {
    size_t o = HDR;
    for (int i = 0; i < NOPT && OPT_FLAGS[i] != f; i++)
        if (flags & OPT_FLAGS[i]) o += OPT_SIZE[i];
    return o;
}
static inline size_t opt_total(uint16_t flags) {
    size_t o = 0;
    for (int i = 0; i < NOPT; i++)
        if (flags & OPT_FLAGS[i]) o += OPT_SIZE[i];
    return o;
}
static inline char *rec_path(Rec *r) { return (char *)r + HDR + opt_total(r->flags); }
static inline char *rec_data(Rec *r) { return rec_path(r) + r->pathlen; }
static inline size_t rec_size(Rec *r) { return HDR + opt_total(r->flags) + r->pathlen + r->datalen; }

static inline int64_t ld64(Rec *r, size_t off) { int64_t v; memcpy(&v, (char *)r + off, 8); return v; }
static inline void st64(Rec *r, size_t off, int64_t v) { memcpy((char *)r + off, &v, 8); }
static inline int32_t ld32(Rec *r, size_t off) { int32_t v; memcpy(&v, (char *)r + off, 4); return v; }
static inline void st32(Rec *r, size_t off, int32_t v) { memcpy((char *)r + off, &v, 4); }

static inline int64_t r_mzxid(Rec *r) { return (r->flags & F_MZXID) ? ld64(r, opt_off(r->flags, F_MZXID)) : r->czxid; }
static inline int64_t r_mtime(Rec *r) { return (r->flags & F_MTIME) ? ld64(r, opt_off(r->flags, F_MTIME)) : r->ctime; }
static inline int64_t r_pzxid(Rec *r) { return (r->flags & F_PZXID) ? ld64(r, opt_off(r->flags, F_PZXID)) : r->czxid; }
static inline int64_t r_owner(Rec *r) { return (r->flags & F_OWNER) ? ld64(r, opt_off(r->flags, F_OWNER)) : 0; }
static inline int32_t r_ver(Rec *r, int i) {
    if (i == 0) return (r->flags & F_VER) ? ld32(r, opt_off(r->flags, F_VER)) : 0;
    return (r->flags & F_CAVER) ? ld32(r, opt_off(r->flags, F_CAVER) + 4 * (i - 1)) : 0;
}

/* Insert the optional field `f` (zeroed) into *ref's record, reallocating it. */
static int rec_grow(Rec **ref, uint16_t f) {
    Rec *r = *ref;
    size_t old = rec_size(r), off = opt_off(r->flags, f), add = 0;
    for (int i = 0; i < NOPT; i++) if (OPT_FLAGS[i] == f) add = OPT_SIZE[i];
    Rec *n = (Rec *)malloc(old + add);
    if (!n) { PyErr_NoMemory(); return -1; }
    memcpy(n, r, off);
    memset((char *)n + off, 0, add);
    memcpy((char *)n + off + add, (char *)r + off, old - off);
    n->flags |= f;
    free(r);
    *ref = n;
    return 0;
}

static int set_opt64(Rec **ref, uint16_t f, int64_t v, int64_t dflt) {
    if (!((*ref)->flags & f)) {
        if (v == dflt) return 0;
        if (rec_grow(ref, f) < 0) return -1;
    }
    st64(*ref, opt_off((*ref)->flags, f), v);
    return 0;
}

static int set_ver(Rec **ref, int i, int32_t v) {
    uint16_t f = i == 0 ? F_VER : F_CAVER;
    if (!((*ref)->flags & f)) {
        if (v == 0) return 0;
        if (rec_grow(ref, f) < 0) return -1;
    }
    st32(*ref, opt_off((*ref)->flags, f) + (i == 0 ? 0 : 4 * (i - 1)), v);
    return 0;
}

static int set_data(Rec **ref, const char *d, Py_ssize_t len /* -1: None */) {
    Rec *r = *ref;
    uint32_t nl = len < 0 ? 0 : (uint32_t)len;
    if (nl != r->datalen) {
        size_t base = HDR + opt_total(r->flags) + r->pathlen;
        Rec *n = (Rec *)realloc(r, base + nl);
        if (!n) { PyErr_NoMemory(); return -1; }
        *ref = r = n;
        r->datalen = nl;
    }
    if (nl) memcpy(rec_data(r), d, nl);
    if (len < 0) r->flags |= F_NONE; else r->flags &= ~F_NONE;
    return 0;
}

static Rec *rec_new(const char *path, size_t pathlen, const char *data, Py_ssize_t datalen,
                    uint32_t acl, int64_t czxid, int64_t mzxid, int64_t ctime, int64_t mtime,
                    int32_t version, int32_t cversion, int32_t aversion, int64_t owner,
                    int64_t pzxid) {
    uint16_t flags = 0;
    if (datalen < 0) flags |= F_NONE;
    if (mzxid != czxid) flags |= F_MZXID;
    if (mtime != ctime) flags |= F_MTIME;
    if (pzxid != czxid) flags |= F_PZXID;
    if (owner != 0) flags |= F_OWNER;
    if (version) flags |= F_VER;
    if (cversion || aversion) flags |= F_CAVER;
    size_t dl = datalen < 0 ? 0 : (size_t)datalen;
    if (pathlen > 0xFFFFFFFFu || dl > 0xFFFFFFFFu) { PyErr_SetString(PyExc_OverflowError, "path or data too long"); return NULL; }
    Rec *r = (Rec *)malloc(HDR + opt_total(flags) + pathlen + dl);
    if (!r) { PyErr_NoMemory(); return NULL; }
    r->czxid = czxid; r->ctime = ctime;
    r->parent = r->first = r->next = r->prev = NIL;
    r->nchild = 0; r->datalen = (uint32_t)dl; r->acl = acl; r->pathlen = (uint32_t)pathlen;
    r->flags = flags; r->handles = 0;
    if (flags & F_MZXID) st64(r, opt_off(flags, F_MZXID), mzxid);
    if (flags & F_MTIME) st64(r, opt_off(flags, F_MTIME), mtime);
    if (flags & F_PZXID) st64(r, opt_off(flags, F_PZXID), pzxid);
    if (flags & F_OWNER) st64(r, opt_off(flags, F_OWNER), owner);
    if (flags & F_VER) st32(r, opt_off(flags, F_VER), version);
    if (flags & F_CAVER) {
        size_t o = opt_off(flags, F_CAVER);
        st32(r, o, cversion); st32(r, o + 4, aversion);
    }
    int ascii = 1;
    for (size_t i = 0; i < pathlen; i++) if ((unsigned char)path[i] >= 128) { ascii = 0; break; }
    if (ascii) r->flags |= F_ASCII;
    if (pathlen) memcpy(rec_path(r), path, pathlen);
    if (dl) memcpy(rec_data(r), data, dl);
    return r;
}

/* ---- ACL table (process wide: one id per distinct ACL list, as aclmod.intern_acl keeps one tuple) ---- */

static PyObject *acl_list; /* id -> tuple */
static PyObject *acl_ids;  /* tuple -> id */

static int acl_intern(PyObject *acl, uint32_t *out) {
    PyObject *id = PyDict_GetItemWithError(acl_ids, acl);
    if (id) { *out = (uint32_t)PyLong_AsUnsignedLong(id); return 0; }
    if (PyErr_Occurred()) return -1;
    if (!PyTuple_Check(acl)) { PyErr_SetString(PyExc_TypeError, "acl must be a tuple"); return -1; }
    Py_ssize_t n = PyList_GET_SIZE(acl_list);
    id = PyLong_FromSsize_t(n);
    if (!id) return -1;
    if (PyDict_SetItem(acl_ids, acl, id) < 0 || PyList_Append(acl_list, acl) < 0) { Py_DECREF(id); return -1; }
    Py_DECREF(id);
    *out = (uint32_t)n;
    return 0;
}

/* ---- the table ---- */

typedef struct {
    PyObject_HEAD
    Rec **slots;        /* slot -> record, or (next_free << 1 | 1) for a free slot */
    uint32_t nslots, slotcap, freehead;
    uint32_t *buckets;  /* slot ids, NIL = empty */
    size_t mask;        /* bucket count - 1 */
    size_t count;       /* records in the index */
    size_t orphans;
    size_t tombs;       /* tombstone buckets */
    uint64_t sizever;   /* bumped on every insert/remove (iteration guard) */
    PyObject *extra_handles; /* dict slot -> count beyond 0xFFFF, or NULL */
} Table;

typedef struct {
    PyObject_HEAD
    Table *table;
    uint32_t slot;
} Node;

static PyTypeObject TableType, NodeType, ChildIterType, TableIterType;

#define SLOT_FREE(p) (((uintptr_t)(p)) & 1)

static inline Rec **node_ref(Node *h) { return &h->table->slots[h->slot]; }
static inline Rec *node_rec(Node *h) { return h->table->slots[h->slot]; }

/* the hash CPython gives a str of these (ASCII) bytes: a key's cached hash serves as is */
#if PY_VERSION_HEX >= 0x030E0000
static inline uint64_t hash_bytes(const char *p, size_t n) { return (uint64_t)Py_HashBuffer(p, (Py_ssize_t)n); }
#else
static inline uint64_t hash_bytes(const char *p, size_t n) { return (uint64_t)_Py_HashBytes(p, (Py_ssize_t)n); }
#endif

/* `key` (a str): its UTF-8 bytes and their hash */
static int key_utf8(PyObject *key, const char **p, Py_ssize_t *n, uint64_t *h) {
    if (PyUnicode_IS_ASCII(key)) {
        *p = (const char *)PyUnicode_DATA(key);
        *n = PyUnicode_GET_LENGTH(key);
        Py_hash_t hh = PyObject_Hash(key); /* cached in the str */
        *h = (uint64_t)hh;
        return 0;
    }
    *p = PyUnicode_AsUTF8AndSize(key, n);
    if (!*p) return -1;
    *h = hash_bytes(*p, *n);
    return 0;
}

/* Bucket position holding `path`, or -1. */
static inline Py_ssize_t find(Table *s, const char *p, size_t n, uint64_t h) {
    size_t i = h & s->mask;
    for (;;) {
        uint32_t sl = s->buckets[i];
        if (sl == NIL) return -1;
        if (sl != TOMB) {
            Rec *r = s->slots[sl];
            if (r->pathlen == n && memcmp(rec_path(r), p, n) == 0) return (Py_ssize_t)i;
        }
        i = (i + 1) & s->mask;
    }
}

static inline uint32_t lookup(Table *s, const char *p, size_t n) {
    Py_ssize_t i = find(s, p, n, hash_bytes(p, n));
    return i < 0 ? NIL : s->buckets[i];
}

static int index_resize(Table *s, size_t nb) {
    uint32_t *b = (uint32_t *)malloc(nb * sizeof(uint32_t));
    if (!b) { PyErr_NoMemory(); return -1; }
    memset(b, 0xFF, nb * sizeof(uint32_t));
    size_t m = nb - 1;
    if (s->buckets) {
        for (size_t i = 0; i <= s->mask; i++) {
            uint32_t sl = s->buckets[i];
            if (sl >= TOMB) continue;
            Rec *r = s->slots[sl];
            size_t j = hash_bytes(rec_path(r), r->pathlen) & m;
            while (b[j] != NIL) j = (j + 1) & m;
            b[j] = sl;
        }
        free(s->buckets);
    }
    s->buckets = b;
    s->mask = m;
    s->tombs = 0;
    return 0;
}

static int slot_alloc(Table *s, uint32_t *out) {
    if (s->freehead != NIL) {
        uint32_t sl = s->freehead;
        s->freehead = (uint32_t)(((uintptr_t)s->slots[sl]) >> 1);
        *out = sl;
        return 0;
    }
    if (s->nslots == s->slotcap) {
        if (s->slotcap >= 0xFFFFFFF0u) { PyErr_SetString(PyExc_MemoryError, "too many znodes"); return -1; }
        uint64_t nc = s->slotcap ? (uint64_t)s->slotcap + s->slotcap / 2 + 16 : 64;
        if (nc > 0xFFFFFFF0u) nc = 0xFFFFFFF0u;
        Rec **ns = (Rec **)realloc(s->slots, nc * sizeof(Rec *));
        if (!ns) { PyErr_NoMemory(); return -1; }
        s->slots = ns;
        s->slotcap = (uint32_t)nc;
    }
    *out = s->nslots++;
    return 0;
}

static void slot_free(Table *s, uint32_t sl) {
    s->slots[sl] = (Rec *)(((uintptr_t)s->freehead << 1) | 1);
    s->freehead = sl;
}

static inline uint32_t parent_of(Table *s, Rec *r) {
    const char *p = rec_path(r);
    size_t n = r->pathlen;
    if (n <= 1) return NIL; /* the root, or a path-less record */
    size_t i = n - 1;
    while (i > 0 && p[i] != '/') i--;
    return lookup(s, p, i ? i : 1);
}

static inline void link_under(Table *s, uint32_t sl, uint32_t par) {
    Rec *r = s->slots[sl], *pr = s->slots[par];
    r->parent = par;
    r->prev = NIL;
    r->next = pr->first;
    if (pr->first != NIL) s->slots[pr->first]->prev = sl;
    pr->first = sl;
    pr->nchild++;
}

static inline void unlink_from_parent(Table *s, Rec *r) {
    if (r->parent == NIL) return;
    Rec *pr = s->slots[r->parent];
    if (r->prev != NIL) s->slots[r->prev]->next = r->next; else pr->first = r->next;
    if (r->next != NIL) s->slots[r->next]->prev = r->prev;
    pr->nchild--;
    r->parent = r->next = r->prev = NIL;
}

/* Take the record at bucket position i out of the tree: out of the index, out of its
 * parent's list, its children orphaned. The slot still holds it. */
static void take_out(Table *s, size_t i, uint32_t sl) {
    Rec *r = s->slots[sl];
    /* a tombstone, as CPython's dict does: no record is touched to keep probe chains whole */
    if (s->buckets[(i + 1) & s->mask] == NIL) s->buckets[i] = NIL;
    else { s->buckets[i] = TOMB; s->tombs++; }
    if (r->flags & F_ORPHAN) { s->orphans--; r->flags &= ~F_ORPHAN; }
    else unlink_from_parent(s, r);
    for (uint32_t c = r->first; c != NIL;) {
        Rec *cr = s->slots[c];
        uint32_t nx = cr->next;
        cr->parent = cr->next = cr->prev = NIL;
        cr->flags |= F_ORPHAN;
        s->orphans++;
        c = nx;
    }
    r->first = NIL;
    r->nchild = 0;
    s->count--;
    s->sizever++;
}

static void release(Table *s, uint32_t sl) {
    Rec *r = s->slots[sl];
    if (r->handles) { r->flags |= F_DETACHED; return; }
    free(r);
    slot_free(s, sl);
}

/* File `r` (path inside, no links, no handles) at its path; returns its slot or NIL.
 * An existing record at that path is replaced (its children move to the new one). */
static uint32_t table_insert(Table *s, Rec *r) {
    const char *p = rec_path(r);
    size_t n = r->pathlen;
    uint64_t h = hash_bytes(p, n);
    Py_ssize_t at = find(s, p, n, h);
    uint32_t sl;
    if (slot_alloc(s, &sl) < 0) { free(r); return NIL; }
    s->slots[sl] = r;
    if (at >= 0) { /* replace */
        uint32_t old = s->buckets[at];
        Rec *o = s->slots[old];
        r->parent = o->parent; r->next = o->next; r->prev = o->prev;
        r->first = o->first; r->nchild = o->nchild;
        r->flags |= o->flags & F_ORPHAN;
        if (o->prev != NIL) s->slots[o->prev]->next = sl;
        else if (o->parent != NIL) s->slots[o->parent]->first = sl;
        if (o->next != NIL) s->slots[o->next]->prev = sl;
        for (uint32_t c = o->first; c != NIL; c = s->slots[c]->next) s->slots[c]->parent = sl;
        o->parent = o->next = o->prev = o->first = NIL;
        o->nchild = 0;
        o->flags &= ~F_ORPHAN;
        s->buckets[at] = sl;
        release(s, old);
        return sl;
    }
    if ((s->count + s->tombs + 1) * 4 > (s->mask + 1) * 3) {
        size_t nb = (s->count + 1) * 2 > (s->mask + 1) ? (s->mask + 1) * 2 : (s->mask + 1);
        if (index_resize(s, nb) < 0) { s->slots[sl] = NULL; slot_free(s, sl); free(r); return NIL; }
    }
    size_t i = h & s->mask;
    while (s->buckets[i] != NIL && s->buckets[i] != TOMB) i = (i + 1) & s->mask;
    if (s->buckets[i] == TOMB) s->tombs--;
    s->buckets[i] = sl;
    s->count++;
    s->sizever++;
    if (n == 1 && p[0] == '/') return sl;
    uint32_t par = parent_of(s, r);
    if (par != NIL) link_under(s, sl, par);
    else { r->flags |= F_ORPHAN; s->orphans++; }
    return sl;
}

/* ---- handles ---- */

#define FREELIST_MAX 1024
static Node *node_freelist[FREELIST_MAX];
static int node_nfree;

static Node *handle_new(Table *s, uint32_t sl) {
    Node *h;
    if (node_nfree) {
        h = node_freelist[--node_nfree];
        PyObject_Init((PyObject *)h, &NodeType);
    } else {
        h = PyObject_New(Node, &NodeType);
        if (!h) return NULL;
    }
    h->slot = sl;
    h->table = s;
    Py_INCREF(s);
    Rec *r = s->slots[sl];
    if (r->handles == 0xFFFF) {
        /* saturated: count the rest on the side */
        if (!s->extra_handles && !(s->extra_handles = PyDict_New())) goto fail;
        PyObject *k = PyLong_FromUnsignedLong(sl);
        if (!k) goto fail;
        PyObject *v = PyDict_GetItemWithError(s->extra_handles, k);
        long c = v ? PyLong_AsLong(v) : 0;
        PyObject *nv = PyLong_FromLong(c + 1);
        int rc = nv ? PyDict_SetItem(s->extra_handles, k, nv) : -1;
        Py_DECREF(k); Py_XDECREF(nv);
        if (rc < 0) goto fail;
    } else r->handles++;
    return h;
fail:
    Py_DECREF(s);
    if (node_nfree < FREELIST_MAX) node_freelist[node_nfree++] = h;
    else PyObject_Free(h);
    return NULL;
}

static void Node_dealloc(Node *h) {
    Table *s = h->table;
    Rec *r = s->slots[h->slot];
    int done = 0;
    if (r->handles == 0xFFFF && s->extra_handles) {
        PyObject *k = PyLong_FromUnsignedLong(h->slot);
        PyObject *v = k ? PyDict_GetItemWithError(s->extra_handles, k) : NULL;
        if (v) {
            long c = PyLong_AsLong(v) - 1;
            if (c == 0) PyDict_DelItem(s->extra_handles, k);
            else { PyObject *nv = PyLong_FromLong(c); if (nv) { PyDict_SetItem(s->extra_handles, k, nv); Py_DECREF(nv); } }
            done = 1;
        }
        Py_XDECREF(k);
        PyErr_Clear();
    }
    if (!done) r->handles--;
    if (r->handles == 0 && (r->flags & F_DETACHED)) { free(r); slot_free(s, h->slot); }
    h->table = NULL;
    Py_DECREF(s);
    if (node_nfree < FREELIST_MAX) node_freelist[node_nfree++] = h;
    else PyObject_Free(h);
}

/* argument parsing helpers */
static int as_i64(PyObject *o, int64_t *v) {
    long long x = PyLong_AsLongLong(o);
    if (x == -1 && PyErr_Occurred()) return -1;
    *v = x;
    return 0;
}
static int as_i32(PyObject *o, int32_t *v) {
    long long x = PyLong_AsLongLong(o);
    if (x == -1 && PyErr_Occurred()) return -1;
    *v = (int32_t)(uint32_t)(uint64_t)x; /* wraps, as ZooKeeper's Java ints do */
    return 0;
}
static int as_data(PyObject *o, const char **d, Py_ssize_t *n) {
    if (o == Py_None) { *d = NULL; *n = -1; return 0; }
    if (!PyBytes_Check(o)) { PyErr_SetString(PyExc_TypeError, "data must be bytes or None"); return -1; }
    *d = PyBytes_AS_STRING(o); *n = PyBytes_GET_SIZE(o);
    return 0;
}

/* a path argument: its UTF-8 bytes */
static int as_path(PyObject *o, const char **p, Py_ssize_t *n) {
    if (!PyUnicode_Check(o)) { PyErr_SetString(PyExc_TypeError, "paths are str"); return -1; }
    *p = PyUnicode_AsUTF8AndSize(o, n);
    return *p ? 0 : -1;
}

static int parse_restore(PyObject *const *a, const char **d, Py_ssize_t *dn, uint32_t *aid,
                         int64_t *czxid, int64_t *mzxid, int64_t *ctime, int64_t *mtime,
                         int32_t *ver, int32_t *cver, int32_t *aver, int64_t *owner, int64_t *pzxid) {
    return (as_data(a[0], d, dn) < 0 || acl_intern(a[1], aid) < 0 || as_i64(a[2], czxid) < 0 ||
            as_i64(a[3], mzxid) < 0 || as_i64(a[4], ctime) < 0 || as_i64(a[5], mtime) < 0 ||
            as_i32(a[6], ver) < 0 || as_i32(a[7], cver) < 0 || as_i32(a[8], aver) < 0 ||
            as_i64(a[9], owner) < 0 || as_i64(a[10], pzxid) < 0) ? -1 : 0;
}

/* set_data(data, version, mzxid, mtime): a setData's four changes, the record made once (set
 * one by one, a node's first setData would grow it three times) or, once it holds all three
 * fields and the value keeps its length, changed in place. */
static PyObject *Node_set_data_call(Node *h, PyObject *const *a, Py_ssize_t n) {
    if (n != 4) { PyErr_SetString(PyExc_TypeError, "set_data(data, version, mzxid, mtime)"); return NULL; }
    const char *d; Py_ssize_t dn; int32_t v; int64_t mz, mt;
    if (as_data(a[0], &d, &dn) < 0 || as_i32(a[1], &v) < 0 || as_i64(a[2], &mz) < 0 ||
        as_i64(a[3], &mt) < 0) return NULL;
    Rec **ref = node_ref(h), *r = *ref;
    const uint16_t all = F_VER | F_MZXID | F_MTIME;
    if ((r->flags & all) == all && dn >= 0 && (uint32_t)dn == r->datalen && !(r->flags & F_NONE)) {
        memcpy(rec_data(r), d, dn);
    } else {
        Rec *m = rec_new(rec_path(r), r->pathlen, d, dn, r->acl, r->czxid, mz, r->ctime, mt, v,
                         r_ver(r, 1), r_ver(r, 2), r_owner(r), r_pzxid(r));
        if (!m) return NULL;
        m->parent = r->parent; m->first = r->first; m->next = r->next; m->prev = r->prev;
        m->nchild = r->nchild; m->handles = r->handles;
        m->flags |= r->flags & (F_ORPHAN | F_DETACHED);
        free(r);
        *ref = r = m;
        if ((r->flags & all) != all) Py_RETURN_NONE; /* the values equal their defaults */
    }
    st32(r, opt_off(r->flags, F_VER), v);
    st64(r, opt_off(r->flags, F_MZXID), mz);
    st64(r, opt_off(r->flags, F_MTIME), mt);
    Py_RETURN_NONE;
}

static inline char *put_be(char *p, uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; i--) { p[i] = (char)(v & 0xFF); v >>= 8; }
    return p + bytes;
}

/* packed_fields(): the nine stored fields as the digest hashes them (struct ">qqqqiiiqq") */
static PyObject *Node_packed_fields(Node *h, PyObject *unused) {
    Rec *r = node_rec(h);
    char buf[60], *p = buf;
    p = put_be(p, (uint64_t)r->czxid, 8);
    p = put_be(p, (uint64_t)r_mzxid(r), 8);
    p = put_be(p, (uint64_t)r->ctime, 8);
    p = put_be(p, (uint64_t)r_mtime(r), 8);
    for (int i = 0; i < 3; i++) p = put_be(p, (uint32_t)r_ver(r, i), 4);
    p = put_be(p, (uint64_t)r_owner(r), 8);
    put_be(p, (uint64_t)r_pzxid(r), 8);
    return PyBytes_FromStringAndSize(buf, sizeof buf);
}

static PyObject *Node_stat(Node *h, PyObject *unused) {
    Rec *r = node_rec(h);
    int64_t n = r->nchild, owner = r_owner(r);
    return Py_BuildValue("(LLLLiLiLLLL)", (long long)r->czxid, (long long)r_mzxid(r),
                         (long long)r->ctime, (long long)r_mtime(r), r_ver(r, 0),
                         (long long)(2 * (int64_t)r_ver(r, 1) - n), r_ver(r, 2),
                         (long long)(owner > 0 ? owner : 0), (long long)r->datalen, (long long)n,
                         (long long)r_pzxid(r));
}

static PyObject *child_names_of(Table *s, uint32_t sl);

/* child_names(path): the names of the children (the path is the node's own: the Python
 * table needs it to cut the names from its children's paths; the records carry theirs) */
static PyObject *Node_child_names(Node *h, PyObject *path) {
    return child_names_of(h->table, h->slot);
}

static PyObject *Node_child_count(Node *h, PyObject *unused) {
    return PyLong_FromUnsignedLong(node_rec(h)->nchild);
}

static PyObject *child_iter_new(Table *s, uint32_t parent);

static PyObject *Node_child_paths(Node *h, PyObject *unused) {
    return child_iter_new(h->table, h->slot);
}

/* getters / setters */
enum { G_CZXID, G_MZXID, G_CTIME, G_MTIME, G_PZXID, G_OWNER, G_VER, G_CVER, G_AVER };

static PyObject *Node_get_int(Node *h, void *c) {
    Rec *r = node_rec(h);
    switch ((intptr_t)c) {
    case G_CZXID: return PyLong_FromLongLong(r->czxid);
    case G_MZXID: return PyLong_FromLongLong(r_mzxid(r));
    case G_CTIME: return PyLong_FromLongLong(r->ctime);
    case G_MTIME: return PyLong_FromLongLong(r_mtime(r));
    case G_PZXID: return PyLong_FromLongLong(r_pzxid(r));
    case G_OWNER: return PyLong_FromLongLong(r_owner(r));
    case G_VER: return PyLong_FromLong(r_ver(r, 0));
    case G_CVER: return PyLong_FromLong(r_ver(r, 1));
    default: return PyLong_FromLong(r_ver(r, 2));
    }
}

static int Node_set_int(Node *h, PyObject *v, void *c) {
    if (!v) { PyErr_SetString(PyExc_AttributeError, "cannot delete a znode field"); return -1; }
    Rec **ref = node_ref(h);
    intptr_t f = (intptr_t)c;
    if (f >= G_VER) {
        int32_t x;
        if (as_i32(v, &x) < 0) return -1;
        return set_ver(ref, (int)(f - G_VER), x);
    }
    int64_t x;
    if (as_i64(v, &x) < 0) return -1;
    Rec *r = *ref;
    switch (f) {
    case G_CZXID:
        if (x == r->czxid) return 0;
        /* pin the fields that default to czxid first */
        if (set_opt64(ref, F_MZXID, r_mzxid(r), x) < 0) return -1;
        r = *ref;
        if (set_opt64(ref, F_PZXID, r_pzxid(r), x) < 0) return -1;
        (*ref)->czxid = x;
        return 0;
    case G_CTIME:
        if (x == r->ctime) return 0;
        if (set_opt64(ref, F_MTIME, r_mtime(r), x) < 0) return -1;
        (*ref)->ctime = x;
        return 0;
    case G_MZXID: return set_opt64(ref, F_MZXID, x, r->czxid);
    case G_MTIME: return set_opt64(ref, F_MTIME, x, r->ctime);
    case G_PZXID: return set_opt64(ref, F_PZXID, x, r->czxid);
    default: return set_opt64(ref, F_OWNER, x, 0);
    }
}

static PyObject *Node_get_data(Node *h, void *c) {
    Rec *r = node_rec(h);
    if (r->flags & F_NONE) Py_RETURN_NONE;
    return PyBytes_FromStringAndSize(rec_data(r), r->datalen);
}
static int Node_set_data(Node *h, PyObject *v, void *c) {
    if (!v) { PyErr_SetString(PyExc_AttributeError, "cannot delete data"); return -1; }
    const char *d; Py_ssize_t n;
    if (as_data(v, &d, &n) < 0) return -1;
    return set_data(node_ref(h), d, n);
}
static PyObject *Node_get_acl(Node *h, void *c) {
    PyObject *a = PyList_GET_ITEM(acl_list, node_rec(h)->acl);
    Py_INCREF(a);
    return a;
}
static int Node_set_acl(Node *h, PyObject *v, void *c) {
    if (!v) { PyErr_SetString(PyExc_AttributeError, "cannot delete acl"); return -1; }
    uint32_t id;
    if (acl_intern(v, &id) < 0) return -1;
    node_rec(h)->acl = id;
    return 0;
}
static PyObject *Node_repr(Node *h) {
    Rec *r = node_rec(h);
    return PyUnicode_FromFormat("<Node %s czxid=%lld dlen=%u children=%u>",
                                (r->flags & F_DETACHED) ? "removed" : "stored",
                                (long long)r->czxid, r->datalen, r->nchild);
}

/* Two handles are equal when they name the same record, as one Python object is itself. */
static PyObject *Node_richcompare(PyObject *a, PyObject *b, int op) {
    if (Py_TYPE(b) != &NodeType || (op != Py_EQ && op != Py_NE)) Py_RETURN_NOTIMPLEMENTED;
    Node *x = (Node *)a, *y = (Node *)b;
    int same = x->table == y->table && x->slot == y->slot;
    return PyBool_FromLong(op == Py_EQ ? same : !same);
}

static Py_hash_t Node_hash(Node *h) {
    Py_hash_t v = (Py_hash_t)(((uintptr_t)h->table >> 4) ^ ((uintptr_t)h->slot << 20));
    return v == -1 ? -2 : v;
}

static PyGetSetDef Node_getset[] = {
    {"data", (getter)Node_get_data, (setter)Node_set_data, NULL, NULL},
    {"acl", (getter)Node_get_acl, (setter)Node_set_acl, NULL, NULL},
    {"czxid", (getter)Node_get_int, (setter)Node_set_int, NULL, (void *)G_CZXID},
    {"mzxid", (getter)Node_get_int, (setter)Node_set_int, NULL, (void *)G_MZXID},
    {"ctime", (getter)Node_get_int, (setter)Node_set_int, NULL, (void *)G_CTIME},
    {"mtime", (getter)Node_get_int, (setter)Node_set_int, NULL, (void *)G_MTIME},
    {"pzxid", (getter)Node_get_int, (setter)Node_set_int, NULL, (void *)G_PZXID},
    {"owner", (getter)Node_get_int, (setter)Node_set_int, NULL, (void *)G_OWNER},
    {"version", (getter)Node_get_int, (setter)Node_set_int, NULL, (void *)G_VER},
    {"cversion", (getter)Node_get_int, (setter)Node_set_int, NULL, (void *)G_CVER},
    {"aversion", (getter)Node_get_int, (setter)Node_set_int, NULL, (void *)G_AVER},
    {NULL}
};

static PyMethodDef Node_methods[] = {
    {"stat", (PyCFunction)Node_stat, METH_NOARGS, NULL},
    {"set_data", (PyCFunction)(void (*)(void))Node_set_data_call, METH_FASTCALL, NULL},
    {"packed_fields", (PyCFunction)Node_packed_fields, METH_NOARGS, NULL},
    {"child_names", (PyCFunction)Node_child_names, METH_O, NULL},
    {"child_count", (PyCFunction)Node_child_count, METH_NOARGS, NULL},
    {"child_paths", (PyCFunction)Node_child_paths, METH_NOARGS, NULL},
    {NULL}
};

static PyTypeObject NodeType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "zkserver.tree._nodetable.Node",
    .tp_basicsize = sizeof(Node),
    .tp_dealloc = (destructor)Node_dealloc,
    .tp_repr = (reprfunc)Node_repr,
    .tp_richcompare = Node_richcompare,
    .tp_hash = (hashfunc)Node_hash,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_methods = Node_methods,
    .tp_getset = Node_getset,
};

/* ---- children view ---- */

typedef struct {
    PyObject_HEAD
    Table *table;
    uint32_t cur;
    uint64_t sizever;
} ChildIter;

/* the full paths of the children of the record at `parent` */
static PyObject *child_iter_new(Table *s, uint32_t parent) {
    ChildIter *it = PyObject_New(ChildIter, &ChildIterType);
    if (!it) return NULL;
    Py_INCREF(s);
    it->table = s;
    it->cur = s->slots[parent]->first;
    it->sizever = s->sizever;
    return (PyObject *)it;
}

static PyObject *rec_key(Rec *r, size_t cut) {
    const char *p = rec_path(r) + cut;
    size_t n = r->pathlen - cut;
    if (r->flags & F_ASCII) {
        PyObject *u = PyUnicode_New(n, 127);
        if (u) memcpy(PyUnicode_DATA(u), p, n);
        return u;
    }
    return PyUnicode_DecodeUTF8(p, n, NULL);
}

static void ChildIter_dealloc(ChildIter *it) { Py_DECREF(it->table); PyObject_Free(it); }

static PyObject *ChildIter_next(ChildIter *it) {
    Table *s = it->table;
    if (it->cur == NIL) return NULL;
    if (s->sizever != it->sizever) { PyErr_SetString(PyExc_RuntimeError, "node table changed size during iteration"); return NULL; }
    Rec *r = s->slots[it->cur];
    it->cur = r->next;
    return rec_key(r, 0);
}

static PyObject *child_names_of(Table *s, uint32_t sl) {
    Rec *pr = s->slots[sl];
    PyObject *out = PyList_New(pr->nchild);
    if (!out) return NULL;
    size_t cut = pr->pathlen == 1 ? 1 : pr->pathlen + 1;
    Py_ssize_t i = 0;
    for (uint32_t c = pr->first; c != NIL; c = s->slots[c]->next) {
        PyObject *k = rec_key(s->slots[c], cut);
        if (!k) { Py_DECREF(out); return NULL; }
        PyList_SET_ITEM(out, i++, k);
    }
    return out;
}

static PyTypeObject ChildIterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "zkserver.tree._nodetable.ChildIter",
    .tp_basicsize = sizeof(ChildIter),
    .tp_dealloc = (destructor)ChildIter_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)ChildIter_next,
};

/* ---- the table: mapping protocol ---- */

static PyObject *Table_new(PyTypeObject *t, PyObject *args, PyObject *kw) {
    Table *s = (Table *)t->tp_alloc(t, 0);
    if (!s) return NULL;
    s->freehead = NIL;
    if (index_resize(s, 16) < 0) { Py_DECREF(s); return NULL; }
    return (PyObject *)s;
}

static void Table_dealloc(Table *s) {
    /* no handle can be alive: each holds a reference to the table */
    for (uint32_t i = 0; i < s->nslots; i++)
        if (!SLOT_FREE(s->slots[i])) free(s->slots[i]);
    free(s->slots);
    free(s->buckets);
    Py_XDECREF(s->extra_handles);
    Py_TYPE(s)->tp_free((PyObject *)s);
}

static Py_ssize_t Table_len(Table *s) { return (Py_ssize_t)s->count; }

static uint32_t key_slot(Table *s, PyObject *key, Py_ssize_t *pos) {
    const char *p; Py_ssize_t n; uint64_t h;
    if (!PyUnicode_Check(key)) return NIL;
    if (key_utf8(key, &p, &n, &h) < 0) { PyErr_Clear(); return NIL; }
    Py_ssize_t i = find(s, p, n, h);
    if (pos) *pos = i;
    return i < 0 ? NIL : s->buckets[i];
}

static PyObject *Table_getitem(Table *s, PyObject *key) {
    uint32_t sl = key_slot(s, key, NULL);
    if (sl == NIL) { PyErr_SetObject(PyExc_KeyError, key); return NULL; }
    return (PyObject *)handle_new(s, sl);
}

static int Table_contains(Table *s, PyObject *key) { return key_slot(s, key, NULL) != NIL; }

static PyObject *Table_get(Table *s, PyObject *const *a, Py_ssize_t n) {
    if (n < 1 || n > 2) { PyErr_SetString(PyExc_TypeError, "get(path[, default])"); return NULL; }
    uint32_t sl = key_slot(s, a[0], NULL);
    if (sl == NIL) { PyObject *d = n > 1 ? a[1] : Py_None; Py_INCREF(d); return d; }
    return (PyObject *)handle_new(s, sl);
}

/* remove(path, parent) -> Node or None: the node, out of the table and its parent's list
 * (the parent argument is the Python table's; the records know their parents) */
static PyObject *Table_remove(Table *s, PyObject *const *a, Py_ssize_t n) {
    if (n != 2) { PyErr_SetString(PyExc_TypeError, "remove(path, parent)"); return NULL; }
    Py_ssize_t pos;
    uint32_t sl = key_slot(s, a[0], &pos);
    if (sl == NIL) Py_RETURN_NONE;
    Node *h = handle_new(s, sl);
    if (!h) return NULL;
    take_out(s, (size_t)pos, sl);
    release(s, sl); /* has a handle: only marks it detached */
    return (PyObject *)h;
}

/* restore(path, data, acl, czxid, mzxid, ctime, mtime, version, cversion, aversion, owner, pzxid):
 * file a node straight from a snapshot row, no handle made. */
static PyObject *Table_restore(Table *s, PyObject *const *a, Py_ssize_t n) {
    if (n != 12) { PyErr_SetString(PyExc_TypeError, "restore takes 12 arguments"); return NULL; }
    const char *p; Py_ssize_t pn;
    if (as_path(a[0], &p, &pn) < 0) return NULL;
    const char *d; Py_ssize_t dn; uint32_t aid; int64_t cz, mz, ct, mt, ow, pz; int32_t v, cv, av;
    if (parse_restore(a + 1, &d, &dn, &aid, &cz, &mz, &ct, &mt, &v, &cv, &av, &ow, &pz) < 0) return NULL;
    Rec *r = rec_new(p, pn, d, dn, aid, cz, mz, ct, mt, v, cv, av, ow, pz);
    if (!r || table_insert(s, r) == NIL) return NULL;
    Py_RETURN_NONE;
}

/* add(path, parent, data, acl, zxid, time, owner) -> Node: a new node (the parent argument is
 * the Python table's; here the parent is found by its path, as a snapshot's nodes are) */
static PyObject *Table_add(Table *s, PyObject *const *a, Py_ssize_t n) {
    if (n != 7) { PyErr_SetString(PyExc_TypeError, "add takes 7 arguments"); return NULL; }
    const char *p; Py_ssize_t pn;
    if (as_path(a[0], &p, &pn) < 0) return NULL;
    const char *d; Py_ssize_t dn; uint32_t aid; int64_t z, t, ow;
    if (as_data(a[2], &d, &dn) < 0 || acl_intern(a[3], &aid) < 0 || as_i64(a[4], &z) < 0 ||
        as_i64(a[5], &t) < 0 || as_i64(a[6], &ow) < 0) return NULL;
    Rec *r = rec_new(p, pn, d, dn, aid, z, z, t, t, 0, 0, 0, ow, z);
    if (!r) return NULL;
    uint32_t sl = table_insert(s, r);
    if (sl == NIL) return NULL;
    return (PyObject *)handle_new(s, sl);
}

static PyObject *Table_link(Table *s, PyObject *unused) {
    if (s->orphans) {
        for (uint32_t i = 0; i < s->nslots; i++) {
            Rec *r = s->slots[i];
            if (SLOT_FREE(r) || !(r->flags & F_ORPHAN)) continue;
            uint32_t par = parent_of(s, r);
            if (par == NIL) continue;
            r->flags &= ~F_ORPHAN;
            s->orphans--;
            link_under(s, i, par);
        }
    }
    Py_RETURN_NONE;
}

static PyObject *Table_clear(Table *s, PyObject *unused) {
    for (uint32_t i = 0; i < s->nslots; i++) {
        Rec *r = s->slots[i];
        if (SLOT_FREE(r) || (r->flags & F_DETACHED)) continue;
        r->parent = r->first = r->next = r->prev = NIL;
        r->nchild = 0;
        r->flags &= ~F_ORPHAN;
        release(s, i);
    }
    memset(s->buckets, 0xFF, (s->mask + 1) * sizeof(uint32_t));
    s->count = 0;
    s->orphans = 0;
    s->tombs = 0;
    s->sizever++;
    Py_RETURN_NONE;
}

enum { IT_KEYS, IT_VALUES, IT_ITEMS };
typedef struct {
    PyObject_HEAD
    Table *table;
    uint32_t pos;
    uint64_t sizever;
    int kind;
} TableIter;

static PyObject *table_iter_new(Table *s, int kind) {
    TableIter *it = PyObject_New(TableIter, &TableIterType);
    if (!it) return NULL;
    Py_INCREF(s);
    it->table = s; it->pos = 0; it->sizever = s->sizever; it->kind = kind;
    return (PyObject *)it;
}
static void TableIter_dealloc(TableIter *it) { Py_DECREF(it->table); PyObject_Free(it); }

static PyObject *TableIter_next(TableIter *it) {
    Table *s = it->table;
    if (s->sizever != it->sizever) {
        if (it->pos < s->nslots) PyErr_SetString(PyExc_RuntimeError, "node table changed size during iteration");
        it->pos = s->nslots;
        return NULL;
    }
    while (it->pos < s->nslots) {
        uint32_t i = it->pos++;
        Rec *r = s->slots[i];
        if (SLOT_FREE(r) || (r->flags & F_DETACHED)) continue;
        if (it->kind == IT_VALUES) return (PyObject *)handle_new(s, i);
        PyObject *k = rec_key(r, 0);
        if (it->kind == IT_KEYS || !k) return k;
        PyObject *v = (PyObject *)handle_new(s, i);
        if (!v) { Py_DECREF(k); return NULL; }
        PyObject *t = PyTuple_New(2);
        if (!t) { Py_DECREF(k); Py_DECREF(v); return NULL; }
        PyTuple_SET_ITEM(t, 0, k);
        PyTuple_SET_ITEM(t, 1, v);
        return t;
    }
    return NULL;
}

static PyObject *Table_iter(Table *s) { return table_iter_new(s, IT_KEYS); }
static PyObject *Table_keys(Table *s, PyObject *u) { return table_iter_new(s, IT_KEYS); }
static PyObject *Table_values(Table *s, PyObject *u) { return table_iter_new(s, IT_VALUES); }
static PyObject *Table_items(Table *s, PyObject *u) { return table_iter_new(s, IT_ITEMS); }

/* the rows a pickled table is made again from (`from_rows`): (path, data, acl, czxid, mzxid, ctime, mtime, version, cversion, aversion, owner, pzxid) */
static PyObject *Table_rows(Table *s, PyObject *unused) {
    PyObject *out = PyList_New(0);
    if (!out) return NULL;
    for (uint32_t i = 0; i < s->nslots; i++) {
        Rec *r = s->slots[i];
        if (SLOT_FREE(r) || (r->flags & F_DETACHED)) continue;
        PyObject *k = rec_key(r, 0);
        PyObject *data = (r->flags & F_NONE) ? (Py_INCREF(Py_None), Py_None)
                                             : PyBytes_FromStringAndSize(rec_data(r), r->datalen);
        if (!k || !data) { Py_XDECREF(k); Py_XDECREF(data); Py_DECREF(out); return NULL; }
        /* "N" hands k and data to the row, even when making it fails */
        PyObject *row = Py_BuildValue(
            "(NNOLLLLiiiLL)", k, data, PyList_GET_ITEM(acl_list, r->acl), (long long)r->czxid,
            (long long)r_mzxid(r), (long long)r->ctime, (long long)r_mtime(r), r_ver(r, 0),
            r_ver(r, 1), r_ver(r, 2), (long long)r_owner(r), (long long)r_pzxid(r));
        if (!row) { Py_DECREF(out); return NULL; }
        int rc = PyList_Append(out, row);
        Py_DECREF(row);
        if (rc < 0) { Py_DECREF(out); return NULL; }
    }
    return out;
}

static PyObject *from_rows_fn;

static PyObject *Table_reduce(Table *s, PyObject *unused) {
    PyObject *rows = Table_rows(s, NULL);
    if (!rows) return NULL;
    return Py_BuildValue("(O(N))", from_rows_fn, rows);
}

static PyMethodDef Table_methods[] = {
    {"get", (PyCFunction)(void (*)(void))Table_get, METH_FASTCALL, NULL},
    {"remove", (PyCFunction)(void (*)(void))Table_remove, METH_FASTCALL, NULL},
    {"restore", (PyCFunction)(void (*)(void))Table_restore, METH_FASTCALL, NULL},
    {"add", (PyCFunction)(void (*)(void))Table_add, METH_FASTCALL, NULL},
    {"link", (PyCFunction)Table_link, METH_NOARGS, "file every node whose parent is present"},
    {"clear", (PyCFunction)Table_clear, METH_NOARGS, NULL},
    {"keys", (PyCFunction)Table_keys, METH_NOARGS, NULL},
    {"values", (PyCFunction)Table_values, METH_NOARGS, NULL},
    {"items", (PyCFunction)Table_items, METH_NOARGS, NULL},
    {"__reduce__", (PyCFunction)Table_reduce, METH_NOARGS, NULL},
    {NULL}
};


static PyMappingMethods Table_map = {
    .mp_length = (lenfunc)Table_len,
    .mp_subscript = (binaryfunc)Table_getitem,
};
static PySequenceMethods Table_seq = { .sq_contains = (objobjproc)Table_contains };

static PyTypeObject TableType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "zkserver.tree._nodetable.NodeTable",
    .tp_basicsize = sizeof(Table),
    .tp_dealloc = (destructor)Table_dealloc,
    .tp_as_mapping = &Table_map,
    .tp_as_sequence = &Table_seq,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_iter = (getiterfunc)Table_iter,
    .tp_methods = Table_methods,
    .tp_new = Table_new,
};

static PyTypeObject TableIterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "zkserver.tree._nodetable.TableIter",
    .tp_basicsize = sizeof(TableIter),
    .tp_dealloc = (destructor)TableIter_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)TableIter_next,
};

static PyObject *mod_from_rows(PyObject *m, PyObject *rows) {
    Table *s = (Table *)Table_new(&TableType, NULL, NULL);
    if (!s) return NULL;
    PyObject *it = PyObject_GetIter(rows), *row;
    if (!it) { Py_DECREF(s); return NULL; }
    while ((row = PyIter_Next(it))) {
        PyObject *r = PyTuple_Check(row) && PyTuple_GET_SIZE(row) == 12
            ? Table_restore(s, &PyTuple_GET_ITEM(row, 0), 12) : (PyErr_SetString(PyExc_TypeError, "bad row"), NULL);
        Py_DECREF(row);
        if (!r) { Py_DECREF(it); Py_DECREF(s); return NULL; }
        Py_DECREF(r);
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) { Py_DECREF(s); return NULL; }
    PyObject *n = Table_link(s, NULL);
    Py_XDECREF(n);
    return (PyObject *)s;
}

static PyMethodDef mod_methods[] = {
    {"from_rows", (PyCFunction)mod_from_rows, METH_O, "a NodeTable from rows (unpickling)"},
    {NULL}
};

static struct PyModuleDef moddef = {PyModuleDef_HEAD_INIT, "zkserver.tree._nodetable", NULL, -1, mod_methods};

PyMODINIT_FUNC PyInit__nodetable(void) {
    if (PyType_Ready(&TableType) < 0 || PyType_Ready(&NodeType) < 0 ||
        PyType_Ready(&ChildIterType) < 0 || PyType_Ready(&TableIterType) < 0) return NULL;
    PyObject *m = PyModule_Create(&moddef);
    if (!m) return NULL;
    acl_list = PyList_New(0);
    acl_ids = PyDict_New();
    if (!acl_list || !acl_ids) return NULL;
    Py_INCREF(&TableType);
    PyModule_AddObject(m, "NodeTable", (PyObject *)&TableType);
    Py_INCREF(&NodeType);
    PyModule_AddObject(m, "Node", (PyObject *)&NodeType);
    from_rows_fn = PyObject_GetAttrString(m, "from_rows");
    if (!from_rows_fn) return NULL;
    return m;
}
