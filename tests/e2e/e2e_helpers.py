"""Running `clinic` as its own process, as a clinic PC would."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def clinic(home: Path, *args: str, timeout: float = 60, env: dict | None = None
           ) -> subprocess.CompletedProcess:
    """Run `clinic ARGS` as its own process with HOME's data directories, logged in as the
    home's test administrator (created on first use)."""
    from auth_helpers import ensure_admin
    training = "--training" in args
    ensure_admin(Path(str(home) + "-training") if training else home, training=training)
    env = {**os.environ, "CLINIC_HOME": str(home), "CLINIC_TRAINING_HOME": str(home) + "-training",
           **(env or {})}
    return subprocess.run([sys.executable, "-m", "clinic", *args], capture_output=True,
                          text=True, env=env, timeout=timeout)


