"""`brs collect` end to end: the collect graph (sim + controller + recorder + expert node) runs
episodes with consecutive seeds, saves complete episode files with the sim's outcome, a video
per episode and summary.json. A tiny fixture expert keeps it fast; the real experts have their
own tests."""

from __future__ import annotations

import json
import os
from pathlib import Path

import imageio.v2 as imageio
import numpy as np

from brs.cli import main as brs_main
from brs_bringup.collect import collect
from brs_teleop.episode import read_episode, validate_episode
from brs_teleop.episode_video import episode_video

FIXTURES = str(Path(__file__).parent / "fixtures")


def test_collect_records_episodes_with_seeds_outcome_and_video(ros_domain, monkeypatch, tmp_path):
    monkeypatch.setenv("PYTHONPATH", FIXTURES + os.pathsep + os.environ.get("PYTHONPATH", ""))
    outcomes = collect("bimanual_box", 2, first_seed=7, output_dir=tmp_path, progress=False, video=episode_video,
                       arguments={"expert_class": "reach_expert:ReachExpert"})
    assert [o.seed for o in outcomes] == [7, 8]
    assert not any(o.success for o in outcomes)  # reaching is not lifting the box
    summary = json.loads((tmp_path / "bimanual_box" / "summary.json").read_text())
    assert [e["seed"] for e in summary["episodes"]] == [7, 8] and summary["success_rate"] == 0.0
    boxes = []
    for o in outcomes:
        validate_episode(o.file)
        with read_episode(o.file) as ep:
            assert ep.metadata["task"] == "bimanual_box" and ep.metadata["seed"] == o.seed
            assert ep.metadata["source"] == "expert" and ep.metadata["success"] == 0
            n = len(ep.time)
            assert n >= 20  # ~10 Hz over the few seconds of the reach
            right1 = list(ep.metadata["action_joints"]).index("right_arm_joint1")
            assert ep.action[-1, right1] > 0.4  # the recorded command is the expert's reach
            boxes.append(np.asarray(ep.cameras["head"].color[0]))
        video = imageio.get_reader(o.video)
        assert video.count_frames() == n
        assert video.get_data(0).shape[1] == 3 * 320  # head, left and right wrist side by side
    assert not np.array_equal(boxes[0], boxes[1])  # another seed, another scene


def test_collect_cli_rejects_bad_arguments(capsys):
    assert brs_main(["collect", "--task", "bimanual_box", "--episodes", "0"]) == 2
    assert "--episodes must be at least 1" in capsys.readouterr().err
    assert brs_main(["collect", "--task", "floor_to_top_shelf", "--max-wait", "11"]) == 2
    assert "--max-wait must be in [0, 10] s; got 11.0" in capsys.readouterr().err
    assert brs_main(["collect", "--task", "bimanual_box", "--max-wait", "1"]) == 2
    assert "--max-wait: the bimanual_box expert has no phases to wait before" in capsys.readouterr().err
