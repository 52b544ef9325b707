/* Compiled twin of plasmite_core.envelope._MessageFields: the fields of a
 * Message, its constructor and the two hot getters (``data`` and ``raw``).
 *
 * plasmite_core.envelope.Message derives from this type and adds everything
 * else in Python. The getters only take the common case (JSON codec, bytes
 * that check out); anything else, every error included, goes to the
 * Message's own Python methods ``_decode_data`` and ``_format_raw``, so the
 * rules and error texts live in one place. ``build`` makes a list of
 * messages from scanned frames without a Python call per message.
 *
 * Messages built together form a group: the first ``data`` read in a group
 * decodes the payloads of its later, still undecoded members in one call
 * (a reader that wants one message's data wants its neighbours' too), and
 * the first ``raw`` checks theirs the same way. The
 * group owns no member (each member detaches itself when it dies), so it
 * neither keeps payloads alive nor forms a cycle; a batch that does not
 * decode cleanly falls back to one decode per message, errors included.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "envelope.h"

typedef struct {
    PyObject_HEAD
    PyObject *seq, *time_ns, *tags_raw, *payload, *codec, *data, *tags, *raw;
    struct GroupObject *group;  /* the batch it was built in, or NULL */
    Py_ssize_t index;          /* its place in that group */
    char checked;              /* payload checked to be one JSON value in UTF-8 */
} MessageObject;

/* Borrowed pointers to the members of one build (NULL once a member died
 * or detached); ``failed`` once a group decode did not check out. */
typedef struct GroupObject {
    PyObject_VAR_HEAD
    char failed;
    MessageObject *members[1];
} GroupObject;

static PyTypeObject GroupType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "plasmite_speedups._message.Group",
    .tp_basicsize = offsetof(GroupObject, members),
    .tp_itemsize = sizeof(MessageObject *),
    .tp_flags = Py_TPFLAGS_DEFAULT,
};

static void detach(MessageObject *m) {
    GroupObject *g = m->group;
    if (g == NULL) return;
    m->group = NULL;
    if (m->index < Py_SIZE(g) && g->members[m->index] == m) g->members[m->index] = NULL;
    Py_DECREF(g);
}

static PyObject *NO;           /* "data not decoded yet" */
static PyObject *json_decode;  /* msgspec.json.decode */
static PyObject *skip_value;   /* one JSON value, else DecodeError (a Raw decoder) */
static PyObject *tags_decode;  /* a list[str] decoder */
static PyObject *lines_decode; /* a JSON Lines decoder of any values */
static PyObject *lines_check;  /* JSON Lines of one value each, else DecodeError (Raw) */
static PyObject *str_decode_data, *str_format_raw;

static int msg_traverse(MessageObject *self, visitproc visit, void *arg) {
    Py_VISIT(self->seq);
    Py_VISIT(self->time_ns);
    Py_VISIT(self->tags_raw);
    Py_VISIT(self->payload);
    Py_VISIT(self->codec);
    Py_VISIT(self->data);
    Py_VISIT(self->tags);
    Py_VISIT(self->raw);
    return 0;
}

static int msg_clear(MessageObject *self) {
    detach(self);
    Py_CLEAR(self->seq);
    Py_CLEAR(self->time_ns);
    Py_CLEAR(self->tags_raw);
    Py_CLEAR(self->payload);
    Py_CLEAR(self->codec);
    Py_CLEAR(self->data);
    Py_CLEAR(self->tags);
    Py_CLEAR(self->raw);
    return 0;
}

/* Python subclasses (heap types) are deallocated by subtype_dealloc, which
 * calls this and then drops the reference to their type itself. */
static void msg_dealloc(MessageObject *self) {
    PyObject_GC_UnTrack(self);
    msg_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Set every field (new references taken here). */
static void msg_fill(MessageObject *m, PyObject *seq, PyObject *t, PyObject *tags_raw, PyObject *payload,
                     PyObject *codec, PyObject *data) {
    Py_INCREF(seq);
    Py_XSETREF(m->seq, seq);
    Py_INCREF(t);
    Py_XSETREF(m->time_ns, t);
    Py_INCREF(tags_raw);
    Py_XSETREF(m->tags_raw, tags_raw);
    Py_INCREF(payload);
    Py_XSETREF(m->payload, payload);
    Py_INCREF(codec);
    Py_XSETREF(m->codec, codec);
    Py_INCREF(data);
    Py_XSETREF(m->data, data);
    Py_INCREF(Py_None);
    Py_XSETREF(m->tags, Py_None);
    Py_INCREF(Py_None);
    Py_XSETREF(m->raw, Py_None);
    m->checked = 0;
}

/* Message(seq, time_ns, tags_raw, payload, codec=None, data=NO) */
static int msg_init(MessageObject *self, PyObject *args, PyObject *kwds) {
    detach(self);
    static char *kwlist[] = {"seq", "time_ns", "tags_raw", "payload", "codec", "data", NULL};
    PyObject *seq, *t, *tags_raw, *payload, *codec = Py_None, *data = NO;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOO|OO:Message", kwlist, &seq, &t, &tags_raw, &payload, &codec,
                                     &data))
        return -1;
    msg_fill(self, seq, t, tags_raw, payload, codec, data);
    return 0;
}

