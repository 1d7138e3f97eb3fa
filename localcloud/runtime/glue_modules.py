"""The install step of a Glue 5.0 job run: ``--additional-python-modules`` with ``--python-modules-installer-option``.

Glue installs the job's additional modules with pip3 at the start of every run, before the script ("Using Python
libraries with AWS Glue", https://docs.aws.amazon.com/glue/latest/dg/aws-glue-programming-python-libraries.html):
a comma-separated list of requirements (``name==version``, from the package index) or of ``s3://`` paths to wheel
files, with the installer options passed to pip. This module applies the rules that decide whether that install
can succeed, in the order a run meets them, and answers the failure or ``None``:

- an ``s3://`` module is read with the job's role (``s3:GetObject``, evaluated like every call of the role): a
  missing object or a denied read fails the run;
- it must be a wheel: a PEP 427 file name (``name-version[-build]-python-abi-platform.whl``) and a zip archive;
- of a tag Glue 5.0's interpreter installs: CPython 3.11 on Amazon Linux 2023, glibc 2.34, x86_64 (the version
  table of the page above): ``cp311`` / ``abi3`` / ``py3-none``, ``manylinux`` up to glibc 2.34 or ``any``;
- a requirement that is not a wheel path needs the package index: with ``--no-index`` pip refuses it ("No matching
  distribution"); without it, a job whose workers are in a subnet with no route to the internet (a NETWORK
  connection on an isolated subnet: no internet or NAT gateway route) cannot reach PyPI, and pip ends with the
  same words after its connection retries.

What is not modelled: pip's dependency resolution between the wheels and the modules Glue 5.0 ships (the stack's
lock is closed over its dependencies: ``make install`` downloads it with ``--require-hashes``), and the install
itself (the local Glue runtime has these libraries at the stack's pins, docs/local-cloud.md). The messages are
pip's; the prefix naming the install step is the local cloud's (Glue's own wording of a failed install was not in
the documentation available here).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

MODULES = "--additional-python-modules"
INSTALLER_OPTIONS = "--python-modules-installer-option"
PREFIX = "Python module installation failed (--additional-python-modules): "

PYTHON_MINOR = 11
GLIBC_MINOR = 34
ARCH = "x86_64"


def _platforms() -> tuple[str, ...]:
    """The platform tags of Glue 5.0's workers, most specific first, as pip lists them for glibc 2.34 x86_64."""
    manylinux = [f"manylinux_2_{minor}_{ARCH}" for minor in range(GLIBC_MINOR, 4, -1)]
    legacy = [f"manylinux2014_{ARCH}", f"manylinux2010_{ARCH}", f"manylinux1_{ARCH}"]
    return (*manylinux, *legacy, f"linux_{ARCH}")


def supported_tags() -> frozenset[tuple[str, str, str]]:
    """(python, abi, platform) tags pip on CPython 3.11 / glibc 2.34 / x86_64 accepts (packaging.tags' order
    rules: cpython tags, abi3 down to cp32, then the interpreter-independent ones and ``any``)."""
    cp = f"cp3{PYTHON_MINOR}"
    tags: set[tuple[str, str, str]] = set()
    for platform in _platforms():
        tags |= {(cp, cp, platform), (cp, "abi3", platform), (cp, "none", platform)}
        tags |= {(f"cp3{minor}", "abi3", platform) for minor in range(2, PYTHON_MINOR)}
        tags |= {(f"py3{minor}", "none", platform) for minor in range(PYTHON_MINOR, -1, -1)}
        tags.add(("py3", "none", platform))
    tags |= {(cp, "none", "any"), ("py3", "none", "any")}
    tags |= {(f"py3{minor}", "none", "any") for minor in range(PYTHON_MINOR, -1, -1)}
    return frozenset(tags)


_SUPPORTED = supported_tags()
# PEP 427: {distribution}-{version}(-{build tag})?-{python tag}-{abi tag}-{platform tag}.whl
_WHEEL = re.compile(
    r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-(?P<build>\d[^-]*))?-(?P<py>[^-]+)-(?P<abi>[^-]+)-(?P<plat>[^-]+)\.whl$"
)


