# Two commands for a newcomer: `make demo` (sim bringup demo) and `make test`.
# Both create/update .venv on first use; when it is up to date they start at once.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PKGS := ros2_ws/src/brs_common ros2_ws/src/brs_control ros2_ws/src/brs_bringup ros2_ws/src/brs_teleop ros2_ws/src/brs ros2_ws/src/brs_policy ros2_ws/src/rl_agents ros2_ws/src/brs_bench sim
export MUJOCO_GL ?= egl
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST
export PYTHONUNBUFFERED := 1

.PHONY: demo test bench venv clean

$(STAMP): requirements.txt $(addsuffix /setup.py,$(PKGS))
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps $(addprefix -e ,$(PKGS))
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/brs demo

test: $(STAMP)
	$(PY) -m pytest -q --durations=15 tests  # the slowest tests listed: the suite must stay under 10 min

bench: $(STAMP)
	$(PY) -m pip install --quiet -r requirements-bench.txt  # open3d baseline (needs libusb-1.0-0)
	$(PY) -m brs_bench

clean:
	rm -rf $(VENV) outputs/*
