"""A model container for the local cloud: the serving stack of SageMaker's scikit-learn ``1.9-0`` image, rebuilt.

The image serves a single model with ``sagemaker_sklearn_container.serving`` on top of ``sagemaker-containers``
(not the ``sagemaker-inference`` toolkit, which only its multi-model mode uses): nginx in front of gunicorn
(gevent workers) running a Flask application. Neither package installs on Python 3.11 from PyPI, so this module
reimplements the behaviour from the sources the image is built from (read, not copied):

- aws/sagemaker-scikit-learn-container @ eae7b6b1eea5263fa3bd0584d896a55921aa4826 ("bump scikit-learn to
  1.9.0"): ``requirements.txt`` (sagemaker-containers 2.8.6.post2, Flask 3.1.3, gunicorn, gevent),
  ``docker/1.4-2-py312/final/Dockerfile.cpu`` (``SAGEMAKER_SERVING_MODULE=sagemaker_sklearn_container.serving:main``,
  the ``collections.abc`` patch to ``sagemaker_containers/_mapping.py``), ``src/sagemaker_sklearn_container/
  serving.py`` (``serving_entrypoint``, the lazily built ``main`` WSGI app, ``import_module``,
  ``_user_module_transformer``), ``exceptions.py`` (``UserError``).
- aws/sagemaker-containers @ v2.8.6.post2 (150ff4674b268a4c6f9518aefa767892c50e1e94): ``_server.py`` (nginx +
  gunicorn), ``etc/nginx.conf.template``, ``_worker.py`` (``Worker``, ``Request``, ``Response``,
  ``default_healthcheck_fn``), ``_transformer.py`` (``Transformer``), ``_functions.py`` (``error_wrapper``),
  ``_errors.py``, ``_env.py`` / ``_params.py`` (``ServingEnv``).

What a client of the container sees (each line is pinned by tests/unit/localcloud/runtime/test_model_server.py):

- a path nginx does not proxy (anything but ``/ping``, ``/invocations``, ``/execution-parameters``...): 404 ``{}``;
- any request while the user module does not import, ``model_fn`` raises, or the module defines ``transform_fn``
  together with ``input_fn`` / ``predict_fn`` / ``output_fn`` (``UserError``): 500. The app is built on the first
  request, and again on the next one after a failure;
- ``GET /ping``: 200, empty body;
- ``POST /invocations``, the handler returns ``(body, content_type)``: 200 with that body and mimetype;
- the handler returns a response object or any WSGI callable: that response, with its own status and headers
  (Flask's ``make_response``). This is how a handler answers a client error itself;
- any exception from ``input_fn`` / ``predict_fn`` / ``output_fn`` / ``transform_fn``, an unsupported content type
  included: 500 with Flask's "Internal Server Error" page. Every user function is wrapped into a ``ClientError``
  that nothing catches (the 415 / 406 branches of ``_default_transform_fn`` only match unwrapped defaults, and
  the scikit-learn container passes all four functions);
- ``GET /invocations``: 405; ``/execution-parameters``: 404 (no ``execution_parameters_fn`` is served).

``transform_fn(model, body, content_type, accept)`` replaces ``input_fn -> predict_fn -> output_fn`` and the two
may not be mixed. The content type is the ``ContentType`` or ``Content-Type`` header, ``application/json`` when
both are missing; the accept type is the ``Accept`` header, ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`` (default
``application/json``) when it is missing or ``*/*``; the body is text (UTF-8, undecodable bytes replaced) for
exactly ``application/json`` and ``text/csv``, bytes otherwise. ``SAGEMAKER_PROGRAM`` names the user module
(``.py`` dropped), ``SAGEMAKER_SUBMIT_DIRECTORY`` its directory.

Not reproduced: the container's own defaults for a missing ``input_fn`` / ``predict_fn`` / ``output_fn`` (numpy
decoding; such a module is refused at load with the reason), the ``pip install`` of the code directory, gunicorn's
worker processes (one process serves here: a thread per connection, and one worker thread that loads the model
and runs every request in turn, as one gevent worker's OS thread does) and its 60 s worker timeout (the endpoint
data plane enforces InvokeEndpoint's 60 s), multi-model mode.

The image's ``serve`` command (what a job runs to serve a model inside itself: the evaluation job's smoke test,
``pipelines/evaluation/smoke.py``) is this server without arguments, reading the container's environment
(``serve_arguments``); ``localcloud/runtime/image.py`` puts it on the jobs' ``PATH``.

Started per model as ``python -S model_server.py <model_dir> <port>`` with ``sys.path`` = ``<model_dir>/code``
then the layer paths (the pinned environment stands in for the image's libraries; its Flask is the image's 3.1.3).
Before it reports ready it answers SageMaker's first health check itself (the first request loads the model). A
model that does not load does not stop the container: ``GET /ping`` answers 500, as the scikit-learn container's
does, and SageMaker fails the endpoint's creation or update on that ping (``localcloud/runtime/endpoints.py``).
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import re
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import ModuleType
from typing import Any

if __name__ == "__main__":  # `python -S`: no site-packages; the image's libraries are the layer paths
    _layers = [p for p in os.environ.get("LOCAL_LAYER_PATHS", "").split(os.pathsep) if p]
    sys.path[:] = [*_layers, *(p for p in sys.path[1:] if p and "site-packages" not in p)]

import flask  # (from the layer paths when run as the container)

JSON, CSV, ANY = "application/json", "text/csv", "*/*"
UTF8_TYPES = (JSON, CSV)
PROXIED = re.compile(r"^/(ping|invocations|execution-parameters)")  # nginx.conf.template's only location
USER_FUNCTIONS = ("input_fn", "predict_fn", "output_fn")
GUNICORN_500 = (
    b"<html><head><title>Internal Server Error</title></head><body><h1><p>Internal Server Error</p></h1></body></html>"
)


class ClientError(Exception):
    """``sagemaker_containers._errors.ClientError``: what ``error_wrapper`` turns any user-function error into."""


class UserError(Exception):
    """``sagemaker_sklearn_container.exceptions.UserError``: a user module the container cannot serve."""


@dataclass(frozen=True)
class ServingEnv:
    """The parts of ``sagemaker_containers._env.ServingEnv`` the serving path reads."""

    module_name: str
    module_dir: str
    default_accept: str = JSON

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], model_dir: str) -> ServingEnv:
        program = environ.get("SAGEMAKER_PROGRAM", "")
        return cls(
            module_name=program[:-3] if program.endswith(".py") else program,
            module_dir=environ.get("SAGEMAKER_SUBMIT_DIRECTORY", os.path.join(model_dir, "code")),
            default_accept=environ.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", JSON),
        )


class Response(flask.Response):
    """``sagemaker_containers._worker.Response``: a Flask response whose default mimetype is JSON."""

    default_mimetype = JSON


def _wrapped(function: Callable[..., Any]) -> Callable[..., Any]:
    """``_functions.error_wrapper(fn, ClientError)``: any exception leaves as a ``ClientError``."""

    def call(*args: Any) -> Any:
        try:
            return function(*args)
        except Exception as error:
            raise ClientError(error) from error

    return call


def _default_model_fn(model_dir: str) -> Any:
    raise NotImplementedError("Please provide a model_fn implementation.")


class Transformer:
    """``_user_module_transformer`` + ``_transformer.Transformer``: the user module's functions, each wrapped."""

    def __init__(self, module: ModuleType) -> None:
        self.model: Any = None
        transform_fn = getattr(module, "transform_fn", None)
        functions: dict[str, Any] = {name: getattr(module, name, None) for name in USER_FUNCTIONS}
        if transform_fn is not None and any(functions.values()):
            raise UserError("Cannot use transform_fn implementation with input_fn, predict_fn, and/or output_fn")
        self._model_fn = _wrapped(getattr(module, "model_fn", None) or _default_model_fn)
        if transform_fn is not None:
            self._transform_fn = _wrapped(transform_fn)
            return
        missing = [name for name, function in functions.items() if function is None]
        if missing:
            raise UserError(
                f"{module.__name__} defines no {', '.join(missing)}: the local model server does not reproduce the "
                "scikit-learn container's default functions; define them or a transform_fn"
            )
        input_fn, predict_fn, output_fn = (_wrapped(functions[name]) for name in USER_FUNCTIONS)

        def transform(model: Any, content: Any, content_type: str, accept: str) -> Any:
            # _default_transform_fn: its UnsupportedFormatError -> 415 / 406 branches never match wrapped functions
            return output_fn(predict_fn(input_fn(content, content_type), model), accept)

        self._transform_fn = transform

    def initialize(self, model_dir: str) -> None:
        self.model = self._model_fn(model_dir)

    def transform(self, content: Any, content_type: str, accept: str) -> Any:
        """A ``(body, content_type)`` tuple becomes a 200 response; anything else goes to Flask as it is."""
        result = self._transform_fn(self.model, content, content_type, accept)
        if isinstance(result, tuple):
            return Response(response=result[0], mimetype=result[1])
        return result


