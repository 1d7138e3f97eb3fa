"""The install rules of a Glue 5.0 run's ``--additional-python-modules`` (wheel tags, --no-index, S3 reads, network)."""

from __future__ import annotations

from typing import Any

import pytest

from localcloud.runtime.glue_modules import (
    PREFIX,
    ObjectMissing,
    ReadDenied,
    glue_installs,
    install_failure,
    job_has_internet,
    wheel_tags,
)
from stacks.glue_wheels import locked_wheels

ZIP = b"PK\x03\x04rest-of-the-archive"
WHEEL = "s3://assets/pandas-2.3.3-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl"


def objects(**bodies: bytes) -> Any:
    """``read`` over a dict of key -> body; a key "denied-..." raises ReadDenied, an absent one ObjectMissing."""

    def read(bucket: str, key: str) -> bytes:
        if key.startswith("denied-"):
            raise ReadDenied(f"s3:GetObject on arn:aws:s3:::{bucket}/{key}")
        if key not in bodies:
            raise ObjectMissing("NoSuchKey")
        return bodies[key]

    return read


def test_every_locked_wheel_is_one_glue_5_installs() -> None:
    names = [wheel.path.name for wheel in locked_wheels()]
    assert names and all(glue_installs(name) for name in names), names


@pytest.mark.parametrize(
    "filename",
    [
        "numpy-2.4.6-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
        "pyarrow-26.0.1-cp311-cp311-manylinux_2_28_x86_64.whl",
        "orjson-3.10.0-cp38-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",  # stable ABI from 3.8
        "six-1.17.0-py2.py3-none-any.whl",
        "tool-1.0-1build-py3-none-any.whl",  # with a build tag
        "thing-1.0-cp311-cp311-manylinux_2_34_x86_64.whl",  # Glue 5.0's own glibc
    ],
)
def test_wheels_for_cpython_311_glibc_234_x86_64_install(filename: str) -> None:
    assert glue_installs(filename)


@pytest.mark.parametrize(
    "filename",
    [
        "numpy-2.4.6-cp312-cp312-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",  # another Python
        "numpy-2.4.6-cp311-cp311-manylinux_2_28_aarch64.whl",  # Graviton, not Glue's x86_64
        "numpy-2.4.6-cp311-cp311-musllinux_1_2_x86_64.whl",  # musl, not glibc
        "numpy-2.4.6-cp311-cp311-manylinux_2_35_x86_64.whl",  # needs a newer glibc than 2.34
        "numpy-2.4.6-cp311-cp311-win_amd64.whl",
        "numpy-2.4.6-cp311-cp311-macosx_11_0_x86_64.whl",
        "legacy-1.0-py2-none-any.whl",
    ],
)
def test_wheels_for_another_interpreter_or_platform_do_not(filename: str) -> None:
    assert not glue_installs(filename)


def test_a_name_that_is_not_a_wheels_is_no_wheel() -> None:
    assert wheel_tags("pandas.whl") is None
    assert wheel_tags("pandas-2.3.3.tar.gz") is None
    assert not glue_installs("0a10eec6e13ef16b627fabed9a5f2ba61a62b1c67f327305f4e7e412a70b4aec.whl")


def test_locked_wheels_in_s3_without_an_index_install() -> None:
    key = WHEEL.split("/", 3)[3]
    arguments = {"--additional-python-modules": WHEEL, "--python-modules-installer-option": "--no-index"}
    assert install_failure(arguments, objects(**{key: ZIP}), internet=False) is None


def test_no_modules_install_nothing_and_need_nothing() -> None:
    assert install_failure({}, objects(), internet=False) is None
    assert install_failure({"--additional-python-modules": ""}, objects(), internet=False) is None


def test_a_missing_wheel_fails_the_install_naming_it() -> None:
    arguments = {"--additional-python-modules": WHEEL, "--python-modules-installer-option": "--no-index"}
    assert install_failure(arguments, objects(), internet=True) == (
        f"{PREFIX}{WHEEL}: NoSuchKey: the module's object does not exist"
    )


