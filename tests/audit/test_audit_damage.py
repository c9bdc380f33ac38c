"""Property tests: one random damage to a signed chain, and the verifier names it and where."""
from __future__ import annotations

import json
from datetime import datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clinic import audit_keys
from clinic.audit import canonical, hash_canonical, row_from_canonical
from clinic.audit_synth import ChainWriter
from clinic.audit_verify import verify_lines

CLINIC = "H31011600001"
T0 = datetime(2026, 11, 2, 8, 0)

FIELDS = ("ts", "clinic", "terminal", "operator", "role", "action", "object", "outcome",
          "details", "prev_hash", "seq")


def build_chain(key, n: int, checkpoint_every: int = 5) -> ChainWriter:
    """n events, a signed checkpoint every few events and always one over the last."""
    w = ChainWriter(CLINIC, key)
    for i in range(1, n + 1):
        t = T0 + timedelta(minutes=i)
        w.append(t, "settle", f"visit-{i}", "ok", fund=100 * i, psn_ref=f"{i:024x}")
        if i % checkpoint_every == 0 or i == n:
            w.checkpoint(t, "day_close")
    return w


PROPS = settings(max_examples=120, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])


def _verify(w, lines=None, cps=None, key=None):
    return verify_lines(w.lines if lines is None else lines, checkpoints=w.checkpoints
                        if cps is None else cps, public_key=key)


def _flip(line: bytes, field: str, pos: int) -> bytes:
    """Change one character of one field, keeping the line well-formed JSON."""
    row = row_from_canonical(line)
    if field == "seq":
        row["seq"] += 1 if pos % 2 else -1
        return canonical(row)
    value = row[field]
    i = pos % len(value) if value else 0
    old = value[i] if value else ""
    new = next(c for c in "a7Zq" if c != old)
    row[field] = value[:i] + new + value[i + 1:]
    return canonical(row)


@PROPS
@given(n=st.integers(3, 30), data=st.data())
def test_a_flipped_byte_in_any_field_is_named_modified_at_its_seq(clinic_key, pub, n, data):
    w = build_chain(clinic_key, n)
    k = data.draw(st.integers(1, n), label="seq")
    field = data.draw(st.sampled_from(FIELDS), label="field")
    pos = data.draw(st.integers(0, 200), label="pos")
    lines = list(w.lines)
    lines[k - 1] = _flip(lines[k - 1], field, pos)
    r = _verify(w, lines, key=pub)
    assert (r.status, r.kind, r.first_bad_seq) == ("damaged", "modified", k), r


@PROPS
@given(n=st.integers(3, 30), data=st.data())
def test_a_deleted_event_is_named_deleted_at_its_seq_or_truncated_at_the_end(clinic_key, pub,
                                                                                n, data):
    w = build_chain(clinic_key, n)
    k = data.draw(st.integers(1, n), label="seq")
    lines = w.lines[:k - 1] + w.lines[k:]
    r = _verify(w, lines, key=pub)
    expected = "truncated" if k == n else "deleted"
    assert (r.status, r.kind, r.first_bad_seq) == ("damaged", expected, k), r


@PROPS
@given(n=st.integers(3, 30), data=st.data())
def test_two_swapped_events_are_named_reordered_at_the_first(clinic_key, pub, n, data):
    w = build_chain(clinic_key, n)
    a = data.draw(st.integers(1, n - 1), label="a")
    b = data.draw(st.integers(a + 1, n), label="b")
    lines = list(w.lines)
    lines[a - 1], lines[b - 1] = lines[b - 1], lines[a - 1]
    r = _verify(w, lines, key=pub)
    assert (r.status, r.kind, r.first_bad_seq) == ("damaged", "reordered", a), r


@PROPS
@given(n=st.integers(3, 30), data=st.data())
def test_an_inserted_well_formed_event_is_named_inserted_at_its_position(clinic_key, pub, n,
                                                                          data):
    w = build_chain(clinic_key, n)
    k = data.draw(st.integers(1, n), label="position")
    prev = w.start_prev if k == 1 else w.hashes[k - 2]
    forged = canonical({"seq": k, "ts": (T0 + timedelta(minutes=k, seconds=30)).isoformat(),
                        "clinic": CLINIC, "terminal": "counter-1", "operator": "D0009",
                        "role": "worker", "action": "settle", "object": "forged", "outcome": "ok",
                        "details": json.dumps({"fund": 99999}), "prev_hash": prev})
    lines = w.lines[:k - 1] + [forged] + w.lines[k - 1:]
    r = _verify(w, lines, key=pub)
    assert (r.status, r.kind, r.first_bad_seq) == ("damaged", "inserted", k), r


