"""The sample estate behind `kmsguard demo`: a realistic, partly misconfigured KMS estate, seeded over HTTP.

``seed_estate(endpoint_url)`` fills an emulator with boto3 exactly as an engineer would fill an AWS account:
the scanner later finds everything through ordinary AWS APIs. The estate is built to show every scan
check both failing and passing:

- account 123456789012 ("main"), us-east-1 and eu-west-1: about 30 keys — keys made to the guide's standard
  (its key policy, the four tags, an alias like ``alias/production-encryption-2026``, rotation 365 or 180
  days) beside keys that break one rule each; asymmetric, HMAC and imported keys (rotation not applicable);
  AWS managed keys; resources under CMKs, under AWS managed keys and not KMS-encrypted, some tagged
  DataClassification CUI/Confidential, one key used by Production and Development resources; a partial
  audit set-up that differs per region; IAM policies and grants, good and bad.
- account 210987654321 ("sandbox"), a member account with a few keys and only a single-region trail, so
  the account-level trail check fails somewhere and passes somewhere. It is reached the way a scan reaches
  any member account: by assuming a role in it.

``EstateInfo`` says what was created and which checks each part should trip (``expect``), so tests assert
on the scan from the estate rather than from hard-coded ids.
"""

from __future__ import annotations

import copy
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config

from kmsguard.monitoring_setup.setup import DECRYPT_FAILURES_PATTERN, POLICY_CHANGES_PATTERN
from kmsguard.policy.defaults import DENY_INSECURE_TRANSPORT, default_key_policy
from kmsguard.policy.generate import ADMIN_ACTIONS as GENERATED_ADMIN_ACTIONS

MAIN_ACCOUNT = "123456789012"
SANDBOX_ACCOUNT = "210987654321"
EAST, WEST = "us-east-1", "eu-west-1"
REGIONS = [EAST, WEST]
EXTERNAL_ACCOUNT = "444455556666"  # a vendor outside the organisation
YEAR = "2026"

# The checks the estate is built to show failing and passing (the catalogue).
SHOWCASED_CHECKS = frozenset(
    {
        "key_rotation_disabled",
        "key_rotation_period_too_long",
        "key_pending_deletion",
        "key_disabled",
        "key_policy_public",
        "key_policy_external_access",
        "key_policy_wildcard_actions",
        "key_policy_admin_can_use",
        "key_policy_no_secure_transport",
        "key_policy_iam_only",
        "key_missing_tags",
        "key_no_alias",
        "key_shared_across_environments",
        "resource_uses_aws_managed_key",
        "resource_not_kms_encrypted",
        "resource_key_pending_deletion",
        "cloudtrail_no_multi_region_trail",
        "cloudtrail_log_validation_disabled",
        "cloudtrail_no_cloudwatch_logs",
        "alarm_missing_key_policy_changes",
        "alarm_missing_decrypt_failures",
        "config_rule_rotation_missing",
        "config_rule_deletion_missing",
        "iam_policy_allows_decrypt_all_keys",
        "key_grant_external_or_broad",
        "key_decrypt_via_broad_iam",
        "key_admin_can_grant_itself_use",
        "role_chain_to_decrypt",
    }
)

# The guide's administrator actions have one home (the policy generator), as its filter patterns have
# (monitoring setup); the sample estate uses the same ones.
ADMIN_ACTIONS = list(GENERATED_ADMIN_ACTIONS)
USE_ACTIONS = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
ADMIN_ROLES = ["SecurityTeamLead", "KMSAdministrator", "BreakGlass"]
APP_ROLES = ["OrdersService", "PaymentsService", "AnalyticsJob", "BatchWorker", "DevSandbox", "MarketingSite"]


@dataclass
class EstateInfo:
    """What seed_estate created, for the demo's summary and for tests asserting on the scan."""

    endpoint_url: str
    accounts: list[str]
    regions: list[str]
    # purpose -> key ARN (customer managed keys), e.g. "standard" -> arn:aws:kms:us-east-1:...:key/...
    keys: dict[str, str] = field(default_factory=dict)
    # "<account>:<region>:<service>" -> ARN of the AWS managed key alias/aws/<service>
    aws_managed_keys: dict[str, str] = field(default_factory=dict)
    # resource name -> ARN (buckets, volumes, databases, secrets, tables, topics, queues, log groups, parameters)
    resources: dict[str, str] = field(default_factory=dict)
    trails: dict[str, str] = field(default_factory=dict)  # trail name -> ARN
    # check id -> {"FAIL": [resource ARNs], "PASS": [resource ARNs]}: what the scan should find.
    expect: dict[str, dict[str, list[str]]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(list)))

    def expect_fail(self, check_id: str, arn: str) -> None:
        self.expect[check_id]["FAIL"].append(arn)

    def expect_pass(self, check_id: str, arn: str) -> None:
        self.expect[check_id]["PASS"].append(arn)

    def expect_not_judged(self, check_id: str, arn: str) -> None:
        """The check does not apply to this resource: no FAIL (or PASS) finding for it."""
        self.expect[check_id]["NONE"].append(arn)

    def counts(self) -> dict[str, int]:
        return {
            "accounts": len(self.accounts),
            "regions": len(self.regions),
            "customer_managed_keys": len(self.keys),
            "aws_managed_keys": len(self.aws_managed_keys),
            "resources": len(self.resources),
            "trails": len(self.trails),
        }


def region_arn(account: str, region: str) -> str:
    """The resource ARN of an account/region-level finding (kmsguard's documented convention)."""
    return f"arn:aws:::{account}:{region}"


# --------------------------------------------------------------------------------------------------------------
# Key policies


def _role(account: str, name: str) -> str:
    return f"arn:aws:iam::{account}:role/{name}"


