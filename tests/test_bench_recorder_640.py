"""brs_bench.recorder_640's camera player renders true 640x480 sim frames of the spec cameras'
view (not an upsampled 320x240), with the intrinsics its camera_info says."""

from __future__ import annotations

import warnings

import numpy as np

from brs_bench.recorder_640 import render_poses, sized_cameras
from brs_common import robot_spec as spec
from brs_common.convert import make_camera_info


def test_the_player_renders_the_spec_cameras_at_640x480():
    frames = render_poses(((640, 480), (320, 240)), poses=1)
    big, small = frames[(640, 480)][0], frames[(320, 240)][0]
    assert set(big) == set(spec.CAMERAS)
    for name in spec.CAMERAS:
        rgb, depth = big[name]
        assert rgb.shape == (480, 640, 3) and rgb.dtype == np.uint8
        assert depth.shape == (480, 640) and depth.dtype == np.float32
        # the same view as the sim's 320x240 camera: 2x2 blocks average to its depth
        with warnings.catch_warnings():  # blocks of sky: all NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            pooled = np.nanmedian(depth.reshape(240, 2, 320, 2).transpose(0, 2, 1, 3).reshape(240, 320, 4), axis=2)
        valid = np.isfinite(pooled) & np.isfinite(small[name][1])
        assert valid.mean() > 0.5
        assert np.median(np.abs(pooled[valid] - small[name][1][valid])) < 0.01
        # ... and not a nearest-neighbour upsampling of it
        assert not np.array_equal(rgb[::2, ::2], rgb[1::2, 1::2])
    info = make_camera_info(sized_cameras(640, 480)["head"])
    small_info = make_camera_info(spec.CAMERAS["head"])
    assert (info.width, info.height) == (640, 480)
    assert info.k[0] == 2 * small_info.k[0]  # same field of view, twice the focal length in pixels