def wheel_tags(filename: str) -> frozenset[tuple[str, str, str]] | None:
    """The tags of a wheel file name (compressed tag sets expanded), or None when it is not a wheel's name."""
    match = _WHEEL.match(filename)
    if match is None:
        return None
    return frozenset(
        (py, abi, plat)
        for py in match["py"].split(".")
        for abi in match["abi"].split(".")
        for plat in match["plat"].split(".")
    )


def glue_installs(filename: str) -> bool:
    """Whether Glue 5.0's pip installs the wheel of this file name."""
    return bool((wheel_tags(filename) or frozenset()) & _SUPPORTED)


def _no_matching_distribution(requirement: str) -> str:
    return (
        f"ERROR: Could not find a version that satisfies the requirement {requirement} (from versions: none)\n"
        f"ERROR: No matching distribution found for {requirement}"
    )


def install_failure(
    arguments: Mapping[str, str],
    read: Callable[[str, str], bytes],
    internet: bool,
) -> str | None:
    """Why pip's install of the run's modules fails, or None when it succeeds.

    ``arguments``: the run's arguments (the job's defaults overridden by the run's); ``read(bucket, key)``: the
    first bytes of an object, read with the job's role (raises ``ObjectMissing`` or ``ReadDenied``);
    ``internet``: whether the job's workers reach the internet (Glue's own network does; an isolated subnet does
    not)."""
    modules = [m.strip() for m in str(arguments.get(MODULES) or "").split(",") if m.strip()]
    options = str(arguments.get(INSTALLER_OPTIONS) or "").split()
    no_index = "--no-index" in options
    for module in modules:
        if module.startswith("s3://"):
            error = _wheel_failure(module, read)
        elif no_index:
            error = _no_matching_distribution(module)
        elif not internet:
            error = (
                "WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) after "
                "connection broken by 'NewConnectionError(\"Failed to establish a new connection: [Errno 101] "
                f"Network is unreachable\")': /simple/{module.split('=')[0].split('[')[0].strip()}/\n"
                + _no_matching_distribution(module)
            )
        else:
            error = None
        if error:
            return PREFIX + error
    return None


class ObjectMissing(Exception):
    """The S3 object does not exist."""


class ReadDenied(Exception):
    """The job's role may not read the S3 object."""


def _wheel_failure(uri: str, read: Callable[[str, str], bytes]) -> str | None:
    bucket, _, key = uri[len("s3://") :].partition("/")
    filename = key.rsplit("/", 1)[-1]
    try:
        head = read(bucket, key)
    except ObjectMissing:
        return f"{uri}: NoSuchKey: the module's object does not exist"
    except ReadDenied as denied:
        return f"{uri}: AccessDenied: the job's role cannot read the module ({denied})"
    if wheel_tags(filename) is None:
        return f"ERROR: {filename} is not a valid wheel filename."
    if not head.startswith(b"PK\x03\x04"):
        return f"ERROR: Wheel '{filename}' is not a zip file: it could not be read."
    if not glue_installs(filename):
        return f"ERROR: {filename} is not a supported wheel on this platform."
    return None


def job_has_internet(
    connection_names: list[str],
    subnet_of: Callable[[str], str | None],
    routes_of: Callable[[str], list[dict[str, Any]]],
) -> bool:
    """Whether a job's workers reach the internet: without a NETWORK connection they run on Glue's own network
    (which does); with one, in its subnet, which does when its route table sends ``0.0.0.0/0`` to an internet or
    NAT gateway."""
    subnets = [s for s in (subnet_of(name) for name in connection_names) if s]
    if not subnets:
        return True
    return all(
        any(
            route.get("DestinationCidrBlock") == "0.0.0.0/0"
            and (str(route.get("GatewayId") or "").startswith("igw-") or route.get("NatGatewayId"))
            for route in routes_of(subnet)
        )
        for subnet in subnets
    )
