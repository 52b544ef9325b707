/* Compiled twin of the locked work of plasmite_core.pool: one append, one
 * batch chunk, get by seq. pool.py holds the reference (PoolFile._append_py,
 * _append_chunk_py, _get_frame_py); tests/test_core_speedups.py compares the
 * files byte for byte.
 *
 * The caller holds the write lock (flock and the thread lock stay in Python)
 * and wakes followers. Whatever is unusual (a state slot pair that fails its
 * CRCs, a deleted pool, a damaged frame at the tail, values near 2**64, items
 * that are not bytes) answers PUNT before anything is written: the Python
 * path then does the same work and raises the same error. Every offset read
 * from the file is reduced modulo the ring or bounds-checked before use.
 *
 * A batch's items are a list of (tags, payload) tuples or an Elements
 * (jsonsplit.h: Pool.extend's batch, split from one encoded array), read
 * in place. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <sys/file.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "crc32.h"
#include "jsonsplit.h"

#define PAD_MARK 0x50414400u
#define MIN_FRAME 40
#define HEADER_SIZE 4096
#define STATE_A 128
#define STATE_B 192
#define NOTIFY 256
#define WAITER 264
#define LIFECYCLE 272
#define LIFE_DELETED 0x21444554454c4544ull /* b"DELETED!" little endian */
#define BIG (1ull << 62)                   /* larger logical values: let Python handle them */

/* Fault steps, numbered as pool.FAULT_STEPS ("locked" = 0 stays in Python). */
enum { F_EVICT = 1, F_PAD = 2, F_FRAME = 3, F_INDEX = 4, F_STATE = 5 };

#if defined(__GNUC__) || defined(__clang__)
#define RELEASE() __atomic_thread_fence(__ATOMIC_RELEASE)
#define ACQUIRE() __atomic_thread_fence(__ATOMIC_ACQUIRE)
#else
#define RELEASE() ((void)0)
#define ACQUIRE() ((void)0)
#endif

static PyObject *PUNT; /* the int 0: "take the Python path" */

static uint32_t rd32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t rd64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static uint16_t rd16(const unsigned char *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static void wr32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static void wr64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }

typedef struct {
    PyObject_HEAD
    Py_buffer view;
    int held;
    int writable;
    unsigned char *base;
    uint64_t ro, R, io, icap;
    PyObject *clock; /* None: CLOCK_REALTIME (time.time_ns); else a callable (tests) */
    PyObject *wake;  /* called by locked_append while a follower's deadline lies ahead */
} Ring;

typedef struct { uint64_t gen, head, tail, newest, oldest, ntime; } State;

/* The valid slot with the higher generation, as PoolFile._state_fields. */
static int read_state(const unsigned char *b, State *st) {
    unsigned char a[64], c[64];
    memcpy(a, b + STATE_A, 64);
    memcpy(c, b + STATE_B, 64);
    ACQUIRE();
    int a_ok = crc32_of(a, 48) == rd32(a + 48), c_ok = crc32_of(c, 48) == rd32(c + 48);
    const unsigned char *s;
    if (rd64(a) >= rd64(c)) s = a_ok ? a : c_ok ? c : NULL;
    else s = c_ok ? c : a_ok ? a : NULL;
    if (!s) return -1;
    st->gen = rd64(s); st->head = rd64(s + 8); st->tail = rd64(s + 16);
    st->newest = rd64(s + 24); st->oldest = rd64(s + 32); st->ntime = rd64(s + 40);
    return 0;
}

static void state_image(unsigned char img[52], uint64_t gen, uint64_t head, uint64_t tail, uint64_t newest,
                        uint64_t oldest, uint64_t ntime) {
    wr64(img, gen); wr64(img + 8, head); wr64(img + 16, tail);
    wr64(img + 24, newest); wr64(img + 32, oldest); wr64(img + 40, ntime);
    wr32(img + 48, crc32_of(img, 48));
}

/* Write the state slot of ``gen`` (only its first ``n`` bytes: a torn publish). */
static void publish(Ring *r, size_t n, uint64_t gen, uint64_t head, uint64_t tail, uint64_t newest,
                    uint64_t oldest, uint64_t ntime) {
    unsigned char img[52];
    state_image(img, gen, head, tail, newest, oldest, ntime);
    RELEASE();
    memcpy(r->base + ((gen & 1) ? STATE_A : STATE_B), img, n);
}