def guide_policy(
    account: str,
    users: list[str],
    *,
    admins: list[str] | None = None,
    deny_insecure: bool = True,
    admin_actions: list[str] | None = None,
    user_actions: list[str] | None = None,
    extra: list[dict[str, Any]] | None = None,
    context_env: str | None = None,
) -> str:
    """The guide's recommended key policy, with knobs to break it one rule at a time."""
    use: dict[str, Any] = {
        "Sid": "KeyUsageForEncryption",
        "Effect": "Allow",
        "Principal": {"AWS": [_role(account, u) for u in users]},
        "Action": user_actions or USE_ACTIONS,
        "Resource": "*",
    }
    if context_env:
        use["Condition"] = {"StringEquals": {"kms:EncryptionContext:Environment": context_env}}
    statements: list[dict[str, Any]] = [
        {
            "Sid": "EnableIAMUserPermissions",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
            "Action": "kms:*",
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:CallerAccount": account}},
        },
        {
            "Sid": "KeyAdministration",
            "Effect": "Allow",
            "Principal": {"AWS": [_role(account, a) for a in (admins or ADMIN_ROLES)]},
            "Action": admin_actions or ADMIN_ACTIONS,
            "Resource": "*",
        },
        use,
    ]
    statements.extend(extra or [])
    if deny_insecure:
        statements.append(copy.deepcopy(DENY_INSECURE_TRANSPORT))
    return json.dumps({"Version": "2012-10-17", "Id": "key-policy-guide", "Statement": statements}, indent=2)


def _tags(
    env: str, classification: str | None, owner: str | None = "security-team", cost: str | None = "CC-1042"
) -> dict[str, str]:
    tags = {"Environment": env}
    if classification:
        tags["DataClassification"] = classification
    if owner:
        tags["Owner"] = owner
    if cost:
        tags["CostCenter"] = cost
    return tags


def _kms_tags(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"TagKey": k, "TagValue": v} for k, v in tags.items()]


def _plain_tags(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


# --------------------------------------------------------------------------------------------------------------
# Seeding


class _Seeder:
    def __init__(self, endpoint_url: str, info: EstateInfo) -> None:
        self.endpoint_url = endpoint_url
        self.info = info
        self._clients: dict[tuple[str, str, str], Any] = {}
        # Fake credentials, passed explicitly: seeding never touches the user's AWS configuration. One session
        # for every client, so each service model is loaded once.
        self._session: Any = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing")

    def client(self, service: str, region: str = EAST, account: str = MAIN_ACCOUNT) -> Any:
        key = (account, service, region)
        if key not in self._clients:
            cli = self._session.client(
                service,
                region_name=region,
                endpoint_url=self.endpoint_url,
                config=Config(retries={"max_attempts": 2, "mode": "standard"}),
            )
            if account != MAIN_ACCOUNT:
                # moto's way of saying "this call is made in that account" (the scan itself assumes a role).
                def add_header(request: Any, **_: Any) -> None:
                    request.headers["x-moto-account-id"] = account

                cli.meta.events.register("before-sign.*.*", add_header)
            self._clients[key] = cli
        return self._clients[key]

    # -- keys ----------------------------------------------------------------------------------------------

    def key(
        self,
        purpose: str,
        region: str,
        *,
        description: str,
        policy: str | None,
        tags: dict[str, str] | None = None,
        alias: str | None = None,
        rotation: int | None = None,
        account: str = MAIN_ACCOUNT,
        **create: Any,
    ) -> str:
        kms = self.client("kms", region, account)
        args: dict[str, Any] = {"Description": description, **create}
        if policy is not None:
            args["Policy"] = policy
        if tags:
            args["Tags"] = _kms_tags(tags)
        meta = kms.create_key(**args)["KeyMetadata"]
        if alias:
            kms.create_alias(AliasName=alias, TargetKeyId=meta["KeyId"])
        if rotation:
            kms.enable_key_rotation(KeyId=meta["KeyId"], RotationPeriodInDays=rotation)
        arn = str(meta["Arn"])
        self.info.keys[purpose] = arn
        return arn

    def aws_managed(self, service: str, region: str, account: str = MAIN_ACCOUNT) -> str:
        """The AWS managed key alias/aws/<service>: DescribeKey on the predefined alias creates it, as in AWS."""
        meta = self.client("kms", region, account).describe_key(KeyId=f"alias/aws/{service}")["KeyMetadata"]
        self.info.aws_managed_keys[f"{account}:{region}:{service}"] = str(meta["Arn"])
        return str(meta["Arn"])


def seed_estate(
    endpoint_url: str, *, with_sandbox_account: bool = True, aws_managed_policies: bool | None = None
) -> EstateInfo:
    """Fill the emulator at ``endpoint_url`` with the sample estate; return what was created.
    ``aws_managed_policies``: attach AWS managed policies (AdministratorAccess, PowerUserAccess) to some
    principals; None: when the emulator holds them (kmsguard demo's does; the test server does not)."""
    accounts = [MAIN_ACCOUNT, SANDBOX_ACCOUNT] if with_sandbox_account else [MAIN_ACCOUNT]
    info = EstateInfo(endpoint_url=endpoint_url, accounts=accounts, regions=list(REGIONS))
    s = _Seeder(endpoint_url, info)
    _keys_east(s)
    _keys_west(s)
    _iam(s)
    _access(s, aws_managed_policies)
    _resources_east(s)
    _resources_west(s)
    _audit(s)
    _grants(s)
    if with_sandbox_account:
        _sandbox(s)
    _lifecycle(s)  # last: resources were created while their keys still worked
    return info


def _iam(s: _Seeder) -> None:
    iam = s.client("iam")
    trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ],
        }
    )
    for name in [*ADMIN_ROLES, *APP_ROLES, "CloudTrailToCloudWatch", "ConfigRecorder"]:
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)
    # iam_policy_allows_decrypt_all_keys: Decrypt on every key in the account, attached to an app role.
    broad = iam.create_policy(
        PolicyName="AnalyticsDecryptEverything",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": ["kms:Decrypt", "kms:DescribeKey"], "Resource": "*"}],
            }
        ),
    )["Policy"]
    iam.attach_role_policy(RoleName="AnalyticsJob", PolicyArn=broad["Arn"])
    s.info.resources["iam:AnalyticsDecryptEverything"] = broad["Arn"]
    s.info.expect_fail("iam_policy_allows_decrypt_all_keys", broad["Arn"])
    # ... and the right way: Decrypt on one named key, through one service.
    scoped = iam.create_policy(
        PolicyName="OrdersDecryptOrdersKey",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                        "Resource": s.info.keys["standard"],
                        "Condition": {
                            "StringEquals": {"kms:ViaService": f"s3.{EAST}.amazonaws.com"},
                            "ForAnyValue:StringEquals": {"kms:ResourceAliases": f"alias/production-encryption-{YEAR}"},
                        },
                    }
                ],
            }
        ),
    )["Policy"]
    iam.attach_role_policy(RoleName="OrdersService", PolicyArn=scoped["Arn"])
    s.info.resources["iam:OrdersDecryptOrdersKey"] = scoped["Arn"]
    s.info.expect_pass("iam_policy_allows_decrypt_all_keys", scoped["Arn"])


