"""iac.diff on declared keys: a new key gains its access, a removed key is listed, an unreadable policy is an
error rather than a crash or a silent "no change", and worlds are matched by label."""

from __future__ import annotations

import json
from typing import Any

from kmsguard.iac.declared import Declared, IacContext, Location, Unit
from kmsguard.iac.diff import diff_units
from kmsguard.model.snapshot import Key

CTX = IacContext(account="111122223333", region="us-east-1")
ROOT = {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"}


def _unit(policy: str | None, label: str = "", name: str = "Key") -> Unit:
    key = Key(
        arn=CTX.key_arn(name),
        key_id=name,
        account=CTX.account,
        region=CTX.region,
        key_manager="CUSTOMER",
        policy=policy,
    )
    return Unit(
        "k.yaml",
        "cloudformation",
        [Declared(label=label, keys=[key], locations={key.arn: Location("k.yaml", 4, name)})],
    )


def _policy(*extra: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [ROOT, *extra]})


PUBLIC = {"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}


def test_a_new_public_key_gains_access_and_opens_to_the_public() -> None:
    (change,) = diff_units([], [_unit(_policy(PUBLIC))], CTX)
    assert change.status == "added" and change.opens_public and change.gained
    assert not change.admin_lockout and change.new_access("public")


def test_a_removed_key_is_listed_without_judgement() -> None:
    (change,) = diff_units([_unit(_policy())], [], CTX)
    assert change.status == "removed" and not change.gained and change.location == Location("k.yaml", 4, "Key")


def test_an_unchanged_policy_gives_no_change_whatever_its_layout() -> None:
    same = json.dumps(json.loads(_policy()), indent=4)
    assert diff_units([_unit(_policy())], [_unit(same)], CTX) == []


def test_an_unreadable_new_policy_is_an_error_naming_the_side() -> None:
    (change,) = diff_units([_unit(_policy())], [_unit(json.dumps({"Statement": []}))], CTX)
    assert change.error is not None and change.error.startswith("the new key policy:")
    assert "Statement" in change.error


def test_worlds_are_matched_by_label() -> None:
    old = Unit("k.yaml", "cloudformation", _unit(_policy(), "P=true").worlds + _unit(_policy(), "P=false").worlds)
    new = Unit("k.yaml", "cloudformation", _unit(_policy(), "P=true").worlds + _unit(_policy(PUBLIC), "P=false").worlds)
    (change,) = diff_units([old], [new], CTX)
    assert change.world == "P=false" and change.opens_public
