"""`kmsguard fix`: plan remediation of failing findings (default), apply it (--apply), resume an interrupted
apply (--apply --resume JOURNAL), or roll it back (--rollback JOURNAL).

Input: a live scan (the scan's AWS options), a saved snapshot (--from-snapshot) or a kmsguard JSON report
(--from-report: the report says what to fix, a live read of its accounts and regions says how things are now);
a resume takes its plan from the journal, never from a new scan.
Exit codes: 0 done (or plan shown), 1 some action or restore failed, 2 usage/input error, 3 AWS unreachable,
130 the apply was stopped by Ctrl-C (what was in flight finished and is journalled; --resume carries on).
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from pydantic import ValidationError

from kmsguard.aws.errors import AwsUnavailable
from kmsguard.aws.options import AwsOptions
from kmsguard.cli.common import (
    CONCURRENCY_OPTION,
    EXIT_AWS,
    EXIT_FINDINGS,
    EXIT_OK,
    MAX_ATTEMPTS_OPTION,
    QUOTAS_OPTION,
    TIMEOUT_OPTION,
    aws_options,
    collect_live,
    err_console,
    fail,
    progress_bar,
    scan_config,
    snapshot_file,
    split_csv,
    typed_endpoint,
)
from kmsguard.config import ROTATION_DAYS_MAX, ROTATION_DAYS_MIN, ScanConfig
from kmsguard.fileio import LoadError, loads_json, read_text
from kmsguard.fix.journal import JournalFile
from kmsguard.fix.plan import Plan
from kmsguard.fix.planner import FixOptions, build_plan
from kmsguard.model.finding import Finding
from kmsguard.policy.principals import account_of, is_root

if TYPE_CHECKING:
    from kmsguard.fix.apply import Interrupted, Outcome, Sessions

# Ctrl-C stopped the apply (the shell's convention for SIGINT, 128 + 2): the actions in flight ended and are
# journalled, the rest were not started; `fix --apply --resume JOURNAL` carries on.
EXIT_INTERRUPTED = 130
# What shapes a plan: a resume applies the plan its journal holds, so none of these can change it.
PLAN_OPTIONS = {
    "from_report": "--from-report",
    "from_snapshot": "--from-snapshot",
    "checks": "--checks",
    "key": "--key",
    "account": "--account",
    "rotation_days": "--rotation-days",
    "target_key": "--target-key",
    "require_context": "--require-context",
    "admin": "--admin",
    "user": "--user",
    "cancel_deletion": "--cancel-deletion",
    "force": "--force",
}


def parse_context(values: list[str] | None, flag: str = "--require-context") -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values or []:
        k, sep, v = item.partition("=")
        if not sep or not k.strip() or not v.strip():
            fail(f"{flag}: {item!r} is not KEY=VALUE")
        out[k.strip()] = v.strip()
    return out


def principal_arns(values: list[str] | None, flag: str) -> list[str]:
    """IAM role or user ARNs in the order given (comma-separated or repeated); exit 2 naming one that is not."""
    out = split_csv(values) or []
    for arn in out:
        if account_of(arn) is None or is_root(arn):
            fail(f"{flag}: {arn!r} is not an IAM role or user ARN (arn:aws:iam::ACCOUNT:role/NAME)")
    return out


def load_report_findings(path: Path) -> list[Finding]:
    """The findings of a `kmsguard scan --format json` report (errors name the file and the finding)."""
    try:
        data = loads_json(read_text(path))
    except LoadError as e:  # no such file, not UTF-8, not JSON, nested too deeply, a lone surrogate
        fail(f"{path}: {e}")
    if not isinstance(data, dict) or not isinstance(data.get("findings"), list):
        fail(f'{path}: not a kmsguard JSON report (no "findings" list)')
    out = []
    for i, raw in enumerate(data["findings"]):
        try:
            out.append(Finding.model_validate(raw))
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            fail(f"{path}: findings[{i}].{where}: {first['msg']}")
    return out


def fix(
    ctx: typer.Context,
    apply: bool = typer.Option(False, "--apply", help="Carry out the plan (after a confirmation)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation (automation)."),
    force: bool = typer.Option(
        False,
        "--force",
        help="Apply policy changes that lock out every administrator; with --rollback, review a journal that is not "
        "verified and overwrite resources changed again since (docs/fix.md).",
    ),
    rollback_journal: Path | None = typer.Option(
        None, "--rollback", help="Restore everything a previous --apply changed, from its journal."
    ),
    journal: Path | None = typer.Option(
        None, "--journal", help="Journal file (default ./kmsguard-fix-<time>.journal.json)."
    ),
    resume: Path | None = typer.Option(
        None,
        "--resume",
        metavar="JOURNAL",
        help="With --apply: carry on an apply that was interrupted, with the plan its journal holds (no new scan), "
        "appending to that journal.",
    ),
    profile: str | None = typer.Option(None, "--profile", help="AWS profile from the shared config."),
    region: list[str] | None = typer.Option(None, "--region", "-r", help="Only this region (repeatable)."),
    regions: str | None = typer.Option(None, "--regions", help="Comma-separated regions."),
    endpoint_url: str | None = typer.Option(
        None, "--endpoint-url", envvar="KMSGUARD_ENDPOINT_URL", help="Send every AWS call to this endpoint."
    ),
    org: bool = typer.Option(False, "--org", help="Every ACTIVE account of the AWS Organization."),
    role_name: str = typer.Option("OrganizationAccountAccessRole", "--role-name", help="Role assumed in each account."),
    accounts: list[str] | None = typer.Option(None, "--accounts", help="Only these account ids (comma-separated)."),
    timeout: float | None = TIMEOUT_OPTION,
    max_attempts: int | None = MAX_ATTEMPTS_OPTION,
    concurrency: int | None = CONCURRENCY_OPTION,
    quotas: str | None = QUOTAS_OPTION,
    account: list[str] | None = typer.Option(None, "--account", help="Fix only findings of these accounts."),
    checks: list[str] | None = typer.Option(None, "--checks", help="Fix only these check ids (comma-separated)."),
    key: list[str] | None = typer.Option(None, "--key", help="Fix only these keys (id, ARN or alias; repeatable)."),
    from_report: Path | None = typer.Option(None, "--from-report", help="Fix the findings of a kmsguard JSON report."),
    from_snapshot: Path | None = typer.Option(None, "--from-snapshot", help="Plan from a saved snapshot."),
    rotation_days: int = typer.Option(365, "--rotation-days", help="Rotation period to set (90-2560)."),
    target_key: str | None = typer.Option(None, "--target-key", help="CMK (ARN or alias) resources move to."),
    require_context: list[str] | None = typer.Option(
        None, "--require-context", help="Encryption context K=V users must send (repeatable)."
    ),
    admin: list[str] | None = typer.Option(None, "--admin", help="Treat this principal as a key administrator."),
    user: list[str] | None = typer.Option(None, "--user", help="Treat this principal as a key user."),
    cancel_deletion: bool = typer.Option(False, "--cancel-deletion", help="Cancel scheduled key deletions."),
    fmt: str = typer.Option("text", "--format", "-f", help="text or json."),
    config: Path | None = typer.Option(None, "--config", help="kmsguard.yaml (default ./kmsguard.yaml if present)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Fix failing findings: show the plan, then --apply it; --apply --resume JOURNAL carries on an interrupted
    apply; --rollback JOURNAL undoes an apply."""
    if fmt not in ("text", "json"):
        fail(f"--format: {fmt!r} is not one of text, json")
    if not ROTATION_DAYS_MIN <= rotation_days <= ROTATION_DAYS_MAX:
        fail(f"--rotation-days must be between {ROTATION_DAYS_MIN} and {ROTATION_DAYS_MAX} (the range KMS accepts)")
    if from_report is not None and from_snapshot is not None:
        fail("--from-report and --from-snapshot are alternatives: give one")
    region_list = (region or []) + ([regions] if regions else [])
    options = aws_options(
        profile,
        region_list,
        endpoint_url,
        org,
        role_name,
        accounts,
        timeout=timeout,
        max_attempts=max_attempts,
        concurrency=concurrency,
        quotas=quotas,
    )
    again = _resume_command(ctx, endpoint_url)
    if resume is not None:
        _resume_options(ctx, resume, apply, rollback_journal)
        _resumable(resume)  # exits 2 for a journal it cannot resume, 0 for one with nothing left to do
    # The journal first: a missing or broken file is the problem to report, not the missing --yes.
    journal_file = _journal_file(rollback_journal, force) if rollback_journal is not None else None
    if (apply or rollback_journal is not None) and not yes and not sys.stdin.isatty():
        fail("--apply and --rollback change AWS and need a confirmation: run on a terminal or pass --yes")

    if journal_file is not None:
        _rollback(journal_file, options, scan_config(config), force, fmt, yes)
        return
    if resume is not None:
        raise typer.Exit(_resume(resume, options, scan_config(config), fmt, yes, quiet, again))

    cfg = scan_config(config)
    if rotation_days > cfg.max_rotation_days:
        fail(
            f"--rotation-days {rotation_days} is longer than the allowed maximum ({cfg.max_rotation_days}): "
            "key_rotation_period_too_long would still fail"
        )
    fopts = FixOptions(
        rotation_days=rotation_days,
        cancel_deletion=cancel_deletion,
        force=force,
        target_key=target_key,
        require_context=parse_context(require_context),
        admins=frozenset(principal_arns(admin, "--admin")),
        users=frozenset(principal_arns(user, "--user")),
        trusted_accounts=frozenset(cfg.trusted_accounts),
        trusted_org_ids=frozenset(cfg.trusted_org_ids),
        checks=frozenset(split_csv(checks) or []) or None,
        keys=tuple(split_csv(key) or ()),
        regions=frozenset(options.regions) if options.regions else None,
        accounts=frozenset(split_csv(account) or []) or None,
    )
    plan = _plan(options, cfg, fopts, from_report, from_snapshot, quiet)
    if not apply:
        _show_plan(plan, fmt)
        raise typer.Exit(EXIT_OK)
    if plan.empty:
        _show_plan(plan, fmt)
        err_console.print("nothing to apply")
        raise typer.Exit(EXIT_OK)
    if fmt == "text":
        _show_plan(plan, fmt)
    if not yes and not typer.confirm(f"Apply these {len(plan.actions)} change(s)?", err=True):
        fail("not confirmed; nothing changed")
    raise typer.Exit(_apply(plan, options, cfg, journal, fmt, quiet, again))


