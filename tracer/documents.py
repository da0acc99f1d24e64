"""The check character of a Chinese resident ID number (GB 11643-1999, ISO 7064 MOD 11-2).

Here, in the domain layer, because both sides need it: the importers refuse a number whose check
character is wrong (connectors/importers/identity.py), and the simulator writes valid numbers.
"""

from __future__ import annotations

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK = "10X98765432"


def check_digit(first17: str) -> str:
    """The 18th character of an ID number from its first 17 ASCII digits."""
    return CHECK[sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True)) % 11]