def _access(s: _Seeder, aws_managed_policies: bool | None) -> None:
    """Effective access: who can decrypt through IAM alone, through an assumed role, or administer a key
    without using it (the access checks), and AWS managed admin policies (kmsguard access who-can)."""
    iam = s.client("iam")
    # A user that reaches decrypt only by assuming a role the key policy names.
    iam.create_user(UserName="ci-bot")
    trust = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{MAIN_ACCOUNT}:user/ci-bot"},
        "Action": "sts:AssumeRole",
    }
    iam.create_role(
        RoleName="Deployer", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [trust]})
    )
    named = s.key(
        "access_named_only",
        EAST,
        description="payments batch key: named administrator and user, no IAM delegation",
        policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "KeyAdministration",
                        "Effect": "Allow",
                        "Principal": {"AWS": _role(MAIN_ACCOUNT, "KMSAdministrator")},
                        "Action": ADMIN_ACTIONS,
                        "Resource": "*",
                    },
                    {
                        "Sid": "KeyUsage",
                        "Effect": "Allow",
                        "Principal": {"AWS": _role(MAIN_ACCOUNT, "Deployer")},
                        "Action": USE_ACTIONS,
                        "Resource": "*",
                    },
                ],
            }
        ),
        tags=_tags("Production", "Confidential"),
        alias="alias/payments-batch",
        rotation=365,
    )
    s.info.expect_pass("key_decrypt_via_broad_iam", named)  # nobody gets decrypt through IAM alone
    s.info.expect_fail("key_admin_can_grant_itself_use", named)  # KMSAdministrator may PutKeyPolicy, not Decrypt
    s.info.expect_fail("role_chain_to_decrypt", named)  # ci-bot -> Deployer
    owner = s.key(
        "access_owner_only",
        EAST,
        description="key owned by one role that administers and uses it",
        policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "Owner",
                        "Effect": "Allow",
                        "Principal": {"AWS": _role(MAIN_ACCOUNT, "BreakGlass")},
                        "Action": ADMIN_ACTIONS + USE_ACTIONS,
                        "Resource": "*",
                    },
                ],
            }
        ),
        tags=_tags("Production", "Confidential"),
        alias="alias/break-glass-owned",
        rotation=365,
    )
    s.info.expect_pass("key_admin_can_grant_itself_use", owner)
    s.info.expect_pass("role_chain_to_decrypt", owner)  # BreakGlass is assumed by EC2 only: no IAM principal
    # AnalyticsJob's AnalyticsDecryptEverything reaches the standard key through its IAM delegation.
    s.info.expect_fail("key_decrypt_via_broad_iam", s.info.keys["standard"])
    if aws_managed_policies is None:
        try:
            iam.get_policy(PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
            aws_managed_policies = True
        except iam.exceptions.NoSuchEntityException:
            aws_managed_policies = False
    if aws_managed_policies:
        iam.create_user(UserName="ops-admin")
        iam.attach_user_policy(UserName="ops-admin", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
        iam.create_role(
            RoleName="DataScience",
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "sagemaker.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )
        iam.attach_role_policy(RoleName="DataScience", PolicyArn="arn:aws:iam::aws:policy/PowerUserAccess")


def _standard(
    s: _Seeder, purpose: str, region: str, alias: str, env: str, classification: str, rotation: int, users: list[str]
) -> str:
    """A key made to the guide's standard: it should pass every key and key-policy check."""
    arn = s.key(
        purpose,
        region,
        description=f"{env} data encryption key, created {YEAR}-01-15",
        policy=guide_policy(MAIN_ACCOUNT, users),
        tags=_tags(env, classification),
        alias=alias,
        rotation=rotation,
    )
    for check_id in (
        "key_rotation_disabled",
        "key_rotation_period_too_long",
        "key_pending_deletion",
        "key_disabled",
        "key_policy_public",
        "key_policy_external_access",
        "key_policy_wildcard_actions",
        "key_policy_admin_can_use",
        "key_policy_no_secure_transport",
        "key_policy_iam_only",
        "key_missing_tags",
        "key_no_alias",
    ):
        s.info.expect_pass(check_id, arn)
    return arn


def _keys_east(s: _Seeder) -> None:
    a = MAIN_ACCOUNT
    ex = s.info
    # --- to standard ---
    _standard(s, "standard", EAST, f"alias/production-encryption-{YEAR}", "Production", "CUI", 365, ["OrdersService"])
    _standard(
        s,
        "standard_180",
        EAST,
        f"alias/production-payments-{YEAR}",
        "Production",
        "Confidential",
        180,
        ["PaymentsService"],
    )
    _standard(
        s,
        "shared_environments",
        EAST,
        f"alias/shared-app-data-{YEAR}",
        "Production",
        "Internal",
        365,
        ["OrdersService", "DevSandbox"],
    )

    # --- one rule broken each ---
    arn = s.key(
        "rotation_disabled",
        EAST,
        description=f"Staging application key, created {YEAR}-02-03",
        policy=guide_policy(a, ["OrdersService"]),
        tags=_tags("Staging", "Internal"),
        alias=f"alias/staging-app-{YEAR}",
    )
    ex.expect_fail("key_rotation_disabled", arn)

    arn = s.key(
        "rotation_too_long",
        EAST,
        description=f"Analytics archive key, created {YEAR}-01-20",
        policy=guide_policy(a, ["AnalyticsJob"]),
        tags=_tags("Production", "Internal"),
        alias=f"alias/analytics-archive-{YEAR}",
        rotation=730,
    )
    ex.expect_fail("key_rotation_period_too_long", arn)

    arn = s.key(
        "pending_deletion",
        EAST,
        description="Legacy billing key (decommissioned)",
        policy=guide_policy(a, ["PaymentsService"]),
        tags=_tags("Production", "Confidential"),
        alias="alias/legacy-billing",
        rotation=365,
    )
    ex.expect_fail("key_pending_deletion", arn)

    arn = s.key(
        "disabled",
        EAST,
        description="Retired reporting key",
        policy=guide_policy(a, ["AnalyticsJob"]),
        tags=_tags("Production", "Internal"),
        alias="alias/retired-reporting",
        rotation=365,
    )
    ex.expect_fail("key_disabled", arn)

    public_stmt = {
        "Sid": "AllowPartnersToDecrypt",
        "Effect": "Allow",
        "Principal": {"AWS": "*"},
        "Action": ["kms:Decrypt", "kms:DescribeKey"],
        "Resource": "*",
    }
    arn = s.key(
        "public_policy",
        EAST,
        description="Partner exchange key",
        policy=guide_policy(a, ["OrdersService"], extra=[public_stmt]),
        tags=_tags("Production", "Confidential"),
        alias="alias/partner-exchange",
        rotation=365,
    )
    ex.expect_fail("key_policy_public", arn)

    vendor_stmt = {
        "Sid": "AllowVendorAccount",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{EXTERNAL_ACCOUNT}:root"},
        "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*", "kms:DescribeKey"],
        "Resource": "*",
    }
    arn = s.key(
        "external_access",
        EAST,
        description="Vendor integration key",
        policy=guide_policy(a, ["OrdersService"], extra=[vendor_stmt]),
        tags=_tags("Production", "Confidential"),
        alias="alias/vendor-integration",
        rotation=365,
    )
    ex.expect_fail("key_policy_external_access", arn)

    arn = s.key(
        "wildcard_actions",
        EAST,
        description="Developer sandbox key",
        policy=guide_policy(a, ["DevSandbox"], user_actions=["kms:*"]),
        tags=_tags("Development", "Internal"),
        alias=f"alias/dev-sandbox-{YEAR}",
        rotation=365,
    )
    ex.expect_fail("key_policy_wildcard_actions", arn)

    arn = s.key(
        "admin_can_use",
        EAST,
        description="Operations tooling key",
        policy=guide_policy(a, ["BatchWorker"], admin_actions=[*ADMIN_ACTIONS, "kms:Decrypt", "kms:Encrypt"]),
        tags=_tags("Production", "Internal"),
        alias="alias/ops-tooling",
        rotation=365,
    )
    ex.expect_fail("key_policy_admin_can_use", arn)

    arn = s.key(
        "no_secure_transport",
        EAST,
        description="Batch processing key",
        policy=guide_policy(a, ["BatchWorker"], deny_insecure=False),
        tags=_tags("Production", "Internal"),
        alias=f"alias/batch-processing-{YEAR}",
        rotation=365,
    )
    ex.expect_fail("key_policy_no_secure_transport", arn)

    # A key created from a script with no options: root-only policy, no tags, no alias, no rotation.
    arn = s.key("iam_only_untagged_no_alias", EAST, description="temp key for migration", policy=None)
    for check_id in (
        "key_policy_iam_only",
        "key_missing_tags",
        "key_no_alias",
        "key_rotation_disabled",
        "key_policy_no_secure_transport",
    ):
        ex.expect_fail(check_id, arn)

    arn = s.key(
        "missing_tags",
        EAST,
        description="Marketing site assets key",
        policy=guide_policy(a, ["MarketingSite"]),
        tags={"Owner": "marketing"},
        alias="alias/marketing-assets",
        rotation=365,
    )
    ex.expect_fail("key_missing_tags", arn)

    # --- rotation not applicable: asymmetric, HMAC, imported ---
    for purpose, alias, spec, usage in (
        ("asymmetric_rsa", f"alias/code-signing-{YEAR}", "RSA_3072", "SIGN_VERIFY"),
        ("asymmetric_ecc", "alias/jwt-signing", "ECC_NIST_P256", "SIGN_VERIFY"),
        ("hmac", "alias/webhook-hmac", "HMAC_256", "GENERATE_VERIFY_MAC"),
    ):
        arn = s.key(
            purpose,
            EAST,
            description=f"{alias.removeprefix('alias/')} key, created {YEAR}-03-01",
            policy=guide_policy(
                a,
                ["OrdersService"],
                user_actions=[
                    "kms:Sign",
                    "kms:Verify",
                    "kms:GenerateMac",
                    "kms:VerifyMac",
                    "kms:GetPublicKey",
                    "kms:DescribeKey",
                ],
            ),
            tags=_tags("Production", "Internal"),
            alias=alias,
            KeySpec=spec,
            KeyUsage=usage,
        )
        ex.expect_not_judged("key_rotation_disabled", arn)
    arn = s.key(
        "imported",
        EAST,
        description=f"BYOK finance key (imported material), {YEAR}-01-10",
        policy=guide_policy(a, ["PaymentsService"]),
        tags=_tags("Production", "Confidential"),
        alias="alias/byok-finance",
        Origin="EXTERNAL",
    )
    ex.expect_not_judged("key_rotation_disabled", arn)


def _keys_west(s: _Seeder) -> None:
    a = MAIN_ACCOUNT
    ex = s.info
    _standard(
        s,
        "eu_standard",
        WEST,
        f"alias/production-encryption-eu-{YEAR}",
        "Production",
        "Confidential",
        365,
        ["OrdersService"],
    )
    _standard(
        s,
        "eu_standard_180",
        WEST,
        f"alias/production-customer-data-eu-{YEAR}",
        "Production",
        "CUI",
        180,
        ["OrdersService", "AnalyticsJob"],
    )
    arn = s.key(
        "eu_rotation_disabled",
        WEST,
        description="EU staging key",
        policy=guide_policy(a, ["OrdersService"]),
        tags=_tags("Staging", "Internal"),
        alias="alias/staging-eu",
    )
    ex.expect_fail("key_rotation_disabled", arn)
    # Open to "*" but only inside the organisation: not public.
    org_stmt = {
        "Sid": "AllowOrganizationToDecrypt",
        "Effect": "Allow",
        "Principal": {"AWS": "*"},
        "Action": ["kms:Decrypt", "kms:DescribeKey"],
        "Resource": "*",
        "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-kmsguard01"}},
    }
    arn = s.key(
        "eu_org_shared",
        WEST,
        description="EU organisation-wide read key",
        policy=guide_policy(a, ["OrdersService"], extra=[org_stmt]),
        tags=_tags("Production", "Internal"),
        alias="alias/org-shared-eu",
        rotation=365,
    )
    ex.expect_pass("key_policy_public", arn)
    arn = s.key(
        "eu_pending_deletion",
        WEST,
        description="EU pilot key (abandoned)",
        policy=guide_policy(a, ["DevSandbox"]),
        tags=_tags("Development", "Internal"),
        alias="alias/eu-pilot",
        rotation=365,
    )
    ex.expect_fail("key_pending_deletion", arn)
    arn = s.key(
        "eu_iam_only",
        WEST,
        description="EU ad-hoc key",
        policy=default_key_policy(a),
        tags=_tags("Development", None, owner=None, cost=None),
    )
    ex.expect_fail("key_policy_iam_only", arn)
    ex.expect_fail("key_no_alias", arn)
    s.key(
        "eu_signing",
        WEST,
        description=f"EU document signing key, {YEAR}-02-11",
        policy=guide_policy(a, ["OrdersService"], user_actions=["kms:Sign", "kms:Verify", "kms:DescribeKey"]),
        tags=_tags("Production", "Internal"),
        alias="alias/eu-document-signing",
        KeySpec="ECC_NIST_P384",
        KeyUsage="SIGN_VERIFY",
    )


