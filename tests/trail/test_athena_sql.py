"""The Athena/Trino queries (src/kmsguard/trail/athena/*.sql) run, and answer what `kmsguard trail analyze` answers.

No Athena or Trino runs here, so the queries are transpiled from Trino SQL to DuckDB's by sqlglot and run over a
table ``cloudtrail_logs`` in the shape Athena's CloudTrail table has (the Hive JSON SerDe's: ``useridentity`` and
``resources`` as structs with lower-case fields, ``requestparameters`` and ``responseelements`` as JSON text),
filled from the very records kmsguard reads from trail files. Each query's answer is then held to kmsguard's own:
key usage to the usage summary, each detection to its findings. The records are the trail scenario plus the cases
where the two could part: a record delivered twice, a key named only by a bare key id, a caller of another account
logged without an ARN, a key named only by its CreateKey response, AWS acting on its own.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlglot

from kmsguard.checks.trail import CHECK_OF_ADMIN_EVENT
from kmsguard.policy.actions import ADMIN_EVENTS
from kmsguard.trail.analyze import TrailOptions, TrailReport, analyze
from kmsguard.trail.schema import CRYPTO_ACTIONS
from kmsguard.trail.synth import event, key_arn, write_trail_files

from . import scenario as sc
from .conftest import OTHER, T0

ATHENA = Path(__file__).resolve().parents[2] / "src" / "kmsguard" / "trail" / "athena"
QUERIES = sorted(p.name for p in ATHENA.glob("*.sql") if p.name != "kms_events.sql")

IDENTITY = (
    "STRUCT(type VARCHAR, principalid VARCHAR, arn VARCHAR, accountid VARCHAR, invokedby VARCHAR, accesskeyid "
    "VARCHAR, username VARCHAR, sessioncontext STRUCT(attributes STRUCT(mfaauthenticated VARCHAR, creationdate "
    "VARCHAR), sessionissuer STRUCT(type VARCHAR, principalid VARCHAR, arn VARCHAR, accountid VARCHAR, username "
    "VARCHAR)))"
)
# Athena's CloudTrail table (the columns these queries read, with the types its DDL gives them).
COLUMNS = {
    "eventversion": "VARCHAR",
    "useridentity": IDENTITY,
    "eventtime": "VARCHAR",
    "eventsource": "VARCHAR",
    "eventname": "VARCHAR",
    "awsregion": "VARCHAR",
    "sourceipaddress": "VARCHAR",
    "useragent": "VARCHAR",
    "errorcode": "VARCHAR",
    "errormessage": "VARCHAR",
    "requestparameters": "VARCHAR",
    "responseelements": "VARCHAR",
    "requestid": "VARCHAR",
    "eventid": "VARCHAR",
    "resources": "STRUCT(arn VARCHAR, accountid VARCHAR, type VARCHAR)[]",
    "eventtype": "VARCHAR",
    "recipientaccountid": "VARCHAR",
}
K_BARE = key_arn(sc.ACCT, "us-east-1", 31)
K_NEW = key_arn(sc.ACCT, "us-east-1", 32)


def extra_records() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Records where Athena's table and kmsguard's decoder could part, and one record delivered twice."""
    t = T0 + timedelta(days=20)
    bare = [
        event("Encrypt", K_BARE, sc.APP, t + timedelta(minutes=i), params={"keyId": K_BARE.rsplit("/", 1)[1]})
        for i in range(3)
    ]
    for r in bare:
        r.pop("resources", None)  # named only by the bare id it asked for
    outsider = event("Decrypt", sc.K_BUSY, f"arn:aws:iam::{OTHER}:root", t + timedelta(hours=1))
    outsider["userIdentity"] = {"type": "AWSAccount", "principalId": "AIDAOUTSIDE", "accountId": OTHER}
    created = event("CreateKey", None, sc.APP, t + timedelta(hours=2), params={"description": "new"})
    created["responseElements"] = {"keyMetadata": {"arn": K_NEW, "keyId": K_NEW.rsplit("/", 1)[1]}}
    service = event("GenerateDataKey", sc.K_BUSY, "service:cloudtrail.amazonaws.com", t + timedelta(hours=3))
    # A user of the key's own account who first uses the new key after its first 7 days: a new principal.
    joiner = f"arn:aws:iam::{sc.ACCT}:user/late-joiner"
    later = [event("Decrypt", K_NEW, joiner, t + timedelta(days=9, minutes=i)) for i in range(2)]
    twice = event("Decrypt", sc.K_BUSY, sc.APP, t + timedelta(hours=4))
    return [*bare, outsider, created, service, *later, twice], [twice]


