"""One ordered stream of user actions per browser tab: what the person did, applied in the order they did it.

Every action the page sends (a stroke, a segment picked, a slice step, Preview, Apply, Save, ...) carries the
tab's id and a sequence number. Actions are applied one at a time, strictly in each tab's order: an action that
arrives before an earlier one waits for it, a repeat is dropped. So a segment switch, an effect or Save always
follows the strokes drawn before it. Pure Python: the server's consumer loop pops from it.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Action:
    """One user action: who sent it, its place in that tab's stream, what it is and its data."""

    client: str | None  # None: the server's own follow-up work (a grow preview following strokes)
    seq: int
    kind: str
    args: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)  # the tab's state values not yet sent when it acted
    received: float = field(default_factory=time.perf_counter)


class ActionQueue:
    """Actions in the order to apply them; the last one finished per tab in ``done``."""

    def __init__(self) -> None:
        self._ready: deque[Action] = deque()
        self._waiting: dict[str, dict[int, Action]] = {}
        self._expected: dict[str, int] = {}
        self.done: dict[str, int] = {}

    def submit(self, client: str, seq: int, kind: str, args: dict | None = None, state: dict | None = None) -> None:
        expected = self._expected.setdefault(client, 1)
        if seq < expected or seq in self._waiting.get(client, {}):
            return  # sent twice
        self._waiting.setdefault(client, {})[seq] = Action(client, seq, kind, args or {}, state or {})
        waiting = self._waiting[client]
        while expected in waiting:
            self._ready.append(waiting.pop(expected))
            expected += 1
        self._expected[client] = expected

    def add_internal(self, kind: str, args: dict | None = None) -> None:
        """The server's own work, in line after what is queued now."""
        self._ready.append(Action(None, 0, kind, args or {}))

    def pop(self) -> Action | None:
        return self._ready.popleft() if self._ready else None

    def finish(self, action: Action) -> None:
        if action.client is not None:
            self.done[action.client] = max(action.seq, self.done.get(action.client, 0))

    def has(self, kind: str) -> bool:
        return any(action.kind == kind for action in self._ready)

    def __len__(self) -> int:
        return len(self._ready)
