"""Which calls are cryptographic use of a key: the policy engine's catalogue of the permissions, as CloudTrail
names the calls. Encapsulate and Decapsulate (ML-KEM keys) were missing from trail's own list, so a key used only
through them looked unused."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from kmsguard.policy.actions import CRYPTOGRAPHIC_ACTIONS
from kmsguard.trail import decode, fastpath
from kmsguard.trail.analyze import TrailOptions, analyze
from kmsguard.trail.schema import COLUMNS, CRYPTO_ACTIONS
from kmsguard.trail.synth import event, key_arn, write_trail_files

from .conftest import ACCT, T0, user

KEM_KEY = key_arn(ACCT, "us-east-1", 77)


def test_every_cryptographic_permission_has_its_event() -> None:
    events = {a.split(":", 1)[1] for a in CRYPTOGRAPHIC_ACTIONS} - {"reencryptfrom", "reencryptto"} | {"reencrypt"}
    assert {a.lower() for a in CRYPTO_ACTIONS} == events
    assert {"Encapsulate", "Decapsulate", "ReEncrypt"} <= CRYPTO_ACTIONS
    assert not {"ReEncryptFrom", "ReEncryptTo"} & CRYPTO_ACTIONS  # permissions, never a CloudTrail eventName


@pytest.mark.parametrize("name", ["Encapsulate", "Decapsulate"])
def test_both_decoders_count_kem_calls_as_cryptographic(name: str) -> None:
    data = json.dumps({"Records": [event(name, KEM_KEY, user("app"), T0)]}).encode()
    rows, _ = decode.decode_bytes(data, "f.json")
    assert rows and rows[0][COLUMNS.index("is_crypto")] is True
    if fastpath.AVAILABLE:
        table = fastpath.decode_table(data, "f.json", decode.FileStats("f.json"))
        assert table is not None and table.column("is_crypto").to_pylist() == [True]


def test_a_key_used_only_through_decapsulate_is_in_use(tmp_path: Path) -> None:
    recs = [event("Decapsulate", KEM_KEY, user("app"), T0 + timedelta(days=d)) for d in range(3)]
    write_trail_files(tmp_path / "logs", recs)
    report = analyze([str(tmp_path / "logs")], None, TrailOptions(cache_dir=tmp_path / "c", workers=1))
    (usage,) = report.keys
    assert usage.crypto_calls == 3 and usage.last_crypto_use is not None
