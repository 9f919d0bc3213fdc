"""The per-channel affine parameters of a program's channel tile, shared by the norm kernels."""
import triton
import triton.language as tl


@triton.jit
def affine_params(W, B, c, cmask, HAS_W: tl.constexpr, HAS_B: tl.constexpr, BLOCK_C: tl.constexpr,
                  ACC: tl.constexpr):
    """The (BLOCK_C,) affine weight and bias of channels ``c`` (1 and 0 where absent)."""
    if HAS_W:
        w = tl.load(W + c, mask=cmask, other=1.0).to(ACC)
    else:
        w = tl.full((BLOCK_C,), 1.0, ACC)
    if HAS_B:
        b = tl.load(B + c, mask=cmask, other=0.0).to(ACC)
    else:
        b = tl.zeros((BLOCK_C,), ACC)
    return w, b
