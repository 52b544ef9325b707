/* zlib-compatible CRC-32 (slicing by 16), shared by the extension modules. */
#ifndef PLASMITE_CRC32_H
#define PLASMITE_CRC32_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static uint32_t crc_table[16][256];

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 16; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xFF];
}

/* zlib.crc32(p[:n], crc): continue a CRC over more bytes. */
static uint32_t crc32_more(uint32_t crc, const unsigned char *p, size_t n) {
    uint32_t c = crc ^ 0xFFFFFFFFu;
    while (n && ((uintptr_t)p & 7)) { c = crc_table[0][(c ^ *p++) & 0xFF] ^ (c >> 8); n--; }
    while (n >= 16) {
        uint32_t a, b, d, e;
        memcpy(&a, p, 4);
        memcpy(&b, p + 4, 4);
        memcpy(&d, p + 8, 4);
        memcpy(&e, p + 12, 4);
        a ^= c;
        c = crc_table[15][a & 0xFF] ^ crc_table[14][(a >> 8) & 0xFF] ^ crc_table[13][(a >> 16) & 0xFF] ^
            crc_table[12][a >> 24] ^ crc_table[11][b & 0xFF] ^ crc_table[10][(b >> 8) & 0xFF] ^
            crc_table[9][(b >> 16) & 0xFF] ^ crc_table[8][b >> 24] ^ crc_table[7][d & 0xFF] ^
            crc_table[6][(d >> 8) & 0xFF] ^ crc_table[5][(d >> 16) & 0xFF] ^ crc_table[4][d >> 24] ^
            crc_table[3][e & 0xFF] ^ crc_table[2][(e >> 8) & 0xFF] ^ crc_table[1][(e >> 16) & 0xFF] ^
            crc_table[0][e >> 24];
        p += 16;
        n -= 16;
    }
    while (n >= 8) {
        uint32_t a, b;
        memcpy(&a, p, 4);
        memcpy(&b, p + 4, 4);
        a ^= c;
        c = crc_table[7][a & 0xFF] ^ crc_table[6][(a >> 8) & 0xFF] ^ crc_table[5][(a >> 16) & 0xFF] ^
            crc_table[4][a >> 24] ^ crc_table[3][b & 0xFF] ^ crc_table[2][(b >> 8) & 0xFF] ^
            crc_table[1][(b >> 16) & 0xFF] ^ crc_table[0][b >> 24];
        p += 8;
        n -= 8;
    }
    while (n--) c = crc_table[0][(c ^ *p++) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

static uint32_t crc32_of(const unsigned char *p, size_t n) { return crc32_more(0, p, n); }

#endif