static PyObject *call_python(PyObject *self, PyObject *name) {
    return PyObject_CallMethodNoArgs(self, name);
}

#define GROUP_RUN 64  /* payloads per group call: a bounded burst of new objects */

static int all_ascii(const char *p, Py_ssize_t n) {
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        if (w & 0x8080808080808080ULL) return 0;
    }
    for (; i < n; i++)
        if ((unsigned char)p[i] & 0x80) return 0;
    return 1;
}

/* The bytes are UTF-8 (ASCII needs no decode); no error is left set. */
static int utf8_ok(const char *p, Py_ssize_t n) {
    if (all_ascii(p, n)) return 1;
    PyObject *u = PyUnicode_DecodeUTF8(p, n, "strict");
    if (u == NULL) {
        PyErr_Clear();
        return 0;
    }
    Py_DECREF(u);
    return 1;
}

/* Run one call over the JSON payloads of self's group from self on (at most
 * GROUP_RUN of them), joined by newlines: ``check`` 0 decodes them (members
 * get their data and leave the group), 1 checks each is one JSON value in
 * UTF-8 (members are marked checked, for ``raw``). On any doubt (an empty
 * payload or a raw newline, a decode error, a count that does not match)
 * the group is marked failed and every member goes its own way, errors
 * included. The decoder may run other code (GC): members are re-checked. */
static void group_run(MessageObject *self, int check) {
    GroupObject *g = self->group;
    PyObject *dec = check ? lines_check : lines_decode;
    if (g->failed || dec == NULL) {
        detach(self);
        return;
    }
    Py_INCREF(g);
    Py_ssize_t n = Py_SIZE(g), count = 0, total = 0;
    Py_ssize_t idx[GROUP_RUN];
    PyObject *pls[GROUP_RUN];
    PyObject *buf = NULL, *values = NULL;
    for (Py_ssize_t j = self->index; j < n && count < GROUP_RUN; j++) {
        MessageObject *m = g->members[j];
        if (m == NULL || m->data != NO || (check && m->checked) || m->codec != Py_None || m->payload == NULL ||
            !PyBytes_CheckExact(m->payload))
            continue;
        Py_ssize_t len = PyBytes_GET_SIZE(m->payload);
        if (len == 0 || memchr(PyBytes_AS_STRING(m->payload), '\n', len)) goto fail;
        idx[count] = j;
        pls[count++] = Py_NewRef(m->payload);
        total += len + 1;
    }
    if (count < 2) goto fail;
    buf = PyBytes_FromStringAndSize(NULL, total - 1);
    if (buf == NULL) goto fail;
    char *o = PyBytes_AS_STRING(buf);
    for (Py_ssize_t k = 0; k < count; k++) {
        Py_ssize_t len = PyBytes_GET_SIZE(pls[k]);
        if (k) *o++ = '\n';
        memcpy(o, PyBytes_AS_STRING(pls[k]), len);
        o += len;
    }
    values = PyObject_CallOneArg(dec, buf);
    if (values == NULL || !PyList_CheckExact(values) || PyList_GET_SIZE(values) != count) goto fail;
    if (check && !utf8_ok(PyBytes_AS_STRING(buf), total - 1)) goto fail;
    for (Py_ssize_t k = 0; k < count; k++) {
        MessageObject *m = g->members[idx[k]];
        if (m == NULL || m->data != NO || m->payload != pls[k]) continue;
        if (check) {
            m->checked = 1;
        } else {
            Py_XSETREF(m->data, Py_NewRef(PyList_GET_ITEM(values, k)));
            detach(m);
        }
    }
    goto done;
fail:
    PyErr_Clear();
    g->failed = 1;
    detach(self);
done:
    for (Py_ssize_t k = 0; k < count; k++) Py_DECREF(pls[k]);
    Py_XDECREF(buf);
    Py_XDECREF(values);
    Py_DECREF(g);
}

static PyObject *msg_get_data(MessageObject *self, void *closure) {
    PyObject *d = self->data;
    if (d != NULL && d != NO) return Py_NewRef(d);
    if (self->group != NULL) {
        group_run(self, 0);
        d = self->data;
        if (d != NULL && d != NO) return Py_NewRef(d);
    }
    if (json_decode != NULL && self->codec == Py_None && self->payload != NULL && PyBytes_CheckExact(self->payload)) {
        d = PyObject_CallOneArg(json_decode, self->payload);
        if (d != NULL) {
            Py_XSETREF(self->data, Py_NewRef(d));
            detach(self);
            return d;
        }
        PyErr_Clear();  /* the Python method words the Corrupt error */
    }
    return call_python((PyObject *)self, str_decode_data);
}

