"""The Terraform loader (kmsguard.iac.terraform): .tf directories to the Snapshot's model objects.

The .tf files under tests/iac/data/terraform/ were written for these tests. Terraform itself cannot be installed
here (no network to its releases), so nothing is checked against `terraform validate`; the files follow the
AWS provider's documented arguments. What the loader must give is stated per test: AWS's defaults where a
template is silent, the collectors' conventions (collect/*.py), synthetic identities from IacContext, and
unknowns that name the value nobody can know before apply.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from kmsguard.iac.declared import Declared, IacContext, Location, Unit, unknown, unknowns_in
from kmsguard.iac.terraform import MAX_CONDITIONS, load_terraform_dir
from kmsguard.model.snapshot import Key, Resource
from kmsguard.policy.defaults import default_key_policy
from kmsguard.provision.spec import KeySpec
from kmsguard.provision.templates import terraform as terraform_template

DATA = Path(__file__).parent / "data" / "terraform"
CTX = IacContext()
ACCOUNT = CTX.account


def _load(case: str, ctx: IacContext = CTX) -> Unit:
    return load_terraform_dir(DATA / case, f"terraform/{case}", ctx)


def _only(unit: Unit) -> Declared:
    assert len(unit.worlds) == 1 and unit.worlds[0].label == ""
    return unit.worlds[0]


def _key(world: Declared, address: str) -> Key:
    return next(k for k in world.keys if k.key_id == address)


def _resource(world: Declared, name: str) -> Resource:
    return next(r for r in world.resources if r.name == name)


def _policy(key: Key) -> dict[str, Any]:
    assert key.policy is not None
    doc = json.loads(key.policy)
    assert isinstance(doc, dict)
    return doc


def _statement(doc: dict[str, Any], sid: str) -> dict[str, Any]:
    return next(s for s in doc["Statement"] if s.get("Sid") == sid)


def _line(path: Path, needle: str) -> int:
    """The 1-based line of the first line of ``path`` containing ``needle`` (how a reader finds it)."""
    return next(i for i, text in enumerate(path.read_text().splitlines(), 1) if needle in text)


def _role(name: str, ctx: IacContext = CTX, path: str = "/") -> str:
    return ctx.arn("iam", f"role{path}{name}", regional=False)


# --- the guide's key, as kmsguard provision writes it --------------------------------------------------------


SPEC = KeySpec(
    account=ACCOUNT,
    alias="alias/production-encryption-2026",
    admins=[f"arn:aws:iam::{ACCOUNT}:role/KeyAdmin"],
    users=[f"arn:aws:iam::{ACCOUNT}:role/app"],
    environment="Production",
    data_classification="CUI",
    owner="security",
    cost_center="cc-1",
    rotation_days=180,
    require_context={"app": "ledger"},
    created=date(2026, 1, 2),
)


def test_the_guides_key_as_provision_writes_it_loads_as_the_key_it_creates(tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text(terraform_template(SPEC))
    world = _only(load_terraform_dir(tmp_path, ".", CTX))
    [key] = world.keys
    address = "aws_kms_key.production_encryption_2026"
    assert key.key_id == address and key.arn == CTX.key_arn(address)
    assert (key.account, key.region, key.key_manager, key.key_state) == (ACCOUNT, "us-east-1", "CUSTOMER", "Enabled")
    assert (key.key_spec, key.key_usage, key.origin, key.multi_region) == (
        "SYMMETRIC_DEFAULT",
        "ENCRYPT_DECRYPT",
        "AWS_KMS",
        False,
    )
    assert (key.rotation_enabled, key.rotation_period_days) == (True, 180)
    assert key.description == SPEC.full_description()
    assert key.aliases == [SPEC.alias]
    assert key.tags == SPEC.tags()
    assert _policy(key) == SPEC.policy()  # the heredoc, indentation removed, is the generated policy
    assert world.locations == {key.arn: Location("main.tf", 1, address)}


# --- values: variables, tfvars, locals, data sources, references ---------------------------------------------


def test_variables_tfvars_and_locals_resolve_as_terraform_resolves_them() -> None:
    world = _only(_load("refs"))
    key = _key(world, "aws_kms_key.data")
    # terraform.tfvars sets environment=prod, billing.auto.tfvars app_name=billing; staging.tfvars needs
    # -var-file and is not applied.
    assert key.description == "Data key for billing-prod"
    assert key.aliases == ["alias/billing-prod"]
    assert key.tags["Environment"] == "prod" and key.tags["Owner"] == "SECURITY" and key.tags["Name"] == "billing-prod"


def test_a_variable_without_a_default_is_an_unknown_where_it_lands_in_the_policy() -> None:
    doc = _policy(_key(_only(_load("refs")), "aws_kms_key.data"))
    assert _statement(doc, "Admin")["Principal"] == {"AWS": unknown("var.admin_arn (no default)")}
    assert _statement(doc, "Admin")["Action"] == ["kms:Describe*", "kms:Put*"]  # the rest is kept as written


def test_references_resolve_in_principals_conditions_key_refs_and_tags() -> None:
    ctx = IacContext(account="111122223333", region="eu-west-1")
    world = _only(_load("refs", ctx))
    key = _key(world, "aws_kms_key.data")
    doc = _policy(key)
    # data.aws_partition / aws_caller_identity -> the context; aws_iam_role.app.arn -> the role's synthetic ARN.
    assert _statement(doc, "Root")["Principal"] == {"AWS": "arn:aws:iam::111122223333:root"}
    via = _statement(doc, "ViaS3")
    assert via["Principal"] == {"AWS": _role("billing-prod-app", ctx)}
    assert via["Condition"] == {
        "StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com", "kms:CallerAccount": "111122223333"}
    }
    bucket = _resource(world, "billing-prod-data")
    assert (bucket.arn, bucket.encryption, bucket.key_ref) == (
        "arn:aws:s3:::billing-prod-data",
        "kms",
        ctx.key_arn("aws_kms_key.data"),
    )
    assert bucket.key_arn is None  # the Snapshot builder resolves references
    assert bucket.tags == {"Environment": "prod", "Owner": "SECURITY"}
    # An attribute AWS computes at apply: an unknown naming it, even in a tag.
    assert key.tags["Endpoint"] == unknown("aws_s3_bucket.data.bucket_domain_name (known after apply)")


def test_an_alias_and_a_grant_attach_to_the_key_they_name() -> None:
    key = _key(_only(_load("refs")), "aws_kms_key.data")
    assert key.aliases == ["alias/billing-prod"]
    [grant] = key.grants
    assert grant.grant_id == "aws_kms_grant.app" and grant.name == "app-decrypt"
    assert grant.grantee_principal == _role("billing-prod-app")
    assert grant.operations == ["Decrypt", "GenerateDataKey"]
    assert grant.constraints == {"EncryptionContextEquals": {"app": "billing"}}


def test_an_alias_name_is_a_key_ref_and_module_outputs_are_unknown() -> None:
    world = _only(_load("refs"))
    topic = next(r for r in world.resources if r.service == "sns")
    assert (topic.encryption, topic.key_ref) == ("kms", "alias/billing-prod")
    assert unknowns_in(topic.name) == ["module.network.topic_name (module outputs are not followed)"]


def test_the_partition_follows_the_region() -> None:
    ctx = IacContext(region="us-gov-west-1")
    key = _key(_only(_load("refs", ctx)), "aws_kms_key.data")
    assert key.arn.startswith("arn:aws-us-gov:kms:us-gov-west-1:")
    assert _statement(_policy(key), "Root")["Principal"] == {"AWS": f"arn:aws-us-gov:iam::{ACCOUNT}:root"}


# --- policies: aws_iam_policy_document, aws_kms_key_policy, heredocs, the default ------------------------------


def test_a_policy_document_renders_the_json_the_provider_produces() -> None:
    doc = _policy(_key(_only(_load("policydoc")), "aws_kms_key.main"))
    admin = _role("KeyAdmin", path="/security/")
    assert doc["Version"] == "2012-10-17" and doc["Id"] == "key-policy"
    assert doc["Statement"] == [
        {
            "Sid": "Root",
            "Effect": "Allow",
            "Action": "kms:*",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Resource": "*",
        },
        {
            "Sid": "Admins",
            "Effect": "Allow",
            "Action": ["kms:Describe*", "kms:Put*"],  # repeated action written once
            "Principal": {"AWS": [admin, f"arn:aws:iam::{ACCOUNT}:role/BreakGlass"]},  # two blocks, one type
            "Resource": "*",
        },
        {
            "Sid": "AnyoneInTheOrganization",
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Principal": "*",
            "Resource": "*",
            "Condition": {
                "StringEquals": {
                    "aws:PrincipalOrgID": unknown("var.org_id (no default)"),
                    "kms:CallerAccount": ACCOUNT,
                }
            },
        },
        {
            "Sid": "OnlyDecryptForOthers",
            "Effect": "Deny",
            "NotAction": "kms:Decrypt",
            "NotPrincipal": {"AWS": admin},
            "Resource": "*",
        },
        {
            "Sid": "Reader0",  # a dynamic statement, one per element of var.readers
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/reader"},
            "Resource": "*",
        },
    ]


def test_aws_kms_key_policy_replaces_the_keys_policy_and_heredocs_interpolate() -> None:
    world = _only(_load("policydoc"))
    doc = _policy(_key(world, "aws_kms_key.other"))
    [st] = doc["Statement"]
    assert st["Principal"] == {"AWS": _role("KeyAdmin", path="/security/")}
    # $${ is Terraform's escape: the IAM policy variable reaches the policy as written.
    assert st["Condition"] == {"StringEquals": {"aws:username": "${aws:username}"}}


def test_a_key_without_a_policy_gets_the_default_key_policy() -> None:
    key = _key(_only(_load("policydoc")), "aws_kms_key.plain")
    assert key.policy == default_key_policy(ACCOUNT, "aws")


def test_jsonencode_of_a_local_and_functions_on_known_values(tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text(
        """
