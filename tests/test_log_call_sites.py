"""No call site logs at two severities.

rclpy remembers the severity of each logging call site (file, function, line) and raises
`ValueError: Logger severity cannot be changed between calls` when one site logs at another. A
site that picks its method at run time (`(log.info if ok else log.error)(msg)`) therefore breaks the
second time it goes the other way: that left the episode recorder's ~/stop unanswered after a
disk-write error (walk17 finding 3). Each severity needs a call of its own.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP = {"build", "install", "log", "outputs", "__pycache__", "node_modules"}  # generated, not ours
LEVELS = {"debug", "info", "warn", "warning", "error", "fatal"}


def _logger_methods(node: ast.AST) -> bool:
    """Does the expression name a logging method (`x.info`, `x.error`, ...)?"""
    return any(isinstance(n, ast.Attribute) and n.attr in LEVELS for n in ast.walk(node))


def _mentions_log(node: ast.AST) -> bool:
    return "log" in ast.unparse(node).lower()


def runtime_severity_sites(source: str) -> list[tuple[int, str]]:
    """(line, code) of calls whose logging method or severity is chosen at run time."""
    found = []
    for n in ast.walk(ast.parse(source)):
        if isinstance(n, ast.Call):
            f = n.func
            if isinstance(f, (ast.IfExp, ast.BoolOp, ast.Subscript)) and _logger_methods(f):
                found.append(n)  # (log.info if ok else log.error)(msg), {...}[level](msg)
            elif isinstance(f, ast.Name) and f.id == "getattr" and n.args and _mentions_log(n.args[0]) \
                    and len(n.args) > 1 and not isinstance(n.args[1], ast.Constant):
                found.append(n)  # getattr(logger, level)
            elif isinstance(f, ast.Attribute) and f.attr == "log" and _mentions_log(f.value) \
                    and len(n.args) > 1 and not isinstance(n.args[1], ast.Attribute):
                found.append(n)  # logger.log(msg, severity) with a variable severity
        elif isinstance(n, ast.Assign) and isinstance(n.value, (ast.IfExp, ast.BoolOp)) \
                and _logger_methods(n.value):
            found.append(n)  # log = logger.info if ok else logger.error; log(msg)
    return [(n.lineno, ast.unparse(n)) for n in found]


@pytest.mark.parametrize("code", [
    "(self.get_logger().info if ok else self.get_logger().error)(message)",
    "log = self.log.warning if bad else self.log.info",
    "{0: logger.info, 1: logger.error}[level](text)",
    "getattr(self.get_logger(), level)(text)",
    "self.get_logger().log(text, severity)",
])
def test_the_check_finds_runtime_severities(code):
    assert runtime_severity_sites(code), code


def test_the_check_leaves_one_severity_per_call_alone():
    code = ("if ok:\n    self.get_logger().info(m)\nelse:\n    self.get_logger().error(m)\n"
            "self.get_logger().log(m, LoggingSeverity.WARN)\nx = a.name if b else c\n"
            "getattr(self.log, 'info')(m)\n")
    assert runtime_severity_sites(code) == []


def test_no_call_site_logs_at_two_severities():
    bad, scanned = [], 0
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).parts[:-1]
        if SKIP & set(parts) or any(p in (".git", ".venv") or p.startswith(".tmp") for p in parts):
            continue
        scanned += 1
        for line, code in runtime_severity_sites(path.read_text()):
            bad.append(f"{path.relative_to(ROOT)}:{line}: {code}")
    assert scanned > 200, f"only {scanned} files scanned under {ROOT}"
    assert not bad, "logging method chosen at run time (rclpy allows one severity per call site; " \
                    "write one call per level):\n" + "\n".join(bad)
