"""The brs CLI loads only the package command being run, and a command whose package cannot be
imported here (a driver computer without torch) says so with exit code 2 instead of breaking
every other command."""

from __future__ import annotations

import subprocess
import sys

import pytest

from brs import cli

PROBE = """
import sys
from brs.cli import main
try:
    main({argv!r})
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
heavy = sorted(m for m in ("torch", "rl_agents.pldm.model", "rl_agents.mrq.agent", "brs_policy.wbvima") if m in sys.modules)
print("HEAVY", heavy)
print("LOADED", sorted(m for m in sys.modules if m.endswith("_cli") or m.endswith(".cli")))
"""


def probe(argv: list[str]) -> tuple[list[str], str]:
    out = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in out.stdout.splitlines() if line.startswith(("HEAVY", "LOADED")))
    return eval(lines["HEAVY"]), lines["LOADED"] + out.stdout  # noqa: S307 (our own repr of a list)


def test_a_package_command_loads_only_its_own_module_and_no_torch():
    heavy, loaded = probe(["record", "--help"])
    assert heavy == [], heavy
    assert "brs_teleop.record_cli" in loaded and "rl_agents.pldm.cli" not in loaded and "brs_policy.train_cli" not in loaded, loaded


def test_the_full_help_lists_every_command_without_importing_torch():
    heavy, out = probe(["--help"])
    assert heavy == [], heavy
    for name in ("bringup", "record", "train", "eval", "plan", "rl", "lmact", "export"):
        assert f"    {name}" in out, out


class _BrokenEntry:
    name = "fake"

    def load(self):
        raise ModuleNotFoundError("No module named 'torch'")


def test_a_command_that_cannot_be_imported_exits_2_with_the_reason(monkeypatch, capsys):
    monkeypatch.setattr(cli, "package_commands", lambda: [_BrokenEntry()])
    assert cli.main(["fake", "--anything", "x:=1"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == ("brs fake: error: needs a module that is not installed here (No module named 'torch'); "
                           "install the full requirements.txt"), err
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    assert "(not available here: No module named 'torch')" in capsys.readouterr().out
    assert cli.main(["graph", "use_sim:=true", "--json"]) == 0  # the other commands still work
