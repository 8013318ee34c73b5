"""brs_teleop: JoyLo teleoperation, calibration, keyboard input and the episode recorder."""
