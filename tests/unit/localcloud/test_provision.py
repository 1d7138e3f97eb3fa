"""Asset publishing of ``localcloud.provision``: what ``cdk-assets`` uploads and what it skips."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from localcloud import provision
from tests.unit.localcloud.support import REGION

BUCKET = "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}"
STACK = "teststack"


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        calls: list[str] = []
        client.meta.events.register("before-call.s3.*", lambda model, **_: calls.append(model.name))
        client.calls = calls  # type: ignore[attr-defined]
        yield client


def assembly(tmp_path: Path) -> Path:
    """A cloud assembly with a file asset and a directory asset, manifested as the CDK writes them."""
    (tmp_path / "asset.wheel.whl").write_bytes(b"PK\x03\x04" + bytes(range(256)) * 4096)
    (tmp_path / "asset.code").mkdir()
    (tmp_path / "asset.code" / "handler.py").write_text("def handler(event, context):\n    return 1\n")
    files = {
        "wheel": {"source": {"path": "asset.wheel.whl", "packaging": "file"}, "key": "wheel.whl"},
        "code": {"source": {"path": "asset.code", "packaging": "zip"}, "key": "code.zip"},
    }
    manifest = {
        "version": "39.0.0",
        "files": {
            name: {
                "source": spec["source"],
                "destinations": {"current": {"bucketName": BUCKET, "objectKey": spec["key"]}},
            }
            for name, spec in files.items()
        },
    }
    (tmp_path / f"{STACK}.assets.json").write_text(json.dumps(manifest))
    return tmp_path


def publish(root: Path, s3: Any) -> dict[str, str]:
    return provision.publish_assets(root, STACK, s3, provision.ACCOUNT_ID, REGION)


def test_every_asset_is_uploaded_under_its_manifest_key(tmp_path: Path, s3: Any) -> None:
    root = assembly(tmp_path)
    urls = publish(root, s3)
    bucket = f"cdk-hnb659fds-assets-{provision.ACCOUNT_ID}-{REGION}"
    assert urls == {"wheel": f"s3://{bucket}/wheel.whl", "code": f"s3://{bucket}/code.zip"}
    wheel = s3.get_object(Bucket=bucket, Key="wheel.whl")["Body"].read()
    assert wheel == (root / "asset.wheel.whl").read_bytes()
    code = zipfile.ZipFile(io.BytesIO(s3.get_object(Bucket=bucket, Key="code.zip")["Body"].read()))
    assert code.read("handler.py") == (root / "asset.code" / "handler.py").read_bytes()


def test_an_asset_already_in_the_bucket_is_not_uploaded_again(tmp_path: Path, s3: Any) -> None:
    root = assembly(tmp_path)
    publish(root, s3)
    uploads = s3.calls.count("PutObject")
    assert uploads == 2
    again = publish(root, s3)
    assert s3.calls.count("PutObject") == uploads  # both keys found: nothing uploaded
    assert set(again) == {"wheel", "code"}


def test_an_object_no_larger_than_an_empty_zip_counts_as_not_published(tmp_path: Path, s3: Any) -> None:
    """cdk-assets' objectExists: an object of at most 22 bytes (an empty zip) is uploaded over."""
    root = assembly(tmp_path)
    bucket = f"cdk-hnb659fds-assets-{provision.ACCOUNT_ID}-{REGION}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="wheel.whl", Body=b"PK\x05\x06" + bytes(18))  # an empty zip archive
    s3.put_object(Bucket=bucket, Key="code.zip.old", Body=b"x" * 100)  # a longer key with the prefix: not it
    publish(root, s3)
    assert s3.get_object(Bucket=bucket, Key="wheel.whl")["ContentLength"] == (root / "asset.wheel.whl").stat().st_size
    assert s3.head_object(Bucket=bucket, Key="code.zip")["ContentLength"] > provision.EMPTY_ZIP_SIZE


def test_published_reads_the_listing_as_cdk_assets_does(s3: Any) -> None:
    s3.create_bucket(Bucket="assets-bucket")
    assert not provision.published(s3, "assets-bucket", "a.zip")
    s3.put_object(Bucket="assets-bucket", Key="a.zip.tmp", Body=b"x" * 100)
    assert not provision.published(s3, "assets-bucket", "a.zip")
    s3.put_object(Bucket="assets-bucket", Key="a.zip", Body=b"x" * 23)
    assert provision.published(s3, "assets-bucket", "a.zip")


def test_a_synth_that_fails_raises_with_the_apps_error(tmp_path: Path) -> None:
    synth = provision.start_synth("no-such-stage", tmp_path / "cdk.out")
    with pytest.raises(provision.DeployError, match=r"(?s)cdk synth failed:.*no-such-stage"):
        synth.wait()


def test_a_cancelled_synth_leaves_no_process_behind(tmp_path: Path) -> None:
    synth = provision.start_synth("dev", tmp_path / "cdk.out")
    synth.cancel()
    assert synth.process.poll() is not None
    assert not (tmp_path / "cdk.out" / "manifest.json").exists()
