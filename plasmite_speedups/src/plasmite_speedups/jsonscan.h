/* The validating scan of one JSON object inside an encoded array, for
 * _pool.split_objects; reference plasmite_core.jsonsplit.
 *
 * The scan relies on two sentinels: the array's last byte is its ']' (index
 * ``end``) and the byte after the array is NUL (a bytes object always holds
 * one), so the inner loops need no bounds test: every token is checked to
 * end before ``end`` afterwards. */
#ifndef PLASMITE_JSONSCAN_H
#define PLASMITE_JSONSCAN_H
#include <stddef.h>
#include <string.h>
#include <sys/types.h>

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
static inline ssize_t scan_string(const unsigned char *b, ssize_t p, ssize_t end) {
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
static inline ssize_t scan_number(const unsigned char *b, ssize_t p) {
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
static ssize_t scan_object(const unsigned char *b, ssize_t p, ssize_t end) {
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
#endif
