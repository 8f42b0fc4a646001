/*
 * switch_x86_64.S — goroutine context switch for x86_64 (SysV ABI).
 *
 * void rt__ctx_switch(void **save_sp, void *new_sp)
 *   Pushes the callee-saved registers and the MXCSR / x87 control words on
 *   the current stack, stores the stack pointer in *save_sp, loads new_sp and
 *   pops the same frame from there. The control words are reloaded only when
 *   they differ (ldmxcsr/fldcw are slow and almost always redundant).
 *
 * Frame (low to high): mxcsr(4) fpucw(2) pad(2) r15 r14 r13 r12 rbx rbp ret
 * stack.c builds the same frame for a new goroutine, with ret pointing at
 * rt__g_trampoline and rbx holding the G.
 */
	.text
	.globl	rt__ctx_switch
	.type	rt__ctx_switch, @function
	.p2align 4
rt__ctx_switch:
	.cfi_startproc
	pushq	%rbp
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %rbp, 0
	pushq	%rbx
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %rbx, 0
	pushq	%r12
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %r12, 0
	pushq	%r13
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %r13, 0
	pushq	%r14
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %r14, 0
	pushq	%r15
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %r15, 0
	subq	$8, %rsp
	.cfi_adjust_cfa_offset 8
	stmxcsr	(%rsp)
	fnstcw	4(%rsp)
	movl	(%rsp), %eax		/* current control words, for the compare */
	movzwl	4(%rsp), %ecx
	movq	%rsp, (%rdi)
	movq	%rsi, %rsp		/* now on the new stack: same frame layout */
	cmpl	(%rsp), %eax
	je	1f
	ldmxcsr	(%rsp)
1:	cmpw	4(%rsp), %cx
	je	2f
	fldcw	4(%rsp)
2:	addq	$8, %rsp
	.cfi_adjust_cfa_offset -8
	popq	%r15
	.cfi_adjust_cfa_offset -8
	popq	%r14
	.cfi_adjust_cfa_offset -8
	popq	%r13
	.cfi_adjust_cfa_offset -8
	popq	%r12
	.cfi_adjust_cfa_offset -8
	popq	%rbx
	.cfi_adjust_cfa_offset -8
	popq	%rbp
	.cfi_adjust_cfa_offset -8
	ret
	.cfi_endproc
	.size	rt__ctx_switch, .-rt__ctx_switch

/* First code a new goroutine runs: rbx = its G. The return address is
 * undefined so that debuggers and perf stop unwinding here. */
	.globl	rt__g_trampoline
	.type	rt__g_trampoline, @function
	.p2align 4
rt__g_trampoline:
	.cfi_startproc
	.cfi_undefined %rip
	xorl	%ebp, %ebp
	movq	%rbx, %rdi
	call	rt__g_start
	ud2
	.cfi_endproc
	.size	rt__g_trampoline, .-rt__g_trampoline

	.section .note.GNU-stack,"",@progbits