def test_a_wheel_the_role_cannot_read_fails_the_install() -> None:
    uri = "s3://assets/denied-six-1.17.0-py2.py3-none-any.whl"
    failure = install_failure({"--additional-python-modules": uri}, objects(), internet=True)
    assert failure == (
        f"{PREFIX}{uri}: AccessDenied: the job's role cannot read the module "
        "(s3:GetObject on arn:aws:s3:::assets/denied-six-1.17.0-py2.py3-none-any.whl)"
    )


def test_a_wheel_for_another_platform_fails_as_pip_refuses_it() -> None:
    name = "numpy-2.4.6-cp311-cp311-manylinux_2_28_aarch64.whl"
    failure = install_failure({"--additional-python-modules": f"s3://a/{name}"}, objects(**{name: ZIP}), True)
    assert failure == f"{PREFIX}ERROR: {name} is not a supported wheel on this platform."


def test_an_object_named_like_a_hash_is_not_a_wheel_pip_can_install() -> None:
    name = "0a10eec6e13ef16b627fabed9a5f2ba61a62b1c67f327305f4e7e412a70b4aec.whl"
    failure = install_failure({"--additional-python-modules": f"s3://a/{name}"}, objects(**{name: ZIP}), True)
    assert failure == f"{PREFIX}ERROR: {name} is not a valid wheel filename."


def test_an_object_that_is_not_a_zip_is_not_a_wheel() -> None:
    name = "six-1.17.0-py2.py3-none-any.whl"
    failure = install_failure({"--additional-python-modules": f"s3://a/{name}"}, objects(**{name: b"<html>"}), True)
    assert failure == f"{PREFIX}ERROR: Wheel '{name}' is not a zip file: it could not be read."


def test_a_requirement_with_no_index_finds_no_distribution() -> None:
    arguments = {
        "--additional-python-modules": f"{WHEEL},pytz==2026.6",
        "--python-modules-installer-option": "--no-index",
    }
    key = WHEEL.split("/", 3)[3]
    assert install_failure(arguments, objects(**{key: ZIP}), internet=True) == (
        f"{PREFIX}ERROR: Could not find a version that satisfies the requirement pytz==2026.6 (from versions: none)\n"
        "ERROR: No matching distribution found for pytz==2026.6"
    )


def test_a_requirement_from_pypi_installs_with_a_route_out_and_fails_without_one() -> None:
    arguments = {"--additional-python-modules": "pandas==2.3.3"}
    assert install_failure(arguments, objects(), internet=True) is None
    failure = install_failure(arguments, objects(), internet=False)
    assert failure is not None and failure.startswith(PREFIX + "WARNING: Retrying")
    assert "Network is unreachable\")': /simple/pandas/" in failure
    assert failure.endswith("ERROR: No matching distribution found for pandas==2.3.3")


IGW = {"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": "igw-1"}
NAT = {"DestinationCidrBlock": "0.0.0.0/0", "NatGatewayId": "nat-1"}
LOCAL = {"DestinationCidrBlock": "10.0.0.0/16", "GatewayId": "local"}
S3_GATEWAY = {"DestinationPrefixListId": "pl-63a5400a", "GatewayId": "vpce-1"}


@pytest.mark.parametrize(
    ("connections", "routes", "internet"),
    [
        ([], {}, True),  # Glue's own network
        (["etl-network"], {"subnet-1": [LOCAL, S3_GATEWAY]}, False),  # an isolated subnet
        (["etl-network"], {"subnet-1": [LOCAL, IGW]}, True),  # a public subnet
        (["etl-network"], {"subnet-1": [LOCAL, NAT]}, True),  # a private subnet with a NAT gateway
    ],
)
def test_a_jobs_workers_reach_the_internet_through_their_subnets_routes(
    connections: list[str], routes: dict[str, list[dict[str, str]]], internet: bool
) -> None:
    subnets = {"etl-network": "subnet-1"}
    assert job_has_internet(connections, subnets.get, lambda subnet: routes[subnet]) is internet
