"""ASFF checked the way Security Hub takes it: BatchImportFindings against the moto server, then GetFindings."""

from __future__ import annotations

import json
from typing import Any

from report_sample import make_result, sample_findings

from kmsguard.cli.export import import_findings
from kmsguard.demo.emulator import Emulator
from kmsguard.model.finding import Finding, Status
from kmsguard.model.result import ScanResult
from kmsguard.report import render
from kmsguard.report.asff import asff_findings


def _many(n: int) -> ScanResult:
    base = sample_findings()
    out: list[Finding] = []
    for i in range(n):
        f = base[i % len(base)]
        out.append(f.model_copy(update={"resource_arn": f"{f.resource_arn}-{i}"}))
    return make_result(out)


def _all_findings(client: Any) -> list[dict[str, Any]]:
    return [f for page in client.get_paginator("get_findings").paginate() for f in page["Findings"]]


def test_batch_import_round_trip_in_batches_of_100(aws: Emulator, client: Any) -> None:
    result = _many(230)
    sent = asff_findings(result, "us-east-1")
    sh = client("securityhub", "us-east-1")
    calls: list[int] = []
    original = sh.batch_import_findings

    def counting(**kw: Any) -> Any:
        calls.append(len(kw["Findings"]))
        return original(**kw)

    sh.batch_import_findings = counting
    outcome = import_findings(sh, sent)
    assert calls == [100, 100, 30]
    assert outcome.imported == 230 and not outcome.failed
    got = {g["Id"]: g for g in _all_findings(sh)}
    assert set(got) == {s["Id"] for s in sent}
    for s in sent:
        g = got[s["Id"]]
        for k in (
            "ProductArn",
            "GeneratorId",
            "AwsAccountId",
            "Title",
            "Description",
            "Severity",
            "Resources",
            "Compliance",
            "Workflow",
            "Types",
        ):
            assert g[k] == s[k], k


def test_rejected_findings_are_reported(aws: Emulator, client: Any) -> None:
    sent = asff_findings(_many(3), "us-east-1")
    sent[1]["Resources"] = []  # Security Hub refuses a finding without a resource
    outcome = import_findings(client("securityhub", "us-east-1"), sent)
    assert outcome.imported == 2
    assert [f["Id"] for f in outcome.failed] == [sent[1]["Id"]]


def test_asff_maps_status_mutes_and_limits(result: ScanResult) -> None:
    docs = json.loads(render(result, "asff"))
    by_status = {d["ProductFields"]["kmsguard/status"]: d for d in docs}
    muted = by_status["MUTED"]
    assert muted["Workflow"]["Status"] == "SUPPRESSED"
    src = next(f for f in result.findings if f.status is Status.MUTED)
    assert muted["Note"]["Text"] == f"muted: {src.mute_reason}"
    assert by_status["PASS"]["Compliance"]["Status"] == "PASSED"
    assert by_status["FAIL"]["Compliance"]["Status"] == "FAILED"
    assert by_status["ERROR"]["Compliance"]["Status"] == "NOT_AVAILABLE"
    for d in docs:
        assert len(d["Title"]) <= 256 and len(d["Description"]) <= 1024
        assert d["Id"].startswith(f"kmsguard/{d['AwsAccountId']}/")
        assert len(d["Compliance"].get("RelatedRequirements", [])) <= 32
