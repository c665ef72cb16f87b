"""Strategy plug-ins: loading routes, errors, the built-in library and the view boundary.

Engine runs use small books (1,000-3,000 accounts) and short horizons. Statistical
assertions state their tolerance and why next to them.
"""

from __future__ import annotations

import dataclasses
import math
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

import simulator.strategies.loader as loader
from simulator.book import Latent, Observable
from simulator.cli import app
from simulator.cli.strategies import default_text, field_type
from simulator.engine import Results, Simulation, run
from simulator.errors import StrategyError
from simulator.population import generate_book
from simulator.rng import Streams
from simulator.scenario import (
    CHANNELS,
    Scenario,
    StrategySpec,
    load_scenario,
    scenario_from_dict,
)
from simulator.strategies import (
    BUILTINS,
    Strategy,
    StrategyParams,
    build_strategy,
    no_requests,
)
from simulator.strategies.arms import arm_kpis, arm_kpis_of_run, arms_for_run
from simulator.strategies.bandit import Bandit
from simulator.strategies.champion_challenger import ChampionChallenger
from simulator.strategies.early_warning import EarlyWarning
from simulator.strategies.escalation import Escalation
from simulator.strategies.state import PerAccount
from simulator.strategies.value_based import ValueBased
from simulator.view import ALL_COLUMNS, VIEW_COLUMNS, build_view

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "scenarios" / "examples" / "call_big_balances.py"
EXAMPLE_SCENARIO = REPO / "scenarios" / "examples" / "custom_strategy.yaml"
SMALL = ["--set", "population.size=1000", "--set", "horizon_days=30",
         "--set", "population.due_day={low: 0, high: 10}"]

runner = CliRunner()


def small_scenario(size: int = 2000, horizon: float = 40, due_high: int = 10,
                   **extra: Any) -> Scenario:
    data: dict[str, Any] = {
        "horizon_days": horizon,
        "population": {"size": size, "due_day": {"low": 0, "high": due_high}},
        "agents": {"count": 4},
    }
    for key, value in extra.items():
        data[key] = value
    return scenario_from_dict(data)


def simulate(scenario: Scenario, use: str, params: dict[str, Any] | None = None,
             seed: int = 3) -> tuple[Simulation, Results]:
    """Run one arm and keep the Simulation, whose ``strategy`` a test may inspect."""
    sim = Simulation(scenario, StrategySpec(use=use, params=params or {}, label=None), seed)
    return sim, sim.run()


def view_of(size: int = 3000, day: float = 40.0, seed: int = 0) -> pd.DataFrame:
    """A real view (build_view) of a fresh book: every account open, due 0-30."""
    sc = scenario_from_dict({"population": {"size": size}})
    return build_view(generate_book(sc, Streams(seed)), day)


