"""Event selectors: each selector judged as a whole against KMS write and read events (CloudTrail logs an event
when it matches ANY selector; the field conditions of one advanced selector are ANDed).

The collector is run against the moto server: moto 5.2.5 stores and returns AdvancedEventSelectors from
PutEventSelectors as given (it does not validate them), and basic EventSelectors with
ExcludeManagementEventSources, so no Stubber is needed for these paths.
"""

from __future__ import annotations

from typing import Any

import pytest

from kmsguard.aws.options import AwsOptions
from kmsguard.collect.cloudtrail import apply_selectors
from kmsguard.collect.snapshot import collect_snapshot
from kmsguard.model.snapshot import Trail

EAST, WEST = "us-east-1", "eu-west-1"
KMS = "kms.amazonaws.com"
MGMT = {"Field": "eventCategory", "Equals": ["Management"]}


def _ro(value: str) -> dict[str, Any]:
    return {"Field": "readOnly", "Equals": [value]}


def _not_kms() -> dict[str, Any]:
    return {"Field": "eventSource", "NotEquals": [KMS]}


def adv(*selectors: list[dict[str, Any]]) -> dict[str, Any]:
    return {"AdvancedEventSelectors": [{"Name": f"s{i}", "FieldSelectors": fs} for i, fs in enumerate(selectors)]}


def basic(*selectors: dict[str, Any]) -> dict[str, Any]:
    return {"EventSelectors": [{"IncludeManagementEvents": True, "ReadWriteType": "All", **s} for s in selectors]}


# The reviewer's case and its mirror image, plus the basic-selector equivalents.
REVIEWER = adv([MGMT, _ro("false")], [MGMT, _ro("true"), _not_kms()])
MIRROR = adv([MGMT, _ro("false"), _not_kms()], [MGMT, _ro("true")])

CASES: list[tuple[str, dict[str, Any], bool, bool]] = [
    # (id, GetEventSelectors answer, KMS writes recorded, KMS reads recorded)
    ("reviewer: reads of everything but KMS", REVIEWER, True, False),
    ("mirror: writes of everything but KMS", MIRROR, False, True),
    ("advanced: all management events", adv([MGMT]), True, True),
    ("advanced: all but KMS", adv([MGMT, _not_kms()]), False, False),
    ("advanced: write only", adv([MGMT, _ro("false")]), True, False),
    ("advanced: read only", adv([MGMT, _ro("true")]), False, True),
    ("advanced: data events only", adv([{"Field": "eventCategory", "Equals": ["Data"]}]), False, False),
    (
        "advanced: KMS excluded in one selector, recorded by another",
        adv([MGMT, _not_kms()], [MGMT, {"Field": "eventSource", "Equals": [KMS]}]),
        True,
        True,
    ),
    (
        "advanced: KMS reads only via StartsWith",
        adv([MGMT, _ro("false"), _not_kms()], [MGMT, {"Field": "eventSource", "StartsWith": ["kms."]}, _ro("true")]),
        False,
        True,
    ),
    (
        "advanced: NotEndsWith drops KMS",
        adv([MGMT, {"Field": "eventSource", "NotEndsWith": ["kms.amazonaws.com"]}]),
        False,
        False,
    ),
    (
        "advanced: NotStartsWith another service keeps KMS",
        adv([MGMT, {"Field": "eventSource", "NotStartsWith": ["rdsdata."]}]),
        True,
        True,
    ),
    (
        "advanced: eventName limited to Decrypt",
        adv([MGMT, {"Field": "eventName", "Equals": ["Decrypt", "Encrypt"]}]),
        False,
        True,
    ),
    (
        "advanced: key writes listed by EndsWith miss PutKeyPolicy",
        adv([MGMT, _ro("false"), {"Field": "eventName", "EndsWith": ["Key", "KeyDeletion"]}], [MGMT, _ro("true")]),
        False,
        True,
    ),
    (
        "advanced: a condition on the caller cannot vouch for every event",
        adv([MGMT, {"Field": "userIdentity.arn", "NotStartsWith": ["arn:aws:sts::111122223333:assumed-role/Bot"]}]),
        False,
        False,
    ),
    ("basic: default selector", basic({}), True, True),
    ("basic: KMS excluded", basic({"ExcludeManagementEventSources": [KMS]}), False, False),
    (
        "basic: KMS excluded from reads only",
        basic({"ReadWriteType": "WriteOnly"}, {"ReadWriteType": "ReadOnly", "ExcludeManagementEventSources": [KMS]}),
        True,
        False,
    ),
    (
        "basic: KMS excluded from writes only",
        basic({"ReadWriteType": "WriteOnly", "ExcludeManagementEventSources": [KMS]}, {"ReadWriteType": "ReadOnly"}),
        False,
        True,
    ),
    (
        "basic: exclusion in one selector, another records everything",
        basic({"ExcludeManagementEventSources": [KMS]}, {"ReadWriteType": "All"}),
        True,
        True,
    ),
    (
        "basic: only RDS Data API excluded",
        basic({"ExcludeManagementEventSources": ["rdsdata.amazonaws.com"]}),
        True,
        True,
    ),
    ("basic: write only", basic({"ReadWriteType": "WriteOnly"}), True, False),
    ("basic: read only", basic({"ReadWriteType": "ReadOnly"}), False, True),
    ("basic: data events only", basic({"IncludeManagementEvents": False}), False, False),
    ("no selectors", {"EventSelectors": []}, False, False),
]


