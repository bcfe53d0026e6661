"""A vectorisable float64 exponential for compiled loops.

numba calls libm's ``exp`` once per value (no vector math library here), so a
loop of exponentials does not vectorise. :func:`exp_fast` computes
``exp(x) = 2^n exp(t)`` with ``n = round(x / ln 2)`` and ``|t| <= ln(2) / 2``:
``exp(t)`` from its Taylor series to ``t^12 / 12!`` (truncation below 2e-16
relative), ``2^n`` assembled from exponent bits in two halves so that each is a
normal number down to the underflow at ``-746``, ``n`` and the bits by the
``1.5 * 2^52`` rounding trick in place of float-to-integer conversions (which
AVX2 lacks). Within a few units in the last place of libm's.

Shared by the compiled passes of :mod:`emkit.distributions.expfam` and the small-data
EM loop (:mod:`emkit.distributions.gaussian.small_em`); the constants are those of
:mod:`emkit.distributions.gaussian._soft_pass` too.
"""

from __future__ import annotations

import math

import numpy as np

try:
    import numba
except ImportError:  # pragma: no cover - numba is a declared dependency
    numba = None

_LOG2E = 1.4426950408889634
# ln 2 split in two (Cody and Waite) so that ``x - n ln 2`` is exact for the
# |n| <= 1076 that occur.
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
# exp of anything below rounds to zero in float64.
_EXP_FLOOR = -746.0
# 1/k! for k = 12 down to 0: Taylor series of exp on |r| <= ln(2)/2, whose
# truncation error (r^13/13!) is below 2e-16 relative.
_EXP_TAYLOR = tuple(1.0 / math.factorial(k) for k in range(12, -1, -1))
# 1.5 * 2^52: adding it rounds a double of magnitude below 2^51 to a whole number,
# held in the low bits of the sum.
_ROUND = 6755399441055744.0
_ROUND_BITS = int(np.float64(_ROUND).view(np.int64))

# Multiply-adds may be fused (more accurate, not less); no other fast-math flag:
# reassociation would fold the rounding trick and the split reduction away.
if numba is not None:
    _jit_fma = numba.njit(nogil=True, cache=True, error_model="numpy", fastmath={"contract"})
else:  # pragma: no cover

    def _jit_fma(func):
        return func


@_jit_fma
def exp_fast(values, out, scale):  # pragma: no cover - compiled
    """``out[j] = exp(values[j])`` for 1-D arrays (``out`` may be ``values``).

    ``scale`` is float64 scratch of twice the size. Values below ``-746`` give 0;
    NaN gives NaN.
    """
    c12, c11, c10, c9, c8, c7, c6, c5, c4, c3, c2, c1, c0 = _EXP_TAYLOR
    size = out.size
    high, low = scale[:size], scale[size:]
    for j in range(size):
        x = max(values[j], _EXP_FLOOR)
        n = (x * _LOG2E + _ROUND) - _ROUND
        t = (x - n * _LN2_HI) - n * _LN2_LO
        p = c12
        p = p * t + c11
        p = p * t + c10
        p = p * t + c9
        p = p * t + c8
        p = p * t + c7
        p = p * t + c6
        p = p * t + c5
        p = p * t + c4
        p = p * t + c3
        p = p * t + c2
        p = p * t + c1
        out[j] = p * t + c0
        half = ((n * 0.5 - 0.25) + _ROUND) - _ROUND  # floor(n / 2)
        # 2^half and 2^(n - half): their biased exponents in the low bits.
        high[j] = half + (1023.0 + _ROUND)
        low[j] = (n - half) + (1023.0 + _ROUND)
    bits = scale[: 2 * size].view(np.int64)
    for j in range(2 * size):
        bits[j] = (bits[j] - _ROUND_BITS) << 52
    for j in range(size):
        out[j] = out[j] * high[j] * low[j]
