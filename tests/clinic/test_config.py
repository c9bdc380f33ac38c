from pathlib import Path

import pytest

from clinic.config import (TrainingIsolationError, assert_training_isolated, load_settings,
                           real_home, training_home)


def test_data_directory_comes_from_clinic_home(isolated_homes):
    s = load_settings()
    assert s.home == isolated_homes / "clinic" and s.db_path.parent == s.home


def test_config_file_then_environment_override(isolated_homes, monkeypatch):
    home = isolated_homes / "clinic"
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text('network_url = "http://127.0.0.1:9999"\nterminal = "c-2"\n',
                                      encoding="utf-8")
    assert load_settings().network_url == "http://127.0.0.1:9999"
    monkeypatch.setenv("CLINIC_NETWORK", "http://127.0.0.1:7777")
    s = load_settings()
    assert s.network_url == "http://127.0.0.1:7777" and s.terminal == "c-2"


def test_training_home_is_a_sibling_never_inside_the_real_one(monkeypatch, tmp_path):
    monkeypatch.delenv("CLINIC_TRAINING_HOME")
    monkeypatch.setenv("CLINIC_HOME", str(tmp_path / "clinic"))
    assert training_home() == tmp_path / "clinic-training"
    assert real_home() not in training_home().parents


@pytest.mark.parametrize("url", ["http://10.0.0.5:8080", "https://fsi.example.gov.cn"])
def test_training_refuses_any_network_but_this_machine(url):
    from dataclasses import replace
    s = replace(load_settings(training=True), network_url=url)
    with pytest.raises(TrainingIsolationError):
        assert_training_isolated(s)


def test_training_refuses_a_home_inside_the_real_data_directory(isolated_homes):
    from dataclasses import replace
    s = replace(load_settings(training=True), home=Path(isolated_homes / "clinic" / "t"))
    with pytest.raises(TrainingIsolationError):
        assert_training_isolated(s)
