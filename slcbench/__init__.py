"""slcbench: benchmarks for Single Logit Classification (Keren, Sabato & Schuller, ICDM 2018)."""

__version__ = "0.1.0"
