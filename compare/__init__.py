"""hbench: frequentist and Bayesian estimators of multilevel models, side by side on the same simulated data."""

__version__ = "0.1.0"
