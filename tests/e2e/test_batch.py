"""Batch inference end to end: an upload under raw ``batch-input/`` is scored by the champion (issue 5)."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd

from localcloud.runtime.journal import journal
from pipelines.data.generator import generate
from pipelines.platform import BATCH_INPUT_PREFIX
from tests.e2e.conftest import Cloud


def test_a_batch_input_upload_is_scored_by_the_champion_into_the_curated_zone(champion: Cloud) -> None:
    lc = champion.lc
    # Given 12,000 rows of features (more than one real-time request may carry) uploaded as a batch input of the
    # dataset (batch-input/<dataset>/: the batch Lambda scores an upload with that dataset's champion)
    rows = generate(12_000, seed=50)[lc.schema.feature_names]
    buffer = io.StringIO()
    rows.to_csv(buffer, header=False, index=False)
    lc.upload(buffer.getvalue().encode(), "scores-2026-11-27.csv", prefix=f"{BATCH_INPUT_PREFIX}{lc.schema.name}/")
    # When the batch Lambda starts a transform job with the champion and the job runs
    done = lc.wait_for(
        lambda: [e for e in journal.of("transform-job") if e.detail.get("status") in ("Completed", "Failed")],
        timeout=300,
        what="the transform job",
    )[-1]
    # Then it completed and wrote one prediction per input row into the curated zone's batch-output/, in the
    # object SageMaker names after the input (<input>.out)
    assert done.detail["status"] == "Completed", done.detail
    outputs = [k for k in lc.keys(lc.curated_bucket, "batch-output/") if k.endswith("/scores-2026-11-27.csv.out")]
    assert len(outputs) == 1, lc.keys(lc.curated_bucket, "batch-output/")
    body = lc.clients.s3.get_object(Bucket=lc.curated_bucket, Key=outputs[0])["Body"].read().decode()
    predictions = pd.read_csv(io.StringIO(body), header=None, names=["probability", "label"])
    assert len(predictions) == len(rows)
    assert predictions["probability"].between(0, 1).all()
    assert set(np.unique(predictions["label"])) <= {0, 1}
    # And the scores are the champion's: the endpoint (serving the champion) gives the same for sampled rows
    sample = rows.iloc[::1000]
    request = io.StringIO()
    sample.to_csv(request, header=False, index=False)
    answer = lc.clients.sagemaker_runtime.invoke_endpoint(
        EndpointName=lc.endpoint_name, ContentType="text/csv", Accept="application/json", Body=request.getvalue()
    )
    served = [p["probability"] for p in json.loads(answer["Body"].read())["predictions"]]
    assert np.allclose(predictions["probability"].iloc[::1000].to_numpy(), served, atol=1e-6), served
