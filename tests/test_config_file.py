"""kmsguard.yaml: every setting reaches the checks; unknown keys and wrong types are errors naming the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from checks.builders import key, snapshot
from kmsguard.config_file import ConfigFileError, load_config
from kmsguard.model.finding import Severity, Status
from kmsguard.pipeline import judge


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "kmsguard.yaml"
    p.write_text(text, encoding="utf-8")
    return p


FULL = """\
required_tags: [Owner]
max_rotation_days: 400
environment_tag: Stage
trusted_accounts: ["444455556666"]
trusted_org_ids: [o-a1b2c3d4e5]
severity_overrides:
  key_no_alias: info
checks:
  key_rotation_period_too_long:
    max_rotation_days: 180
    severity: high
  config_rule_deletion_missing:
    enabled: false
mutes:
  - check: key_missing_tags
    account: "111122223333"
    region: us-*
    resource: "arn:aws:kms:*:key/*"
    reason: tags come from the CMDB sync
    expires: 2099-12-31
"""


def test_every_setting_is_read_and_applied(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, FULL))
    assert cfg.required_tags == ["Owner"] and cfg.max_rotation_days == 400 and cfg.environment_tag == "Stage"
    assert cfg.trusted_accounts == ["444455556666"] and cfg.trusted_org_ids == ["o-a1b2c3d4e5"]
    assert cfg.severity_overrides == {"key_no_alias": Severity.INFO}
    assert not cfg.enabled("config_rule_deletion_missing")
    slow = key(rotation_period_days=365, tags={})  # within 400 globally, too long for the per-check 180
    result = judge(
        snapshot(keys=[slow]),
        cfg,
        only=["key_rotation_period_too_long", "key_missing_tags", "config_rule_deletion_missing"],
    )
    by_check = {f.check_id: f for f in result.findings}
    assert by_check["key_rotation_period_too_long"].status is Status.FAIL
    assert by_check["key_rotation_period_too_long"].severity is Severity.HIGH
    assert by_check["key_rotation_period_too_long"].evidence["max_rotation_days"] == 180
    assert by_check["key_missing_tags"].status is Status.MUTED
    assert by_check["key_missing_tags"].mute_reason == "tags come from the CMDB sync"
    assert "config_rule_deletion_missing" not in by_check


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("required_tags: [Owner]\nrequierd_tags: [x]\n", 2, ["requierd_tags", "unknown setting"]),
        ("max_rotation_days: soon\n", 1, ["max_rotation_days", "integer"]),
        ("max_rotation_days: 30\n", 1, ["between 90 and 2560"]),
        ("trusted_accounts: [12345]\n", 1, ["trusted_accounts"]),
        ("checks:\n  key_no_alias:\n    enabled: true\n    colour: red\n", 4, ["checks.key_no_alias.colour"]),
        ("checks:\n  key_no_alais: {enabled: false}\n", 2, ["unknown check id 'key_no_alais'"]),
        (
            "mutes:\n  - check: key_no_alias\n    reason: ok\n  - check: key_disabled\n    expires: someday\n"
            "    reason: x\n",
            5,
            ["mutes[1].expires"],
        ),
        ("mutes:\n  - check: key_no_alias\n", 2, ["mutes[0].reason", "required"]),
        ("severity_overrides:\n  key_no_alias: urgent\n", 2, ["severity_overrides.key_no_alias"]),
        ("required_tags: [a\n", 2, ["not valid YAML"]),
        # Hostile files (issue 14): a RecursionError or UnicodeEncodeError traceback before.
        ("checks:\n  key_no_alias: " + "[" * 5000 + "\n", 2, ["nested deeper than 64 levels"]),
        ("checks:\n" + "".join("  " * i + "- \n" for i in range(1, 70)), 65, ["nested deeper than 64 levels"]),
        ('required_tags: [Owner]\nenvironment_tag: "Env\\ud800"\n', 2, ["lone surrogate \\ud800"]),
    ],
)
def test_bad_settings_name_the_line(tmp_path: Path, text: str, line: int, words: list[str]) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigFileError) as e:
        load_config(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}: line {line}:"), msg
    for w in words:
        assert w in msg, msg


def test_bytes_that_are_not_utf8_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "kmsguard.yaml"
    path.write_bytes(b"required_tags: [Owner]\nmax_rotation_days: 365\nenvironment_tag: \xffEnv\n")
    with pytest.raises(ConfigFileError) as e:
        load_config(path)
    assert str(e.value) == f"{path}: line 3: not UTF-8 text: byte 0xff"


def test_a_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError) as e:
        load_config(tmp_path / "nope.yaml")
    assert str(e.value) == f"{tmp_path / 'nope.yaml'}: no such file"


def test_default_file_in_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_config(None).required_tags == ["Environment", "DataClassification", "Owner", "CostCenter"]
    _write(tmp_path, "environment_tag: Env\n")
    assert load_config(None).environment_tag == "Env"


def test_expired_mute_warns_through_judge(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, "mutes:\n  - check: key_no_alias\n    reason: old\n    expires: 2020-01-01\n"))
    warnings: list[str] = []
    result = judge(snapshot(keys=[key(aliases=[])]), cfg, only=["key_no_alias"], warn=warnings.append)
    [f] = result.findings
    assert f.status is Status.FAIL and f.evidence["expired_mute"]["reason"] == "old"
    assert len(warnings) == 1 and "expired on 2020-01-01" in warnings[0]
