"""A TOML table read strictly: every error names the file, the dotted key and the fix.

The decoder's only tool for reading values (:mod:`adapters.sim.scenarios.decode`): unknown keys
are refused when a table is opened, and TOML floats are refused wherever a decimal is expected,
so every number reaches the simulator as an exact :class:`~decimal.Decimal`.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import NoReturn

from harness.errors import ConfigError

__all__ = ["Table"]


class Table:
    """One TOML table being read, and where it sits in the file (for error messages)."""

    def __init__(
        self, source: str, where: str, data: object, allowed: Sequence[str] | None
    ) -> None:
        self.source = source
        self.where = where
        if not isinstance(data, dict):
            self.fail(None, f"= {data!r} is not a table", f"write it as a [{where}] table")
        self.data: dict[str, object] = data
        unknown = sorted(set(data) - set(allowed)) if allowed is not None else []
        if unknown and allowed is not None:
            self.fail(unknown[0], "is not a known key", f"use one of: {', '.join(allowed)}")

    def at(self, key: str | None) -> str:
        if key is None:
            return self.where or "the top level"
        if not self.where:
            return key
        return f"{self.where}{key}" if key.startswith("[") else f"{self.where}.{key}"

    def fail(self, key: str | None, problem: str, fix: str) -> NoReturn:
        msg = f"scenario file {self.source}: {self.at(key)} {problem}; {fix}"
        raise ConfigError(msg)

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str, example: str) -> object:
        if key not in self.data:
            self.fail(key, "is missing", f"add it, e.g. {example}")
        return self.data[key]

    # ------------------------------------------------------------------ values
    def as_int(self, label: str, value: object, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(label, f"= {value!r} is not an integer", f"write a whole number >= {minimum}")
        if value < minimum:
            self.fail(label, f"= {value} is below {minimum}", f"use a value >= {minimum}")
        return value

    def as_decimal(self, label: str, value: object, minimum: Decimal | None = None) -> Decimal:
        if isinstance(value, float):
            self.fail(
                label,
                f"= {value!r} is a TOML float",
                f'write it as a string, "{value!r}": prices, rates and bps are exact decimals '
                "in scenario files, never floats",
            )
        if isinstance(value, bool) or not isinstance(value, str | int):
            self.fail(label, f"= {value!r} is not a decimal", 'write a string such as "0.95"')
        try:
            out = Decimal(value)
        except InvalidOperation:
            self.fail(label, f"= {value!r} is not a decimal", 'write a number such as "0.95"')
        if not out.is_finite():
            self.fail(label, f"= {value!r} is not finite", "write a finite number")
        if minimum is not None and out < minimum:
            self.fail(label, f"= {value!r} is below {minimum}", f"use a value >= {minimum}")
        return out

    def integer(self, key: str, example: str, minimum: int = 0) -> int:
        return self.as_int(key, self.raw(key, example), minimum)

    def opt_integer(self, key: str, minimum: int = 0) -> int | None:
        return self.as_int(key, self.data[key], minimum) if key in self.data else None

    def decimal(self, key: str, example: str, minimum: Decimal | None = None) -> Decimal:
        return self.as_decimal(key, self.raw(key, example), minimum)

    def opt_decimal(self, key: str, minimum: Decimal | None = None) -> Decimal | None:
        return self.as_decimal(key, self.data[key], minimum) if key in self.data else None

    def string(self, key: str, example: str, choices: Sequence[str] | None = None) -> str:
        value = self.raw(key, example)
        if not isinstance(value, str) or not value:
            self.fail(key, f"= {value!r} is not a non-empty string", f"write e.g. {example}")
        if choices is not None and value not in choices:
            self.fail(key, f"= {value!r} is not a choice", f"choose from: {', '.join(choices)}")
        return value

    def boolean(self, key: str) -> bool | None:
        value = self.data.get(key)
        if value is not None and not isinstance(value, bool):
            self.fail(key, f"= {value!r} is not a boolean", f"write {key} = true or false")
        return value

    def table(self, key: str, allowed: Sequence[str] | None) -> Table | None:
        if key not in self.data:
            return None
        return Table(self.source, self.at(key), self.data[key], allowed)

    def tables(self, key: str, allowed: Sequence[str]) -> list[Table]:
        value = self.data.get(key, [])
        if not isinstance(value, list):
            self.fail(key, "is not an array of tables", f"write each one as [[{self.at(key)}]]")
        return [Table(self.source, f"{self.at(key)}[{i}]", v, allowed) for i, v in enumerate(value)]

    def _pair(self, key: str, example: str) -> list[tuple[str, object]]:
        value = self.raw(key, example)
        if not isinstance(value, list):
            return [(key, value), (key, value)]
        if len(value) != 2:
            self.fail(
                key, f"= {value!r} is not one value or a [low, high] pair", f"write {example}"
            )
        return [(f"{key}[{i}]", v) for i, v in enumerate(value)]

    def int_range(self, key: str, example: str) -> tuple[int, int]:
        """``key = 20`` or ``key = [20, 30]`` (inclusive), whole numbers >= 1."""
        low, high = (self.as_int(label, v, 1) for label, v in self._pair(key, example))
        if low > high:
            self.fail(key, f"= [{low}, {high}] has low > high", "write [low, high]")
        return low, high

    def decimal_range(self, key: str, example: str) -> tuple[Decimal, Decimal]:
        """``key = "300"`` or ``key = ["500", "900"]`` (inclusive), decimals >= 0."""
        pair = self._pair(key, example)
        low, high = (self.as_decimal(label, v, Decimal(0)) for label, v in pair)
        if low > high:
            self.fail(key, f"= [{low}, {high}] has low > high", "write [low, high]")
        return low, high