@PROPS
@given(n=st.integers(3, 30), data=st.data())
def test_a_rewritten_and_re_signed_chain_is_named_wrong_key_at_the_first_re_signed_checkpoint(
        clinic_key, forger_key, pub, n, data):
    w = build_chain(clinic_key, n)
    k = data.draw(st.integers(1, n), label="seq")
    # The forger edits event k, re-chains everything after it and re-signs what no longer matches.
    rows = [row_from_canonical(x) for x in w.lines]
    rows[k - 1]["details"] = json.dumps({"fund": 1})
    lines, prev = [], w.start_prev
    for row in rows:
        row["prev_hash"] = prev
        lines.append(canonical(row))
        prev = hash_canonical(lines[-1])
    fid = audit_keys.key_id(audit_keys.public_raw(forger_key))
    cps = []
    for cp in w.checkpoints:
        if cp["seq"] >= k:
            head = hash_canonical(lines[cp["seq"] - 1])
            cp = {**cp, "head_hash": head, "key_id": fid, "signature": audit_keys.sign(
                forger_key, audit_keys.checkpoint_payload(cp["clinic"], cp["seq"], head, cp["ts"],
                                                          cp["reason"]))}
        cps.append(cp)
    first_resigned = min(c["seq"] for c in w.checkpoints if c["seq"] >= k)
    r = _verify(w, lines, cps, key=pub)
    assert (r.status, r.kind, r.first_bad_seq) == ("damaged", "wrong_key", first_resigned), r


@PROPS
@given(n=st.integers(3, 30), data=st.data())
def test_a_truncated_chain_is_named_truncated_at_the_first_missing_seq(clinic_key, pub, n, data):
    w = build_chain(clinic_key, n)
    keep = data.draw(st.integers(1, n - 1), label="keep")
    r = _verify(w, w.lines[:keep], key=pub)
    assert (r.status, r.kind, r.first_bad_seq) == ("damaged", "truncated", keep + 1), r


@PROPS
@given(n=st.integers(3, 30), data=st.data())
def test_truncation_past_the_last_checkpoint_is_completeness_unproven_never_ok(clinic_key, pub,
                                                                                n, data):
    w = build_chain(clinic_key, n)
    c = data.draw(st.integers(1, n - 1), label="last checkpoint")
    cps = [cp for cp in w.checkpoints if cp["seq"] <= c]
    if not cps or cps[-1]["seq"] != c:
        cps.append(w.checkpoint(T0, "day_close", seq=c))
    keep = data.draw(st.integers(c, n), label="keep")
    r = _verify(w, w.lines[:keep], cps, key=pub)
    if keep == c:
        assert r.status == "ok"
    else:
        assert r.status == "unproven" and r.intact and r.exit_code == 3 and not r.ok, r


def test_an_intact_chain_covered_by_a_checkpoint_is_ok(clinic_key, pub):
    w = build_chain(clinic_key, 12)
    r = _verify(w, key=pub)
    assert (r.status, r.count, r.last_checkpoint_seq, r.exit_code) == ("ok", 12, 12, 0)


def test_a_single_event_with_its_checkpoint_is_ok_and_without_it_unproven(clinic_key, pub):
    w = build_chain(clinic_key, 1)
    assert _verify(w, key=pub).status == "ok"
    assert _verify(w, cps=[], key=pub).status == "unproven"


def test_checkpoints_that_cannot_be_checked_without_a_key_leave_completeness_unproven(
        clinic_key):
    w = build_chain(clinic_key, 6)
    assert _verify(w, key=None).status == "unproven"


def test_a_checkpoint_signed_by_another_clinic_is_wrong_key(clinic_key, forger_key, pub):
    w = build_chain(clinic_key, 6, 100)
    w.checkpoints = []
    w.checkpoint(T0, "day_close", key=forger_key, seq=6)
    r = _verify(w, key=pub)
    assert (r.kind, r.first_bad_seq) == ("wrong_key", 6)


def test_an_edited_checkpoint_is_bad_signature_when_every_signature_is_checked(clinic_key, pub):
    w = build_chain(clinic_key, 6, 3)
    w.checkpoints[0] = {**w.checkpoints[0], "ts": "2020-01-01T00:00:00.000"}
    r = verify_lines(w.lines, checkpoints=w.checkpoints, public_key=pub, thorough=True)
    assert (r.kind, r.first_bad_seq) == ("bad_signature", 3)
    # by default an intermediate checkpoint that agrees with a signed head proves nothing more
    assert _verify(w, key=pub).status == "ok"


def test_an_edited_checkpoint_head_or_last_checkpoint_is_bad_signature_by_default(clinic_key,
                                                                                  pub):
    w = build_chain(clinic_key, 9, 3)
    cps = list(w.checkpoints)
    cps[0] = {**cps[0], "head_hash": "f" * 64}
    assert (_verify(w, cps=cps, key=pub).kind, _verify(w, cps=cps, key=pub).first_bad_seq) == \
        ("bad_signature", 3)
    cps = list(w.checkpoints)
    cps[-1] = {**cps[-1], "signature": "00" * 64}
    r = _verify(w, cps=cps, key=pub)
    assert (r.kind, r.first_bad_seq) == ("bad_signature", 9)


def test_a_checkpoint_claiming_more_events_than_exist_is_believed_only_if_signed(clinic_key,
                                                                                   pub):
    w = build_chain(clinic_key, 6, 100)
    fake = {**w.checkpoints[-1], "seq": 9}
    r = _verify(w, cps=[*w.checkpoints, fake], key=pub)
    assert (r.kind, r.first_bad_seq) == ("bad_signature", 9)


def test_damage_before_a_checkpoint_is_reported_before_the_checkpoint_problem(clinic_key,
                                                                              forger_key, pub):
    w = build_chain(clinic_key, 10, 5)
    lines = w.lines[:2] + w.lines[3:]
    w.checkpoints[-1] = {**w.checkpoints[-1], "key_id": "0" * 16}
    r = _verify(w, lines, key=pub)
    assert (r.kind, r.first_bad_seq) == ("deleted", 3)
