"""`clinic user ...` and `clinic backup ...` as their own processes on a fresh data directory."""
import json
import os
import subprocess
import sys

from e2e_helpers import clinic

ADMIN, ADMIN_PW = "admin", "correct-horse-1"


def _run(home, *args, user=None, password=None, stdin=None):
    env = {**os.environ, "CLINIC_HOME": str(home), "CLINIC_TRAINING_HOME": str(home) + "-training"}
    env.pop("CLINIC_USER", None)
    env.pop("CLINIC_PASSWORD", None)
    if user:
        env.update(CLINIC_USER=user, CLINIC_PASSWORD=password)
    return subprocess.run([sys.executable, "-m", "clinic", *args], input=stdin, check=False,
                          capture_output=True, text=True, env=env, timeout=60)


def _init(home):
    r = _run(home, "user", "init", "--login", ADMIN, "--name", "王管理", "--password-stdin",
             stdin=ADMIN_PW + "\n")
    assert r.returncode == 0, r.stderr
    return r


def test_user_lifecycle_from_the_command_line(tmp_path):
    home = tmp_path / "home"
    r = _run(home, "user", "list", user=ADMIN, password=ADMIN_PW)
    assert r.returncode == 6 and "clinic user init" in r.stderr
    assert "已创建管理员" in _init(home).stdout
    again = _run(home, "user", "init", "--login", "x", "--name", "某", "--password-stdin",
                 stdin="another pw 1\n")
    assert again.returncode == 6 and "已经有管理员" in again.stderr

    r = _run(home, "user", "add", "w1", "--name", "张医生", "--role", "worker",
             "--password-stdin", user=ADMIN, password=ADMIN_PW, stdin="worker pass 1\n")
    assert r.returncode == 0 and "已添加用户 w1" in r.stdout, r.stderr
    r = _run(home, "user", "list", "--json", user=ADMIN, password=ADMIN_PW)
    users = {u["login"]: u for u in json.loads(r.stdout)}
    assert users["w1"]["role"] == "worker" and not users["w1"]["disabled"]

    # The password the administrator chose only lets the worker change it.
    assert users["w1"]["must_change"]
    r = _run(home, "visit", "list", user="w1", password="worker pass 1")
    assert r.returncode == 6 and "clinic user passwd" in r.stderr
    r = _run(home, "user", "passwd", "--password-stdin", user="w1", password="worker pass 1",
             stdin="worker pass 1\nworker own 1\n")
    assert r.returncode == 0, r.stderr
    assert _run(home, "visit", "list", user="w1", password="worker own 1").returncode == 0

    # A worker may not manage users.
    r = _run(home, "user", "add", "w2", "--name", "李", "--role", "worker", "--password-stdin",
             user="w1", password="worker own 1", stdin="worker pass 2\n")
    assert r.returncode == 6 and "管理用户" in r.stderr

    # Wrong password: refused with the tries left; the password never reaches the log.
    r = _run(home, "user", "list", user=ADMIN, password="not the password")
    assert r.returncode == 6 and "还可再试" in r.stderr

    r = _run(home, "user", "reset", "w1", "--password-stdin", user=ADMIN, password=ADMIN_PW,
             stdin="temporary 1\n")
    assert r.returncode == 0, r.stderr
    r = _run(home, "user", "passwd", "--password-stdin", user="w1", password="temporary 1",
             stdin="temporary 1\nmy own secret\n")
    assert r.returncode == 0 and "密码已修改" in r.stdout, r.stderr
    r = _run(home, "user", "list", "--json", user=ADMIN, password=ADMIN_PW)
    assert not {u["login"]: u for u in json.loads(r.stdout)}["w1"]["must_change"]

    r = _run(home, "user", "disable", "w1", user=ADMIN, password=ADMIN_PW)
    assert r.returncode == 0, r.stderr
    r = _run(home, "user", "passwd", "--password-stdin", user="w1", password="my own secret",
             stdin="my own secret\nanother one 1\n")
    assert r.returncode == 6 and "停用" in r.stderr

    log = (home / "logs" / "clinic.log").read_text(encoding="utf-8")
    for secret in (ADMIN_PW, "worker pass 1", "worker own 1", "temporary 1", "my own secret",
                   "not the password"):
        assert secret not in log


def test_backup_create_verify_restore_from_the_command_line(tmp_path):
    home = tmp_path / "home"
    _init(home)
    r = clinic(home, "backup", "create", "--json",
               env={"CLINIC_USER": ADMIN, "CLINIC_PASSWORD": ADMIN_PW})
    assert r.returncode == 0, r.stderr
    path = json.loads(r.stdout)["path"]
    assert path.endswith(".cbk") and json.loads(r.stdout)["counts"]["app_user"] == 1
    r = clinic(home, "backup", "verify", path,
               env={"CLINIC_USER": ADMIN, "CLINIC_PASSWORD": ADMIN_PW})
    assert r.returncode == 0 and "备份完好" in r.stdout, r.stderr
    r = clinic(home, "backup", "restore", path,
               env={"CLINIC_USER": ADMIN, "CLINIC_PASSWORD": ADMIN_PW})
    assert r.returncode == 0 and "恢复前的数据库已加密保存" in r.stdout, r.stderr

    # Another installation (another data key) cannot open it.
    other = tmp_path / "other"
    _init(other)
    r = clinic(other, "backup", "verify", path,
               env={"CLINIC_USER": ADMIN, "CLINIC_PASSWORD": ADMIN_PW})
    assert r.returncode != 0 and "另一套数据密钥" in r.stderr

    # Only an administrator backs up.
    r = _run(home, "user", "add", "s1", "--name", "督导", "--role", "supervisor",
             "--password-stdin", user=ADMIN, password=ADMIN_PW, stdin="super pass 1\n")
    assert r.returncode == 0, r.stderr
    r = _run(home, "user", "passwd", "--password-stdin", user="s1", password="super pass 1",
             stdin="super pass 1\nsuper own 1\n")
    assert r.returncode == 0, r.stderr
    r = clinic(home, "backup", "create", env={"CLINIC_USER": "s1", "CLINIC_PASSWORD": "super own 1"})
    assert r.returncode == 6 and "备份" in r.stderr
