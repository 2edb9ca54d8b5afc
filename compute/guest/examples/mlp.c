/* Example guest: int8 MLP inference (one hidden layer, ReLU), the "model proves its
 * inference" case. Input, all little-endian:
 *   u32 n_in, n_hidden, n_out, n_samples, shift
 *   i8  w1[n_hidden][n_in]   i32 b1[n_hidden]
 *   i8  w2[n_out][n_hidden]  i32 b2[n_out]
 *   i8  x[n_samples][n_in]
 * hidden_j = clamp((b1_j + sum_i w1[j][i] * x_i) >> shift, 0, 127)
 * logit_k  = b2_k + sum_j w2[k][j] * hidden_j
 * Output: u8 class[n_samples] (the argmax, first on ties), then i32 logits[n_samples][n_out].
 * A malformed input fails the run. */
#include "nexus_guest.h"

#define MAX_DIM 4096u
#define MAX_SAMPLES 65536u

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int main(void) {
    size_t len;
    const uint8_t *in = nexus_input(&len);
    if (len < 20) nexus_fail();
    uint32_t n_in = le32(in), n_hidden = le32(in + 4), n_out = le32(in + 8);
    uint32_t n_samples = le32(in + 12), shift = le32(in + 16);
    if (n_in == 0 || n_hidden == 0 || n_out == 0 || n_in > MAX_DIM || n_hidden > MAX_DIM ||
        n_out > MAX_DIM || n_samples > MAX_SAMPLES || shift > 31)
        nexus_fail();
    uint64_t need = 20ull + (uint64_t)n_hidden * n_in + 4ull * n_hidden + (uint64_t)n_out * n_hidden +
                    4ull * n_out + (uint64_t)n_samples * n_in;
    if (need != len) nexus_fail();
    const int8_t *w1 = (const int8_t *)(in + 20);
    const uint8_t *b1 = (const uint8_t *)(w1 + n_hidden * n_in);
    const int8_t *w2 = (const int8_t *)(b1 + 4 * n_hidden);
    const uint8_t *b2 = (const uint8_t *)(w2 + n_out * n_hidden);
    const int8_t *x = (const int8_t *)(b2 + 4 * n_out);

    size_t out_len = n_samples + 4u * n_samples * n_out;
    if (out_len > NEXUS_MAX_OUTPUT) nexus_fail();
    uint8_t *out = nexus_alloc(out_len);
    uint8_t *logits_out = out + n_samples;
    int32_t *hidden = nexus_alloc(4u * n_hidden);
    for (uint32_t s = 0; s < n_samples; s++) {
        const int8_t *xs = x + s * n_in;
        for (uint32_t j = 0; j < n_hidden; j++) {
            int32_t acc = (int32_t)le32(b1 + 4 * j);
            const int8_t *row = w1 + j * n_in;
            for (uint32_t i = 0; i < n_in; i++) acc += (int32_t)row[i] * (int32_t)xs[i];
            acc >>= shift;
            hidden[j] = acc < 0 ? 0 : (acc > 127 ? 127 : acc);
        }
        uint32_t best = 0;
        int32_t best_logit = 0;
        for (uint32_t k = 0; k < n_out; k++) {
            int32_t acc = (int32_t)le32(b2 + 4 * k);
            const int8_t *row = w2 + k * n_hidden;
            for (uint32_t j = 0; j < n_hidden; j++) acc += (int32_t)row[j] * hidden[j];
            if (k == 0 || acc > best_logit) {
                best = k;
                best_logit = acc;
            }
            uint8_t *o = logits_out + 4u * (s * n_out + k);
            o[0] = (uint8_t)acc;
            o[1] = (uint8_t)((uint32_t)acc >> 8);
            o[2] = (uint8_t)((uint32_t)acc >> 16);
            o[3] = (uint8_t)((uint32_t)acc >> 24);
        }
        out[s] = (uint8_t)best;
    }
    nexus_commit(out, out_len);
}
