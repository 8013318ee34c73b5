"""rl_agents.mrq.compare: our eval curves beside the authors' results file."""

from __future__ import annotations

import json

import pytest

from rl_agents.mrq import compare

REFERENCE = """Env: Dmc-cartpole-balance
Timestep\tSeed 0\tSeed 1
0\t100\t200
5000\t300\t500
Env: Gym-Hopper-v4
Timestep\tSeed 0\tSeed 1
5000\t10\t30
"""


def _run(folder, env, seed, returns):
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"env": env, "seed": seed}))
    (folder / "eval.csv").write_text("step,return,wall_s,steps_per_s\n"
                                     + "".join(f"{s},{r},1.0,1.0\n" for s, r in returns.items()))
    return folder


def test_rows_pair_our_seeds_with_the_reference_at_the_same_steps(tmp_path):
    ref_file = tmp_path / "ref.txt"
    ref_file.write_text(REFERENCE)
    reference = compare.parse_reference(ref_file)
    assert sorted(reference) == ["Dmc-cartpole-balance", "Gym-Hopper-v4"]
    runs = [_run(tmp_path / "a", "dmc/cartpole-balance", 0, {5000: 350.0, 7500: 1.0}),
            _run(tmp_path / "b", "dmc/cartpole-balance", 1, {5000: 450.0}),
            _run(tmp_path / "c", "gym/Hopper-v5", 0, {5000: 20.0})]
    rows = compare.comparison_rows(runs, reference)
    balance = {r["step"]: r for r in rows if r["env"] == "dmc/cartpole-balance"}
    assert balance[5000]["ours_mean"] == 400.0 and balance[5000]["ours_std"] == 50.0
    assert balance[5000]["ref_mean"] == 400.0 and balance[5000]["ref_std"] == 100.0
    assert balance[5000]["seeds"] == [0, 1]
    assert balance[7500]["ref_mean"] is None and balance[7500]["n"] == 1  # no reference point there
    hopper = next(r for r in rows if r["env"] == "gym/Hopper-v5")
    assert hopper["reference_env"] == "Gym-Hopper-v4" and hopper["ref_mean"] == 20.0
    table = compare.markdown(rows)
    assert "| dmc/cartpole-balance / Dmc-cartpole-balance | 5,000 | 400 ± 50 (0, 1) | 400 ± 100 |" in table
    out = tmp_path / "curves.png"
    compare.plot(rows, reference, out)
    assert out.stat().st_size > 1000


def test_cli_names_a_missing_file(tmp_path, capsys):
    assert compare.main([str(tmp_path / "nope"), "--reference", str(tmp_path / "ref.txt")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("env", ["atari/Pong", "cheetah-run"])
def test_unknown_suites_are_refused(env):
    with pytest.raises(ValueError):
        compare.reference_name(env)
