"""The benchmark: authgraph against bare routes (``make bench``)."""