class Worker(flask.Flask):
    """``_worker.Worker``: the Flask application with ``/ping`` and ``POST /invocations``."""

    def log_exception(self, exc_info: Any) -> None:
        """One line per failed request in the container log (Flask writes the whole traceback: every line of it
        would be a CloudWatch Logs call of the local cloud)."""
        error = exc_info[1]
        cause = error.__cause__ if isinstance(error, ClientError) and error.__cause__ is not None else error
        request = flask.request
        print(f"Exception on {request.path} [{request.method}]: {type(cause).__name__}: {cause}", file=sys.stderr)


def worker(transformer: Transformer, env: ServingEnv) -> Worker:
    app = Worker(__name__)

    def invocations() -> Any:
        headers = flask.request.headers
        content_type = headers.get("ContentType") or headers.get("Content-Type") or JSON
        accept = headers.get("Accept")
        if not accept or accept == ANY:
            accept = env.default_accept
        request = flask.request
        content = request.get_data(as_text=True) if content_type in UTF8_TYPES else request.get_data()
        return transformer.transform(content, content_type, accept)

    app.add_url_rule("/invocations", endpoint="invocations", view_func=invocations, methods=["POST"])
    app.add_url_rule("/ping", endpoint="ping", view_func=lambda: Response(status=200))
    return app


