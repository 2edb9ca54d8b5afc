/*
 * nexus_guest.h: the Nexus guest ABI for programs proven by OpenVM 2.0.2 (RV32IM).
 *
 * A guest reads its whole input with nexus_input() and ends with nexus_commit(out, len).
 * The run's one public value (32 bytes, revealed to the proof) is
 *
 *     SHA-256( beneficiary || BlobId(input) || BlobId(output) )
 *
 * where BlobId is the blob identity of Nexus storage (nexus_blob_id below) and the
 * beneficiary is 32 bytes the host passes as a second input item, read when the output is
 * committed: SHA-256("nexus/beneficiary/v1" || job id || account of whoever will anchor
 * the result). So a proof of this program binds the exact input blob, the exact output
 * blob and the one account the ledger may pay for it. The output itself is left in guest
 * memory (a descriptor at NEXUS_OUTPUT_DESCRIPTOR) for the host to read back after the run.
 *
 * Build: riscv64-unknown-elf-gcc -march=rv32im -mabi=ilp32 -nostdlib -ffreestanding -O2
 *        -T link.ld crt0.S nexus_guest.c prog.c -o prog.elf
 */
#ifndef NEXUS_GUEST_H
#define NEXUS_GUEST_H

#include <stddef.h>
#include <stdint.h>

/* Where nexus_commit leaves (output pointer, output length) for the host. It lies in the
 * gap between the top of the stack (0x00200400) and the code (0x00200800). */
#define NEXUS_OUTPUT_DESCRIPTOR 0x00200400u
/* The largest output a guest may commit (the host refuses a longer one). */
#define NEXUS_MAX_OUTPUT (1u << 20)

/* The job's whole input, read from the host once (later calls return the same bytes).
 * Its length is stored in *len. Never returns NULL; an input that does not fit in memory
 * fails the run. */
const uint8_t *nexus_input(size_t *len);

/* The Nexus BlobId of `len` bytes at `data` (32 bytes into `id`): 4 KiB leaves hashed as
 * SHA-256(0x00 || leaf), nodes as SHA-256(0x01 || left || right) with an odd node carried
 * up (RFC 6962's shape), then SHA-256(0x02 || len as u64 big-endian || root). */
void nexus_blob_id(const void *data, size_t len, uint8_t id[32]);

/* Commits `out` as the job's output, reads the beneficiary, reveals the binding digest
 * and ends the run successfully. Reads the input first if the program has not. */
__attribute__((noreturn)) void nexus_commit(const void *out, size_t len);

/* Ends the run as failed (exit code 1): the job has no result. */
__attribute__((noreturn)) void nexus_fail(void);

/* `n` bytes of zeroed memory, 4-byte aligned, from the heap after the program's data.
 * Fails the run when memory is exhausted (never returns NULL). */
void *nexus_alloc(size_t n);

/* SHA-256, streaming. */
typedef struct {
    uint32_t state[8];
    uint64_t total;
    uint8_t block[64];
    uint32_t used;
} nexus_sha256;

void nexus_sha256_init(nexus_sha256 *h);
void nexus_sha256_update(nexus_sha256 *h, const void *data, size_t len);
void nexus_sha256_final(nexus_sha256 *h, uint8_t digest[32]);

/* Freestanding replacements the compiler may call. */
void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);

#endif
