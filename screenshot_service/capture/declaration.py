"""How one capture option is declared: everything the service says or checks about it.

An option is a field of the option table (option_table.py) whose default is
``option(...)``: its name and type are the field's, and the rest — parser,
default, description, group, where it is accepted, whether it changes the
image, what it cannot be combined with — is given here, once.  Validation,
OpenAPI, the API Tester, signed links and jobs read it from there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

T = TypeVar("T")

# Where a request can carry options.
QUERY = "query"  # GET /v1/screenshot (and the capture CLI's flags)
BODY = "body"  # POST /v1/screenshot
JOB = "job"  # POST /v1/jobs
SIGNED_LINK = "signed_link"  # a signed GET link, public in a page
PLACES = (QUERY, BODY, JOB, SIGNED_LINK)
EVERYWHERE = frozenset(PLACES)
_METADATA_KEY = "capture_option"


@dataclass(frozen=True)
class Conflict:
    """This option, given, cannot be combined with ``other``: ``why`` is reported against both names.

    With ``values``, only those values of ``other`` (its default included) conflict, and ``{value}``
    in ``why`` names the one given; ``unless`` (name, value) lifts the conflict.  With ``named``,
    this option conflicts whenever the caller names it, whatever its value (``false`` included):
    an option that only means something beside certain values of ``other``.
    """

    other: str
    why: str
    values: tuple[Any, ...] = ()
    unless: tuple[str, Any] | None = None
    named: bool = False


@dataclass(frozen=True)
class Restriction:
    """At ``place``, only ``values`` are accepted (e.g. a job's result is always JSON)."""

    place: str
    values: tuple[Any, ...]
    why: str


@dataclass(frozen=True)
class Option:
    name: str
    parse: Callable[[Any], Any]
    default: Any
    group: str
    description: str
    accepted: frozenset[str] = EVERYWHERE
    in_fingerprint: bool = True  # False: never changes the image, so a cached capture may be reused
    # False: in the fingerprint (it shapes the result) but not the pixels, so a capture that
    # differs only here is still the same picture for `compare_to=previous` (SPEC §3.3).
    changes_image: bool = True
    conflicts: tuple[Conflict, ...] = ()
    restrictions: tuple[Restriction, ...] = ()

    def refusal(self, place: str) -> str:
        """Why this option is refused at ``place`` (where it is not accepted)."""
        if place == SIGNED_LINK:
            return "not allowed on a signed link"
        if place == JOB:
            return "not accepted on jobs; use POST /v1/screenshot"
        if BODY in self.accepted:
            return "only accepted in a POST JSON body"
        return "only accepted on POST /v1/jobs"


def option(
    default: T,
    parse: Callable[[Any], Any],
    group: str,
    description: str,
    *,
    accepted: frozenset[str] = EVERYWHERE,
    in_fingerprint: bool = True,
    changes_image: bool = True,
    conflicts: tuple[Conflict, ...] = (),
    restrictions: tuple[Restriction, ...] = (),
) -> T:
    """The default of an option-table field, carrying the option's declaration.

    Typed as the default so that mypy checks it against the field's type; at run
    time it is the dataclass field whose metadata holds the declaration.
    """
    unknown = accepted - EVERYWHERE
    if unknown or not accepted:
        raise ValueError(f"accepted must name some of {PLACES}, not {sorted(unknown) or 'none'}")
    declared = Option("", parse, default, group, description, accepted, in_fingerprint,
                      changes_image and in_fingerprint, conflicts, restrictions)
    return cast(T, dataclasses.field(default=default, metadata={_METADATA_KEY: declared}))


def declared_options(table: type, groups: tuple[str, ...]) -> dict[str, Option]:
    """The declarations of every field of ``table``, in field order; refuses an incomplete table."""
    options: dict[str, Option] = {}
    for f in dataclasses.fields(table):
        declared = f.metadata.get(_METADATA_KEY)
        if not isinstance(declared, Option):
            raise TypeError(f"{table.__name__}.{f.name} must be declared with option(...)")
        options[f.name] = dataclasses.replace(declared, name=f.name)
    for spec in options.values():
        if spec.group not in groups:
            raise ValueError(f"option {spec.name}: group {spec.group!r} is not one of {groups}")
        for conflict in spec.conflicts:
            named = [conflict.other, *(conflict.unless[:1] if conflict.unless else ())]
            if any(name not in options for name in named):
                raise ValueError(f"option {spec.name}: a conflict names an unknown option in {named}")
        if any(r.place not in PLACES for r in spec.restrictions):
            raise ValueError(f"option {spec.name}: a restriction names an unknown place")
    return options
