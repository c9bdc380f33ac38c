"""Dependencies point one way (design.md): the core packages know nothing of `clinic`, and Qt
lives only in `clinic/gui/`."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = ("cardreader", "formulary", "settlement")
# The simulator builds valid ID numbers with the public check-digit function; nothing else crosses.
ALLOWED_CROSS = {("settlement", "cardreader.idnumber")}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def py_files(*dirs: str):
    for d in dirs:
        yield from (ROOT / d).rglob("*.py")


def test_qt_is_imported_only_inside_clinic_gui():
    offenders = [str(p.relative_to(ROOT)) for p in py_files(*CORE, "clinic", "training_mode")
                 if "gui" not in p.relative_to(ROOT).parts[:2]
                 and any(m.split(".")[0] in ("PySide6", "shiboken6") for m in imports(p))]
    assert offenders == []


@pytest.mark.parametrize("package", CORE)
def test_core_packages_do_not_reach_into_each_other_or_clinic(package):
    bad = []
    for p in py_files(package):
        for mod in imports(p):
            top = mod.split(".")[0]
            if top in ("clinic", "training_mode") or (top in CORE and top != package
                                                       and (package, mod) not in ALLOWED_CROSS):
                bad.append(f"{p.relative_to(ROOT)} imports {mod}")
    assert bad == []
