"""The one table of tolerances, per dtype of the implementation under test.

Inputs are first rounded to the dtype under test, and the reference is evaluated in float64 on those rounded
inputs: what remains is the implementation's own arithmetic error, not the rounding of its inputs. Half-precision
losses are expected to compute in float32 internally, so their values share float32's tolerance; their gradients
come back in the half dtype and carry its rounding.

An absolute tolerance is multiplied by the problem's magnitude (see :func:`magnitude`): a log-sum-exp of
logits of size |z|/T has an absolute error of about eps·|z|/T whatever the implementation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tolerance:
    """rtol and atol (atol per unit of magnitude) for loss values and for gradients."""

    value_rtol: float
    value_atol: float
    grad_rtol: float
    grad_atol: float
    #: Unit roundoff of the arithmetic the loss is computed in (float32 for half-precision inputs).
    eps: float = 2.0**-52

    def rtol(self, base: float, mag: float) -> float:
        """A relative tolerance that grows with the logits' size: σ(z/T) carries a relative error ≈ eps·|z|/T,
        and a KL multiplies it by log-ratios of the same size, so no implementation does better than ≈ eps·mag."""
        return max(base, 4.0 * self.eps * mag)


TOLERANCES: dict[str, Tolerance] = {
    "float64": Tolerance(value_rtol=1e-10, value_atol=1e-12, grad_rtol=1e-10, grad_atol=1e-13, eps=2.0**-52),
    "float32": Tolerance(value_rtol=2e-5, value_atol=4e-6, grad_rtol=2e-5, grad_atol=1e-6, eps=2.0**-23),
    "bfloat16": Tolerance(value_rtol=2e-5, value_atol=4e-6, grad_rtol=8e-3, grad_atol=1e-6, eps=2.0**-23),
    "float16": Tolerance(value_rtol=2e-5, value_atol=4e-6, grad_rtol=2e-3, grad_atol=1e-6, eps=2.0**-23),
}

#: The reference tier against the 50-digit mpmath oracle (float64 arithmetic on exact float64 inputs).
ORACLE = Tolerance(value_rtol=1e-13, value_atol=4e-15, grad_rtol=1e-12, grad_atol=4e-16, eps=2.0**-52)

#: Smallest gradient entry representable (for float16, values below its subnormal step are lost).
GRAD_FLOOR: dict[str, float] = {"float64": 0.0, "float32": 0.0, "bfloat16": 0.0, "float16": 6e-8}


def tolerance(dtype: str) -> Tolerance:
    """The tolerance row of ``dtype`` ("float64", "float32", "bfloat16", "float16")."""
    try:
        return TOLERANCES[dtype]
    except KeyError:
        raise ValueError(f"no tolerance for dtype {dtype!r}; known: {sorted(TOLERANCES)}") from None


def magnitude(*logits: np.ndarray, temperature: float = 1.0) -> float:
    """1 + max|z|/T + log C: the size of the log-probabilities the loss is computed from."""
    C = logits[0].shape[-1]
    biggest = max(float(np.max(np.abs(x))) for x in logits)
    return 1.0 + biggest / temperature + math.log(C)
