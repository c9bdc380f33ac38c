"""Transaction handlers, one per infno, registered in HANDLERS.

A handler is `fn(ctx, input) -> output` (output: dict or None). It runs inside the request's
database transaction; raising TxError rolls its effects back and answers infcode -1.
"""
from __future__ import annotations

from . import catalogue, fees, files, person, reconcile, reverse, settle, signin, visit  # noqa: F401  (registers)
from .common import HANDLERS, Ctx, RawFile, TxError  # noqa: F401
