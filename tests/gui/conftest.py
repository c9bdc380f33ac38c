"""GUI tests run headless: the offscreen platform is chosen before any QApplication exists."""
from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"

import pytest  # noqa: E402

ADMIN_LOGIN, ADMIN_NAME, ADMIN_PASSWORD = "admin", "测试管理员", "correct-horse-1"


@pytest.fixture(autouse=True, scope="module")
def gui_thread_gc(qapp):
    """As in the desk, only the GUI thread collects; the tests after these get Python's own
    collector back (no event loop would run the guard's timer for them)."""
    from clinic.gui import gc_guard
    guard = gc_guard.install(qapp)
    yield guard
    guard.stop()


@pytest.fixture(autouse=True)
def desk_app(qapp, gui_thread_gc):
    """The session QApplication with the desk's CJK font, as `run_desk` sets it up."""
    from clinic.gui.app import configure_app
    configure_app(qapp)
    return qapp


class Accounts:
    """The users of one isolated test home, through the real UserStore on its real SQLite file."""

    LOGIN, NAME, PASSWORD = ADMIN_LOGIN, ADMIN_NAME, ADMIN_PASSWORD

    def __init__(self, settings, **store_kw):
        from clinic.auth import UserStore
        from clinic.db import open_database
        self.settings = settings
        self.engine = open_database(settings.db_path)
        self.store = UserStore(self.engine, settings, **store_kw)

    def admin(self):
        """The first administrator's session (created on first use, logged in after)."""
        if not self.store.has_users():
            return self.store.create_first_admin(ADMIN_LOGIN, ADMIN_NAME, ADMIN_PASSWORD)
        return self.store.login(ADMIN_LOGIN, ADMIN_PASSWORD)

    def add(self, login: str, role: str, password: str = ADMIN_PASSWORD) -> None:
        """Another user of the home, added by its administrator."""
        self.store.add_user(self.admin(), login, f"测试{role}", role, password)

    def close(self) -> None:
        self.engine.dispose()


@pytest.fixture
def accounts():
    made: list[Accounts] = []

    def make(settings, **store_kw) -> Accounts:
        acc = Accounts(settings, **store_kw)
        made.append(acc)
        return acc

    yield make
    for acc in made:
        acc.close()


@pytest.fixture
def open_window(qtbot):
    """Shows a desk window over a counter, as the desk does; at the end, no worker outlives the
    engine it uses and every counter is closed."""
    from clinic.gui.main_window import MainWindow
    made = []

    def show(counter, session, store, reader_url: str = "", **kw):
        window = MainWindow(counter, reader_url, store=store, session=session, **kw)
        qtbot.addWidget(window)
        window.resize(1280, 780)
        window.show()
        qtbot.waitExposed(window)
        made.append((window, counter))
        return window

    yield show
    for window, counter in made:
        window.lock_runner.shutdown()
        window.runner.shutdown()
        counter.close()


@pytest.fixture
def services(tmp_path):
    """The insurer simulator and a virtual card reader, as `make run` starts them."""
    from clinic.services import counter_services
    with counter_services(tmp_path / "services") as (network_url, reader_path):
        yield network_url, reader_path
