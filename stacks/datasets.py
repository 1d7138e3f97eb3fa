"""Dataset declarations (``datasets/<name>.yaml``): read, validated and checked against the stages at synth.

The declaration is ``pipelines.schema.DatasetSchema`` (one model: the same strict ``from_dict`` the jobs use
on the JSON they receive). This module adds what only the stack knows, and names the file in every error:

- YAML parsing (PyYAML's safe loader; a key given twice in one mapping is an error, not a silent overwrite);
- the file name is the dataset name (``datasets/churn.yaml`` declares ``churn``);
- ``serving``, ``alarms``, ``retrain`` and ``retention`` overrides: every key must be a field of ``stacks.config``'s
  ``ServingSettings``, ``AlarmThresholds``, ``RetrainGuard`` or ``RetentionSettings``, of that field's type (a
  ``retrain.schedule`` an expression EventBridge accepts for a rule), and the stage settings they produce must
  pass the same checks as the stage's own (``StageConfig.for_dataset`` on every stage);
- the SageMaker names the platform derives from the dataset name fit SageMaker's rules with the longest stage
  prefix (``sagemaker_names``).

CDK-free (``stacks.config`` is plain dataclasses), so ``mlops dataset`` and the tests use it without a synth.
``stacks.config`` builds its stages with ``read_schema`` (no stage checks: the stages do not exist yet), so this
module imports ``stacks.config`` only inside the functions that check against the stages.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from pipelines.schema import ENTRY_POINT_SCRIPT, OVERRIDE_SECTIONS, DatasetSchema, SchemaError

ROOT = Path(__file__).resolve().parents[1]
DATASETS_DIR = ROOT / "datasets"
SUFFIX = ".yaml"

# The names derived from a dataset name (the lead's per-dataset wiring uses ``<stage prefix>-<dataset>`` as
# the prefix of every SageMaker resource of the dataset). Suffixes the Lambdas append (unit tests keep these
# equal to lambdas/deploy, lambdas/prepare_training and lambdas/batch_inference):
SHADOW_SUFFIX = "-shadow"  # deploy: the shadow endpoint config
JOB_DIGEST_CHARS = 10  # prepare_training.job_name: <prefix>-train-<readable execution>-<10 hex>
BATCH_DIGEST_CHARS = 12  # batch_inference.job_name: <prefix>-batch-<file stem>-<12 hex>
MAX_PACKAGE_VERSION = 99_999  # model package versions the names must still fit (v1 ... v99999)
SAGEMAKER_NAME_LIMIT = 63
SAGEMAKER_NAME_PATTERN = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"
"""EndpointName, EndpointConfigName, ModelName, ModelPackageGroupName, TrainingJobName, ProcessingJobName,
TransformJobName: 1-63 characters of this pattern
(https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateEndpoint.html and the other Create* pages)."""


class DeclarationError(ValueError):
    """A declaration file is invalid: ``path`` (the file), ``field`` (e.g. ``features[2].categories``, empty
    for the whole file) and ``message``."""

    def __init__(self, path: Path, field: str, message: str) -> None:
        where = f"{path}: {field}" if field else str(path)
        super().__init__(f"{where}: {message}")
        self.path = path
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Declaration:
    """One validated declaration file."""

    path: Path
    schema: DatasetSchema

    @property
    def name(self) -> str:
        return self.schema.name


# ---- YAML ------------------------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key given twice in one mapping is an error."""


