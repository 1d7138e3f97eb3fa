"""The checkov gate of ``make synth`` (stacks/checkov_gate.py): a failed check fails unless a skip with a reason covers
that check on that resource; a skip without reason or whose check passes fails too. checkov itself is replaced by a
script that prints the JSON checkov 3 prints (the real one runs in ``make synth``, from .venv-checkov)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from stacks.checkov_gate import Finding, gate, judge, main, parse, skips_in, without_skips
from stacks.checkov_skips import SKIPS, Skip, skip_metadata

VPC = "CKV_AWS_117"
DLQ = "CKV_AWS_116"


def _function(*skips: tuple[str, str]) -> dict[str, Any]:
    resource: dict[str, Any] = {"Type": "AWS::Lambda::Function", "Properties": {"Handler": "x.handler"}}
    if skips:
        resource["Metadata"] = {
            "aws:cdk:path": "mlops-dev/Fn/Resource",
            "checkov": {"skip": [{"id": i, "comment": c} for i, c in skips]},
        }
    return resource


def _template(**resources: dict[str, Any]) -> dict[str, Any]:
    return {"Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {}}, **resources}}


def _check(template: str, resource: str, check: str, kind: str = "AWS::Lambda::Function") -> dict[str, Any]:
    return {
        "check_id": check,
        "check_name": f"name of {check}",
        "file_abs_path": f"/tmp/checkov-gate-x/{Path(template).name}",
        "resource": f"{kind}.{resource}",
    }


def _output(template: str, failed: list[tuple[str, str]], passed: int = 1) -> dict[str, Any]:
    return {
        "check_type": "cloudformation",
        "results": {
            "passed_checks": [_check(template, "Queue", "CKV_AWS_27", "AWS::SQS::Queue")] * passed,
            "failed_checks": [_check(template, r, c) for r, c in failed],
        },
        "summary": {"passed": passed, "failed": len(failed), "skipped": 0, "parsing_errors": 0},
    }


T = "cdk.out/mlops-dev.template.json"


def _verdict(template: dict[str, Any], failed: list[tuple[str, str]]) -> Any:
    passed, findings = parse(_output(T, failed), [T])
    return judge(passed, findings, {T: skips_in(template)})


# ---- matching findings with skips ----------------------------------------------------------------------


def test_a_failed_check_without_skip_fails_naming_check_resource_and_template() -> None:
    verdict = _verdict(_template(Fn=_function()), [("Fn", VPC)])
    assert not verdict.ok
    assert verdict.failed == [Finding(T, "Fn", VPC)]
    assert f"{VPC} (name of {VPC}) on Fn in {T}" in verdict.report()


def test_a_skipped_check_passes_and_is_counted() -> None:
    verdict = _verdict(_template(Fn=_function((VPC, "no VPC yet"))), [("Fn", VPC)])
    assert verdict.ok, verdict.report()
    assert verdict.skipped == {Finding(T, "Fn", VPC): "no VPC yet"}
    assert f"{T}: 1 passed, 0 failed, 1 skipped (1 check ids: {VPC})" in verdict.report()


def test_a_skip_covers_its_own_resource_and_check_only() -> None:
    template = _template(Fn=_function((VPC, "no VPC yet")), Other=_function())
    verdict = _verdict(template, [("Fn", VPC), ("Fn", DLQ), ("Other", VPC)])
    assert not verdict.ok
    assert sorted(verdict.failed) == [Finding(T, "Fn", DLQ), Finding(T, "Other", VPC)]


@pytest.mark.parametrize("comment", ["", "   "])
def test_a_skip_without_reason_is_refused(comment: str) -> None:
    verdict = _verdict(_template(Fn=_function((VPC, comment))), [("Fn", VPC)])
    assert not verdict.ok
    assert verdict.unexplained == [Finding(T, "Fn", VPC)]
    assert "skip(s) without a reason" in verdict.report()


def test_a_skip_whose_check_passes_is_stale() -> None:
    verdict = _verdict(_template(Fn=_function((VPC, "no VPC yet"), (DLQ, "synchronous"))), [("Fn", VPC)])
    assert not verdict.ok
    assert verdict.stale == [Finding(T, "Fn", DLQ)]
    assert "stale skip(s)" in verdict.report()


def test_without_skips_drops_only_the_checkov_metadata() -> None:
    template = _template(Fn=_function((VPC, "no VPC yet")))
    stripped = without_skips(template)
    assert stripped["Resources"]["Fn"]["Metadata"] == {"aws:cdk:path": "mlops-dev/Fn/Resource"}
    assert "checkov" in template["Resources"]["Fn"]["Metadata"]  # the original is left alone


def test_parse_reads_checkov_list_output_and_refuses_parse_errors() -> None:
    other = {"check_type": "secrets", "results": {"failed_checks": []}, "summary": {"parsing_errors": 0}}
    passed, failed = parse([_output(T, [("Fn", VPC)], passed=3), other], [T])
    assert passed == {T: 3}
    assert failed == [Finding(T, "Fn", VPC)]
    broken = _output(T, [])
    broken["summary"]["parsing_errors"] = 1
    with pytest.raises(ValueError, match="could not parse"):
        parse(broken, [T])
    with pytest.raises(ValueError, match="unexpected checkov output"):
        parse("Traceback ...", [T])


# ---- the skip file -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("check", "reason", "stages", "message"),
    [
        (VPC, "", frozenset({"dev"}), "needs the reason"),
        (VPC, "  ", frozenset({"dev"}), "needs the reason"),
        ("AwsSolutions-L1", "why", frozenset({"dev"}), "not a checkov AWS check id"),
        (VPC, "why", frozenset({"staging"}), "not among"),
        (VPC, "why", frozenset(), "not among"),
    ],
)
def test_a_skip_is_declared_with_a_check_id_a_reason_and_known_stages(
    check: str, reason: str, stages: frozenset[str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Skip(check, reason, stages)


def test_every_declared_skip_has_a_reason_and_one_check_per_reason() -> None:
    assert all(s.reason.strip() for s in SKIPS)
    assert len({s.reason for s in SKIPS}) == len(SKIPS)
    assert skip_metadata([SKIPS[0]]) == {"skip": [{"id": SKIPS[0].check, "comment": SKIPS[0].reason}]}


# ---- the whole gate, with a stand-in for the checkov executable ------------------------------------------

FAKE_CHECKOV = """#!{python}
# Prints checkov 3's JSON for the --file arguments: one failed {vpc} per Lambda function, one passed check per other
# resource; refuses a template that still carries checkov skips (the gate must scan stripped copies).
import json, sys
args = sys.argv[1:]
if {exit_code}:
    sys.exit({exit_code})
