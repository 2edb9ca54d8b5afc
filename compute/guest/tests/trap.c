/* Test guest: jumps outside its code, which the zkVM must report as a trap. */
#include "nexus_guest.h"

int main(void) {
    void (*nowhere)(void) = (void (*)(void))0x10000000u;
    nowhere();
    return 0;
}