# The options a resume takes again as they were given: where and as whom AWS is called, and how (the plan, its
# accounts and Regions come from the journal).
CALL_OPTIONS = {
    "profile": "--profile",
    "role_name": "--role-name",
    "timeout": "--timeout",
    "max_attempts": "--max-attempts",
    "concurrency": "--concurrency",
    "quotas": "--quotas",
}


def _resume_command(ctx: typer.Context, endpoint_url: str | None) -> Callable[[Path], str]:
    """The command that resumes this run's journal, with this run's AWS options (an --endpoint-url inherited from
    KMSGUARD_ENDPOINT_URL is inherited again)."""
    words = ["kmsguard", "fix", "--apply", "--resume"]
    given = [(flag, ctx.params[name]) for name, flag in CALL_OPTIONS.items() if _given(ctx, name)]
    if typed_endpoint(endpoint_url):
        given.append(("--endpoint-url", endpoint_url))
    flags = [word for flag, value in given for word in (flag, f"{value:g}" if isinstance(value, float) else str(value))]
    return lambda path: shlex.join([*words, str(path), *flags])


def _resume_options(ctx: typer.Context, path: Path, apply: bool, rollback_journal: Path | None) -> None:
    """Exit 2 for options a resume cannot take: it continues an --apply, with the plan its journal holds."""
    if not apply:
        fail(f"--resume carries on an interrupted --apply: run kmsguard fix --apply --resume {path}")
    if rollback_journal is not None:
        fail("--resume and --rollback are alternatives: give one")
    if _given(ctx, "journal"):
        fail(f"--resume appends to the journal it resumes ({path}): drop --journal")
    for name, flag in PLAN_OPTIONS.items():
        if _given(ctx, name):
            fail(f"--resume applies the plan saved in {path}: {flag} cannot change it; drop {flag}")


