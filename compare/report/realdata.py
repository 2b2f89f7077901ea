"""The report's section for runs over published datasets (compare.realagree): there is no truth to cover, so
the section says how far each engine is from the reference fit of the same data, what each fit took and what
it warned about."""

from __future__ import annotations

import pandas as pd

from compare import realagree
from compare.report.page import Section

TITLE = "Real data: agreement between engines"


def tables(table: pd.DataFrame, manifest: dict) -> dict[str, pd.DataFrame]:
    """The section's tables, by the tables/ name they are written under."""
    agree = realagree.agreement(table, manifest)
    return {
        "realdata_agreement": agree,
        "realdata_agreement_by_engine": realagree.agreement_by_engine(agree),
        "realdata_fits": realagree.fit_outcomes(table),
    }


def section(found: dict[str, pd.DataFrame]) -> Section:
    sec = Section(TITLE, nav="Real data")
    sec.text(
        "Each frequentist engine against lme4 fitted with the same criterion (REML, or ML as lme4-ml): the "
        "difference of each estimate in lme4's SEs, the ratio of the SEs and the difference of the "
        "log-likelihoods; each sampler's posterior means (over its seeds) against rstanarm's, in Monte Carlo SEs "
        "of the difference (sd / sqrt(bulk ESS) per fit). Differences of a few MCSE are Monte Carlo error; "
        "larger ones are different priors (brms's defaults are not rstanarm's) or a sampler in trouble "
        "(see the divergences). An optimiser more than 0.01 SE away, or with a log-likelihood lower by more than "
        "0.01, did not reach lme4's optimum (or lme4 did not reach its)."
    )
    sec.table(
        found["realdata_agreement_by_engine"],
        "agreement per engine (largest difference and where)",
        csv="realdata_agreement_by_engine",
        open_=True,
    )
    sec.table(found["realdata_agreement"], "agreement per dataset, formula and parameter", csv="realdata_agreement")
    sec.table(
        found["realdata_fits"],
        "fit outcomes, runtimes and warnings per dataset and engine",
        csv="realdata_fits",
        open_=True,
    )
    return sec
