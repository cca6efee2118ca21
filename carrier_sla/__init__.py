"""carrier_sla: checks ILEC/CLEC wholesale performance data against a Performance Assurance
Plan and writes a Parquet audit store."""

__version__ = "0.1.0"