def _bucket(s: _Seeder, name: str, region: str, tags: dict[str, str], sse: dict[str, Any] | None) -> str:
    s3 = s.client("s3", region)
    if region == EAST:
        s3.create_bucket(Bucket=name)
    else:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
    if sse is not None:
        s3.put_bucket_encryption(
            Bucket=name, ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": sse}]}
        )
    if tags:
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": _plain_tags(tags)})
    arn = f"arn:aws:s3:::{name}"
    s.info.resources[f"s3:{name}"] = arn
    return arn


def _volume(s: _Seeder, name: str, region: str, tags: dict[str, str], key: str | None, encrypted: bool) -> str:
    ec2 = s.client("ec2", region)
    args: dict[str, Any] = {
        "AvailabilityZone": f"{region}a",
        "Size": 20,
        "Encrypted": encrypted,
        "TagSpecifications": [{"ResourceType": "volume", "Tags": _plain_tags({"Name": name, **tags})}],
    }
    if key:
        args["KmsKeyId"] = key
    vol = ec2.create_volume(**args)
    arn = f"arn:aws:ec2:{region}:{MAIN_ACCOUNT}:volume/{vol['VolumeId']}"
    s.info.resources[f"ebs:{name}"] = arn
    return arn


def _db(s: _Seeder, name: str, region: str, tags: dict[str, str], key: str | None, encrypted: bool) -> str:
    args: dict[str, Any] = {
        "DBInstanceIdentifier": name,
        "Engine": "postgres",
        "DBInstanceClass": "db.t3.medium",
        "MasterUsername": "dbadmin",
        "MasterUserPassword": "not-a-real-password-1",
        "AllocatedStorage": 50,
        "StorageEncrypted": encrypted,
        "Tags": _plain_tags(tags),
    }
    if key:
        args["KmsKeyId"] = key
    db = s.client("rds", region).create_db_instance(**args)["DBInstance"]
    s.info.resources[f"rds:{name}"] = db["DBInstanceArn"]
    return str(db["DBInstanceArn"])


