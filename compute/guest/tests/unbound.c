/* Test guest: reveals a public value that does not bind its input and output (it skips
 * the runtime's nexus_commit), which the host must refuse. */
#include "nexus_guest.h"

int main(void) {
    for (unsigned i = 0; i < 8; i++) {
        unsigned index = 4 * i, value = 0x01010101u * i;
        __asm__ volatile(".insn i 0x0b, 2, %0, %1, 0" ::"r"(index), "r"(value) : "memory");
    }
    __asm__ volatile(".insn i 0x0b, 0, x0, x0, 0" ::: "memory");
    return 0;
}
