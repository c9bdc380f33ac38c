"""Typed errors of the formulary package.

Each carries a Chinese ``message`` fit for the counter and a ``detail`` for the log,
so callers never have to compose user-facing text from an exception's internals.
"""

from __future__ import annotations


class FormularyError(Exception):
    """Base class: ``message`` is shown to the user, ``detail`` goes to the log."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.message} ({self.detail})" if self.detail else self.message


class FormularyDataError(FormularyError):
    """A formulary or rule data file is malformed; the message names the file and row."""


class DrugLookupError(FormularyError):
    """A search term matched no drug, or more than one."""
