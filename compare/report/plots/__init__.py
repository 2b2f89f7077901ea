"""One small module per plot type (rsimsum's forest/zip/nlp/heat files): forest, zipplot, nestloop, power,
scatter, blandaltman, heat (warnings tally), sensitivity, coverage (every interval type), boundary, runtime,
sbc, sbc_ecdf, ppc. Each reads the run's summary (or its long measures, compare.report.measures) or the results
table and returns a matplotlib Figure, or None when the run has nothing to show for it; the newer ones also
return the frame of numbers they draw, which the report writes beside the figure."""
