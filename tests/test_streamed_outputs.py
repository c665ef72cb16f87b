"""Outputs streamed to Parquet (issue 13, item 15) equal the unstreamed writer's, and
times that never happened are written as NaN (the in-memory results keep inf)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.curves import cure_durations, roll_rate_counts
from analysis.folder import open_folder
from simulator.engine import Results, run
from simulator.experiments import outputs
from simulator.experiments.outputs import (
    FRAMES,
    OutputFolder,
    ResultsWriter,
    as_written,
    with_ids,
    write_outputs,
)
from simulator.scenario import Scenario, StrategySpec, scenario_from_dict

SPLIT = {"use": "champion_challenger", "label": "cc", "params": {"arms": [
    {"use": "fixed_cadence", "label": "champion", "share": 0.75},
    {"use": "no_contact", "label": "challenger", "share": 0.25}]}}


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return scenario_from_dict({"population": {"size": 700}, "horizon_days": 45,
                               "replications": 2, "agents": {"count": 1},
                               "strategies": [{"use": "no_contact"}, SPLIT,
                                              {"use": "fixed_cadence"}]})


@pytest.fixture(scope="module")
def results(scenario: Scenario) -> list[Results]:
    return [run(scenario, spec, 11 + r, r) for r in range(scenario.replications)
            for spec in scenario.strategies]


def unstreamed(results: list[Results], kind: str, path: Path) -> pd.DataFrame:
    """The writer before streaming: every result's frame concatenated, then
    ``DataFrame.to_parquet`` (with never-happened times as NaN), read back."""
    frame = pd.concat([as_written(with_ids(getattr(r, kind), r.strategy, r.replication))
                       for r in results], ignore_index=True)
    frame.to_parquet(path, index=False)
    return pd.read_parquet(path)


@pytest.mark.parametrize("rows", [97, 1 << 16])
def test_streamed_files_equal_the_unstreamed_writer(
        rows: int, results: list[Results], scenario: Scenario, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Row groups of 97 rows (many per result, and the split arm's extra ``arm`` column
    joining parts of different columns) and of the default size."""
    monkeypatch.setattr(outputs, "ROWS_PER_GROUP", rows)
    paths = write_outputs(results, scenario, tmp_path / "out")
    for kind, _ in FRAMES:
        expected = unstreamed(results, kind, tmp_path / f"{kind}.parquet")
        pd.testing.assert_frame_equal(pd.read_parquet(paths[kind]), expected)
    assert "arm" in pd.read_parquet(paths["accounts"]).columns


def test_a_released_result_keeps_its_kpis_only(results: list[Results], scenario: Scenario,
                                               tmp_path: Path) -> None:
    res = run(scenario, scenario.strategies[2], 11, 0)
    kpis = dict(res.kpis)
    with OutputFolder(tmp_path / "out") as folder:
        writer = ResultsWriter(folder, scenario)
        writer.add(res, release=True)
        assert res.kpis == kpis
        assert res.events.empty and res.daily.empty and res.accounts.empty
        paths = writer.finish()
    frame = pd.read_parquet(paths["accounts"])
    assert len(frame) == scenario.population.size


def test_never_is_written_as_nan_and_kept_as_inf_in_memory(
        results: list[Results], scenario: Scenario, tmp_path: Path) -> None:
    paths = write_outputs(results, scenario, tmp_path / "out")
    written = pd.read_parquet(paths["accounts"])
    memory = pd.concat([r.accounts for r in results], ignore_index=True)
    for col in ("t_delinquent", "t_paid", "t_charged_off", "t_churn", "twin_t_paid"):
        assert not np.isinf(written[col]).any(), col
        assert (written[col].isna().to_numpy() == np.isinf(memory[col]).to_numpy()).all()
        assert np.isinf(memory[col]).any(), f"{col}: the test needs a time that never came"
    # Means of the times that happened are now what .mean() gives.
    paid = memory["t_paid"].to_numpy()
    assert written["t_paid"].mean() == pytest.approx(paid[np.isfinite(paid)].mean())
    assert np.isfinite(pd.read_parquet(paths["events"])["t"]).all()


def test_the_analysis_reads_never_as_nan_as_it_read_inf(
        results: list[Results], scenario: Scenario, tmp_path: Path) -> None:
    write_outputs(results, scenario, tmp_path / "out")
    from_file = open_folder(tmp_path / "out").accounts
    assert from_file is not None
    in_memory = pd.concat([with_ids(r.accounts, r.strategy, r.replication) for r in results],
                          ignore_index=True)
    horizon = scenario.horizon_days
    pd.testing.assert_frame_equal(cure_durations(from_file, horizon).reset_index(drop=True),
                                  cure_durations(in_memory, horizon).reset_index(drop=True),
                                  check_dtype=False, check_categorical=False)
    pd.testing.assert_frame_equal(roll_rate_counts(from_file, horizon, step=15),
                                  roll_rate_counts(in_memory, horizon, step=15),
                                  check_dtype=False)


