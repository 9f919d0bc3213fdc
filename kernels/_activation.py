"""Activations as Triton device functions, selected by a compile-time code.

Codes (shared with effgan/ops/_activation.py and csrc/): 0 identity, 1 relu, 2 leaky_relu,
3 silu, 4 tanh.
"""
import triton
import triton.language as tl


@triton.jit
def _tanh(z):
    # tanh from exp(-2|z|): no overflow for large |z|, and it exists in every Triton version and in
    # the interpreter (libdevice does not). Near 0, 1 - t cancels (a relative error of about
    # ulp / |z|: all of tanh lost below 1e-8 in float32), so small |z| takes tanh's odd Taylor
    # series to z^9 instead: below 0.25 its first omitted term is < 1e-8 of tanh(z) (float32's
    # ulp is 6e-8), below 0.01 < 1e-21 (float64).
    az = tl.abs(z)
    t = tl.exp(-2.0 * az)
    r = (1.0 - t) / (1.0 + t)
    r = tl.where(z < 0, -r, r)
    z2 = z * z
    p = z + z * z2 * (-0.3333333333333333 + z2 * (0.13333333333333333 + z2 * (-0.05396825396825397
                                                                           + z2 * 0.021869488536155203)))
    if z.dtype == tl.float64:
        small = 0.01
    else:
        small = 0.25
    return tl.where(az < small, p, r)


@triton.jit
def apply_act(z, ACT: tl.constexpr, SLOPE: tl.constexpr):
    if ACT == 1:
        z = tl.where(z < 0, 0.0, z)  # a NaN passes through, as in torch.relu (tl.maximum drops it)
    elif ACT == 2:
        z = tl.where(z > 0, z, z * SLOPE)
    elif ACT == 3:
        z = z * tl.sigmoid(z)
    elif ACT == 4:
        z = _tanh(z)
    return z


@triton.jit
def act_grad(z, ACT: tl.constexpr, SLOPE: tl.constexpr):
    """d act(z) / dz, evaluated at the pre-activation z."""
    if ACT == 0:
        g = tl.full(z.shape, 1.0, z.dtype)
    elif ACT == 1:
        g = tl.where(z > 0, 1.0, 0.0).to(z.dtype)
    elif ACT == 2:
        # Built in z's dtype: a literal pair would be typed float32 and round the slope.
        g = tl.where(z > 0, tl.full(z.shape, 1.0, z.dtype), tl.full(z.shape, SLOPE, z.dtype))
    elif ACT == 3:
        s = tl.sigmoid(z)
        g = s * (1.0 + z * (1.0 - s))
    else:
        t = _tanh(z)
        g = 1.0 - t * t
    return g


@triton.jit
def act_backward(g, z, ACT: tl.constexpr, SLOPE: tl.constexpr):
    """The gradient g of act(z) carried back to z, applied the way torch's backward formulas apply
    it: ReLU and leaky ReLU select (a NaN gradient where ReLU is flat becomes 0, as in
    threshold_backward, instead of spreading through the norm's sums), the smooth ones multiply."""
    if ACT == 0:
        r = g
    elif ACT == 1:
        r = tl.where(z <= 0, 0.0, g)
    elif ACT == 2:
        r = tl.where(z > 0, g, g * tl.full(g.shape, SLOPE, g.dtype))
    else:
        r = g * act_grad(z, ACT, SLOPE)
    return r
