/* split_objects and Elements for _pool.c: one encoded JSON array of objects
 * split into its elements (Pool.extend's batches), with the validating scan
 * of each object; reference plasmite_core.jsonsplit.
 *
 * The scan relies on two sentinels: the array's last byte is its ']' (index
 * ``end``) and the byte after the array is NUL (a bytes object always holds
 * one), so the inner loops need no bounds test: every token is checked to
 * end before ``end`` afterwards. */
#ifndef PLASMITE_JSONSPLIT_H
#define PLASMITE_JSONSPLIT_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <string.h>

#define SCAN_MAX_DEPTH 1024 /* deeper objects are refused (the caller's fallback handles them) */

enum { C_STOP = 1, C_DIGIT = 2, C_WS = 4, C_HEX = 8 };
static unsigned char scan_cls[256];

static void scan_init(void) {
    for (int c = 0; c < 0x20; c++) scan_cls[c] |= C_STOP; /* raw control bytes end a string: invalid */
    scan_cls['"'] |= C_STOP;
    scan_cls['\\'] |= C_STOP;
    for (int c = '0'; c <= '9'; c++) scan_cls[c] |= C_DIGIT | C_HEX;
    for (int c = 'a'; c <= 'f'; c++) scan_cls[c] |= C_HEX;
    for (int c = 'A'; c <= 'F'; c++) scan_cls[c] |= C_HEX;
    scan_cls[' '] |= C_WS;
    scan_cls['\t'] |= C_WS;
    scan_cls['\n'] |= C_WS;
    scan_cls['\r'] |= C_WS;
}

#define IS(c, k) (scan_cls[(unsigned char)(c)] & (k))

/* The end of the string starting at b[p] == '"', or -1 (unterminated, a bad
 * escape or a raw control byte). */
static inline Py_ssize_t scan_string(const unsigned char *b, Py_ssize_t p, Py_ssize_t end) {
    p++;
    for (;;) {
        while (!IS(b[p], C_STOP)) p++; /* stops at the NUL sentinel at the latest */
        if (p >= end) return -1;
        unsigned char c = b[p];
        if (c == '"') return p + 1;
        if (c != '\\') return -1;
        c = b[p + 1]; /* at most b[end] */
        if (c == 'u') {
            if (end - p < 6 || !IS(b[p + 2], C_HEX) || !IS(b[p + 3], C_HEX) || !IS(b[p + 4], C_HEX) ||
                !IS(b[p + 5], C_HEX))
                return -1;
            p += 6;
        } else if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' || c == 't') {
            p += 2;
        } else {
            return -1;
        }
    }
}

/* The end of the number at b[p], or -1: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static inline Py_ssize_t scan_number(const unsigned char *b, Py_ssize_t p) {
    if (b[p] == '-') p++;
    if (!IS(b[p], C_DIGIT)) return -1;
    if (b[p] == '0') p++;
    else while (IS(b[p], C_DIGIT)) p++;
    if (b[p] == '.') {
        p++;
        if (!IS(b[p], C_DIGIT)) return -1;
        while (IS(b[p], C_DIGIT)) p++;
    }
    if ((b[p] | 0x20) == 'e') {
        p++;
        if (b[p] == '+' || b[p] == '-') p++;
        if (!IS(b[p], C_DIGIT)) return -1;
        while (IS(b[p], C_DIGIT)) p++;
    }
    return p;
}

/* The end of the valid JSON object starting at b[p] == '{' (whitespace
 * allowed inside it, as JSON does), or -1. */
static Py_ssize_t scan_object(const unsigned char *b, Py_ssize_t p, Py_ssize_t end) {
    unsigned char close[SCAN_MAX_DEPTH]; /* '}' or ']' of each open container */
    int depth = 0;
    close[depth++] = '}';
    p++;
    goto first_key;
value:
    while (IS(b[p], C_WS)) p++;
    if (p >= end) return -1;
    switch (b[p]) {
    case '{':
        if (depth == SCAN_MAX_DEPTH) return -1;
        close[depth++] = '}';
        p++;
        goto first_key;
    case '[':
        if (depth == SCAN_MAX_DEPTH) return -1;
        close[depth++] = ']';
        p++;
        while (IS(b[p], C_WS)) p++;
        if (b[p] == ']' && p < end) { p++; depth--; goto after; }
        goto value;
    case '"':
        if ((p = scan_string(b, p, end)) < 0) return -1;
        goto after;
    case 't':
        if (end - p < 4 || memcmp(b + p, "true", 4)) return -1;
        p += 4;
        goto after;
    case 'f':
        if (end - p < 5 || memcmp(b + p, "false", 5)) return -1;
        p += 5;
        goto after;
    case 'n':
        if (end - p < 4 || memcmp(b + p, "null", 4)) return -1;
        p += 4;
        goto after;
    default:
        if ((p = scan_number(b, p)) < 0) return -1;
        goto after;
    }
first_key: /* just after '{': a key or '}' */
    while (IS(b[p], C_WS)) p++;
    if (b[p] == '}' && p < end) { p++; depth--; goto after; }
key:
    while (IS(b[p], C_WS)) p++;
    if (p >= end || b[p] != '"' || (p = scan_string(b, p, end)) < 0) return -1;
    while (IS(b[p], C_WS)) p++;
    if (p >= end || b[p] != ':') return -1;
    p++;
    goto value;
after: /* a value ended: ',' or the close of its container */
    if (depth == 0) return p;
    while (IS(b[p], C_WS)) p++;
    if (p >= end) return -1;
    if (b[p] == ',') {
        p++;
        if (close[depth - 1] == '}') goto key;
        goto value;
    }
    if (b[p] != close[depth - 1]) return -1;
    p++;
    depth--;
    goto after;
}

