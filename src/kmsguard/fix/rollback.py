"""``kmsguard fix --rollback JOURNAL``: put back the prior state of every change a fix run made.

A rollback writes to AWS what a file says, so it is reviewed first (``review``), shown, confirmed, and only then
carried out (``restore``). The review trusts nothing the journal says on its own:

- the journal must be signed with this user's journal key and intact (``journal.load_journal``); the CLI refuses
  one that is not unless ``--force``, and then every check below still applies, with less taken on trust;
- only a change the journal records as ``applied`` (or ``partial``: an action of several calls that failed
  after changing the resource) is restored; one without a result is unknown and is left to a person;
- the entry must be consistent: the resource it shows is the one its calls change (``actions.target_problem``)
  and its ``prior`` is the state the plan recorded before applying (``as_planned``), the check apply made
  before writing it;
- a deletion is scheduled again only for a key whose deletion this journal cancelled, and only from a verified
  journal (nothing else can show that kmsguard cancelled it);
- each resource is re-read: one already in its prior state is left alone; one changed again after kmsguard's
  change is skipped unless ``--force`` (verified journals only);
- a key-policy restore gets the analysis apply gives a rewrite: the policy diff, who gains and loses access
  (effective access over a fresh collection where it can be judged, else the key-policy diff), the lock-out
  guard (refused unless ``--force`` on a verified journal) and whether the restored policy opens the key to the
  public or to external principals it is closed to now (a warning; refused for an unverified journal).

``restore`` re-reads each resource once more, restores it only if it is still as reviewed, and reads it back:
a key policy must be the exact text GetKeyPolicy returned before the fix.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from kmsguard.aws.errors import AWS_CALL_ERRORS
from kmsguard.aws.options import AwsOptions
from kmsguard.config import ScanConfig
from kmsguard.fix.actions import KINDS, MULTI_CALL, same_state, target_problem
from kmsguard.fix.apply import Sessions, error_text
from kmsguard.fix.journal import Entry, JournalFile
from kmsguard.fix.planner import policy_diff
from kmsguard.fix.simulate import AccessImpact, ChangeImpact, effective_change
from kmsguard.fix.verify import Collector
from kmsguard.model.snapshot import Snapshot
from kmsguard.policy.access import AccessEvaluator
from kmsguard.policy.diff import diff_policies
from kmsguard.policy.errors import PolicyError
from kmsguard.policy.estate import build_estate
from kmsguard.policy.questions import analyze_key_policy_cached
from kmsguard.policy.trust import Trusted, trusted

Decision = Literal["restore", "unchanged", "skipped", "refused", "failed"]
Status = Literal["restored", "unchanged", "skipped", "refused", "failed"]


@dataclass
class Step:
    """One journal entry, reviewed: what restoring it would do, and whether it will be done."""

    entry: Entry
    decision: Decision
    message: str
    operation: str = ""  # the concrete operation, in words ("schedule deletion of KEY in 7 days")
    current: dict[str, Any] | None = None  # the state read during the review; restore needs it unchanged
    details: list[str] = field(default_factory=list)  # policy diff, who gains and loses
    warnings: list[str] = field(default_factory=list)
    analysis: dict[str, Any] = field(default_factory=dict)


@dataclass
class Restored:
    entry: Entry
    status: Status
    message: str
    step: Step | None = None

    def to_dict(self) -> dict[str, Any]:
        a = self.entry.action
        out = {
            "action": a.get("action"),
            "account": a.get("account"),
            "region": a.get("region"),
            "resource_arn": a.get("resource_arn"),
            "status": self.status,
            "message": self.message,
        }
        if self.step is not None:
            out |= {"operation": self.step.operation, "warnings": self.step.warnings, "analysis": self.step.analysis}
        return out


def _collect(options: AwsOptions) -> Snapshot:
    from kmsguard.collect.snapshot import collect_snapshot

    return collect_snapshot(options)


class _Context:
    """What the policy analysis needs beyond one entry: a fresh collection of the journal's key-policy
    accounts and regions (made once, on the first policy restore) and the trusted accounts of the config."""

    def __init__(self, entries: list[Entry], options: AwsOptions, config: ScanConfig, collect: Collector) -> None:
        self.entries, self.options, self.config, self.collect = entries, options, config, collect
        self._snapshot: Snapshot | str | None = None
        self._evaluator: AccessEvaluator | None = None

    def snapshot(self) -> Snapshot | str:
        """The fresh collection, or why there is none."""
        if self._snapshot is None:
            policy = [e.action for e in self.entries if e.action.get("action") == "tighten_key_policy"]
            o = self.options
            scoped = dataclasses.replace(
                o,
                regions=sorted({str(a.get("region")) for a in policy}),
                accounts=sorted({str(a.get("account")) for a in policy}) if (o.org or o.accounts) else o.accounts,
            )
            try:
                self._snapshot = self.collect(scoped)
            except Exception as e:  # the key-policy diff is still shown and judged
                self._snapshot = f"the accounts could not be collected again: {e}"
        return self._snapshot

    def trusted(self) -> Trusted:
        """Trusted as the scan judges it; without a fresh collection, what the config names (the key's own account
        is always trusted by the analysis)."""
        snap = self.snapshot()
        return trusted(snap if isinstance(snap, Snapshot) else None, self.config)

    def access(self, arn: str, prior_policy: str) -> AccessImpact | str:
        """Effective access with the key's policy now and with the restored one, or why it cannot be judged."""
        snap = self.snapshot()
        if isinstance(snap, str):
            return snap
        key = next((k for k in snap.all_keys() if k.arn == arn), None)
        if key is None:
            return f"{arn} is not in the fresh collection"

        def evaluator() -> AccessEvaluator:
            if self._evaluator is None:
                self._evaluator = AccessEvaluator(build_estate(snap))
            return self._evaluator

        return effective_change(snap, evaluator, key, prior_policy)


