"""RL and planning agents of the BRS stack: MR.Q (mrq/) and PLDM (pldm/), with environment adapters."""
