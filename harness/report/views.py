"""What the page shows of one piece of evidence, and the reading helpers its builders share.

The builders (:mod:`harness.report.evidence` for lines, tables and JSON,
:mod:`harness.report.diagrams` for timelines and graphs) turn a check's evidence into an
:class:`EvidenceView`; a shape that cannot be read raises :class:`Unreadable` with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from markupsafe import Markup

from harness.report.charts import PALETTE, TONES, tone_of

__all__ = [
    "STRUCTURE",
    "Cell",
    "Colours",
    "EvidenceView",
    "LegendEntry",
    "Unreadable",
    "list_of",
    "mapping",
    "number",
    "title_of",
    "to_float",
    "toned",
]

#: Colours for structure (graph node kinds, edge kinds): none of them is also a tone's.
STRUCTURE = ("#56B4E9", "#6e7781", "#0072B2", "#3d444d", "#000000")


class Unreadable(Exception):  # noqa: N818 - internal signal, never leaves the report package
    """The evidence claims a shape but does not have it; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class LegendEntry:
    name: str
    colour: str
    dash: str = ""
    shape: Literal["line", "dot", "diamond", "tick", "box"] = "line"


@dataclass(frozen=True, slots=True)
class Cell:
    text: str
    numeric: bool
    status: Literal["", "pass", "fail", "none"] = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class EvidenceView:
    name: str
    kind: Literal["chart", "timeline", "graph", "table", "json"]
    title: str
    svg: Markup | None = None
    legend: tuple[LegendEntry, ...] = ()
    has_refs: bool = False
    items: tuple[tuple[str, str], ...] = ()  # numbered markers listed under a chart: (n, text)
    notes: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    numeric_columns: tuple[bool, ...] = ()  # right-aligned: every non-empty cell is a number
    rows: tuple[tuple[Cell, ...], ...] = ()
    text: str = ""

    @property
    def words(self) -> str:
        """Name, title, column and legend names in lower case: what a failed measurement's
        label is matched to."""
        return " ".join((self.name, self.title, *self.columns, *(e.name for e in self.legend)))


def to_float(value: object) -> float | None:
    """A finite float from a number or a decimal string; ``None`` for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str | Decimal):
        try:
            number = float(Decimal(str(value).strip()))
        except (InvalidOperation, ValueError):
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def title_of(name: str, obj: Mapping[str, Any]) -> str:
    title = obj.get("title")
    return str(title) if title else name


def list_of(obj: Mapping[str, Any], key: str) -> list[Any]:
    raw = obj.get(key)
    if raw is None:
        return []
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        msg = f"{key!r} must be a list"
        raise Unreadable(msg)
    return list(raw)


def mapping(item: object, what: str) -> Mapping[str, Any]:
    if not isinstance(item, Mapping):
        msg = f"each {what} must be an object, got {item!r:.60}"
        raise Unreadable(msg)
    return item


def number(item: Mapping[str, Any], key: str, what: str) -> float:
    value = to_float(item.get(key))
    if value is None:
        msg = f"{what} {dict(item)!r:.80} has no numeric {key!r}"
        raise Unreadable(msg)
    return value


class Colours:
    """Colours by tone where one is given (or, with ``guess``, suggested by the kind), else
    palette colours in order of first use, skipping ``avoid`` (colours with a meaning in the
    same view) while the palette lasts."""

    def __init__(
        self, palette: Sequence[str] = PALETTE, avoid: Iterable[str] = (), *, guess: bool = True
    ) -> None:
        skip = set(avoid)
        self._free = [c for c in palette if c not in skip] or list(palette)
        self._assigned: dict[str, str] = {}
        self._guess = guess

    def tone(self, kind: str, tone: object = None) -> str | None:
        """The tone's colour for ``kind``, or ``None`` when it gets a palette colour."""
        given = tone if isinstance(tone, str) else None
        named = tone_of(kind, given) if self._guess else (given if given in TONES else None)
        return None if named is None else TONES[named]

    def __call__(self, kind: str, tone: object = None) -> str:
        toned = self.tone(kind, tone)
        if toned is not None:
            return toned
        if kind not in self._assigned:
            self._assigned[kind] = self._free[len(self._assigned) % len(self._free)]
        return self._assigned[kind]


def toned(
    items: Iterable[Mapping[str, Any]], kind_of: Callable[[Mapping[str, Any]], str]
) -> set[str]:
    """The tone colours some items will take: other colours in the view keep clear of them."""
    probe = Colours()
    return {c for item in items if (c := probe.tone(kind_of(item), item.get("tone")))}
