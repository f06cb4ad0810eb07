"""Data on disk: the official PSS layout, the PSS-Synth generator, checks and grouping."""
