/* Test guest (GHSA-6p9w-9j7q-867r): aborts with RISC-V's canonical `unimp` unless its input
 * starts with 'A'. OpenVM 2.0.2 turns that `unimp` into a no-op, so the zkVM would accept
 * any input; the host must refuse the program before running it. */
#include "nexus_guest.h"

int main(void) {
    size_t len;
    const uint8_t *in = nexus_input(&len);
    if (len == 0 || in[0] != 'A') __asm__ volatile("unimp");
    static const char accepted[] = "ACCEPTED";
    nexus_commit(accepted, sizeof accepted - 1);
}