/* Frame bytes at dst: prefix, header, tags, payload, and (zero_pad) the zeros
 * up to flen. The CRC covers header (after the prefix), tags and payload. */
static void put_frame(unsigned char *dst, uint32_t flen, uint64_t seq, uint64_t t, const char *tg, Py_ssize_t tl,
                      const char *pl, Py_ssize_t pll, int zero_pad) {
    unsigned char *h = dst + 8;
    wr64(h, seq); wr64(h + 8, t); wr32(h + 16, (uint32_t)pll);
    h[20] = (unsigned char)(tl & 0xFF); h[21] = (unsigned char)(tl >> 8); h[22] = 1; h[23] = 0;
    memcpy(dst + 32, tg, tl);
    memcpy(dst + 32 + tl, pl, pll);
    wr32(dst, flen);
    wr32(dst + 4, crc32_of(h, 24 + tl + pll) | 1u);
    if (zero_pad) memset(dst + 32 + tl + pll, 0, flen - 32 - tl - pll);
}

/* plan_placement of format.py. Returns 0, or -1 (a frame larger than the
 * ring), -2 (a batch that would evict its own frames). */
static int plan(uint64_t head, uint64_t R, const uint32_t *len, Py_ssize_t n, uint64_t *pos_out,
                uint64_t *pad_pos, uint64_t *pad_room, Py_ssize_t *npads, uint64_t *new_head, int64_t *need) {
    uint64_t pos = head;
    Py_ssize_t np = 0;
    for (Py_ssize_t k = 0; k < n; k++) {
        if (len[k] > R) return -1;
        uint64_t room = R - pos % R;
        if (room < len[k]) { pad_pos[np] = pos; pad_room[np] = room; np++; pos += room; }
        pos_out[k] = pos;
        pos += len[k];
    }
    int64_t nd = (int64_t)pos - (int64_t)R;
    if (n && nd > (int64_t)head) {
        uint64_t first = pos_out[0];
        if (nd > (int64_t)first) return -2;
        nd = (int64_t)first;
        Py_ssize_t kept = 0;
        for (Py_ssize_t k = 0; k < np; k++)
            if (pad_pos[k] >= first) { pad_pos[kept] = pad_pos[k]; pad_room[kept] = pad_room[k]; kept++; }
        np = kept;
    }
    *npads = np;
    *new_head = pos;
    *need = nd;
    return 0;
}

/* PoolFile._evict: step the tail over whole frames up to ``need``; -1 on a
 * damaged frame or pad (the Python path raises its Corrupt error). */
static int evict(Ring *r, uint64_t *tail, uint64_t *oldest, uint64_t need, uint64_t head, uint64_t newest) {
    if (need >= head) { *tail = need; *oldest = newest + 1; return 0; }
    const unsigned char *ring = r->base + r->ro;
    uint64_t R = r->R, t = *tail, old = *oldest;
    while (t < need) {
        uint64_t phys = t % R;
        uint32_t flen = rd32(ring + phys), crc = rd32(ring + phys + 4);
        if (crc == PAD_MARK) {
            if (flen < 8 || (flen & 7) || phys + flen > R) return -1;
            t += flen;
            continue;
        }
        uint64_t seq = R - phys >= 16 ? rd64(ring + phys + 8) : 0;
        if (flen < MIN_FRAME || (flen & 7) || phys + flen > R || seq < old || seq >= BIG) return -1; /* seq + 1 must not wrap */
        t += flen;
        old = seq + 1;
    }
    *tail = t;
    *oldest = old;
    return 0;
}

static int now_ns(Ring *r, uint64_t *out) {
    if (r->clock == NULL || r->clock == Py_None) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        *out = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
        return 0;
    }
    PyObject *v = PyObject_CallNoArgs(r->clock);
    if (!v) return -1;
    *out = PyLong_AsUnsignedLongLong(v);
    Py_DECREF(v);
    return PyErr_Occurred() ? -1 : 0;
}

/* The usable writer state, or -1 (PUNT): both slots bad, deleted, positions
 * not on a frame boundary, or values whose arithmetic the fixed-width code
 * would not do as Python does. */
static int writer_state(Ring *r, State *st) {
    if (rd64(r->base + LIFECYCLE) == LIFE_DELETED) return -1;
    if (read_state(r->base, st) < 0) return -1;
    if (st->gen >= BIG || st->head >= BIG || st->tail >= BIG || st->newest >= BIG || st->oldest >= BIG ||
        st->ntime >= BIG || (st->head & 7) || (st->tail & 7))
        return -1; /* an unaligned head or tail would read and write across the ring end */
    return 0;
}

