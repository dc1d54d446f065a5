"""Faults on the simulator's event streams, shared by the in-process venue and the server.

:class:`StreamFaultState` (``engine.stream_faults``) holds what ``VenueControl.set_stream_faults``
(``POST /control/stream-faults``) injected; every stream subscriber (a server WebSocket
connection, an in-process :class:`~harness.streams.EventStream`) passes the engine's events
through its own :class:`FaultFilter`, which decides what that subscriber sees and when:

* ``drop_connections``: one-shot. :attr:`StreamFaultState.drops` increases; every subscriber
  existing then is cut (the server closes its sockets, the in-process stream loses what happens
  until it reconnects). Listeners registered with :meth:`StreamFaultState.on_drop` are called.
* ``gap_symbol``: one-shot per subscriber existing when it was set: the next depth diff of that
  symbol is withheld (a sequence gap a client must detect through ``pu``).
* ``reorder``: one-shot per subscriber existing when it was set: the next ``n`` pairs of depth
  diffs are delivered swapped (second before first).
* ``delay_ms``: while set, every event is held until the virtual clock reaches its time plus
  ``delay_ms``; :meth:`FaultFilter.release` lets due events out, in their original order.

All times are the engine's virtual milliseconds: faults replay exactly under a seed.

With ``hide_gaps`` (the ``depth-pu-wrong`` defect) every subscriber's diffs are renumbered so that
``pu`` is the ``u`` of the diff it last *received*: whatever was withheld or swapped, the chain
looks unbroken and a client cannot notice what it missed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import replace

from adapters.sim.engine.events import DepthDiff, EngineEvent
from harness.venue import StreamFaults

__all__ = ["FaultFilter", "StreamFaultState"]


class StreamFaultState:
    """The engine-wide stream faults (``engine.stream_faults``)."""

    def __init__(self, *, hide_gaps: bool = False) -> None:
        self.hide_gaps = hide_gaps
        self.faults = StreamFaults()
        self.drops = 0
        self.gap_token = 0
        self.reorder_token = 0
        self._drop_listeners: list[Callable[[], None]] = []

    def set(self, faults: StreamFaults) -> None:
        """Replace the faults; ``drop_connections``, ``gap_symbol`` and ``reorder`` act once."""
        if faults.delay_ms < 0 or faults.reorder < 0:
            msg = "delay_ms and reorder must be >= 0"
            raise ValueError(msg)
        self.faults = faults
        if faults.gap_symbol is not None:
            self.gap_token += 1
        if faults.reorder:
            self.reorder_token += 1
        if faults.drop_connections:
            self.drops += 1
            for listener in list(self._drop_listeners):
                listener()

    def on_drop(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` at every drop; returns the function that removes it."""
        self._drop_listeners.append(listener)

        def remove() -> None:
            if listener in self._drop_listeners:
                self._drop_listeners.remove(listener)

        return remove

    def filter(self) -> FaultFilter:
        """A new subscriber's filter: faults set before it existed do not apply to it."""
        return FaultFilter(self)


class FaultFilter:
    """One subscriber's view of the engine's events under the injected faults."""

    def __init__(self, state: StreamFaultState) -> None:
        self._state = state
        self._gap_seen = state.gap_token
        self._reorder_seen = state.reorder_token
        self._reorder_left = 0
        self._held_diff: DepthDiff | None = None
        self._delayed: deque[tuple[int, EngineEvent]] = deque()
        self._last_u: dict[str, int] = {}  # per symbol, the last diff let out (hide_gaps)
        self.withheld = 0  # depth diffs dropped by gap faults
        self.swapped = 0  # pairs of depth diffs delivered out of order

    def feed(self, event: EngineEvent) -> list[EngineEvent]:
        """What the subscriber gets now as ``event`` arrives (possibly nothing)."""
        state = self._state
        faults = state.faults
        if isinstance(event, DepthDiff):
            if state.gap_token != self._gap_seen and faults.gap_symbol == event.symbol:
                self._gap_seen = state.gap_token
                self.withheld += 1
                return []
            if state.reorder_token != self._reorder_seen:
                self._reorder_seen = state.reorder_token
                self._reorder_left = faults.reorder
            if self._reorder_left:
                if self._held_diff is None:
                    self._held_diff = event
                    return []
                held, self._held_diff = self._held_diff, None
                self._reorder_left -= 1
                self.swapped += 1
                return self._delay([self._chain(event), self._chain(held)])
            return self._delay([self._chain(event)])
        return self._delay([event])

    def _chain(self, diff: DepthDiff) -> DepthDiff:
        """The diff as let out: renumbered to hide what was missed under ``hide_gaps``."""
        if not self._state.hide_gaps:
            return diff
        previous = self._last_u.get(diff.symbol)
        self._last_u[diff.symbol] = diff.final_update_id
        if previous is None:
            return diff
        return replace(diff, prev_final_update_id=previous)

    def _delay(self, events: list[EngineEvent]) -> list[EngineEvent]:
        delay = self._state.faults.delay_ms
        if not delay and not self._delayed:
            return events
        for event in events:
            self._delayed.append((event.time_ms + delay, event))
        return []

    def release(self, now_ms: int) -> list[EngineEvent]:
        """Held events due at ``now_ms`` (virtual), in order; all of them once delay is off."""
        out: list[EngineEvent] = []
        delay_on = self._state.faults.delay_ms > 0
        while self._delayed and (not delay_on or self._delayed[0][0] <= now_ms):
            out.append(self._delayed.popleft()[1])
        return out

    def flush(self) -> list[EngineEvent]:
        """Everything still held (a subscriber closing); a diff held for reordering included."""
        out = [event for _, event in self._delayed]
        self._delayed.clear()
        if self._held_diff is not None:
            out.append(self._held_diff)
            self._held_diff = None
        return out
