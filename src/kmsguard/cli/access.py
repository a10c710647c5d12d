"""kmsguard access: who can use or administer each key, through every path AWS allows (policy/access.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from kmsguard.cli.common import (
    MAX_ATTEMPTS_OPTION,
    TIMEOUT_OPTION,
    BarProgress,
    aws_options,
    collect_live,
    fail,
    progress_bar,
    snapshot_file,
    split_csv,
    write_output,
)
from kmsguard.model.snapshot import Key, Snapshot
from kmsguard.policy.access import AccessEvaluator, KeyAccess, canonical
from kmsguard.policy.actions import KMS_ACTIONS, WHO_CAN_ACTIONS
from kmsguard.policy.estate import build_estate

app = typer.Typer(
    help="Effective access: who can decrypt or administer each key, and by which path.", no_args_is_help=True
)

_FORMATS = ("table", "json")


def _source(
    from_snapshot: Path | None,
    profile: str | None,
    regions: list[str] | None,
    endpoint_url: str | None,
    org: bool,
    role_name: str,
    accounts: list[str] | None,
    quiet: bool,
    timeout: float | None,
    max_attempts: int | None,
) -> Snapshot:
    if from_snapshot is not None:
        return snapshot_file(from_snapshot)
    options = aws_options(
        profile, regions, endpoint_url, org, role_name, accounts, timeout=timeout, max_attempts=max_attempts
    )
    return collect_live(options, quiet)


def _actions(values: list[str] | None) -> list[str]:
    chosen = split_csv(values) or list(WHO_CAN_ACTIONS)
    known = {a.lower() for a in KMS_ACTIONS}
    for a in chosen:
        if a.lower() not in known:
            fail(f"--action: {a!r} is not a KMS action (e.g. kms:Decrypt)")
    return [canonical(a) for a in chosen]


def _format(fmt: str) -> str:
    if fmt not in _FORMATS:
        fail(f"--format: {fmt!r} is not one of {', '.join(_FORMATS)}")
    return fmt


def resolve_key(snapshot: Snapshot, ref: str) -> Key:
    """A key by ARN (key or alias), id, alias name ("alias/x" or "x"), or "region:id"; exit 2 when unknown or
    ambiguous. The references themselves resolve as everywhere else (``model.keyrefs.KeyIndex``)."""
    from kmsguard.model.keyrefs import KeyIndex

    keys = {k.arn: k for k in snapshot.all_keys()}
    index = KeyIndex.of_snapshot(snapshot)
    region, sep, rest = ref.partition(":")
    if ref.startswith("arn:"):
        found = index.candidates(ref)
    elif sep:  # region:id
        found = [arn for arn in index.candidates(rest) if keys[arn].region == region]
    else:
        alias = ref if ref.startswith("alias/") else f"alias/{ref}"
        found = sorted({*index.candidates(ref), *index.candidates(alias)})
    if not found:
        fail(f"unknown key {ref!r}: no key with that ARN, id or alias in the scanned accounts and regions")
    if len(found) > 1:
        fail(f"key {ref!r} is ambiguous ({', '.join(found)}): give the ARN")
    return keys[found[0]]


@app.command("who-can")
def who_can(
    key: str = typer.Argument(..., help="Key id, ARN or alias."),
    action: list[str] | None = typer.Option(
        None, "--action", "-a", help="KMS action (repeatable). Default: " + ", ".join(WHO_CAN_ACTIONS) + "."
    ),
    from_snapshot: Path | None = typer.Option(None, "--from-snapshot", help="Judge a saved snapshot."),
    profile: str | None = typer.Option(None, "--profile", help="AWS profile from the shared config."),
    region: list[str] | None = typer.Option(None, "--region", "-r", help="Region to scan (repeatable)."),
    endpoint_url: str | None = typer.Option(
        None,
        "--endpoint-url",
        envvar="KMSGUARD_ENDPOINT_URL",
        help="Send every AWS call to this endpoint (an emulator).",
    ),
    org: bool = typer.Option(False, "--org", help="Every ACTIVE account of the AWS Organization."),
    role_name: str = typer.Option("OrganizationAccountAccessRole", "--role-name", help="Role assumed per account."),
    accounts: list[str] | None = typer.Option(None, "--accounts", help="Only these account ids."),
    timeout: float | None = TIMEOUT_OPTION,
    max_attempts: int | None = MAX_ATTEMPTS_OPTION,
    fmt: str = typer.Option("table", "--format", "-f", help="table or json."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write here instead of stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Every principal that can perform each action on KEY, with the path that gives it."""
    actions, fmt = _actions(action), _format(fmt)
    snapshot = _source(
        from_snapshot, profile, region, endpoint_url, org, role_name, accounts, quiet, timeout, max_attempts
    )
    target = resolve_key(snapshot, key)
    result = AccessEvaluator(build_estate(snapshot)).who_can(target, actions)
    if fmt == "json":
        write_output(json.dumps(result.to_dict(), indent=2), output)
        return
    _print_key(result, target, output)


