/* Compiled twin of plasmite_core.framescan: the per-message loops of a ring
 * scan (frame checks, CRC-32, slicing) and of JSON envelope assembly.
 * plasmite_core.framescan is the reference; tests compare the two. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "crc32.h"
#include "envelope.h"

#define PAD_MARK 0x50414400u
#define MIN_FRAME 40
enum { END = 0, PAD = 1, BIG = 2, BADLEN = 3, BADCRC = 4 };

static uint32_t rd32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }  /* little-endian hosts */
static uint64_t rd64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static uint16_t rd16(const unsigned char *p) { uint16_t v; memcpy(&v, p, 2); return v; }

/* Joined: a scan sink for bulk decoded reads (Stream.poll_data). Instead of a
 * (seq, time, tags, payload) tuple per frame it keeps the payloads joined by
 * newlines and the non-empty tags likewise, ready for one decode_lines call
 * each. ``ok`` stays true while the seqs run on from the first expected one
 * and no payload is empty or holds a newline (nor any tags); else the caller
 * takes the per-frame path. len() and ``del sink[n:]`` work as on the list
 * the scan otherwise fills. */
typedef struct {
    PyObject_HEAD
    uint64_t first, expect;
    Py_ssize_t count, cap;
    int ok;
    char *pbuf, *tbuf;
    size_t plen, pcap, tlen, tcap;
    size_t *pend, *tend;
    Py_ssize_t *tcnt;
    Py_ssize_t tcount;
} Joined;

static void joined_dealloc(Joined *j) {
    PyMem_Free(j->pbuf);
    PyMem_Free(j->tbuf);
    PyMem_Free(j->pend);
    PyMem_Free(j->tend);
    PyMem_Free(j->tcnt);
    Py_TYPE(j)->tp_free((PyObject *)j);
}

static PyObject *joined_new(PyTypeObject *tp, PyObject *args, PyObject *kw) {
    unsigned long long first;
    if (!PyArg_ParseTuple(args, "K:Joined", &first)) return NULL;
    Joined *j = (Joined *)tp->tp_alloc(tp, 0);
    if (!j) return NULL;
    j->first = j->expect = first;
    j->ok = 1;
    return (PyObject *)j;
}

static int grow(char **buf, size_t *cap, size_t need) {
    if (need <= *cap) return 0;
    size_t n = *cap ? *cap : 4096;
    while (n < need) n *= 2;
    char *b = PyMem_Realloc(*buf, n);
    if (!b) { PyErr_NoMemory(); return -1; }
    *buf = b;
    *cap = n;
    return 0;
}

/* Add one frame's tags and payload; -1 with an exception on memory errors. */
static int joined_add(Joined *j, uint64_t seq, const char *tags, size_t tl, const char *pl, size_t pn) {
    if (j->count == j->cap) {
        Py_ssize_t n = j->cap ? j->cap * 2 : 1024;
        size_t *a = PyMem_Realloc(j->pend, n * sizeof(size_t));
        if (!a) { PyErr_NoMemory(); return -1; }
        j->pend = a;
        a = PyMem_Realloc(j->tend, n * sizeof(size_t));
        if (!a) { PyErr_NoMemory(); return -1; }
        j->tend = a;
        Py_ssize_t *c = PyMem_Realloc(j->tcnt, n * sizeof(Py_ssize_t));
        if (!c) { PyErr_NoMemory(); return -1; }
        j->tcnt = c;
        j->cap = n;
    }
    if (seq != j->expect || pn == 0 || memchr(pl, '\n', pn) || (tl && memchr(tags, '\n', tl))) j->ok = 0;
    j->expect = seq + 1;
    if (grow(&j->pbuf, &j->pcap, j->plen + pn + 1) < 0) return -1;
    if (j->count) j->pbuf[j->plen++] = '\n';
    memcpy(j->pbuf + j->plen, pl, pn);
    j->plen += pn;
    if (tl) {
        if (grow(&j->tbuf, &j->tcap, j->tlen + tl + 1) < 0) return -1;
        if (j->tcount) j->tbuf[j->tlen++] = '\n';
        memcpy(j->tbuf + j->tlen, tags, tl);
        j->tlen += tl;
        j->tcount++;
    }
    j->pend[j->count] = j->plen;
    j->tend[j->count] = j->tlen;
    j->tcnt[j->count] = j->tcount;
    j->count++;
    return 0;
}

static Py_ssize_t joined_len(Joined *j) { return j->count; }

/* del sink[n:]: keep the first n frames (a chunk the writers overtook is dropped). */
static int joined_ass(Joined *j, PyObject *key, PyObject *value) {
    Py_ssize_t start, stop, step;
    if (value != NULL || !PySlice_Check(key) || PySlice_Unpack(key, &start, &stop, &step) < 0 || step != 1) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "Joined supports only del sink[n:]");
        return -1;
    }
    PySlice_AdjustIndices(j->count, &start, &stop, step);
    if (stop != j->count) {
        PyErr_SetString(PyExc_TypeError, "Joined supports only del sink[n:]");
        return -1;
    }
    if (start < j->count) {
        j->ok = 0;  /* the seqs of what follows are no longer known: the caller rereads */
        j->count = start;
        j->plen = start ? j->pend[start - 1] : 0;
        j->tlen = start ? j->tend[start - 1] : 0;
        j->tcount = start ? j->tcnt[start - 1] : 0;
    }
    return 0;
}

