"""The study harness: intervals, verdicts, resume and the files it writes."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from experiments import harness


def test_interval_is_the_student_t_interval():
    iv = harness.interval([1.0, 2.0, 3.0, 4.0])
    # mean 2.5, s = sqrt(5/3), t_{0.975, 3} = 3.182446305
    half = 3.182446305284263 * math.sqrt(5 / 3) / 2
    assert iv["mean"] == pytest.approx(2.5)
    assert iv["low"] == pytest.approx(2.5 - half, rel=1e-9)
    assert iv["high"] == pytest.approx(2.5 + half, rel=1e-9)
    one = harness.interval([0.7])
    assert one["mean"] == 0.7 and math.isnan(one["low"]) and one["n"] == 1


def test_verdicts_from_intervals():
    figs = {"a": [0.80, 0.82, 0.81], "b": [0.70, 0.71, 0.69], "c": [0.5, 0.9, 0.1]}
    assert harness.greater(figs, "a", "b").verdict == harness.HOLDS
    assert harness.greater(figs, "b", "a").verdict == harness.FAILS
    assert harness.greater(figs, "c", "b").verdict == harness.INCONCLUSIVE
    assert harness.greater(figs, "a", "b", margin=0.2).verdict == harness.FAILS
    assert harness.at_least(figs, "a", 0.75).verdict == harness.HOLDS
    assert harness.at_least(figs, "b", 0.75).verdict == harness.FAILS
    assert harness.at_least({"a": [0.9]}, "a", 0.5).verdict == harness.INCONCLUSIVE  # n = 1


def test_welch_difference_matches_scipy():
    from scipy import stats

    a, b = np.array([1.0, 2.0, 4.0, 3.5]), np.array([0.1, 0.4, 0.2])
    iv = harness._welch(a, b)
    res = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert iv["low"] == pytest.approx(res.low) and iv["high"] == pytest.approx(res.high)


def test_run_writes_results_and_resumes_finished_seeds(tmp_path):
    calls = []

    def run_seed(settings, seed, workdir):
        calls.append(seed)
        return {"ours": settings["base"] + 0.01 * seed, "theirs": 0.5}

    study = harness.Study(
        name="toy", title="Toy study", paper="Nobody (2026)",
        modes={"quick": {"seeds": (0, 1, 2), "base": 0.9}},
        run_seed=run_seed,
        claims=[harness.Claim("ours_better", "ours beats theirs", "0.95 vs 0.50",
                              lambda f: harness.greater(f, "ours", "theirs"))])
    res = harness.run(study, "quick", tmp_path, command="python -m experiments.toy --quick")
    assert calls == [0, 1, 2]
    assert res["claims"][0]["verdict"] == harness.HOLDS
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["figures"]["ours"]["mean"] == pytest.approx(0.91)
    assert saved["seeds"] == [0, 1, 2] and saved["command"].endswith("--quick")
    report = (tmp_path / "report.md").read_text()
    assert "**holds**" in report and "0.95 vs 0.50" in report
    # each seed records the machine it ran on (results differ across CPUs)
    here = saved["machines"]["0"]
    assert here["cpu_count"] == os.cpu_count() and here["jax_backend"] == "cpu"
    assert f"{here['cpu_count']} CPUs, cpu (seeds 0, 1, 2)" in report
    # A rerun (e.g. after a kill) does not run finished seeds again; new seeds run; a seed
    # file from before machines were recorded says so
    seed1 = tmp_path / "seeds" / "1.json"
    seed1.write_text(json.dumps({k: v for k, v in json.loads(seed1.read_text()).items()
                                 if k != "machine"}))
    res = harness.run(study, "quick", tmp_path, seeds=[0, 1, 2, 3])
    assert calls == [0, 1, 2, 3]
    assert res["machines"]["1"] is None and res["machines"]["0"] == here
    report = (tmp_path / "report.md").read_text()
    assert "not recorded (seeds 1)" in report and "(seeds 0, 2, 3)" in report


def test_greater_than_all_needs_every_comparison():
    figs = {"q": [0.8, 0.81, 0.82], "a": [0.5, 0.52, 0.51], "b": [0.79, 0.83, 0.80],
            "c": [0.9, 0.91, 0.92]}
    assert harness.greater_than_all(figs, "q", ["a"]).verdict == harness.HOLDS
    assert harness.greater_than_all(figs, "q", ["a", "b"]).verdict == harness.INCONCLUSIVE
    assert harness.greater_than_all(figs, "q", ["a", "b", "c"]).verdict == harness.FAILS


def test_settings_overrides_from_the_command_line(tmp_path):
    seen = []
    study = harness.Study(name="toy", title="Toy", paper="-",
                          modes={"quick": {"seeds": (0,), "steps": 10, "name": "a"}},
                          run_seed=lambda s, seed, w: seen.append(dict(s)) or {"x": 1.0})
    harness.main(study, ["--quick", "--out", str(tmp_path), "steps=3", "name=b"])
    assert seen[0]["steps"] == 3 and seen[0]["name"] == "b"
    assert "steps=3" in json.loads((tmp_path / "results.json").read_text())["command"]
    with pytest.raises(Exception, match="has no setting 'stepz'"):
        harness.main(study, ["--quick", "--out", str(tmp_path / "b"), "stepz=3"])


def test_fmt_figure_formats_the_interval_or_says_absent():
    results = {"figures": {"a/b": harness.interval([1.0, 2.0, 3.0]),
                           "one": harness.interval([0.25])}}
    # mean 2, t(0.975, 2) = 4.303, SE = 1 / sqrt(3): 2 -+ 2.484
    assert harness.fmt_figure(results, "a/b") == "2.000 [-0.484, 4.484]"
    assert harness.fmt_figure(results, "a/b", 1) == "2.0 [-0.5, 4.5]"
    assert harness.fmt_figure(results, "one") == "0.250"  # one seed: no interval
    assert harness.fmt_figure(results, "missing") == "n/a"
    assert harness.figure(results, "missing")["n"] == 0


def test_a_bound_near_the_threshold_is_at_the_margin():
    # mean 0.03, s = 0.01, n = 3: half-width t_{0.975,2} * 0.01 / sqrt(3) = 0.024841
    near = {"d": [0.02, 0.03, 0.04], "zero": [0.0, 0.0, 0.0]}
    assert harness.greater(near, "d", "zero", margin=0.004).verdict == harness.HOLDS
    assert harness.greater(near, "d", "zero", margin=0.004).at_margin  # gap 0.0012 of 0.0497
    assert not harness.greater(near, "d", "zero", margin=0.0).at_margin  # gap 0.0052 > 0.0025
    # gap 0.0020: within 5 % of the width (0.0025), not of the half-width (0.0012)
    assert harness.greater(near, "d", "zero", margin=0.0032).at_margin
    assert harness.greater(near, "d", "zero", margin=0.056).at_margin  # above the interval
    assert harness.greater_than_all({**near, "far": [-1.0, -1.1, -0.9]}, "d",
                                    ["far", "zero"]).verdict == harness.HOLDS
    assert not harness.greater_than_all({**near, "far": [-1.0, -1.1, -0.9]}, "d",
                                        ["far"]).at_margin
    assert not harness.at_least({"a": [0.9]}, "a", 0.9).at_margin  # n = 1: no interval


def _toy_study(run_seed, margin=0.0):
    return harness.Study(
        name="toy", title="Toy", paper="-", modes={"quick": {"seeds": (0, 1, 2)}},
        run_seed=run_seed,
        claims=[harness.Claim("x_positive", "x > margin", "-",
                              lambda f: harness.at_least(f, "x", margin))])


def test_a_diverging_seed_is_recorded_and_the_study_goes_on(tmp_path):
    from disentangle.train import NonFiniteLossError

    calls = []

    def run_seed(settings, seed, workdir):
        calls.append(seed)
        if seed == 1:
            raise NonFiniteLossError("non-finite loss at step 13; last good checkpoint 10")
        return {"x": 1.0 + seed}

    res = harness.run(_toy_study(run_seed), "quick", tmp_path)
    assert calls == [0, 1, 2]
    assert res["failed_seeds"] == {"1": "non-finite loss at step 13; last good checkpoint 10"}
    assert res["figures"]["x"]["n"] == 2 and res["figures"]["x"]["mean"] == 2.0
    assert res["per_seed"]["1"] == {}
    report = (tmp_path / "report.md").read_text()
    assert "Failed seeds, left out of every interval" in report and "seed 1: non-finite" in report
    # the divergence is deterministic: a rerun does not train seed 1 again
    again = harness.run(_toy_study(run_seed), "quick", tmp_path)
    assert calls == [0, 1, 2] and again["failed_seeds"] == res["failed_seeds"]
    # any other error stops the study (a bug is not a result)
    with pytest.raises(ZeroDivisionError):
        harness.run(_toy_study(lambda s, seed, w: {"x": 1 / 0}), "quick", tmp_path / "b")


def test_rejudge_applies_the_current_claims_without_training(tmp_path):
    calls = []
    run_seed = lambda s, seed, w: calls.append(seed) or {"x": 0.5 + 0.01 * seed}
    harness.main(_toy_study(run_seed), ["--quick", "--out", str(tmp_path)])
    assert json.loads((tmp_path / "results.json").read_text())["claims"][0]["verdict"] == \
        harness.HOLDS
    harness.main(_toy_study(run_seed, margin=0.6), ["--rejudge", "--out", str(tmp_path)])
    assert calls == [0, 1, 2]
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["claims"][0]["verdict"] == harness.FAILS and "vs 0.6" in res["claims"][0][
        "evidence"]
    assert "**does not hold**" in (tmp_path / "report.md").read_text()
    with pytest.raises(SystemExit):
        harness.main(_toy_study(run_seed), ["--rejudge"])  # needs --out
    with pytest.raises(Exception, match="does not exist"):
        harness.main(_toy_study(run_seed), ["--rejudge", "--out", str(tmp_path / "none")])
