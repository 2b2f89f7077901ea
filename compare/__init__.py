"""hbench: frequentist and Bayesian estimators of multilevel models, side by side on the same simulated data."""

from compare import quiet as _quiet

__version__ = "0.1.0"

_quiet.install()  # before any engine imports its libraries: see compare/quiet.py