def _given(ctx: typer.Context, name: str) -> bool:
    """Whether the option was given (on the command line or by its environment variable), not left at its default.
    By the source's name: typer carries its own copy of click, whose ParameterSource is not click's."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT")


def _resumable(path: Path) -> None:
    """Exit 2 naming the problem for a journal that cannot be resumed (unreadable, not a fix journal, not verified,
    holding no plan); exit 0 saying so when every action of its plan has ended."""
    from kmsguard.fix.apply import resume_state
    from kmsguard.fix.journal import JournalError, load_journal

    try:
        journal = load_journal(path)
        if not journal.verified:
            # A resume applies the plan the file holds: only this user's kmsguard's, intact, is ever applied.
            fail(f"{path}: {journal.problem}; refusing to resume from it (run kmsguard fix --apply for a new plan)")
        state = resume_state(journal)
    except JournalError as e:
        fail(str(e))
    if state.finished:
        message = f"{path}: every action of its plan has ended ({_counts_text(_counts(state.earlier.values()))}); "
        message += "nothing to resume"
        err_console.print(message, highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_OK)


def _counts(outcomes: Iterable[Outcome]) -> dict[str, int]:
    statuses = [o.status for o in outcomes]
    return {s: statuses.count(s) for s in ("applied", "skipped", "failed")}


def _counts_text(counts: dict[str, int]) -> str:
    return f"{counts['applied']} applied, {counts['skipped']} skipped, {counts['failed']} failed"


def _plan(
    options: AwsOptions,
    cfg: ScanConfig,
    fopts: FixOptions,
    from_report: Path | None,
    from_snapshot: Path | None,
    quiet: bool,
) -> Plan:
    from kmsguard.pipeline import judge

    if from_snapshot is not None:
        snapshot = snapshot_file(from_snapshot)
        findings = judge(snapshot, cfg).findings
    elif from_report is not None:
        wanted = load_report_findings(from_report)
        if options.regions is None:
            options.regions = sorted({f.region for f in wanted if f.region != "global"}) or None
        snapshot = collect_live(options, quiet)
        # The report says what to fix; the live read says whether it is still broken and how.
        keys = {(f.check_id, f.resource_arn) for f in wanted if f.failing}
        findings = [f for f in judge(snapshot, cfg).findings if (f.check_id, f.resource_arn) in keys]
    else:
        snapshot = collect_live(options, quiet)
        findings = judge(snapshot, cfg).findings
    return build_plan(snapshot, findings, fopts)


def _show_plan(plan: Plan, fmt: str) -> None:
    if fmt == "json":
        sys.stdout.write(json.dumps(plan.to_dict(), indent=2, default=str) + "\n")
        return
    out = sys.stdout
    if plan.empty:
        out.write("Nothing to fix: no failing finding has an action.\n")
    for i, a in enumerate(plan.actions, 1):
        out.write(f"\n[{i}] {a.action} ({','.join(a.check_ids)})\n    {a.resource_arn}  [{a.account} {a.region}]\n")
        if "summary" in a.impact:
            out.write(f"    {a.impact['summary']}\n")
        if a.action == "tighten_key_policy":
            for c in a.impact["changes"]:
                out.write(f"    - {c}\n")
            out.write("    policy diff:\n")
            for line in a.impact["policy_diff"]:
                out.write(f"      {line}\n")
            _show_access(out, "loses", a.impact["lost"])
            _show_access(out, "gains", a.impact["gained"])
            for loss in a.impact["unintended_loss"]:
                out.write(f"    ! not intended: {loss['principal']} loses {loss['action']}{_undecided(loss)}\n")
        else:
            out.write(f"    before: {json.dumps(a.before, default=str)}\n    after:  {json.dumps(a.after)}\n")
    for r in plan.refused:
        out.write(f"\nrefused ({','.join(r.check_ids)}) {r.resource_arn}: {r.reason}\n")
    for m in plan.manual:
        out.write(f"\nmanual ({','.join(m.check_ids)}) {m.resource_arn}: cannot be re-keyed in place; run:\n")
        for step in m.steps:
            out.write(f"    {step}\n")
    out.write(f"\n{len(plan.actions)} action(s), {len(plan.refused)} refused, {len(plan.manual)} manual.\n")


def _undecided(loss: dict[str, Any]) -> str:
    """A loss the engine could not rule out says so (``simulate.ChangeImpact.unintended``)."""
    return f" ({loss['undecided']})" if loss.get("undecided") else ""


def _plain(values: list[str]) -> tuple[str, ...]:
    # The solver may write a boolean as "FaLsE" (Bool compares case-insensitively); people read "false".
    return tuple(v.lower() if v.lower() in ("true", "false") else v for v in values)


def _show_access(out: Any, verb: str, requests: list[dict[str, Any]]) -> None:
    """One line per principal; the request context every example shares is printed too, because "loses
    kms:Decrypt" means something else entirely when it only holds "when aws:securetransport=false"."""
    who: dict[str, list[dict[str, Any]]] = {}
    for r in requests:
        who.setdefault(r["principal"], []).append(r)
    for principal, reqs in sorted(who.items()):
        actions = ", ".join(sorted({r["action"] for r in reqs})[:6])
        shared = set.intersection(*({(k, _plain(v)) for k, v in (r.get("context") or {}).items()} for r in reqs))
        when = "; ".join(f"{k}={','.join(v)}" for k, v in sorted(shared))
        out.write(f"    {principal} {verb} e.g. {actions}{f'  (when {when})' if when else ''}\n")


