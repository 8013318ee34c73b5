"""brs_common: robot spec, topic names, QoS, message conversions shared by every BRS package."""