def _secret(s: _Seeder, name: str, region: str, tags: dict[str, str], key: str | None) -> str:
    args: dict[str, Any] = {"Name": name, "SecretString": "placeholder", "Tags": _plain_tags(tags)}
    if key:
        args["KmsKeyId"] = key
    arn = str(s.client("secretsmanager", region).create_secret(**args)["ARN"])
    s.info.resources[f"secretsmanager:{name}"] = arn
    return arn


def _table(s: _Seeder, name: str, region: str, tags: dict[str, str], sse: dict[str, Any] | None) -> str:
    args: dict[str, Any] = {
        "TableName": name,
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
        "Tags": _plain_tags(tags),
    }
    if sse is not None:
        args["SSESpecification"] = sse
    arn = str(s.client("dynamodb", region).create_table(**args)["TableDescription"]["TableArn"])
    s.info.resources[f"dynamodb:{name}"] = arn
    return arn


def _topic(s: _Seeder, name: str, region: str, tags: dict[str, str], key: str | None) -> str:
    attrs = {"KmsMasterKeyId": key} if key else {}
    arn = str(s.client("sns", region).create_topic(Name=name, Attributes=attrs, Tags=_plain_tags(tags))["TopicArn"])
    s.info.resources[f"sns:{name}"] = arn
    return arn


def _queue(s: _Seeder, name: str, region: str, tags: dict[str, str], attrs: dict[str, str]) -> str:
    sqs = s.client("sqs", region)
    url = sqs.create_queue(QueueName=name, Attributes=attrs, tags=tags)["QueueUrl"]
    arn = str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])
    s.info.resources[f"sqs:{name}"] = arn
    return arn


def _log_group(s: _Seeder, name: str, region: str, tags: dict[str, str], key: str | None) -> str:
    logs = s.client("logs", region)
    args: dict[str, Any] = {"logGroupName": name, "tags": tags}
    if key:
        args["kmsKeyId"] = key
    logs.create_log_group(**args)
    arn = f"arn:aws:logs:{region}:{MAIN_ACCOUNT}:log-group:{name}"
    s.info.resources[f"logs:{name}"] = arn
    return arn


def _parameter(s: _Seeder, name: str, region: str, tags: dict[str, str], key: str | None) -> str:
    args: dict[str, Any] = {"Name": name, "Value": "placeholder", "Type": "SecureString", "Tags": _plain_tags(tags)}
    if key:
        args["KeyId"] = key
    s.client("ssm", region).put_parameter(**args)
    arn = f"arn:aws:ssm:{region}:{MAIN_ACCOUNT}:parameter{name if name.startswith('/') else '/' + name}"
    s.info.resources[f"ssm:{name}"] = arn
    return arn


