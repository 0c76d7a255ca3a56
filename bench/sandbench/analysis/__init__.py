"""The pure numbers: statistics, the significance test, verdicts, thresholds, host drift and
change points.

Nothing here reads files or knows a backend; everything takes arrays or rows and returns
numbers, so each function can be tested on hand-computed cases.
"""