static int check(Ring *r, int write) {
    if (!r->held) { PyErr_SetString(PyExc_ValueError, "ring is released"); return -1; }
    if (write && !r->writable) { PyErr_SetString(PyExc_ValueError, "ring is read-only"); return -1; }
    return 0;
}

/* Fault bookkeeping: step ``fstep`` fires at its ``fleft``-th reach. */
typedef struct { int step; long left, reached; } Fault;
#define REACHED(f, k) ((f).step == (k) && ++(f).reached == (f).left)

static PyObject *done(Fault *f, uint64_t a, uint64_t t) {
    if (f->step) return Py_BuildValue("(KKl)", (unsigned long long)a, (unsigned long long)t, f->reached);
    return Py_BuildValue("(KK)", (unsigned long long)a, (unsigned long long)t);
}

static PyObject *fired(int step) { return PyLong_FromLong(-step); }

static int parse_fault(PyObject *const *args, Py_ssize_t nargs, Py_ssize_t at, Fault *f) {
    f->step = 0; f->left = 0; f->reached = 0;
    if (nargs > at) {
        long s = PyLong_AsLong(args[at]);
        long l = nargs > at + 1 ? PyLong_AsLong(args[at + 1]) : 1;
        if (PyErr_Occurred()) return -1;
        f->step = (int)s;
        f->left = l;
    }
    return 0;
}

/* append(tags, payload[, fault_step, fault_left]) -> (seq, time_ns) | 0 (PUNT)
 * | -step (a fault fired) | (seq, time_ns, reached) when a fault is armed. */
static PyObject *append_one(Ring *r, PyObject *tags, PyObject *payload, Fault f) {
    if (!PyBytes_Check(tags) || !PyBytes_Check(payload)) return Py_NewRef(PUNT);
    Py_ssize_t tl = PyBytes_GET_SIZE(tags), pll = PyBytes_GET_SIZE(payload);
    uint64_t R = r->R;
    if (tl > 0xFFFF || (uint64_t)pll > 0xFFFFFFFFull || (uint64_t)(39 + tl + pll) > R + 7) return Py_NewRef(PUNT);
    uint32_t flen = (uint32_t)((39 + tl + pll) & ~(Py_ssize_t)7);
    State st;
    if (writer_state(r, &st) < 0) return Py_NewRef(PUNT);
    uint64_t gen = st.gen, head = st.head, tail = st.tail, newest = st.newest, oldest = st.oldest;
    uint64_t pos, end, pad_pos = 0, pad_room = 0;
    Py_ssize_t npads = 0;
    int64_t need;
    if (plan(head, R, &flen, 1, &pos, &pad_pos, &pad_room, &npads, &end, &need) < 0) return Py_NewRef(PUNT);
    int evicting = need > (int64_t)tail;
    if (evicting && evict(r, &tail, &oldest, (uint64_t)need, head, newest) < 0) return Py_NewRef(PUNT);
    /* From here on nothing punts: the write begins. */
    uint64_t t;
    if (now_ns(r, &t) < 0) return NULL;
    if (t < st.ntime) t = st.ntime;
    unsigned char *ring = r->base + r->ro;
    if (evicting) {
        gen++;
        publish(r, 52, gen, head, tail < head ? tail : head, newest, oldest, st.ntime);
        if (REACHED(f, F_EVICT)) return fired(F_EVICT);
    }
    if (npads) {
        uint64_t p = pad_pos % R;
        wr32(ring + p, (uint32_t)pad_room);
        wr32(ring + p + 4, PAD_MARK);
        if (REACHED(f, F_PAD)) return fired(F_PAD);
    }
    uint64_t seq = newest + 1, phys = pos % R;
    const char *tg = PyBytes_AS_STRING(tags), *pl = PyBytes_AS_STRING(payload);
    if (REACHED(f, F_FRAME)) { /* torn frame: half its bytes */
        unsigned char *tmp = PyMem_Malloc(flen);
        if (!tmp) return PyErr_NoMemory();
        put_frame(tmp, flen, seq, t, tg, tl, pl, pll, 0);
        memcpy(ring + phys, tmp, (size_t)(32 + tl + pll) / 2);
        PyMem_Free(tmp);
        return fired(F_FRAME);
    }
    /* A single append writes no padding zeros (the Python path neither). */
    put_frame(ring + phys, flen, seq, t, tg, tl, pl, pll, 0);
    if (r->icap) wr32(r->base + r->io + (seq % r->icap) * 4, (uint32_t)((phys >> 3) + 1));
    if (REACHED(f, F_INDEX)) return fired(F_INDEX);
    gen++;
    if (REACHED(f, F_STATE)) { publish(r, 26, gen, end, tail, seq, oldest, t); return fired(F_STATE); }
    publish(r, 52, gen, end, tail, seq, oldest, t);
    RELEASE();
    __atomic_store_n((uint64_t *)(r->base + NOTIFY), gen & 0xFFFFFFFFull, __ATOMIC_RELEASE);
    return done(&f, seq, t);
}