@app.command("principal")
def principal(
    principal_arn: str = typer.Argument(..., help="IAM user or role ARN (or an account's root ARN)."),
    action: list[str] | None = typer.Option(None, "--action", "-a", help="KMS action (repeatable)."),
    from_snapshot: Path | None = typer.Option(None, "--from-snapshot", help="Judge a saved snapshot."),
    profile: str | None = typer.Option(None, "--profile", help="AWS profile from the shared config."),
    region: list[str] | None = typer.Option(None, "--region", "-r", help="Region to scan (repeatable)."),
    endpoint_url: str | None = typer.Option(
        None,
        "--endpoint-url",
        envvar="KMSGUARD_ENDPOINT_URL",
        help="Send every AWS call to this endpoint (an emulator).",
    ),
    org: bool = typer.Option(False, "--org", help="Every ACTIVE account of the AWS Organization."),
    role_name: str = typer.Option("OrganizationAccountAccessRole", "--role-name", help="Role assumed per account."),
    accounts: list[str] | None = typer.Option(None, "--accounts", help="Only these account ids."),
    timeout: float | None = TIMEOUT_OPTION,
    max_attempts: int | None = MAX_ATTEMPTS_OPTION,
    fmt: str = typer.Option("table", "--format", "-f", help="table or json."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write here instead of stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Every key PRINCIPAL can use or administer, with the path that gives it."""
    actions, fmt = _actions(action), _format(fmt)
    snapshot = _source(
        from_snapshot, profile, region, endpoint_url, org, role_name, accounts, quiet, timeout, max_attempts
    )
    estate = build_estate(snapshot)
    if principal_arn not in estate.subjects:
        fail(f"unknown principal {principal_arn!r}: not an IAM user, role or account root of the scanned accounts")
    with progress_bar(not quiet) as bar:
        doc = principal_access(AccessEvaluator(estate), principal_arn, snapshot.all_keys(), actions, bar)
    if fmt == "json":
        write_output(json.dumps(doc, indent=2), output)
        return
    _print_principal(doc, output)


def principal_access(
    ev: AccessEvaluator, arn: str, keys: list[Key], actions: list[str], progress: BarProgress | None = None
) -> dict[str, Any]:
    """The ``principal`` JSON: for each action, the keys ``arn`` can use and how (every key is judged: a
    progress bar on a terminal says how far)."""
    if progress is not None:
        progress.add_total("keys", len(keys))
    per_action: dict[str, list[dict[str, Any]]] = {a: [] for a in actions}
    assumptions: list[str] = []
    for key in keys:
        access = ev.who_can(key, actions)
        assumptions = access.assumptions
        if progress is not None:
            progress.advance("keys")
        for a in actions:
            hit = access.principals(a).get(arn)
            if hit is not None:
                per_action[a].append(
                    {"key": key.arn, "decision": hit.decision, "paths": [p.to_dict() for p in hit.paths]}
                )
    return {
        "principal": arn,
        "assumptions": assumptions,
        "results": [{"action": a, "keys": ks} for a, ks in per_action.items()],
    }


def _console(output: Path | None) -> Console:
    return Console(record=output is not None, width=160 if output is not None else None)


def _print_key(result: KeyAccess, key: Key, output: Path | None) -> None:
    console = _console(output)
    console.print(f"[bold]{key.display_name}[/] {key.arn}")
    for action, principals in result.results.items():
        table = Table(title=action, title_justify="left", show_lines=False)
        for col in ("principal", "decision", "via", "statements / chain", "conditions"):
            table.add_column(col, overflow="fold")
        for p in principals:
            for i, path in enumerate(p.paths):
                cond = path.to_dict()["conditions"]
                table.add_row(
                    p.principal if i == 0 else "",
                    p.decision if i == 0 else "",
                    path.via,
                    " → ".join(path.chain) + ("\n" if path.chain else "") + "\n".join(path.statements),
                    json.dumps(cond) if cond else "",
                )
        if not principals:
            table.add_row("(nobody)", "", "", "", "")
        console.print(table)
    console.print("[dim]assumptions:[/]")
    for a in result.assumptions:
        console.print(f"[dim]- {a}[/]", highlight=False)
    if output is not None:
        write_output(console.export_text(), output)


def _print_principal(doc: dict[str, Any], output: Path | None) -> None:
    console = _console(output)
    console.print(f"[bold]{doc['principal']}[/]")
    for entry in doc["results"]:
        table = Table(title=entry["action"], title_justify="left")
        for col in ("key", "decision", "via"):
            table.add_column(col, overflow="fold")
        for k in entry["keys"]:
            table.add_row(k["key"], k["decision"], ", ".join(sorted({p["via"] for p in k["paths"]})))
        if not entry["keys"]:
            table.add_row("(none)", "", "")
        console.print(table)
    if output is not None:
        write_output(console.export_text(), output)