locals {
  principals = concat(["arn:aws:iam::123456789012:role/a"], tolist(["arn:aws:iam::123456789012:role/b"]))
  statement  = {
    Sid       = format("%s-%d", "Use", 1)
    Effect    = "Allow"
    Principal = { AWS = local.principals }
    Action    = [for a in ["Decrypt", "Encrypt"] : "kms:${a}"]
    Resource  = "*"
    Condition = {
      StringEquals = merge(
        { "kms:CallerAccount" = "123456789012" },
        { "kms:ViaService" = lower("S3.US-EAST-1.AMAZONAWS.COM") },
      )
    }
  }
  policy = jsonencode({ Version = "2012-10-17", Statement = [local.statement] })
}

resource "aws_kms_key" "k" {
  policy = local.policy
  tags = {
    Joined  = join(",", toset(["a", "b", "a"]))
    First   = coalesce("", null, "x")
    Unknown = lookup(var.missing, "k", "d")
  }
}
"""
    )
    key = _only(load_terraform_dir(tmp_path, ".", CTX)).keys[0]
    assert _policy(key)["Statement"] == [
        {
            "Sid": "Use-1",
            "Effect": "Allow",
            "Principal": {"AWS": ["arn:aws:iam::123456789012:role/a", "arn:aws:iam::123456789012:role/b"]},
            "Action": ["kms:Decrypt", "kms:Encrypt"],
            "Resource": "*",
            "Condition": {
                "StringEquals": {"kms:CallerAccount": "123456789012", "kms:ViaService": "s3.us-east-1.amazonaws.com"}
            },
        }
    ]
    assert key.tags["Joined"] == "a,b" and key.tags["First"] == "x"
    # A function of an unknown is unknown, naming the call and the value behind it.
    assert unknowns_in(key.tags["Unknown"]) == [
        "lookup(var.missing, 'k', 'd') (var.missing (not declared))",
    ]


def test_an_unknown_whole_policy_stays_one_unknown(tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text('variable "policy" {}\nresource "aws_kms_key" "k" {\n  policy = var.policy\n}\n')
    key = _only(load_terraform_dir(tmp_path, ".", CTX)).keys[0]
    assert key.policy == unknown("var.policy (no default)")


# --- every mapped resource, as the collectors read it -------------------------------------------------------


def test_keys_spec_origin_and_rotation_as_collect_kms_reads_them() -> None:
    world = _only(_load("resources"))
    app = _key(world, "aws_kms_key.app")
    assert (app.rotation_enabled, app.rotation_period_days) == (False, None)  # not declared: off
    assert app.policy == default_key_policy(ACCOUNT, "aws")
    assert app.aliases == ["alias/app"]
    signing = _key(world, "aws_kms_key.signing")
    assert (signing.key_spec, signing.key_usage, signing.rotation_enabled) == ("RSA_2048", "SIGN_VERIFY", None)
    imported = _key(world, "aws_kms_external_key.imported")
    assert (imported.origin, imported.key_state, imported.rotation_enabled) == ("EXTERNAL", "PendingImport", None)


def test_provider_default_tags_are_under_the_resources_own_tags() -> None:
    world = _only(_load("resources"))
    assert _key(world, "aws_kms_key.app").tags == {"ManagedBy": "terraform", "Team": "payments"}
    assert _key(world, "aws_kms_key.signing").tags == {}  # provider = aws.west has no default_tags
    # collect/logs.py and collect/ssm.py do not read tags: neither does the loader.
    assert _resource(world, "cloudtrail").tags == {}


@pytest.mark.parametrize(
    ("name", "rtype", "arn", "encryption", "key_ref"),
    [
        ("plain-bucket", "AWS::S3::Bucket", "arn:aws:s3:::plain-bucket", "aws-owned", None),
        ("legacy-bucket", "AWS::S3::Bucket", "arn:aws:s3:::legacy-bucket", "kms", "alias/aws/s3"),
        ("aws_s3_bucket.unnamed", "AWS::S3::Bucket", "arn:aws:s3:::aws_s3_bucket.unnamed", "aws-owned", None),
        ("aws_ebs_volume.plain", "AWS::EC2::Volume", "ec2:volume/aws_ebs_volume.plain", "none", None),
        ("aws_ebs_volume.cmk", "AWS::EC2::Volume", "ec2:volume/aws_ebs_volume.cmk", "kms", "key:aws_kms_key.app"),
        ("orders", "AWS::RDS::DBInstance", "rds:db:orders", "kms", "alias/aws/rds"),
        ("aurora", "AWS::RDS::DBCluster", "rds:cluster:aurora", "kms", "key:aws_kms_key.app"),
        ("aurora-1", "AWS::RDS::DBInstance", "rds:db:aurora-1", "kms", "key:aws_kms_key.app"),
        (
            "db-password",
            "AWS::SecretsManager::Secret",
            "secretsmanager:secret:db-password",
            "kms",
            "alias/aws/secretsmanager",
        ),
        ("plain", "AWS::DynamoDB::Table", "dynamodb:table/plain", "aws-owned", None),
        ("managed", "AWS::DynamoDB::Table", "dynamodb:table/managed", "kms", "alias/aws/dynamodb"),
        ("alerts", "AWS::SNS::Topic", "sns:alerts", "none", None),
        ("default", "AWS::SQS::Queue", "sqs:default", "aws-owned", None),
        ("off", "AWS::SQS::Queue", "sqs:off", "none", None),
        ("cmk", "AWS::SQS::Queue", "sqs:cmk", "kms", "alias/app"),
        ("cloudtrail", "AWS::Logs::LogGroup", "logs:log-group:cloudtrail", "kms", "key:aws_kms_key.app"),
        ("db/password", "AWS::SSM::Parameter", "ssm:parameter/db/password", "kms", "alias/aws/ssm"),
    ],
)
def test_each_data_store_reads_as_its_collector_reads_it(
    name: str, rtype: str, arn: str, encryption: str, key_ref: str | None
) -> None:
    res = _resource(_only(_load("resources")), name)
    service, _, rest = arn.partition(":")
    expected_arn = arn if arn.startswith("arn:") else CTX.arn(service, rest)
    expected_ref = CTX.key_arn(key_ref.removeprefix("key:")) if key_ref and key_ref.startswith("key:") else key_ref
    assert (res.resource_type, res.arn, res.encryption, res.key_ref) == (rtype, expected_arn, encryption, expected_ref)
    assert (res.account, res.region) == (ACCOUNT, "us-east-1")


def test_a_string_parameter_is_not_collected() -> None:
    assert not [r for r in _only(_load("resources")).resources if r.name == "db/host"]


def test_region_ebs_default_encryption_and_key_apply_to_volumes_of_the_unit() -> None:
    world = _only(_load("ebs_default"))
    key_arn = CTX.key_arn("aws_kms_key.ebs")
    assert (world.ebs_encryption_by_default, world.ebs_default_key_ref) == (True, key_arn)
    [volume] = world.resources
    assert (volume.encryption, volume.key_ref) == ("kms", key_arn)


def test_trails_selectors_metric_filters_alarms_and_config_rules() -> None:
    world = _only(_load("resources"))
    main = next(t for t in world.trails if t.name == "org-trail")
    assert main.arn == CTX.arn("cloudtrail", "trail/org-trail") and main.home_region == "us-east-1"
    assert (main.is_multi_region, main.log_file_validation_enabled, main.is_logging) == (True, True, True)
    assert main.cloudwatch_logs_log_group_arn == CTX.arn("logs", "log-group:cloudtrail") + ":*"
    assert main.kms_key_id == CTX.key_arn("aws_kms_key.app")
    # exclude_management_event_sources = ["kms.amazonaws.com"]: management events logged, KMS's are not.
    assert (main.logs_management_events, main.kms_events_excluded, main.kms_writes_recorded) == (True, True, False)
    quiet = next(t for t in world.trails if t.name == "quiet")
    # No selector declared: AWS's default records every management event; enable_logging = false.
    assert (quiet.is_logging, quiet.kms_writes_recorded, quiet.kms_reads_recorded) == (False, True, True)
    [mf] = world.metric_filters
    assert (mf.log_group_name, mf.name, mf.metrics) == (
        "cloudtrail",
        "kms-key-changes",
        [("CISBenchmark", "KmsKeyChanges")],
    )
    assert "ScheduleKeyDeletion" in mf.pattern
    [alarm] = world.alarms
    assert alarm.metric_name == "KmsKeyChanges"  # read through the filter's metric_transformation block
    assert (alarm.period, alarm.threshold, alarm.actions_enabled) == (300, 1.0, True)
    assert alarm.alarm_actions == [CTX.arn("sns", "alerts")]
    [rule] = world.config_rules
    assert (rule.source_owner, rule.source_identifier, rule.state) == (
        "AWS",
        "CMK_BACKING_KEY_ROTATION_ENABLED",
        "ACTIVE",
    )


def test_identity_policies_managed_and_inline_with_what_they_are_attached_to() -> None:
    world = _only(_load("resources"))
    by_arn = {p.arn: p for p in world.iam_policies}
    role, user, group = (
        _role("app"),
        CTX.arn("iam", "user/team/ops", regional=False),
        CTX.arn("iam", "group/admins", regional=False),
    )
    managed = by_arn[CTX.arn("iam", "policy/security/kms-admin", regional=False)]
    assert (managed.kind, managed.name) == ("managed", "kms-admin")
    assert managed.attached_to == sorted([role, user, group])
    assert json.loads(managed.document)["Statement"] == [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]
    for principal, name in ((role, "decrypt"), (role, "app-inline"), (user, "ops-inline"), (group, "admins-inline")):
        inline = by_arn[f"{principal}/inline/{name}"]
        assert (inline.kind, inline.attached_to) == ("inline", [principal])
    decrypt = json.loads(by_arn[f"{role}/inline/decrypt"].document)
    assert decrypt["Statement"][0]["Resource"] == CTX.key_arn("aws_kms_key.app")
    assert len(world.iam_policies) == 5  # the AWS managed ReadOnlyAccess attachment adds no document


# --- locations -----------------------------------------------------------------------------------------------


def test_every_object_is_located_at_its_block_in_its_own_file() -> None:
    world = _only(_load("resources"))
    assert world.locations[CTX.key_arn("aws_kms_key.app")] == Location(
        "terraform/resources/storage.tf",
        _line(DATA / "resources/storage.tf", 'resource "aws_kms_key" "app"'),
        "aws_kms_key.app",
    )
    trail_arn = CTX.arn("cloudtrail", "trail/org-trail")
    assert world.locations[trail_arn] == Location(
        "terraform/resources/audit.tf",
        _line(DATA / "resources/audit.tf", 'resource "aws_cloudtrail" "main"'),
        "aws_cloudtrail.main",
    )
    role = _role("app")
    assert world.locations[f"{role}/inline/decrypt"].resource == "aws_iam_role.app"
    # Every key, resource, trail and IAM policy has a location; nothing else is listed.
    arns = [k.arn for k in world.keys] + [r.arn for r in world.resources] + [t.arn for t in world.trails]
    arns += [p.arn for p in world.iam_policies] + [a.arn for a in world.alarms if a.arn]
    assert sorted(world.locations) == sorted(arns)
    for loc in world.locations.values():
        path = DATA.parent / loc.file
        kind, _, name = loc.resource.partition(".")
        assert _line(path, f'resource "{kind}" "{name}"') == loc.line


def test_the_root_directory_locates_files_by_name_alone(tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text('\n\nresource "aws_kms_key" "k" {}\n')
    world = _only(load_terraform_dir(tmp_path, ".", CTX))
    assert world.locations[CTX.key_arn("aws_kms_key.k")] == Location("main.tf", 3, "aws_kms_key.k")


# --- worlds --------------------------------------------------------------------------------------------------


def test_each_deploy_time_condition_makes_worlds_and_count_zero_removes_a_resource() -> None:
    unit = _load("worlds")
    by_label = {w.label: w for w in unit.worlds}
    assert list(by_label) == [
        "var.use_cmk=true, var.replicate=true",
        "var.use_cmk=true, var.replicate=false",
        "var.use_cmk=false, var.replicate=true",
        "var.use_cmk=false, var.replicate=false",
    ]  # var.debug only counts a resource kmsguard does not map: no worlds for it
    for world in unit.worlds:
        assert "aws_kms_key.never" not in {k.key_id for k in world.keys}
    cmk = by_label["var.use_cmk=true, var.replicate=false"]
    assert [k.key_id for k in cmk.keys] == ["aws_kms_key.main"]
    assert (_resource(cmk, "logs").encryption, _resource(cmk, "logs").key_ref) == (
        "kms",
        CTX.key_arn("aws_kms_key.main"),
    )
    no_cmk = by_label["var.use_cmk=false, var.replicate=false"]
    assert no_cmk.keys == [] and (_resource(no_cmk, "logs").encryption, _resource(no_cmk, "logs").key_ref) == (
        "aws-owned",
        None,
    )
    replica = _key(by_label["var.use_cmk=true, var.replicate=true"], "aws_kms_replica_key.dr")
    # A replica shares its primary's rotation; it is multi-Region by nature.
    assert (replica.multi_region, replica.rotation_enabled, replica.rotation_period_days) == (True, True, 365)


def test_for_each_is_one_instance_at_the_plain_address_with_each_unknown() -> None:
    world = _load("worlds").worlds[0]
    [topic] = [r for r in world.resources if r.service == "sns"]
    assert world.locations[topic.arn].resource == "aws_sns_topic.each"
    assert unknowns_in(topic.name) == ["each.key (aws_sns_topic.each for_each)"]
    assert topic.key_ref == CTX.key_arn("aws_kms_key.main")  # one(aws_kms_key.main[*].arn)


def test_a_unit_without_conditions_has_one_world_with_an_empty_label() -> None:
    assert [w.label for w in _load("resources").worlds] == [""]


def test_more_conditions_than_the_limit_take_their_defaults_and_say_so(tmp_path: Path) -> None:
    n = MAX_CONDITIONS + 1
    body = "".join(
        f'variable "c{i}" {{\n  default = {"true" if i == n - 1 else "false"}\n}}\n'
        f'resource "aws_sqs_queue" "q{i}" {{\n  name = var.c{i} ? "on{i}" : "off{i}"\n}}\n'
        for i in range(n)
    )
    (tmp_path / "main.tf").write_text(body)
    worlds = load_terraform_dir(tmp_path, ".", CTX).worlds
    assert len(worlds) == 2**MAX_CONDITIONS
    assert worlds[0].label == ", ".join(f"var.c{i}=true" for i in range(MAX_CONDITIONS)) + (
        " (+1 conditions at their defaults)"
    )
    # The sixth condition is not enumerated: every world has its value under the defaults (true).
    assert all(any(r.name == f"on{n - 1}" for r in w.resources) for w in worlds)
    assert len({tuple(sorted(r.name for r in w.resources)) for w in worlds}) == 2**MAX_CONDITIONS


def test_a_condition_on_an_unknown_makes_worlds_and_one_on_constants_does_not(tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text(
        """