def test_a_file_of_one_part_is_kept_as_written_and_floats_are_not_dictionaries(
        results: list[Results], tmp_path: Path) -> None:
    # Writing a large run's frames twice (the one part copied into a new file at the
    # end) once took half the time of its outputs; float columns (times, amounts) take
    # nearly one value per row, and a dictionary tried on them only costs time.
    import pyarrow.parquet as pq

    res = results[0]
    with OutputFolder(tmp_path / "out") as folder:
        stream = outputs._FrameStream(folder, "events.parquet")
        stream.add(res.events, res.strategy, res.replication)
        part = stream.parts[0]
        assert stream.finish() == part
        meta = pq.ParquetFile(part).metadata
        names = meta.schema.names
        encodings = {names[c]: meta.row_group(0).column(c).encodings
                     for c in range(meta.num_columns)}
        assert "RLE_DICTIONARY" not in encodings["t"]
        assert "RLE_DICTIONARY" in encodings["event"]
        part.unlink()


# ----------------------------------------------------------------------------- spilled log

LIVING = {"horizon_days": 120, "agents": {"count": 1}, "repayment": {"charge_off_dpd": 120},
          "agency": {"enabled": True}, "metrics": {"warmup_days": 30},
          "population": {"size": 600, "billing": {"enabled": True},
                         "arrears": {"M1": 0.08, "M2": 0.02, "M3": 0.01, "M4": 0.01},
                         "inflow": {"rate_per_day": 0.003}}}


@pytest.mark.parametrize("case", [
    ("living", {"use": "fixed_cadence"}), ("living", {"use": "no_contact"}),
    ("cohort", SPLIT), ("cohort", {"use": "bandit"})])
def test_a_spilled_event_log_gives_the_results_of_one_held_in_memory(
        case: tuple[str, dict[str, object]], scenario: Scenario, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A run that spills its log (settled at every epoch, in chunks of 97 rows here: many
    per epoch and epochs within one chunk) has the same KPIs and frames as one that
    holds it, and its spilled log is the events frame; a learning strategy (the bandit)
    is taught the same outcomes."""
    from simulator import recorder

    monkeypatch.setattr(recorder, "SPILL_ROWS", 97)
    kind, spec = case
    sc = scenario_from_dict(LIVING) if kind == "living" else scenario
    strategy = StrategySpec.model_validate(spec)
    held = run(sc, strategy, 5)
    spilled = run(sc, strategy, 5, spill_events=tmp_path / "events.tmp")
    assert spilled.event_log is not None and spilled.events.empty
    assert spilled.kpis == pytest.approx(held.kpis, rel=0, abs=0, nan_ok=True)
    for frame in ("accounts", "daily", "agents_daily"):
        pd.testing.assert_frame_equal(getattr(spilled, frame), getattr(held, frame),
                                      check_exact=True)
    pd.testing.assert_frame_equal(spilled.event_log.frame(), held.events, check_exact=True)
    chunks = list(spilled.event_log.frames())
    assert len(chunks) > 3 and all(len(c) == 97 for c in chunks[:-1])
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), held.events,
                                  check_exact=True)
    # Written by the CLI's writer: the files of the in-memory results.
    paths = write_outputs([held], sc, tmp_path / "held")
    with OutputFolder(tmp_path / "spilled") as folder:
        writer = ResultsWriter(folder, sc)
        writer.add(spilled, release=True)
        streamed = writer.finish()
    assert not (tmp_path / "events.tmp").exists()  # the writer removed the spill
    for name in ("events", "accounts", "kpis"):
        if name == "kpis":
            assert streamed[name].read_text() == paths[name].read_text()
        else:
            pd.testing.assert_frame_equal(pd.read_parquet(streamed[name]),
                                          pd.read_parquet(paths[name]))


def test_an_event_before_the_settled_time_is_refused(tmp_path: Path) -> None:
    from simulator.recorder import Event, Recorder

    rec = Recorder(spill=tmp_path / "log")
    rec.add(Event.PAYMENT, np.array([1.5, 0.5, 3.0]), np.array([0, 1, 2]))
    rec.settle(2.0)
    rec.add(Event.PAYMENT, 2.5, np.array([3]))
    rec.settle(2.7)
    rec.add(Event.PAYMENT, 2.6, np.array([4]))  # before what was settled: out of order
    with pytest.raises(RuntimeError, match="settled up to"):
        rec.settle(4.0)
    rec = Recorder(spill=tmp_path / "log2")
    rec.add(Event.PAYMENT, np.array([1.5, 0.5, 3.0, 0.5]), np.array([0, 1, 2, 3]))
    rec.settle(2.0)
    rec.add(Event.CHURN, np.array([2.0, 3.0]), np.array([4, 5]))
    log = rec.spilled()
    frame = log.frame()
    assert frame["t"].tolist() == [0.5, 0.5, 1.5, 2.0, 3.0, 3.0]
    assert frame["account_id"].tolist() == [1, 3, 0, 4, 2, 5]  # ties in recorded order
    assert log.frame(["churn"])["account_id"].tolist() == [4, 5]
    log.remove()
    assert not (tmp_path / "log2").exists()
