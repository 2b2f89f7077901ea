"""One small function per plot type (rsimsum's zip/lolly/heat files); each reads metric or result
tables and returns a matplotlib Figure, or None when the run has nothing to show for it."""