locals {
  mode = "strict"
}

resource "aws_kms_key" "k" {
  description         = local.mode == "strict" ? "constant condition" : "never"
  enable_key_rotation = aws_s3_bucket.b.website_endpoint != "" ? true : false
}

resource "aws_s3_bucket" "b" {
  bucket = "b"
}
"""
    )
    unit = load_terraform_dir(tmp_path, ".", CTX)
    cond = 'aws_s3_bucket.b.website_endpoint != ""'
    assert [w.label for w in unit.worlds] == [f"{cond}=true", f"{cond}=false"]
    assert [w.keys[0].rotation_enabled for w in unit.worlds] == [True, False]
    assert {w.keys[0].description for w in unit.worlds} == {"constant condition"}


def test_a_variable_a_ternary_tests_has_the_worlds_value_where_it_is_read_bare(tmp_path: Path) -> None:
    # Found by bench/checkov-compare.py: `encrypted = var.use_cmk` was read at the default while the ternary beside it
    # took the world's value, so the world use_cmk=false had an encrypted volume under no key.
    (tmp_path / "main.tf").write_text(
        'variable "use_cmk" {\n  default = true\n}\n'
        'resource "aws_kms_key" "k" {}\n'
        'resource "aws_ebs_volume" "v" {\n'
        '  availability_zone = "us-east-1a"\n'
        "  size              = 1\n"
        "  encrypted         = var.use_cmk\n"
        "  kms_key_id        = var.use_cmk ? aws_kms_key.k.arn : null\n"
        "}\n"
    )
    unit = load_terraform_dir(tmp_path, ".", CTX)
    by_label = {w.label: _resource(w, "aws_ebs_volume.v") for w in unit.worlds}
    assert {label: (r.encryption, r.key_ref) for label, r in by_label.items()} == {
        "var.use_cmk=true": ("kms", CTX.key_arn("aws_kms_key.k")),
        "var.use_cmk=false": ("none", None),
    }


# --- review of issue 15: worst-case reads named, deploy-time counts, overrides, S3 rules ----------------------


def _write(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def test_an_unknown_switch_read_at_its_worst_is_named_on_its_object(tmp_path: Path) -> None:
    world = _only(
        load_terraform_dir(
            _write(
                tmp_path,
                {
                    "main.tf": 'variable "rot" {}\nvariable "enc" {}\nvariable "spec" {}\nvariable "store" {}\n'
                    'resource "aws_kms_key" "k" {\n'
                    "  enable_key_rotation      = var.rot\n"
                    "  customer_master_key_spec = var.spec\n"
                    "  custom_key_store_id      = var.store\n"
                    "}\n"
                    'resource "aws_ebs_volume" "v" {\n'
                    '  availability_zone = "us-east-1a"\n'
                    "  encrypted         = var.enc\n"
                    "}\n"
                },
            ),
            ".",
            CTX,
        )
    )
    key, volume = _key(world, "aws_kms_key.k"), _resource(world, "aws_ebs_volume.v")
    # Each is read at its worst (a symmetric key, rotation off; an unencrypted volume), and says so.
    assert (key.key_spec, key.origin, key.rotation_enabled, volume.encryption) == (
        "SYMMETRIC_DEFAULT",
        "AWS_KMS",
        False,
        "none",
    )
    assert world.assumed == {
        key.arn: ["var.store (no default)", "var.spec (no default)", "var.rot (no default)"],
        volume.arn: ["var.enc (no default)"],
    }


def test_known_switches_and_an_encrypted_volume_rest_on_no_unknown(tmp_path: Path) -> None:
    world = _only(
        load_terraform_dir(
            _write(
                tmp_path,
                {
                    "main.tf": 'variable "enc" {}\n'
                    'resource "aws_ebs_encryption_by_default" "on" {\n  enabled = true\n}\n'
                    'resource "aws_kms_key" "k" {\n  enable_key_rotation = true\n}\n'
                    'resource "aws_ebs_volume" "v" {\n'
                    '  availability_zone = "us-east-1a"\n'
                    "  encrypted         = var.enc\n"
                    "}\n"
                },
            ),
            ".",
            CTX,
        )
    )
    # The Region encrypts every new volume: the unknown `encrypted` changes nothing, so nothing rests on it.
    assert _resource(world, "aws_ebs_volume.v").encryption == "kms"
    assert world.assumed == {}


@pytest.mark.parametrize(
    ("meta", "variable", "atom"),
    [
        ("count = var.n", 'variable "n" {\n  default = 0\n}\n', "count(aws_kms_key.k)>0"),
        ("count = length(var.l)", 'variable "l" {\n  default = []\n}\n', "count(aws_kms_key.k)>0"),
        ("for_each = var.m", 'variable "m" {\n  default = {}\n}\n', "for_each(aws_kms_key.k) non-empty"),
        ("count = var.n", 'variable "n" {}\n', "count(aws_kms_key.k)>0"),
    ],
)
def test_a_count_or_for_each_from_deploy_time_input_makes_worlds_with_and_without_the_resource(
    tmp_path: Path, meta: str, variable: str, atom: str
) -> None:
    _write(tmp_path, {"main.tf": f'{variable}resource "aws_kms_key" "k" {{\n  {meta}\n}}\n'})
    unit = load_terraform_dir(tmp_path, ".", CTX)
    assert {w.label: [k.key_id for k in w.keys] for w in unit.worlds} == {
        f"{atom}=true": ["aws_kms_key.k"],
        f"{atom}=false": [],
    }


def test_a_count_of_literal_zero_or_a_ternary_makes_no_world_of_its_own(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "main.tf": 'variable "create" {\n  default = false\n}\n'
            'resource "aws_kms_key" "never" {\n  count = 0\n}\n'
            'resource "aws_kms_key" "maybe" {\n  count = var.create ? 1 : 0\n}\n'
        },
    )
    unit = load_terraform_dir(tmp_path, ".", CTX)
    # var.create is the only atom: the count it chooses is known in each world.
    assert {w.label: [k.key_id for k in w.keys] for w in unit.worlds} == {
        "var.create=true": ["aws_kms_key.maybe"],
        "var.create=false": [],
    }


def test_count_index_stands_for_every_instance_unless_the_count_is_one(tmp_path: Path) -> None:
    external = "arn:aws:iam::999999999999:root"
    _write(
        tmp_path,
        {
            "main.tf": 'variable "readers" {\n'
            f'  default = ["arn:aws:iam::{ACCOUNT}:root", "{external}"]\n'
            "}\n"
            'resource "aws_kms_key" "k" {\n'
            "  count  = length(var.readers)\n"
            "  policy = jsonencode({\n"
            '    Version   = "2012-10-17"\n'
            "    Statement = [{\n"
            '      Effect = "Allow", Action = "kms:Decrypt", Resource = "*"\n'
            "      Principal = { AWS = var.readers[count.index] }\n"
            "    }]\n"
            "  })\n"
            "}\n"
            'resource "aws_kms_key" "one" {\n'
            "  count       = 1\n"
            '  description = "key-${count.index}"\n'
            "}\n"
        },
    )
    [world] = [w for w in load_terraform_dir(tmp_path, ".", CTX).worlds if w.label == "count(aws_kms_key.k)>0=true"]
    # Not the first reader only (this account): any of them, the external account's too.
    principal = _policy(_key(world, "aws_kms_key.k"))["Statement"][0]["Principal"]["AWS"]
    assert unknowns_in(principal) == ["var.readers[count.index] (count.index (aws_kms_key.k count))"]
    assert _key(world, "aws_kms_key.one").description == "key-0"


_TRAIL = 'variable "x" {}\nresource "aws_cloudtrail" "t" {\n  name = "t"\n  s3_bucket_name = "b"\n%s}\n'


@pytest.mark.parametrize(
    "selector",
    [
        "  event_selector {\n    read_write_type = var.x\n  }\n",
        "  event_selector {\n    exclude_management_event_sources = [var.x]\n  }\n",
        "  advanced_event_selector {\n"
        '    field_selector {\n      field = "eventCategory"\n      equals = ["Management"]\n    }\n'
        '    field_selector {\n      field = "eventSource"\n      not_equals = [var.x]\n    }\n'
        "  }\n",
    ],
    ids=["read_write_type", "exclude_management_event_sources", "advanced_not_equals"],
)
def test_a_trail_selector_holding_an_unknown_is_left_out_and_the_trail_says_why(tmp_path: Path, selector: str) -> None:
    world = _only(load_terraform_dir(_write(tmp_path, {"main.tf": _TRAIL % selector}), ".", CTX))
    [trail] = world.trails
    # It cannot be relied on to record KMS's events (the CloudFormation loader reads it the same way).
    assert (trail.kms_writes_recorded, trail.kms_reads_recorded) == (False, False)
    assert world.assumed[trail.arn] == ["var.x (no default)"]


def test_a_trail_selector_without_unknowns_is_kept(tmp_path: Path) -> None:
    selector = '  event_selector {\n    read_write_type = "All"\n  }\n'
    world = _only(load_terraform_dir(_write(tmp_path, {"main.tf": _TRAIL % selector}), ".", CTX))
    assert (world.trails[0].kms_writes_recorded, world.trails[0].kms_reads_recorded) == (True, True)
    assert world.assumed == {}


_PUBLIC = '{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*"}]}'
_PRIVATE = (
    '{"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, '
    '"Action": "kms:*", "Resource": "*"}]}'
)


@pytest.mark.parametrize("override", ["override.tf", "keys_override.tf"])
def test_an_override_file_merges_into_the_block_it_overrides(tmp_path: Path, override: str) -> None:
    _write(
        tmp_path,
        {
            "main.tf": 'resource "aws_kms_key" "k" {\n'
            '  description         = "kept"\n'
            "  enable_key_rotation = true\n"
            f"  policy              = {json.dumps(_PRIVATE)}\n"
            "}\n"
            'locals {\n  name = "original"\n}\n'
            'resource "aws_sqs_queue" "q" {\n  name = local.name\n}\n',
            # Sorts before main.tf, and is still read after it.
            override: f'resource "aws_kms_key" "k" {{\n  policy = {json.dumps(_PUBLIC)}\n}}\n'
            'locals {\n  name = "overridden"\n}\n',
        },
    )
    world = _only(load_terraform_dir(tmp_path, ".", CTX))
    key = _key(world, "aws_kms_key.k")
    assert _policy(key) == json.loads(_PUBLIC)
    assert (key.description, key.rotation_enabled) == ("kept", True)  # arguments it does not set are kept
    assert world.locations[key.arn] == Location("main.tf", 1, "aws_kms_key.k")
    assert [r.name for r in world.resources] == ["overridden"]


def test_an_override_files_nested_blocks_replace_all_the_originals_of_their_type(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "main.tf": 'resource "aws_s3_bucket" "b" {\n  bucket = "b"\n}\n'
            'resource "aws_s3_bucket_server_side_encryption_configuration" "b" {\n'
            "  bucket = aws_s3_bucket.b.id\n"
            "  rule {\n    apply_server_side_encryption_by_default {\n"
            '      sse_algorithm = "aws:kms"\n'
            "    }\n  }\n"
            "  rule {\n    bucket_key_enabled = true\n  }\n"
            "}\n",
            "override.tf": 'resource "aws_s3_bucket_server_side_encryption_configuration" "b" {\n'
            "  rule {\n    apply_server_side_encryption_by_default {\n"
            '      sse_algorithm = "AES256"\n'
            "    }\n  }\n"
            "}\n",
        },
    )
    bucket = _resource(_only(load_terraform_dir(tmp_path, ".", CTX)), "b")
    assert (bucket.encryption, bucket.key_ref) == ("aws-owned", None)


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("", ("aws-owned", None)),  # only bucket_key_enabled: SSE-S3, the floor since January 2023
        ('sse_algorithm = var.alg\n      kms_master_key_id = "alias/x"', ("unknown", None)),
    ],
    ids=["no_algorithm", "unknown_algorithm"],
)
@pytest.mark.parametrize("style", ["resource", "inline"])
def test_s3_rules_read_as_the_cloudformation_loader_reads_them(
    tmp_path: Path, algorithm: str, expected: tuple[str, str | None], style: str
) -> None:
    by_default = f"    apply_server_side_encryption_by_default {{\n      {algorithm}\n    }}\n" if algorithm else ""
    rule = f"  rule {{\n    bucket_key_enabled = true\n{by_default}  }}\n"
    if style == "resource":
        main = (
            'resource "aws_s3_bucket" "b" {\n  bucket = "b"\n}\n'
            'resource "aws_s3_bucket_server_side_encryption_configuration" "b" {\n'
            f"  bucket = aws_s3_bucket.b.id\n{rule}}}\n"
        )
    else:
        main = (
            'resource "aws_s3_bucket" "b" {\n  bucket = "b"\n'
            f"  server_side_encryption_configuration {{\n{rule}  }}\n}}\n"
        )
    world = _only(load_terraform_dir(_write(tmp_path, {"main.tf": 'variable "alg" {}\n' + main}), ".", CTX))
    bucket = _resource(world, "b")
    assert (bucket.encryption, bucket.key_ref) == expected
    assert world.assumed == ({bucket.arn: ["var.alg (no default)"]} if "var.alg" in algorithm else {})
