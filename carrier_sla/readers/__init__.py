"""The commands that read a store: report, package, explain, diff, history, what-if."""
