"""brs_sim: MuJoCo models and the sim node that serves the hardware-layer topic contract."""
