"""Start the desk: one QApplication, a CJK-capable font, one Counter, one window."""
from __future__ import annotations

import logging
import sys

from PySide6.QtGui import QFont, QFontDatabase
from PySide6.QtWidgets import QApplication

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


def run_desk(settings, reader_url: str) -> int:
    from clinic.counter import Counter
    from clinic.errors import CounterError

    from .main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv)
    configure_app(app)
    try:
        counter = Counter(settings)
    except CounterError as exc:
        log.error("counter failed to start: %s", exc.detail)
        print(exc.message, file=sys.stderr)
        return exc.exit_code
    try:
        window = MainWindow(counter, reader_url)
        window.resize(1280, 780)
        window.show()
        window.recover_on_start()
        return app.exec()
    finally:
        counter.close()
