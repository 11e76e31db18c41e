"""Analysis of networks: mult-add/parameter counting, channel dependency graph, group-parameter optimiser."""
