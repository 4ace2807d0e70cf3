"""Descent's grading: nbgrader course configuration, hidden numeric checks, the pipeline."""
