"""The CloudFormation loader's answers to a review of issue 15: unknown switches named on their object,
CommaDelimitedList defaults trimmed, odd intrinsic values refused or dropped rather than crashing, external
keys pending import, Fn::Select after an unknown piece of a Fn::Split, and numeric account ids in principals.

Each template is written by the test, so the expected values come from its text and AWS's documented rules.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from iac.test_cfn_loader import CTX, key_of, load, resources, single_world, statements
from kmsguard.config import ScanConfig
from kmsguard.iac import cfn_values
from kmsguard.iac.cfn import load_cloudformation
from kmsguard.iac.declared import IacError, unknown
from kmsguard.iac.judge import iac_checks, judge_unit
from kmsguard.model.finding import Status

_HEAD = 'AWSTemplateFormatVersion: "2010-09-09"\n'


def _write(tmp_path: Path, text: str) -> str:
    (tmp_path / "t.yaml").write_text(_HEAD + text, encoding="utf-8")
    return "t.yaml"


# --- 1. unknown switches read at their worst are named on their object --------------------------------------


def test_unknown_switches_are_recorded_as_assumed_on_their_object(tmp_path: Path) -> None:
    rel = _write(
        tmp_path,
        "Parameters:\n"
        "  Rot: {Type: String}\n"
        "  Enc: {Type: String}\n"
        "  Algo: {Type: String}\n"
        "Resources:\n"
        "  Key:\n"
        "    Type: AWS::KMS::Key\n"
        "    Properties:\n"
        "      EnableKeyRotation: !Ref Rot\n"
        "  Volume:\n"
        "    Type: AWS::EC2::Volume\n"
        "    Properties: {AvailabilityZone: us-east-1a, Size: 1, Encrypted: !Ref Enc}\n"
        "  Bucket:\n"
        "    Type: AWS::S3::Bucket\n"
        "    Properties:\n"
        "      BucketEncryption:\n"
        "        ServerSideEncryptionConfiguration:\n"
        "          - ServerSideEncryptionByDefault: {SSEAlgorithm: !Ref Algo}\n"
        "  Plain:\n"
        "    Type: AWS::KMS::Key\n",
    )
    world = single_world(load(rel, root=tmp_path))
    key, volume, bucket = key_of(world, "Key"), resources(world)["Volume"], resources(world)["Bucket"]
    assert key.rotation_enabled is False and volume.encryption == "none"  # the worst case, as before
    assert world.assumed == {
        key.arn: ["parameter Rot (no default)"],
        volume.arn: ["parameter Enc (no default)"],
        bucket.arn: ["parameter Algo (no default)"],
    }, "a known switch (Plain's defaults) assumes nothing"


def test_an_assumed_switch_is_named_in_the_finding_it_decides(tmp_path: Path) -> None:
    rel = _write(
        tmp_path,
        "Parameters:\n  Rot: {Type: String}\n"
        "Resources:\n  Key:\n    Type: AWS::KMS::Key\n    Properties: {EnableKeyRotation: !Ref Rot}\n",
    )
    unit = load(rel, root=tmp_path)
    findings = judge_unit(unit, CTX, ScanConfig(), iac_checks())
    (rotation,) = [f for f in findings if f.check_id == "key_rotation_disabled"]
    assert rotation.status is Status.FAIL
    assert "parameter Rot (no default)" in rotation.evidence["unknown_values"]


def test_trail_selectors_dropped_for_an_unknown_are_named(tmp_path: Path) -> None:
    rel = _write(
        tmp_path,
        "Parameters:\n  Rw: {Type: String}\n"
        "Resources:\n"
        "  Trail:\n"
        "    Type: AWS::CloudTrail::Trail\n"
        "    Properties:\n"
        "      S3BucketName: logs\n"
        "      IsLogging: true\n"
        "      EventSelectors: [{ReadWriteType: !Ref Rw}]\n",
    )
    world = single_world(load(rel, root=tmp_path))
    (trail,) = world.trails
    assert world.assumed == {trail.arn: ["parameter Rw (no default)"]}


# --- 2. CommaDelimitedList defaults ---------------------------------------------------------------------------


def test_comma_delimited_list_default_members_are_space_trimmed(tmp_path: Path) -> None:
    rel = _write(
        tmp_path,
        "Parameters:\n"
        "  Readers:\n"
        "    Type: CommaDelimitedList\n"
        '    Default: "arn:aws:iam::123456789012:root, arn:aws:iam::999999999999:root"\n'
        "Resources:\n"
        "  Key:\n"
        "    Type: AWS::KMS::Key\n"
        "    Properties:\n"
        "      KeyPolicy:\n"
        "        Version: '2012-10-17'\n"
        "        Statement:\n"
        "          - {Sid: Read, Effect: Allow, Principal: {AWS: !Ref Readers}, Action: 'kms:Decrypt',"
        " Resource: '*'}\n",
    )
    st = statements(key_of(single_world(load(rel, root=tmp_path)), "Key"))
    assert st["Read"]["Principal"]["AWS"] == ["arn:aws:iam::123456789012:root", "arn:aws:iam::999999999999:root"]


# --- 3. odd intrinsic values: an error naming file and line, or the right value -------------------------------


def test_select_with_an_infinite_index_is_an_error_at_the_resource(tmp_path: Path) -> None:
    rel = _write(
        tmp_path,
        "Resources:\n  Key:\n    Type: AWS::KMS::Key\n    Properties:\n      Description: !Select [.inf, [a]]\n",
    )
    with pytest.raises(IacError) as info:
        load_cloudformation(tmp_path / rel, rel, CTX)
    assert (info.value.file, info.value.line) == (rel, 3)
    assert "Fn::Select: the index must be a number, not inf" in info.value.message


def test_to_json_string_of_no_value_drops_the_property(tmp_path: Path) -> None:
    rel = _write(
        tmp_path,
        "Resources:\n  Key:\n    Type: AWS::KMS::Key\n    Properties:\n"
        '      Description: {"Fn::ToJsonString": {"Ref": "AWS::NoValue"}}\n'
        '      Tags: [{Key: doc, Value: {"Fn::ToJsonString": {a: [1, {"Ref": "AWS::NoValue"}]}}}]\n',
    )
    k = key_of(single_world(load(rel, root=tmp_path)), "Key")
    assert k.description is None
    assert k.tags == {"doc": json.dumps({"a": [1]}, separators=(",", ":"))}


def test_an_unexpected_error_resolving_properties_names_the_resource(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Resolving Properties used to sit outside the reader's handler, so a shape error there escaped as a
    traceback. The known ways in (above) are fixed at their source; no template reaches another, so an
    intrinsic function that fails the way those did is put in for this test."""

    def fails(_r: object, _arg: object) -> str:
        raise OverflowError("cannot convert float infinity to integer")

    monkeypatch.setitem(cfn_values._FUNCTIONS, "Fn::Fails", fails)
    rel = _write(
        tmp_path,
        "Resources:\n  Other:\n    Type: AWS::SNS::Topic\n  Key:\n    Type: AWS::KMS::Key\n    Properties:\n"
        "      Description: {Fn::Fails: x}\n",
    )
    with pytest.raises(IacError) as info:
        load_cloudformation(tmp_path / rel, rel, CTX)
    assert (info.value.file, info.value.line) == (rel, 5)
    assert info.value.message.startswith("resource Key: a property is not the shape CloudFormation expects")


