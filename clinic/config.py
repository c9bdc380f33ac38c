"""One typed settings object: defaults, then `config.toml` under the data directory, then env vars."""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from urllib.parse import urlparse

import platformdirs

APP_NAME = "village-clinic"
TRAINING_SUFFIX = "-training"


@dataclass(frozen=True)
class Settings:
    home: Path
    training: bool = False
    network_url: str = "http://127.0.0.1:8080"
    paas_id: str = "fengjing-clinics"
    paas_token: str = "sim-paas-token-not-a-secret"
    fixmedins_code: str = "H31011600001"
    fixmedins_name: str = "枫泾镇新春村卫生室"
    mdtrtarea_admvs: str = "310116"
    terminal: str = "counter-1"
    dept_code: str = "A03"
    dept_name: str = "全科"
    reader_url: str = ""
    timeout_seconds: float = 10.0
    # The desk locks after this long without a key press or click; unlocking asks the password.
    idle_lock_minutes: float = 5.0

    @property
    def db_path(self) -> Path:
        return self.home / "clinic.db"

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.db_path}"

    @property
    def receipts_dir(self) -> Path:
        return self.home / "receipts"

    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"

    @property
    def log_path(self) -> Path:
        return self.home / "logs" / "clinic.log"


_ENV = {  # env var -> field; env wins over the file so a test or a kiosk can pin a value
    "CLINIC_NETWORK": "network_url",
    "CLINIC_READER": "reader_url",
    "CLINIC_FIXMEDINS_CODE": "fixmedins_code",
    "CLINIC_FIXMEDINS_NAME": "fixmedins_name",
    "CLINIC_TIMEOUT": "timeout_seconds",
    "CLINIC_IDLE_LOCK_MINUTES": "idle_lock_minutes",
}


def real_home() -> Path:
    env = os.environ.get("CLINIC_HOME")
    return Path(env) if env else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def training_home() -> Path:
    """A sibling of the real data directory, never inside it, so training cannot touch real books."""
    env = os.environ.get("CLINIC_TRAINING_HOME")
    if env:
        return Path(env)
    real = real_home()
    return real.with_name(real.name + TRAINING_SUFFIX)


def _coerce(name: str, value: object) -> object:
    kind = {f.name: f.type for f in fields(Settings)}[name]
    if kind == "float":
        return float(value)  # a timeout, not money
    return str(value)


def load_settings(*, training: bool = False, home: Path | None = None) -> Settings:
    home = home or (training_home() if training else real_home())
    home.mkdir(parents=True, exist_ok=True)
    settings = Settings(home=home, training=training)
    cfg = home / "config.toml"
    if cfg.exists():
        with cfg.open("rb") as fh:
            data = tomllib.load(fh)
        known = {f.name for f in fields(Settings)} - {"home", "training"}
        settings = replace(settings, **{k: _coerce(k, v) for k, v in data.items() if k in known})
    overrides = {f: _coerce(f, os.environ[e]) for e, f in _ENV.items() if os.environ.get(e)}
    return replace(settings, **overrides)


LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


class TrainingIsolationError(RuntimeError):
    message = "培训模式只能连接本机的模拟医保中心，已拒绝连接外部地址"


def assert_training_isolated(settings: Settings) -> None:
    """Training talks only to a simulator on this machine and never uses the real data directory."""
    if not settings.training:
        return
    if urlparse(settings.network_url).hostname not in LOOPBACK:
        raise TrainingIsolationError(f"training refused network {settings.network_url}")
    real = real_home().resolve()
    home = settings.home.resolve()
    if home == real or real in home.parents:
        raise TrainingIsolationError(f"training home {home} lies in the real data directory")
