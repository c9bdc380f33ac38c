"""Errors the counter shows: a plain Chinese message for the worker, details for the log."""
from __future__ import annotations


class CounterError(Exception):
    exit_code = 1
    status = "error"

    def __init__(self, message: str, detail: str = ""):
        super().__init__(message)
        self.message = message
        self.detail = detail


class CardProblem(CounterError):
    exit_code = 4
    status = "card_error"


class BlockedByFormulary(CounterError):
    exit_code = 2
    status = "blocked"


class RefusedByInsurer(CounterError):
    exit_code = 3
    status = "refused"


class NetworkProblem(CounterError):
    """The insurer could not be reached: nothing was sent, nothing moved."""
    exit_code = 5
    status = "unreachable"


class OutcomeUnknownProblem(NetworkProblem):
    """A call may have landed but no answer came: no insured receipt until it is resolved."""
    status = "unknown"


class NotAllowed(CounterError):
    exit_code = 6
    status = "not_allowed"
