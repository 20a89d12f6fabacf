"""Accuracy measured on a finite test set, with its 95 % binomial interval.

A test accuracy is `correct / n` for n test images, a binomial proportion: on the digits
test split (n = 360) one image is 0.28 points, so two models a few images apart may not
differ at all. Every accuracy the tool shows a person carries n and a 95 % interval.

The interval is Wilson's score interval (E. B. Wilson, "Probable inference, the law of
succession, and statistical inference", JASA 22, 1927):

    centre = (p + z²/2n) / (1 + z²/n),  half = z / (1 + z²/n) · sqrt(p(1-p)/n + z²/4n²)

with p = correct / n and z = 1.959964 (the normal 97.5 % quantile). Why Wilson: its
coverage stays close to the nominal 95 % for every n and p, also near p = 1 where test
accuracies live, it never leaves [0, 1], and it has a closed form (Brown, Cai & DasGupta,
"Interval estimation for a binomial proportion", Statistical Science 16, 2001, recommend it
over the Wald interval, which collapses at p = 1). Clopper-Pearson guarantees at least 95 %
but is conservative: its real coverage is above 95 % (at n = 360, p ≈ 0.97 its interval is
about 5 % wider than Wilson's), so it calls real differences noise more often.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sparsespikformer.simulator.checks import check_fraction, check_positive_int
from sparsespikformer.simulator.errors import InputError

Z_95 = 1.959963984540054  # scipy.stats.norm.ppf(0.975)
INTERVAL_NAME = "Wilson score interval, 95 %"


@dataclass(frozen=True)
class Accuracy:
    """`correct` of `test_samples` images right, and the 95 % Wilson interval of the rate."""

    correct: int
    test_samples: int

    @property
    def value(self) -> float:
        return self.correct / self.test_samples

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.correct, self.test_samples)

    def contains(self, rate: float) -> bool:
        low, high = self.interval
        return low <= rate <= high

    def to_dict(self) -> dict[str, float | int]:
        """The form `summary.json` stores: value, counts and the interval's ends."""
        low, high = self.interval
        return {"accuracy": self.value, "correct": self.correct,
                "test_samples": self.test_samples, "ci95_low": low, "ci95_high": high}

    def text(self) -> str:
        """`97.50 % (351/360; 95 % CI 95.3–98.7 %)`."""
        low, high = self.interval
        return (f"{100 * self.value:.2f} % ({self.correct}/{self.test_samples}; "
                f"95 % CI {100 * low:.1f}–{100 * high:.1f} %)")


def wilson_interval(correct: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """(low, high) of the Wilson score interval of `correct` successes in `n` trials."""
    check_positive_int(n, "test samples")
    if isinstance(correct, bool) or not isinstance(correct, int) or not 0 <= correct <= n:
        raise InputError(f"correct: must be an integer in 0..{n}, got {correct!r}")
    p = correct / n
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # at p = 0 or 1 one end is exactly 0 or 1; clip the rounding
    return max(0.0, centre - half), min(1.0, centre + half)


def accuracy_of(rate: float, test_samples: int) -> Accuracy:
    """The `Accuracy` behind a rate measured on `test_samples` images (correct = rate · n,
    which must be a whole number of images to within rounding)."""
    check_positive_int(test_samples, "test samples")
    check_fraction(rate, "accuracy")
    correct = round(rate * test_samples)
    if abs(correct - rate * test_samples) > 1e-6 * test_samples:
        raise InputError(f"accuracy {rate!r} is not a whole number of {test_samples} images")
    return Accuracy(correct=int(correct), test_samples=int(test_samples))


def compare_in_words(first: Accuracy, second: Accuracy, names: tuple[str, str]) -> str:
    """One sentence: the two accuracies, and whether each lies within the other's 95 %
    interval (then this test set does not tell them apart)."""
    a_name, b_name = names
    same_n = first.test_samples == second.test_samples
    sizes = (f"{first.test_samples}" if same_n
             else f"{first.test_samples} and {second.test_samples}")
    head = (f"{a_name}, {100 * first.value:.2f} %, and {b_name}, {100 * second.value:.2f} % "
            f"(on {sizes} test images),")
    gap = f"the {abs(first.correct - second.correct)}-image difference" if same_n \
        else "the difference"
    if first.correct * second.test_samples == second.correct * first.test_samples:
        return f"{head} are equal."
    if first.contains(second.value) and second.contains(first.value):
        return (f"{head} are within each other's 95 % intervals: {gap} is not resolved by "
                f"this test set.")
    return f"{head} are not within each other's 95 % intervals: {gap} is real."


__all__ = ["Accuracy", "wilson_interval", "accuracy_of", "compare_in_words", "Z_95",
           "INTERVAL_NAME"]
