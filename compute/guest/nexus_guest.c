/* The Nexus guest runtime: input, output binding, heap and SHA-256 (see nexus_guest.h). */
#include "nexus_guest.h"

/* OpenVM's custom-0 instructions (openvm-rv32im-guest 2.0.2). */
#define MAX_HINT_BUFFER_WORDS 1023u
#define MEM_END 0x20000000u

static inline void hint_input(void) { __asm__ volatile(".insn i 0x0b, 3, x0, x0, 0" ::: "memory"); }
static inline void hint_storew(void *dst) {
    __asm__ volatile(".insn i 0x0b, 1, %0, x0, 0" ::"r"(dst) : "memory");
}
static inline void hint_buffer(void *dst, uint32_t words) {
    __asm__ volatile(".insn i 0x0b, 1, %0, %1, 1" ::"r"(dst), "r"(words) : "memory");
}
static inline void reveal_word(uint32_t byte_index, uint32_t value) {
    __asm__ volatile(".insn i 0x0b, 2, %0, %1, 0" ::"r"(byte_index), "r"(value) : "memory");
}
__attribute__((noreturn)) static inline void terminate(void) {
    __asm__ volatile(".insn i 0x0b, 0, x0, x0, 0" ::: "memory");
    for (;;) {
    }
}

void *memcpy(void *dst, const void *src, size_t n) {
    uint8_t *d = dst;
    const uint8_t *s = src;
    while (n--) *d++ = *s++;
    return dst;
}

void *memset(void *dst, int c, size_t n) {
    uint8_t *d = dst;
    while (n--) *d++ = (uint8_t)c;
    return dst;
}

__attribute__((noreturn)) void nexus_fail(void) {
    __asm__ volatile(".insn i 0x0b, 0, x0, x0, 1" ::: "memory");
    for (;;) {
    }
}

extern uint8_t _end[];
static uintptr_t heap_next;

void *nexus_alloc(size_t n) {
    if (heap_next == 0) heap_next = (uintptr_t)_end;
    uintptr_t start = (heap_next + 3u) & ~(uintptr_t)3u;
    if (n > MEM_END - start) nexus_fail();
    heap_next = start + n;
    /* Memory the program has not written reads as zero: no clearing needed. */
    return (void *)start;
}

static const uint8_t *input_bytes;
static size_t input_len;
static int input_read;

/* Reads the next item of the host's input stream into fresh memory; returns its length. */
static uint8_t *read_item(uint32_t *len) {
    uint32_t n;
    hint_input();
    hint_storew(&n);
    uint32_t words = (n + 3u) / 4u;
    uint8_t *buf = nexus_alloc((size_t)words * 4u);
    for (uint32_t done = 0; done < words;) {
        uint32_t chunk = words - done < MAX_HINT_BUFFER_WORDS ? words - done : MAX_HINT_BUFFER_WORDS;
        hint_buffer(buf + done * 4u, chunk);
        done += chunk;
    }
    *len = n;
    return buf;
}

const uint8_t *nexus_input(size_t *len) {
    if (!input_read) {
        uint32_t n;
        input_bytes = read_item(&n);
        input_len = n;
        input_read = 1;
    }
    *len = input_len;
    return input_bytes;
}

static void digest_of(const uint8_t *prefix, size_t prefix_len, const uint8_t *data, size_t len,
                      uint8_t out[32]) {
    nexus_sha256 h;
    nexus_sha256_init(&h);
    nexus_sha256_update(&h, prefix, prefix_len);
    nexus_sha256_update(&h, data, len);
    nexus_sha256_final(&h, out);
}

/* Leaves of 4 KiB hashed as SHA-256(0x00 || leaf), nodes as SHA-256(0x01 || left || right),
 * an odd node carried up a level (RFC 6962's shape); then SHA-256(0x02 || len u64 BE || root). */
