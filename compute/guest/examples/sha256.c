/* Example guest: the output is the SHA-256 digest of the input (32 bytes). */
#include "nexus_guest.h"

int main(void) {
    size_t len;
    const uint8_t *in = nexus_input(&len);
    nexus_sha256 h;
    uint8_t digest[32];
    nexus_sha256_init(&h);
    nexus_sha256_update(&h, in, len);
    nexus_sha256_final(&h, digest);
    nexus_commit(digest, sizeof digest);
}