# --- 4. external keys ---------------------------------------------------------------------------------------


def test_an_external_key_is_pending_import(tmp_path: Path) -> None:
    rel = _write(tmp_path, "Resources:\n  Ext:\n    Type: AWS::KMS::Key\n    Properties: {Origin: EXTERNAL}\n")
    k = key_of(single_world(load(rel, root=tmp_path)), "Ext")
    assert (k.origin, k.key_state, k.rotation_enabled) == ("EXTERNAL", "PendingImport", None)


# --- 5. Fn::Select after an unknown piece of Fn::Split --------------------------------------------------------


def test_select_after_an_unknown_split_piece_is_unknown(tmp_path: Path) -> None:
    rel = _write(
        tmp_path,
        "Parameters:\n  Unk: {Type: String}\n"
        "Resources:\n  Key:\n    Type: AWS::KMS::Key\n    Properties:\n"
        '      Description: !Select [1, !Split ["/", !Sub "${Unk}/a/b"]]\n'
        "      Tags:\n"
        '        - {Key: first, Value: !Select [1, !Split ["/", !Sub "x/y/${Unk}"]]}\n'
        '        - {Key: joined, Value: !Join ["-", !Split ["/", !Sub "${Unk}/a/b"]]}\n',
    )
    k = key_of(single_world(load(rel, root=tmp_path)), "Key")
    reason = "parameter Unk (no default)"
    assert k.description == unknown(reason), "the unknown may hold '/' itself: piece 1 could be anything"
    assert k.tags == {"first": "y", "joined": f"{unknown(reason)}-a-b"}, "pieces before any unknown stay known"


# --- 6. numeric account ids in principals -------------------------------------------------------------------


def test_a_numeric_account_id_principal_is_that_account(tmp_path: Path) -> None:
    rel = _write(
        tmp_path,
        "Resources:\n  Key:\n    Type: AWS::KMS::Key\n    Properties:\n      KeyPolicy:\n"
        "        Version: '2012-10-17'\n"
        "        Statement:\n"
        "          - {Sid: Root, Effect: Allow, Principal: {AWS: !Sub 'arn:aws:iam::${AWS::AccountId}:root'},"
        " Action: 'kms:*', Resource: '*'}\n"
        "          - {Sid: Other, Effect: Allow, Principal: {AWS: [111122223333]}, Action: 'kms:Decrypt',"
        " Resource: '*', Condition: {Bool: {'aws:SecureTransport': true}}}\n",
    )
    unit = load(rel, root=tmp_path)
    st = statements(key_of(single_world(unit), "Key"))
    assert st["Other"]["Principal"] == {"AWS": ["111122223333"]}
    assert st["Other"]["Condition"] == {"Bool": {"aws:SecureTransport": True}}, "other fields are left alone"
    findings = judge_unit(unit, CTX, ScanConfig(), iac_checks())
    (external,) = [f for f in findings if f.check_id == "key_policy_external_access"]
    assert external.status is Status.FAIL
    assert "111122223333" in json.dumps(external.evidence)