def review(
    journal: JournalFile,
    sessions: Sessions,
    options: AwsOptions,
    config: ScanConfig,
    *,
    force: bool = False,
    collect: Collector = _collect,
) -> list[Step]:
    """Every entry to consider, newest first, with what restoring it would do and the decision. Reads AWS,
    changes nothing."""
    ctx = _Context(journal.entries, options, config, collect)
    steps = [_review(e, journal.verified, force, sessions, ctx) for e in reversed(journal.entries)]
    return [s for s in steps if s is not None]


# What a hand-made entry with missing or wrongly typed fields raises when read.
MALFORMED = (KeyError, TypeError, ValueError, AttributeError)


def _malformed(e: Exception) -> str:
    return f"the entry is incomplete or malformed ({type(e).__name__}: {e}); not restored"


def _review(entry: Entry, verified: bool, force: bool, sessions: Sessions, ctx: _Context) -> Step | None:
    if entry.status == "failed":
        return None  # a single failed call changed nothing (an action of several calls would say "partial")
    problem = _inconsistency(entry, verified)
    if problem is not None:
        return Step(entry, "refused", problem)
    if entry.status is None:
        return Step(
            entry,
            "skipped",
            "no result was recorded (the run stopped during this change), so whether it happened is unknown; "
            "compare the resource with the journal's prior state and restore it by hand if needed",
        )
    a = entry.action
    try:
        current = KINDS[a["action"]].read(a, entry.detail, sessions.get(a["account"]))
    except AWS_CALL_ERRORS as e:
        return Step(entry, "failed", f"could not read the current state: {error_text(e)}")
    try:
        step = _decide(entry, current, verified, force, ctx)
    except MALFORMED as e:
        return Step(entry, "refused", _malformed(e), current=current)
    if step.decision == "restore":
        step.message = "restored to the journal's prior state"
    return step


