"""The cost-based optimizer: statistics, estimates, pruning, physical plans. Pure: no I/O."""
