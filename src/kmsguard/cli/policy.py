"""`kmsguard policy ...`: validate, analyze, simulate, diff and generate KMS key policies.

The JSON printed by these commands is a stable contract (issue 3); every judgement comes from
``kmsguard.policy``. Bad input is a one-line error naming the file and exit code 2.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from kmsguard import __version__, arn
from kmsguard.cli.common import EXIT_USAGE, fail, write_output
from kmsguard.config import ScanConfig
from kmsguard.fileio import LoadError, read_text
from kmsguard.model.snapshot import AccountSnapshot, Key, RegionSnapshot, Snapshot
from kmsguard.policy.errors import PolicyError
from kmsguard.policy.model import Policy
from kmsguard.policy.principals import is_account_id, is_org_id

app = typer.Typer(help="Analyse, simulate, diff and generate KMS key policies.", no_args_is_help=True)

KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
DETAILS = ("admins", "wildcard_statements", "denies_insecure_transport", "iam_only", "examples", "uncertain")


def _read(path: Path) -> str:
    try:
        return read_text(path)
    except LoadError as e:  # no such file, unreadable, not UTF-8 (naming the line)
        fail(f"{path}: {e}")


def _load(path: Path, kind: str = "key") -> tuple[str, Policy]:
    from kmsguard.policy.normalize import parse_and_normalize

    text = _read(path)
    try:
        return text, parse_and_normalize(text, source=str(path), kind=kind)  # type: ignore[arg-type]
    except PolicyError as e:
        fail(str(e).splitlines()[0] if str(e) else f"{path}: not a valid policy")


def _account(value: str, option: str = "--account") -> str:
    if not is_account_id(value):
        fail(f"{option}: {value!r} is not a 12-digit AWS account id")
    return value


def _org(value: str, option: str) -> str:
    if not is_org_id(value):
        fail(f"{option}: {value!r} is not an Organization id (o- and 10 to 32 lower-case letters or digits)")
    return value


def _pairs(values: list[str] | None, option: str) -> list[tuple[str, str]]:
    out = []
    for item in values or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            fail(f"{option}: {item!r} is not KEY=VALUE")
        out.append((key.strip(), value))
    return out


def _emit(data: Any, fmt: str) -> None:
    if fmt != "json":
        fail(f"--format: {fmt!r} is not one of json")
    write_output(json.dumps(data, indent=2, sort_keys=False), None)


# --- validate -------------------------------------------------------------------------------------------


@app.command("validate")
def validate(
    file: Path = typer.Argument(..., help="The policy document (JSON)."),
    kind: str = typer.Option("key", "--kind", help="key (a key policy) or identity (an IAM policy)."),
    fmt: str = typer.Option("text", "--format", "-f", help="text or json."),
) -> None:
    """List the problems in a policy (errors and warnings, with line:col); exit 2 when it is invalid."""
    from kmsguard.policy.parse import validate_policy

    if kind not in ("key", "identity"):
        fail(f"--kind: {kind!r} is not one of key, identity")
    text = _read(file)
    problems = validate_policy(text, source=str(file), kind=kind)  # type: ignore[arg-type]
    invalid = any(p.severity == "error" for p in problems)
    if fmt == "json":
        _emit({"file": str(file), "valid": not invalid, "problems": [p.to_dict() for p in problems]}, "json")
    elif fmt == "text":
        for p in problems:
            typer.echo(p.format(str(file)))
        if not problems:
            typer.echo(f"{file}: valid")
    else:
        fail(f"--format: {fmt!r} is not one of text, json")
    raise typer.Exit(EXIT_USAGE if invalid else 0)


# --- analyze ----------------------------------------------------------------------------------------------


def policy_findings(text: str, account: str, config: ScanConfig) -> list[dict[str, Any]]:
    """The scan's key-policy checks on this one policy, as a scan would report them."""
    from kmsguard.checks.registry import run_checks, select_checks

    key = Key(
        arn=f"arn:aws:kms:us-east-1:{account}:key/{KEY_ID}",
        key_id=KEY_ID,
        account=account,
        region="us-east-1",
        key_manager="CUSTOMER",
        key_state="Enabled",
        policy=text,
    )
    snap = Snapshot(
        kmsguard_version=__version__,
        collected_at=datetime.now(UTC),
        source="iac",
        accounts=[AccountSnapshot(account_id=account, regions=[RegionSnapshot(region="us-east-1", keys=[key])])],
    )
    specs = [s for s in select_checks() if s.family == "policy"]
    return [f.model_dump(mode="json") for f in run_checks(snap, config, specs)]


