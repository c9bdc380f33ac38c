"""Start the desk: one QApplication, a CJK-capable font, a signed-in user, one Counter, one window."""
from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from PySide6.QtGui import QFont, QFontDatabase
from PySide6.QtWidgets import QApplication

from . import gc_guard
from .i18n import tr

log = logging.getLogger(__name__)

# Preferred first; whichever is installed wins. Without one, Chinese renders as empty boxes.
CJK_FAMILIES = ("Noto Sans CJK SC", "WenQuanYi Micro Hei", "Microsoft YaHei", "PingFang SC",
                "Source Han Sans SC", "SimHei")
BASE_POINT_SIZE = 11


def cjk_family() -> str | None:
    installed = set(QFontDatabase.families())
    return next((f for f in CJK_FAMILIES if f in installed), None)


def configure_app(app: QApplication) -> None:
    gc_guard.install(app)  # before any worker thread runs
    app.setApplicationName("village-clinic-desk")
    app.setApplicationDisplayName(tr("村卫生室医保结算"))
    font = QFont(app.font())
    family = cjk_family()
    if family:
        font.setFamily(family)
    else:
        log.warning("no CJK font found among %s; Chinese may not render", CJK_FAMILIES)
    font.setPointSize(max(font.pointSize(), BASE_POINT_SIZE))
    app.setFont(font)


@dataclass
class Desk:
    """What `start_desk` opened; `close()` releases it (the window first, so work can finish)."""
    window: Any
    counter: Any
    engine: Any

    def close(self) -> None:
        try:
            self.window.close()
        finally:
            try:
                self.counter.close()
            finally:
                self.engine.dispose()


def start_desk(settings, reader_url: str, *, run_dialog: Callable | None = None,
               auth_clock: Callable[[], datetime] = datetime.now,
               idle_clock: Callable[[], Any] = time.monotonic) -> Desk | None:
    """Open the database, sign a user in (or create the first administrator), build the Counter
    from that session and the window around it. None when the user cancelled a dialog."""
    from clinic.auth import UserStore
    from clinic.counter import Counter
    from clinic.db import open_database

    from .login import exec_dialog, sign_in
    from .main_window import MainWindow

    engine = open_database(settings.db_path)
    try:
        store = UserStore(engine, settings)
        session = sign_in(store, settings, clock=auth_clock, run=run_dialog or exec_dialog)
        if session is None:
            engine.dispose()
            return None
        counter = Counter(settings, session)
    except BaseException:
        engine.dispose()
        raise
    try:
        window = MainWindow(counter, reader_url, store=store, session=session,
                            idle_clock=idle_clock)
    except BaseException:
        counter.close()
        engine.dispose()
        raise
    return Desk(window, counter, engine)


def run_desk(settings, reader_url: str) -> int:
    from clinic.errors import CounterError

    app = QApplication.instance() or QApplication(sys.argv)
    configure_app(app)
    try:
        desk = start_desk(settings, reader_url)
    except CounterError as exc:
        log.error("desk failed to start: %s", exc.detail)
        print(exc.message, file=sys.stderr)
        return exc.exit_code
    if desk is None:
        log.info("sign-in cancelled; the desk exits")
        return 0
    try:
        desk.window.resize(1280, 780)
        desk.window.show()
        desk.window.recover_on_start()
        return app.exec()
    finally:
        desk.close()
        gc_guard.install(app).stop()  # collect what is left while Qt is still up
