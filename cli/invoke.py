"""``mlops invoke --dataset N FILE``: send a CSV or JSON file to the dataset's endpoint and print the answer."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cli.context import Ops
from cli.errors import BAD_INPUT, FAILED, OK, CliError
from cli.output import emit
from cli.session import error_code, error_message

CONTENT_TYPES = {".csv": "text/csv", ".json": "application/json", ".jsonl": "application/json"}
MAX_PAYLOAD = 6 * 1024 * 1024  # InvokeEndpoint: a request payload of at most 6 MB (SageMaker API reference)


def invoke(ops: Ops, args: argparse.Namespace) -> int:
    dataset = ops.stack.dataset(args.dataset)
    path = Path(args.file)
    try:
        body = path.read_bytes()
    except OSError as error:
        raise CliError(f"cannot read {path}: {error.strerror or error}", BAD_INPUT) from None
    if not body:
        raise CliError(f"{path} is empty: nothing to send", BAD_INPUT)
    if len(body) > MAX_PAYLOAD:
        raise CliError(
            f"{path} is {len(body)} bytes; InvokeEndpoint takes at most {MAX_PAYLOAD} (use batch scoring)", BAD_INPUT
        )
    content_type = args.content_type or CONTENT_TYPES.get(path.suffix.lower())
    if content_type is None:
        raise CliError(
            f"cannot tell the content type of {path.name}: pass --content-type text/csv or application/json", BAD_INPUT
        )
    try:
        response = ops.aws.client("sagemaker-runtime").invoke_endpoint(
            EndpointName=dataset.endpoint, ContentType=content_type, Accept="application/json", Body=body
        )
    except Exception as error:
        code = error_code(error)
        if code in ("ModelError", "ValidationError", "ModelNotReadyException", "ServiceUnavailable"):
            raise CliError(f"{dataset.endpoint} answered {code}: {error_message(error)}", FAILED) from None
        raise
    raw = response["Body"].read()
    try:
        answer: Any = json.loads(raw)
    except ValueError:
        answer = raw.decode("utf-8", errors="replace")
    data = {"dataset": dataset.name, "endpoint": dataset.endpoint, "content_type": content_type, "answer": answer}
    text = json.dumps(answer, indent=2) + "\n" if not isinstance(answer, str) else answer + "\n"
    emit(ops.as_json, data, text)
    return OK


def add(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("invoke", parents=[common], help="send a CSV or JSON file to a dataset's endpoint")
    parser.add_argument("file")
    parser.add_argument("--dataset", default=None)
    parser.add_argument("--content-type", default=None, help="default: from the file's extension (.csv, .json)")
    parser.set_defaults(operation=invoke)