static PyObject *Ring_append(Ring *r, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs < 2) { PyErr_SetString(PyExc_TypeError, "append(tags, payload[, step, left])"); return NULL; }
    if (check(r, 1) < 0) return NULL;
    Fault f;
    if (parse_fault(args, nargs, 2, &f) < 0) return NULL;
    return append_one(r, args[0], args[1], f);
}

/* locked_append(fd, tags, payload) -> (seq, time_ns) | 0 (PUNT) | None (the
 * flock is taken: wait for it in Python). Takes and drops the flock of ``fd``
 * itself (the caller holds the thread lock), then calls ``wake`` if a
 * follower may be asleep; no fault point. A closed or read-only ring, or a
 * frame larger than the ring, answers PUNT before locking: the Python path
 * raises the error. */
static PyObject *Ring_locked_append(Ring *r, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) { PyErr_SetString(PyExc_TypeError, "locked_append(fd, tags, payload)"); return NULL; }
    if (!r->held || !r->writable) return Py_NewRef(PUNT);
    PyObject *tags = args[1], *payload = args[2];
    if (!PyBytes_Check(tags) || !PyBytes_Check(payload) ||
        (uint64_t)(39 + PyBytes_GET_SIZE(tags) + PyBytes_GET_SIZE(payload)) > r->R + 7)
        return Py_NewRef(PUNT);
    long fd = PyLong_AsLong(args[0]);
    if (fd == -1 && PyErr_Occurred()) return NULL;
    if (fd < 0 || fd > INT32_MAX || flock((int)fd, LOCK_EX | LOCK_NB) < 0) Py_RETURN_NONE; /* busy, EINTR, ...: Python's path decides */
    Fault none = {0, 0, 0};
    PyObject *res = append_one(r, tags, payload, none);
    if (flock((int)fd, LOCK_UN) < 0 && res) {
        Py_DECREF(res);
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    if (res && PyTuple_Check(res) && r->wake && r->wake != Py_None) {
        unsigned long long t = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(res, 1));
        if (rd64(r->base + WAITER) > t) {
            PyObject *w = PyObject_CallNoArgs(r->wake);
            if (!w) { Py_DECREF(res); return NULL; }
            Py_DECREF(w);
        }
    }
    return res;
}

/* A batch's items: a list of (tags, payload) tuples or an Elements. */
static Py_ssize_t items_len(PyObject *items) {
    return Py_IS_TYPE(items, &ElementsType) ? ((Elements *)items)->n : PyList_GET_SIZE(items);
}

/* The tags and payload of item ``k`` (checked: bytes, sizes a frame holds), or -1. */
static int item_at(PyObject *items, Py_ssize_t k, const char **tg, Py_ssize_t *tl, const char **pl, Py_ssize_t *pll) {
    if (Py_IS_TYPE(items, &ElementsType)) {
        Elements *e = (Elements *)items;
        Py_ssize_t s = el_start(e, k);
        *tg = PyBytes_AS_STRING(e->tags);
        *tl = PyBytes_GET_SIZE(e->tags);
        *pl = PyBytes_AS_STRING(e->array) + s;
        *pll = e->ends[k] - s;
    } else {
        PyObject *it = PyList_GET_ITEM(items, k);
        if (!PyTuple_Check(it) || PyTuple_GET_SIZE(it) != 2) return -1;
        PyObject *t = PyTuple_GET_ITEM(it, 0), *p = PyTuple_GET_ITEM(it, 1);
        if (!PyBytes_Check(t) || !PyBytes_Check(p)) return -1;
        *tg = PyBytes_AS_STRING(t);
        *tl = PyBytes_GET_SIZE(t);
        *pl = PyBytes_AS_STRING(p);
        *pll = PyBytes_GET_SIZE(p);
    }
    return *tl > 0xFFFF || (uint64_t)*pll > 0xFFFFFFF0ull ? -1 : 0;
}

