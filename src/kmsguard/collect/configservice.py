"""AWS Config rules and configuration recorders of one region.

Calls per region: DescribeConfigRules (paginated), DescribeConfigurationRecorders and
DescribeConfigurationRecorderStatus.
"""

from __future__ import annotations

from kmsguard.collect.context import RegionContext, paginate
from kmsguard.collect.errors import guard
from kmsguard.model.snapshot import ConfigRecorder, ConfigRule

SERVICE = "config"


def collect(ctx: RegionContext) -> None:
    cfg = ctx.client(SERVICE)
    errors = ctx.snapshot.errors
    with guard(errors, SERVICE, "DescribeConfigRules"):
        for r in paginate(cfg, "describe_config_rules", "ConfigRules"):
            source = r.get("Source", {})
            ctx.snapshot.config_rules.append(
                ConfigRule(
                    name=r["ConfigRuleName"],
                    source_owner=source.get("Owner"),
                    source_identifier=source.get("SourceIdentifier"),
                    state=r.get("ConfigRuleState"),
                )
            )
    with guard(errors, SERVICE, "DescribeConfigurationRecorders"):
        recorders = cfg.describe_configuration_recorders().get("ConfigurationRecorders", [])
        recording: dict[str, bool] = {}
        with guard(errors, SERVICE, "DescribeConfigurationRecorderStatus"):
            for s in cfg.describe_configuration_recorder_status().get("ConfigurationRecordersStatus", []):
                recording[s["name"]] = bool(s.get("recording"))
        for r in recorders:
            ctx.snapshot.config_recorders.append(
                ConfigRecorder(
                    name=r["name"],
                    recording=recording.get(r["name"], False),
                    all_supported=bool(r.get("recordingGroup", {}).get("allSupported")),
                )
            )
