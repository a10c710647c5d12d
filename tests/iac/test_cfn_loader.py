"""The CloudFormation loader on real templates (tests/iac/data/cloudformation): values, worlds, lines, mapping.

Expected values come from the template text, the context (account, Region, partition) and the live
collectors' own conventions (their default-key constants), never from the loader's output. The helpers at
the top are shared with test_cfn_hostile.py and test_cfn_lint.py.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from kmsguard import arn as arns
from kmsguard.collect import dynamodb, s3, secretsmanager
from kmsguard.iac.cfn import load_cloudformation
from kmsguard.iac.declared import Declared, IacContext, Unit, unknown
from kmsguard.model.snapshot import Key
from kmsguard.policy.defaults import default_key_policy
from kmsguard.provision import templates
from kmsguard.provision.spec import KeySpec

DATA = Path(__file__).parent / "data" / "cloudformation"
CTX = IacContext(account="123456789012", region="us-east-1")


def load(rel: str, ctx: IacContext = CTX, root: Path = DATA) -> Unit:
    unit = load_cloudformation(root / rel, rel, ctx)
    assert unit is not None, f"{rel} was not taken for a template"
    assert (unit.kind, unit.file) == ("cloudformation", rel)
    return unit


def single_world(unit: Unit) -> Declared:
    assert [w.label for w in unit.worlds] == [""], "a template without deploy-time conditions has one world"
    return unit.worlds[0]


def line_of(path: Path, needle: str) -> int:
    """The 1-based line of the first line of ``path`` that starts (after indentation) with ``needle``."""
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if text.lstrip().startswith(needle):
            return number
    raise AssertionError(f"{needle!r} is not in {path}")


def key_of(world: Declared, key_id: str) -> Key:
    found = [k for k in world.keys if k.key_id == key_id]
    assert len(found) == 1, f"{key_id}: {[k.key_id for k in world.keys]}"
    return found[0]


def statements(k: Key) -> dict[str, dict[str, Any]]:
    assert k.policy is not None
    return {st.get("Sid", str(i)): st for i, st in enumerate(json.loads(k.policy)["Statement"])}


def resources(world: Declared) -> dict[str, Any]:
    """Logical id -> the resource read from it (through the locations, which name the logical id)."""
    return {world.locations[r.arn].resource: r for r in world.resources}


def iam_arn(ctx: IacContext, resource: str) -> str:
    return ctx.arn("iam", resource, regional=False)


# --- intrinsic functions everywhere a value can be ----------------------------------------------------------


def test_intrinsics_in_key_policy_principals_and_conditions() -> None:
    k = key_of(single_world(load("intrinsics.yaml")), "Key")
    st = statements(k)
    assert len(st) == 6, "no statement is dropped, whatever it holds"
    assert st["Root"]["Principal"]["AWS"] == arns.root_arn(CTX.account, CTX.partition)  # Fn::Sub of pseudo params
    # Fn::Join of pseudo parameters and a parameter's default
    assert st["Admin"]["Principal"]["AWS"] == iam_arn(CTX, "role/KeyAdmin")
    # Fn::GetAtt of a role whose name is a Fn::Sub of a parameter, under its Path
    assert st["App"]["Principal"]["AWS"] == iam_arn(CTX, "role/apps/prod-app")
    app = st["App"]["Condition"]["StringEquals"]
    assert app["kms:ViaService"] == f"s3.{CTX.region}.amazonaws.com"  # ${AWS::Region}, ${AWS::URLSuffix}
    assert app["kms:EncryptionContext:app"] == "app-writer"  # Fn::Select of a CommaDelimitedList default
    # Fn::Sub with a variable map whose value is a Fn::FindInMap keyed by a parameter
    assert st["Partner"]["Principal"]["AWS"] == "arn:aws:iam::444455556666:root"
    # A parameter without a default and an import stay unknown, naming the value, in place
    assert st["Audit"]["Principal"]["AWS"] == f"arn:aws:iam::{unknown('parameter AuditAccount (no default)')}:root"
    assert st["Audit"]["Condition"]["StringEquals"]["aws:PrincipalOrgID"] == unknown("Fn::ImportValue SharedOrgId")
    literal = st["Literal"]["Condition"]["StringNotEquals"]
    assert literal["aws:PrincipalArn"] == f"arn:aws:iam::{CTX.account}:role/${{NotAVariable}}"  # "${!x}" is "${x}"
    assert literal["aws:SourceVpce"] == "vpce-1111"  # Fn::Select of Fn::Split


def test_intrinsics_in_tags_description_and_aliases() -> None:
    k = key_of(single_world(load("intrinsics.yaml")), "Key")
    assert k.description == f"key for prod {CTX.region}"  # Fn::Join of a parameter and AWS::Region
    assert k.aliases == ["alias/prod-data"]  # AliasName Fn::Sub; TargetKeyId Fn::GetAtt Key.KeyId
    assert k.tags["Environment"] == "prod"
    assert k.tags["Team"] == "platform"  # Fn::FindInMap keyed by the account id (YAML reads it as a number)
    assert k.tags["Stack"] == unknown("AWS::StackName")
    assert "parameter LatestAmi (SSM parameter /aws/service/" in k.tags["Image"]  # resolved by SSM at deploy
    assert k.tags["Encoded"] == base64.b64encode(b"hello").decode()


def test_key_references_are_kept_as_written() -> None:
    world = single_world(load("intrinsics.yaml"))
    refs = {rid: r.key_ref for rid, r in resources(world).items()}
    assert refs == {
        "ByKeyId": "Key",  # Ref of a key: its key id, the logical id
        "ByKeyArn": CTX.key_arn("Key"),  # Fn::GetAtt Key.Arn
        "ByAlias": CTX.arn("kms", "alias/prod-data"),  # Fn::Sub of the alias resource's Ref
        "ByImport": unknown("Fn::ImportValue SharedKeyArn"),
        "ByAliasRef": "alias/prod-data",  # Ref of an alias resource
    }
    assert all(r.key_arn is None for r in world.resources), "the builder resolves references, not the loader"
    assert resources(world)["ByImport"].tags == {"Owner": unknown("parameter AuditAccount (no default)")}
    assert resources(world)["ByAlias"].name == "/app/prod"


def test_values_follow_the_context_partition_account_and_region() -> None:
    gov = IacContext(account="123456789012", region="us-gov-west-1")
    world = single_world(load("intrinsics.yaml", gov))
    k = key_of(world, "Key")
    st = statements(k)
    assert k.arn == gov.key_arn("Key") and k.arn.startswith("arn:aws-us-gov:kms:us-gov-west-1:")
    assert st["Root"]["Principal"]["AWS"] == arns.root_arn(gov.account, "aws-us-gov")
    assert st["App"]["Principal"]["AWS"] == iam_arn(gov, "role/apps/prod-app")
    assert st["App"]["Condition"]["StringEquals"]["kms:ViaService"] == "s3.us-gov-west-1.amazonaws.com"
    assert resources(world)["ByKeyArn"].key_ref == gov.key_arn("Key")


def test_long_form_json_with_fn_if_and_no_value() -> None:
    unit = load("long_form.json")
    worlds = {w.label: w for w in unit.worlds}
    assert set(worlds) == {"IsProd=true", "IsProd=false"}
    prod, dev = worlds["IsProd=true"], worlds["IsProd=false"]
    assert key_of(prod, "Key").rotation_enabled is True and key_of(dev, "Key").rotation_enabled is False
    trusted = statements(key_of(prod, "Key"))["Trusted"]
    assert trusted["Principal"]["AWS"] == f"arn:aws:iam::{unknown('parameter TrustedAccount (no default)')}:root"
    assert list(statements(key_of(dev, "Key"))) == ["Root"], "Fn::If to AWS::NoValue removes the statement"
    # Topic has Condition IsProd; its key is Fn::Select 0 of Fn::Split of a Fn::Sub with a variable map
    assert resources(prod)["Topic"].key_ref == "Key"
    assert "Topic" not in resources(dev)
    for world in (prod, dev):
        assert resources(world)["Queue"].encryption == "none"  # SqsManagedSseEnabled false, no key
        assert resources(world)["LogGroup"].key_ref == CTX.key_arn("Key")


def test_short_forms_and_references_to_each_kind_of_resource() -> None:
    unit = load("short_forms.yaml")
    # Stage has AllowedValues [blue, green, red]: Stage==blue and Stage==green (inside a Fn::Or) cannot both
    # hold, and with both false Stage is red.
    worlds = {w.label: w for w in unit.worlds}
    stages = {
        "Stage==blue=true, Stage==green=false": "blue",
        "Stage==blue=false, Stage==green=true": "green",
        "Stage==blue=false, Stage==green=false": "red",
    }
    assert set(worlds) == set(stages)
    for label, stage in stages.items():
        world = worlds[label]
        k = key_of(world, "Key")
        worker = statements(k)["Worker"]
        assert worker["Principal"]["AWS"] == iam_arn(CTX, "role/WorkerRole")  # !GetAtt [Res, Attr]
        bucket_arn = f"arn:{CTX.partition}:s3:::logs-{stage}"
        assert worker["Condition"]["ArnLike"]["aws:SourceArn"] == [
            bucket_arn,  # !GetAtt Bucket.Arn
            f"{bucket_arn}/*",  # ${Bucket.Arn} in a Fn::Sub
            CTX.arn("lambda", "function:worker"),
        ]
        equals = worker["Condition"]["StringEquals"]
        assert equals["kms:EncryptionContext:bucket"] == f"logs-{stage}"  # Ref of a bucket: its name
        assert equals["aws:SourceVpc"] == unknown("Ref Vpc (known after deploy)")  # a type without a name rule
        assert k.tags == {"Subnet": unknown("Fn::Cidr"), "Zone": unknown("Fn::GetAZs"), "Colour": stage}
        topic = resources(world)["Topic"]
        if stage == "red":  # KmsMasterKeyId is AWS::NoValue: the property is not there
            assert (topic.encryption, topic.key_ref) == ("none", None)
        else:
            assert (topic.encryption, topic.key_ref) == ("kms", "Key")


def test_values_only_known_after_deploy_or_not_declared_are_unknowns_naming_them(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(
        "Resources:\n"
        "  Key:\n"
        "    Type: AWS::KMS::Key\n"
        "    Properties:\n"
        "      Description: !Ref Nowhere\n"
        "      Tags:\n"
        "        - {Key: a, Value: !GetAtt Vpc.VpcId}\n"
        "        - {Key: b, Value: !Transform {Name: AWS::Include, Parameters: {Location: s3://b/t.yaml}}}\n"
        "        - {Key: c, Value: !Sub '${AWS::StackId}/${Nowhere.Arn}'}\n"
        "        - {Key: d, Value: !ImportValue {'Fn::Sub': '${AWS::StackName}-Key'}}\n"
        "  Vpc:\n"
        "    Type: AWS::EC2::VPC\n",
        encoding="utf-8",
    )
    k = key_of(single_world(load("t.yaml", root=tmp_path)), "Key")
    assert k.description == unknown("Ref Nowhere (not declared)")
    assert k.tags == {
        "a": unknown("Fn::GetAtt Vpc.VpcId (known after deploy)"),
        "b": unknown("Fn::Transform AWS::Include"),
        "c": f"{unknown('AWS::StackId')}/{unknown('Fn::GetAtt Nowhere.Arn (not declared)')}",
        "d": unknown("Fn::ImportValue <AWS::StackName>-Key"),
    }


# --- lines --------------------------------------------------------------------------------------------------


def test_lines_in_yaml_are_those_of_the_logical_ids() -> None:
    path = DATA / "resources.yaml"
    world = single_world(load("resources.yaml"))
    assert len(world.locations) == len(world.keys) + len(world.resources) + len(world.trails) + len(
        world.iam_policies
    ) + len(world.alarms)
    for arn, loc in world.locations.items():
        assert loc.file == "resources.yaml"
        assert loc.line == line_of(path, f"{loc.resource}:"), arn


def test_lines_in_json_come_from_its_tokens() -> None:
    """Strings holding "Resources", a Metadata mapping with its own "Resources", a key written with an escape
    and two resources on one line: each line is still that of the logical id under the top-level Resources."""
    path = DATA / "long_form.json"
    for world in load("long_form.json").worlds:
        lines = {loc.resource: loc.line for loc in world.locations.values()}
        assert lines["Key"] == line_of(path, '"Key": {')
        assert lines["LogGroup"] == line_of(path, '"Log\\u0047roup"')
        assert lines["Queue"] == line_of(path, '"Queue"')
        if "Topic" in lines:
            assert lines["Topic"] == lines["Queue"], "written on the same line"


# --- worlds -------------------------------------------------------------------------------------------------


def _label(world: Declared, suffix: str = "") -> dict[str, bool]:
    parts = world.label.removesuffix(suffix).split(", ")
    return {part.rsplit("=", 1)[0]: part.endswith("=true") for part in parts}


def test_both_branches_of_every_condition_are_judged_in_consistent_worlds() -> None:
    unit = load("worlds.yaml")
    labels = [_label(w) for w in unit.worlds]
    # Four atoms (IsProd, IsDev, UseCmk, Partner==""); Env has AllowedValues [prod, dev], so exactly one of
    # IsProd and IsDev holds: 2 x 2 x 2 worlds. InEast compares constants and NeverUsed decides nothing.
    assert len(unit.worlds) == 8 and len({w.label for w in unit.worlds}) == 8
    assert all(set(lab) == {"IsProd", "IsDev", "UseCmk", 'Partner==""'} for lab in labels)
    assert all(lab["IsProd"] != lab["IsDev"] for lab in labels)
    for world, lab in zip(unit.worlds, labels, strict=True):
        env = "prod" if lab["IsProd"] else "dev"  # the parameter takes the value its world implies
        k = key_of(world, "Key")
        assert k.aliases == [f"alias/{env}/data"]
        assert k.rotation_enabled is lab["IsProd"]
        assert k.tags == {"Environment": "development" if lab["IsDev"] else "prod"}
        shared = statements(k).get("1")
        if lab['Partner==""']:
            assert shared is None
        else:
            assert shared is not None
            assert shared["Principal"]["AWS"] == f"arn:aws:iam::{unknown('parameter Partner (no default)')}:root"
        found = resources(world)
        assert found["Bucket"].name == f"data-{env}-{CTX.account}"
        if lab["UseCmk"]:
            assert (found["Bucket"].encryption, found["Bucket"].key_ref) == ("kms", CTX.key_arn("Key"))
        else:
            assert (found["Bucket"].encryption, found["Bucket"].key_ref) == ("aws-owned", None)
        assert ("ProdTopic" in found) is (lab["IsProd"] and lab["UseCmk"]), "a resource whose Condition is false"
        assert "EastQueue" in found  # InEast: AWS::Region is the context's


def test_a_condition_on_constants_is_evaluated_not_enumerated() -> None:
    west = IacContext(account=CTX.account, region="eu-west-1")
    unit = load("worlds.yaml", west)
    assert len(unit.worlds) == 8
    assert all("EastQueue" not in resources(w) for w in unit.worlds)


def test_at_most_five_conditions_are_enumerated_the_rest_at_their_defaults() -> None:
    unit = load("many_conditions.yaml")
    assert len(unit.worlds) == 32 and len({w.label for w in unit.worlds}) == 32
    for world in unit.worlds:
        assert world.label.endswith(" (+2 conditions at their defaults)")
        lab = _label(world, suffix=" (+2 conditions at their defaults)")
        assert set(lab) == {f"On{i}" for i in range(1, 6)}
        present = set(resources(world))
        assert present == {f"Queue{i}" for i in range(1, 6) if lab[f"On{i}"]}, "On6, On7 keep their default: off"


def test_a_template_without_conditions_has_one_unlabelled_world() -> None:
    assert len(single_world(load("resources.yaml")).keys) == 6


# --- resources, as the live collectors read them ------------------------------------------------------------


def test_keys_follow_the_key_collector() -> None:
    world = single_world(load("resources.yaml"))
    default = key_of(world, "DefaultPolicyKey")
    assert default.policy == default_key_policy(CTX.account, CTX.partition), "no KeyPolicy: the default one"
    assert (default.key_manager, default.key_state, default.key_spec, default.key_usage, default.origin) == (
        "CUSTOMER",
        "Enabled",
        "SYMMETRIC_DEFAULT",
        "ENCRYPT_DECRYPT",
        "AWS_KMS",
    )
    assert (default.multi_region, default.rotation_enabled, default.rotation_period_days) == (False, False, None)
    signing = key_of(world, "SigningKey")
    assert (signing.key_spec, signing.key_usage, signing.key_state) == ("RSA_2048", "SIGN_VERIFY", "Disabled")
    assert signing.rotation_enabled is None, "rotation does not apply to an asymmetric key"
    imported = key_of(world, "ImportedKey")
    assert (imported.origin, imported.multi_region, imported.rotation_enabled) == ("EXTERNAL", True, None)
    unknown_rotation = key_of(world, "UnknownRotationKey")
    # EnableKeyRotation is a parameter without a default: the worst case, off
    assert (unknown_rotation.rotation_enabled, unknown_rotation.rotation_period_days) == (False, 90)
    assert json.loads(unknown_rotation.policy or "")["Statement"][0]["Principal"]["AWS"] == (
        f"arn:aws:iam::{CTX.account}:root"
    ), "a KeyPolicy given as JSON text (Fn::Sub) is read as a document"
    primary = key_of(world, "PrimaryKey")
    assert primary.aliases == ["alias/another", "alias/primary"]  # by Ref and by Fn::GetAtt Arn
    assert (primary.rotation_enabled, primary.rotation_period_days, primary.multi_region) == (True, 180, True)
    replica = key_of(world, "Replica")
    assert replica.multi_region is True
    assert (replica.rotation_enabled, replica.rotation_period_days) == (True, 180), "rotates with its primary"
    assert statements(replica)["0"]["Principal"]["AWS"] == f"arn:aws:iam::{CTX.account}:root"  # its own policy
    for k in world.keys:
        assert (k.arn, k.account, k.region) == (CTX.key_arn(k.key_id), CTX.account, CTX.region)


def test_data_stores_follow_their_collectors() -> None:
    world = single_world(load("resources.yaml"))
    primary = CTX.key_arn("PrimaryKey")
    expected = {
        # S3: no configuration means SSE-S3 (AWS's default since 2023); aws:kms without a key its managed key
        "PlainBucket": ("s3", "AWS::S3::Bucket", "aws-owned", None),
        "SseS3Bucket": ("s3", "AWS::S3::Bucket", "aws-owned", None),
        "ManagedKeyBucket": ("s3", "AWS::S3::Bucket", "kms", s3.DEFAULT_KEY),
        "CmkBucket": ("s3", "AWS::S3::Bucket", "kms", "PrimaryKey"),
        "TrailBucket": ("s3", "AWS::S3::Bucket", "aws-owned", None),
        "PlainVolume": ("ebs", "AWS::EC2::Volume", "none", None),
        "DefaultKeyVolume": ("ebs", "AWS::EC2::Volume", "kms", "alias/aws/ebs"),
        "CmkVolume": ("ebs", "AWS::EC2::Volume", "kms", primary),
        "PlainDb": ("rds", "AWS::RDS::DBInstance", "none", None),
        "EncryptedDb": ("rds", "AWS::RDS::DBInstance", "kms", "alias/aws/rds"),
        "Cluster": ("rds", "AWS::RDS::DBCluster", "kms", "PrimaryKey"),
        "ClusterMember": ("rds", "AWS::RDS::DBInstance", "kms", "PrimaryKey"),  # its cluster's volume
        "DefaultSecret": ("secretsmanager", "AWS::SecretsManager::Secret", "kms", secretsmanager.DEFAULT_KEY),
        "CmkSecret": ("secretsmanager", "AWS::SecretsManager::Secret", "kms", "alias/primary"),
        "DefaultTable": ("dynamodb", "AWS::DynamoDB::Table", "aws-owned", None),
        "ManagedKeyTable": ("dynamodb", "AWS::DynamoDB::Table", "kms", dynamodb.DEFAULT_KEY),
        "GlobalTable": ("dynamodb", "AWS::DynamoDB::GlobalTable", "kms", primary),  # this Region's replica
        "PlainTopic": ("sns", "AWS::SNS::Topic", "none", None),
        "CmkTopic": ("sns", "AWS::SNS::Topic", "kms", "PrimaryKey"),
        "AlarmTopic": ("sns", "AWS::SNS::Topic", "kms", "alias/aws/sns"),
        "DefaultQueue": ("sqs", "AWS::SQS::Queue", "aws-owned", None),  # SSE-SQS is on by default
        "PlainQueue": ("sqs", "AWS::SQS::Queue", "none", None),
        "CmkQueue": ("sqs", "AWS::SQS::Queue", "kms", "alias/primary"),
        "PlainLogs": ("logs", "AWS::Logs::LogGroup", "aws-owned", None),
        "TrailLogs": ("logs", "AWS::Logs::LogGroup", "kms", primary),
    }
    found = {rid: (r.service, r.resource_type, r.encryption, r.key_ref) for rid, r in resources(world).items()}
    assert found == expected
    by_id = resources(world)
    assert (by_id["PlainBucket"].name, by_id["PlainBucket"].arn) == (
        "plainbucket",
        f"arn:{CTX.partition}:s3:::plainbucket",
    )
    assert by_id["SseS3Bucket"].arn == f"arn:{CTX.partition}:s3:::sse-s3-bucket"
    assert by_id["ManagedKeyBucket"].tags == {"DataClassification": "CUI"}
    assert by_id["EncryptedDb"].arn == CTX.arn("rds", "db:Encrypted-DB")
    assert by_id["CmkQueue"].arn == CTX.arn("sqs", "cmk-queue")
    assert by_id["TrailLogs"].arn == CTX.arn("logs", "log-group:cloudtrail/main")
    assert by_id["GlobalTable"].tags == {"Owner": "data"}
    assert all((r.account, r.region) == (CTX.account, CTX.region) for r in world.resources)


def test_audit_set_up_follows_the_cloudtrail_cloudwatch_and_config_collectors() -> None:
    world = single_world(load("resources.yaml"))
    trails = {t.name: t for t in world.trails}
    main = trails["main"]
    assert main.arn == CTX.arn("cloudtrail", "trail/main") and main.home_region == CTX.region
    assert (main.is_multi_region, main.log_file_validation_enabled, main.is_logging) == (True, True, True)
    assert main.cloudwatch_logs_log_group_arn == CTX.arn("logs", "log-group:cloudtrail/main") + ":*"
    assert main.kms_key_id == "alias/primary"
    # No selectors declared: CloudTrail records every management event
    assert (main.kms_writes_recorded, main.kms_reads_recorded, main.kms_events_excluded) == (True, True, False)
    read_only = trails["ReadOnlyTrail"]
    assert read_only.is_logging is False
    assert (read_only.kms_writes_recorded, read_only.kms_reads_recorded) == (False, True)
    no_kms = trails["NoKmsTrail"]
    assert (no_kms.kms_events_excluded, no_kms.kms_writes_recorded) == (True, False)
    [mf] = world.metric_filters
    assert (mf.log_group_name, mf.name) == ("cloudtrail/main", "kms-key-policy-changes")
    assert mf.metrics == [("CloudTrailMetrics", "KmsKeyPolicyChanges")] and "PutKeyPolicy" in mf.pattern
    [alarm] = world.alarms
    assert alarm.arn == CTX.arn("cloudwatch", "alarm:kms-key-policy-changes")
    assert (alarm.metric_name, alarm.period, alarm.evaluation_periods, alarm.threshold) == (
        "KmsKeyPolicyChanges",
        300,
        1,
        1.0,
    )
    assert alarm.alarm_actions == [CTX.arn("sns", "security-alarms")]  # Ref of a topic: its ARN
    [rule] = world.config_rules
    assert (rule.name, rule.source_owner, rule.source_identifier, rule.state) == (
        "RotationRule",
        "AWS",
        "CMK_BACKING_KEY_ROTATION_ENABLED",
        "ACTIVE",
    )


def test_identity_policies_managed_and_inline_with_their_principals() -> None:
    world = single_world(load("resources.yaml"))
    role, group, user = iam_arn(CTX, "role/TrailRole"), iam_arn(CTX, "group/Readers"), iam_arn(CTX, "user/operator")
    external = iam_arn(CTX, "role/external-role")
    managed = iam_arn(CTX, "policy/kms/decrypt-all")
    found = {(p.arn, p.name, p.kind, tuple(p.attached_to)) for p in world.iam_policies}
    assert found == {
        (f"{role}/inline/deliver", "deliver", "inline", (role,)),  # AWS::IAM::Role Policies
        (f"{group}/inline/describe", "describe", "inline", (group,)),  # AWS::IAM::Group Policies
        (f"{role}/inline/operate", "operate", "inline", (role,)),  # AWS::IAM::Policy, one per principal
        (f"{user}/inline/operate", "operate", "inline", (user,)),
        (f"{external}/inline/operate", "operate", "inline", (external,)),  # a role the template does not declare
        (f"{role}/inline/encrypt", "encrypt", "inline", (role,)),  # AWS::IAM::RolePolicy
        (managed, "decrypt-all", "managed", tuple(sorted([group, role]))),  # Groups, and the role's ManagedPolicyArns
    }
    operate = next(p for p in world.iam_policies if p.arn == f"{user}/inline/operate")
    assert json.loads(operate.document)["Statement"][0]["Resource"] == CTX.key_arn("PrimaryKey")


# --- the guide's key, CDK output, and files that are not templates ------------------------------------------

GUIDE = KeySpec(
    account=CTX.account,
    alias="alias/production-encryption-2026",
    admins=[f"arn:aws:iam::{CTX.account}:role/KeyAdmin"],
    users=[f"arn:aws:iam::{CTX.account}:role/app"],
    environment="Production",
    data_classification="CUI",
    owner="security",
    cost_center="cc-1",
    rotation_days=180,
)


@pytest.mark.parametrize("form", ["json", "yaml"])
def test_the_guides_key_as_provision_writes_it(tmp_path: Path, form: str) -> None:
    text = templates.cloudformation(GUIDE)
    if form == "yaml":
        text = yaml.safe_dump(json.loads(text), sort_keys=False)
    path = tmp_path / f"guide.{form}"
    path.write_text(text, encoding="utf-8")
    world = single_world(load(path.name, root=tmp_path))
    k = key_of(world, "Key")
    assert json.loads(k.policy or "") == GUIDE.policy()
    assert (k.key_spec, k.key_usage, k.multi_region, k.origin) == (
        "SYMMETRIC_DEFAULT",
        "ENCRYPT_DECRYPT",
        False,
        "AWS_KMS",
    )
    assert (k.rotation_enabled, k.rotation_period_days) == (True, GUIDE.rotation_days)
    assert k.tags == GUIDE.tags() and k.aliases == [GUIDE.alias]
    assert k.description == GUIDE.full_description()
    needle = '"Key": {' if form == "json" else "Key:"
    assert world.locations[k.arn].line == line_of(path, needle)


def test_cdk_output_keeps_logical_ids() -> None:
    rel = "cdk.out/KmsStack.template.json"
    world = single_world(load(rel))  # CDKMetadataAvailable compares AWS::Region with constants
    k = key_of(world, "DataKey6F1C4B2A")
    reader = iam_arn(CTX, "role/ReaderRoleB3E0C5D1")
    principals = [st["Principal"]["AWS"] for st in statements(k).values()]
    assert principals == [arns.root_arn(CTX.account, CTX.partition), reader]
    assert k.aliases == ["alias/cdk-data"] and k.rotation_enabled is True
    [bucket] = world.resources
    assert (bucket.encryption, bucket.key_ref) == ("kms", k.arn)
    [policy] = world.iam_policies
    assert (policy.arn, policy.attached_to) == (f"{reader}/inline/ReaderRoleDefaultPolicy1A2B3C4D", [reader])
    assert world.locations[k.arn].line == line_of(DATA / rel, '"DataKey6F1C4B2A": {')
    assert world.locations[k.arn].file == rel


@pytest.mark.parametrize(
    "rel",
    [
        "cdk.out/manifest.json",
        "cdk.out/tree.json",
        "cdk.out/KmsStack.assets.json",
        *sorted(p.relative_to(DATA).as_posix() for p in (DATA / "not_templates").rglob("*") if p.is_file()),
    ],
)
def test_files_that_are_not_templates_give_none(rel: str) -> None:
    assert load_cloudformation(DATA / rel, rel, CTX) is None


def test_resources_with_a_type_make_a_template_without_a_format_version(tmp_path: Path) -> None:
    (tmp_path / "bare.json").write_text('{"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}}', encoding="utf-8")
    world = single_world(load("bare.json", root=tmp_path))
    assert [(r.name, r.encryption) for r in world.resources] == [("Q", "aws-owned")]
