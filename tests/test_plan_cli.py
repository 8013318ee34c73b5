"""`brs plan data / train / eval` through the real command line, and its errors (exit code 2)."""

import json
import subprocess
import sys

import pytest
import torch

from brs.cli import main


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("plan") / "tiny"
    rc = main(["plan", "data", "--out", str(out), "--episodes", "200", "--length", "20", "--quality", "expert",
               "--img-size", "16", "--max-step", "0.08", "--seed", "0"])
    assert rc == 0 and out.with_suffix(".npz").is_file() and out.with_suffix(".json").is_file()
    return out


def test_train_eval_round_trip(dataset, tmp_path, capsys):
    ck = tmp_path / "gcbc.pt"
    rc = main(["plan", "train", "--method", "gcbc", "--data", str(dataset), "--out", str(ck), "--steps", "400",
               "--seed", "0", "--channels", "16", "--hidden", "64", "--threads", "1"])
    assert rc == 0 and ck.is_file()
    assert torch.load(ck, weights_only=True)["method"] == "gcbc"
    res = tmp_path / "eval.json"
    rc = main(["plan", "eval", "--checkpoint", str(ck), "--episodes", "10", "--max-episode-steps", "30",
               "--json", str(res), "--seed", "100"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "gcbc" in printed and "random" in printed and "95% CI" in printed
    r = json.loads(res.read_text())["results"]
    assert r["gcbc"]["episodes"] == 10
    assert r["gcbc"]["success_rate"] >= r["random"]["success_rate"] + 0.5
    lo, hi = r["gcbc"]["ci95"]
    assert lo <= r["gcbc"]["success_rate"] <= hi


def test_pldm_and_gciql_train_and_eval_on_an_unseen_layout(dataset, tmp_path):
    for method in ("pldm", "gciql"):
        ck = tmp_path / f"{method}.pt"
        assert main(["plan", "train", "--method", method, "--data", str(dataset) + ".npz", "--out", str(ck),
                     "--steps", "3", "--channels", "4", "--hidden", "16", "--seq-len", "2"]) == 0
        res = tmp_path / f"{method}.json"
        assert main(["plan", "eval", "--checkpoint", str(ck), "--episodes", "2", "--max-episode-steps", "3",
                     "--layout", "horizontal,0.5,0.3,0.2", "--json", str(res)]) == 0
        out = json.loads(res.read_text())
        assert out["layout"]["wall_orientation"] == "horizontal" and out["layout"]["door_center"] == 0.3
        assert out["results"][method]["episodes"] == 2


def test_missing_and_bad_files_exit_2_naming_the_file(dataset, tmp_path, capsys):
    missing = tmp_path / "nope"
    assert main(["plan", "train", "--method", "gcbc", "--data", str(missing), "--out", str(tmp_path / "x.pt"),
                 "--steps", "1"]) == 2
    assert "nope.npz" in capsys.readouterr().err
    broken = tmp_path / "broken"
    broken.with_suffix(".npz").write_bytes(b"garbage")
    broken.with_suffix(".json").write_text("{}")
    assert main(["plan", "train", "--method", "pldm", "--data", str(broken), "--out", str(tmp_path / "x.pt"),
                 "--steps", "1"]) == 2
    assert "broken.npz" in capsys.readouterr().err
    assert main(["plan", "eval", "--checkpoint", str(tmp_path / "absent.pt")]) == 2
    assert "absent.pt" in capsys.readouterr().err
    # a real file that is no checkpoint, through the installed `brs` executable
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00not a torch file")
    p = subprocess.run([sys.executable, "-m", "brs.cli", "plan", "eval", "--checkpoint", str(bad)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert "bad.pt" in p.stderr and "not a valid checkpoint" in p.stderr
    # a valid torch file with the wrong content
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    assert main(["plan", "eval", "--checkpoint", str(tmp_path / "other.pt")]) == 2
    assert "other.pt" in capsys.readouterr().err


def test_eval_of_a_plain_pldm_checkpoint_needs_max_step(tmp_path, capsys):
    from rl_agents.pldm import PLDM, PLDMConfig, save_checkpoint

    ck = tmp_path / "plain.pt"
    save_checkpoint(ck, PLDM(PLDMConfig(img_size=16, channels=4, hidden=16, latent_dim=4)), 0)  # no method/meta
    assert main(["plan", "eval", "--checkpoint", str(ck), "--episodes", "1", "--max-episode-steps", "2"]) == 2
    assert "plain.pt" in capsys.readouterr().err
    res = tmp_path / "r.json"
    assert main(["plan", "eval", "--checkpoint", str(ck), "--episodes", "1", "--max-episode-steps", "2",
                 "--max-step", "0.08", "--json", str(res)]) == 0
    assert json.loads(res.read_text())["results"]["pldm"]["episodes"] == 1
