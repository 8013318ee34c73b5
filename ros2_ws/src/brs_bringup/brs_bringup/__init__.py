"""brs_bringup: the graph layer of the BRS stack, below every package that starts or drives a graph.

graph (the one description of the node graph), runner (the embedded launcher, `spawn_node`),
graph_client (an rclpy client for tools), episodes (the episode driver of `brs collect` and
`brs eval`) and collect (the scripted-expert collection). It imports brs_common and brs_sim only;
docs/architecture.md has the package layering.
"""
