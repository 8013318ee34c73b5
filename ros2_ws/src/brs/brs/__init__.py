"""brs: bringup of the BRS graph (description, launch file, embedded runner, CLI)."""