@app.command("analyze")
def analyze(
    file: Path = typer.Argument(..., help="The key policy (JSON)."),
    account: str = typer.Option(..., "--account", help="The key's account."),
    org_id: list[str] | None = typer.Option(None, "--org-id", help="A trusted Organization (repeatable)."),
    trusted_account: list[str] | None = typer.Option(None, "--trusted-account", help="A trusted account (repeatable)."),
    fmt: str = typer.Option("json", "--format", "-f", help="json or table."),
    examples: bool = typer.Option(False, "--examples", help="Add a concrete example request to each 'yes'."),
) -> None:
    """Who can use and manage the key: public? external principals? admins with use? who can do what?"""
    from kmsguard.policy.questions import analyze_key_policy

    _account(account)
    trusted = [_account(a, "--trusted-account") for a in trusted_account or ()]
    orgs = [_org(o, "--org-id") for o in org_id or ()]
    if fmt not in ("json", "table"):
        fail(f"--format: {fmt!r} is not one of json, table")
    text, pol = _load(file)
    result = analyze_key_policy(pol, account, trusted_accounts=trusted, trusted_org_ids=orgs, examples=examples)
    data = result.to_dict()
    out = {
        "public": data["public"],
        "external_principals": data["external_principals"],
        "admins_can_decrypt": data["admins_can_decrypt"],
        "who_can": data["who_can"],
        "findings": policy_findings(text, account, ScanConfig(trusted_accounts=trusted, trusted_org_ids=orgs)),
        "details": {k: data[k] for k in DETAILS},
    }
    if fmt == "json":
        _emit(out, "json")
        return
    _table(out)


def _table(out: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"public: {out['public']}   admins_can_decrypt: {out['admins_can_decrypt']}")
    console.print(f"external principals: {', '.join(out['external_principals']) or '-'}")
    table = Table("action", "principal", "statement", "conditions")
    for action, entries in out["who_can"].items():
        for e in entries:
            conds = "; ".join(f"{c['operator']} {c['key']} {c['values']}" for c in e["conditions"])
            table.add_row(action, e["principal"], str(e["sid"] or e["statement"]), conds or "-")
    console.print(table)
    for f in out["findings"]:
        console.print(f"{f['status']:5} {f['check_id']}: {f['message']}")


# --- simulate ---------------------------------------------------------------------------------------------


