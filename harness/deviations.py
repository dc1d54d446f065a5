"""Known deviations: a venue's documented rules that differ from the reference, per check.

A venue may document a rule that differs from ``perp-mechanics.md`` (Bybit takes the maintenance
margin at the entry value inside its liquidation price; OKX adds the liquidation fee...). Such
differences live in a registry file per venue, next to its adapter::

    venue = "bybit-testnet"

    [[deviation]]
    check = "LIQ-001"                  # the check ID
    label = "*: LP of *"               # optional: which measurements (``*`` matches any text)
    rule = "Bybit takes the maintenance margin at the entry value ..."
    source = "https://www.bybit.com/en/help-center/article/Liquidation-Price-USDT-Contract"
    expected = "the reported LP sits closer to the entry by mmr x |entry - LP| ..."
    tolerance = "0.15%"                # optional: |deviation| allowed under the venue's rule
    observed = "-2019"                 # optional: the value the venue's rule gives

A check judges the venue by its documented rule: when every failed comparison of a check is
covered by an entry (label matches) *and* is within the entry's rule (``tolerance``: absolute,
or ``%`` of the expected value; ``observed``: that exact value; neither: any value), the check
ends with status ``deviation`` ("deviation, documented"), not ``failed``, with the entry's rule
and source in ``deviation_note``; the run's exit code counts it as not failed. A comparison the
registry does not cover, or one outside even the venue's own rule, still fails the check.

A venue exposes its registry through :class:`DeviationSource` (``venue.known_deviations()``);
extra files (a team's own, or a test's) come with ``--known-deviations FILE``.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from harness.errors import ConfigError
from harness.results import Measurement, Status

if TYPE_CHECKING:
    from harness.checks import CheckContext

__all__ = [
    "DeviationRegistry",
    "DeviationSource",
    "Judgement",
    "KnownDeviation",
    "RunDeviations",
    "documented_deviation",
    "judge",
    "load_registry",
    "parse_registry",
    "registry_from_package",
    "registry_of",
]

_ID = re.compile(r"^[A-Z]{3,5}-\d{3}$")
_TOP_KEYS = frozenset({"venue", "deviation"})
_REQUIRED = ("check", "rule", "source", "expected")
_OPTIONAL = ("label", "tolerance", "observed")


@dataclass(frozen=True, slots=True, kw_only=True)
class KnownDeviation:
    """One documented rule difference of a venue for one check (and optionally some labels)."""

    venue: str
    check: str
    rule: str
    source: str
    expected: str
    label: str | None = None
    tolerance: Decimal | None = None
    relative: bool = False  # tolerance is a percentage of the measurement's expected value
    observed: str | None = None
    origin: str = ""  # "<file>, entry N": where it was declared, for messages

    def covers(self, m: Measurement) -> bool:
        """The entry is about this measurement (same check assumed; label matches)."""
        return self.label is None or _label_pattern(self.label).match(m.label) is not None

    def accepts(self, m: Measurement) -> bool:
        """The measurement is what the venue's documented rule gives."""
        if self.observed is not None and not _same_value(m.observed, self.observed):
            return False
        if self.tolerance is not None:
            deviation = _decimal(m.deviation)
            if deviation is None:
                return False
            limit = self.tolerance
            if self.relative:
                expected = _decimal(m.expected)
                if expected is None:
                    return False
                limit = abs(expected) * self.tolerance / 100
            if abs(deviation) > limit:
                return False
        return True

    @property
    def tolerance_text(self) -> str | None:
        if self.tolerance is None:
            return None
        return f"{format(self.tolerance, 'f')}{'%' if self.relative else ''}"

    def to_json(self) -> dict[str, str]:
        out = {
            "venue": self.venue,
            "check": self.check,
            "rule": self.rule,
            "source": self.source,
            "expected": self.expected,
        }
        if self.label is not None:
            out["label"] = self.label
        if self.tolerance_text is not None:
            out["tolerance"] = self.tolerance_text
        if self.observed is not None:
            out["observed"] = self.observed
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviationRegistry:
    """A venue's known deviations (possibly merged from several files)."""

    venue: str
    entries: tuple[KnownDeviation, ...] = ()
    origins: tuple[str, ...] = ()  # the files read

    def for_check(self, check_id: str) -> tuple[KnownDeviation, ...]:
        return tuple(e for e in self.entries if e.check == check_id)

    def merged(self, other: DeviationRegistry) -> DeviationRegistry:
        if other.venue != self.venue:
            msg = (
                f"{', '.join(other.origins) or 'a registry'} documents venue {other.venue!r}, "
                f"but the run is on {self.venue!r}; set venue = {self.venue!r} in that file"
            )
            raise ConfigError(msg)
        return DeviationRegistry(
            venue=self.venue,
            entries=self.entries + other.entries,
            origins=self.origins + other.origins,
        )

    def validate(self, known_ids: Iterable[str]) -> None:
        """Every entry names a check that exists.

        Raises:
            ConfigError: an unknown check ID (the message names the file, the entry and the
                closest known IDs).
        """
        known = sorted(set(known_ids))
        for entry in self.entries:
            if entry.check not in known:
                close = difflib.get_close_matches(entry.check, known, n=3)
                hint = f"; did you mean {' or '.join(close)}?" if close else ""
                msg = (
                    f"{entry.origin}: unknown check ID {entry.check!r}: no check has this ID{hint}"
                )
                raise ConfigError(msg)

    def __len__(self) -> int:
        return len(self.entries)


