"""Public AWS SSM parameters (``/aws/service/...``) that our template resolves at deploy time.

moto refuses writes under ``/aws/`` (reserved names) and knows only a few public trees (AMIs, regions).
The CDK app looks up the Powertools and AWS SDK for pandas layer ARNs and the bootstrap version through
SSM-typed template parameters; this shim seeds those public parameters, with values of the real public
layers' ARN form, into moto's SSM backend the way moto seeds its own public trees.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from moto.ssm.models import Parameter, ssm_backends

BOOTSTRAP_VERSION = "29"

_POWERTOOLS = re.compile(
    r"^/aws/service/powertools/python/(?P<arch>[^/]+)/(?P<runtime>python3\.\d+)/(?P<version>[^/]+)$"
)
_SDK_PANDAS = re.compile(r"^/aws/service/aws-sdk-pandas/(?P<version>[^/]+)/(?P<py>py3\.\d+)/(?P<arch>[^/]+)/layer-arn$")


def public_value(name: str, region: str) -> str | None:
    """The value of a public parameter the stack uses (None if we do not know it)."""
    if match := _POWERTOOLS.match(name):
        runtime = match["runtime"].replace(".", "")
        return f"arn:aws:lambda:{region}:017000801446:layer:AWSLambdaPowertoolsPythonV3-{runtime}-{match['arch']}:18"
    if match := _SDK_PANDAS.match(name):
        py = match["py"].replace("py", "Python").replace(".", "")
        arch = "" if match["arch"] == "x86_64" else "-Arm64"
        return f"arn:aws:lambda:{region}:336392948345:layer:AWSSDKPandas-{py}{arch}:5"
    if name == "/cdk-bootstrap/hnb659fds/version":
        return BOOTSTRAP_VERSION
    return None


def seed(account_id: str, region: str, names: list[str]) -> dict[str, str]:
    """Put each known public parameter of ``names`` into moto; returns what was seeded."""
    backend = ssm_backends[account_id][region]
    seeded = {}
    for name in names:
        value = public_value(name, region)
        if value is None or backend._parameters.get(name):
            continue
        backend._parameters[name].append(
            Parameter(  # type: ignore[abstract]
                account_id=account_id,
                name=name,
                value=value,
                parameter_type="String",
                description="public parameter (local cloud)",
                allowed_pattern=None,
                keyid=None,
                last_modified_date=datetime.now(UTC),
                version=1,
                data_type="text",
            )
        )
        seeded[name] = value
    return seeded
