"""`clinic network cards` exports the registry's cards for the virtual reader; `clinic network
serve` still starts the simulator."""
from __future__ import annotations

import json
import subprocess
import sys

import httpx

from cardreader import apdu
from cardreader.card import CardData
from cardreader.cardfile import VirtualCard
from clinic.services import start_simulator
from settlement.mock_network.registry import STATES, build_registry

from .conftest import ROOT


def clinic(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "clinic", "network", *args], check=False,
                          cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_sim_cards_json_export_filters_by_state_and_village_and_limits():
    for state in ("suspended", "deductible_reached"):
        r = clinic("cards", "--json", "--state", state, "--village", "新华村", "--limit", "2")
        assert r.returncode == 0, r.stderr
        cards = json.loads(r.stdout)
        assert 1 <= len(cards) <= 2, state
        for c in cards:
            assert state in c["states"] and c["village"] == "新华村"
            CardData(c["region_code"], c["certno"], c["card_no"], c["card_sn"], c["name"],
                     c["atr"], c["spec_version"], c["issue_date"], c["expiry_date"])
    everyone = clinic("cards").stdout.splitlines()[1:]
    assert len(everyone) == len(build_registry())
    for state in STATES:
        assert any(state in line.split("\t")[3].split(",") for line in everyone), state


def test_sim_cards_locked_card_presents_as_locked_in_a_virtual_card():
    c = json.loads(clinic("cards", "--json", "--state", "locked", "--limit", "1").stdout)[0]
    assert c["card_state"] == "locked" and c["pin_tries_left"] == 0
    card = VirtualCard.from_card_data(
        CardData(c["region_code"], c["certno"], c["card_no"], c["card_sn"], c["name"], c["atr"],
                 c["spec_version"], c["issue_date"], c["expiry_date"]),
        sex=c["sex"], birth=c["birth"], pin=c["pin"], pin_tries=c["pin_tries_left"])
    verify = bytes([0x00, 0x20, 0x00, 0x00, 3]) + bytes.fromhex(c["pin"])
    assert card.transmit(verify)[-2:] == apdu.SW_BLOCKED.to_bytes(2, "big")
    normal = json.loads(clinic("cards", "--json", "--state", "normal", "--limit", "1").stdout)[0]
    assert normal["pin_tries_left"] == 3 and normal["card_state"] == "normal"


def test_sim_cards_listing_and_out_file_carry_no_names_or_id_numbers(tmp_path):
    r = clinic("cards", "--state", "expired", "--limit", "5")
    lines = r.stdout.splitlines()
    assert r.returncode == 0 and lines[0].startswith("card_no\t") and len(lines) == 6
    people = {v.card_no: v for v in build_registry()}
    for line in lines[1:]:
        v = people[line.split("\t")[0]]
        assert v.psn_name not in line and v.certno not in line and "expired" in line
    out = tmp_path / "cards.json"
    r = clinic("cards", "--json", "--village", "贵泾村", "--out", str(out))
    assert r.returncode == 0 and r.stdout == ""
    assert {c["village"] for c in json.loads(out.read_text(encoding="utf-8"))} == {"贵泾村"}
    assert clinic("cards", "--state", "haunted").returncode == 2


def test_sim_network_serve_still_starts_the_simulator(tmp_path):
    sim = start_simulator(tmp_path / "insurer.db")
    try:
        assert httpx.get(sim.address + "/health", trust_env=False).text == "ok"
    finally:
        sim.stop()
