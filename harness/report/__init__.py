"""Reports: the run's JSON record (the complete source) and what is rendered from it, with no torch import."""
