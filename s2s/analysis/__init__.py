"""Analysis: speed figures (``s2s bench``), the cell x attention grid, the experiment log, plots,
hidden states read as an automaton, corpus statistics and the least likely training pairs."""
