"""kmsguard fix on keys, against the real moto server: plan, apply, rescan, idempotence, rollback, refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kmsguard.aws.options import AwsOptions
from kmsguard.collect.snapshot import collect_snapshot
from kmsguard.pipeline import judge

from .conftest import ADMIN, APP, OUTSIDER, make_key, messy_policy, root_statement


def _scan(endpoint: str) -> dict[tuple[str, str], str]:
    snap = collect_snapshot(AwsOptions(regions=["us-east-1"], endpoint_url=endpoint))
    return {(f.check_id, f.resource_arn): f.status.value for f in judge(snap, warn=lambda _m: None).findings}


def _wide_open() -> str:
    return messy_policy(
        root_statement(),
        {"Sid": "Everyone", "Effect": "Allow", "Principal": "*", "Action": "kms:Encrypt", "Resource": "*"},
        {"Sid": "Team", "Effect": "Allow", "Principal": {"AWS": [ADMIN, APP]}, "Action": "kms:*", "Resource": "*"},
        {"Sid": "Partner", "Effect": "Allow", "Principal": {"AWS": OUTSIDER}, "Action": "kms:Decrypt", "Resource": "*"},
    )


POLICY_CHECKS = (
    "key_policy_public",
    "key_policy_external_access",
    "key_policy_wildcard_actions",
    "key_policy_admin_can_use",
    "key_policy_no_secure_transport",
)


def test_plan_changes_nothing_and_shows_the_policy_diff_and_impact(aws, client, run) -> None:  # type: ignore[no-untyped-def]
    kms = client("kms")
    original = _wide_open()
    arn = make_key(kms, policy=original)
    result = run("--format", "json", "--key", arn)
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    kinds = {a["action"]: a for a in plan["actions"]}
    assert set(kinds) == {"enable_rotation", "tighten_key_policy"}
    pol = kinds["tighten_key_policy"]
    keys = {"action", "check_id", "check_ids", "account", "region", "resource_arn", "before", "after", "impact"}
    assert set(pol) == keys
    assert pol["check_ids"] == sorted(POLICY_CHECKS) and pol["check_id"] == ",".join(sorted(POLICY_CHECKS))
    assert pol["before"]["policy"] == original
    lost = {(r["principal"], r["action"]) for r in pol["impact"]["lost"]}
    # Effective access writes the partner account's principals as one aggregate, account:999988887777.
    assert any(p in (OUTSIDER, "account:999988887777") or ":999988887777:" in p for p, _ in lost)
    assert any(line.startswith("-") and "999988887777" in line for line in pol["impact"]["policy_diff"])
    assert pol["impact"]["admin_lockout"] is False
    assert pol["impact"]["unintended_loss"] == []
    # nothing changed in AWS
    assert kms.get_key_policy(KeyId=arn, PolicyName="default")["Policy"] == original
    assert kms.get_key_rotation_status(KeyId=arn)["KeyRotationEnabled"] is False


def test_apply_fixes_rotation_and_policy_rescan_passes_and_second_plan_is_empty(
    aws, client, run, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    kms = client("kms")
    arn = make_key(kms, policy=_wide_open())
    too_long = make_key(kms, rotation_days=730)
    before = _scan(aws.endpoint_url)
    assert before[("key_rotation_disabled", arn)] == "FAIL"
    assert before[("key_rotation_period_too_long", too_long)] == "FAIL"
    assert all(before[(c, arn)] == "FAIL" for c in POLICY_CHECKS)

    journal = tmp_path / "j.json"
    result = run("--apply", "--yes", "--journal", str(journal), "--rotation-days", "180")
    assert result.exit_code == 0, result.output
    # rotation on both keys, and both policies (the default one lacks DenyInsecureTransport)
    assert "4 applied, 0 skipped, 0 failed" in result.stdout

    after = _scan(aws.endpoint_url)
    assert after[("key_rotation_disabled", arn)] == "PASS"
    assert after[("key_rotation_period_too_long", too_long)] == "PASS"
    assert all(after[(c, arn)] == "PASS" for c in POLICY_CHECKS)
    assert kms.get_key_rotation_status(KeyId=too_long)["RotationPeriodInDays"] == 180

    again = run("--format", "json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["actions"] == []
    reapply = run("--apply", "--yes", "--journal", str(tmp_path / "j2.json"))
    assert reapply.exit_code == 0 and not (tmp_path / "j2.json").exists()


def test_rollback_restores_policy_byte_for_byte_and_rotation_with_its_period(aws, client, run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    kms = client("kms")
    original = _wide_open()
    arn = make_key(kms, policy=original, rotation_days=730)
    off = make_key(kms)
    journal = tmp_path / "j.json"
    assert run("--apply", "--yes", "--journal", str(journal)).exit_code == 0
    assert kms.get_key_policy(KeyId=arn, PolicyName="default")["Policy"] != original

    result = run("--rollback", str(journal), "--yes")
    assert result.exit_code == 0, result.output
    assert kms.get_key_policy(KeyId=arn, PolicyName="default")["Policy"] == original
    status = kms.get_key_rotation_status(KeyId=arn)
    assert status["KeyRotationEnabled"] is True and status["RotationPeriodInDays"] == 730
    assert kms.get_key_rotation_status(KeyId=off)["KeyRotationEnabled"] is False
    # a second rollback finds everything already in its prior state
    again = run("--rollback", str(journal), "--yes")
    assert again.exit_code == 0 and "unchanged" in again.stdout


def test_a_rewrite_that_locks_out_every_administrator_is_refused_unless_forced(aws, client, run) -> None:  # type: ignore[no-untyped-def]
    kms = client("kms")
    # No root statement: the only principal that can call PutKeyPolicy is the app role, through kms:*.
    only_app = messy_policy(
        {"Sid": "App", "Effect": "Allow", "Principal": {"AWS": APP}, "Action": "kms:*", "Resource": "*"}
    )
    arn = make_key(kms, policy=only_app, rotation_days=365)
    plan = json.loads(run("--format", "json", "--key", arn).stdout)
    assert plan["actions"] == []
    assert any("administer" in r["reason"] and r["resource_arn"] == arn for r in plan["refused"])
    result = run("--apply", "--yes", "--key", arn)
    assert result.exit_code == 0
    assert kms.get_key_policy(KeyId=arn, PolicyName="default")["Policy"] == only_app

    forced = json.loads(run("--format", "json", "--key", arn, "--force").stdout)
    [action] = forced["actions"]
    assert action["impact"]["admin_lockout"] is True
    # naming the administrator instead of forcing gives a plan that keeps the key manageable
    named = json.loads(run("--format", "json", "--key", arn, "--admin", APP).stdout)
    [action] = named["actions"]
    assert action["impact"]["admin_lockout"] is False


def test_bad_input_is_one_line_and_exit_2(aws, run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cases: list[tuple[list[str], str]] = [
        (["--rotation-days", "50"], "--rotation-days"),
        (["--rotation-days", "400"], "longer than the allowed maximum"),
        (["--apply"], "--yes"),
        (["--from-report", str(tmp_path / "missing.json")], "no such file"),
        (["--require-context", "nokey"], "KEY=VALUE"),
        (["--admin", "arn:aws:iam::123456789012:root"], "--admin"),
        (["--format", "xml"], "--format"),
        (["--rollback", str(tmp_path / "missing.journal.json"), "--yes"], "no such file"),
    ]
    for args, text in cases:
        result = run(*args)
        assert result.exit_code == 2, (args, result.output)
        assert text in result.output, (args, result.output)
    bad = tmp_path / "bad.journal.json"
    bad.write_text('{"type": "header", "version": 1}\n{"type": "before", "seq": 1\n')
    result = run("--rollback", str(bad), "--yes")
    assert result.exit_code == 2 and "line 2" in result.output


def test_from_report_fixes_what_the_report_lists_and_still_fails(aws, client, run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    kms = client("kms")
    listed = make_key(kms)
    unlisted = make_key(kms)
    snap = collect_snapshot(AwsOptions(regions=["us-east-1"], endpoint_url=aws.endpoint_url))
    report: dict[str, Any] = judge(snap, warn=lambda _m: None).to_json_dict()
    report["findings"] = [f for f in report["findings"] if f["resource_arn"] != unlisted]
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    plan = json.loads(run("--format", "json", "--from-report", str(path)).stdout)
    assert {a["resource_arn"] for a in plan["actions"] if a["action"] == "enable_rotation"} == {listed}