/* chunk_ends(items) -> [end of each locked chunk] | index of the first frame
 * larger than the ring | None (items the Python path must handle). Chunks
 * hold at most half the ring (a larger frame is a chunk of its own). */
static PyObject *Ring_chunk_ends(Ring *r, PyObject *items) {
    if (check(r, 0) < 0) return NULL;
    if (!PyList_Check(items) && !Py_IS_TYPE(items, &ElementsType)) Py_RETURN_NONE;
    Py_ssize_t n = items_len(items);
    uint64_t R = r->R;
    const char *tg, *pl;
    Py_ssize_t tl, pll;
    for (Py_ssize_t k = 0; k < n; k++) {
        if (item_at(items, k, &tg, &tl, &pl, &pll) < 0) Py_RETURN_NONE;
        if ((uint64_t)((39 + tl + pll) & ~7) > R) return PyLong_FromSsize_t(k);
    }
    PyObject *ends = PyList_New(0);
    if (!ends) return NULL;
    Py_ssize_t i = 0;
    while (i < n) {
        Py_ssize_t j = i;
        uint64_t total = 0;
        while (j < n) {
            item_at(items, j, &tg, &tl, &pl, &pll); /* checked above */
            uint64_t fl = (uint64_t)((39 + tl + pll) & ~7);
            if (j != i && total + fl > R / 2) break;
            total += fl;
            j++;
        }
        PyObject *e = PyLong_FromSsize_t(j);
        if (!e || PyList_Append(ends, e) < 0) { Py_XDECREF(e); Py_DECREF(ends); return NULL; }
        Py_DECREF(e);
        i = j;
    }
    return ends;
}

/* append_chunk(items, i, j[, fault_step, fault_left]) -> (first_seq, time_ns)
 * | 0 (PUNT) | -step | (first_seq, time_ns, reached): items[i:j] under the
 * caller's lock, as PoolFile._append_chunk_py. */
