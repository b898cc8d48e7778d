"""A query string as the options read it: each name at most once.

``?width=800&width=1200`` has no one meaning (frameworks differ on first, last or
a list), and on a signed link the signature covers both values while only one
would be used.  So a repeated name is a 400 naming it, on every GET that takes
options, signed or not.
"""

from __future__ import annotations

from multidict import MultiMapping

from ..errors import InvalidParameter

REPEATED = "given more than once; give each parameter once (lists are comma-separated)"


def one_value_each(query: MultiMapping[str]) -> dict[str, str]:
    """``query`` as a plain dict, or InvalidParameter naming every name that appears twice or more."""
    values: dict[str, str] = {}
    repeated: dict[str, str] = {}
    for name, value in query.items():
        if name in values:
            repeated[name] = REPEATED
        values[name] = value
    if repeated:
        raise InvalidParameter.fields(repeated)
    return values
