"""The one table of cloud delays: how long AWS takes for the steps no code of ours controls.

Every figure has a typical and an upper value (seconds) and its source: AWS documentation (``doc``), a public
measurement (``measured``: a report with the numbers, cited), or a reasoned ``assumption`` to be replaced by a
measured run in a real account. The local cloud replays these delays on its clock (``localcloud.clock``), so a
demo at 240x shows the real shape of a timeline in seconds; a timeline model (the critical path of the
synthesized state machines, issue 25) reads the same rows. Stage settings (bake times, termination waits,
schedules) are not here: they live in ``stacks/config.py`` and reach the local cloud through the template.

Who reads which row today: ``localcloud.shims.sagemaker_endpoints`` (``ENDPOINT_*``); ``localcloud.timeline`` (the
critical path of the synthesized state machines) reads the endpoint rows, the job rows, the Lambda / SNS / event
rows (the local jobs and functions run as fast as the host allows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Basis = Literal["doc", "measured", "assumption"]


@dataclass(frozen=True)
class Delay:
    key: str
    typical: float  # seconds
    upper: float  # seconds
    basis: Basis
    source: str
    what: str

    def __post_init__(self) -> None:
        if not 0 <= self.typical <= self.upper:
            raise ValueError(f"{self.key}: need 0 <= typical ({self.typical}) <= upper ({self.upper})")
        if not self.source.strip():
            raise ValueError(f"{self.key}: every figure needs its source")


ENDPOINT_CREATE = "sagemaker.endpoint.create"
ENDPOINT_UPDATE_PROVISION = "sagemaker.endpoint.update.provision"
ENDPOINT_PING_FAILURE = "sagemaker.endpoint.ping_failure"
ENDPOINT_ROLLBACK = "sagemaker.endpoint.rollback"
TRAINING_STARTUP = "sagemaker.training.startup"
TRAINING_STARTUP_WARM = "sagemaker.training.startup.warm"

SMOKE_SOURCE = (
    "the server's start-up (measured here: 5.3-7.9 s for the local model server's start, model load and 2 requests "
    "at load 6 on 2 cores; the real container also starts nginx and one gevent worker per vCPU, each loading the "
    "model at its first request, sagemaker-containers _server.start: 15 s assumed, 1 min at most) runs beside the "
    "evaluation (30 s typical), so typically only the two requests and the stop remain (~1-2 s, measured locally "
    "at 0.1-0.3 s); upper: a start-up at its 1 min against an evaluation at its typical 30 s leaves 30 s. Not "
    "measured in a real account: assumption; the job waits at most 120 s (PING_TIMEOUT_SECONDS)"
)
"""Why the smoke rows are what is left after the evaluation (the server starts when the evaluation loads the model)."""

TABLE: tuple[Delay, ...] = (
    Delay(
        ENDPOINT_CREATE,
        typical=360,
        upper=600,
        basis="measured",
        what="CreateEndpoint: instances launched, image pulled, model downloaded, container passes GET /ping",
        source="aws/sagemaker-python-sdk#1006: deploy() of one ml.m4.xlarge endpoint took ~8.5 min; "
        "hashicorp/terraform-provider-aws#39090: endpoints 'now taking a little over 10 minutes' (its 10 min "
        "wait raised to 60); typical 6 min for one CPU instance and a small scikit-learn image is an assumption "
        "inside those reports (docs/performance.md: 5-8 min)",
    ),
    Delay(
        ENDPOINT_UPDATE_PROVISION,
        typical=360,
        upper=600,
        basis="assumption",
        what="UpdateEndpoint (blue/green): the green fleet is provisioned before any traffic shifts",
        source="doc: 'SageMaker AI provisions a new fleet with the updates (the green fleet)' before shifting "
        "(docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-blue-green.html); no duration given: "
        "taken equal to a creation (same instances, image and model)",
    ),
    Delay(
        ENDPOINT_PING_FAILURE,
        typical=300,
        upper=1200,
        basis="assumption",
        what="after provisioning, until SageMaker gives up on a container whose GET /ping never answers 200",
        source="doc: ProductionVariant.ContainerStartupHealthCheckTimeoutInSeconds accepts 60-3600 s "
        "(docs.aws.amazon.com/sagemaker/latest/APIReference/API_ProductionVariant.html); the default window "
        "is not documented there: assumption",
    ),
    Delay(
        ENDPOINT_ROLLBACK,
        typical=60,
        upper=300,
        basis="assumption",
        what="RollingBack: traffic is back on the blue fleet at once; the green fleet is torn down before "
        "the endpoint is InService again",
        source="doc: RollingBack 'is in the process of rolling back to its previous configuration. Once the "
        "rollback completes, endpoint returns to an InService status' (API_DescribeEndpoint EndpointStatus); "
        "no duration given: assumption",
    ),
    Delay(
        TRAINING_STARTUP,
        typical=180,
        upper=300,
        basis="measured",
        what="CreateTrainingJob until the script starts: instance provisioning, image download, input download",
        source="NVIDIA-Merlin/Transformers4Rec#794 job log: 'Starting' 22:15:03 -> 'Training image download "
        "completed' 22:18:59 (236 s, a large GPU image); typical 3 min for the smaller scikit-learn image: "
        "assumption",
    ),
    Delay(
        TRAINING_STARTUP_WARM,
        typical=20,
        upper=60,
        basis="assumption",
        what="CreateTrainingJob until the script starts, on the retained instance of a SageMaker managed warm pool "
        "(a matching job within the keep-alive): no provisioning, the image already on the instance, the "
        "channels downloaded again",
        source="doc: subsequent matching jobs 'run on the retained warm pool infrastructure, which speeds up start "
        "times by reducing the time spent provisioning resources' (docs.aws.amazon.com/sagemaker/latest/dg/"
        "train-warm-pools.html), no figure; the AWS ML blog 'Best practices for Amazon SageMaker Training Managed "
        "Warm Pools' names start-ups 'under 20 seconds' as what warm pools are for: typical 20 s, upper 1 min "
        "for a slow channel download (a few MB here): assumption",
    ),
    Delay(
        "sagemaker.processing.startup",
        typical=300,
        upper=480,
        basis="measured",
        what="CreateProcessingJob until the container's entrypoint runs (processing jobs have no warm pools)",
        source="aws/sagemaker-python-sdk#4358: a 30 s script took 8 min 17 s end to end 'bc of infra "
        "allocation' (~7.8 min of start-up: the upper figure); typical 5 min: assumption",
    ),
    Delay(
        "glue.job.startup",
        typical=30,
        upper=90,
        basis="assumption",
        what="StartJobRun of a Glue 5.0 Spark job until the script runs (before pip installs)",
        source="doc: Glue 2.0+ runs Spark ETL jobs 'with reduced startup times' "
        "(docs.aws.amazon.com/glue/latest/dg/reduced-start-times-spark-etl-jobs.html); no figure for 5.0: "
        "assumption",
    ),
    Delay(
        "glue.job.additional_python_modules",
        typical=20,
        upper=60,
        basis="assumption",
        what="pip install --no-index of --additional-python-modules at every Glue job start: the 7 wheels of "
        "requirements-glue.lock (86 MB: pandas, pyarrow, numpy and their dependencies) from the assets bucket",
        source="doc: Glue installs them with pip3 at job start "
        "(docs.aws.amazon.com/glue/latest/dg/aws-glue-programming-python-libraries.html); duration: assumption "
        "(no index to query or resolve against: an in-region S3 read of 86 MB and unpacking 7 wheels; was "
        "45 s / 2 min while the job resolved and downloaded them from PyPI)",
    ),
    Delay(
        "glue.job.run",
        typical=90,
        upper=180,
        basis="assumption",
        what="the ETL script itself on a sample upload: Spark session, validate, split, Parquet + catalog, report",
        source="the transform is < 1 s at these sizes (docs/performance.md, etl); the Spark session and S3 / "
        "catalog I/O are not measured in a real account: assumption (docs/performance.md: 1-2 min)",
    ),
    Delay(
        "lambda.etl",
        typical=5,
        upper=20,
        basis="measured",
        what="the Lambda ETL of an upload of the sample's size (etl.lambda_max_bytes or less): a cold start with the "
        "AWS SDK for pandas layer, the raw object read, the transforms, Parquet per split, quarantine, report, "
        "catalog and manifest writes",
        source="cold start: aws/aws-sdk-pandas#1645, the AWSSDKPandas layer takes a function's init from ~0.1 s to "
        "~3.7 s (the layer is 210 MB unzipped); the logic on the 390 KB churn sample: 0.04 s after 0.5 s of imports, "
        'peak 152 MB RSS, on this repository\'s 2-core host (docs/performance.md, "The Lambda ETL"); ~12 S3 and '
        "Glue catalog calls of ~0.1 s: assumption. Upper: a 1,024-3,008 MB function imports the pandas stack in "
        "1.2-2.8 s after init (aws/aws-sdk-pandas#460), throttled calls retried and an upload near the threshold "
        "(2.0 s for 78 MB here): assumption",
    ),
    Delay(
        "sagemaker.training.run",
        typical=30,
        upper=120,
        basis="assumption",
        what="the training script on a sample upload (fit, artifacts) and the upload of model.tar.gz",
        source="the fit of 5,000 rows takes seconds on this repository's machine (docs/performance.md, lifecycle); "
        "the job's 'Uploading' phase is not documented: assumption",
    ),
    Delay(
        "sagemaker.tuning.job",
        typical=2 * (180 + 30),
        upper=4 * (300 + 120),
        basis="assumption",
        what="a tuning job of 4 trials, at most 2 in parallel (model.tuning): each trial is a training job "
        "(start-up and run, the rows above), in rounds of MaxParallelTrainingJobs",
        source="doc: the tuning job 'launches training jobs' within ResourceLimits (MaxNumberOfTrainingJobs, "
        "MaxParallelTrainingJobs; docs.aws.amazon.com/sagemaker/latest/APIReference/API_ResourceLimits.html); "
        "typical: 2 rounds of the typical training rows; upper: the 4 trials one after another at the upper "
        "rows (no warm pool); the tuning service's own scheduling time is not documented: assumption",
    ),
    Delay(
        "sagemaker.processing.run",
        typical=30,
        upper=90,
        basis="measured",
        what="the evaluation job's script (a tuned run's): champion/challenger on the held-out split, golden "
        "payloads, report upload",
        source="aws/sagemaker-python-sdk#4358 reports a 30 s processing script (the typical figure); the upper "
        "one for a slow S3 read: assumption",
    ),
    Delay(
        "sagemaker.processing.smoke",
        typical=2,
        upper=30,
        basis="assumption",
        what="the evaluation job's smoke test, after the evaluation: the image's serve (nginx + gunicorn) was started "
        "on the new archive when the evaluation loaded it (pipelines.evaluation.smoke.EarlyServing) and came up "
        "meanwhile; what is left is the wait for GET /ping if it is not up yet, the golden payloads POSTed as JSON "
        "and CSV, and the server's stop",
        source=SMOKE_SOURCE,
    ),
    Delay(
        "sagemaker.training.evaluation",
        typical=30,
        upper=90,
        basis="assumption",
        what="inside an untuned run's training job, after the fit: the evaluation module in a new interpreter on the "
        "packed archive (champion/challenger on the held-out split, golden payloads, the report into "
        "/opt/ml/output/data, uploaded as output.tar.gz with the model)",
        source="the same module and work as sagemaker.processing.run (a 30 s processing script, "
        "aws/sagemaker-python-sdk#4358), whose S3 reads here are channels downloaded during "
        "sagemaker.training.startup (the champion's archive is a few MB) and whose report leaves with the job's "
        "output: taken equal, assumption",
    ),
    Delay(
        "sagemaker.training.smoke",
        typical=2,
        upper=30,
        basis="assumption",
        what="inside the training job, after the evaluation: the image's serve, started on the packed archive when "
        "the evaluation loaded it (pipelines.evaluation.smoke.EarlyServing), answers GET /ping, the golden payloads "
        "are POSTed as JSON and CSV, the server stops",
        source="the same smoke test as sagemaker.processing.smoke (the scikit-learn image that trains is the one "
        "that serves: same serve, same model): " + SMOKE_SOURCE,
    ),
    Delay(
        "states.sync_completion",
        typical=5,
        upper=60,
        basis="assumption",
        what="a .sync task (Glue job run, SageMaker job) notices its job's end and moves on",
        source="doc: the 'Run a Job (.sync)' pattern waits for the job to complete "
        "(docs.aws.amazon.com/step-functions/latest/dg/connect-to-resource.html); how soon after the job's end "
        "is not documented: assumption",
    ),
    Delay(
        "lambda.start_pipeline",
        typical=1.5,
        upper=5,
        basis="measured",
        what="the start Lambda: cold start, DynamoDB idempotency record, StartExecution",
        source="the handler's imports take ~0.3 s in a fresh interpreter (bench cold_start, docs/performance.md); "
        "runtime init, layers and the two calls: assumption",
    ),
    Delay(
        "lambda.step",
        typical=1,
        upper=5,
        basis="assumption",
        what="a Lambda task state: invocation (cold at most once per run) and a few SageMaker / S3 calls",
        source="the handlers' imports take ~0.3 s cold (bench cold_start, docs/performance.md); a few API calls "
        "of ~0.1 s each; a cold start with layers and throttled calls retried: the upper figure (assumption)",
    ),
    Delay(
        "sns.publish",
        typical=0.2,
        upper=2,
        basis="assumption",
        what="a Step Functions sns:publish task (the notification; its delivery is not waited for)",
        source="one API call through the service integration; no documented latency: assumption",
    ),
    Delay(
        "eventbridge.target",
        typical=1,
        upper=10,
        basis="doc",
        what="EventBridge matches an event against the rules and invokes the target (Lambda, StartExecution)",
        source="doc: 'The first attempt is made as soon as the event arrives in the event stream' (EventBridge "
        "partner FAQ, docs.aws.amazon.com/eventbridge/latest/onboarding/AWS_EventBridge_Partner_Onboarding_FAQ"
        ".html); seconds: assumption (a retried delivery backs off for longer: not in the upper figure)",
    ),
    Delay(
        "sagemaker.registry.event",
        typical=2,
        upper=60,
        basis="assumption",
        what="an Approved model package -> the 'SageMaker Model Package State Change' event on EventBridge",
        source="doc: SageMaker sends model package state changes to EventBridge "
        "(docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html); no latency "
        "given: assumption, taken as S3's (seconds, sometimes a minute)",
    ),
    Delay(
        "s3.event_notification",
        typical=2,
        upper=60,
        basis="doc",
        what="S3 Object Created -> EventBridge",
        source="doc: S3 event notifications are 'typically delivered in seconds but can sometimes take a minute "
        "or longer' (docs.aws.amazon.com/AmazonS3/latest/userguide/EventNotifications.html)",
    ),
)

_BY_KEY = {row.key: row for row in TABLE}
if len(_BY_KEY) != len(TABLE):
    raise ValueError("durations: duplicate keys")


def row(key: str) -> Delay:
    """The row of ``key`` (KeyError names the key and what exists)."""
    try:
        return _BY_KEY[key]
    except KeyError:
        raise KeyError(f"no delay {key!r} in localcloud.durations (known: {', '.join(sorted(_BY_KEY))})") from None


def typical(key: str) -> float:
    return row(key).typical


def upper(key: str) -> float:
    return row(key).upper