static PyObject *Ring_append_chunk(Ring *r, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs < 3 || (!PyList_Check(args[0]) && !Py_IS_TYPE(args[0], &ElementsType))) {
        PyErr_SetString(PyExc_TypeError, "append_chunk(items, i, j[, step, left])");
        return NULL;
    }
    if (check(r, 1) < 0) return NULL;
    PyObject *items = args[0];
    Py_ssize_t i = PyLong_AsSsize_t(args[1]), j = PyLong_AsSsize_t(args[2]);
    if (PyErr_Occurred()) return NULL;
    Fault f;
    if (parse_fault(args, nargs, 3, &f) < 0) return NULL;
    if (i < 0 || j > items_len(items) || j <= i) { PyErr_SetString(PyExc_ValueError, "bad chunk bounds"); return NULL; }
    Py_ssize_t n = j - i;
    uint64_t R = r->R;
    uint32_t *len = PyMem_Malloc(n * sizeof(uint32_t));
    uint64_t *buf = PyMem_Malloc(n * 3 * sizeof(uint64_t));
    unsigned char *tmp = NULL;
    PyObject *result = NULL;
    if (!len || !buf) { result = PyErr_NoMemory(); goto out; }
    uint64_t *pos = buf, *pad_pos = buf + n, *pad_room = buf + 2 * n;
    const char *tg, *pl;
    Py_ssize_t tl, pll;
    for (Py_ssize_t k = 0; k < n; k++) {
        if (item_at(items, i + k, &tg, &tl, &pl, &pll) < 0) { result = Py_NewRef(PUNT); goto out; }
        uint64_t fl = (uint64_t)((39 + tl + pll) & ~7);
        if (fl > R) { result = Py_NewRef(PUNT); goto out; }
        len[k] = (uint32_t)fl;
    }
    State st;
    if (writer_state(r, &st) < 0) { result = Py_NewRef(PUNT); goto out; }
    uint64_t gen = st.gen, head = st.head, tail = st.tail, newest = st.newest, oldest = st.oldest, new_head;
    Py_ssize_t npads;
    int64_t need;
    if (plan(head, R, len, n, pos, pad_pos, pad_room, &npads, &new_head, &need) < 0) { result = Py_NewRef(PUNT); goto out; }
    int evicting = need > (int64_t)tail;
    if (evicting && evict(r, &tail, &oldest, (uint64_t)need, head, newest) < 0) { result = Py_NewRef(PUNT); goto out; }
    /* From here on nothing punts. */
    unsigned char *ring = r->base + r->ro;
    if (evicting) {
        gen++;
        publish(r, 52, gen, head, tail < head ? tail : head, newest, oldest, st.ntime);
        if (REACHED(f, F_EVICT)) { result = fired(F_EVICT); goto out; }
    }
    for (Py_ssize_t k = 0; k < npads; k++) {
        uint64_t p = pad_pos[k] % R;
        wr32(ring + p, (uint32_t)pad_room[k]);
        wr32(ring + p + 4, PAD_MARK);
    }
    if (npads && REACHED(f, F_PAD)) { result = fired(F_PAD); goto out; }
    uint64_t t;
    if (now_ns(r, &t) < 0) goto out;
    if (t < st.ntime) t = st.ntime;
    /* Runs: frames between pads are contiguous; a run also ends where a frame
     * ends exactly at the ring end. Each run boundary is a frame_written
     * reach, as in the Python path (which copies a run at once). If the last
     * reach is the one that fires, the last run is torn: built aside, then
     * half of it copied. */
    Py_ssize_t last_run = 0;
    long runs = 0;
    for (Py_ssize_t k = 0; k < n; k++)
        if (k == 0 || pos[k] != pos[k - 1] + len[k - 1] || pos[k] % R == 0) { last_run = k; runs++; }
    int torn = f.step == F_FRAME && f.reached + runs == f.left;
    uint64_t run_bytes = pos[n - 1] + len[n - 1] - pos[last_run];
    if (torn && !(tmp = PyMem_Malloc(run_bytes))) { result = PyErr_NoMemory(); goto out; }
    uint64_t seq = newest;
    for (Py_ssize_t k = 0; k < n; k++) {
        seq++;
        if (k && (pos[k] != pos[k - 1] + len[k - 1] || pos[k] % R == 0) && REACHED(f, F_FRAME)) {
            result = fired(F_FRAME);
            goto out;
        }
        item_at(items, i + k, &tg, &tl, &pl, &pll); /* checked above */
        uint64_t phys = pos[k] % R;
        unsigned char *dst = torn && k >= last_run ? tmp + (pos[k] - pos[last_run]) : ring + phys;
        put_frame(dst, len[k], seq, t, tg, tl, pl, pll, 1);
        if (r->icap) wr32(r->base + r->io + (seq % r->icap) * 4, (uint32_t)((phys >> 3) + 1));
    }
    if (torn) {
        memcpy(ring + pos[last_run] % R, tmp, run_bytes / 2);
        result = fired(F_FRAME);
        goto out;
    }
    if (REACHED(f, F_FRAME) || REACHED(f, F_INDEX)) { result = fired(f.step); goto out; }
    gen++;
    if (REACHED(f, F_STATE)) { publish(r, 26, gen, new_head, tail, seq, oldest, t); result = fired(F_STATE); goto out; }
    publish(r, 52, gen, new_head, tail, seq, oldest, t);
    RELEASE();
    __atomic_store_n((uint64_t *)(r->base + NOTIFY), gen & 0xFFFFFFFFull, __ATOMIC_RELEASE);
    result = done(&f, newest + 1, t);
out:
    PyMem_Free(len);
    PyMem_Free(buf);
    PyMem_Free(tmp);
    return result;
}

/* get(seq) -> (seq, time_ns, tags, payload) | None (not retained) | 0 (PUNT:
 * no index slot for it, a stale slot, or damage; the Python path decides). */
