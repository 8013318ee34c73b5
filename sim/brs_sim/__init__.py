"""brs_sim: MuJoCo models, the sim node that serves the hardware-layer topic contract, tasks and experts."""

import os

# Headless rendering by default (cameras, videos). MuJoCo picks its GL backend when it is first
# imported, so this must run before any `import mujoco` of the package.
os.environ.setdefault("MUJOCO_GL", "egl")
