"""Compile every Triton kernel ahead of time for sm_90 (H100/H200) through ptxas to a cubin,
with the argument types the launchers pass, in fp32 and bf16. No GPU needed: this checks the
GPU code path (types, loop-carried values, constexpr branches) that the interpreter does not.
Run as a script in a process without TRITON_INTERPRET (the interpreter replaces @triton.jit).
Exit status 1 and one line per failure if any kernel does not compile."""
import os
import sys

assert os.environ.get("TRITON_INTERPRET", "0") in ("", "0"), "run without TRITON_INTERPRET"

import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from pygzlaw.kernels.linear_ce import _ce_fwd_bwd_kernel  # noqa: E402
from pygzlaw.kernels.rmsnorm import _rmsnorm_bwd_kernel, _rmsnorm_fwd_kernel  # noqa: E402
from pygzlaw.kernels.rope import _rope_kernel  # noqa: E402
from pygzlaw.kernels.swiglu import _swiglu_bwd_kernel, _swiglu_fwd_kernel  # noqa: E402


def cases(dt):
    p = f"*{dt}"
    yield "rmsnorm_fwd", _rmsnorm_fwd_kernel, dict(
        y_ptr=p, x_ptr=p, w_ptr=p, rstd_ptr="*fp32", n_cols="i32", eps="fp32"), \
        dict(BLOCK=1024), 2
    yield "rmsnorm_bwd", _rmsnorm_bwd_kernel, dict(
        dx_ptr=p, dw_partial_ptr="*fp32", dy_ptr=p, x_ptr=p, w_ptr=p, rstd_ptr="*fp32",
        n_rows="i32", n_cols="i32", rows_per_program="i32"), dict(BLOCK=2048), 4
    yield "swiglu_fwd", _swiglu_fwd_kernel, dict(
        y_ptr=p, gate_ptr=p, up_ptr=p, gate_row_stride="i32", up_row_stride="i32",
        n_cols="i32"), dict(BLOCK=1024), 4
    yield "swiglu_bwd", _swiglu_bwd_kernel, dict(
        dgate_ptr=p, dup_ptr=p, dy_ptr=p, gate_ptr=p, up_ptr=p, dy_row_stride="i32",
        gate_row_stride="i32", up_row_stride="i32", n_cols="i32"), dict(BLOCK=1024), 4
    for backward in (False, True):
        yield f"rope(backward={backward})", _rope_kernel, dict(
            y_ptr=p, x_ptr=p, cos_ptr="*fp32", sin_ptr="*fp32", x_row_stride="i32",
            seq_len="i32", n_heads="i32",
            head_dim="i32", half="i32"), dict(BACKWARD=backward, BLOCK_H=16, BLOCK_HALF=32), 2
    yield "ce_fwd_bwd", _ce_fwd_bwd_kernel, dict(
        logits_ptr=p, targets_ptr="*i64", loss_ptr="*fp32", row_stride="i32", n_cols="i32",
        ignore_index="i32"), dict(BLOCK=4096), 8


def main() -> int:
    target = GPUTarget("cuda", 90, 32)
    failures = 0
    for dt in ("fp32", "bf16"):
        for name, fn, sig, consts, num_warps in cases(dt):
            sig = {**sig, **{k: "constexpr" for k in consts}}
            try:
                k = triton.compile(ASTSource(fn, sig, consts), target=target,
                                   options={"num_warps": num_warps})
                assert len(k.asm["cubin"]) > 0
            except Exception as e:  # report every kernel, not just the first
                failures += 1
                print(f"{name} {dt}: {type(e).__name__}: {e}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