def _decide(entry: Entry, current: dict[str, Any], verified: bool, force: bool, ctx: _Context) -> Step:
    """Restore, or why not, for a consistent entry whose resource now reads ``current``."""
    a, kind = entry.action, KINDS[entry.action["action"]]
    if same_state(a["action"], entry.prior, current):
        return Step(entry, "unchanged", "already in its prior state", current=current)
    step = Step(entry, "restore", "", kind.restore_text(entry.prior, current, a), current)
    if entry.status == "applied" and not kind.done(current, a):
        if not (force and verified):
            why = "--force to restore anyway" if verified else "a journal that is not verified never overwrites"
            step.decision, step.message = "skipped", f"changed again after kmsguard applied it; not overwritten ({why})"
            return step
        step.warnings.append("changed again after kmsguard applied it: --force overwrites that change")
    if a["action"] == "tighten_key_policy":
        _policy_review(step, current["policy"], verified, force, ctx)
    return step


def _inconsistency(entry: Entry, verified: bool) -> str | None:
    """Why the entry cannot be restored whatever AWS holds now, or None."""
    a, name = entry.action, entry.action.get("action")
    if name not in KINDS:
        return f"unknown action {name!r} in the journal"
    try:
        wrong_target = target_problem(a, entry.detail)
        consistent = KINDS[name].as_planned(entry.prior, a)
    except MALFORMED as e:
        return _malformed(e)
    if wrong_target is not None:
        return f"the entry is inconsistent: {wrong_target}; not restored"
    if not consistent:
        return (
            "the entry's prior state is not the state the plan recorded before applying (the journal was edited?); "
            "not restored"
        )
    if entry.status == "partial" and name not in MULTI_CALL:
        return f"a {name} change cannot be partial (it is one call); not restored"
    if name == "cancel_key_deletion" and not verified:
        return (
            "scheduling a key deletion again needs a verified journal (only that shows this run cancelled it); "
            f"if intended: aws kms schedule-key-deletion --key-id {a['resource_arn']} --pending-window-in-days 7"
        )
    return None


def _policy_review(step: Step, current: str, verified: bool, force: bool, ctx: _Context) -> None:
    """The analysis apply gives a rewrite, for putting the prior policy back: diff, access, lock-out, exposure."""
    a, prior = step.entry.action, step.entry.prior["policy"]
    account, arn = a["account"], a["resource_arn"]
    try:
        diff = diff_policies(current, prior, account, key_arn=arn)
        trust = ctx.trusted()
        now = analyze_key_policy_cached(current, account, trust.accounts, trust.org_ids)
        then = analyze_key_policy_cached(prior, account, trust.accounts, trust.org_ids)
    except (PolicyError, ValueError, TypeError) as e:
        step.decision, step.message = "refused", f"the journal's prior policy is not a valid key policy: {e}"
        return
    change = ChangeImpact(diff, ctx.access(arn, prior))
    opens = _opens(now.public, then.public, now.external_principals, then.external_principals)
    key_policy = diff.to_dict()
    # planner.policy_diff labels its sides for a fix; here the policy now on the key is replaced by the prior one.
    lines = ["--- now on the key", "+++ restored", *policy_diff(current, prior)[2:]]
    step.analysis = {
        "policy_diff": lines,
        "key_policy": {"gained": key_policy["gained"], "lost": key_policy["lost"]},
        "effective_access": change.effective_access(),
        "admin_lockout": change.lockout,
        "opens_to": opens,
    }
    step.details = ["policy diff:", *(f"  {line}" for line in step.analysis["policy_diff"])]
    if not isinstance(change.access, AccessImpact):
        step.details.append(f"effective access not judged ({change.access}); by the key policy alone:")
    step.details += _who(change.gained, "gains") + _who(change.lost, "loses")
    step.warnings += [f"! restoring opens the key to {who}" for who in opens]
    if change.lockout:
        how = "" if diff.admin_lockout else " (effective access: nobody could call it afterwards)"
        step.warnings.append(f"! restoring leaves no principal able to administer the key (kms:PutKeyPolicy){how}")
        if not (force and verified):
            step.decision = "refused"
            step.message = "restoring would lock out every administrator of the key" + (
                "; --force to restore anyway" if verified else "; never from a journal that is not verified"
            )
            return
    if opens and not verified:
        step.decision = "refused"
        step.message = f"a journal that is not verified cannot open a key to {', '.join(opens)}"


