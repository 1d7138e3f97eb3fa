"""The benchmark harness: verdicts, failure isolation, the three reports and the exit code."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bench.harness import (
    Benchmark,
    Budget,
    NotAvailable,
    Result,
    annotate_load,
    import_optional,
    main,
    run_benchmark,
)

MAX_2X = Budget(on="ratio", op="<=", limit=2.0)
UNDER_5_MS = Budget(on="figure", op="<", limit=5.0, unit="ms")


def fixed(name: str, figure: float, reference: float, budget: Budget = MAX_2X) -> Benchmark:
    """A fake benchmark that 'measures' the given numbers."""

    def run(quick: bool) -> list[Result]:
        return [Result.measured(name, figure=figure, unit="ms", reference=reference, budget=budget)]

    return Benchmark(name, f"fake {name}", run, ((name, budget),))


def raising(name: str, error: Exception) -> Benchmark:
    def run(quick: bool) -> list[Result]:
        raise error

    return Benchmark(name, f"fake {name}", run, ((name, MAX_2X),))


@pytest.mark.parametrize(
    ("op", "value", "holds"),
    [
        ("<=", 2.0, True),
        ("<=", 2.01, False),
        ("<", 2.0, False),
        (">=", 2.0, True),
        (">=", 1.99, False),
        (">", 2.0, False),
    ],
)
def test_budget_operators(op: str, value: float, holds: bool) -> None:
    # Given a budget with a limit of 2 / When a value is checked / Then the operator decides, edges included
    assert Budget(on="ratio", op=op, limit=2.0).holds(value) is holds  # type: ignore[arg-type]


def test_budget_usage_is_below_one_when_the_budget_holds_for_both_directions() -> None:
    # Given a maximum and a minimum budget / When values inside and outside are used
    # Then usage < 1 means inside (for a minimum budget it is limit / value)
    assert MAX_2X.usage(1.0) == 0.5
    assert Budget(on="ratio", op=">=", limit=0.25).usage(0.5) == 0.5
    assert Budget(on="ratio", op=">=", limit=0.25).usage(0.125) == 2.0


def test_measured_result_derives_the_ratio_and_the_verdict_from_the_budget() -> None:
    # Given a handler at 3 ms against a model at 2 ms
    # When the result is built with a ratio budget of 2x and with a 5 ms figure budget
    ratio_row = Result.measured("r", figure=3.0, unit="ms", reference=2.0, budget=MAX_2X)
    slow_row = Result.measured("f", figure=6.0, unit="ms", reference=2.0, budget=UNDER_5_MS)
    # Then the ratio is 1.5 (passes) and the absolute budget looks at the figure, not the ratio (fails)
    assert (ratio_row.ratio, ratio_row.status) == (1.5, "pass")
    assert (slow_row.ratio, slow_row.status) == (3.0, "fail")


def test_a_problem_fails_a_row_whose_numbers_are_within_budget() -> None:
    # Given numbers within budget but a correctness problem (handler and model disagree)
    row = Result.measured("r", figure=1.0, unit="ms", reference=1.0, budget=MAX_2X, problems=["disagree by 0.1"])
    # Then the row fails and says why
    assert row.status == "fail"
    assert row.note == "disagree by 0.1"


def test_a_ratio_budget_without_a_reference_is_a_programming_error() -> None:
    # Given no reference and no ratio / When a ratio-budget row is built / Then it is refused with the row name
    with pytest.raises(ValueError, match="r: a budget on the ratio needs a reference or a ratio"):
        Result.measured("r", figure=1.0, unit="ms", budget=MAX_2X)


def test_a_crashing_benchmark_becomes_an_error_row_with_the_exception() -> None:
    # Given a benchmark that raises / When it runs / Then one error row per declared budget carries the message
    rows = run_benchmark(raising("boom", RuntimeError("disk full")), quick=True)
    assert [(r.name, r.status) for r in rows] == [("boom", "error")]
    assert re.fullmatch(r"RuntimeError: disk full \(at test_harness\.py:\d+ in run\)", rows[0].note), rows[0].note


def test_a_component_that_does_not_exist_yet_is_not_available_not_an_error() -> None:
    # Given a benchmark whose component raises NotAvailable
    rows = run_benchmark(raising("later", NotAvailable("not available yet: x.bench does not exist")), quick=False)
    # Then its row says so and does not count as a failure
    assert [(r.name, r.status, r.note) for r in rows] == [
        ("later", "not available", "not available yet: x.bench does not exist")
    ]


def test_an_unimportable_target_is_an_error_and_full_only_rows_are_skipped_in_quick() -> None:
    # Given a registry entry pointing at a module that does not exist, and a slow one
    broken = Benchmark("broken", "d", "bench.no_such_module:run", (("broken", MAX_2X),))
    slow = Benchmark("slow", "d", "bench.no_such_module:run", (("slow", MAX_2X),), full_only=True)
    # When they run in a quick run
    broken_rows, slow_rows = run_benchmark(broken, quick=True), run_benchmark(slow, quick=True)
    # Then the first is an import error, the second is skipped without being imported
    assert broken_rows[0].status == "error"
    assert "No module named 'bench.no_such_module'" in broken_rows[0].note
    assert (slow_rows[0].status, slow_rows[0].note) == ("skipped", "slow: runs only without --quick")


def test_import_optional_only_hides_the_missing_module_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a module that exists but imports a package that does not
    (tmp_path / "half_written_bench.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    # When both are imported optionally
    # Then the missing module is "not available", while the broken dependency stays a real error
    with pytest.raises(NotAvailable, match=r"not available yet: bench\.no_such_module does not exist"):
        import_optional("bench.no_such_module")
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency_xyz"):
        import_optional("half_written_bench")


def test_main_writes_the_three_reports_and_exits_1_on_a_broken_budget(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a quiet host, one benchmark within budget, one over budget and one not available yet
    monkeypatch.setattr("os.getloadavg", lambda: (0.5, 0.5, 0.5))
    registry = [
        fixed("fast", figure=1.0, reference=1.0),
        fixed("slow", figure=5.0, reference=1.0),
        raising("later", NotAvailable("not available yet: x")),
    ]
    # When the harness runs them all
    code = main(["--quick", "--out", str(tmp_path)], registry)
    # Then it fails, and results.json follows the schema with each row's verdict
    assert code == 1
    report = json.loads((tmp_path / "results.json").read_text())
    assert report["schema_version"] == 1
    assert report["quick"] is True
    assert report["passed"] is False
    assert report["counts"] == {"pass": 1, "fail": 1, "error": 0, "not available": 1, "skipped": 0}
    assert set(report["host"]) >= {"cpus", "load_average_1m", "python", "commit"}
    slow = next(r for r in report["results"] if r["name"] == "slow")
    assert slow == {
        "name": "slow",
        "status": "fail",
        "passed": False,
        "figure": 5.0,
        "unit": "ms",
        "reference": 1.0,
        "reference_label": "",
        "ratio": 5.0,
        "budget": {"on": "ratio", "op": "<=", "limit": 2.0, "unit": "x", "text": "ratio <= 2.00x"},
        "budget_usage": 2.5,
        "note": "",
        "details": {"load_before": 0.5, "load_after": 0.5},
    }
    # and the table (stdout and results.md) has one line per row with the verdict
    table = (tmp_path / "results.md").read_text()
    assert "| slow | 5.000 ms | 1.000 ms | 5.00x | ratio <= 2.00x | **FAIL** |" in table
    assert "| fast | 1.000 ms | 1.000 ms | 1.00x | ratio <= 2.00x | pass |" in table
    assert "| later | - | - | - | ratio <= 2.00x | n/a |" in table
    assert "BUDGET BROKEN" in table
    assert table in capsys.readouterr().out
    # and the plot is valid SVG with one bar per measured row
    svg = ET.parse(tmp_path / "results.svg").getroot()
    bars = [e for e in svg.iter("{http://www.w3.org/2000/svg}rect") if e.get("fill") != "white"]
    assert [bar.get("fill") for bar in bars] == ["#2e7d32", "#c62828"]


def test_main_exits_0_when_every_budget_holds_and_runs_only_the_named_subset(tmp_path: Path) -> None:
    # Given a registry where only the unselected benchmark breaks its budget
    registry = [fixed("fast", figure=1.0, reference=1.0), fixed("slow", figure=5.0, reference=1.0)]
    # When only "fast" is run
    code = main(["fast", "--out", str(tmp_path)], registry)
    # Then the run passes and the report holds that row only
    report = json.loads((tmp_path / "results.json").read_text())
    assert code == 0
    assert report["selected"] == ["fast"]
    assert [r["name"] for r in report["results"]] == ["fast"]


def test_skip_suite_reports_the_suite_as_skipped(tmp_path: Path) -> None:
    # Given a suite benchmark that would fail / When --skip-suite is given / Then it is skipped, not run
    registry = [raising("test_suite", AssertionError("must not run"))]
    assert main(["--skip-suite", "--out", str(tmp_path)], registry) == 0
    row = json.loads((tmp_path / "results.json").read_text())["results"][0]
    assert (row["status"], row["passed"], row["note"]) == ("skipped", None, "--skip-suite")


def test_an_unknown_benchmark_name_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    # Given a registry without "nope" / When it is asked for / Then argparse exits 2 naming the choices
    with pytest.raises(SystemExit) as exit_info:
        main(["nope"], [fixed("fast", 1.0, 1.0)])
    assert exit_info.value.code == 2
    assert "unknown benchmark(s) nope; choose from fast" in capsys.readouterr().err


def test_rows_measured_on_a_busy_host_say_so() -> None:
    # Given a measured row and a placeholder row
    rows = [
        Result.measured("r", figure=1.0, unit="ms", reference=1.0, budget=MAX_2X, note="100 rows"),
        Result(name="later", status="not available", budget=MAX_2X),
    ]
    # When the load around the benchmark exceeded the CPU count
    annotate_load(rows, before=1.0, after=6.3, cpus=2)
    # Then the measured row keeps its verdict, records the load and warns; the placeholder is untouched
    assert rows[0].status == "pass"
    assert rows[0].details == {"load_before": 1.0, "load_after": 6.3}
    assert rows[0].note == "100 rows; busy host (load 6.3 on 2 CPUs): timings are pessimistic"
    assert (rows[1].note, rows[1].details) == ("", {})


def test_rows_measured_on_a_quiet_host_or_not_timed_only_record_the_load() -> None:
    # Given a timing on a quiet host and a size on a busy one
    timing = Result.measured("t", figure=1.0, unit="ms", reference=1.0, budget=MAX_2X)
    size = Result.measured("s", figure=9e3, unit="bytes", budget=Budget(on="figure", op="<", limit=1e6, unit="bytes"))
    annotate_load([timing], before=0.5, after=1.5, cpus=2)
    annotate_load([size], before=5.0, after=5.0, cpus=2)
    # Then neither gets a warning: the load is recorded only
    assert (timing.note, timing.details) == ("", {"load_before": 0.5, "load_after": 1.5})
    assert (size.note, size.details) == ("", {"load_before": 5.0, "load_after": 5.0})