def _plain(status: str, body: bytes, content_type: str, start_response: Callable[..., Any]) -> list[bytes]:
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


class ModelServer:
    """The container as one WSGI application: nginx's routing in front of ``serving.main``, which imports the
    user module and loads the model on the first request it sees (and on every request until that works)."""

    def __init__(self, model_dir: str, env: ServingEnv) -> None:
        self.model_dir, self.env = model_dir, env
        self._app: Worker | None = None
        self._lock = threading.Lock()
        # One gevent worker runs all its requests on one OS thread: what model_fn sets per thread (e.g. the
        # handler's OpenMP limit through threadpoolctl) holds for every request. The HTTP server takes each
        # connection on a thread of its own and hands the application call to this one worker thread.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="worker")

    def app(self) -> Worker:
        with self._lock:
            if self._app is None:
                if self.env.module_dir not in sys.path:  # gunicorn's --pythonpath holds the code directory
                    sys.path.insert(0, self.env.module_dir)
                transformer = Transformer(importlib.import_module(self.env.module_name))
                transformer.initialize(self.model_dir)
                self._app = worker(transformer, self.env)
            return self._app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not PROXIED.match(environ.get("PATH_INFO", "")):
            return _plain("404 Not Found", b"{}", "application/octet-stream", start_response)
        return self._worker.submit(self._serve, environ, start_response).result()

    def _serve(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        """The application call on the worker thread, its body read there too (a streamed body is produced by
        the code that made it, on the thread that made it)."""
        try:
            app = self.app()
        except Exception:  # gunicorn answers an exception of the WSGI callable itself with its own 500 page
            traceback.print_exc()
            return _plain("500 Internal Server Error", GUNICORN_500, "text/html", start_response)
        response = app(environ, start_response)
        try:
            return [b"".join(response)]
        finally:
            close = getattr(response, "close", None)
            if close is not None:
                close()

    def ping(self) -> int:
        """The status of ``GET /ping`` (SageMaker's health check)."""
        from werkzeug.test import Client

        return Client(self).get("/ping").status_code


def serve_arguments(argv: list[str], environ: Mapping[str, str]) -> tuple[str, int]:
    """(model directory, port): given on the command line by the endpoint runtime, else the image's ``serve``
    contract (``sagemaker_containers._env``: the model in ``$SAGEMAKER_BASE_DIR/model``, ``/opt/ml/model`` by
    default; the port ``SAGEMAKER_BIND_TO_PORT``, 8080 by default), as a job that runs ``serve`` sets them."""
    if argv:
        return argv[0], int(argv[1])
    base = environ.get("SAGEMAKER_BASE_DIR", "/opt/ml")
    return os.path.join(base, "model"), int(environ.get("SAGEMAKER_BIND_TO_PORT", "8080"))


def main() -> None:
    from werkzeug.serving import make_server

    model_dir, port = serve_arguments(sys.argv[1:], os.environ)
    env = ServingEnv.from_environ(os.environ, model_dir)

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log line per request
    server = ModelServer(model_dir, env)
    status = server.ping()
    if status != 200:  # the container keeps running, answering 500, as the real one does: SageMaker's health
        # check fails the endpoint's creation or update on it (localcloud/runtime/endpoints.py waits for a 200 ping)
        print(f"GET /ping answered {status}: the model server is not healthy", flush=True)
    httpd = make_server("127.0.0.1", port, server, threaded=True)
    print(json.dumps({"ready": True, "port": port}), flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
