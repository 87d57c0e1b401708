"""The auto-segment run's state machine: idle -> running -> cancelling -> done / failed / cancelled.

The panel's enabling rules read it (Apply becomes Cancel while running, inputs lock), and it refuses moves
that would mean a bug, such as finishing a run that never started, so the GUI cannot drift into a state
where two jobs write into one segmentation.
"""

from __future__ import annotations

import enum


class RunState(enum.Enum):
    IDLE = "idle"
    RUNNING = "running"
    CANCELLING = "cancelling"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def busy(self) -> bool:
        """A job is under way (its result may still arrive)."""
        return self in (RunState.RUNNING, RunState.CANCELLING)


_FINISHED = (RunState.DONE, RunState.FAILED, RunState.CANCELLED)
_MOVES = {
    RunState.IDLE: {RunState.RUNNING},
    RunState.RUNNING: {RunState.CANCELLING, RunState.DONE, RunState.FAILED, RunState.CANCELLED},
    RunState.CANCELLING: {RunState.CANCELLED},
    **{state: {RunState.RUNNING, RunState.IDLE} for state in _FINISHED},
}


class RunStateMachine:
    """Current state plus the legal moves; ``history`` records every state for tests and the log."""

    def __init__(self) -> None:
        self.state = RunState.IDLE
        self.history = [RunState.IDLE]

    def move(self, target: RunState) -> None:
        if target not in _MOVES[self.state]:
            raise RuntimeError(f"SegTruth run state cannot go from {self.state.value} to {target.value}.")
        self.state = target
        self.history.append(target)

    def reset(self) -> None:
        """Back to idle without a job (scene closed); only allowed when no job is under way."""
        if self.state.busy:
            raise RuntimeError(f"SegTruth run state cannot reset while {self.state.value}.")
        if self.state is not RunState.IDLE:
            self.move(RunState.IDLE)

    @property
    def busy(self) -> bool:
        return self.state.busy
