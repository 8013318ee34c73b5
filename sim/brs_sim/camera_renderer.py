"""Offscreen RGB-D rendering of the robot's cameras: one OpenGL pass gives colour and metric depth.

mujoco.Renderer renders twice for RGB + depth (once per buffer). Here one mjr_render fills both
buffers and both are read back, which halves the render cost of an RGB-D camera.
Depth is the z-distance along the optical axis in metres (REP 118); invalid pixels are NaN.
"""

from __future__ import annotations

import mujoco
import numpy as np
from mujoco.rendering.classic import gl_context

from brs_common.robot_spec import CAMERAS, Camera


class RgbdRenderer:
    """Renders every spec camera of a model. Create and use it from one thread (GL context)."""

    def __init__(self, model: mujoco.MjModel, cameras: tuple[Camera, ...] | None = None):
        self.model = model
        self.cameras = tuple(cameras if cameras is not None else CAMERAS.values())
        width = max(c.width for c in self.cameras)
        height = max(c.height for c in self.cameras)
        if width > model.vis.global_.offwidth or height > model.vis.global_.offheight:
            raise ValueError(
                f"cameras need a {width}x{height} offscreen buffer; the model has "
                f"{model.vis.global_.offwidth}x{model.vis.global_.offheight} (<visual><global offwidth/offheight>)"
            )
        self._camera_ids = {}
        for cam in self.cameras:
            cam_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, cam.frame)
            if cam_id < 0:
                raise ValueError(f"model has no camera named {cam.frame!r} (spec camera {cam.name!r})")
            self._camera_ids[cam.name] = cam_id
        self._gl = gl_context.GLContext(width, height)
        self._gl.make_current()
        self._context = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_150.value)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN.value, self._context)
        self._context.readDepthMap = mujoco.mjtDepthMap.mjDEPTH_ZEROFAR
        self._scene = mujoco.MjvScene(model, maxgeom=10000)
        self._option = mujoco.MjvOption()
        self._perturb = mujoco.MjvPerturb()
        self._mjcam = mujoco.MjvCamera()
        self._mjcam.type = mujoco.mjtCamera.mjCAMERA_FIXED
        # Reversed-Z projection constants (float32 like glFrustum), see depth_from_buffer.
        extent = model.stat.extent
        near = np.float32(model.vis.map.znear * extent)
        far = np.float32(model.vis.map.zfar * extent)
        c = -(far + near) / (far - near)
        d = -(np.float32(2) * far * near) / (far - near)
        self._c = float(np.float32(-0.5) * c - np.float32(0.5))
        self._d = float(np.float32(-0.5) * d)
        self._buffers = {
            cam.name: (np.empty((cam.height, cam.width, 3), np.uint8), np.empty((cam.height, cam.width), np.float32))
            for cam in self.cameras
        }

    def render(self, data: mujoco.MjData, camera: str) -> tuple[np.ndarray, np.ndarray]:
        """Colour (H, W, 3) uint8 and depth (H, W) float32 metres (NaN outside [near, far]).

        The returned arrays are new; internal buffers are reused between calls.
        """
        cam = CAMERAS[camera]
        rgb_buf, depth_buf = self._buffers[camera]
        self._gl.make_current()
        self._mjcam.fixedcamid = self._camera_ids[camera]
        mujoco.mjv_updateScene(self.model, data, self._option, self._perturb, self._mjcam,
                               mujoco.mjtCatBit.mjCAT_ALL.value, self._scene)
        rect = mujoco.MjrRect(0, 0, cam.width, cam.height)
        mujoco.mjr_render(rect, self._scene, self._context)
        mujoco.mjr_readPixels(rgb_buf, depth_buf, rect, self._context)
        # OpenGL rows start at the bottom.
        rgb = np.ascontiguousarray(rgb_buf[::-1])
        depth = self.depth_from_buffer(depth_buf[::-1])
        depth[(depth < cam.near) | (depth > cam.far)] = np.nan
        return rgb, depth

    def depth_from_buffer(self, buffer: np.ndarray) -> np.ndarray:
        """Undo the reversed-Z perspective projection: window depth -> metres along the axis."""
        return (self._d / (buffer.astype(np.float64) + self._c)).astype(np.float32)

    def close(self):
        if self._gl is not None:
            self._gl.make_current()
            self._context.free()
            self._gl.free()
            self._gl = None

    def __del__(self):  # GL resources must go before the interpreter tears down libEGL
        try:
            self.close()
        except Exception:
            pass
