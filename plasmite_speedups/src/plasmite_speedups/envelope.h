/* The head of a compact JSON envelope, shared by the batch formatter
 * (_frames.envelopes) and Message.raw (_message):
 *
 *     {"seq":N,"time":"YYYY-MM-DDTHH:MM:SS.fffffffffZ","meta":{"tags":
 *
 * Written by hand, not by snprintf, whose format parsing was most of the
 * cost of a raw read. The seconds' text is cached: messages come in runs
 * within one second. The twin in Python is envelope._ENVELOPE with
 * rfc3339.second_bytes.
 */
#ifndef PLASMITE_ENVELOPE_H
#define PLASMITE_ENVELOPE_H

#include <string.h>
#include <time.h>

#define ENVELOPE_HEAD_MAX 96  /* 7 + 20 digits + 9 + 19 + 11 + 16, rounded up */

typedef struct {
    long long sec;  /* -1: empty */
    char text[20];  /* YYYY-MM-DDTHH:MM:SS */
} SecondText;

static char *put_digits(char *o, unsigned long long v, int width) {
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v && n < 20);
    while (n < width) tmp[n++] = '0';
    while (n) *o++ = tmp[--n];
    return o;
}

/* Write the head into out (ENVELOPE_HEAD_MAX bytes); its length, or -1 when
 * the time has no four-digit year (the caller's slow path words it). */
static int envelope_head(char *out, unsigned long long seq, unsigned long long t_ns, SecondText *cache) {
    long long sec = (long long)(t_ns / 1000000000ULL);
    unsigned long long frac = t_ns % 1000000000ULL;
    if (sec != cache->sec) {
        time_t tt = (time_t)sec;
        struct tm tm;
        if (!gmtime_r(&tt, &tm) || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0) return -1;
        char *s = cache->text;
        s = put_digits(s, (unsigned long long)(tm.tm_year + 1900), 4);
        *s++ = '-';
        s = put_digits(s, (unsigned long long)(tm.tm_mon + 1), 2);
        *s++ = '-';
        s = put_digits(s, (unsigned long long)tm.tm_mday, 2);
        *s++ = 'T';
        s = put_digits(s, (unsigned long long)tm.tm_hour, 2);
        *s++ = ':';
        s = put_digits(s, (unsigned long long)tm.tm_min, 2);
        *s++ = ':';
        put_digits(s, (unsigned long long)tm.tm_sec, 2);
        cache->sec = sec;
    }
    char *o = out;
    memcpy(o, "{\"seq\":", 7);
    o = put_digits(o + 7, seq, 1);
    memcpy(o, ",\"time\":\"", 9);
    memcpy(o + 9, cache->text, 19);
    o += 28;
    *o++ = '.';
    o = put_digits(o, frac, 9);
    memcpy(o, "Z\",\"meta\":{\"tags\":", 18);
    return (int)(o + 18 - out);
}

#endif