static SecondText second_text = {-1, ""};  /* the GIL guards it */

static PyObject *msg_get_raw(MessageObject *self, void *closure) {
    PyObject *r = self->raw;
    if (r != NULL && r != Py_None) return Py_NewRef(r);
    PyObject *payload = self->payload, *tags_raw = self->tags_raw;
    if (skip_value == NULL || self->codec != Py_None || payload == NULL || !PyBytes_CheckExact(payload) || PyBytes_GET_SIZE(payload) == 0 ||
        tags_raw == NULL || !PyBytes_CheckExact(tags_raw) || !PyLong_CheckExact(self->seq) ||
        !PyLong_CheckExact(self->time_ns))
        return call_python((PyObject *)self, str_format_raw);
    Py_ssize_t tgl = PyBytes_GET_SIZE(tags_raw);
    if (tgl == 0 && self->tags != Py_None)  /* tags given as a list: Python encodes them */
        return call_python((PyObject *)self, str_format_raw);
    if (memchr(PyBytes_AS_STRING(payload), '\n', PyBytes_GET_SIZE(payload)) ||
        (tgl && memchr(PyBytes_AS_STRING(tags_raw), '\n', tgl)))  /* not compact: Python says why */
        return call_python((PyObject *)self, str_format_raw);
    if (tgl && self->tags == Py_None) {  /* stored tags are checked (and kept) first */
        PyObject *tags = PyObject_CallOneArg(tags_decode, tags_raw);
        if (tags == NULL) {
            PyErr_Clear();
            return call_python((PyObject *)self, str_format_raw);
        }
        Py_XSETREF(self->tags, tags);
    }
    if (self->data == NO && !self->checked && self->group != NULL) group_run(self, 1);
    if (self->data == NO && !self->checked) {  /* a payload never decoded is checked to be one JSON value in UTF-8 */
        PyObject *ok = PyObject_CallOneArg(skip_value, payload);
        if (ok == NULL) {
            PyErr_Clear();
            return call_python((PyObject *)self, str_format_raw);
        }
        Py_DECREF(ok);
        if (!utf8_ok(PyBytes_AS_STRING(payload), PyBytes_GET_SIZE(payload)))
            return call_python((PyObject *)self, str_format_raw);
        self->checked = 1;
    }
    int overflow = 0;
    long long seq = PyLong_AsLongLongAndOverflow(self->seq, &overflow);
    long long t = overflow ? 0 : PyLong_AsLongLongAndOverflow(self->time_ns, &overflow);
    if (overflow || seq < 0 || t < 0) {
        PyErr_Clear();
        return call_python((PyObject *)self, str_format_raw);
    }
    char head[ENVELOPE_HEAD_MAX];
    int hl = envelope_head(head, (unsigned long long)seq, (unsigned long long)t, &second_text);
    if (hl < 0) return call_python((PyObject *)self, str_format_raw);
    const char *tg = tgl ? PyBytes_AS_STRING(tags_raw) : "[]";
    if (!tgl) tgl = 2;
    Py_ssize_t dl = PyBytes_GET_SIZE(payload);
    r = PyBytes_FromStringAndSize(NULL, hl + tgl + 9 + dl + 1);
    if (r == NULL) return NULL;
    char *o = PyBytes_AS_STRING(r);
    memcpy(o, head, hl);
    o += hl;
    memcpy(o, tg, tgl);
    o += tgl;
    memcpy(o, "},\"data\":", 9);
    o += 9;
    memcpy(o, PyBytes_AS_STRING(payload), dl);
    o[dl] = '}';
    Py_XSETREF(self->raw, Py_NewRef(r));
    return r;
}

static PyGetSetDef msg_getset[] = {
    {"data", (getter)msg_get_data, NULL, "The message's data (decoded on first use).", NULL},
    {"raw", (getter)msg_get_raw, NULL, "The compact JSON envelope (bytes).", NULL},
    {NULL},
};

static PyMemberDef msg_members[] = {
    {"seq", T_OBJECT, offsetof(MessageObject, seq), 0, NULL},
    {"time_ns", T_OBJECT, offsetof(MessageObject, time_ns), 0, NULL},
    {"_tags_raw", T_OBJECT, offsetof(MessageObject, tags_raw), 0, NULL},
    {"_payload", T_OBJECT, offsetof(MessageObject, payload), READONLY, NULL},  /* ``checked`` is about it */
    {"_codec", T_OBJECT, offsetof(MessageObject, codec), 0, NULL},
    {"_data", T_OBJECT, offsetof(MessageObject, data), 0, NULL},
    {"_tags", T_OBJECT, offsetof(MessageObject, tags), 0, NULL},
    {"_raw", T_OBJECT, offsetof(MessageObject, raw), 0, NULL},
    {NULL},
};