def _sessions(options: AwsOptions) -> Any:
    from kmsguard.aws.session import SessionFactory
    from kmsguard.fix.apply import Sessions

    try:
        return Sessions(SessionFactory(options), options.role_name)
    except AwsUnavailable as e:
        fail(str(e), EXIT_AWS)


def _apply(
    plan: Plan,
    options: AwsOptions,
    cfg: ScanConfig,
    journal_path: Path | None,
    fmt: str,
    quiet: bool,
    again: Callable[[Path], str],
) -> int:
    from kmsguard.fix.apply import apply_plan
    from kmsguard.fix.journal import Journal, JournalError, default_path

    path = journal_path or default_path()
    sessions = _sessions(options)
    try:
        jr = Journal(path)
    except FileExistsError:
        fail(f"--journal {path}: already exists; a journal is never overwritten")
    except JournalError as e:  # the journal key
        fail(str(e))
    except OSError as e:
        fail(f"--journal {path}: cannot create: {e.strerror or e}")
    err_console.print(f"journal: {path}", highlight=False, soft_wrap=True)  # a long path stays one line
    with jr:
        outcomes = _carry_out(
            lambda show: apply_plan(plan, sessions, jr, show), len(plan.actions), path, fmt, quiet, again
        )
    return _report(plan, outcomes, outcomes, None, sessions, options, cfg, path, fmt)