def athena_row(r: dict[str, Any]) -> dict[str, Any]:
    """A record as Athena's CloudTrail table holds it: keys in lower case, parameters and responses as JSON text."""

    def lower(v: Any) -> Any:
        if isinstance(v, dict):
            return {k.lower(): lower(x) for k, x in v.items()}
        if isinstance(v, list):
            return [lower(x) for x in v]
        return v

    text = ("requestparameters", "responseelements")
    row = {k: lower(v) for key, v in r.items() if (k := key.lower()) in COLUMNS and k not in text}
    for name, field in zip(text, ("requestParameters", "responseElements"), strict=True):
        row[name] = None if r.get(field) is None else json.dumps(r[field])
    return row


def transpile(name: str) -> str:
    (sql,) = sqlglot.transpile((ATHENA / name).read_text(), read="athena", write="duckdb")
    return sql


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> tuple[duckdb.DuckDBPyConnection, TrailReport]:
    tmp = tmp_path_factory.mktemp("athena")
    extra, again = extra_records()
    records = [*sc.records(), *extra]
    write_trail_files(tmp / "logs", records)
    write_trail_files(tmp / "logs" / "redelivered", again)  # CloudTrail delivering an event a second time
    report = analyze([str(tmp / "logs")], None, TrailOptions(cache_dir=tmp / "cache", workers=1))
    rows = tmp / "cloudtrail_logs.jsonl"
    rows.write_text("".join(json.dumps(athena_row(r)) + "\n" for r in [*records, *again]))
    con = duckdb.connect()
    columns = "{" + ", ".join(f"'{k}': '{v}'" for k, v in COLUMNS.items()) + "}"
    con.execute(f"CREATE TABLE cloudtrail_logs AS SELECT * FROM read_json('{rows}', columns = {columns})")
    con.execute(transpile("kms_events.sql"))
    return con, report


def run(con: duckdb.DuckDBPyConnection, name: str) -> list[dict[str, Any]]:
    cur = con.execute(transpile(name))
    cols = [d[0] for d in cur.description or ()]
    return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]


def ts(iso: str | None) -> int | None:
    return None if iso is None else int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())


def found(report: TrailReport, check_id: str) -> list[Any]:
    return [f for f in report.findings if f.check_id == check_id]


def test_every_query_is_one_trino_statement_that_transpiles() -> None:
    for name in ["kms_events.sql", *QUERIES]:
        statements = sqlglot.parse((ATHENA / name).read_text(), read="athena", error_level=sqlglot.ErrorLevel.RAISE)
        assert len(statements) == 1 and statements[0] is not None, name
        tables = {t.name for t in statements[0].find_all(sqlglot.exp.Table)}
        assert ("cloudtrail_logs" if name == "kms_events.sql" else "kms_events") in tables, name


def test_the_view_lists_kmsguards_cryptographic_actions() -> None:
    # One list, two languages: the view's IN list is held to trail/schema.py's.
    text = (ATHENA / "kms_events.sql").read_text()
    listed = text.split("eventname IN (", 1)[1].split(")", 1)[0]
    assert {x.strip().strip("'") for x in listed.split(",")} == set(CRYPTO_ACTIONS)
    admin = (ATHENA / "admin_events.sql").read_text().split("event_name IN (", 1)[1].split(")", 1)[0]
    assert {x.strip().strip("'") for x in admin.replace("\n", " ").split(",")} == set(ADMIN_EVENTS)