@runtime_checkable
class DeviationSource(Protocol):
    """Optional part of a Venue: its registry of documented deviations."""

    def known_deviations(self) -> DeviationRegistry: ...


def registry_of(venue: object) -> DeviationRegistry:
    """The registry a venue exposes; empty for a venue that has none."""
    name = str(getattr(venue, "name", ""))
    if isinstance(venue, DeviationSource):
        registry = venue.known_deviations()
        if registry.venue != name:
            msg = f"venue {name!r} returned the known deviations of {registry.venue!r}"
            raise ConfigError(msg)
        return registry
    return DeviationRegistry(venue=name)


# --------------------------------------------------------------------------- parsing
def parse_registry(
    text: str, *, origin: str, venue: str | None = None, known_ids: Iterable[str] | None = None
) -> DeviationRegistry:
    """Parse a registry file's TOML text; ``origin`` names it in error messages.

    Raises:
        ConfigError: invalid TOML, a missing or unknown key, a malformed check ID, tolerance or
            label, the wrong venue, two entries for the same check and label, or (given
            ``known_ids``) a check ID no check has.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = f"{origin} is not valid TOML: {exc}"
        raise ConfigError(msg) from None
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        msg = (
            f"{origin}: unknown key(s) {', '.join(unknown)}; "
            "a registry has 'venue' and [[deviation]] entries"
        )
        raise ConfigError(msg)
    name = data.get("venue")
    if not isinstance(name, str) or not name:
        msg = f'{origin}: missing venue = "<name>" (the venue these deviations are documented for)'
        raise ConfigError(msg)
    if venue is not None and name != venue:
        msg = f"{origin} documents venue {name!r}, not {venue!r}"
        raise ConfigError(msg)
    raw_entries = data.get("deviation", [])
    if not isinstance(raw_entries, list):
        msg = f"{origin}: 'deviation' must be an array of tables ([[deviation]])"
        raise ConfigError(msg)
    entries = tuple(
        _entry(raw, venue=name, origin=f"{origin}, entry {n}")
        for n, raw in enumerate(raw_entries, start=1)
    )
    seen: dict[tuple[str, str | None], str] = {}
    for entry in entries:
        key = (entry.check, entry.label)
        if key in seen:
            what = f"label {entry.label!r}" if entry.label is not None else "no label"
            msg = (
                f"{entry.origin}: {entry.check} with {what} is already documented by "
                f"{seen[key]}; merge the two entries"
            )
            raise ConfigError(msg)
        seen[key] = entry.origin
    registry = DeviationRegistry(venue=name, entries=entries, origins=(origin,))
    if known_ids is not None:
        registry.validate(known_ids)
    return registry


def load_registry(
    path: Path, *, venue: str | None = None, known_ids: Iterable[str] | None = None
) -> DeviationRegistry:
    """Read a registry file (see :func:`parse_registry`).

    Raises:
        ConfigError: the file is missing or unreadable, or invalid.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        msg = f"known-deviations file {path} does not exist"
        raise ConfigError(msg) from None
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"known-deviations file {path} cannot be read: {exc}"
        raise ConfigError(msg) from None
    return parse_registry(text, origin=str(path), venue=venue, known_ids=known_ids)


