"""The shift of the split-plane kernels' statistics: the mean of each plane's first values.

The per-plane kernels that split a plane over programs sum v - shift and (v - shift)^2 and take the
variance as sumsq / n - mean^2, which cancels when the shift lies many standard deviations from the
plane's mean. A plane's first value can (an outlier, a padded conv's corner, a border pixel), so the
shift is the mean of the first SHIFT_SAMPLE values instead: at most about sqrt(n / SHIFT_SAMPLE)
standard deviations from the mean for a plane of n values without structure, so at most
log10(n / SHIFT_SAMPLE) digits go to the cancellation. (The resident kernels hold the whole plane
and take the exact two-pass variance; they keep the first value as their shift.)

Every program of a plane computes the shift with the same code from the same values, so the sums
of all of a plane's programs share one constant; the C++ backend does the same (csrc/params.h).
"""
import triton
import triton.language as tl

SHIFT_SAMPLE = tl.constexpr(256)


@triton.jit
def sample_tile(off, HW, BLOCK_HW: tl.constexpr):
    """Positions off .. off + BLOCK_HW of the sample and which of them are in it."""
    hw = off + tl.arange(0, BLOCK_HW)
    return hw, (hw < HW) & (hw < SHIFT_SAMPLE)


@triton.jit
def sample_mean(total, HW):
    """The sample's mean from the (BLOCK_C, BLOCK_HW) sum of its tiles."""
    return tl.sum(total, axis=1) / tl.minimum(HW, SHIFT_SAMPLE)


@triton.jit
def plane_shift(planes, cmask, HW, stride_hw, BLOCK_C: tl.constexpr, BLOCK_HW: tl.constexpr, ACC: tl.constexpr):
    """The (BLOCK_C,) shifts of the planes starting at ``planes``: the mean of their first values."""
    total = tl.zeros((BLOCK_C, BLOCK_HW), ACC)
    for off in range(0, SHIFT_SAMPLE, BLOCK_HW):
        hw, in_sample = sample_tile(off, HW, BLOCK_HW)
        m = cmask[:, None] & in_sample[None, :]
        total += tl.load(planes[:, None] + hw[None, :].to(tl.int64) * stride_hw, mask=m, other=0.0).to(ACC)
    return sample_mean(total, HW)


@triton.jit
def resident_shift(v, m, BLOCK_HW: tl.constexpr, HW):
    """The same shift from a (BLOCK_C, BLOCK_HW) tile ``v`` that holds whole planes (valid where ``m``),
    so both launch paths save statistics in one convention."""
    in_sample = (tl.arange(0, BLOCK_HW) < SHIFT_SAMPLE)[None, :]
    return sample_mean(tl.where(m & in_sample, v, 0.0), HW)
