"""The one exception type SegTruth raises for bad input.

Every message is a single sentence naming the file (or object) and the problem, so the CLI can print it
as is and exit non-zero, and the GUI can show it to a person without a traceback.
"""


class SegTruthError(Exception):
    """Bad input or an operation that cannot be done; the message is meant for the user."""


class Cancelled(SegTruthError):
    """Long work was cancelled by the caller; nothing was written."""

    def __init__(self, what: str = "operation") -> None:
        super().__init__(f"The {what} was cancelled.")