def registry_from_package(package: str, resource: str, *, venue: str) -> DeviationRegistry:
    """The registry shipped as ``resource`` inside ``package`` (empty if there is none)."""
    target = files(package)
    for part in resource.split("/"):
        target = target.joinpath(part)
    if not target.is_file():
        return DeviationRegistry(venue=venue)
    return parse_registry(
        target.read_text(encoding="utf-8"), origin=f"{package}:{resource}", venue=venue
    )


def _entry(raw: object, *, venue: str, origin: str) -> KnownDeviation:
    if not isinstance(raw, dict):
        msg = f"{origin}: each [[deviation]] must be a table"
        raise ConfigError(msg)
    unknown = sorted(set(raw) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        allowed = ", ".join((*_REQUIRED, *_OPTIONAL))
        msg = f"{origin}: unknown key(s) {', '.join(unknown)}; allowed: {allowed}"
        raise ConfigError(msg)
    values: dict[str, str] = {}
    for key in (*_REQUIRED, *_OPTIONAL):
        value = raw.get(key)
        if value is None:
            if key in _REQUIRED:
                msg = f"{origin}: missing {key!r} ({_HELP[key]})"
                raise ConfigError(msg)
            continue
        if not isinstance(value, str) or not value.strip():
            msg = f"{origin}: {key!r} must be a non-empty string, got {value!r}"
            raise ConfigError(msg)
        values[key] = value.strip()
    check_id = values["check"]
    if not _ID.match(check_id):
        msg = f"{origin}: check ID {check_id!r} must look like 'LIQ-001'"
        raise ConfigError(msg)
    origin = f"{origin} ({check_id})"
    tolerance, relative = _tolerance(values.get("tolerance"), origin)
    return KnownDeviation(
        venue=venue,
        check=check_id,
        rule=values["rule"],
        source=values["source"],
        expected=values["expected"],
        label=values.get("label"),
        tolerance=tolerance,
        relative=relative,
        observed=values.get("observed"),
        origin=origin,
    )


_HELP = {
    "check": "the check ID, e.g. 'LIQ-001'",
    "rule": "the venue's documented rule, in words",
    "source": "where the venue documents it: a URL or a document reference",
    "expected": "the value or behaviour expected under the venue's rule",
}


def _tolerance(raw: str | None, origin: str) -> tuple[Decimal | None, bool]:
    if raw is None:
        return None, False
    relative = raw.endswith("%")
    number = raw.removesuffix("%").strip()
    try:
        value = Decimal(number)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value < 0:
        msg = (
            f"{origin}: tolerance {raw!r} must be a non-negative number, "
            "or a percentage like '0.1%'"
        )
        raise ConfigError(msg)
    return value, relative


def _label_pattern(label: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in label.split("*")) + r"\Z", re.DOTALL)


