/*
 * switch_aarch64.S — goroutine context switch for aarch64 (AAPCS64).
 *
 * void rt__ctx_switch(void **save_sp, void *new_sp)
 *   Saves x19–x28, x29 (fp), x30 (lr) and d8–d15 in a 160-byte frame on the
 *   current stack, stores sp in *save_sp, loads new_sp, restores the same
 *   frame and returns through the restored lr. x18 (platform register) is
 *   never touched.
 *
 * Frame (offsets): x19 x20 | x21 x22 | x23 x24 | x25 x26 | x27 x28 |
 *                  x29 x30 | d8 d9 | d10 d11 | d12 d13 | d14 d15
 * stack.c builds the same frame for a new goroutine: x30 = rt__g_trampoline,
 * x19 = the G, x29 = 0.
 */
	.text
	.globl	rt__ctx_switch
	.type	rt__ctx_switch, %function
	.p2align 4
rt__ctx_switch:
	.cfi_startproc
	sub	sp, sp, #160
	.cfi_def_cfa_offset 160
	stp	x19, x20, [sp, #0]
	stp	x21, x22, [sp, #16]
	stp	x23, x24, [sp, #32]
	stp	x25, x26, [sp, #48]
	stp	x27, x28, [sp, #64]
	stp	x29, x30, [sp, #80]
	.cfi_offset x29, -80
	.cfi_offset x30, -72
	stp	d8, d9, [sp, #96]
	stp	d10, d11, [sp, #112]
	stp	d12, d13, [sp, #128]
	stp	d14, d15, [sp, #144]
	mov	x2, sp
	str	x2, [x0]
	mov	sp, x1			/* now on the new stack: same frame layout */
	ldp	x19, x20, [sp, #0]
	ldp	x21, x22, [sp, #16]
	ldp	x23, x24, [sp, #32]
	ldp	x25, x26, [sp, #48]
	ldp	x27, x28, [sp, #64]
	ldp	x29, x30, [sp, #80]
	ldp	d8, d9, [sp, #96]
	ldp	d10, d11, [sp, #112]
	ldp	d12, d13, [sp, #128]
	ldp	d14, d15, [sp, #144]
	add	sp, sp, #160
	.cfi_def_cfa_offset 0
	ret
	.cfi_endproc
	.size	rt__ctx_switch, .-rt__ctx_switch

/* First code a new goroutine runs: x19 = its G. lr is undefined so that
 * unwinders stop here. */
	.globl	rt__g_trampoline
	.type	rt__g_trampoline, %function
	.p2align 4
rt__g_trampoline:
	.cfi_startproc
	.cfi_undefined x30
	mov	x29, #0
	mov	x0, x19
	bl	rt__g_start
	brk	#0
	.cfi_endproc
	.size	rt__g_trampoline, .-rt__g_trampoline

	.section .note.GNU-stack,"",%progbits
