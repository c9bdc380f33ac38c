"""Reading the data files shipped inside the package."""

from __future__ import annotations

from importlib import resources


def read_packaged(filename: str) -> str:
    """Text of a file in formulary/data, read through importlib.resources (works from a wheel)."""
    return resources.files("formulary").joinpath("data", filename).read_text(encoding="utf-8")
