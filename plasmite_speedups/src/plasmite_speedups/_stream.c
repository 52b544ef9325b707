/* Compiled twin of plasmite_core.stream._CursorPy: the delivery state of a
 * local stream and its hot calls, ``next``, ``next_json`` and iteration.
 *
 * plasmite_core.stream.Stream derives from this type. A call that finds a
 * message already read ahead into ``_buf`` delivers it here, with no Python
 * frame; anything else (an empty buffer, a retention-gap marker, waiting)
 * goes to the stream's Python method ``_next_slow(timeout_ms)``, so the
 * rules live in one place.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

typedef struct {
    PyObject_HEAD
    PyObject *buf;  /* a collections.deque of Messages and gap markers (tuples) */
    PyObject *max;  /* None or an int: max_messages */
    Py_ssize_t delivered;
    char done;
} CursorObject;

static PyObject *deque_type, *str_popleft, *str_next_slow, *str_raw;

static int cur_traverse(CursorObject *self, visitproc visit, void *arg) {
    Py_VISIT(self->buf);
    Py_VISIT(self->max);
    return 0;
}

static int cur_clear(CursorObject *self) {
    Py_CLEAR(self->buf);
    Py_CLEAR(self->max);
    return 0;
}

static void cur_dealloc(CursorObject *self) {
    PyObject_GC_UnTrack(self);
    cur_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The next buffered Message (a new reference), or NULL without an error set
 * when the Python slow path must decide (empty buffer, a gap marker first). */
static PyObject *take(CursorObject *self) {
    PyObject *buf = self->buf;
    if (buf == NULL || (PyObject *)Py_TYPE(buf) != deque_type || Py_SIZE(buf) <= 0) return NULL;
    PyObject *first = PySequence_GetItem(buf, 0);
    if (first == NULL) {
        PyErr_Clear();
        return NULL;
    }
    int gap = PyTuple_Check(first);
    Py_DECREF(first);
    if (gap) return NULL;
    PyObject *m = PyObject_CallMethodNoArgs(buf, str_popleft);
    if (m == NULL) return NULL;
    self->delivered++;
    if (self->max != NULL && self->max != Py_None) {
        Py_ssize_t mx = PyLong_AsSsize_t(self->max);
        if (mx == -1 && PyErr_Occurred())
            PyErr_Clear();  /* an int past Py_ssize_t: never reached */
        else if (self->delivered >= mx)
            self->done = 1;
    }
    return m;
}

static PyObject *slow(CursorObject *self, PyObject *timeout_ms) {
    PyObject *args[2] = {(PyObject *)self, timeout_ms};
    return PyObject_VectorcallMethod(str_next_slow, args, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
}

/* next(timeout_ms=None) -> Message | None */
static PyObject *cur_next_impl(CursorObject *self, PyObject *timeout_ms) {
    if (self->done) Py_RETURN_NONE;
    PyObject *m = take(self);
    if (m != NULL || PyErr_Occurred()) return m;
    return slow(self, timeout_ms);
}

static int parse_timeout(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, const char *fname,
                         PyObject **timeout_ms) {
    *timeout_ms = Py_None;
    Py_ssize_t nk = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    if (nargs + nk > 1) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most 1 argument (%zd given)", fname, nargs + nk);
        return -1;
    }
    if (nargs == 1) *timeout_ms = args[0];
    if (nk == 1) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, 0);
        if (!PyUnicode_Check(name) || PyUnicode_CompareWithASCIIString(name, "timeout_ms") != 0) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument %R", fname, name);
            return -1;
        }
        *timeout_ms = args[0];
    }
    return 0;
}

static PyObject *cur_next(CursorObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    PyObject *timeout_ms;
    if (parse_timeout(args, nargs, kwnames, "next", &timeout_ms) < 0) return NULL;
    return cur_next_impl(self, timeout_ms);
}

static PyObject *raw_of(PyObject *m) {
    if (m == NULL || m == Py_None) return m;
    PyObject *r = PyObject_GetAttr(m, str_raw);
    Py_DECREF(m);
    return r;
}

/* next_json(timeout_ms=None) -> bytes | None: the next message's envelope */
static PyObject *cur_next_json(CursorObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    PyObject *timeout_ms;
    if (parse_timeout(args, nargs, kwnames, "next_json", &timeout_ms) < 0) return NULL;
    return raw_of(cur_next_impl(self, timeout_ms));
}

/* for raw in stream: envelopes until the stream ends */
static PyObject *cur_iternext(CursorObject *self) {
    PyObject *r = raw_of(cur_next_impl(self, Py_None));
    if (r == Py_None) {
        Py_DECREF(r);
        return NULL;  /* StopIteration */
    }
    return r;
}

static PyMethodDef cur_methods[] = {
    {"next", (PyCFunction)(void (*)(void))cur_next, METH_FASTCALL | METH_KEYWORDS,
     "next(timeout_ms=None): the next message, waiting for it; None when the stream has ended."},
    {"next_json", (PyCFunction)(void (*)(void))cur_next_json, METH_FASTCALL | METH_KEYWORDS,
     "next_json(timeout_ms=None): the next message's JSON envelope, or None."},
    {NULL},
};

static PyMemberDef cur_members[] = {
    {"_buf", T_OBJECT, offsetof(CursorObject, buf), 0, NULL},
    {"_max", T_OBJECT, offsetof(CursorObject, max), 0, NULL},
    {"_delivered", T_PYSSIZET, offsetof(CursorObject, delivered), 0, NULL},
    {"_done", T_BOOL, offsetof(CursorObject, done), 0, NULL},
    {NULL},
};

static PyTypeObject CursorType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "plasmite_speedups._stream.Cursor",
    .tp_doc = "A local stream's delivery state and its next/next_json (compiled).",
    .tp_basicsize = sizeof(CursorObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)cur_dealloc,
    .tp_traverse = (traverseproc)cur_traverse,
    .tp_clear = (inquiry)cur_clear,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)cur_iternext,
    .tp_methods = cur_methods,
    .tp_members = cur_members,
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "plasmite_speedups._stream", NULL, -1, NULL};

PyMODINIT_FUNC PyInit__stream(void) {
    if (PyType_Ready(&CursorType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    PyObject *collections = PyImport_ImportModule("collections");
    if (collections == NULL) goto fail;
    deque_type = PyObject_GetAttrString(collections, "deque");
    Py_DECREF(collections);
    str_popleft = PyUnicode_InternFromString("popleft");
    str_next_slow = PyUnicode_InternFromString("_next_slow");
    str_raw = PyUnicode_InternFromString("raw");
    if (deque_type == NULL || str_popleft == NULL || str_next_slow == NULL || str_raw == NULL) goto fail;
    Py_INCREF(&CursorType);
    if (PyModule_AddObject(m, "Cursor", (PyObject *)&CursorType) < 0) goto fail;
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
