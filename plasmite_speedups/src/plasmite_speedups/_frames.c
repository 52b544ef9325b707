/* Compiled twin of plasmite_core.framescan: the per-message loops of a ring
 * scan (frame checks, CRC-32, slicing) and of JSON envelope assembly.
 * plasmite_core.framescan is the reference; tests compare the two. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "crc32.h"

#define PAD_MARK 0x50414400u
#define MIN_FRAME 40
enum { END = 0, PAD = 1, BIG = 2, BADLEN = 3, BADCRC = 4 };

static uint32_t rd32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }  /* little-endian hosts */
static uint64_t rd64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static uint16_t rd16(const unsigned char *p) { uint16_t v; memcpy(&v, p, 2); return v; }

/* scan_chunk(buf, phys, ring_size, limit, out) -> (off, status) */
static PyObject *scan_chunk(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t phys, R, limit;
    PyObject *out;
    if (!PyArg_ParseTuple(args, "y*nnnO!", &view, &phys, &R, &limit, &PyList_Type, &out)) return NULL;
    const unsigned char *b = view.buf;
    Py_ssize_t n = view.len, off = 0;
    int status = END;
    while (off + 8 <= n) {
        if (PyList_GET_SIZE(out) >= limit) break;
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
    long long cached_sec = -1;
    char secbuf[64] = "";
    size_t seclen = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *fr = PyList_GET_ITEM(frames, i);
        if (!PyTuple_Check(fr) || PyTuple_GET_SIZE(fr) != 4) { PyErr_SetString(PyExc_TypeError, "frame must be a 4-tuple"); goto fail; }
        unsigned long long seq = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(fr, 0));
        unsigned long long t = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(fr, 1));
        if (PyErr_Occurred()) goto fail;
        PyObject *tags = PyTuple_GET_ITEM(fr, 2), *data = PyTuple_GET_ITEM(fr, 3);
        if (!PyBytes_Check(tags) || !PyBytes_Check(data)) { PyErr_SetString(PyExc_TypeError, "tags and payload must be bytes"); goto fail; }
        long long sec = (long long)(t / 1000000000ull);
        unsigned frac = (unsigned)(t % 1000000000ull);
        if (sec != cached_sec) {
            time_t tt = (time_t)sec;
            struct tm tm;
            if (!gmtime_r(&tt, &tm)) { PyErr_SetString(PyExc_OverflowError, "time out of range"); goto fail; }
            seclen = strftime(secbuf, sizeof secbuf, "%Y-%m-%dT%H:%M:%S", &tm);
            cached_sec = sec;
        }
        const char *tg = PyBytes_AS_STRING(tags);
        Py_ssize_t tgl = PyBytes_GET_SIZE(tags);
        if (!tgl) { tg = "[]"; tgl = 2; }
        char head[160];
        int hl = snprintf(head, sizeof head, "{\"seq\":%llu,\"time\":\"%.*s.%09uZ\",\"meta\":{\"tags\":", seq, (int)seclen, secbuf, frac);
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
    return PyModule_Create(&module);
}