void nexus_blob_id(const void *data, size_t len, uint8_t id[32]) {
    static const uint8_t leaf_tag = 0x00, node_tag = 0x01;
    uint8_t stack[64][32], pair[64];
    unsigned depth = 0;
    uint64_t leaves = 0;
    size_t at = 0;
    do {
        size_t n = len - at < 4096u ? len - at : 4096u;
        digest_of(&leaf_tag, 1, (const uint8_t *)data + at, n, stack[depth++]);
        at += n;
        leaves++;
        for (uint64_t k = leaves; (k & 1u) == 0; k >>= 1) {
            memcpy(pair, stack[depth - 2], 32);
            memcpy(pair + 32, stack[depth - 1], 32);
            digest_of(&node_tag, 1, pair, 64, stack[depth - 2]);
            depth--;
        }
    } while (at < len);
    while (depth > 1) {
        memcpy(pair, stack[depth - 2], 32);
        memcpy(pair + 32, stack[depth - 1], 32);
        digest_of(&node_tag, 1, pair, 64, stack[depth - 2]);
        depth--;
    }
    uint8_t header[9];
    header[0] = 0x02;
    for (int i = 0; i < 8; i++) header[1 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    digest_of(header, sizeof header, stack[0], 32, id);
}

__attribute__((noreturn)) void nexus_commit(const void *out, size_t len) {
    if (len > NEXUS_MAX_OUTPUT) nexus_fail();
    size_t in_len;
    const uint8_t *in = nexus_input(&in_len);
    uint32_t beneficiary_len;
    const uint8_t *beneficiary = read_item(&beneficiary_len);
    if (beneficiary_len != 32) nexus_fail();
    uint8_t ids[96], binding[32];
    memcpy(ids, beneficiary, 32);
    nexus_blob_id(in, in_len, ids + 32);
    nexus_blob_id(out, len, ids + 64);
    digest_of(ids, sizeof ids, 0, 0, binding);
    volatile uint32_t *descriptor = (volatile uint32_t *)NEXUS_OUTPUT_DESCRIPTOR;
    descriptor[0] = (uint32_t)(uintptr_t)out;
    descriptor[1] = (uint32_t)len;
    for (uint32_t i = 0; i < 8; i++) {
        uint32_t word = (uint32_t)binding[4 * i] | (uint32_t)binding[4 * i + 1] << 8 |
                        (uint32_t)binding[4 * i + 2] << 16 | (uint32_t)binding[4 * i + 3] << 24;
        reveal_word(4 * i, word);
    }
    terminate();
}

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static inline uint32_t rotr(uint32_t x, uint32_t n) { return (x >> n) | (x << (32 - n)); }

static void compress(uint32_t state[8], const uint8_t block[64]) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)block[4 * i] << 24 | (uint32_t)block[4 * i + 1] << 16 |
               (uint32_t)block[4 * i + 2] << 8 | (uint32_t)block[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
        uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        h = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
    state[4] += e;
    state[5] += f;
    state[6] += g;
    state[7] += h;
}

void nexus_sha256_init(nexus_sha256 *h) {
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    for (int i = 0; i < 8; i++) h->state[i] = iv[i];
    h->total = 0;
    h->used = 0;
}

void nexus_sha256_update(nexus_sha256 *h, const void *data, size_t len) {
    const uint8_t *p = data;
    h->total += len;
    if (h->used) {
        while (len && h->used < 64) {
            h->block[h->used++] = *p++;
            len--;
        }
        if (h->used < 64) return;
        compress(h->state, h->block);
        h->used = 0;
    }
    for (; len >= 64; len -= 64, p += 64) compress(h->state, p);
    while (len--) h->block[h->used++] = *p++;
}

void nexus_sha256_final(nexus_sha256 *h, uint8_t digest[32]) {
    uint64_t bits = h->total * 8u;
    uint8_t pad = 0x80;
    nexus_sha256_update(h, &pad, 1);
    uint8_t zero = 0;
    while (h->used != 56) nexus_sha256_update(h, &zero, 1);
    uint8_t length[8];
    for (int i = 0; i < 8; i++) length[i] = (uint8_t)(bits >> (56 - 8 * i));
    nexus_sha256_update(h, length, 8);
    for (int i = 0; i < 8; i++) {
        digest[4 * i] = (uint8_t)(h->state[i] >> 24);
        digest[4 * i + 1] = (uint8_t)(h->state[i] >> 16);
        digest[4 * i + 2] = (uint8_t)(h->state[i] >> 8);
        digest[4 * i + 3] = (uint8_t)h->state[i];
    }
}
