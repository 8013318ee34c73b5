"""BRS policy package: point-cloud perception (perception.py, fps.py, perception_node.py) and the
WB-VIMA policy (model, training, inference node)."""