def _opens(public_now: bool, public_then: bool, external_now: list[str], external_then: list[str]) -> list[str]:
    """Who the restored policy lets in that the policy on the key now does not: the public, external principals."""
    if public_then and not public_now:
        return ["anyone (public)"]
    return [f"external principal {p}" for p in sorted(set(external_then) - set(external_now)) if p != "*"]


def _who(changes: list[Any], verb: str) -> list[str]:
    """One line per principal (``AccessChange`` of the key-policy diff or of effective access), a few actions."""
    actions: dict[str, set[str]] = {}
    for c in changes:
        d = c.to_dict()
        actions.setdefault(d["principal"], set()).add(d["action"])
    return [f"{p} {verb} {', '.join(sorted(acts)[:6])}" for p, acts in sorted(actions.items())]


def review_text(journal: JournalFile, steps: list[Step]) -> str:
    """The review as a person reads it before confirming: each concrete operation, its analysis, the refusals."""
    trust = "signed with this user's journal key" if journal.verified else f"NOT VERIFIED: {journal.problem}"
    out = [f"Rollback of {journal.path} ({trust})"]
    for i, s in enumerate(steps, 1):
        a = s.entry.action
        head = f"[{i}] {s.decision} {a.get('action')} {a.get('resource_arn')}  [{a.get('account')} {a.get('region')}]"
        out.append(head)
        if s.decision != "restore":
            out.append(f"    {s.message}")
        if s.operation:  # what restoring does, shown for a refused restore too: it says what was stopped
            prefix = "" if s.decision == "restore" else "not done: "
            out += [f"    {prefix}{s.operation}", *(f"    {line}" for line in s.details)]
        out += [f"    {w}" for w in s.warnings]
    todo = sum(1 for s in steps if s.decision == "restore")
    out.append(f"{todo} change(s) to restore, {len(steps) - todo} not restored or already in their prior state")
    return "\n".join(out) + "\n"


def restore(
    steps: list[Step], sessions: Sessions, on_result: Callable[[Restored], None] | None = None
) -> list[Restored]:
    """Carry out the reviewed restores, newest first; the other steps are reported as reviewed."""
    out: list[Restored] = []
    for step in steps:
        status: Status = "restored" if step.decision == "restore" else step.decision  # type: ignore[assignment]
        result = _restore(step, sessions) if step.decision == "restore" else Restored(step.entry, status, step.message)
        result.step = step
        out.append(result)
        if on_result is not None:
            on_result(result)
    return out


def _restore(step: Step, sessions: Sessions) -> Restored:
    entry, a = step.entry, step.entry.action
    kind = KINDS[a["action"]]
    try:
        session = sessions.get(a["account"])
        if kind.read(a, entry.detail, session) != step.current:
            return Restored(entry, "skipped", "changed between the review and the restore; not overwritten")
        kind.restore(entry.prior, a, entry.detail, session)
        after = kind.read(a, entry.detail, session)
    except AWS_CALL_ERRORS as e:
        return Restored(entry, "failed", error_text(e))
    except MALFORMED as e:
        return Restored(entry, "failed", _malformed(e))
    if not same_state(a["action"], entry.prior, after):
        return Restored(entry, "failed", "restored, but reading it back does not give the journal's prior state")
    return Restored(entry, "restored", step.message)


def rollback(
    journal: JournalFile,
    sessions: Sessions,
    options: AwsOptions,
    config: ScanConfig,
    *,
    force: bool = False,
    collect: Collector = _collect,
) -> list[Restored]:
    """Review and restore without asking (what ``--yes`` does)."""
    return restore(review(journal, sessions, options, config, force=force, collect=collect), sessions)
