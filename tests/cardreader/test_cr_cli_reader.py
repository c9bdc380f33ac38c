"""`clinic reader emulate --control` and `clinic reader ctl` as real processes, read over the pty."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import date

import pytest

from cardreader.control import control_request
from cardreader.driver import CardReader
from cardreader.errors import (
    CardExpiredError,
    CardLockedError,
    CardRemovedError,
    NoCardError,
    NotSocialSecurityCard,
    ReaderCommunicationError,
    ReaderNotResponding,
)
from clinic.services import start_reader
from settlement.mock_network import registry

pytestmark = pytest.mark.usefixtures("cli_admin")  # `clinic` processes log in


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    work = tmp_path_factory.mktemp("reader")
    link, sock = work / "reader", work / "control.sock"
    running = start_reader(link, extra=["--control", str(sock)])
    try:
        yield str(link), str(sock), running
    finally:
        running.stop()


@pytest.fixture
def reader(emulator):
    link, sock, _ = emulator
    control_request(sock, {"op": "clear"})
    control_request(sock, {"op": "insert", "card": {}})
    with CardReader(link, timeout=0.3) as r:
        yield r, sock


def ctl(sock, *args):
    return subprocess.run([sys.executable, "-m", "clinic", "reader", "ctl", "--control", sock,
                           *args], capture_output=True, text=True, timeout=30, check=False)


def test_emulate_prints_the_reader_line_and_serves_the_default_villager(emulator, reader):
    _, _, running = emulator
    r, _ = reader
    assert running.address == emulator[0]        # "virtual card reader on LINK"
    assert r.read_card().card_no == registry.default_villager().card_no


def test_ctl_insert_swaps_the_card_while_the_emulator_runs(reader):
    r, sock = reader
    other = registry.build_registry()[7]
    proc = ctl(sock, "insert", "--card-no", other.card_no)
    assert proc.returncode == 0 and json.loads(proc.stdout)["ok"], proc.stderr
    assert r.read_card(check_expiry=False).card_no == other.card_no


def test_ctl_remove_leaves_the_slot_empty(reader):
    r, sock = reader
    assert ctl(sock, "remove").returncode == 0
    with pytest.raises(NoCardError):
        r.read_card()


@pytest.mark.parametrize("state, error", [("locked", CardLockedError),
                                          ("expired", CardExpiredError),
                                          ("not-ssc", NotSocialSecurityCard)])
def test_problem_cards_on_demand_end_in_their_chinese_error(reader, state, error):
    r, sock = reader
    answer = control_request(sock, {"op": "insert", "card": {"index": 3, "state": state}})
    assert answer["ok"], answer
    with pytest.raises(error) as e:
        r.read_card()
    assert e.value.message and "社保卡" in e.value.message


def test_a_villager_whose_registry_card_is_locked_gets_a_locked_card(reader):
    r, sock = reader
    if not hasattr(registry, "card_state"):
        pytest.skip("registry has no card_state")
    locked = next(v for v in registry.build_registry() if registry.card_state(v) == "locked")
    assert control_request(sock, {"op": "insert", "card": {"card_no": locked.card_no}})["ok"]
    with pytest.raises(CardLockedError):
        r.read_card()


def test_ctl_fault_crc_beyond_the_retries_fails_and_clear_heals(reader):
    r, sock = reader
    assert ctl(sock, "fault", "crc", "--count", "4").returncode == 0
    with pytest.raises(ReaderCommunicationError):
        r.read_card()
    assert ctl(sock, "clear").returncode == 0
    assert r.read_card().card_no == registry.default_villager().card_no


@pytest.mark.parametrize("kind, count, error", [("pull", 2, CardRemovedError),
                                                ("silent", 1, ReaderNotResponding)])
def test_fault_on_demand_gives_a_clear_error_and_no_card_data(reader, kind, count, error):
    r, sock = reader
    assert control_request(sock, {"op": "fault", "kind": kind, "count": count})["ok"]
    with pytest.raises(error) as e:
        r.read_card()
    assert e.value.message


@pytest.mark.parametrize("kind", ["noise", "partial", "nak"])
def test_recoverable_faults_on_demand_still_read_the_card(reader, kind):
    r, sock = reader
    assert control_request(sock, {"op": "fault", "kind": kind, "count": 2})["ok"]
    assert r.read_card().card_no == registry.default_villager().card_no


def test_ctl_refuses_an_unknown_card_and_an_absent_socket(reader, tmp_path):
    _, sock = reader
    answer = control_request(sock, {"op": "insert", "card": {"card_no": "S00000000"}})
    assert answer == {"ok": False, "error": "登记库里没有这张卡"}
    proc = ctl(str(tmp_path / "nothing.sock"), "status")
    assert proc.returncode == 7 and "连不上虚拟读卡器的控制通道" in proc.stderr


def test_reader_ports_lists_ports_as_json():
    proc = subprocess.run([sys.executable, "-m", "clinic", "reader", "ports", "--json"],
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    ports = json.loads(proc.stdout)
    assert isinstance(ports, list) and all({"device", "usb_id"} <= set(p) for p in ports)


def test_expired_state_really_is_past_its_date(reader):
    r, sock = reader
    control_request(sock, {"op": "insert", "card": {"state": "expired"}})
    card = r.read_card(check_expiry=False)
    assert card.expiry_date < date.today().strftime("%Y%m%d")


def test_a_reader_chosen_with_reader_use_is_remembered_for_settle(tmp_path):
    """`clinic reader use PORT` is kept in the data directory and found again by `settle`."""
    import os
    import subprocess
    import sys

    from auth_helpers import ensure_admin

    from cardreader.devices import DeviceStore
    ensure_admin(tmp_path / "clinic")
    env = {**os.environ, "CLINIC_HOME": str(tmp_path / "clinic")}
    proc = subprocess.run([sys.executable, "-m", "clinic", "reader", "use", str(tmp_path / "ttyFAKE")],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "已记住读卡器" in proc.stdout
    assert DeviceStore(tmp_path / "clinic" / "reader.json").resolve() == str(tmp_path / "ttyFAKE")
    # settle with no --reader now opens the remembered port (absent here: a reader error, exit 4)
    settle = subprocess.run([sys.executable, "-m", "clinic", "settle", "--rx", "xbdp:1",
                             "--network", "http://127.0.0.1:9", "--json"],
                            env=env, capture_output=True, text=True, timeout=60)
    assert settle.returncode == 4 and "读卡器" in settle.stdout


def test_settle_without_any_reader_says_how_to_set_one(tmp_path):
    import os
    import subprocess
    import sys

    from auth_helpers import ensure_admin
    ensure_admin(tmp_path / "clinic")
    env = {**os.environ, "CLINIC_HOME": str(tmp_path / "clinic")}
    settle = subprocess.run([sys.executable, "-m", "clinic", "settle", "--rx", "xbdp:1",
                             "--network", "http://127.0.0.1:9", "--json"],
                            env=env, capture_output=True, text=True, timeout=60)
    assert settle.returncode == 4 and "clinic reader use" in settle.stdout