def _resume(
    path: Path, options: AwsOptions, cfg: ScanConfig, fmt: str, yes: bool, quiet: bool, again: Callable[[Path], str]
) -> int:
    from kmsguard.fix.apply import resume_plan, resume_state
    from kmsguard.fix.journal import Journal, JournalError

    try:
        jr, found = Journal.reopen(path)  # locked, read again and verified under the lock
    except JournalError as e:
        fail(str(e))
    with jr:
        try:
            state = resume_state(found)
        except JournalError as e:
            fail(str(e))
        if state.finished:  # another run finished it since the first look
            err_console.print(f"{path}: every action of its plan has ended; nothing to resume", highlight=False)
            return EXIT_OK
        if options.regions is None:  # where the session factory signs in: the plan's partition
            options.regions = sorted({a.region for a in state.actions if a.region != "global"}) or None
        sessions = _sessions(options)
        left = Plan(actions=[state.actions[i] for i in state.todo])
        if fmt == "text":
            _show_plan(left, fmt)
        err_console.print(
            f"resuming {path}: {len(state.earlier)} action(s) ended in the earlier run, {len(state.in_doubt)} in "
            f"doubt (stopped mid-change: re-read before anything is done), {len(state.not_started)} not started",
            highlight=False,
            soft_wrap=True,
        )
        if not yes and not typer.confirm(f"Carry on with these {len(state.todo)} action(s)?", err=True):
            fail("not confirmed; nothing changed")
        outcomes = _carry_out(
            lambda show: resume_plan(state, sessions, jr, show), len(state.todo), path, fmt, quiet, again
        )
    by_index = state.earlier | dict(zip(state.todo, outcomes, strict=True))
    every = [by_index[i] for i in sorted(by_index)]
    return _report(Plan(actions=state.actions), every, outcomes, len(state.earlier), sessions, options, cfg, path, fmt)