#undef IS

/* Elements: the (tags, element) items of an encoded JSON array of objects,
 * held as the array and the end of each element (split_objects makes it), so
 * a batch from Pool.extend reaches append_chunk without a bytes object or a
 * tuple per message. A sequence of (tags, element) tuples for the Python
 * path (len, items, slices). */
typedef struct {
    PyObject_HEAD
    PyObject *array; /* bytes: '[' e0 ',' e1 ... ']' */
    PyObject *tags;  /* bytes */
    Py_ssize_t n;
    Py_ssize_t *ends; /* element k is array[k ? ends[k - 1] + 1 : 1 : ends[k]] */
} Elements;

static PyTypeObject ElementsType;

static Py_ssize_t el_start(const Elements *e, Py_ssize_t k) { return k ? e->ends[k - 1] + 1 : 1; }

static PyObject *el_item(Elements *e, Py_ssize_t k) {
    if (k < 0 || k >= e->n) { PyErr_SetString(PyExc_IndexError, "index out of range"); return NULL; }
    Py_ssize_t s = el_start(e, k);
    PyObject *el = PyBytes_FromStringAndSize(PyBytes_AS_STRING(e->array) + s, e->ends[k] - s);
    if (!el) return NULL;
    PyObject *item = PyTuple_Pack(2, e->tags, el);
    Py_DECREF(el);
    return item;
}

static Py_ssize_t el_len(Elements *e) { return e->n; }

static PyObject *el_subscript(Elements *e, PyObject *key) {
    if (!PySlice_Check(key)) {
        Py_ssize_t k = PyNumber_AsSsize_t(key, PyExc_IndexError);
        if (k == -1 && PyErr_Occurred()) return NULL;
        return el_item(e, k < 0 ? k + e->n : k);
    }
    Py_ssize_t start, stop, step;
    if (PySlice_Unpack(key, &start, &stop, &step) < 0) return NULL;
    Py_ssize_t len = PySlice_AdjustIndices(e->n, &start, &stop, step);
    PyObject *out = PyList_New(len);
    if (!out) return NULL;
    for (Py_ssize_t i = 0, k = start; i < len; i++, k += step) {
        PyObject *item = el_item(e, k);
        if (!item) { Py_DECREF(out); return NULL; }
        PyList_SET_ITEM(out, i, item);
    }
    return out;
}

static void el_dealloc(Elements *e) {
    Py_XDECREF(e->array);
    Py_XDECREF(e->tags);
    PyMem_Free(e->ends);
    Py_TYPE(e)->tp_free((PyObject *)e);
}

static PySequenceMethods el_as_sequence = {.sq_length = (lenfunc)el_len, .sq_item = (ssizeargfunc)el_item};
static PyMappingMethods el_as_mapping = {.mp_length = (lenfunc)el_len, .mp_subscript = (binaryfunc)el_subscript};

static PyTypeObject ElementsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "plasmite_speedups._pool.Elements",
    .tp_basicsize = sizeof(Elements),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The (tags, element) items of an encoded JSON array of objects (split_objects makes it).",
    .tp_dealloc = (destructor)el_dealloc,
    .tp_as_sequence = &el_as_sequence,
    .tp_as_mapping = &el_as_mapping,
};

/* split_objects(array, tags, count) -> Elements | None: the ``count``
 * elements of a JSON array as an encoder writes it (no whitespace between
 * '[', elements, ',' and ']'), each a valid JSON object; None for anything
 * else, another count included. */
static PyObject *split_objects(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3 || !PyBytes_Check(args[0]) || !PyBytes_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "split_objects(array: bytes, tags: bytes, count: int)");
        return NULL;
    }
    Py_ssize_t count = PyLong_AsSsize_t(args[2]);
    if (count == -1 && PyErr_Occurred()) return NULL;
    const unsigned char *b = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    Py_ssize_t n = PyBytes_GET_SIZE(args[0]), end = n - 1;
    if (n < 2 || b[0] != '[' || b[end] != ']' || count < 0 || count > n / 3 + 1) Py_RETURN_NONE;
    Py_ssize_t *ends = PyMem_Malloc((count ? count : 1) * sizeof(Py_ssize_t));
    if (!ends) return PyErr_NoMemory();
    Py_ssize_t k = 0, p = 1;
    if (n == 2) goto split; /* [] */
    while (k < count && b[p] == '{') {
        Py_ssize_t q = scan_object(b, p, end);
        if (q < 0) break;
        ends[k++] = q;
        if (q == end) goto split;
        if (b[q] != ',' || q + 1 == end) break; /* no comma, or a trailing one */
        p = q + 1;
    }
    PyMem_Free(ends);
    Py_RETURN_NONE;
split:
    if (k != count) { PyMem_Free(ends); Py_RETURN_NONE; }
    Elements *e = PyObject_New(Elements, &ElementsType);
    if (!e) { PyMem_Free(ends); return NULL; }
    e->array = Py_NewRef(args[0]);
    e->tags = Py_NewRef(args[1]);
    e->n = k;
    e->ends = ends;
    return (PyObject *)e;
}

#endif
