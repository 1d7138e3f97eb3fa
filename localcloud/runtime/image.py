"""The container images of the local cloud's jobs: this environment's libraries, never this checkout's code.

A managed job sees its shipped code and its image's libraries, nothing else. Here the images are replaced by the
pinned environment (``.venv``), whose site-packages also holds this project's editable install (a ``.pth`` file
that puts ``stacks``, ``lambdas``, ``pipelines`` and ``localcloud`` of the checkout on every interpreter's path).
A job started with ``.venv/bin/python`` could therefore import code it never shipped, and pass here while failing
in AWS.

One mechanism for every job process: ``image_python(workdir)`` is a small virtual environment whose only
site-packages entry is a ``.pth`` file naming the pinned environment's site-packages. Python puts that directory
on ``sys.path`` but does not run the ``.pth`` files inside it (``site`` only reads those of site directories), so
the libraries are there and the editable install's finder is not. The interpreter is a real ``python`` (its
``sys.executable`` and ``bin/python3`` on ``PATH``), so the processes a job starts itself (the training toolkit
runs the user script with ``sys.executable``, a processing job's ``python3``, Spark's Python workers) get the same
view. The Lambda runtime and the model containers reach the same view another way (``python -S`` with these
``site_packages()`` as layer paths): both read the directories from here. The image's ``serve`` command sits in the
same ``bin``: the local model server (``model_server.py``) on the scikit-learn container's serving contract.
"""

from __future__ import annotations

import os
import shlex
import sys
import sysconfig
import threading
import venv
from pathlib import Path

ENVIRONMENT_DIR = "image-python"
PTH_FILE = "_localcloud_image.pth"
SERVE_COMMAND = "serve"
MODEL_SERVER = Path(__file__).with_name("model_server.py")
_lock = threading.Lock()


def site_packages() -> list[str]:
    """The pinned environment's library directories (the images' libraries), without duplicates."""
    paths = sysconfig.get_paths()
    return list(dict.fromkeys([paths["purelib"], paths["platlib"]]))


def image_python(workdir: Path) -> Path:
    """The interpreter of the jobs' images under ``workdir`` (created on first use)."""
    root = workdir / ENVIRONMENT_DIR
    python = root / "bin" / "python"
    with _lock:
        marker = root / "ready"
        if not marker.exists():
            venv.EnvBuilder(with_pip=False, symlinks=True, clear=True).create(root)
            purelib = sysconfig.get_paths(vars={"base": str(root), "platbase": str(root)})["purelib"]
            Path(purelib).mkdir(parents=True, exist_ok=True)
            (Path(purelib) / PTH_FILE).write_text("".join(f"{path}\n" for path in site_packages()))
            marker.write_text("")
        write_serve(root / "bin" / SERVE_COMMAND)
    return python


def write_serve(script: Path) -> None:
    """The image's ``serve`` console script (scikit-learn container: ``sagemaker_sklearn_container.serving:
    serving_entrypoint``): here the local model server, started as the endpoints start it (``python -S`` with the
    image's libraries as layer paths), reading the model directory and port from the container's environment."""
    text = (
        "#!/bin/sh\n"
        f"LOCAL_LAYER_PATHS={shlex.quote(os.pathsep.join(site_packages()))} "
        f'exec {shlex.quote(sys.executable)} -S -u {shlex.quote(str(MODEL_SERVER))} "$@"\n'
    )
    if not script.exists() or script.read_text() != text:
        script.write_text(text)
        script.chmod(0o755)


def bin_dir(workdir: Path) -> str:
    """The image interpreter's ``bin`` directory (first on a job's ``PATH``: ``python3`` is the image's)."""
    return os.fspath(image_python(workdir).parent)