@app.command("simulate")
def simulate(
    file: Path = typer.Argument(..., help="The key policy (JSON)."),
    account: str = typer.Option(..., "--account", help="The key's account."),
    principal: str = typer.Option(..., "--principal", help="An IAM ARN, or service:NAME for a service principal."),
    action: str = typer.Option(..., "--action", help="The KMS action, e.g. kms:Decrypt."),
    context: list[str] | None = typer.Option(
        None, "--context", help="KEY=VALUE (repeatable; a key given several times is multi-valued)."
    ),
    iam_policy: list[Path] | None = typer.Option(None, "--iam-policy", help="The caller's identity policy (JSON)."),
    assume_iam_allows: bool = typer.Option(False, "--assume-iam-allows", help="The caller's IAM policies allow."),
    key_arn: str | None = typer.Option(None, "--key-arn", help="The key ARN (default: a key of --account)."),
    principal_org_id: str | None = typer.Option(
        None, "--principal-org-id", help="The caller's Organization (sets aws:PrincipalOrgID)."
    ),
    fmt: str = typer.Option("json", "--format", "-f", help="json."),
) -> None:
    """Decide one request: allow, explicit_deny or implicit_deny, and the statements that decided it.

    The request carries the context keys AWS sets from the caller (kms:CallerAccount, aws:PrincipalArn,
    ...) unless --context gives them; the output lists them under assumed_context."""
    from kmsguard.policy.evaluate import evaluate
    from kmsguard.policy.normalize import implicit_context, request

    _account(account)
    org = _org(principal_org_id, "--principal-org-id") if principal_org_id is not None else None
    if iam_policy and assume_iam_allows:
        fail("--iam-policy and --assume-iam-allows exclude each other: give the policies or assume they allow")
    if not action.lower().startswith("kms:"):
        fail(f"--action: {action!r} is not a KMS action (kms:...)")
    ctx: dict[str, list[str]] = {}
    for key, value in _pairs(context, "--context"):
        ctx.setdefault(key, []).append(value)
    _, pol = _load(file)
    iam = [_load(p, "identity")[1] for p in iam_policy or ()]
    req = request(principal, action, key_arn or f"arn:aws:kms:us-east-1:{account}:key/{KEY_ID}", ctx)
    assumed = implicit_context(req, org)
    req = replace(req, context={**assumed, **req.context})
    result = evaluate(pol, req, iam_policies=iam or None, assume_iam_allows=assume_iam_allows, key_account=account)
    _emit(
        {
            "decision": result.decision.value,
            "matched_statements": list(result.matched_statements),
            "notes": list(result.notes),
            "assumed_context": {k: list(v) for k, v in sorted(assumed.items())},
        },
        fmt,
    )


# --- diff -------------------------------------------------------------------------------------------------


@app.command("diff")
def diff(
    old: Path = typer.Argument(..., help="The current key policy."),
    new: Path = typer.Argument(..., help="The proposed key policy."),
    account: str = typer.Option(..., "--account", help="The key's account."),
    key_arn: str | None = typer.Option(None, "--key-arn", help="The key's ARN (default: an example key of --account)."),
    fmt: str = typer.Option("json", "--format", "-f", help="json."),
) -> None:
    """Every access the change adds and removes (each class of caller with an example request), and whether
    it locks out every admin."""
    from kmsguard.policy.diff import diff_policies

    _account(account)
    if key_arn is not None:
        parsed = arn.parse(key_arn)
        if parsed is None or (parsed.service, parsed.resource_type, parsed.account) != ("kms", "key", account):
            fail(f"--key-arn: {key_arn!r} is not the ARN of a KMS key in account {account}")
    _, before = _load(old)
    _, after = _load(new)
    _emit(diff_policies(before, after, account, key_arn=key_arn).to_dict(), fmt)


# --- generate ---------------------------------------------------------------------------------------------


@app.command("generate")
def generate(
    account: str = typer.Option(..., "--account", help="The key's account."),
    admin: list[str] = typer.Option(..., "--admin", help="Administrator role/user ARN (repeatable)."),
    user: list[str] | None = typer.Option(None, "--user", help="User role/user ARN (repeatable)."),
    via_service: list[str] | None = typer.Option(
        None, "--via-service", help="Use only through this service, e.g. s3.us-east-1.amazonaws.com (repeatable)."
    ),
    require_context: list[str] | None = typer.Option(
        None, "--require-context", help="Require encryption context KEY=VALUE on every use (repeatable)."
    ),
    any_grants: bool = typer.Option(False, "--allow-any-grants", help="Do not limit grants to AWS resources."),
    no_deny_http: bool = typer.Option(False, "--no-deny-insecure-transport", help="Leave out DenyInsecureTransport."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the policy here instead of stdout."),
) -> None:
    """Write a least-privilege key policy in the guide's structure (it analyses clean)."""
    from kmsguard.policy.generate import generate_key_policy

    _account(account)
    ctx = dict(_pairs(require_context, "--require-context"))
    try:
        doc = generate_key_policy(
            account,
            admin,
            user or (),
            via_services=via_service or (),
            encryption_context=ctx or None,
            grants_for_aws_resources_only=not any_grants,
            deny_insecure_transport=not no_deny_http,
        )
    except ValueError as e:
        fail(str(e))
    write_output(json.dumps(doc, indent=2), output)
