"""brs_control: whole-body controller, safety, base kinematics, drivers and device emulators."""
