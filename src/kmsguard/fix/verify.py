"""After applying: re-read what changed, re-run the affected checks, re-simulate the accesses policies gave.

So "not testing key access after policy changes" cannot happen: for every key policy kmsguard wrote, the policy
now on the key (read back from AWS) is compared with the one before the fix (``simulate.change_impact``: the
key-policy diff for requests over TLS with the required encryption context, every KMS action); a loss the
rewrite did not intend is reported. On the planned policy that is the plan's own answer, already computed for
the same two texts; a policy changed since is asked anew. Effective access is asked again too: on the
fresh collection, every principal the plan expected to keep an action on the key (through the key policy, IAM,
grants or role chains) must still have it; one that does not is reported as an unintended loss
(``"via": "effective access"``). Principals of accounts the fresh, scoped collection did not read are not
compared (their access cannot be seen from it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from kmsguard.aws.errors import AWS_CALL_ERRORS
from kmsguard.aws.options import AwsOptions
from kmsguard.config import ScanConfig
from kmsguard.fix.actions import KINDS
from kmsguard.fix.apply import Outcome, Sessions, error_text
from kmsguard.fix.plan import Action
from kmsguard.fix.simulate import change_impact, legitimate_context, not_judged_reason
from kmsguard.model.finding import Status
from kmsguard.model.snapshot import Snapshot
from kmsguard.pipeline import judge
from kmsguard.policy.access import AccessEvaluator
from kmsguard.policy.estate import Estate, build_estate
from kmsguard.policy.principals import account_of
from kmsguard.policy.tighten import Removal

Collector = Callable[[AwsOptions], Snapshot]


@dataclass
class Verification:
    reread: list[dict[str, Any]] = field(default_factory=list)
    still_failing: list[dict[str, Any]] = field(default_factory=list)
    unintended_loss: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (
            self.still_failing or self.errors or self.unintended_loss or any(not r["as_planned"] for r in self.reread)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "reread": self.reread,
            "still_failing": self.still_failing,
            "unintended_loss": self.unintended_loss,
            "errors": self.errors,
        }


def _default_collect(options: AwsOptions) -> Snapshot:
    from kmsguard.collect.snapshot import collect_snapshot

    return collect_snapshot(options)


def _reread(applied: list[Action], sessions: Sessions, workers: int) -> list[dict[str, Any] | Exception]:
    """Each applied action's resource read again, ``workers`` at a time (one after another, 500 re-reads took as
    long as the changes); in the actions' order, a failed read as its exception."""

    def read(action: Action) -> dict[str, Any] | Exception:
        try:
            return KINDS[action.action].read(action.to_dict(), action.detail, sessions.get(action.account))
        except AWS_CALL_ERRORS as e:
            return e

    with ThreadPoolExecutor(max(1, min(workers, len(applied))), "kmsguard-verify") as pool:
        return list(pool.map(read, applied))


def verify(
    outcomes: list[Outcome],
    sessions: Sessions,
    options: AwsOptions,
    config: ScanConfig,
    collect: Collector = _default_collect,
) -> Verification:
    applied = [o.action for o in outcomes if o.status == "applied"]
    out = Verification()
    if not applied:
        return out
    for action, current in zip(applied, _reread(applied, sessions, options.max_workers), strict=True):
        a = action.to_dict()
        kind = KINDS[action.action]
        if isinstance(current, Exception):
            out.errors.append(f"{action.resource_arn}: could not re-read: {error_text(current)}")
            continue
        out.reread.append(
            {"resource_arn": action.resource_arn, "action": action.action, "as_planned": kind.done(current, a)}
        )
        if action.action == "tighten_key_policy":
            losses = _key_policy_losses(action, current["policy"], as_planned=kind.done(current, a))
            out.unintended_loss += [{"resource_arn": action.resource_arn, **loss} for loss in losses]
    # Re-run the affected checks on a fresh collection of the affected accounts and regions.
    regions = sorted({a.region for a in applied if a.region != "global"})
    accounts = sorted({a.account for a in applied})
    scoped = dataclasses.replace(
        options, regions=regions, accounts=accounts if (options.org or options.accounts) else options.accounts
    )
    try:
        snapshot = collect(scoped)
    except Exception as e:
        out.errors.append(f"re-scan failed: {e}")
        return out
    out.unintended_loss += _effective_losses(applied, snapshot)
    checks = sorted({c for a in applied for c in a.check_ids})
    affected = {a.resource_arn for a in applied}
    result = judge(snapshot, config, checks, warn=lambda _m: None)
    for f in result.findings:
        if f.resource_arn in affected and f.status in (Status.FAIL, Status.ERROR):
            out.still_failing.append(
                {"check_id": f.check_id, "resource_arn": f.resource_arn, "status": f.status.value, "message": f.message}
            )
    return out


def _key_policy_losses(action: Action, now_on_key: str, *, as_planned: bool) -> list[dict[str, str]]:
    """What the policy now on the key takes away from the one before the fix that no intended removal explains.
    On the planned policy that is the plan's own answer (``simulate.change_impact`` over the same two texts, so
    asking again would only repeat it); a policy changed since is asked anew, with the plan's removals."""
    if as_planned:
        return list(action.impact.get("unintended_loss", []))
    removals = [Removal(r["principal"], tuple(r["actions"]), r["why"]) for r in action.detail.get("removals", [])]
    context = legitimate_context(action.detail.get("require_context", {}))
    not_judged = "verification judges the key policy alone"
    change = change_impact(
        action.before["policy"], now_on_key, action.resource_arn, action.account, not_judged, removals, context
    )
    return change.unintended()


def _comparable(principal: str, estate: Estate) -> bool:
    """Can the fresh collection see this principal's access? An IAM principal only when its account's IAM was
    read again; aggregates (``account:``, ``org:``, ``service:``, ``*``) always."""
    if principal.startswith("arn:"):
        return account_of(principal) in estate.scanned_accounts
    return True


def _effective_losses(applied: list[Action], snapshot: Snapshot) -> list[dict[str, Any]]:
    """Principals the plan expected to keep an action on a rewritten key that, on the fresh collection, do not."""
    expected = [(a, a.detail.get("access_after") or {}) for a in applied if a.action == "tighten_key_policy"]
    expected = [(a, e) for a, e in expected if e]
    if not expected:
        return []
    keys = {k.arn: k for k in snapshot.all_keys()}
    evaluator = AccessEvaluator(build_estate(snapshot))
    out: list[dict[str, Any]] = []
    for action, after in expected:
        key = keys.get(action.resource_arn)
        if key is None or not_judged_reason(snapshot, key.account) is not None:
            continue
        now = evaluator.who_can(key, list(after))
        for name, principals in after.items():
            have = now.principals(name)
            for principal, decision in sorted(principals.items()):
                if principal not in have and _comparable(principal, evaluator.estate):
                    out.append(
                        {
                            "resource_arn": action.resource_arn,
                            "principal": principal,
                            "action": name,
                            "via": "effective access",
                            "expected": decision,
                        }
                    )
    return out
