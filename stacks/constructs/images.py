"""SageMaker container images from the sagemaker SDK's own lookup for the region (never hard-coded
registry account ids). The SDK import is slow (~4 s), so it happens once, lazily, on the synth path."""

from __future__ import annotations

from functools import cache


@cache
def sklearn_image_uri(region: str, framework_version: str, instance_type: str) -> str:
    from sagemaker.core import image_uris  # lazy: heavy import, synth path only

    return str(
        image_uris.retrieve(
            framework="sklearn",
            region=region,
            version=framework_version,
            instance_type=instance_type,
            py_version="py3",
            image_scope="training",
        )
    )
