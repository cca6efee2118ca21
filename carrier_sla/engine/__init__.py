"""The engine: evaluating records, aggregating cells, statistics, verdicts, remedies and the run itself."""
