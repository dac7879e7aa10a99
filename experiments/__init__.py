"""The ``disentangle`` command line (``experiments.cli``) and one module per study."""
