"""The inputs: record schemas, reading and checking input files, duplicates, excusals, the spill."""
