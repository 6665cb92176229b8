"""Report 003, ResNet34d: a baseline ensemble member (the report tuned only B1)."""

from search_spaces._hms import BASELINE, OPTIMISED, hms_spec

SPEC = hms_spec(
    "hms_resnet34d",
    "resnet34d",
    report_config=BASELINE,
    report_variants={"b1_optimised": OPTIMISED},
    report_results={"ensemble_test_kl": 0.41},
    notes="The report gives no single-model KL for ResNet34d: ensemble_test_kl 0.41 is the baseline ensemble "
    "(B0, B1, ResNet34d) it belongs to; its config is the baseline's.",
)
