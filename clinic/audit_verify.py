"""Walking an audit chain: the first bad sequence number and the kind of damage.

One walk serves the clinic's database (rows with their stored hashes) and an export bundle
(canonical lines, each exactly the bytes its hash covers). The fast path only hashes each line
and compares its `prev_hash` (the last 64 hex characters before `"]`) with the previous line's
hash; any failure falls back to a slower pass that names the damage:

- modified   a line's content differs from what was hashed (or its successor no longer links)
- inserted   a line that does not belong: its successor links to the line before it
- deleted    lines missing: the next line carries a later sequence number
- reordered  a line links to a line that comes later
- truncated  a signed checkpoint (or the signed manifest) names a sequence number past the end
- wrong_key  a checkpoint or manifest signed by another key than the clinic's pinned key
- bad_signature  a checkpoint whose signature does not verify (checkpoint edited)

Events after the last checkpoint can be cut off without trace: the outcome is then
"unproven" (completeness unproven), never "ok".
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from . import audit_keys
from .audit import _DOMAIN, GENESIS, canonical, hash_canonical, row_from_canonical

OK, UNPROVEN, DAMAGED = "ok", "unproven", "damaged"
EXIT_CODES = {OK: 0, DAMAGED: 1, UNPROVEN: 3}
EXIT_UNREADABLE = 4

KIND_NAMES = {
    "modified": "内容被改动", "inserted": "被插入", "deleted": "缺失（被删除）",
    "reordered": "顺序被改动", "truncated": "末尾被截断",
    "wrong_key": "签名密钥不是本卫生室的", "bad_signature": "签名无效（检查点被改动）",
}

_BASE = hashlib.sha256(_DOMAIN)


@dataclass(frozen=True)
class VerifyReport:
    status: str                      # ok | unproven | damaged
    count: int
    first_bad_seq: int | None = None
    kind: str = ""
    message: str = ""                # Chinese, for the screen
    detail: str = ""                 # English, for logs and stderr
    first_seq: int = 1
    last_seq: int = 0
    last_checkpoint_seq: int | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def intact(self) -> bool:
        return self.status != DAMAGED

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]


def _damaged(count, seq, kind, detail, first_seq, last_seq, cp_seq=None, extra="") -> VerifyReport:
    where = f"第 {seq} 条审计记录" if seq is not None else "审计记录"
    return VerifyReport(DAMAGED, count, seq, kind, f"{where}{KIND_NAMES[kind]}{extra}",
                        detail, first_seq, last_seq, cp_seq)


def _fast_walk(lines: list[bytes], start_prev: str) -> list[bytes]:
    """Hashes of the lines that link; stops at the first line that does not."""
    hashes: list[bytes] = []
    append = hashes.append
    prev = start_prev.encode()
    copy = _BASE.copy
    for line in lines:
        if line[-66:-2] != prev:
            break
        h = copy()
        h.update(line)
        prev = h.hexdigest().encode()
        append(prev)
    return hashes


def _seq_of(line: bytes) -> int | None:
    try:
        return int(line[1:line.index(b",")])
    except ValueError:
        return None


def verify_lines(lines: list[bytes], *, start_seq: int = 1, start_prev: str = GENESIS,
                 stored: list[str] | None = None, checkpoints: list[dict] = (),
                 public_key: bytes | None = None, anchors: list[dict] = (),
                 notes: tuple[str, ...] = (), thorough: bool = False) -> VerifyReport:
    """The walk. `stored`: the hash column (database); `checkpoints`: signed by the clinic key,
    checked against `public_key` (None: signatures cannot be checked, so completeness is
    unproven); `anchors`: (seq, head_hash) already proven by the caller (a signed manifest).

    Every checkpoint's key id is compared; signatures are verified for the checkpoints the
    verdict rests on (the last one inside the chain, any past its end, any that disagrees with
    it) or, with `thorough`, for all of them. An intact chain ending in a validly signed head
    proves every event before it, so the other checkpoints add no proof, only cost."""
    n = len(lines)
    last_seq = start_seq + n - 1
    wanted = sorted({c["seq"] - start_seq for c in list(checkpoints) + list(anchors)
                     if start_seq <= c["seq"] <= last_seq} | ({n - 1} if n else set()))
    if stored is None:
        at = _fast_walk_marks(lines, start_prev, wanted)
        broken = at is None
    else:
        hashes = _fast_walk(lines, start_prev)
        broken = len(hashes) < n or any(h.decode() != s for h, s in zip(hashes, stored))
        at = {i: hashes[i] for i in wanted} if not broken else None
    if not broken:
        broken = any(_seq_of(lines[i]) != start_seq + i for i in {0, *wanted} if i < n)
    if broken:
        bad = _first_bad(lines, start_seq, start_prev, stored)
        return _classify(lines, stored, start_seq, start_prev, bad, checkpoints, anchors)
    # Checkpoints: key ids (cheap) for all, then the signatures the verdict rests on.
    cps = sorted(checkpoints, key=lambda c: c["seq"])
    if public_key is not None:
        trusted_id = audit_keys.key_id(public_key)
        for cp in cps:
            if cp.get("key_id") != trusted_id:
                return _damaged(n, cp["seq"], "wrong_key",
                                f"checkpoint at seq {cp['seq']} signed by key {cp.get('key_id')}, "
                                f"pinned key is {trusted_id}", start_seq, last_seq, cp["seq"])
        inside = [c for c in cps if start_seq <= c["seq"] <= last_seq]
        if thorough:
            to_check = cps
        else:
            to_check = [c for c in cps if c["seq"] > last_seq] + inside[-1:] + [
                c for c in inside if at[c["seq"] - start_seq].decode() != c["head_hash"]]
        if any(not _signed(c, public_key) for c in to_check):
            cp = next(c for c in cps if not _signed(c, public_key))
            return _damaged(n, cp["seq"], "bad_signature",
                            f"checkpoint at seq {cp['seq']} does not verify", start_seq, last_seq,
                            cp["seq"])
    proven = [(c["seq"], c["head_hash"]) for c in cps] if public_key is not None else []
    proven += [(a["seq"], a["head_hash"]) for a in anchors]
    proven.sort()
    last_good = None
    prev_good = start_seq - 1
    for seq, head in proven:
        if seq < start_seq:
            continue
        if seq > last_seq:
            return _damaged(n, last_seq + 1, "truncated",
                            f"chain ends at seq {last_seq}, a signed checkpoint names seq {seq}",
                            start_seq, last_seq, seq,
                            f"：签名检查点记到第 {seq} 条，现只到第 {last_seq} 条")
        if at[seq - start_seq].decode() != head:
            return _damaged(n, seq, "modified",
                            f"chain rewritten between seq {prev_good + 1} and {seq}: the head "
                            f"hash at {seq} is not the signed one", start_seq, last_seq, seq,
                            f"（第 {prev_good + 1} 至 {seq} 条之间被重写，与签名检查点不符）")
        prev_good = seq
        last_good = seq
    if last_good is not None and last_good >= last_seq:
        return VerifyReport(OK, n, None, "", f"审计链完整，共 {n} 条记录，已由签名检查点覆盖",
                            f"intact, {n} events, covered by a signed checkpoint at seq {last_good}",
                            start_seq, last_seq, last_good, notes)
    after = last_seq - (last_good if last_good is not None else start_seq - 1)
    why = "no trusted public key to check the checkpoints" if public_key is None and cps else \
        "no signed checkpoint"
    return VerifyReport(UNPROVEN, n, None, "",
                        f"审计链未见改动，共 {n} 条记录；其中最后 {after} 条在最近的签名检查点之后，"
                        f"无法证明其后没有被截断（完整性未证实）",
                        f"intact but completeness unproven: {after} events after "
                        f"{'seq ' + str(last_good) if last_good is not None else why}",
                        start_seq, last_seq, last_good, notes)


def _signed(cp: dict, public_key: bytes) -> bool:
    return audit_keys.signature_ok(public_key, cp["signature"], audit_keys.checkpoint_payload(
        cp["clinic"], cp["seq"], cp["head_hash"], cp["ts"], cp["reason"]))


def _fast_walk_marks(lines: list[bytes], start_prev: str, wanted: list[int]
                     ) -> dict[int, bytes] | None:
    """The same walk without keeping every hash: only those at `wanted` positions (checkpoints
    and the last line). None if a link breaks anywhere."""
    at: dict[int, bytes] = {}
    prev = start_prev.encode()
    copy = _BASE.copy
    a = 0
    for b in wanted:
        for line in lines[a:b + 1]:
            if line[-66:-2] != prev:
                return None
            h = copy()
            h.update(line)
            prev = h.hexdigest().encode()
        at[b] = prev
        a = b + 1
    return at


def _first_bad(lines: list[bytes], start_seq: int, start_prev: str,
               stored: list[str] | None) -> int:
    """Slow path: the first line whose link, stored hash or seq is wrong."""
    prev = start_prev
    for i, line in enumerate(lines):
        h = hash_canonical(line)
        if line[-66:-2].decode("ascii", "replace") != prev or _seq_of(line) != start_seq + i \
                or (stored is not None and stored[i] != h):
            return i
        prev = stored[i] if stored is not None else h
    return len(lines) - 1


def _classify(lines, stored, start_seq, start_prev, i, checkpoints, anchors) -> VerifyReport:
    n = len(lines)
    last_seq = start_seq + n - 1
    H = [hash_canonical(x) for x in lines]                 # computed
    I = stored if stored is not None else H                # identity of each line
    P = [x[-66:-2].decode("ascii", "replace") for x in lines]
    Q = [_seq_of(x) for x in lines]
    pos = {}
    for j, h in enumerate(I):
        pos.setdefault(h, j)
    e = start_seq + i
    prev_h = start_prev if i == 0 else I[i - 1]

    def out(seq, kind, detail):
        return _damaged(n, seq, kind, detail, start_seq, last_seq)

    try:
        row_from_canonical(lines[i])
    except ValueError:
        return out(e, "modified", f"line for seq {e} is not a valid event")
    if stored is not None and stored[i] != H[i]:
        moved = _moved_from(lines[i], stored[i], e, start_seq, n)
        if moved is not None and moved > e:
            return out(e, "reordered", f"seq {e} holds the event hashed as seq {moved}")
        if moved is not None and moved < e:
            return out(moved, "inserted", f"events from seq {moved} shifted by "
                                          f"{e - moved}: inserted before them")
        return out(e, "modified", f"seq {e}: content does not match its hash")
    if P[i] == prev_h:
        return out(e, "modified", f"seq field of the event at seq {e} reads {Q[i]}")
    if i >= 1 and P[i] == (start_prev if i == 1 else I[i - 2]):
        return out(e - 1, "inserted", f"seq {e} links past the event before it")
    j = pos.get(P[i])
    if j is not None and j >= i:
        return out(e, "reordered", f"seq {e}: event links to one that comes later")
    if j is not None and j < i - 1:
        return out(start_seq + j + 1, "inserted", f"events {start_seq + j + 1}..{e - 1} inserted")
    if P[i] == start_prev and i > 0:
        return out(start_seq, "inserted", f"events before seq {e} inserted")
    if Q[i] is not None and Q[i] > e:
        return out(e, "deleted", f"seq {e}..{Q[i] - 1} missing")
    if stored is None:
        cps = {c["seq"]: c["head_hash"] for c in list(checkpoints) + list(anchors)}
        intact = (i + 1 < n and P[i + 1] == H[i]) or cps.get(e) == H[i]
        if not intact:
            return out(e, "modified", f"seq {e}: line changed (neither its successor nor a "
                                      f"checkpoint vouches for it)")
    if i == 0:
        return out(e, "modified", f"seq {e} does not link to the bundle's starting hash")
    return out(e - 1, "modified", f"seq {e - 1} was replaced: seq {e} links to another event")


def _moved_from(line: bytes, stored_hash: str, e: int, start_seq: int, n: int) -> int | None:
    """The seq under which this row's content was hashed, if only its seq changed."""
    row = row_from_canonical(line)
    order = sorted(range(start_seq, start_seq + n + 1), key=lambda k: abs(k - e))
    for k in order[:20000]:
        if k != e and hash_canonical(canonical({**row, "seq": k})) == stored_hash:
            return k
    return None


