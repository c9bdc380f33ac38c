"""`clinic demo` — what `make run` does without a display — settles, and keeps doing so on the
same data directory (the repeat supply is overridden the way a worker would, and audited)."""
from __future__ import annotations

import re
from pathlib import Path

from e2e_helpers import clinic


def test_the_headless_demo_settles_and_says_where_the_receipt_is_run_after_run(tmp_path):
    home = tmp_path / "clinic"
    receipts = []
    for _ in range(2):
        proc = clinic(home, "demo", timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "结算成功" in proc.stdout and "医疗费总额" in proc.stdout
        receipts.append(Path(re.search(r"收据已生成：(\S+)", proc.stdout).group(1)))
    assert all(p.exists() for p in receipts) and receipts[0] != receipts[1]