def test_key_usage_matches_the_usage_summary(both: tuple[duckdb.DuckDBPyConnection, TrailReport]) -> None:
    con, report = both
    athena = {r["key_arn"]: r for r in run(con, "key_usage.sql")}
    ours = {k.key_arn: k for k in report.keys}
    assert K_BARE in ours and K_NEW in ours, "the edge cases reached kmsguard's summary"
    assert set(athena) == set(ours)
    for arn, k in ours.items():
        a = athena[arn]
        got = (a["calls"], a["crypto_calls"], a["errors"], a["principals"], a["accounts"], a["regions"])
        assert got == (k.calls, k.crypto_calls, k.errors, k.principals, k.accounts, k.regions), arn
        assert (a["first_ts"], a["last_ts"], a["last_crypto_ts"]) == (
            ts(k.first_use),
            ts(k.last_use),
            ts(k.last_crypto_use),
        ), arn


def test_failure_bursts_match(both: tuple[duckdb.DuckDBPyConnection, TrailReport]) -> None:
    con, report = both
    athena = {(r["key_group"], r["window_start"], r["errors"]) for r in run(con, "failure_bursts.sql")}
    ours = {
        (f.resource_arn, ts(w["start"]), w["errors"])
        for f in found(report, "trail_decrypt_failure_burst")
        for w in f.evidence["windows"]
    }
    assert ours and athena == ours


def test_admin_events_match(both: tuple[duckdb.DuckDBPyConnection, TrailReport]) -> None:
    con, report = both
    athena = {(r["key_group"], CHECK_OF_ADMIN_EVENT[r["event_name"]], r["calls"]) for r in run(con, "admin_events.sql")}
    ours = {
        (f.resource_arn, f.check_id, f.evidence["calls"])
        for check in CHECK_OF_ADMIN_EVENT.values()
        for f in found(report, check)
    }
    assert len(ours) == len(ADMIN_EVENTS) and athena == ours


def test_external_grants_match(both: tuple[duckdb.DuckDBPyConnection, TrailReport]) -> None:
    con, report = both
    athena = {
        (r["key_group"], r["grantee_account"], tuple(sorted(r["grantees"]))) for r in run(con, "grants_external.sql")
    }
    ours = {
        (f.resource_arn, f.evidence["grantee_account"], tuple(sorted(f.evidence["grantees"])))
        for f in found(report, "trail_grant_external")
    }
    assert ours and athena == ours


def test_new_principals_and_accounts_match(both: tuple[duckdb.DuckDBPyConnection, TrailReport]) -> None:
    con, report = both
    newcomers = found(report, "trail_new_principal")
    people = {(f.resource_arn, f.evidence["principal"]) for f in newcomers if f.evidence["kind"] == "principal"}
    accounts = {(f.resource_arn, f.evidence["principal_account"]) for f in newcomers if f.evidence["kind"] == "account"}
    assert people and accounts
    assert {(r["key_arn"], r["principal_account"]) for r in run(con, "new_accounts.sql")} == accounts
    # kmsguard reports a new account once, not each of its principals again: the query lists them all.
    listed = run(con, "new_principals.sql")
    not_new_account = [r for r in listed if (r["key_arn"], r["principal_account"]) not in accounts]
    assert {(r["key_arn"], r["principal"]) for r in not_new_account} == people


def test_cross_account_use_matches(both: tuple[duckdb.DuckDBPyConnection, TrailReport]) -> None:
    con, report = both
    athena = {(r["key_arn"], r["principal_account"], r["calls"]) for r in run(con, "cross_account.sql")}
    ours = {
        (f.resource_arn, f.evidence["principal_account"], f.evidence["calls"])
        for f in found(report, "trail_cross_account_use")
    }
    assert ours and athena == ours


def test_usage_spikes_match(both: tuple[duckdb.DuckDBPyConnection, TrailReport]) -> None:
    con, report = both
    athena = {
        (r["key_arn"], r["event_name"], r["hour"], r["n"], float(r["med"]), float(r["mad"]))
        for r in run(con, "usage_spikes.sql")
    }
    ours = {
        (
            f.resource_arn,
            f.evidence["action"],
            ts(f.evidence["window"]["start"]),
            f.evidence["calls"],
            float(f.evidence["baseline"]["median"]),
            float(f.evidence["baseline"]["mad"]),
        )
        for f in found(report, "trail_usage_spike")
    }
    assert ours and athena == ours