# ---- the clinic's database -----------------------------------------------------------------

def verify_database(engine: Engine, public_key: bytes | None,
                    extra_checkpoints: list[dict], *, thorough: bool = False) -> VerifyReport:
    from . import audit
    from .models import AuditEvent
    t = AuditEvent.__table__
    cols = [t.c[f] for f in audit._FIELDS] + [t.c.hash]
    lines: list[bytes] = []
    stored: list[str] = []
    first = None
    with engine.connect() as conn:
        for r in conn.execute(select(*cols).order_by(t.c.seq)).yield_per(10000):
            if first is None:
                first = r[0]
            lines.append(canonical(dict(zip(audit._FIELDS, r[:-1]))))
            stored.append(r[-1])
    try:
        cps = audit.checkpoints(engine) + list(extra_checkpoints)
    except OperationalError:          # a database from before migration 0003
        cps = list(extra_checkpoints)
    if not lines:
        if cps:
            top = max(c["seq"] for c in cps)
            return _damaged(0, 1, "truncated", f"empty chain, checkpoint names seq {top}", 1, 0, top)
        return VerifyReport(OK, 0, message="审计日志为空", detail="empty chain")
    # The database must start at seq 1 from the genesis hash.
    return verify_lines(lines, start_seq=1, start_prev=GENESIS, stored=stored, checkpoints=cps,
                        public_key=public_key, thorough=thorough)
