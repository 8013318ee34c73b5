"""Shared test fixtures: DDS isolation per test, process spawning, waiting on conditions."""

from __future__ import annotations

import contextlib
import gc
import os
from pathlib import Path

import pytest

from brs_common import domains
from brs_common.dds import configure_dds

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
configure_dds()


def next_domain() -> int:
    """A ROS_DOMAIN_ID (1..200) that no other test of this run, no other test run on this machine
    and no job (RosSimEnv training, brs rl eval: 201+) uses until `release_domain` (or this
    process's exit). Two checkouts' suites at once had shared domains and seen each other's nodes."""
    return domains.claim(domains.TESTS)


def release_domain(domain: int) -> None:
    """Give a domain from `next_domain` back (its nodes have exited)."""
    domains.release(domain)


@pytest.fixture(autouse=True)
def short_gc_pauses():
    """The device emulators are threads of this process and stand in for hardware, which never
    pauses. A full collection over the whole suite's heap stalled them for up to 1.3 s (measured),
    long enough to trip a driver's serial timeouts. Collect between tests and freeze what
    survives, so a collection during a test only scans the objects that test created."""
    gc.collect()
    gc.freeze()
    yield


@pytest.fixture
def one_torch_thread():
    """One torch intra-op thread for the test (tiny networks on the shared CPU); restored afterwards.
    Use with `pytestmark = pytest.mark.usefixtures("one_torch_thread")`."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def ros_domain(monkeypatch) -> int:
    """A fresh ROS_DOMAIN_ID, set in os.environ for child processes."""
    domain = next_domain()
    monkeypatch.setenv("ROS_DOMAIN_ID", str(domain))
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    yield domain
    release_domain(domain)


@pytest.fixture
def no_ros_setup(monkeypatch):
    """Fail the test if it sets up ROS (an rclpy context, a GraphClient or BackgroundNode node):
    for checks that must come before it, such as a CLI's argument checks."""
    import rclpy

    from brs_bringup import graph_client
    from brs_common import background

    def refuse(*args, **kwargs):
        raise AssertionError("ROS was set up (rclpy init / GraphClient / BackgroundNode) before the check")

    monkeypatch.setattr(rclpy, "init", refuse)
    monkeypatch.setattr(rclpy, "create_node", refuse)
    monkeypatch.setattr(background.BackgroundNode, "__init__", refuse)
    monkeypatch.setattr(graph_client.GraphClient, "__init__", refuse)


@contextlib.contextmanager
def harness_on_new_domain():
    """A RosHarness on a fresh domain for module-scoped fixtures; ROS_DOMAIN_ID is exported for
    the node processes it spawns until the block ends."""
    from rosutil import RosHarness

    domain = next_domain()
    saved = os.environ.get("ROS_DOMAIN_ID")
    os.environ["ROS_DOMAIN_ID"] = str(domain)
    harness = RosHarness(domain)
    try:
        yield harness
    finally:
        harness.close()
        release_domain(domain)
        if saved is None:
            os.environ.pop("ROS_DOMAIN_ID", None)
        else:
            os.environ["ROS_DOMAIN_ID"] = saved


@pytest.fixture
def ros(ros_domain):
    """An in-process rclpy context on the test's own domain, with a helper node and executor.

    Yields a `rosutil.RosHarness`; everything is shut down afterwards.
    """
    from rosutil import RosHarness

    harness = RosHarness(ros_domain)
    try:
        yield harness
    finally:
        harness.close()
