"""Unlock and field-encryption benchmarks (docs/security.md).

Unlock: a login with DEFAULT_KDF on a fresh data directory, i.e. reading the user's row, one
Argon2id derivation (verifier + key-encryption key), the constant-time compare and unwrapping
the key slot. Median of 10; target < 1 s. Floor: one bare Argon2id derivation with the same
parameters (cryptography's Argon2id, same salt length and output length), median of 10, each floor sample taken right after a login sample.

Field encryption on a visit: what one settled visit seals and opens again with the data key,
clinic.crypto.FieldCipher: the person record (JSON, as Counter.seal_party writes it), the six
journalled requests and their answers (settlement.journal seals both; sizes representative of
the simulator's messages), and the two keyed hashes (psn_ref, certno_ref). Floor: a bare
AESGCM.encrypt of the same bytes with the same associated data. Best of 5 runs of 2000 visits.
"""
from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from clinic.auth import UserStore
from clinic.config import Settings
from clinic.crypto import FieldCipher
from clinic.db import open_database
from clinic.keyslots import DEFAULT_KDF

RUNS = int(os.environ.get("BENCH_UNLOCK_RUNS", "10"))
VISITS = int(os.environ.get("BENCH_FIELD_VISITS", "2000"))
PASSWORD = "bench-password-1"

PERSON = {"person": {"psn_no": "31000019430101000001", "psn_name": "王秀英", "gend": "2",
                     "brdy": "1943-01-01", "certno": "310116194301011234", "psn_cert_type": "01",
                     "naty": "01", "insutype": "390", "insutype_name": "城乡居民基本医疗保险",
                     "psn_type": "1", "balc": 0, "insuplc_admdvs": "310116",
                     "emp_name": "枫泾镇新春村", "cvlserv_flag": "0"},
          "cred": {"mdtrt_cert_type": "03", "mdtrt_cert_no": "310116D156000005000A3D2A8A12",
                   "card_sn": "A3D2A8A12", "certno": "310116194301011234", "psn_cert_type": "01",
                   "psn_name": "王秀英"}}
# (request, answer) body sizes in bytes for 1101, 2201, 2203, 2204, 2206, 2207
MESSAGES = [(420, 1600), (520, 320), (560, 240), (1900, 2100), (700, 1700), (720, 1800)]


def unlock() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-unlock-"))
    settings = Settings(home=work)
    engine = open_database(settings.db_path)
    store = UserStore(engine, settings)
    store.create_first_admin("bench", "基准测试", PASSWORD)
    salt = os.urandom(16)
    times, floor = [], []
    for _ in range(RUNS):  # interleaved, so a busy machine weighs on both alike
        t0 = time.perf_counter()
        store.login("bench", PASSWORD)
        times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        Argon2id(salt=salt, length=64, iterations=DEFAULT_KDF.iterations,
                 lanes=DEFAULT_KDF.lanes, memory_cost=DEFAULT_KDF.memory_kib).derive(b"x" * 16)
        floor.append(time.perf_counter() - t0)
    engine.dispose()
    t, f = statistics.median(times), statistics.median(floor)
    k = DEFAULT_KDF
    print(f"floor   bare Argon2id (m={k.memory_kib} KiB, t={k.iterations}, p={k.lanes}) : "
          f"{f * 1000:8.1f} ms (median of {RUNS})")
    print(f"unlock  login = derivation + compare + unwrap      : {t * 1000:8.1f} ms "
          f"(median of {RUNS}, min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f})  "
          f"ratio {t / f:.2f} of the floor (target < 1 s: {'met' if t < 1 else 'MISSED'})",
          flush=True)


def fields() -> None:
    key = AESGCM.generate_key(bit_length=256)
    cipher = FieldCipher(key)
    aead = AESGCM(key)
    person = json.dumps(PERSON, ensure_ascii=False)
    items = [(person.encode("utf-8"), b"visit.person_sealed|00000000-0000-0000-0000-000000000000")]
    for i, (req, ans) in enumerate(MESSAGES):
        aad = f"journal|H31011600001{i:018d}".encode()
        items += [(os.urandom(req), aad), (os.urandom(ans), aad + b"|answer")]
    nbytes = sum(len(p) for p, _ in items)
    nonce = os.urandom(12)

    def floor_run():
        for _ in range(VISITS):
            for plain, aad in items:
                aead.encrypt(nonce, plain, aad)

    def seal_run():
        for _ in range(VISITS):
            for plain, aad in items:
                cipher.seal(plain, aad)

    def visit_run():
        for _ in range(VISITS):
            for plain, aad in items:
                cipher.open(cipher.seal(plain, aad), aad)
            cipher.keyed_hash("31000019430101000001")
            cipher.keyed_hash("310116194301011234")

    runs: dict = {floor_run: [], seal_run: [], visit_run: []}
    for _ in range(5):  # rounds interleave the three, so machine load weighs on all alike
        for fn, out in runs.items():
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    f, s1, v = (min(runs[fn]) / VISITS for fn in (floor_run, seal_run, visit_run))
    print(f"floor   bare AES-GCM encrypt of a visit's fields  : {f * 1e6:8.1f} µs per visit "
          f"({len(items)} fields, {nbytes} bytes)")
    print(f"fields  seal only (fresh nonce, version byte)     : {s1 * 1e6:8.1f} µs per visit  "
          f"ratio {s1 / f:.2f} of the floor")
    print(f"fields  seal + open + 2 keyed hashes per visit    : {v * 1e6:8.1f} µs per visit  "
          f"ratio {v / f:.2f} of the floor", flush=True)


def main() -> None:
    unlock()
    fields()


if __name__ == "__main__":
    main()