def write_scenario(path: Path, strategies: list[dict[str, Any]], **extra: Any) -> Path:
    data: dict[str, Any] = {
        "name": "plugin_test", "horizon_days": 30, "seed": 5,
        "population": {"size": 1000, "due_day": {"low": 0, "high": 10}},
        "strategies": strategies, **extra,
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture()
def plugin_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The example strategy as an importable module on sys.path."""
    folder = tmp_path / "site"
    folder.mkdir()
    shutil.copy(EXAMPLE, folder / "ctsim_test_plugin.py")
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delitem(sys.modules, "ctsim_test_plugin", raising=False)
    return "ctsim_test_plugin"


def kpis_of(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "kpis.csv")


def assert_one_line_error(result: Any, *fragments: str) -> None:
    """Exit code 2, one line on stderr naming the problem, no traceback."""
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert err.startswith("error:"), err
    assert "\n" not in err, err
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in err, err


# ----------------------------------------------------------------------------- loading


@pytest.mark.parametrize("route", ["builtin", "module", "file", "entry_point"])
def test_cli_loads_a_strategy_by_every_route(route: str, plugin_module: str,
                                             tmp_path: Path) -> None:
    scenario = write_scenario(tmp_path / "sc.yaml", [{"use": "no_contact"}])
    expected = {"builtin": "escalation", "module": f"{plugin_module}:CallBigBalances",
                "file": f"{EXAMPLE}:CallBigBalances", "entry_point": "big_balances"}[route]
    if route == "entry_point":
        # An installed package's registration, as pip leaves it (plug-in code is built and
        # run in supervised child processes, which find it as this process does).
        dist = tmp_path / "site" / "ctsim_test_plugin-0.0.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ctsim-test-plugin\n"
                                       "Version: 0.0\n", encoding="utf-8")
        (dist / "entry_points.txt").write_text(
            f"[{loader.ENTRY_POINT_GROUP}]\nbig_balances = {plugin_module}:CallBigBalances\n",
            encoding="utf-8")
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(scenario), "-s", expected, "-q", "--out", str(out),
                                 "--no-events"])
    assert result.exit_code == 0, result.output
    k = kpis_of(out)
    assert k["strategy"].tolist() == [expected]
    assert k["contacts"].iloc[0] > 0  # the plug-in really decided something


def test_cli_relative_file_path_resolves_from_the_working_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scenario = write_scenario(tmp_path / "sc.yaml", [{"use": "no_contact"}])
    monkeypatch.chdir(EXAMPLE.parent.parent)
    result = runner.invoke(app, ["run", str(scenario), "-s",
                                 "examples/call_big_balances.py:CallBigBalances", "-q",
                                 "--out", str(tmp_path / "out"), "--no-events"])
    assert result.exit_code == 0, result.output


def test_scenario_file_loads_every_route_with_params(plugin_module: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "scenarios"
    folder.mkdir()
    shutil.copy(EXAMPLE, folder / "rules.py")
    scenario = write_scenario(folder / "sc.yaml", [
        {"use": "risk_tiered", "params": {"high_risk_score": 620}},
        {"use": f"{plugin_module}:CallBigBalances", "label": "by_module",
         "params": {"min_amount": 500}},
        # Relative to the scenario file, not to the working folder.
        {"use": "rules.py:CallBigBalances", "label": "by_file", "params": {"from_dpd": 5}},
    ])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(scenario), "-q", "--out", str(out), "--no-events"])
    assert result.exit_code == 0, result.output
    k = kpis_of(out).set_index("strategy")
    assert list(k.index) == ["risk_tiered", "by_module", "by_file"]
    # Different parameters give different decisions.
    assert k.loc["by_module", "contacts_agent_call"] != k.loc["by_file", "contacts_agent_call"]


def test_example_scenario_runs_from_any_folder(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(EXAMPLE_SCENARIO), *SMALL, "-q", "--out", str(out),
                                 "--no-events"])
    assert result.exit_code == 0, result.output
    k = kpis_of(out).set_index("strategy")
    assert "call_big_balances" in k.index
    assert k.loc["call_big_balances", "contacts_agent_call"] > 0


@pytest.mark.parametrize("path", sorted((REPO / "scenarios" / "examples").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_example_scenarios_build_every_arm(path: Path) -> None:
    sc = load_scenario(path)
    for spec in sc.strategies:
        strategy = build_strategy(spec, np.random.default_rng(0), path.parent)
        assert isinstance(strategy, Strategy)


def test_example_strategy_is_one_short_file() -> None:
    # The README's complete example (parameters, constructor, view_columns, learn, rng)
    # must stay short enough to read at a glance.
    code = [line for line in EXAMPLE.read_text().splitlines()
            if line.strip() and not line.strip().startswith(('"""', "#"))]
    assert len(code) <= 40, len(code)


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(("ref", "fragments"), [
    ("nosuch_strategy", ("strategy 'nosuch_strategy'", "unknown strategy", "risk_tiered")),
    ("no_such_module_xyz:Foo", ("cannot import module 'no_such_module_xyz'",)),
    ("simulator.strategies.builtin:Nope", ("has no class 'Nope'",)),
    (f"{EXAMPLE}:Nope", ("has no class 'Nope'",)),
    ("missing_rules.py:Rules", ("missing_rules.py' not found",)),
    ("simulator.scenario:Scenario", ("is not a subclass",)),
    ("simulator.strategies:Strategy", ("does not implement decide()",)),
])
def test_cli_bad_reference_is_one_line_exit_2(ref: str, fragments: tuple[str, ...],
                                              tmp_path: Path) -> None:
    scenario = write_scenario(tmp_path / "sc.yaml", [{"use": "no_contact"}])
    result = runner.invoke(app, ["run", str(scenario), "-s", ref, "-q", "--out",
                                 str(tmp_path / "out")])
    assert_one_line_error(result, *fragments)


@pytest.mark.parametrize(("spec", "fragments"), [
    ({"use": "risk_tiered", "params": {"high_risk_score": "abc"}},
     ("strategy 'risk_tiered'", "params.high_risk_score", "valid number")),
    ({"use": "escalation", "params": {"ladders": ["sms"]}},
     ("params.ladders", "unknown parameter", "ladder")),
    ({"use": "escalation", "params": {"ladder": ["agency", "sms"]}},
     ("params.ladder", "'agency' can only be the last rung")),
    ({"use": "early_warning", "params": {"reminders": [{"channel": "sms", "days": [-2, 1]}]}},
     ("params.reminders", "before the due date")),
    ({"use": "value_based", "params": {"daily_call_capacity": -1}},
     ("params.daily_call_capacity", "greater than or equal to 0")),
    ({"use": "bandit", "params": {"treatments": ["sms", "fax"]}},
     ("params.treatments.1",)),
    ({"use": "champion_challenger", "params": {"arms": [
        {"use": "no_contact", "share": 0.5}, {"use": "fixed_cadence", "share": 0.4}]}},
     ("shares must sum to 1",)),
    ({"use": "champion_challenger", "params": {"arms": [
        {"use": "no_contact", "share": 0.5},
        {"use": "risk_tiered", "label": "challenger", "share": 0.5,
         "params": {"large_amount": -5}}]}},
     ("strategy 'champion_challenger'", "params.arms.1", "strategy 'challenger'",
      "params.large_amount")),
    ({"use": "champion_challenger", "params": {"arms": [
        {"use": "no_contact", "share": 0.5}, {"use": "nope:Nope", "share": 0.5}]}},
     ("params.arms.1", "cannot import module 'nope'")),
])
def test_bad_parameter_is_one_line_exit_2(spec: dict[str, Any], fragments: tuple[str, ...],
                                          tmp_path: Path) -> None:
    scenario = write_scenario(tmp_path / "sc.yaml", [spec])
    result = runner.invoke(app, ["run", str(scenario), "-q", "--out", str(tmp_path / "out")])
    assert_one_line_error(result, *fragments)


def test_error_in_a_real_process_is_one_line_exit_2(tmp_path: Path) -> None:
    scenario = write_scenario(tmp_path / "sc.yaml", [{"use": "no_contact"}])
    proc = subprocess.run(
        [sys.executable, "-m", "simulator.cli", "run", str(scenario), "-s", "mypkg:Missing",
         "-q", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "cannot import module 'mypkg'" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_unknown_parameter_names_the_accepted_ones() -> None:
    with pytest.raises(loader.StrategyError, match="early_warning takes high_risk_score"):
        build_strategy(StrategySpec(use="early_warning", params={"score": 1}, label=None),
                       np.random.default_rng(0))


# ----------------------------------------------------------------------------- the command


def test_strategies_command_lists_every_builtin_and_parameter() -> None:
    result = runner.invoke(app, ["strategies"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # the table wraps to the terminal width
    for name, cls in BUILTINS.items():
        assert name in text
        assert cls.description in text
        for param in cls.Params.model_fields:
            assert param in text, (name, param)
    assert "daily_call_capacity" in text and "1000" in text


def test_strategies_command_shows_one_in_full() -> None:
    result = runner.invoke(app, ["strategies", "escalation"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "Business rule" in text
    assert "hours.agent_call" in text  # nested parameters spelled out
    ladder = Escalation.Params.model_fields["ladder"]
    assert default_text(ladder, short=False) == "[push, sms, robocall, agent_call, agency]"
    assert field_type(Escalation.Params.model_fields["gap_days"]) == "int >= 1"


def test_strategies_command_shows_a_file_plugin() -> None:
    result = runner.invoke(app, ["strategies", f"{EXAMPLE}:CallBigBalances"])
    assert result.exit_code == 0, result.output
    assert "min_amount" in result.output


def test_strategies_command_unknown_is_one_line_exit_2() -> None:
    assert_one_line_error(runner.invoke(app, ["strategies", "nope"]), "unknown strategy")


# ----------------------------------------------------------------------------- built-ins


def test_every_builtin_is_documented() -> None:
    for name, cls in BUILTINS.items():
        assert cls.name == name
        assert cls.description and len(cls.description) <= 90
        doc = cls.__doc__ or ""
        if cls.Params.model_fields:
            assert "Business rule" in doc, name
        for param in cls.Params.model_fields:
            assert f"``{param}``" in doc, (name, param)
            assert cls.Params.model_fields[param].description, (name, param)


def test_early_warning_contacts_only_high_risk_before_the_due_date() -> None:
    # Due dates 5-30 days in, so every account's pre-due window lies inside the horizon.
    sc = small_scenario(size=3000, horizon=45, due_high=30,
                        population={"size": 3000, "due_day": {"low": 5, "high": 30}})
    sim, res = simulate(sc, "early_warning")
    ev = res.events
    contacts = ev[ev["event"] == "contact"]
    assert len(contacts) > 100  # not vacuous
    ids = contacts["account_id"].to_numpy()
    due = sim.book.observable.due_day[ids]
    # Reminders are sent on day due-5 .. due-1 and released at 10:00: strictly before.
    assert (contacts["t"].to_numpy() < due).all()
    strategy = sim.strategy
    assert isinstance(strategy, EarlyWarning)
    o = sim.book.observable
    high = ((o.score < strategy.params.high_risk_score)
            | (o.prior_delinquencies >= strategy.params.high_risk_prior_delinquencies))
    assert high[ids].all()
    assert (~high).sum() > 1000  # there were low-risk accounts to leave alone


def test_early_warning_is_silent_on_and_after_the_due_date() -> None:
    view = view_of(2000, day=40.0)
    strategy = EarlyWarning(EarlyWarning.Params(high_risk_score=10_000))  # all high risk
    for shift in range(-35, 60, 3):
        v = view.assign(dpd=view["dpd"] + shift)
        req = strategy.decide(40 + shift, v)
        if len(req):
            assert (v.loc[req["account_id"], "dpd"] < 0).all()


def test_risk_tiered_contacts_high_risk_tiers_more_than_low() -> None:
    sim, res = simulate(small_scenario(size=3000, horizon=60), "risk_tiered")
    o = sim.book.observable
    start = pd.DataFrame({"score": o.score, "prior_delinquencies": o.prior_delinquencies,
                          "amount_due": o.amount_due})
    strategy = sim.strategy
    assert hasattr(strategy, "tiers")
    tier = strategy.tiers(start)
    acc = res.accounts
    contacts = acc[[f"contacts_{c}" for c in CHANNELS]].sum(axis=1).to_numpy()
    delinquent = np.isfinite(acc["t_delinquent"].to_numpy())
    mean, se = [], []
    for k in range(3):
        x = contacts[delinquent & (tier == k)]
        assert x.size >= 50
        mean.append(x.mean())
        se.append(x.std(ddof=1) / math.sqrt(x.size))
    # Tolerance: each step up in tier must exceed the one below by more than 3 standard
    # errors of the difference (the cadences differ by design, so the gap is large; 3
    # SE keeps a false failure below 0.2 % per comparison).
    for lo, hi in ((0, 1), (1, 2)):
        assert mean[hi] - mean[lo] > 3 * math.hypot(se[hi], se[lo]), (mean, se)


class SpyEscalation(Escalation):
    """Records each account's rung before and after every decision, and the requests."""

    name = "spy_escalation"

    def __init__(self, params: Any = None, rng: np.random.Generator | None = None):
        super().__init__(params, rng)
        self.trace: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, pd.DataFrame]] = []

    def decide(self, day: int, accounts: pd.DataFrame) -> pd.DataFrame:
        ids = accounts.index.to_numpy()
        before = self.rung_of(ids)
        req = super().decide(day, accounts)
        self.trace.append((day, ids, before, self.rung_of(ids), req))
        return req


@pytest.fixture()
def spies(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for cls in (SpyEscalation, SpyValueBased, SpyLearner):
        monkeypatch.setitem(BUILTINS, cls.name, cls)
    yield


def test_escalation_never_skips_a_rung(spies: None) -> None:
    sim, _ = simulate(small_scenario(size=2000, horizon=60), "spy_escalation")
    strategy = sim.strategy
    assert isinstance(strategy, SpyEscalation)
    ladder = np.asarray(strategy.ladder, dtype=object)
    steps = []
    last_rung: dict[int, int] = {}
    for _day, ids, before, after, req in strategy.trace:
        started = before >= 0
        step = after - before
        assert np.isin(step[started], (-1, 0, 1)).all()
        assert np.isin(after[~started], (-1, 0)).all()  # a new account starts on rung 0
        steps.append(step[started])
        # A request is always for the channel of the account's rung.
        if len(req):
            rung_of = dict(zip(ids.tolist(), after.tolist(), strict=True))
            rungs = np.array([rung_of[i] for i in req["account_id"].tolist()])
            assert (req["channel"].to_numpy() == ladder[rungs]).all()
        # The rung persists between epochs.
        for i, r in zip(ids[:50].tolist(), before[:50].tolist(), strict=True):
            if i in last_rung:
                assert last_rung[i] == r
        last_rung.update(zip(ids[:50].tolist(), after[:50].tolist(), strict=True))
    all_steps = np.concatenate(steps)
    assert (all_steps == 1).sum() > 100 and (all_steps == -1).sum() > 10  # not vacuous
    assert max(int(after.max()) for *_, after, _ in strategy.trace) == len(ladder) - 1


def _one_account_view(day: int) -> pd.DataFrame:
    view = view_of(50, day=float(day)).iloc[:1].copy()
    for c in CHANNELS:
        view[f"reachable_{c}"] = True
        view[f"contacts_{c}"] = 0
        view[f"last_{c}"] = np.nan
    view["do_not_contact"] = False
    view["open_promise"] = False
    view["paid_so_far"] = 0.0
    view["promises_made"] = 0
    view["promises_broken"] = 0
    view["dpd"] = 0
    return view


def test_escalation_climbs_on_silence_and_broken_promise_steps_down_on_payment() -> None:
    p = Escalation.Params(contacts_per_rung=1, gap_days=1, patience_days=2)
    strategy = Escalation(p)
    view = _one_account_view(0)
    account = int(view.index[0])
    rungs, sent = [], []
    for day in range(1, 40):
        view["dpd"] = day
        if day == 20:  # a payment
            view["paid_so_far"] += 10.0
        if day == 24:  # a promise
            view["promises_made"] += 1
        if day == 26:  # ... broken
            view["promises_broken"] += 1
        req = strategy.decide(day, view)
        rungs.append(int(strategy.rung_of(np.array([account]))[0]))
        for ch in req["channel"]:  # every request is executed at its hour
            view[f"contacts_{ch}"] += 1
            view[f"last_{ch}"] = day + 10 / 24
            sent.append((day, ch))
    steps = np.diff([-1, *rungs])
    assert set(steps.tolist()) <= {-1, 0, 1}
    # Silence climbs push -> sms -> robocall -> agent_call -> agency: one contact, then
    # two days of patience, per rung.
    assert [ch for _, ch in sent][:4] == ["push", "sms", "robocall", "agent_call"]
    assert rungs[18] == 4  # day 19: agency, no more contact
    assert rungs[19] == 3  # day 20: the payment steps down to agent calls
    assert rungs[23] == 3  # day 24: a new promise steps down from the agency rung
    assert rungs[25] == rungs[24] + 1  # day 26: the broken promise climbs at once
    assert not any(13 <= day < 20 for day, _ in sent)  # agency: in-house silence


def test_escalation_climbs_past_an_unreachable_rung_one_step_at_a_time() -> None:
    strategy = Escalation()
    view = _one_account_view(0)
    view["reachable_push"] = False
    view["dpd"] = 1
    assert len(strategy.decide(1, view)) == 0  # rung 0 (push) cannot be reached
    view["dpd"] = 2
    req = strategy.decide(2, view)
    assert req["channel"].tolist() == ["sms"]


class SpyValueBased(ValueBased):
    name = "spy_value_based"

    def __init__(self, params: Any = None, rng: np.random.Generator | None = None):
        super().__init__(params, rng)
        self.calls_requested: list[int] = []

    def decide(self, day: int, accounts: pd.DataFrame) -> pd.DataFrame:
        req = super().decide(day, accounts)
        self.calls_requested.append(int((req["channel"] == "agent_call").sum()))
        return req


def test_value_based_ranks_calls_by_value_within_capacity() -> None:
    params = ValueBased.Params(
        explore_share=0.0, daily_call_capacity=100, prior_weight=1e9,
        prior_uplift={"agent_call": 0.05, "sms": 0.01})
    strategy = ValueBased(params)
    view = view_of(3000, day=45.0)
    req = strategy.decide(45, view)
    calls = req[req["channel"] == "agent_call"]
    assert len(calls) == 100  # capacity binds: far more accounts are worth a call
    value = strategy.values(view)[:, CHANNELS.index("agent_call")]
    v = pd.Series(value, index=view.index)
    eligible = ~view["do_not_contact"] & ~view["open_promise"] & np.isfinite(v)
    called = v[calls["account_id"]]
    not_called = v[eligible & ~view.index.isin(calls["account_id"])]
    assert called.min() >= not_called.max()  # the highest values get the agents
    # Priorities follow value: the queue serves the most valuable call first.
    ordered = calls.sort_values("priority", kind="stable")
    assert (np.diff(v[ordered["account_id"]].to_numpy()) <= 0).all()
    # Accounts past the cut fall back to SMS, which is still worth it for them.
    sms = set(req.loc[req["channel"] == "sms", "account_id"])
    assert len(sms) > 1000 and not sms & set(calls["account_id"])


def test_value_based_contacts_nobody_without_evidence_of_uplift() -> None:
    strategy = ValueBased(ValueBased.Params(explore_share=0.0))
    assert len(strategy.decide(45, view_of(2000, day=45.0))) == 0


def test_value_based_never_exceeds_capacity_and_learns_from_its_exploration_arm(
        spies: None) -> None:
    capacity = 15
    sim, res = simulate(small_scenario(size=3000, horizon=45), "spy_value_based",
                        {"daily_call_capacity": capacity, "explore_share": 0.3,
                         "prior_uplift": {"agent_call": 0.2}, "prior_weight": 5})
    strategy = sim.strategy
    assert isinstance(strategy, SpyValueBased)
    assert max(strategy.calls_requested) == capacity  # capacity binds and holds
    ev = res.events
    calls = ev[(ev["event"] == "contact") & (ev["channel"] == "agent_call")]
    per_day = np.bincount(np.floor(calls["t"].to_numpy()).astype(int))
    assert per_day.max() <= capacity
    # It learned from outcomes (learn), with a control group in the exploration arm.
    assert strategy.n[:, 0].sum() > 100 and strategy.n[:, 1:].sum() > 100
    assert np.isfinite(strategy.uplift()).all()


def test_bandit_concentrates_on_the_clearly_best_treatment() -> None:
    # SMS impulse 3.0 (default 0.08), every borrower reachable by every channel and no
    # opt-outs, so SMS is clearly the best treatment for everyone.
    everyone = {c: 1.0 for c in CHANNELS}
    sc = small_scenario(
        size=3000, horizon=75,
        population={"size": 3000, "due_day": {"low": 0, "high": 60}, "on_file": everyone,
                    "segments": {"unreachable": {"share": 0.0}, "on_time": {"share": 0.694}}},
        channels={"sms": {"impulse": 3.0, "cost": 0.04, "intrusiveness": 0.2,
                          "optout_sensitivity": 0.0}})
    sim, _ = simulate(sc, "bandit", {
        "treatments": ["none", "push", "email", "sms"], "window_days": 3, "from_dpd": 1,
        "segmentation": {"stage_edges": [], "score_edges": []}})
    strategy = sim.strategy
    assert isinstance(strategy, Bandit)
    late = np.sum([c for day, c in strategy.history if day >= 35], axis=0)
    assert late.sum() >= 200
    share = late[3] / late.sum()
    # Tolerance: uniform choice would give 25 %; by day 35 the SMS posterior (~0.85
    # success, hundreds of observations) and the others (< 0.45, tens) barely overlap,
    # so Thompson sampling picks SMS almost always (observed 98-100 % over seeds); 90 %
    # leaves room for the few draws of rarely tried arms.
    assert share >= 0.9, late
    post = strategy.posterior_mean()
    assert post.idxmax(axis=1).tolist() == ["sms"]


def test_bandit_respects_call_capacity() -> None:
    strategy = Bandit(Bandit.Params(treatments=("agent_call", "none"),
                                    daily_call_capacity=40, prior_successes=50,
                                    prior_failures=1))
    req = strategy.decide(45, view_of(2000, day=45.0))
    assert (req["channel"] == "agent_call").sum() == 40


@pytest.mark.parametrize("shares", [(0.3, 0.7), (0.2, 0.3, 0.5)])
def test_champion_challenger_splits_in_the_configured_proportions(
        shares: tuple[float, ...]) -> None:
    arms = [{"use": "no_contact", "label": f"arm{k}", "share": s}
            for k, s in enumerate(shares)]
    def split(seed: int) -> ChampionChallenger:
        built = build_strategy(StrategySpec(use="champion_challenger", params={"arms": arms}),
                               np.random.default_rng(seed))
        assert isinstance(built, ChampionChallenger)
        return built

    strategy = split(11)
    n = 20_000
    ids = np.arange(n)
    labels = strategy.arm_of(ids)
    for k, share in enumerate(shares):
        count = int((labels == f"arm{k}").sum())
        # Tolerance: the count is Binomial(n, share); 3 standard deviations.
        assert abs(count - n * share) <= 3 * math.sqrt(n * share * (1 - share)), (k, count)
    # Stable: the same account keeps its arm whatever the batch or order it comes in.
    shuffled = np.random.default_rng(1).permutation(ids)
    assert (strategy.arm_of(shuffled) == labels[shuffled]).all()
    # Reproducible from the strategy's own stream, and different for another stream.
    again, other = split(11), split(12)
    assert (again.arm_of(ids) == labels).all()
    assert (other.arm_of(ids) != labels).mean() > 0.2


class SpyLearner(Strategy[StrategyParams]):
    """Sends one SMS to everyone past due and records what learn() receives."""

    name = "spy_learner"

    def __init__(self, params: Any = None, rng: np.random.Generator | None = None):
        super().__init__(params, rng)
        self.seen: list[pd.DataFrame] = []

    def decide(self, day: int, accounts: pd.DataFrame) -> pd.DataFrame:
        late = accounts[(accounts["dpd"] == 1) & accounts["reachable_sms"]]
        return pd.DataFrame({"account_id": late.index, "channel": "sms", "hour": 10.0})

    def learn(self, outcomes: pd.DataFrame) -> None:
        self.seen.append(outcomes)


def test_champion_challenger_runs_arms_on_their_own_accounts(spies: None) -> None:
    sc = small_scenario(size=3000, horizon=40)
    params = {"arms": [{"use": "fixed_cadence", "label": "champion", "share": 0.4},
                       {"use": "spy_learner", "label": "learner", "share": 0.3},
                       {"use": "no_contact", "label": "holdout", "share": 0.3}]}
    sim, res = simulate(sc, "champion_challenger", params)
    strategy = sim.strategy
    assert isinstance(strategy, ChampionChallenger)
    arm = strategy.arm_of(np.arange(sim.book.n))
    ev = res.events
    contacted = ev.loc[ev["event"] == "contact", "account_id"].to_numpy()
    assert set(arm[contacted]) == {"champion", "learner"}
    # The learning arm hears only about its own accounts.
    learner = strategy.children[1]
    assert isinstance(learner, SpyLearner)
    heard = pd.concat(learner.seen)
    assert len(heard) > 0 and (arm[heard["account_id"].to_numpy()] == "learner").all()
    # The split the engine used can be rebuilt from the seed, and KPIs per arm add up.
    spec = StrategySpec(use="champion_challenger", params=params, label=None)
    assert (arms_for_run(spec, res.seed, sim.book.n) == arm).all()
    per_arm = arm_kpis_of_run(res, sc, spec)
    assert set(per_arm["arm"]) == {"champion", "learner", "holdout"}
    for total in ("cash_collected", "contact_cost", "clv_lost", "net_value", "contacts",
                  "collected", "amount_delinquent", "wasted_contacts", "churned"):
        assert per_arm[total].sum() == pytest.approx(res.kpis[total], rel=1e-9, abs=1e-6)
    holdout = per_arm.set_index("arm").loc["holdout"]
    assert holdout["contacts"] == 0 and holdout["contact_cost"] == 0


def test_arm_kpis_of_a_single_arm_match_the_run() -> None:
    sc = small_scenario(size=1500, horizon=40)
    res = run(sc, StrategySpec(use="fixed_cadence", params={}, label=None), 4)
    one = arm_kpis(res, np.full(len(res.accounts), "all", dtype=object), sc).iloc[0]
    for kpi in ("delinquency_rate", "recovery_rate", "recovery_rate_30", "cure_rate",
                "charge_off_rate", "loss_rate", "cash_collected", "contact_cost",
                "agency_commission", "churn_rate", "clv_lost", "complaints_per_1000",
                "contacts_per_account", "wasted_contacts", "blocked_requests",
                "promises_made", "net_value"):
        assert one[kpi] == pytest.approx(res.kpis[kpi], rel=1e-9, abs=1e-9), kpi


# ----------------------------------------------------------------------------- the view


HIDDEN_STATE = ("promise_kept", "excess", "t_pay", "t_state", "pressure", "fatigue",
                "dark", "opted_out", "repay_counter", "contact_counter", "t_churn",
                "churned", "t_payday")


def _documented(column: str) -> bool:
    if column in VIEW_COLUMNS:
        return True
    return any(column == pattern.replace("<channel>", c)
               for pattern in VIEW_COLUMNS if "<channel>" in pattern for c in CHANNELS)


def test_no_view_column_names_a_latent_field() -> None:
    sc = small_scenario(size=500)
    book = generate_book(sc, Streams(1))
    view = build_view(book, 10.0)
    latent = {f.name for f in dataclasses.fields(Latent)}
    assert not latent & set(view.columns)
    assert not set(HIDDEN_STATE) & set(view.columns)
    assert all(_documented(c) for c in view.columns), [c for c in view.columns
                                                        if not _documented(c)]
    assert view.attrs == {}
    # Nothing in the view shares memory with the book: it is a copy.
    arrays = [getattr(book.latent, f.name) for f in dataclasses.fields(Latent)]
    arrays += [getattr(book.observable, f.name) for f in dataclasses.fields(Observable)]
    arrays += [v for v in vars(book.state).values() if isinstance(v, np.ndarray)]
    for column in view.columns:
        values = view[column].to_numpy()
        if values.dtype == object:
            continue
        assert not any(np.shares_memory(values, a) for a in arrays), column


def test_a_view_of_some_columns_equals_those_columns_of_the_whole_view() -> None:
    sim, _ = simulate(small_scenario(size=1500, horizon=25), "fixed_cadence")
    whole = build_view(sim.book, 25.0)
    assert tuple(whole.columns) == ALL_COLUMNS
    some = ["reachable_sms", "dpd", "contacts_total", "last_agent_call", "promise_day"]
    part = build_view(sim.book, 25.0, some)
    assert list(part.columns) == [c for c in ALL_COLUMNS if c in some]  # the view's order
    pd.testing.assert_frame_equal(part, whole[part.columns], check_exact=True)
    assert build_view(sim.book, 25.0, ()).index.equals(whole.index)


def builtin(name: str) -> Strategy[Any]:
    """A built-in with its default parameters, built as a run builds it."""
    return build_strategy(StrategySpec(use=name), np.random.default_rng(0))


NAMING_COLUMNS = sorted(name for name in BUILTINS if builtin(name).view_columns() is not None)


def test_every_builtin_names_its_view_columns() -> None:
    assert sorted(BUILTINS) == NAMING_COLUMNS


@pytest.mark.parametrize("name", NAMING_COLUMNS)
def test_a_builtin_decides_the_same_on_the_columns_it_names(name: str) -> None:
    # A built-in that names its view columns gets only those; it must not read others.
    sim, _ = simulate(small_scenario(size=3000, horizon=30), "fixed_cadence", seed=4)
    columns = builtin(name).view_columns()
    assert columns is not None and set(columns) <= set(ALL_COLUMNS)
    requests = 0
    for day in (-1, 3, 12, 30):
        whole = builtin(name).decide(
            day, build_view(sim.book, float(day)))
        part = builtin(name).decide(
            day, build_view(sim.book, float(day), columns))
        pd.testing.assert_frame_equal(part, whole)
        requests += len(whole)
    assert requests or name == "no_contact", "the check needs requests to compare"


class NamesColumns(Strategy[StrategyParams]):
    """Names the view columns given by its class attribute; reads ``reads``."""

    name = "names_columns"
    named: Any = ("dpd",)
    reads = "dpd"

    def view_columns(self) -> Any:
        return self.named

    def decide(self, day: int, accounts: pd.DataFrame) -> pd.DataFrame:
        accounts[self.reads].to_numpy()
        return no_requests()


@pytest.mark.parametrize(("named", "reads", "message"), [
    (("dpd", "score"), "score", None),
    (("dpd",), "score", "KeyError: 'score'"),
    (("dpd", "scores"), "dpd", "view_columns() names unknown column(s) scores"),
    ("dpd", "dpd", "view_columns() must return None or a collection of column names"),
    ((1, 2), "dpd", "view_columns() must return None or a collection of column names"),
    (3, "dpd", "view_columns() must return None or a collection of column names"),
])
def test_named_view_columns_are_checked(monkeypatch: pytest.MonkeyPatch, named: Any,
                                        reads: str, message: str | None) -> None:
    monkeypatch.setattr(NamesColumns, "named", named)
    monkeypatch.setattr(NamesColumns, "reads", reads)
    monkeypatch.setitem(BUILTINS, NamesColumns.name, NamesColumns)
    sc = small_scenario(size=300, horizon=5)
    if message is None:
        simulate(sc, NamesColumns.name)
        return
    with pytest.raises(StrategyError, match=re.escape(message)):
        simulate(sc, NamesColumns.name)


class Snoop(Strategy[StrategyParams]):
    """Looks for latent truth through the view and vandalises it; then contacts nobody."""

    name = "snoop"

    def __init__(self, params: Any = None, rng: np.random.Generator | None = None):
        super().__init__(params, rng)
        self.found: list[str] = []

    def decide(self, day: int, accounts: pd.DataFrame) -> pd.DataFrame:
        for name in ("segment", "ability", "willingness", "tolerance", "responsiveness",
                     "clv", "latent", "book", "_book", "state"):
            if name in accounts.columns or getattr(accounts, name, None) is not None:
                self.found.append(name)
        if accounts.attrs:
            self.found.append("attrs")
        # Writing into the view must change nothing in the simulation.
        for column in accounts.columns:
            if accounts[column].dtype == bool:
                accounts[column] = True
            elif accounts[column].dtype.kind in "if":
                accounts[column] = 0
        return pd.DataFrame({"account_id": [], "channel": [], "hour": []})


def test_a_strategy_cannot_reach_or_change_latent_truth(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    monkeypatch.setitem(BUILTINS, Snoop.name, Snoop)
    sc = small_scenario(size=1000, horizon=30)
    sim, res = simulate(sc, "snoop", seed=8)
    assert isinstance(sim.strategy, Snoop)
    assert sim.strategy.found == []
    control = run(sc, StrategySpec(use="no_contact", params={}, label=None), 8)
    for kpi in ("cash_collected", "recovery_rate", "delinquency_rate", "churned"):
        assert res.kpis[kpi] == control.kpis[kpi]


def test_learn_receives_only_observable_events(spies: None) -> None:
    sim, _ = simulate(small_scenario(size=2000, horizon=40), "spy_learner")
    strategy = sim.strategy
    assert isinstance(strategy, SpyLearner)
    seen = pd.concat(strategy.seen)
    allowed = {"payment", "contact", "promise", "promise_kept", "promise_broken",
               "complaint", "opt_out", "churn", "blocked"}
    assert set(seen["event"].astype(str)) <= allowed
    assert {"payment", "contact"} <= set(seen["event"].astype(str))
    assert list(seen.columns) == ["t", "account_id", "event", "channel", "amount", "code",
                                  "agent_minutes"]


# ----------------------------------------------------------------------------- helpers


def test_per_account_state_grows_and_keeps_values() -> None:
    state = PerAccount(rung=(np.int8, -1), seen=(bool, False))
    state.ensure(np.array([3]))
    state["rung"][3] = 2
    state.ensure(np.array([10, 1]))
    assert state["rung"][3] == 2 and state["rung"][10] == -1 and not state["seen"][10]
    with pytest.raises(ValueError):
        state.ensure(np.array([-1]))


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_every_builtin_handles_an_empty_view(name: str) -> None:
    strategy = builtin(name)
    out = strategy.decide(3, view_of(10).iloc[:0])
    assert isinstance(out, pd.DataFrame) and len(out) == 0


def test_run_writes_kpis_per_arm_of_a_split_portfolio(tmp_path: Path) -> None:
    from simulator.experiments.outputs import write_outputs

    sc = scenario_from_dict({
        "population": {"size": 800}, "horizon_days": 30,
        "strategies": [{"use": "champion_challenger", "label": "test", "params": {"arms": [
            {"use": "fixed_cadence", "label": "champion", "share": 0.75},
            {"use": "no_contact", "label": "challenger", "share": 0.25}]}}]})
    res = run(sc, sc.strategies[0], 5)
    paths = write_outputs([res], sc, tmp_path, events=False)
    by_arm = pd.read_csv(paths["kpis_by_arm"])
    assert sorted(by_arm["arm"]) == ["challenger", "champion"]
    assert by_arm["accounts"].sum() == 800
    # The challenger never contacts anyone, the champion does.
    contacts = by_arm.set_index("arm")["contacts"]
    assert contacts["challenger"] == 0 and contacts["champion"] > 0


def test_a_cadence_looks_each_step_up_as_the_step_selects() -> None:
    # ``run_cadence`` evaluates each step once per value of days past due and looks it
    # up; the accounts picked must be those ``Step.selects`` picks account by account.
    from simulator.strategies.cadence import Step, _selected

    steps = (Step(channel="sms", days=(-2, 1, 5, 12)),
             Step(channel="agent_call", from_dpd=10, to_dpd=120, every=3),
             Step(channel="robocall", days=tuple(range(0, 40, 4)), from_dpd=-5, to_dpd=0))
    gen = np.random.default_rng(8)
    for dpd in (gen.integers(-30, 200, 5_000), np.array([7]), np.array([], dtype=np.int64),
                gen.integers(-30, 200, 50).astype(float)):
        picked = _selected(steps, dpd)
        for step, hit in zip(steps, picked, strict=True):
            assert np.array_equal(hit, step.selects(dpd))