def _resources_east(s: _Seeder) -> None:
    k, ex = s.info.keys, s.info
    prod_cui = {"Environment": "Production", "DataClassification": "CUI", "Owner": "orders-team"}
    prod_conf = {"Environment": "Production", "DataClassification": "Confidential", "Owner": "payments-team"}
    prod = {"Environment": "Production", "Owner": "platform-team"}
    dev = {"Environment": "Development", "Owner": "dev-team"}

    def cmk(arn: str) -> None:
        ex.expect_pass("resource_uses_aws_managed_key", arn)
        ex.expect_pass("resource_not_kms_encrypted", arn)

    def managed(arn: str) -> None:
        ex.expect_fail("resource_uses_aws_managed_key", arn)

    # Under customer managed keys made to standard.
    kms_sse = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": k["standard"]}
    cmk(_bucket(s, "acme-cui-records-use1", EAST, prod_cui, kms_sse))
    cmk(_db(s, "orders-db", EAST, prod_cui, k["standard"], True))
    cmk(_secret(s, "prod/orders/db-credentials", EAST, prod_cui, k["standard"]))
    cmk(
        _table(
            s,
            "payments-ledger",
            EAST,
            prod_conf,
            {"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": k["standard_180"]},
        )
    )
    cmk(_queue(s, "payments-events", EAST, prod_conf, {"KmsMasterKeyId": k["standard_180"]}))
    cmk(_parameter(s, "/prod/payments/api-token", EAST, prod_conf, k["standard_180"]))
    cmk(_log_group(s, "/app/payments", EAST, prod_conf, k["standard_180"]))
    cmk(_volume(s, "orders-data", EAST, prod_cui, k["standard"], True))

    # One key used by Production and Development resources.
    shared = k["shared_environments"]
    cmk(_bucket(s, "acme-shared-app-prod", EAST, prod, {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": shared}))
    cmk(_table(s, "app-sessions-dev", EAST, dev, {"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": shared}))
    cmk(_queue(s, "app-jobs-dev", EAST, dev, {"KmsMasterKeyId": shared}))
    ex.expect_fail("key_shared_across_environments", shared)
    ex.expect_pass("key_shared_across_environments", k["standard"])

    # Under AWS managed keys (created by the services' first use, or by naming the alias).
    managed(_bucket(s, "acme-cui-exports-use1", EAST, prod_cui, {"SSEAlgorithm": "aws:kms"}))  # high: CUI
    managed(_volume(s, "build-cache", EAST, dev, None, True))
    managed(_db(s, "reporting-db", EAST, prod, None, True))
    managed(_secret(s, "prod/reporting/api-key", EAST, prod, None))
    managed(_parameter(s, "/prod/reporting/db-url", EAST, prod, None))
    managed(_topic(s, "order-notifications", EAST, prod, "alias/aws/sns"))
    managed(_queue(s, "order-audit", EAST, prod_cui, {"KmsMasterKeyId": "alias/aws/sqs"}))  # high: CUI
    managed(_table(s, "customer-profiles", EAST, prod_conf, {"Enabled": True, "SSEType": "KMS"}))  # high
    for service in ("s3", "ebs", "rds", "secretsmanager", "ssm", "sns", "sqs", "dynamodb"):
        s.aws_managed(service, EAST)

    # Not encrypted with KMS at all.
    for arn in (
        _bucket(
            s,
            "acme-public-website-use1",
            EAST,
            {"Environment": "Production", "Owner": "marketing"},
            {"SSEAlgorithm": "AES256"},
        ),
        _volume(s, "scratch-disk", EAST, dev, None, False),
        _db(s, "legacy-crm-db", EAST, prod_conf, None, False),
        _topic(s, "ops-chatter", EAST, prod, None),
        _queue(s, "ops-retry", EAST, prod, {}),
        _log_group(s, "/app/website", EAST, prod, None),
        _table(s, "feature-flags", EAST, prod, None),
    ):
        ex.expect_fail("resource_not_kms_encrypted", arn)

    # Data under keys about to become unreadable (their state changes in _lifecycle).
    ex.expect_fail(
        "resource_key_pending_deletion", _volume(s, "billing-archive", EAST, prod_conf, k["pending_deletion"], True)
    )
    ex.expect_fail(
        "resource_key_pending_deletion",
        _bucket(
            s,
            "acme-billing-history-use1",
            EAST,
            prod_conf,
            {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": k["pending_deletion"]},
        ),
    )
    ex.expect_fail(
        "resource_key_pending_deletion", _secret(s, "prod/reporting/legacy-token", EAST, prod, k["disabled"])
    )
    ex.expect_pass("resource_key_pending_deletion", s.info.resources["rds:orders-db"])


def _resources_west(s: _Seeder) -> None:
    k, ex = s.info.keys, s.info
    prod_conf = {"Environment": "Production", "DataClassification": "Confidential", "Owner": "eu-team"}
    prod_cui = {"Environment": "Production", "DataClassification": "CUI", "Owner": "eu-team"}
    staging = {"Environment": "Staging", "Owner": "eu-team"}
    for arn in (
        _bucket(
            s,
            "acme-customer-data-euw1",
            WEST,
            prod_cui,
            {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": k["eu_standard_180"]},
        ),
        _secret(s, "prod/eu/crm-credentials", WEST, prod_conf, k["eu_standard"]),
        _log_group(s, "/app/eu-crm", WEST, prod_conf, k["eu_standard"]),
        _db(s, "eu-crm-db", WEST, prod_conf, k["eu_standard"], True),
        _volume(s, "eu-staging-data", WEST, staging, k["eu_rotation_disabled"], True),
    ):
        ex.expect_pass("resource_uses_aws_managed_key", arn)
    for arn in (
        _bucket(s, "acme-eu-exports-euw1", WEST, prod_cui, {"SSEAlgorithm": "aws:kms"}),
        _parameter(s, "/prod/eu/api-token", WEST, prod_conf, None),
        _volume(s, "eu-batch-scratch", WEST, staging, None, True),
    ):
        ex.expect_fail("resource_uses_aws_managed_key", arn)
    for service in ("s3", "ssm", "ebs"):
        s.aws_managed(service, WEST)
    # Every new EBS volume in eu-west-1 lands under a customer managed key by default.
    ec2 = s.client("ec2", WEST)
    ec2.enable_ebs_encryption_by_default()
    ec2.modify_ebs_default_kms_key_id(KmsKeyId=k["eu_standard"])


def _trail_bucket(s: _Seeder, name: str, region: str, account: str = MAIN_ACCOUNT) -> None:
    s3 = s.client("s3", region, account)
    if region == EAST:
        s3.create_bucket(Bucket=name)
    else:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )


def _alarm(s: _Seeder, region: str, name: str, metric: str, threshold: float, op: str, actions: list[str]) -> None:
    s.client("cloudwatch", region).put_metric_alarm(
        AlarmName=name,
        MetricName=metric,
        Namespace="Security/KMS",
        Statistic="Sum",
        Period=300,
        EvaluationPeriods=1,
        Threshold=threshold,
        ComparisonOperator=op,
        AlarmActions=actions,
        ActionsEnabled=True,
    )


def _metric_filter(s: _Seeder, region: str, group: str, name: str, pattern: str, metric: str) -> None:
    s.client("logs", region).put_metric_filter(
        logGroupName=group,
        filterName=name,
        filterPattern=pattern,
        metricTransformations=[{"metricName": metric, "metricNamespace": "Security/KMS", "metricValue": "1"}],
    )


def _config(s: _Seeder, region: str, bucket: str, rules: list[tuple[str, str, str]], recording: bool) -> None:
    cfg = s.client("config", region)
    cfg.put_configuration_recorder(
        ConfigurationRecorder={
            "name": "default",
            "roleARN": _role(MAIN_ACCOUNT, "ConfigRecorder"),
            "recordingGroup": {"allSupported": True, "includeGlobalResourceTypes": region == EAST},
        }
    )
    cfg.put_delivery_channel(DeliveryChannel={"name": "default", "s3BucketName": bucket})
    if recording:
        cfg.start_configuration_recorder(ConfigurationRecorderName="default")
    for name, identifier, frequency in rules:
        cfg.put_config_rule(
            ConfigRule={
                "ConfigRuleName": name,
                "Source": {"Owner": "AWS", "SourceIdentifier": identifier},
                "MaximumExecutionFrequency": frequency,
            }
        )


def _audit(s: _Seeder) -> None:
    ex, a = s.info, MAIN_ACCOUNT
    east_arn, west_arn = region_arn(a, EAST), region_arn(a, WEST)
    _trail_bucket(s, "acme-cloudtrail-logs-use1", EAST)
    _trail_bucket(s, "acme-config-use1", EAST)
    _trail_bucket(s, "acme-cloudtrail-logs-euw1", WEST)
    _trail_bucket(s, "acme-config-euw1", WEST)

    alerts = _topic(
        s, "security-alerts", EAST, {"Environment": "Production", "Owner": "security-team"}, s.info.keys["standard"]
    )
    # us-east-1: the guide's multi-region trail into CloudWatch Logs, with the key-policy-changes alarm ...
    audit_group = "/aws/cloudtrail/organization-audit"
    _log_group(s, audit_group, EAST, {"Environment": "Production", "Owner": "security-team"}, s.info.keys["standard"])
    ct = s.client("cloudtrail", EAST)
    trail = ct.create_trail(
        Name="organization-audit",
        S3BucketName="acme-cloudtrail-logs-use1",
        IsMultiRegionTrail=True,
        EnableLogFileValidation=True,
        IncludeGlobalServiceEvents=True,
        CloudWatchLogsLogGroupArn=f"arn:aws:logs:{EAST}:{a}:log-group:{audit_group}:*",
        CloudWatchLogsRoleArn=_role(a, "CloudTrailToCloudWatch"),
        KmsKeyId=s.info.keys["standard"],
    )
    ct.start_logging(Name="organization-audit")
    ex.trails["organization-audit"] = trail["TrailARN"]
    ex.expect_pass("cloudtrail_no_multi_region_trail", region_arn(a, "global"))
    _metric_filter(s, EAST, audit_group, "KMSKeyPolicyChanges", POLICY_CHANGES_PATTERN, "KMSPolicyChanges")
    _alarm(s, EAST, "KMS-Key-Policy-Changes", "KMSPolicyChanges", 1, "GreaterThanOrEqualToThreshold", [alerts])
    ex.expect_pass("alarm_missing_key_policy_changes", east_arn)
    ex.expect_fail("alarm_missing_decrypt_failures", east_arn)  # ... but no decrypt-failures filter
    s.client("cloudwatch", EAST).put_dashboard(
        DashboardName="KMS-Security-Dashboard",
        DashboardBody=json.dumps(
            {
                "widgets": [
                    {
                        "type": "metric",
                        "properties": {
                            "metrics": [["AWS/KMS", "APICallsCount"], ["Security/KMS", "KMSPolicyChanges"]],
                            "stat": "Sum",
                            "period": 300,
                            "region": EAST,
                            "title": "KMS API calls and policy changes",
                        },
                    }
                ]
            }
        ),
    )
    # ... and a second, single-region data trail with log validation off and no CloudWatch Logs.
    trail = ct.create_trail(Name="app-data-events", S3BucketName="acme-cloudtrail-logs-use1")
    ct.start_logging(Name="app-data-events")
    ex.trails["app-data-events"] = trail["TrailARN"]
    ex.expect_fail("cloudtrail_log_validation_disabled", trail["TrailARN"])
    ex.expect_fail("cloudtrail_no_cloudwatch_logs", trail["TrailARN"])
    ex.expect_pass("cloudtrail_log_validation_disabled", ex.trails["organization-audit"])
    ex.expect_pass("cloudtrail_no_cloudwatch_logs", ex.trails["organization-audit"])
    _config(
        s,
        EAST,
        "acme-config-use1",
        [("cmk-backing-key-rotation-enabled", "CMK_BACKING_KEY_ROTATION_ENABLED", "TwentyFour_Hours")],
        True,
    )
    ex.expect_pass("config_rule_rotation_missing", east_arn)
    ex.expect_fail("config_rule_deletion_missing", east_arn)

    # eu-west-1 differs: a regional trail into its own log group, with the guide's decrypt-failures filter and
    # alarm, and a policy-changes filter that looks right by name but misses ScheduleKeyDeletion and DisableKey.
    eu_group = "/aws/cloudtrail/eu-regional"
    _log_group(s, eu_group, WEST, {"Environment": "Production", "Owner": "security-team"}, s.info.keys["eu_standard"])
    eu_alerts = _topic(
        s,
        "security-alerts-eu",
        WEST,
        {"Environment": "Production", "Owner": "security-team"},
        s.info.keys["eu_standard"],
    )
    ct_w = s.client("cloudtrail", WEST)
    trail = ct_w.create_trail(
        Name="eu-regional",
        S3BucketName="acme-cloudtrail-logs-euw1",
        EnableLogFileValidation=True,
        CloudWatchLogsLogGroupArn=f"arn:aws:logs:{WEST}:{a}:log-group:{eu_group}:*",
        CloudWatchLogsRoleArn=_role(a, "CloudTrailToCloudWatch"),
    )
    ct_w.start_logging(Name="eu-regional")
    ex.trails["eu-regional"] = trail["TrailARN"]
    _metric_filter(
        s,
        WEST,
        eu_group,
        "KMSKeyPolicyChanges",
        "{ ($.eventSource = kms.amazonaws.com) && ($.eventName = PutKeyPolicy) }",
        "KMSPolicyChanges",
    )
    _alarm(s, WEST, "KMS-Key-Policy-Changes", "KMSPolicyChanges", 1, "GreaterThanOrEqualToThreshold", [eu_alerts])
    _metric_filter(s, WEST, eu_group, "KMSDecryptFailures", DECRYPT_FAILURES_PATTERN, "KMSDecryptFailures")
    _alarm(s, WEST, "KMS-Decrypt-Failures", "KMSDecryptFailures", 5, "GreaterThanThreshold", [eu_alerts])
    # The regional filter is wrong, but the us-east-1 multi-region trail covers eu-west-1 too and its log group
    # has the guide's filter and alarm: key-policy changes here still raise an alarm.
    ex.expect_pass("alarm_missing_key_policy_changes", west_arn)
    ex.expect_pass("alarm_missing_decrypt_failures", west_arn)
    _config(
        s,
        WEST,
        "acme-config-euw1",
        [("kms-cmk-not-scheduled-for-deletion", "KMS_CMK_NOT_SCHEDULED_FOR_DELETION", "One_Hour")],
        True,
    )
    ex.expect_fail("config_rule_rotation_missing", west_arn)
    ex.expect_pass("config_rule_deletion_missing", west_arn)


def _grants(s: _Seeder) -> None:
    k, ex, a = s.info.keys, s.info, MAIN_ACCOUNT
    kms = s.client("kms", EAST)
    # A narrow grant: one operation, one role, bound to an encryption context.
    kms.create_grant(
        KeyId=k["standard"],
        GranteePrincipal=_role(a, "OrdersService"),
        Operations=["Decrypt"],
        Constraints={"EncryptionContextSubset": {"Environment": "Production"}},
        Name="orders-service-decrypt",
    )
    ex.expect_pass("key_grant_external_or_broad", k["standard"])
    # A grant to another account.
    kms.create_grant(
        KeyId=k["external_access"],
        GranteePrincipal=f"arn:aws:iam::{EXTERNAL_ACCOUNT}:root",
        Operations=["Decrypt", "GenerateDataKey"],
        Name="vendor-decrypt",
    )
    ex.expect_fail("key_grant_external_or_broad", k["external_access"])
    # A grant that lets its holder grant again and do everything, with no constraint.
    kms.create_grant(
        KeyId=k["no_secure_transport"],
        GranteePrincipal=_role(a, "BatchWorker"),
        Operations=[
            "Decrypt",
            "Encrypt",
            "GenerateDataKey",
            "GenerateDataKeyWithoutPlaintext",
            "ReEncryptFrom",
            "ReEncryptTo",
            "CreateGrant",
            "RetireGrant",
            "DescribeKey",
        ],
        Name="batch-everything",
    )
    ex.expect_fail("key_grant_external_or_broad", k["no_secure_transport"])


def _sandbox(s: _Seeder) -> None:
    """A member account with only a single-region trail: no multi-region trail, one CMK, data under aws/s3."""
    acct, ex = SANDBOX_ACCOUNT, s.info
    s.key(
        "sandbox_app",
        EAST,
        description="Sandbox app key",
        policy=guide_policy(acct, ["DevSandbox"]),
        tags=_tags("Development", "Internal"),
        alias="alias/sandbox-app",
        rotation=365,
        account=acct,
    )
    s.key("sandbox_untagged", EAST, description="sandbox scratch key", policy=None, account=acct)
    s.client("s3", EAST, acct).create_bucket(Bucket="acme-sandbox-scratch")
    s.client("s3", EAST, acct).put_bucket_encryption(
        Bucket="acme-sandbox-scratch",
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]
        },
    )
    s.info.resources["s3:acme-sandbox-scratch"] = "arn:aws:s3:::acme-sandbox-scratch"
    s.aws_managed("s3", EAST, acct)
    _trail_bucket(s, "acme-sandbox-trail", EAST, acct)
    ct = s.client("cloudtrail", EAST, acct)
    trail = ct.create_trail(Name="sandbox-local", S3BucketName="acme-sandbox-trail")
    ct.start_logging(Name="sandbox-local")
    ex.trails["sandbox-local"] = trail["TrailARN"]
    ex.expect_fail("cloudtrail_no_multi_region_trail", region_arn(acct, "global"))
    # No log group, metric filter, alarm or Config rule anywhere in the sandbox.
    for check_id in (
        "alarm_missing_key_policy_changes",
        "alarm_missing_decrypt_failures",
        "config_rule_rotation_missing",
        "config_rule_deletion_missing",
    ):
        ex.expect_fail(check_id, region_arn(acct, EAST))
    # The role a scan assumes in member accounts.
    s.client("iam", EAST, acct).create_role(
        RoleName="OrganizationAccountAccessRole",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{MAIN_ACCOUNT}:root"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )


def _lifecycle(s: _Seeder) -> None:
    k = s.info.keys
    east, west = s.client("kms", EAST), s.client("kms", WEST)
    east.schedule_key_deletion(KeyId=k["pending_deletion"], PendingWindowInDays=30)
    east.disable_key(KeyId=k["disabled"])
    west.schedule_key_deletion(KeyId=k["eu_pending_deletion"], PendingWindowInDays=7)
