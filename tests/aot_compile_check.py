"""Compile every Triton kernel variant for an NVIDIA sm_90 GPU (H100/H200) ahead of time.

The interpreter runs the kernels' math on CPU but never lowers them to GPU code, so an op the
GPU compiler rejects would pass the CPU suite. Triton can compile to PTX and cubin without a
GPU (its wheel carries ptxas): this script does that for each kernel and specialisation.
Run it without TRITON_INTERPRET; exit code 0 = all compiled. Prints one line per variant.
"""

import os
import sys

if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
    sys.exit("run without TRITON_INTERPRET")

import triton  # noqa: E402
import triton.language as tl  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from fastvae.kernels import bernoulli as kb  # noqa: E402
from fastvae.kernels import gaussian as kg  # noqa: E402

PTR = {"fp32": "*fp32", "bf16": "*bf16", "fp16": "*fp16", "fp64": "*fp64", "u8": "*u8", "i1": "*i1", "i64": "*i64"}
ACC = {"fp64": tl.float64}


def compile_one(fn, ptrs, scalars, consts, num_warps=4):
    sig = {}
    for name in fn.arg_names:
        if name in consts:
            sig[name] = "constexpr"
        elif name in ptrs:
            sig[name] = PTR[ptrs[name]]
        else:
            sig[name] = scalars.get(name, "i32")
    src = ASTSource(fn, sig, constexprs=consts)
    return triton.compile(src, target=GPUTarget("cuda", 90, 32), options={"num_warps": num_warps})


def variants():
    for ld, xd, gd, idx in [("fp32", "u8", "fp32", "i32"), ("bf16", "i1", "bf16", "i32"),
                            ("fp16", "fp16", "fp16", "i64"), ("fp64", "fp64", "fp64", "i32")]:
        acc = ACC.get(ld, tl.float32)
        out = "fp64" if ld == "fp64" else "fp32"
        for need in (True, False):
            yield (f"bernoulli fwd {ld}/{xd} store_grad={need} {idx}", kb._bernoulli_ll_fwd_kernel,
                   dict(l_ptr=ld, x_ptr=xd, ll_ptr=out, grad_ptr=gd),
                   dict(B=idx, D=idx, stride_lb=idx, stride_xb=idx, grad_scale="fp32"),
                   dict(ACC=acc, STORE_GRAD=need, BLOCK_B=4, BLOCK_D=1024, stride_ld=1, stride_xd=1), 8)
        yield (f"bernoulli scale {gd} {idx}", kb._scale_rows_kernel, dict(grad_ptr=gd, g_ptr=out),
               dict(B=idx, D=idx, stride_g=idx, grad_scale="fp32"), dict(ACC=acc, BLOCK_B=8, BLOCK_D=512), 8)
        yield (f"bernoulli bwd {ld}/{xd} {idx}", kb._bernoulli_ll_bwd_kernel,
               dict(l_ptr=ld, x_ptr=xd, g_ptr=out, grad_ptr=gd), dict(B=idx, D=idx, stride_lb=idx, stride_xb=idx),
               dict(ACC=acc, BLOCK_B=4, BLOCK_D=1024, stride_ld=1, stride_xd=1), 8)
    for dt, idx in [("fp32", "i32"), ("bf16", "i64"), ("fp16", "i32"), ("fp64", "i32")]:
        acc = ACC.get(dt, tl.float32)
        out = "fp64" if dt == "fp64" else "fp32"
        for has_eps, wz, wkl in [(False, True, True), (True, True, True), (False, False, True), (False, True, False)]:
            yield (f"gaussian fwd {dt} eps={has_eps} z={wz} kl={wkl} {idx}", kg._reparameterize_kl_fwd_kernel,
                   dict(mu_ptr=dt, lv_ptr=dt, eps_ptr=dt, seed_ptr="i64", z_ptr=dt, kl_ptr=out),
                   {k: idx for k in ("B", "L", "stride_mb", "stride_vb", "stride_eb", "stride_ml", "stride_vl", "stride_el")},
                   dict(ACC=acc, SERIES_MAX=0.075 if dt == "fp64" else 0.5, HAS_EPS=has_eps, WRITE_Z=wz, WRITE_KL=wkl,
                        BLOCK_B=16, BLOCK_L=64), 8)
        for has_eps, gz, gkl in [(False, True, True), (True, True, False), (False, False, True)]:
            yield (f"gaussian bwd {dt} eps={has_eps} gz={gz} gkl={gkl} {idx}", kg._reparameterize_kl_bwd_kernel,
                   dict(mu_ptr=dt, lv_ptr=dt, eps_ptr=dt, seed_ptr="i64", gz_ptr=dt, gkl_ptr=out, gmu_ptr=dt, glv_ptr=dt),
                   {}, dict(ACC=acc, SERIES_MAX=0.075 if dt == "fp64" else 0.5, HAS_EPS=has_eps, HAS_GZ=gz, HAS_GKL=gkl,
                        BLOCK_B=16, BLOCK_L=64), 8)


def main():
    failed = 0
    for name, fn, ptrs, scalars, consts, warps in variants():
        try:
            k = compile_one(fn, ptrs, scalars, consts, warps)
            print(f"ok   {name}: {len(k.asm['cubin'])} bytes of cubin")
        except Exception as e:  # report every failure, not only the first
            failed += 1
            print(f"FAIL {name}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    print(f"{failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
