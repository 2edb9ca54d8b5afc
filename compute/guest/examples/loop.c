/* Example guest for long runs: the input is two little-endian u32, `iterations` and `seed`;
 * the output is the xorshift32 state after `iterations` steps from `seed` (4 bytes, LE).
 * About 8 instructions per iteration, so the run length is set by the input alone. */
#include "nexus_guest.h"

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int main(void) {
    size_t len;
    const uint8_t *input = nexus_input(&len);
    if (len != 8) nexus_fail();
    uint32_t iterations = le32(input);
    uint32_t x = le32(input + 4);
    if (x == 0) nexus_fail();
    for (uint32_t i = 0; i < iterations; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
    }
    uint8_t out[4] = {(uint8_t)x, (uint8_t)(x >> 8), (uint8_t)(x >> 16), (uint8_t)(x >> 24)};
    nexus_commit(out, sizeof out);
}
