"""Class counts as people write them: ``1000``, ``2^14``, ``2^18.5`` (floored, as the paper does)."""

from __future__ import annotations

import math
import re

from slcbench.errors import SlcbenchError
from slcbench.paper import PAPER_CLASS_GRID

# ASCII digits only: str.isdigit and a Unicode \d accept '²', which int() then rejects.
_INTEGER = re.compile(r"^\d+$", re.ASCII)
_POWER = re.compile(r"^(\d+)\s*(?:\^|\*\*)\s*(\d+(?:\.\d+)?)$", re.ASCII)
MAX_CLASSES = 2**31 - 1


def parse_class_count(token: str) -> int:
    """One class count: an integer (``1000``) or a power ``B^E`` / ``B**E`` with a decimal exponent.

    Fractional powers are floored, as the paper does: ``2^18.5`` is 370727.
    """
    text = token.strip()
    out_of_range = SlcbenchError(f"class count {token!r} is out of range 1..{MAX_CLASSES}")

    def bounded_int(digits: str) -> int:
        if len(digits.lstrip("0")) > len(str(MAX_CLASSES)):  # before int(): no 4300-digit conversions
            raise out_of_range
        return int(digits)

    integer, power = _INTEGER.match(text), _POWER.match(text)
    if integer:
        value = bounded_int(text)
    elif power:
        base, exponent = bounded_int(power.group(1)), float(power.group(2))
        # Compare in logarithms first: 2^100000 would overflow a float.
        if base > 1 and exponent * math.log(base) > math.log(MAX_CLASSES) + 1:
            raise out_of_range
        value = math.floor(base**exponent)
    else:
        raise SlcbenchError(f"malformed class count {token!r}: use an integer or a power like 2^18.5 (or 'all')")
    if not 1 <= value <= MAX_CLASSES:
        raise out_of_range
    return value


def parse_class_spec(spec: str) -> tuple[int, ...]:
    """A comma list of class counts, or ``all`` for the paper's grid; sorted, unique, always with k=1.

    k=1 (SLC) is always included because every row's speedup is time(k) / time(1).
    """
    tokens = [t for t in spec.split(",") if t.strip()]
    if not tokens:
        raise SlcbenchError("empty class spec: give counts like 1,2^10,2^18.5 or 'all'")
    counts: set[int] = {1}
    for token in tokens:
        if token.strip().lower() == "all":
            counts.update(PAPER_CLASS_GRID)
        else:
            counts.add(parse_class_count(token))
    return tuple(sorted(counts))


def format_class_counts_in(text: str) -> str:
    """``text`` with each ``k=DIGITS`` (a pytest-benchmark id such as ``test_head[k=262144]``) as ``k=2^18``."""
    return re.sub(r"\bk=(\d{1,12})\b", lambda match: f"k={format_class_count(int(match.group(1)))}", text)


def format_class_count(k: int) -> str:
    """``2^14`` for powers of two and the paper's 2^18.5, plain digits otherwise."""
    if k == PAPER_CLASS_GRID[-1]:
        return "2^18.5"
    if k > 1 and k & (k - 1) == 0:
        return f"2^{k.bit_length() - 1}"
    return str(k)
