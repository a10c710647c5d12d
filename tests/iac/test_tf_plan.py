"""Terraform plan JSON (terraform show -json) through the Terraform loader.

tests/iac/data/terraform/plan/plan.json was written by hand in the shape `terraform show -json` gives for
format_version 1.2 (planned_values with a child module, resource_changes with before/after/after_unknown, and
configuration with references): Terraform itself cannot be installed here, so no plan could be produced by it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kmsguard.iac.declared import Declared, IacContext, IacError, Location, unknown
from kmsguard.iac.terraform import is_terraform_plan, load_terraform_plan
from kmsguard.model.snapshot import Key
from kmsguard.policy.defaults import default_key_policy

PLAN = Path(__file__).parent / "data" / "terraform" / "plan" / "plan.json"
CTX = IacContext()


def _world(side: str = "after", path: Path = PLAN, rel: str = "plan/plan.json") -> Declared:
    unit = load_terraform_plan(path, rel, CTX, side)  # type: ignore[arg-type]
    assert (unit.kind, unit.file, len(unit.worlds), unit.worlds[0].label) == ("terraform-plan", rel, 1, "")
    return unit.worlds[0]


def _key(world: Declared, address: str) -> Key:
    return next(k for k in world.keys if k.key_id == address)


def _address_line(address: str) -> int:
    needle = f'"address": {json.dumps(address)}'
    return next(i for i, text in enumerate(PLAN.read_text().splitlines(), 1) if needle in text)


def test_is_terraform_plan_knows_a_plan_from_other_json() -> None:
    assert is_terraform_plan(json.loads(PLAN.read_text()))
    assert is_terraform_plan({"format_version": "1.2", "resource_changes": []})
    assert not is_terraform_plan({"format_version": "1.0", "values": {}})  # terraform show -json of a state
    assert not is_terraform_plan({"planned_values": {}})  # no version: not terraform's output
    assert not is_terraform_plan({"AWSTemplateFormatVersion": "2010-09-09", "Resources": {}})
    assert not is_terraform_plan([{"planned_values": {}, "terraform_version": "1.9.5"}])


def test_after_reads_planned_values_with_child_modules() -> None:
    world = _world()
    main = _key(world, "aws_kms_key.main")
    assert main.arn == CTX.key_arn("aws_kms_key.main")
    assert (main.rotation_enabled, main.rotation_period_days, main.description) == (True, 90, "orders data")
    assert main.tags == {"Environment": "prod", "ManagedBy": "terraform"}  # tags_all: with the provider's defaults
    assert json.loads(main.policy or "")["Statement"][0]["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
    trail_key = _key(world, "module.audit.aws_kms_key.trail")
    assert trail_key.arn == CTX.key_arn("module.audit.aws_kms_key.trail")
    assert {r.name for r in world.resources} == {"orders-logs", "jobs", "org-trail"}  # data sources are not objects


def test_after_unknown_values_are_unknowns_naming_the_attribute() -> None:
    key = _key(_world(), "module.audit.aws_kms_key.trail")
    assert key.policy == unknown("module.audit.aws_kms_key.trail.policy (known after apply)")


def test_references_in_the_configuration_resolve_unknown_key_refs_and_buckets() -> None:
    world = _world()
    main_arn = CTX.key_arn("aws_kms_key.main")
    # The encryption configuration's bucket (aws_s3_bucket.logs.id) and key (aws_kms_key.main.arn) are both
    # unknown in the plan: the configuration's references name them.
    bucket = next(r for r in world.resources if r.name == "orders-logs")
    assert (bucket.encryption, bucket.key_ref) == ("kms", main_arn)
    assert _key(world, "aws_kms_key.main").aliases == ["alias/orders"]  # target_key_id = aws_kms_key.main.key_id
    # In a child module, references are relative to it.
    group = next(r for r in world.resources if r.name == "org-trail")
    assert (group.encryption, group.key_ref) == ("kms", CTX.key_arn("module.audit.aws_kms_key.trail"))


def test_a_keys_real_id_in_the_plan_becomes_its_synthetic_id() -> None:
    queue = next(r for r in _world().resources if r.name == "jobs")
    assert (queue.encryption, queue.key_ref) == ("kms", "aws_kms_key.main")


def test_before_reads_the_prior_values_and_leaves_out_what_is_being_created() -> None:
    world = _world("before")
    [key] = world.keys
    assert key.key_id == "aws_kms_key.main" and key.rotation_enabled is False
    assert json.loads(key.policy or "")["Statement"][0]["Principal"] == "*"
    assert key.tags == {"Environment": "prod"}
    [queue] = world.resources  # the bucket, the log group and the module's key are being created
    assert (queue.name, queue.encryption, queue.key_ref) == ("jobs", "none", None)


def test_locations_are_the_first_address_line_of_each_resource() -> None:
    world = _world()
    for arn, address in (
        (CTX.key_arn("aws_kms_key.main"), "aws_kms_key.main"),
        (CTX.key_arn("module.audit.aws_kms_key.trail"), "module.audit.aws_kms_key.trail"),
        ("arn:aws:s3:::orders-logs", "aws_s3_bucket.logs"),
        (CTX.arn("logs", "log-group:org-trail"), "module.audit.aws_cloudwatch_log_group.trail"),
    ):
        assert world.locations[arn] == Location("plan/plan.json", _address_line(address), address)


def test_a_plan_cut_off_is_an_error_naming_the_line(tmp_path: Path) -> None:
    text = PLAN.read_text()
    cut = tmp_path / "plan.json"
    cut.write_text(text[: len(text) // 2])
    with pytest.raises(IacError) as e:
        load_terraform_plan(cut, "cut/plan.json", CTX)
    assert e.value.file == "cut/plan.json" and e.value.line is not None
    assert "not JSON" in e.value.message


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"format_version": "1.2", "planned_values": []}, "planned_values: expected an object"),
        (
            {"format_version": "1.2", "planned_values": {"root_module": {"resources": {}}}},
            "planned_values.root_module.resources: expected a list",
        ),
        (
            {"format_version": "1.2", "planned_values": {"root_module": {"resources": [{"address": 1}]}}},
            "planned_values.root_module.resources[0]: expected address, type and name strings",
        ),
        (
            {"format_version": "1.2", "resource_changes": [{"change": 3}]},
            "resource_changes[0].change: expected an object",
        ),
        ({"format_version": "1.2", "values": {}}, "not a Terraform plan"),
    ],
)
def test_a_plan_of_the_wrong_shape_is_an_error_naming_the_field(tmp_path: Path, doc: object, message: str) -> None:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(doc))
    side = "before" if "resource_changes" in json.dumps(doc) else "after"
    with pytest.raises(IacError) as e:
        load_terraform_plan(path, "p.json", CTX, side)  # type: ignore[arg-type]
    assert message in str(e.value)


def _minimal_plan(tmp_path: Path, expressions: dict[str, object], rtype: str = "aws_kms_key") -> Path:
    values = {"description": "k", "enable_key_rotation": True, "is_enabled": True, "key_usage": "ENCRYPT_DECRYPT"}
    resource = {"address": f"{rtype}.k", "mode": "managed", "type": rtype, "name": "k", "values": values}
    plan = {
        "format_version": "1.2",
        "terraform_version": "1.9.5",
        "planned_values": {"root_module": {"resources": [resource]}},
        "resource_changes": [
            {
                "address": f"{rtype}.k",
                "type": rtype,
                "name": "k",
                "change": {"actions": ["create"], "before": None, "after": values, "after_unknown": {"policy": True}},
            }
        ],
        "configuration": {
            "root_module": {"resources": [{"address": f"{rtype}.k", "type": rtype, "expressions": expressions}]}
        },
    }
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan, indent=2))
    return path


@pytest.mark.parametrize("rtype", ["aws_kms_key", "aws_kms_external_key"])
def test_a_key_whose_configuration_sets_no_policy_has_the_default_policy(tmp_path: Path, rtype: str) -> None:
    # Found by bench/checkov-compare.py: the plan shows such a key's policy as "known after apply" (AWS fills in the
    # default), and it was judged as any policy -- public, external, wildcard. An imported-material key too.
    world = _world(path=_minimal_plan(tmp_path, {"description": {"constant_value": "k"}}, rtype), rel="plan.json")
    assert _key(world, f"{rtype}.k").policy == default_key_policy(CTX.account, CTX.partition)


def test_a_key_whose_configuration_sets_a_policy_known_only_after_apply_keeps_it_unknown(tmp_path: Path) -> None:
    written = {"policy": {"references": ["var.policy"]}}
    world = _world(path=_minimal_plan(tmp_path, written), rel="plan.json")
    assert _key(world, "aws_kms_key.k").policy == unknown("aws_kms_key.k.policy (known after apply)")