def _carry_out(
    run: Callable[[Callable[[Outcome], None]], list[Outcome]],
    total: int,
    path: Path,
    fmt: str,
    quiet: bool,
    again: Callable[[Path], str],
) -> list[Outcome]:
    """``run(show)`` with a progress bar over the actions on a terminal and one line per action on stdout (text);
    after Ctrl-C, say what was done and how to resume, and exit 130."""
    from kmsguard.fix.apply import Interrupted

    # The bar sends stdout through the terminal it draws on: with stdout redirected, the lines would end up on
    # stderr, so in text mode it is drawn only when stdout is a terminal too.
    with progress_bar(not quiet and (fmt == "json" or sys.stdout.isatty())) as bar:
        if bar is not None:
            bar.add_total("actions", total)

        def show(o: Outcome) -> None:
            if fmt == "text":
                sys.stdout.write(f"{o.status:>8}  {o.action.action} {o.action.resource_arn}: {o.message}\n")
            if bar is not None:
                bar.advance("actions")

        try:
            return run(show)
        except Interrupted as stop:
            interrupted = stop
    _interrupted(interrupted, path, fmt, again(path))


def _interrupted(stop: Interrupted, path: Path, fmt: str, resume_with: str) -> NoReturn:
    """Ctrl-C: what ended, what was not started, and the command that carries on; exit 130."""
    if fmt == "json":
        doc = {
            "interrupted": True,
            "results": [o.to_dict() for o in stop.outcomes],
            "not_started": [a.to_dict() for a in stop.not_started],
            "journal": str(path),
            "resume": resume_with,
        }
        sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")
    sys.stdout.flush()
    err_console.print(
        f"interrupted: {len(stop.outcomes)} action(s) ended (each journalled), {len(stop.not_started)} not started; "
        f"to carry on: {resume_with}",
        highlight=False,
        soft_wrap=True,
    )
    raise typer.Exit(EXIT_INTERRUPTED)