def _decimal(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _same_value(observed: str, documented: str) -> bool:
    a, b = _decimal(observed), _decimal(documented)
    if a is not None and b is not None:
        return a == b
    return observed.strip() == documented.strip()


# --------------------------------------------------------------------------- judging
@dataclass(frozen=True, slots=True, kw_only=True)
class Judgement:
    """A check's failed comparisons split by the venue's documented rules."""

    documented: tuple[tuple[Measurement, KnownDeviation], ...] = ()
    undocumented: tuple[Measurement, ...] = ()
    outside: tuple[tuple[Measurement, KnownDeviation], ...] = ()  # covered, beyond the rule

    @property
    def all_documented(self) -> bool:
        return bool(self.documented) and not self.undocumented

    @property
    def entries(self) -> tuple[KnownDeviation, ...]:
        out: list[KnownDeviation] = []
        for _, entry in self.documented:
            if entry not in out:
                out.append(entry)
        return tuple(out)

    @property
    def message(self) -> str:
        """The first documented comparison, as a failure message would state it."""
        if not self.documented:
            return ""
        first, entry = self.documented[0]
        more = f" (and {len(self.documented) - 1} more)" if len(self.documented) > 1 else ""
        return (
            f"{first.label}: expected {first.expected}, observed {first.observed}{more}; "
            f"documented deviation of {entry.venue}"
        )

    @property
    def note(self) -> str:
        """The venue's rule(s) and source(s) the check was judged by, one line per entry."""
        lines = []
        for entry in self.entries:
            count = sum(1 for _, e in self.documented if e is entry)
            rule = f"{entry.rule} — expected under it: {entry.expected}"
            if entry.tolerance_text is not None:
                rule += f" (tolerance {entry.tolerance_text})"
            lines.append(
                f"{entry.venue} documents a different rule for {entry.check} "
                f"({count} comparison{'s' if count != 1 else ''}): {rule} — source: {entry.source}"
            )
        return "\n".join(lines)

    def notes(self) -> list[str]:
        """Notes for the check's result: what was documented and what was beyond the rule."""
        out = [
            f"documented deviation: {m.label}: {e.venue}'s rule: {e.expected} ({e.source})"
            for m, e in self.documented
        ]
        out += [
            f"{m.label}: covered by {e.venue}'s documented rule, but outside it "
            f"({e.expected}{f'; tolerance {e.tolerance_text}' if e.tolerance_text else ''})"
            for m, e in self.outside
        ]
        return out

    def records(self) -> tuple[dict[str, str], ...]:
        """The entries applied, with the labels of the comparisons each covered (JSON-able)."""
        out = []
        for entry in self.entries:
            record = entry.to_json()
            record["measurements"] = "; ".join(m.label for m, e in self.documented if e is entry)
            out.append(record)
        return tuple(out)


def judge(failures: Sequence[Measurement], entries: Sequence[KnownDeviation]) -> Judgement:
    """Split failed comparisons into those a documented rule explains and the rest."""
    documented: list[tuple[Measurement, KnownDeviation]] = []
    undocumented: list[Measurement] = []
    outside: list[tuple[Measurement, KnownDeviation]] = []
    for m in failures:
        covering = [e for e in entries if e.covers(m)]
        accepting = next((e for e in covering if e.accepts(m)), None)
        if accepting is not None:
            documented.append((m, accepting))
        else:
            undocumented.append(m)
            outside.extend((m, e) for e in covering[:1])
    return Judgement(
        documented=tuple(documented), undocumented=tuple(undocumented), outside=tuple(outside)
    )


def documented_deviation(status: Status, ctx: CheckContext | None) -> Judgement | None:
    """The judgement that turns a check's result into ``deviation``, if there is one.

    A check whose every failed comparison is documented returns normally (pytest: passed); this
    tells the recorder to write it as :attr:`Status.DEVIATION` with the rule attached.
    """
    if status is not Status.PASSED or ctx is None:
        return None
    judgement = ctx.judgement
    return judgement if judgement is not None and judgement.all_documented else None


@dataclass(slots=True)
class RunDeviations:
    """The registries of one run: each venue's own, plus the ``--known-deviations`` files."""

    extra_files: tuple[Path, ...] = ()
    _cache: dict[str, DeviationRegistry] = field(default_factory=dict)

    def from_files(self, venue: str, known_ids: Iterable[str]) -> DeviationRegistry:
        """The extra files alone, validated (fail fast before the first check)."""
        known = tuple(known_ids)
        registry = DeviationRegistry(venue=venue)
        for path in self.extra_files:
            registry = registry.merged(load_registry(path, known_ids=known))
        return registry

    def for_venue(self, venue: object, known_ids: Iterable[str]) -> DeviationRegistry:
        """The venue's registry merged with the extra files, validated, cached by venue name.

        Raises:
            ConfigError: a file is invalid, documents another venue, or names an unknown check.
        """
        name = str(getattr(venue, "name", ""))
        if name not in self._cache:
            known = tuple(known_ids)
            registry = registry_of(venue)
            registry.validate(known)
            self._cache[name] = registry.merged(self.from_files(name, known))
        return self._cache[name]