/* append((seq, time_ns, tags, payload)): a frame the scan read on its own (larger than a chunk). */
static PyObject *joined_append(Joined *j, PyObject *fr) {
    if (!PyTuple_Check(fr) || PyTuple_GET_SIZE(fr) != 4 || !PyBytes_Check(PyTuple_GET_ITEM(fr, 2)) ||
        !PyBytes_Check(PyTuple_GET_ITEM(fr, 3))) {
        PyErr_SetString(PyExc_TypeError, "append takes a (seq, time_ns, tags, payload) frame");
        return NULL;
    }
    unsigned long long seq = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(fr, 0));
    if (PyErr_Occurred()) return NULL;
    PyObject *tags = PyTuple_GET_ITEM(fr, 2), *pl = PyTuple_GET_ITEM(fr, 3);
    if (joined_add(j, seq, PyBytes_AS_STRING(tags), PyBytes_GET_SIZE(tags), PyBytes_AS_STRING(pl),
                   PyBytes_GET_SIZE(pl)) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* take() -> (payloads joined, tags joined, number of tagged frames) */
static PyObject *joined_take(Joined *j, PyObject *unused) {
    return Py_BuildValue("(y#y#n)", j->pbuf ? j->pbuf : "", (Py_ssize_t)j->plen, j->tbuf ? j->tbuf : "",
                         (Py_ssize_t)j->tlen, j->tcount);
}

static PyObject *joined_get_ok(Joined *j, void *c) { return PyBool_FromLong(j->ok); }

static PyMethodDef joined_methods[] = {
    {"append", (PyCFunction)joined_append, METH_O, "Add a frame read on its own."},
    {"take", (PyCFunction)joined_take, METH_NOARGS, "(payloads, tags, tagged count), each joined by newlines."},
    {NULL},
};

static PyGetSetDef joined_getset[] = {
    {"ok", (getter)joined_get_ok, NULL, "Seqs contiguous from the first, no empty payload, no newline.", NULL},
    {NULL},
};

static PySequenceMethods joined_seq = {.sq_length = (lenfunc)joined_len};
static PyMappingMethods joined_map = {.mp_length = (lenfunc)joined_len, .mp_ass_subscript = (objobjargproc)joined_ass};

static PyTypeObject JoinedType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "plasmite_speedups._frames.Joined",
    .tp_doc = "Joined(first_seq): a scan sink that joins payloads and tags for one bulk decode.",
    .tp_basicsize = sizeof(Joined),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = joined_new,
    .tp_dealloc = (destructor)joined_dealloc,
    .tp_as_sequence = &joined_seq,
    .tp_as_mapping = &joined_map,
    .tp_methods = joined_methods,
    .tp_getset = joined_getset,
};

/* scan_chunk(buf, phys, ring_size, limit, out) -> (off, status) */
static PyObject *scan_chunk(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t phys, R, limit;
    PyObject *out;
    if (!PyArg_ParseTuple(args, "y*nnnO", &view, &phys, &R, &limit, &out)) return NULL;
    Joined *sink = Py_IS_TYPE(out, &JoinedType) ? (Joined *)out : NULL;
    if (!sink && !PyList_Check(out)) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_TypeError, "out must be a list or a Joined");
        return NULL;
    }
    const unsigned char *b = view.buf;
    Py_ssize_t n = view.len, off = 0;
    int status = END;
    while (off + 8 <= n) {
        if ((sink ? sink->count : PyList_GET_SIZE(out)) >= limit) break;
        uint32_t flen = rd32(b + off), crc = rd32(b + off + 4);
        uint64_t seq = 0, t = 0;
        uint32_t pl = 0, tl = 0;
        if (off + 32 <= n) {
            seq = rd64(b + off + 8);
            t = rd64(b + off + 16);
            pl = rd32(b + off + 24);
            tl = rd16(b + off + 28);
        }
        if (crc == PAD_MARK) { status = PAD; break; }
        if (flen < MIN_FRAME || (flen & 7) || phys + off + (Py_ssize_t)flen > R) { status = BADLEN; break; }
        if (off + (Py_ssize_t)flen > n) { status = BIG; break; }
        uint64_t covered = (uint64_t)tl + pl;
        if (((39 + covered) & ~(uint64_t)7) != flen || (crc32_of(b + off + 8, 24 + covered) | 1u) != crc) {
            status = BADCRC;
            break;
        }
        const char *start = (const char *)b + off + 32;
        if (sink) {
            if (joined_add(sink, seq, start, tl, start + tl, pl) < 0) { PyBuffer_Release(&view); return NULL; }
            off += flen;
            continue;
        }
        PyObject *tags = PyBytes_FromStringAndSize(start, tl);
        PyObject *payload = tags ? PyBytes_FromStringAndSize(start + tl, pl) : NULL;
        PyObject *item = payload ? PyTuple_New(4) : NULL;
        PyObject *pseq = item ? PyLong_FromUnsignedLongLong(seq) : NULL;
        PyObject *pt = pseq ? PyLong_FromUnsignedLongLong(t) : NULL;
        if (!pt) {
            Py_XDECREF(pseq);
            Py_XDECREF(item);
            Py_XDECREF(tags);
            Py_XDECREF(payload);
            PyBuffer_Release(&view);
            return NULL;
        }
        PyTuple_SET_ITEM(item, 0, pseq);  /* the tuple takes these references */
        PyTuple_SET_ITEM(item, 1, pt);
        PyTuple_SET_ITEM(item, 2, tags);
        PyTuple_SET_ITEM(item, 3, payload);
        PyObject_GC_UnTrack(item);  /* ints and bytes only: what the GC's own first pass would do */
        int rc = PyList_Append(out, item);
        Py_DECREF(item);
        if (rc < 0) { PyBuffer_Release(&view); return NULL; }
        off += flen;
    }
    PyBuffer_Release(&view);
    return Py_BuildValue("(ni)", off, status);
}