def _report(
    plan: Plan,
    every: list[Outcome],
    this_run: list[Outcome],
    ended_earlier: int | None,
    sessions: Sessions,
    options: AwsOptions,
    cfg: ScanConfig,
    path: Path,
    fmt: str,
) -> int:
    """Verify and report an apply: ``every`` outcome in plan order (a resume's include those its journal says
    ended in the earlier run, ``ended_earlier`` of them; None: not a resume). Exit 1 when an action of either
    run failed or verification found a problem."""
    from kmsguard.fix.verify import verify

    check = verify(every, sessions, options, cfg)
    failed = [o for o in every if o.status == "failed"]
    counts = _counts(this_run)
    if fmt == "json":
        earlier = {} if ended_earlier is None else {"ended_earlier": ended_earlier}
        doc = plan.to_dict() | {
            "results": [o.to_dict() for o in every],
            "verification": check.to_dict(),
            "journal": str(path),
            "summary": counts | earlier,
        }
        sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")
        return EXIT_FINDINGS if failed or not check.ok else EXIT_OK
    for r in check.reread:
        if not r["as_planned"]:
            sys.stdout.write(f"  re-read {r['resource_arn']}: NOT in the planned state\n")
    for f in check.still_failing:
        sys.stdout.write(f"  still failing: {f['check_id']} {f['resource_arn']}: {f['message']}\n")
    for loss in check.unintended_loss:
        sys.stdout.write(
            f"  access lost (not intended): {loss['principal']} {loss['action']} on {loss['resource_arn']}"
            f"{_undecided(loss)}\n"
        )
    for problem in check.errors:
        sys.stdout.write(f"  verification: {problem}\n")
    earlier_text = "" if ended_earlier is None else f" (and {ended_earlier} ended in the earlier run)"
    sys.stdout.write(f"{_counts_text(counts)}{earlier_text}; journal {path} (undo: kmsguard fix --rollback {path})\n")
    return EXIT_FINDINGS if failed or not check.ok else EXIT_OK


def _journal_file(path: Path, force: bool) -> JournalFile:
    """The journal, or exit 2: unreadable, or not verified (unsigned, another key, edited) without --force."""
    from kmsguard.fix.journal import JournalError, load_journal

    try:
        journal = load_journal(path)
    except JournalError as e:
        fail(str(e))
    if not journal.verified and not force:
        fail(f"{path}: {journal.problem}; refusing to roll back from it (--force reviews it, trusting nothing in it)")
    return journal


def _rollback(journal: JournalFile, options: AwsOptions, cfg: ScanConfig, force: bool, fmt: str, yes: bool) -> None:
    from kmsguard.fix.rollback import restore, review, review_text

    sessions = _sessions(options)
    steps = review(journal, sessions, options, cfg, force=force)
    # Every concrete operation is shown before asking (on stderr when stdout carries JSON).
    shown = sys.stdout if fmt == "text" else sys.stderr
    shown.write(review_text(journal, steps))
    shown.flush()  # before the question, which goes to stderr, even when stdout is a pipe
    todo = sum(1 for s in steps if s.decision == "restore")
    if todo and not yes and not typer.confirm(f"Carry out these {todo} restore(s)?", err=True):
        fail("not confirmed; nothing changed")
    results = restore(steps, sessions)
    failed = [r for r in results if r.status not in ("restored", "unchanged")]
    if fmt == "json":
        doc = {"journal": str(journal.path), "verified": journal.verified, "problem": journal.problem}
        sys.stdout.write(json.dumps(doc | {"results": [r.to_dict() for r in results]}, indent=2, default=str) + "\n")
    else:
        for r in results:
            a = r.entry.action
            sys.stdout.write(f"{r.status:>9}  {a.get('action')} {a.get('resource_arn')}: {r.message}\n")
        sys.stdout.write(f"{len(results) - len(failed)} restored or unchanged, {len(failed)} not restored\n")
    raise typer.Exit(EXIT_FINDINGS if failed else EXIT_OK)
