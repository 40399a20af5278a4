"""The machine-code report: every kernel variant fastvae launches, compiled for sm_90 without a
GPU, and its registers, stack, access widths and instructions per element
(``python benchmarks/sass_report.py``; the command is ``report.py`` here)."""
