"""brs: the top of the BRS stack (launch file, config, the brs CLI, make bench, demo nodes); nothing imports it.

The graph description, runner, graph client and episode driver are in brs_bringup."""
