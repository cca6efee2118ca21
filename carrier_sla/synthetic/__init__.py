"""The synthetic data generator used by the demo, the tests and the benchmarks."""