def _trail() -> Trail:
    return Trail(name="t", arn=f"arn:aws:cloudtrail:{EAST}:111122223333:trail/t", home_region=EAST)


def _legacy(t: Trail, rw: tuple[str, ...]) -> bool:
    return t.logs_management_events and t.management_read_write_type in rw and not t.kms_events_excluded


@pytest.mark.parametrize(("resp", "writes", "reads"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_selector_is_judged_as_a_whole(resp: dict[str, Any], writes: bool, reads: bool) -> None:
    t = _trail()
    apply_selectors(t, resp)
    assert (t.kms_writes_recorded, t.kms_reads_recorded) == (writes, reads)
    # The older summary fields say the same thing, read the way the checks used to read them.
    assert (_legacy(t, ("All", "WriteOnly")), _legacy(t, ("All", "ReadOnly"))) == (writes, reads)


def test_reviewer_case_no_longer_reads_as_all_events_with_kms_included() -> None:
    t = _trail()
    apply_selectors(t, REVIEWER)
    assert (t.logs_management_events, t.management_read_write_type, t.kms_events_excluded) == (True, "WriteOnly", False)
    t = _trail()
    apply_selectors(t, adv([MGMT, _not_kms()]))
    assert (t.logs_management_events, t.management_read_write_type, t.kms_events_excluded) == (True, "All", True)


# --- against the moto server ---------------------------------------------------------------------------------


def _trail_with(client: Any, aws: Any, **selectors: Any) -> tuple[Trail, Trail]:
    client("s3", EAST).create_bucket(Bucket="selector-trail-bucket")
    ct = client("cloudtrail", EAST)
    ct.create_trail(Name="sel", S3BucketName="selector-trail-bucket", IsMultiRegionTrail=True)
    ct.start_logging(Name="sel")
    ct.put_event_selectors(TrailName="sel", **selectors)
    snap = collect_snapshot(AwsOptions(endpoint_url=aws.endpoint_url, regions=[EAST, WEST]))
    regs = {r.region: r for r in snap.accounts[0].regions}
    assert regs[EAST].errors == [] and regs[WEST].errors == []
    [home], [shadow] = regs[EAST].trails, regs[WEST].trails
    return home, shadow


def test_collected_advanced_selectors_reviewer_case(client, aws) -> None:  # type: ignore[no-untyped-def]
    home, shadow = _trail_with(client, aws, AdvancedEventSelectors=REVIEWER["AdvancedEventSelectors"])
    assert (home.kms_writes_recorded, home.kms_reads_recorded) == (True, False)
    assert home.management_read_write_type == "WriteOnly" and home.kms_events_excluded is False
    # The shadow copy in the other region carries the home copy's facts.
    assert shadow == home


def test_collected_advanced_selectors_mirror_case(client, aws) -> None:  # type: ignore[no-untyped-def]
    home, shadow = _trail_with(client, aws, AdvancedEventSelectors=MIRROR["AdvancedEventSelectors"])
    assert (home.kms_writes_recorded, home.kms_reads_recorded) == (False, True)
    assert (shadow.kms_writes_recorded, shadow.kms_reads_recorded) == (False, True)


def test_collected_basic_selectors_excluding_kms_from_reads(client, aws) -> None:  # type: ignore[no-untyped-def]
    sels = [
        {"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True},
        {"ReadWriteType": "ReadOnly", "IncludeManagementEvents": True, "ExcludeManagementEventSources": [KMS]},
    ]
    home, _ = _trail_with(client, aws, EventSelectors=sels)
    assert (home.kms_writes_recorded, home.kms_reads_recorded) == (True, False)


def test_collected_default_trail_records_both(client, aws) -> None:  # type: ignore[no-untyped-def]
    sels = [{"ReadWriteType": "All", "IncludeManagementEvents": True}]
    home, _ = _trail_with(client, aws, EventSelectors=sels)
    assert (home.kms_writes_recorded, home.kms_reads_recorded) == (True, True)
    assert (home.management_read_write_type, home.kms_events_excluded) == ("All", False)