/* envelopes(frames) -> [b'{"seq":..,"time":"..","meta":{"tags":..},"data":..}'] */
static PyObject *envelopes(PyObject *self, PyObject *frames) {
    if (!PyList_Check(frames)) { PyErr_SetString(PyExc_TypeError, "frames must be a list"); return NULL; }
    Py_ssize_t count = PyList_GET_SIZE(frames);
    PyObject *out = PyList_New(count);
    if (!out) return NULL;
    SecondText cache = {-1, ""};
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *fr = PyList_GET_ITEM(frames, i);
        if (!PyTuple_Check(fr) || PyTuple_GET_SIZE(fr) != 4) { PyErr_SetString(PyExc_TypeError, "frame must be a 4-tuple"); goto fail; }
        unsigned long long seq = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(fr, 0));
        unsigned long long t = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(fr, 1));
        if (PyErr_Occurred()) goto fail;
        PyObject *tags = PyTuple_GET_ITEM(fr, 2), *data = PyTuple_GET_ITEM(fr, 3);
        if (!PyBytes_Check(tags) || !PyBytes_Check(data)) { PyErr_SetString(PyExc_TypeError, "tags and payload must be bytes"); goto fail; }
        const char *tg = PyBytes_AS_STRING(tags);
        Py_ssize_t tgl = PyBytes_GET_SIZE(tags);
        if (!tgl) { tg = "[]"; tgl = 2; }
        char head[ENVELOPE_HEAD_MAX];
        int hl = envelope_head(head, seq, t, &cache);
        if (hl < 0) { PyErr_SetString(PyExc_OverflowError, "time out of range"); goto fail; }
        Py_ssize_t dl = PyBytes_GET_SIZE(data);
        PyObject *env = PyBytes_FromStringAndSize(NULL, hl + tgl + 9 + dl + 1);
        if (!env) goto fail;
        char *p = PyBytes_AS_STRING(env);
        memcpy(p, head, hl); p += hl;
        memcpy(p, tg, tgl); p += tgl;
        memcpy(p, "},\"data\":", 9); p += 9;
        memcpy(p, PyBytes_AS_STRING(data), dl); p += dl;
        *p = '}';
        PyList_SET_ITEM(out, i, env);
    }
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

static PyObject *crc32_py(PyObject *self, PyObject *args) {
    Py_buffer view;
    if (!PyArg_ParseTuple(args, "y*", &view)) return NULL;
    uint32_t c = crc32_of(view.buf, view.len);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLong(c);
}

static PyMethodDef methods[] = {
    {"scan_chunk", scan_chunk, METH_VARARGS, "Parse the message frames of one ring chunk: (off, status)."},
    {"envelopes", envelopes, METH_O, "JSON envelopes of (seq, time_ns, tags, payload) frames."},
    {"crc32", crc32_py, METH_VARARGS, "zlib-compatible CRC-32 (for tests)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "plasmite_speedups._frames", NULL, -1, methods};

PyMODINIT_FUNC PyInit__frames(void) {
    const uint16_t probe = 1;
    if (*(const unsigned char *)&probe != 1) {  /* frames are little-endian; the pure path reads them anywhere */
        PyErr_SetString(PyExc_ImportError, "plasmite_speedups needs a little-endian host");
        return NULL;
    }
    crc_init();
    if (PyType_Ready(&JoinedType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&JoinedType);
    if (PyModule_AddObject(m, "Joined", (PyObject *)&JoinedType) < 0) {
        Py_DECREF(&JoinedType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