static PyTypeObject MessageType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "plasmite_speedups._message.MessageFields",
    .tp_doc = "The fields of a Message and its data/raw getters (compiled).",
    .tp_basicsize = sizeof(MessageObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)msg_init,
    .tp_dealloc = (destructor)msg_dealloc,
    .tp_traverse = (traverseproc)msg_traverse,
    .tp_clear = (inquiry)msg_clear,
    .tp_members = msg_members,
    .tp_getset = msg_getset,
};

/* build(cls, frames, codec) -> [cls(seq, time_ns, tags, payload, codec) for each frame] */
static PyObject *build(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "build(cls, frames, codec)");
        return NULL;
    }
    PyObject *cls = args[0], *frames = args[1], *codec = args[2];
    if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, &MessageType)) {
        PyErr_SetString(PyExc_TypeError, "cls must derive from MessageFields");
        return NULL;
    }
    if (!PyList_Check(frames)) {
        PyErr_SetString(PyExc_TypeError, "frames must be a list");
        return NULL;
    }
    PyTypeObject *tp = (PyTypeObject *)cls;
    Py_ssize_t n = PyList_GET_SIZE(frames);
    PyObject *out = PyList_New(n);
    if (out == NULL) return NULL;
    GroupObject *g = NULL;  /* JSON payloads only: other codecs decode their own */
    if (n > 1 && codec == Py_None) {
        g = PyObject_NewVar(GroupObject, &GroupType, n);
        if (g == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        g->failed = 0;
        memset(g->members, 0, sizeof(MessageObject *) * (size_t)n);
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *fr = PyList_GET_ITEM(frames, i);
        if (!PyTuple_Check(fr) || PyTuple_GET_SIZE(fr) != 4) {
            PyErr_SetString(PyExc_TypeError, "frame must be a 4-tuple");
            goto fail;
        }
        MessageObject *m = (MessageObject *)tp->tp_alloc(tp, 0);
        if (m == NULL) goto fail;
        msg_fill(m, PyTuple_GET_ITEM(fr, 0), PyTuple_GET_ITEM(fr, 1), PyTuple_GET_ITEM(fr, 2),
                 PyTuple_GET_ITEM(fr, 3), codec, NO);
        if (g != NULL) {
            m->group = (GroupObject *)Py_NewRef(g);
            m->index = i;
            g->members[i] = m;
        }
        PyList_SET_ITEM(out, i, (PyObject *)m);
    }
    Py_XDECREF(g);
    return out;
fail:
    Py_DECREF(out);  /* its members detach from g as they die */
    Py_XDECREF(g);
    return NULL;
}

/* configure(json_decode, skip_value, tags_decode, lines_decode, lines_check): the decoders the getters call */
static PyObject *configure(PyObject *module, PyObject *args) {
    PyObject *a, *b, *c, *d, *e;
    if (!PyArg_ParseTuple(args, "OOOOO", &a, &b, &c, &d, &e)) return NULL;
    Py_XSETREF(json_decode, Py_NewRef(a));
    Py_XSETREF(skip_value, Py_NewRef(b));
    Py_XSETREF(tags_decode, Py_NewRef(c));
    Py_XSETREF(lines_decode, Py_NewRef(d));
    Py_XSETREF(lines_check, Py_NewRef(e));
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"build", (PyCFunction)(void (*)(void))build, METH_FASTCALL, "Messages of cls from (seq, time_ns, tags, payload) frames."},
    {"configure", configure, METH_VARARGS, "Set the decoders: (json_decode, skip_value, tags_decode, lines_decode, lines_check)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "plasmite_speedups._message", NULL, -1, methods};

PyMODINIT_FUNC PyInit__message(void) {
    if (PyType_Ready(&MessageType) < 0 || PyType_Ready(&GroupType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    NO = PyObject_CallNoArgs((PyObject *)&PyBaseObject_Type);
    str_decode_data = PyUnicode_InternFromString("_decode_data");
    str_format_raw = PyUnicode_InternFromString("_format_raw");
    if (NO == NULL || str_decode_data == NULL || str_format_raw == NULL) goto fail;
    Py_INCREF(&MessageType);
    if (PyModule_AddObject(m, "MessageFields", (PyObject *)&MessageType) < 0) goto fail;
    Py_INCREF(NO);
    if (PyModule_AddObject(m, "NO", NO) < 0) goto fail;
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
