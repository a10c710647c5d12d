"""Which principals, and which keys, get the same effective-access answer: what makes the who-can matrix
cost the number of distinct situations rather than principals x keys.

A principal's answer for a key depends on its identity policies, boundary, tags, account (its SCPs) and
kind, and on its ARN only when some policy reads it (aws:PrincipalArn, policy variables) or the key names
it. Principals equal in all of that form a ``PrincipalGroup`` judged once. A key's answers depend on its
policy, grants, tags, account (its RCPs) and on its ARN only where a statement names particular keys: in
the key policy or an RCP (then the key is a class of its own), or in some group's identity policies
(``SpecificIndex`` finds those statements for a key ARN without looking at every group).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kmsguard.policy.actions import KMS_ACTIONS_LOWER
from kmsguard.policy.estate import Estate, Subject
from kmsguard.policy.evaluate import compile_policy
from kmsguard.policy.model import Policy

# Condition keys that name the principal itself (decided per principal, so a policy using one is per-ARN).
_PRINCIPAL_KEYS = frozenset({"aws:principalarn", "aws:username", "aws:userid", "aws:sourceidentity"})


def reads_principal(policy: Policy) -> bool:
    """Does the policy decide on which principal asks (beyond account, organisation and tags)?"""
    for st in policy.statements:
        if any("${" in r for r in (*(st.resources or ()), *(st.not_resources or ()))):
            return True
        for c in st.conditions:
            if c.key in _PRINCIPAL_KEYS or any("${" in v for v in c.values):
                return True
    return False


def resource_specific(policy: Policy) -> bool:
    """Does some statement apply to particular resources only (not ``*``)?"""
    return any(not cst.any_resource for cst in compile_policy(policy).statements)


def layers(subject: Subject, estate: Estate) -> list[Policy]:
    """The identity-side policies that bound a principal: its own and its groups', boundary, SCPs."""
    pols = [p for _, p in subject.policies]
    if subject.boundary is not None:
        pols.append(subject.boundary[1])
    for level in estate.scp_levels(subject.account) or ():
        pols += [p for _, p in level]
    return pols


def signature(subject: Subject, estate: Estate) -> tuple[object, ...]:
    """Everything a principal's answer depends on when the key does not name it."""
    reads_arn = subject.kind == "root" or any(reads_principal(p) for p in layers(subject, estate))
    return (
        subject.arn if reads_arn else None,
        subject.kind,
        subject.account,
        tuple((label, id(p)) for label, p in subject.policies),
        (subject.boundary[0], id(subject.boundary[1])) if subject.boundary else None,
        subject.tags,
        subject.service_linked,
        subject.unreadable,
    )


@dataclass(frozen=True)
class PrincipalGroup:
    index: int
    sig: tuple[object, ...]
    members: tuple[str, ...]
    roles: frozenset[str]  # members that are roles others may assume


def principal_groups(estate: Estate) -> list[PrincipalGroup]:
    by_sig: dict[tuple[object, ...], list[Subject]] = {}
    for subject in estate.subjects.values():
        by_sig.setdefault(signature(subject, estate), []).append(subject)
    return [
        PrincipalGroup(
            n,
            sig,
            tuple(s.arn for s in members),
            frozenset(s.arn for s in members if s.kind == "role" and s.trust is not None),
        )
        for n, (sig, members) in enumerate(by_sig.items())
    ]


# Where a group's statement sits: (layer number * 10,000 + statement index), unique within the group.
StatementId = int
# Per group that has statements naming a key: the ids of those that name it (the key's ARN too when a
# statement's Resource holds a policy variable, whose value is known only per request).
Matches = dict[int, tuple[object, ...]]


class SpecificIndex:
    """The identity-side statements (identity policies, boundaries, SCPs) whose Resource names particular
    KMS keys, indexed so a key's matches cost a dict lookup plus the wildcard patterns, not a walk over
    every group. Statements that cannot touch a KMS action are left out: the ``ec2:*`` on one instance
    that most managed policies carry changes nothing for a key."""

    def __init__(self, estate: Estate, groups: list[PrincipalGroup]) -> None:
        self.exact: dict[str, list[tuple[int, StatementId]]] = {}
        self.patterns: list[tuple[int, StatementId, Any]] = []  # (group, id, compiled statement)
        self.templated: dict[int, list[StatementId]] = {}
        for group in groups:
            rep = estate.subjects[group.members[0]]
            for n, pol in enumerate(layers(rep, estate)):
                for cst in compile_policy(pol).statements:
                    if cst.any_resource or not any(cst.action(a) for a in KMS_ACTIONS_LOWER):
                        continue
                    sid = n * 10000 + cst.index
                    if cst.resource_templates:
                        self.templated.setdefault(group.index, []).append(sid)
                    elif cst.not_resource or cst.resource_rx is not None:
                        self.patterns.append((group.index, sid, cst))
                    else:
                        for arn in cst.resource_exact:
                            self.exact.setdefault(arn, []).append((group.index, sid))

    def matches(self, key_arn: str) -> Matches:
        found: dict[int, list[object]] = {}
        for gi, sid in self.exact.get(key_arn, ()):
            found.setdefault(gi, []).append(sid)
        for gi, sid, cst in self.patterns:
            if cst.resource(key_arn, {}):
                found.setdefault(gi, []).append(sid)
        for gi, sids in self.templated.items():
            found.setdefault(gi, []).extend((*sids, key_arn))
        return {gi: tuple(sorted(set(v), key=str)) for gi, v in found.items()}
