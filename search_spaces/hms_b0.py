"""Report 003, EfficientNet-B0: a baseline ensemble member (the report tuned only B1)."""

from search_spaces._hms import BASELINE, OPTIMISED, hms_spec

SPEC = hms_spec(
    "hms_b0",
    "efficientnet_b0",
    report_config=BASELINE,
    report_variants={"b1_optimised": OPTIMISED},
    report_results={"ensemble_test_kl": 0.41},
    notes="The report gives no single-model KL for EfficientNet-B0: ensemble_test_kl 0.41 is the baseline ensemble "
    "(B0, B1, ResNet34d) it belongs to; its config is the baseline's.",
)
