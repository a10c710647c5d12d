"""The CloudFormation template passes cfn-lint and deploys the handler this package really has."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import yaml

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "cloudformation" / "monitor.yaml"


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_multi_constructor("!", lambda loader, suffix, node: None)


def test_template_lints_and_points_at_the_handler() -> None:
    lint = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), str(TEMPLATE)], capture_output=True, text=True
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    doc = yaml.load(TEMPLATE.read_text(), Loader=_Loader)
    fn = doc["Resources"]["MonitorFunction"]["Properties"]
    module, _, attr = fn["Handler"].rpartition(".")
    assert callable(getattr(importlib.import_module(module), attr))
    kinds = {r["Type"] for r in doc["Resources"].values()}
    assert {"AWS::Lambda::Function", "AWS::IAM::Role", "AWS::Events::Rule", "AWS::SNS::Topic"} <= kinds
    rule = doc["Resources"]["KmsEventsRule"]["Properties"]["EventPattern"]
    assert {"PutKeyPolicy", "ScheduleKeyDeletion", "DisableKey", "DisableKeyRotation", "CreateGrant"} <= set(
        rule["detail"]["eventName"]
    )
