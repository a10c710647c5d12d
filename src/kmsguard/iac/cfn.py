"""The CloudFormation loader: one template (YAML, JSON, or CDK's ``cdk.out/*.template.json``) to a ``Unit``.

``load_cloudformation`` reads the file (``cfn_parse``), finds the conditions that depend on deploy-time
input and the worlds they make (``cfn_values.Conditions``), and reads every mapped resource in each world
(``cfn_resources``) into the Snapshot's model objects, each with its file and line. A file that is not a
template (a GitHub workflow, package.json, CDK's manifest.json or tree.json) gives None; a template that
cannot be read is an ``IacError`` naming the file and line.
"""

from __future__ import annotations

from pathlib import Path

from kmsguard.iac.cfn_parse import read_template
from kmsguard.iac.cfn_resources import MAPPED_TYPES, read_world
from kmsguard.iac.cfn_values import Conditions, Resolver, used_conditions
from kmsguard.iac.declared import IacContext, IacError, Unit


def load_cloudformation(path: Path, rel: str, ctx: IacContext) -> Unit | None:
    """The template at ``path`` as a Unit of worlds; None when the file is not a CloudFormation template.
    ``rel`` is the file's path relative to the scanned root (POSIX), used in locations and errors."""
    tpl = read_template(path, rel)
    if tpl is None:
        return None
    try:
        conditions = Conditions(tpl, ctx)
        worlds = conditions.worlds(used_conditions(tpl, MAPPED_TYPES))
        declared = [read_world(tpl, ctx, Resolver(tpl, ctx, conditions, w), w.label) for w in worlds]
    except RecursionError:
        # The parser bounds nesting and the resolver the chains of names; this is the last resort.
        raise IacError(rel, None, "values refer to each other too deeply to resolve") from None
    return Unit(file=rel, kind="cloudformation", worlds=declared)
