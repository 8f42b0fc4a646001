#!/usr/bin/env python3
# nosys.py — run a command with some system calls failing ENOSYS, as on a
# kernel that lacks them: a seccomp filter (classic BPF, installed with
# prctl; root has CAP_SYS_ADMIN, so no no_new_privs is needed) that every
# child inherits. Lets a test see what a runtime says when the kernel
# refuses a call (mount_setattr before Linux 5.12) on a kernel that has it.
#   python3 tests/container/nosys.py NR[,NR...] -- CMD [ARGS...]
# Must stay true: only the listed numbers of the machine's own
# architecture are refused; everything else is allowed.
import ctypes
import os
import platform
import struct
import sys

AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
LD_W_ABS, JEQ_K, RET_K = 0x20, 0x15, 0x06
RET_ALLOW, RET_ERRNO, ENOSYS = 0x7FFF0000, 0x00050000, 38
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
DATA_NR, DATA_ARCH = 0, 4  # offsets in struct seccomp_data


def insn(code, jt, jf, k):
    return struct.pack("HBBI", code, jt, jf, k)


def program(nrs):
    n = len(nrs)
    # arch check, then one compare per number: a match jumps to the ERRNO
    # return after the list, no match falls through to ALLOW
    p = [insn(LD_W_ABS, 0, 0, DATA_ARCH), insn(JEQ_K, 0, n + 1, AUDIT_ARCH[platform.machine()]),
         insn(LD_W_ABS, 0, 0, DATA_NR)]
    for i, nr in enumerate(nrs):
        p.append(insn(JEQ_K, n - i, 0, nr))
    p += [insn(RET_K, 0, 0, RET_ALLOW), insn(RET_K, 0, 0, RET_ERRNO | ENOSYS)]
    return b"".join(p), len(p)


def main():
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        sys.exit("usage: nosys.py NR[,NR...] -- CMD [ARGS...]")
    code, count = program([int(x) for x in sys.argv[1].split(",")])
    buf = ctypes.create_string_buffer(code, len(code))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    prog = SockFprog(count, ctypes.addressof(buf))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        sys.exit("nosys.py: prctl(PR_SET_SECCOMP): " + os.strerror(ctypes.get_errno()))
    os.execvp(sys.argv[3], sys.argv[3:])


main()
