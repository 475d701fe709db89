"""What text the API takes, said once for the checks and the OpenAPI document alike.

No text may hold NUL (PostgreSQL cannot store it; gateway/payloads.py refuses a body with one).
A name must hold a character other than white space, where white space is ECMA-262's `\\s` (what
a JSON Schema `pattern` means by it), written out so Python's `re` reads the same set.
"""

from __future__ import annotations

import re

# ECMA-262 white space and line terminators, as a character-class body (Python re and ECMA alike).
SPACE = "\\t\\n\\v\\f\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff"
NO_NUL = "^[^\\u0000]*$"
VISIBLE = f"^[^\\u0000]*[^\\u0000{SPACE}][^\\u0000]*$"  # holds a character that is not white space

_VISIBLE = re.compile(VISIBLE)
_EDGES = re.compile(f"^[{SPACE}]+|[{SPACE}]+$")


def visible(value: str) -> bool:
    """`value` holds a character other than white space (and no NUL)."""
    return _VISIBLE.fullmatch(value) is not None


def trimmed(value: str) -> str:
    """`value` without white space at either end (the same white space `visible` means)."""
    return _EDGES.sub("", value)