files = [args[i + 1] for i, a in enumerate(args) if a == "--file"]
passed, failed = [], []
for path in files:
    for name, resource in json.load(open(path))["Resources"].items():
        assert "checkov" not in resource.get("Metadata", {{}}), "the gate scanned a template with its skips"
        check = {{"check_id": "{vpc}", "check_name": "in a VPC", "file_abs_path": path,
                  "resource": resource["Type"] + "." + name}}
        (failed if resource["Type"] == "AWS::Lambda::Function" else passed).append(check)
print(json.dumps({{"check_type": "cloudformation", "results": {{"passed_checks": passed, "failed_checks": failed}},
                  "summary": {{"passed": len(passed), "failed": len(failed), "parsing_errors": 0}}}}))
sys.exit(1 if failed else 0)
"""


def _fake_checkov(tmp_path: Path, exit_code: int = 0) -> str:
    script = tmp_path / "checkov"
    script.write_text(FAKE_CHECKOV.format(python=sys.executable, vpc=VPC, exit_code=exit_code))
    script.chmod(0o755)
    return str(script)


def _write(tmp_path: Path, name: str, template: dict[str, Any]) -> str:
    path = tmp_path / "cdk.out" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(template))
    return str(path)


def test_gate_scans_every_template_without_its_skips_and_matches_them_back(tmp_path: Path) -> None:
    dev = _write(tmp_path, "mlops-dev.template.json", _template(Fn=_function((VPC, "no VPC yet"))))
    delivery = _write(tmp_path, "mlops-delivery.template.json", _template())
    verdict = gate(_fake_checkov(tmp_path), [dev, delivery])
    assert verdict.ok, verdict.report()
    assert verdict.passed == {dev: 1, delivery: 1}
    assert list(verdict.skipped) == [Finding(dev, "Fn", VPC)]


def test_main_fails_on_a_function_without_skip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dev = _write(tmp_path, "mlops-dev.template.json", _template(Fn=_function((VPC, "no VPC yet")), New=_function()))
    assert main(["--checkov", _fake_checkov(tmp_path), dev]) == 1
    out = capsys.readouterr().out
    assert "1 passed, 1 failed, 1 skipped" in out
    assert f"{VPC} (in a VPC) on New in {dev}" in out


def test_a_checkov_crash_is_an_error_not_a_pass(tmp_path: Path) -> None:
    dev = _write(tmp_path, "mlops-dev.template.json", _template())
    with pytest.raises(RuntimeError, match="checkov exited 2"):
        gate(_fake_checkov(tmp_path, exit_code=2), [dev])
