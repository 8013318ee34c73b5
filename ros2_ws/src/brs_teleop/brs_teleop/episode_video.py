"""A camera video of a recorded episode (the per-episode videos of `brs collect` and `brs eval`)."""

from __future__ import annotations

from pathlib import Path


def episode_video(episode_file: Path, out_dir: Path) -> Path:
    """mp4 of an episode's cameras side by side (head, left wrist, right wrist) at the record rate."""
    import imageio.v2 as imageio
    import numpy as np

    from brs_teleop.episode import read_episode

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / (episode_file.name.split(".")[0] + ".mp4")
    with read_episode(episode_file) as ep:
        names = list(ep.cameras)
        rate = float(ep.metadata.get("rate_hz", 10.0))
        with imageio.get_writer(str(path), fps=rate, macro_block_size=8) as writer:
            for k in range(len(ep.time)):
                writer.append_data(np.hstack([np.asarray(ep.cameras[n].color[k]) for n in names]))
    return path