def _mapping_without_duplicates(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} appears twice (first on line {seen[key] + 1})", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=True)  # type: ignore[no-untyped-call]


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def read_yaml(path: Path) -> Any:
    """The parsed YAML document of ``path``; ``DeclarationError`` for unreadable or invalid YAML."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DeclarationError(path, "", f"cannot read the file: {error}") from None
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise DeclarationError(path, "", f"not valid YAML{where}: {problem}") from None


# ---- overrides and names ---------------------------------------------------------------------------


def _type_problem(value: Any, expected: Any) -> str | None:
    """Why ``value`` does not fit the annotation ``expected`` (None: it fits)."""
    if typing.get_origin(expected) is typing.Literal:
        choices = typing.get_args(expected)
        return None if value in choices else f"{value!r} is not one of {', '.join(map(str, choices))}"
    if expected is bool:
        return None if isinstance(value, bool) else f"expected true or false, got {value!r}"
    if expected is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else f"expected an integer, got {value!r}"
    if expected is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok else f"expected a number, got {value!r}"
    if expected is str:
        return None if isinstance(value, str) else f"expected a string, got {value!r}"
    return f"this setting cannot be overridden per dataset (type {expected})"


def _settings_problems(
    where: str, settings: type, values: Any, schedule_problem: typing.Callable[[str], str | None]
) -> list[tuple[str, str]]:
    """(field, message) for every key of ``values`` that is not a field of the dataclass ``settings`` or has the
    wrong type; a field whose type is itself a settings dataclass (``serving.ab``) is checked key by key."""
    if not isinstance(values, Mapping):
        return [(where, f"expected a mapping of settings, got {values!r}")]
    hints = typing.get_type_hints(settings)
    names = [f.name for f in dataclasses.fields(settings)]
    problems = []
    for key, value in values.items():
        if key not in names:
            problems.append((f"{where}.{key}", f"unknown key (the fields of {settings.__name__}: {', '.join(names)})"))
            continue
        if dataclasses.is_dataclass(hints[key]):
            problems += _settings_problems(f"{where}.{key}", hints[key], value, schedule_problem)
            continue
        problem = _type_problem(value, hints[key])
        if problem is None and where == "retrain" and key == "schedule" and value:
            problem = schedule_problem(value)
        if problem:
            problems.append((f"{where}.{key}", problem))
    return problems


def override_problems(schema: DatasetSchema) -> list[tuple[str, str]]:
    """(field, message) for every override key that is not a field of its settings class or has the wrong type."""
    from stacks import config

    classes: dict[str, type] = {
        "serving": config.ServingSettings,
        "alarms": config.AlarmThresholds,
        "retrain": config.RetrainGuard,
        "retention": config.RetentionSettings,
    }
    problems = []
    for section in OVERRIDE_SECTIONS:
        problems += _settings_problems(section, classes[section], getattr(schema, section), config.schedule_problem)
    return problems


def sagemaker_names(prefix: str, dataset: str) -> dict[str, str]:
    """The longest name of each SageMaker kind the platform derives from ``dataset`` under a stage ``prefix``."""
    base = f"{prefix}-{dataset}"
    version = f"v{MAX_PACKAGE_VERSION}"
    return {
        "ModelPackageGroupName": base,
        "EndpointName": base,
        "EndpointConfigName": f"{base}-{version}{SHADOW_SUFFIX}",
        "ModelName": f"{base}-batch-{version}",
        "TrainingJobName": f"{base}-train-{'0' * JOB_DIGEST_CHARS}",  # the readable execution part cut to nothing
        "TransformJobName": f"{base}-batch-x-{'0' * BATCH_DIGEST_CHARS}",  # one character of the file stem
    }


def max_name_length(prefix: str) -> tuple[int, str]:
    """(the longest dataset name every derived SageMaker name fits with ``prefix``, the kind that binds)."""
    room = {kind: SAGEMAKER_NAME_LIMIT - len(name) for kind, name in sagemaker_names(prefix, "").items()}
    kind = min(room, key=lambda k: room[k])
    return room[kind], kind


def name_problems(schema: DatasetSchema, prefixes: list[str]) -> list[str]:
    """Why a SageMaker name derived from the dataset name would be refused, with the longest of ``prefixes``
    (the stages'): the longest derived name first."""
    prefix = max(prefixes, key=len)
    longest, kind = max_name_length(prefix)
    problems = []
    if len(schema.name) > longest:
        name = sagemaker_names(prefix, schema.name)[kind]
        problems.append(
            f"{schema.name!r} ({len(schema.name)} characters) makes the {kind} {name!r} {len(name)} characters "
            f"long; SageMaker allows {SAGEMAKER_NAME_LIMIT}: with the stage prefix {prefix!r} a dataset name has "
            f"at most {longest} characters"
        )
    for other, name in sagemaker_names(prefix, schema.name).items():
        if not re.match(SAGEMAKER_NAME_PATTERN, name):
            problems.append(f"{schema.name!r} makes the {other} {name!r}, outside SageMaker's {SAGEMAKER_NAME_PATTERN}")
    return problems


def entry_point_problems(schema: DatasetSchema, root: Path = ROOT) -> list[tuple[str, str]]:
    """``model.entry_point`` must be a directory of the repository holding the script SageMaker runs."""
    entry_point = schema.model_spec.entry_point
    if entry_point is None:
        return []
    script = f"{entry_point.rstrip('/')}/{ENTRY_POINT_SCRIPT}"
    if not (root / script).is_file():
        return [("model.entry_point", f"{script}: no such file (the script SageMaker runs)")]
    return []


def entry_point_files(schemas: typing.Iterable[DatasetSchema], root: Path = ROOT) -> dict[str, bytes]:
    """The files of every declared ``model.entry_point`` directory (path in the repository -> content, no
    ``__pycache__``): shipped in the training source archive next to ``pipelines/``, where the job runs them."""
    files: dict[str, bytes] = {}
    for schema in schemas:
        entry_point = schema.model_spec.entry_point
        if entry_point is None:
            continue
        directory = root / entry_point.rstrip("/")
        for path in sorted(directory.rglob("*")):
            if path.is_file() and "__pycache__" not in path.relative_to(directory).parts:
                files[path.relative_to(root).as_posix()] = path.read_bytes()
    return files


def check_against_stages(schema: DatasetSchema) -> list[tuple[str, str]]:
    """(field, message) problems of ``schema`` that depend on the stages: override keys and types, the
    resulting stage settings (each stage's own checks), and the derived SageMaker names."""
    from stacks import config

    problems = override_problems(schema) + entry_point_problems(schema)
    if problems:
        return problems
    for stage, stage_config in config.STAGES.items():
        try:
            stage_config.for_dataset(schema)
        except ValueError as error:
            named = [s for s in OVERRIDE_SECTIONS if str(error).startswith(f"{s}") and getattr(schema, s)]
            section = next(iter(named), next((s for s in OVERRIDE_SECTIONS if getattr(schema, s)), ""))
            dotted = re.match(rf"^((?:{'|'.join(OVERRIDE_SECTIONS)})(?:\.\w+)+): ", str(error))  # serving.ab.outcome
            problems.append((dotted.group(1) if dotted else section, f"with the {stage} stage: {error}"))
    problems += [("name", problem) for problem in name_problems(schema, [c.prefix for c in config.STAGES.values()])]
    return problems


# ---- loading ---------------------------------------------------------------------------------------


def schema_from_yaml(path: Path, data: Any) -> DatasetSchema:
    """The schema of a parsed declaration: the file name is the dataset name, the rest is
    ``DatasetSchema.from_dict``; errors name the file. No stage checks (``load_declaration`` adds them)."""
    if isinstance(data, Mapping) and "name" in data and data["name"] != path.stem:
        raise DeclarationError(path, "name", f"{data['name']!r} differs from the file name {path.name!r}")
    if isinstance(data, Mapping) and "name" not in data:
        data = {"name": path.stem, **data}
    try:
        return DatasetSchema.from_dict(data)
    except SchemaError as error:
        raise DeclarationError(path, error.field, error.message) from None


def read_schema(path: str | Path) -> DatasetSchema:
    """The schema declared in ``path`` without the stage checks: for ``stacks.config``, which builds the stages
    (``load_declaration`` is the full check)."""
    file = Path(path)
    if file.suffix != SUFFIX:
        raise DeclarationError(file, "", f"a declaration is a {SUFFIX} file named after its dataset")
    return schema_from_yaml(file, read_yaml(file))


def load_declaration(path: str | Path) -> Declaration:
    """The validated declaration in ``path``; ``DeclarationError`` names the file and the field."""
    file = Path(path)
    schema = read_schema(file)
    for field_path, message in check_against_stages(schema):
        raise DeclarationError(file, field_path, message)
    return Declaration(path=file, schema=schema)


def load_declarations(folder: str | Path = DATASETS_DIR) -> dict[str, Declaration]:
    """Every declaration in ``folder`` by dataset name (sorted); the first invalid file raises
    ``DeclarationError``. A ``.yml`` file is refused rather than silently skipped."""
    directory = Path(folder)
    if not directory.is_dir():
        raise DeclarationError(directory, "", "no such folder of dataset declarations")
    for stray in sorted(directory.glob("*.yml")):
        raise DeclarationError(stray, "", f"rename it to {stray.stem}{SUFFIX}: declarations are {SUFFIX} files")
    declarations = {}
    for path in sorted(directory.glob(f"*{SUFFIX}")):
        declaration = load_declaration(path)
        declarations[declaration.name] = declaration
    if not declarations:
        raise DeclarationError(directory, "", f"no dataset declarations (*{SUFFIX})")
    return declarations


@lru_cache(maxsize=32)
def dataset_schema(name: str, folder: Path = DATASETS_DIR) -> DatasetSchema:
    """The schema of the declared dataset ``name`` (``<folder>/<name>.yaml``)."""
    return load_declaration(folder / f"{name}{SUFFIX}").schema


# ---- scale checks ----------------------------------------------------------------------------------


def synthetic_declarations(folder: str | Path, count: int, samples: Path = DATASETS_DIR) -> list[Path]:
    """Write ``count`` declarations into ``folder``, copies of the sample declarations (round robin over
    ``churn``, ``energy``, ``tickets``: every task) named ``<sample>-<n>``: a stack of many datasets for the scale
    test (tests/infrastructure/test_scale.py) and the synth benchmark (bench/bench_devloop.py)."""
    sources = sorted(samples.glob(f"*{SUFFIX}"))
    if not sources:
        raise DeclarationError(samples, "", f"no sample declarations (*{SUFFIX}) to copy")
    directory = Path(folder)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for index in range(count):
        source = sources[index % len(sources)]
        name = f"{source.stem}-{index + 1:02d}"
        text = re.sub(r"(?m)^name: .*$", f"name: {name}", source.read_text(encoding="utf-8"))
        target = directory / f"{name}{SUFFIX}"
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return written
