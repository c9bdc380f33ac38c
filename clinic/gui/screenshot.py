"""`python -m clinic.gui.screenshot OUT.png [--training]`: one real visit in the desk window, then a picture.

Starts the insurer simulator and the virtual reader, reads the card, enters two drugs the way a
worker types them, pre-settles and settles, and grabs the window once the receipt exists.
It runs in its own fresh home on the embedded defaults, so it creates that home's first
administrator and a village doctor (one generated password, never shown or kept) and works as
the doctor.
"""
from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

RX = (("xbdp", 1, 7), ("asplcrp", 1, 7))  # 硝苯地平控释片, 阿司匹林肠溶片: qty, days
STEP_TIMEOUT = 30.0


def _wait(app, predicate, what: str) -> None:
    deadline = time.monotonic() + STEP_TIMEOUT
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        app.processEvents()
        time.sleep(0.01)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m clinic.gui.screenshot")
    ap.add_argument("out", type=Path)
    ap.add_argument("--training", action="store_true")
    ap.add_argument("--size", default="1280x780")
    args = ap.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    from PySide6.QtWidgets import QApplication

    from clinic.auth import UserStore
    from clinic.config import load_settings
    from clinic.counter import Counter
    from clinic.db import open_database
    from clinic.services import counter_services

    from .app import configure_app
    from .main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    configure_app(app)
    with tempfile.TemporaryDirectory(prefix="desk-shot-") as tmp, \
            counter_services(Path(tmp) / "services") as (network_url, reader_path):
        settings = replace(load_settings(home=Path(tmp) / "home", training=args.training),
                           network_url=network_url)
        engine = open_database(settings.db_path)
        try:  # the home's administrator adds the village doctor, who then logs in
            store, password = UserStore(engine, settings), secrets.token_urlsafe(18)
            admin = store.create_first_admin("admin", "管理员", password)
            store.add_user(admin, "D0001", "张医生", "worker", password)
            session = store.login("D0001", password)
        finally:
            engine.dispose()
        counter = Counter(settings, session)
        window = MainWindow(counter, reader_path)
        window.confirm_settle = lambda split: True
        try:
            width, height = (int(v) for v in args.size.split("x"))
            window.resize(width, height)
            window.show()
            window.read_card()
            _wait(app, lambda: window._person is not None or window.message.property("kind") == "error",
                  "the card")
            for query, qty, days in RX:
                window.picker.search_box.setText(query)
                window.picker.qty.setValue(qty)
                window.picker.days.setValue(days)
                window.picker.add_button.click()
            window.presettle()
            _wait(app, lambda: not window.runner.busy, "the pre-settlement")
            window.settle()
            _wait(app, lambda: not window.runner.busy, "the settlement")
            app.processEvents()
            args.out.parent.mkdir(parents=True, exist_ok=True)
            if not window.grab().save(str(args.out)):
                raise SystemExit(f"could not write {args.out}")
            print(f"{args.out}: {window.message.text()}")
            return 0 if window.message.property("kind") == "ok" else 1
        finally:
            window.close()
            counter.close()


if __name__ == "__main__":
    raise SystemExit(main())
