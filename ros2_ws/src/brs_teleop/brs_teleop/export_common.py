"""What the dataset exporters share: picking valid episodes and writing an output folder all or
nothing. Sources are only ever read; outputs are built in a hidden sibling folder and renamed into
place at the end, so a failed or interrupted export leaves no half-written folder behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from brs_teleop import episode as ep_format


class ExportError(ValueError):
    """An export that cannot be done as asked (the message says why; nothing was written)."""


def collect_episodes(source: str | Path, *, skip_incomplete: bool = False) -> list[Path]:
    """The complete, valid episode files of `source` (an episode file or a dataset folder).

    Incomplete `.partial` recordings are refused (listed in the error) unless `skip_incomplete`;
    every complete file must pass `episode.validate_episode`, else all failures are listed.
    """
    source = Path(source)
    if source.is_file():
        partial = source.name.endswith(ep_format.PARTIAL_SUFFIX)
        complete, incomplete = ([], [source]) if partial else ([source], [])
    elif source.is_dir():
        complete, incomplete = ep_format.list_episodes(source)
    else:
        raise ExportError(f"{source}: no such episode file or dataset folder")
    if incomplete and not skip_incomplete:
        names = "\n  ".join(str(p) for p in incomplete)
        raise ExportError(
            f"{len(incomplete)} incomplete episode(s) (a recording that did not finish cleanly):\n"
            f"  {names}\nDelete or move them, or pass --skip-incomplete to export only the "
            "complete episodes.")
    if not complete:
        raise ExportError(f"{source}: no complete episodes (episode_NNNNNN.h5) to export")
    errors = []
    for path in complete:
        try:
            ep_format.validate_episode(path)
        except (ep_format.EpisodeError, OSError) as exc:
            errors.append(str(exc))
    if errors:
        raise ExportError(f"{len(errors)} invalid episode(s):\n  " + "\n  ".join(errors))
    return complete


def check_task_labels(episodes: list[Path], default_task: str, why: str) -> None:
    """Refuse (nothing written) episodes without a task label (empty or blank) unless
    `default_task` (--task) names them; `why` says what the format needs it for."""
    if default_task.strip():
        return
    unlabelled = []
    for path in episodes:
        with ep_format.read_episode(path) as ep:
            if not ep_format.has_task_label(ep.metadata):
                unlabelled.append(path.name)
    if unlabelled:
        raise ExportError(f"{len(unlabelled)} episode(s) have no task label ({', '.join(unlabelled[:5])}"
                          f"{' ...' if len(unlabelled) > 5 else ''}); {why}: pass --task TEXT (used for "
                          "episodes recorded without a task)")


def task_label(metadata, default_task: str) -> str:
    """The episode's task, or `default_task` for an episode recorded without one."""
    return str(metadata["task"]) if ep_format.has_task_label(metadata) else default_task


def check_output_dir(out_dir: str | Path, sources: list[Path], *, overwrite: bool = False) -> Path:
    """Resolved `out_dir` if it may be (re)written: absent, empty, or non-empty with `overwrite`.

    Never a folder that holds a source episode (overwriting it would delete the recordings).
    """
    out = Path(out_dir).resolve()
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} exists and is not a folder")
    for src in sources:
        src = src.resolve()
        if src == out or out in src.parents:
            raise ExportError(f"output folder {out} contains the source episode {src}; "
                              "choose an output folder outside the dataset")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ExportError(f"output folder {out} exists and is not empty; pass --overwrite to "
                          "replace it")
    return out


def _new_sibling(path: Path, tag: str) -> Path:
    """A new empty hidden folder beside `path`, with the mode a plain mkdir gives (umask)."""
    folder = path.parent / f".{path.name}.{tag}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    return folder


@contextlib.contextmanager
def staged_output(out_dir: Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside `out_dir`; on success it replaces `out_dir`
    (whose old content is deleted only after the new one is in place); on any error or
    interrupt it is deleted and `out_dir` is left as it was."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_sibling(out_dir, "tmp")
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if out_dir.exists():
        old = _new_sibling(out_dir, "old")
        os.replace(out_dir, old)  # onto the empty placeholder folder: atomic on POSIX
    os.replace(tmp, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
