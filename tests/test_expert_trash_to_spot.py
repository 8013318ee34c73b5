"""The trash_to_spot expert fetches the bin from room B through the doorway to the red spot, in-process
(SimCore + the controller's limiters), and the bin stays there while it lets go and backs off."""

from __future__ import annotations

import numpy as np
import pytest

from brs_sim.experts import make_expert
from brs_sim.experts.common import Expert, rollout
from brs_sim.tasks import get_task

SEED = 3
DOOR_Y = 2.0


class Recorder(Expert):
    """Passes every observation to the wrapped expert and keeps (time, phase, base pose, bin pose)."""

    def __init__(self, inner: Expert):
        super().__init__()
        self.inner, self.log = inner, []

    def reset(self, obs):
        self.inner.reset(obs)

    def act(self, obs):
        out = self.inner.act(obs)
        self.phase, self.done = self.inner.phase, self.inner.done
        self.log.append((obs.time, self.phase, obs.base_pose.copy(), obs.object_xyz("trash_bin")))
        return out


@pytest.fixture(scope="module")
def episode():
    rec = Recorder(make_expert("trash_to_spot"))
    # success must hold for 8 s: through the release and the retreat, not just at the set-down
    result = rollout("trash_to_spot", rec, SEED, settle=8.0)
    return result, rec.log


def test_bin_reaches_the_spot_and_stays_after_release(episode):
    result, log = episode
    assert result.success, f"failed in phase {result.phase}"
    assert result.duration < 0.6 * get_task("trash_to_spot").time_limit
    phases = list(dict.fromkeys(phase for _, phase, _, _ in log))
    assert phases == ["navigate", "pre_grasp", "grasp", "lift", "carry", "to_spot", "place", "release",
                      "retreat", "done"]


def test_bin_is_carried_off_the_floor_through_the_doorway(episode):
    _, log = episode
    bins = np.array([b for _, _, _, b in log])
    assert bins[0, 1] > DOOR_Y + 1.0  # starts in room B
    crossing = [b for b in bins if abs(b[1] - DOOR_Y) < 0.2]
    assert crossing, "the bin never passed the doorway"
    assert min(b[2] for b in crossing) > 0.05  # carried, not dragged over the floor
    assert max(abs(b[0]) for b in crossing) < 0.5 - 0.15  # the bin (half-width 0.125) clears the jambs
    bases = np.array([p for _, _, p, _ in log])
    at_door = bases[np.abs(bases[:, 1] - DOOR_Y) < 0.3]
    assert len(at_door) and np.abs(at_door[:, 0]).max() < 0.05  # through the doorway centre both ways


def test_phases_follow_the_plan(episode):
    _, log = episode
    first = {}
    for t, phase, base, b in log:
        first.setdefault(phase, (t, base, b))
    # grasp starts with the base square to the bin wall, the rim ~0.36 m ahead
    _, base, b = first["grasp"]
    assert np.linalg.norm(base[:2] - b[:2]) == pytest.approx(np.hypot(0.36 + 0.12, 0.12), abs=0.03)
    # the bin hangs clear of the floor when the base starts driving
    assert first["carry"][2][2] > 0.06
    # set-down starts with the bin over the spot
    assert np.linalg.norm(first["place"][2][:2] - [1.8, -1.2]) < 0.05
