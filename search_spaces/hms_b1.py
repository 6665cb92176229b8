"""Report 003, EfficientNet-B1: the ensemble member the report tuned (Table 1)."""

from search_spaces._hms import BASELINE, OPTIMISED, hms_spec

SPEC = hms_spec(
    "hms_b1",
    "efficientnet_b1",
    report_config=OPTIMISED,
    report_variants={"baseline": BASELINE},
    report_results={"test_kl": 0.41, "ensemble_test_kl": 0.34},
    report_variant_results={"baseline": {"test_kl": 0.46}},
    notes="test_kl: B1 5-fold with datawide normalisation 0.41 (baseline 0.46); the final ensemble 0.34.",
)
