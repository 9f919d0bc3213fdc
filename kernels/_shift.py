"""The shift of the split-plane kernels' statistics: the mean of each plane's first values.

The per-plane kernels that split a plane over programs sum v - shift and (v - shift)^2 and take the
variance as sumsq / n - mean^2, which cancels when the shift lies many standard deviations from the
plane's mean. A plane's first value can (an outlier, a padded conv's corner, a border pixel), so the
shift is the mean of the first m = SHIFT_SAMPLE values instead, which is at most sqrt(n / m)
standard deviations from the mean of a plane of n values, whatever they are (their squared
deviations from the mean sum to n var, those of the first m to at least m (shift - mean)^2), so at
most log10(n / m) digits go to the cancellation. (The resident kernels hold the whole plane, take
the exact two-pass variance and keep the first value as their shift.) The C++ backend does the same
(csrc/params.h: sample_mean).

Every program of a plane computes the shift with the same code from the same values, so the partial
sums of a plane's programs share one constant. adain and dwconv_norm_act publish it from their first
pass for the later ones; instance_norm_act's split kernels each compute it again. Should two of those
kernels round it differently (a tl.sum's order follows the kernel's register layout), xhat moves by
an ulp of the shift times 1/std: the size of the rounding of the mean in torch's own instance norm.
"""
import triton
import triton.language as tl

SHIFT_SAMPLE = tl.constexpr(256)


@triton.jit
def sample_tile(off, HW, SAMPLE_HW: tl.constexpr):
    """Positions off .. off + SAMPLE_HW of the sample (SAMPLE_HW: ``PlaneSplit.SAMPLE_HW``) and which
    of them are in it."""
    hw = off + tl.arange(0, SAMPLE_HW)
    return hw, (hw < HW) & (hw < SHIFT_SAMPLE)


@triton.jit
def sample_mean(total, HW):
    """The sample's mean from the (BLOCK_C, SAMPLE_HW) sum of its tiles."""
    return tl.sum(total, axis=1) / tl.minimum(HW, SHIFT_SAMPLE)


@triton.jit
def plane_shift(planes, cmask, HW, stride_hw, BLOCK_C: tl.constexpr, SAMPLE_HW: tl.constexpr, ACC: tl.constexpr):
    """The (BLOCK_C,) shifts of the planes starting at ``planes``: the mean of their first values."""
    total = tl.zeros((BLOCK_C, SAMPLE_HW), ACC)
    for off in range(0, SHIFT_SAMPLE, SAMPLE_HW):
        hw, in_sample = sample_tile(off, HW, SAMPLE_HW)
        m = cmask[:, None] & in_sample[None, :]
        total += tl.load(planes[:, None] + hw[None, :].to(tl.int64) * stride_hw, mask=m, other=0.0).to(ACC)
    return sample_mean(total, HW)