static PyObject *Ring_get(Ring *r, PyObject *arg) {
    if (check(r, 0) < 0) return NULL;
    unsigned long long want = PyLong_AsUnsignedLongLong(arg);
    if (want == (unsigned long long)-1 && PyErr_Occurred()) { PyErr_Clear(); return Py_NewRef(PUNT); }
    uint64_t seq = want, R = r->R;
    if (!r->icap) return Py_NewRef(PUNT);
    const unsigned char *ring = r->base + r->ro;
    for (int attempt = 0; attempt < 8; attempt++) {
        State st;
        if (read_state(r->base, &st) < 0) return Py_NewRef(PUNT);
        if (seq < st.oldest || seq > st.newest) Py_RETURN_NONE;
        uint32_t v = rd32(r->base + r->io + (seq % r->icap) * 4);
        if (!v) return Py_NewRef(PUNT);
        uint64_t phys = (uint64_t)(v - 1) << 3;
        if (phys + 40 > R) return Py_NewRef(PUNT);
        uint64_t pos = st.tail + (phys + R - st.tail % R) % R;
        if (pos >= st.head) return Py_NewRef(PUNT);
        unsigned char h[32];
        memcpy(h, ring + phys, 32);
        uint32_t flen = rd32(h), crc = rd32(h + 4), pl = rd32(h + 24), tl = rd16(h + 28);
        uint64_t fseq = rd64(h + 8), t = rd64(h + 16);
        State now;
        if (flen < MIN_FRAME || (flen & 7) || phys + flen > R || fseq != seq || crc == PAD_MARK ||
            ((32 + (uint64_t)tl + pl + 7) & ~7ull) != flen) {
            if (read_state(r->base, &now) == 0 && pos < now.tail) continue;  /* overwritten meanwhile */
            return Py_NewRef(PUNT);
        }
        /* flen <= R - phys bounds the copies below. */
        PyObject *tags = PyBytes_FromStringAndSize((const char *)ring + phys + 32, tl);
        PyObject *payload = tags ? PyBytes_FromStringAndSize((const char *)ring + phys + 32 + tl, pl) : NULL;
        if (!payload) { Py_XDECREF(tags); return NULL; }
        /* The CRC is checked on the copies: they are whole if it holds. */
        uint32_t c = crc32_more(0, h + 8, 24);
        c = crc32_more(c, (const unsigned char *)PyBytes_AS_STRING(tags), tl);
        c = crc32_more(c, (const unsigned char *)PyBytes_AS_STRING(payload), pl);
        if ((c | 1u) == crc)
            return Py_BuildValue("(KKNN)", (unsigned long long)fseq, (unsigned long long)t, tags, payload);
        Py_DECREF(tags);
        Py_DECREF(payload);
        if (read_state(r->base, &now) == 0 && pos < now.tail) continue;
        return Py_NewRef(PUNT);
    }
    Py_RETURN_NONE;
}

/* plan(head, ring_size, lengths) -> (pads, positions, head, need), as
 * format.plan_placement (for tests); ValueError as it. */
static PyObject *plan_py(PyObject *self, PyObject *args) {
    unsigned long long head, R;
    PyObject *lengths;
    if (!PyArg_ParseTuple(args, "KKO!", &head, &R, &PyList_Type, &lengths)) return NULL;
    if (head >= BIG || R == 0 || R >= BIG) { PyErr_SetString(PyExc_OverflowError, "out of range"); return NULL; }
    Py_ssize_t n = PyList_GET_SIZE(lengths);
    uint32_t *len = PyMem_Malloc((n ? n : 1) * sizeof(uint32_t));
    uint64_t *buf = PyMem_Malloc((n ? n : 1) * 3 * sizeof(uint64_t));
    PyObject *res = NULL;
    if (!len || !buf) { res = PyErr_NoMemory(); goto out; }
    for (Py_ssize_t k = 0; k < n; k++) {
        unsigned long long v = PyLong_AsUnsignedLongLong(PyList_GET_ITEM(lengths, k));
        if (PyErr_Occurred()) goto out;
        if (v > R) { PyErr_SetString(PyExc_ValueError, "frame larger than the ring"); goto out; }
        len[k] = (uint32_t)v;
    }
    Py_ssize_t npads;
    uint64_t new_head;
    int64_t need;
    int rc = plan(head, R, len, n, buf, buf + n, buf + 2 * n, &npads, &new_head, &need);
    if (rc == -1) { PyErr_SetString(PyExc_ValueError, "frame larger than the ring"); goto out; }
    if (rc == -2) { PyErr_SetString(PyExc_ValueError, "batch larger than the ring"); goto out; }
    PyObject *pads = PyList_New(npads), *positions = PyList_New(n);
    if (!pads || !positions) { Py_XDECREF(pads); Py_XDECREF(positions); goto out; }
    for (Py_ssize_t k = 0; k < npads; k++)
        PyList_SET_ITEM(pads, k, Py_BuildValue("(KK)", (unsigned long long)buf[n + k], (unsigned long long)buf[2 * n + k]));
    for (Py_ssize_t k = 0; k < n; k++) PyList_SET_ITEM(positions, k, PyLong_FromUnsignedLongLong(buf[k]));
    res = Py_BuildValue("(NNKL)", pads, positions, (unsigned long long)new_head, (long long)need);
out:
    PyMem_Free(len);
    PyMem_Free(buf);
    return res;
}

