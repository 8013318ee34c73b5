"""The bimanual_box expert solves its task in-process (SimCore + the controller's limiters): it
really carries the box squeezed between both hands, and the box stays on the table after release
while the robot backs off, the can and the block on the table untouched."""

from __future__ import annotations

import numpy as np

from brs_sim.experts import make_expert
from brs_sim.experts.common import rollout

SEED = 3


class Probe:
    """Wraps the expert: records phases and, while carrying, the box and both hands (measured FK)."""

    def __init__(self, expert):
        self.expert = expert
        self.phases: list[str] = []
        self.carried: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.first = self.last = None

    def __getattr__(self, name):
        return getattr(self.expert, name)

    def reset(self, obs):
        self.expert.reset(obs)

    def act(self, obs):
        out = self.expert.act(obs)
        self.first = self.first or obs
        self.last = obs
        if not self.phases or self.phases[-1] != self.expert.phase:
            self.phases.append(self.expert.phase)
        if self.expert.phase == "carry":
            ik = self.expert.ik
            ik.sync(obs)
            hands = [obs.to_base(ik.ee_pose(side).translation()) for side in ("left", "right")]
            self.carried.append((obs.to_base(obs.object_xyz("box")), *hands))
        return out


def test_box_is_lifted_by_both_hands_and_put_on_the_table():
    probe = Probe(make_expert("bimanual_box"))
    # success = on the table, upright, at rest, not touching the robot, for 5 s: through the retreat
    result = rollout("bimanual_box", probe, SEED, settle=5.0)

    assert result.success, result
    assert result.duration < 35.0
    assert probe.phases == ["approach", "squat", "pre_grasp", "grasp", "lift", "carry", "place",
                            "release", "retreat", "done"]
    for name in ("can_1", "block_1"):
        assert np.linalg.norm(probe.last.object_xyz(name) - probe.first.object_xyz(name)) < 0.01
    assert len(probe.carried) > 50
    for box, left, right in probe.carried:
        assert box[2] > 0.85  # off the floor (0.1), above the table top while driving
        assert right[1] < box[1] < left[1]  # between the hands ...
        assert left[1] - right[1] < 0.30 + 2 * 0.022 + 0.01  # ... which press on its faces 0.30 apart
        assert abs(left[2] - right[2]) < 0.02 and abs((left[2] + right[2]) / 2 - box[2]) < 0.12
