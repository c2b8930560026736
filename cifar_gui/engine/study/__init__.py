"""The study: a plan of the tutorial's four runs, its report, the runs on disk."""
