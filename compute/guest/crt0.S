/* Entry point of a Nexus guest: set the stack below the code and run main. A main that
 * returns 0 without committing commits an empty output; any other return fails the run. */
    .section .text.start, "ax"
    .globl _start
_start:
    li sp, 0x00200400
    call main
    bnez a0, 1f
    li a1, 0
    call nexus_commit
1:  call nexus_fail