/* Ring(mapping, ring_offset, ring_size, index_offset, index_capacity) */
static int Ring_init(Ring *r, PyObject *args, PyObject *kw) {
    PyObject *mm;
    unsigned long long ro, R, io, icap;
    if (!PyArg_ParseTuple(args, "OKKKK", &mm, &ro, &R, &io, &icap)) return -1;
    if (r->held) { PyBuffer_Release(&r->view); r->held = 0; }
    if (PyObject_GetBuffer(mm, &r->view, PyBUF_WRITABLE) == 0) {
        r->writable = 1;
    } else {
        PyErr_Clear();
        if (PyObject_GetBuffer(mm, &r->view, PyBUF_SIMPLE) < 0) return -1;
        r->writable = 0;
    }
    r->held = 1;
    uint64_t size = (uint64_t)r->view.len;
    /* The geometry comes from the file: every later offset relies on these. */
    if (size < HEADER_SIZE || R < MIN_FRAME || (R & 7) || (ro & 7) || R >= BIG || ro > size || R > size - ro ||
        io < HEADER_SIZE || io > size || icap > (size - io) / 4 || (icap && icap >= BIG)) {
        PyBuffer_Release(&r->view);
        r->held = 0;
        PyErr_SetString(PyExc_ValueError, "ring geometry does not fit the mapping");
        return -1;
    }
    r->base = r->view.buf;
    r->ro = ro; r->R = R; r->io = io; r->icap = icap;
    return 0;
}

static PyObject *Ring_release(Ring *r, PyObject *unused) {
    if (r->held) { PyBuffer_Release(&r->view); r->held = 0; r->base = NULL; }
    Py_RETURN_NONE;
}

static void Ring_dealloc(Ring *r) {
    if (r->held) PyBuffer_Release(&r->view);
    Py_XDECREF(r->clock);
    Py_XDECREF(r->wake);
    Py_TYPE(r)->tp_free((PyObject *)r);
}

static PyMethodDef Ring_methods[] = {
    {"append", (PyCFunction)(void (*)(void))Ring_append, METH_FASTCALL, "Append one frame under the caller's lock."},
    {"locked_append", (PyCFunction)(void (*)(void))Ring_locked_append, METH_FASTCALL, "append, taking and dropping the flock."},
    {"chunk_ends", (PyCFunction)Ring_chunk_ends, METH_O, "Split a batch into locked chunks."},
    {"append_chunk", (PyCFunction)(void (*)(void))Ring_append_chunk, METH_FASTCALL, "Append items[i:j] under the caller's lock."},
    {"get", (PyCFunction)Ring_get, METH_O, "The verified frame of a retained seq."},
    {"release", (PyCFunction)Ring_release, METH_NOARGS, "Drop the mapping's buffer (before closing it)."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Ring_members[] = {
    {"clock", T_OBJECT, offsetof(Ring, clock), 0, "None (the real clock) or a callable giving time_ns (tests)."},
    {"wake", T_OBJECT, offsetof(Ring, wake), 0, "Called by locked_append when a follower may be asleep."},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject RingType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "plasmite_speedups._pool.Ring",
    .tp_basicsize = sizeof(Ring),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A pool file's mapping and geometry, for the compiled append and get.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Ring_init,
    .tp_dealloc = (destructor)Ring_dealloc,
    .tp_methods = Ring_methods,
    .tp_members = Ring_members,
};

static PyMethodDef methods[] = {
    {"split_objects", (PyCFunction)(void (*)(void))split_objects, METH_FASTCALL,
     "The (tags, element) items of an encoded JSON array of objects, or None."},
    {"plan", plan_py, METH_VARARGS, "format.plan_placement, compiled (for tests)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "plasmite_speedups._pool", NULL, -1, methods};

PyMODINIT_FUNC PyInit__pool(void) {
    const uint16_t probe = 1;
    if (*(const unsigned char *)&probe != 1) {
        PyErr_SetString(PyExc_ImportError, "plasmite_speedups needs a little-endian host");
        return NULL;
    }
    crc_init();
    scan_init();
    if (PyType_Ready(&RingType) < 0 || PyType_Ready(&ElementsType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    PUNT = PyLong_FromLong(0);
    Py_INCREF(&RingType);
    if (PyModule_AddObject(m, "Ring", (PyObject *)&RingType) < 0 || PyModule_AddObject(m, "PUNT", Py_NewRef(PUNT)) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
