"""The command line: one module per group of commands.

app.py holds the ``sandbench`` group and ``main``, the one handler that turns a
SandbenchError into its message and exit code; common.py what commands share; run.py
``run``, ``report`` and ``summary``; doctor.py ``doctor`` and ``gc``; cluster.py ``runtimeclasses`` and
``rbac``; image.py ``image build``; nightly.py ``compare``, ``history`` and ``examples``; export.py
``export`` and ``push``; schema.py ``schema``; summary.py the table printed at the end of a run.
"""

from __future__ import annotations

from sandbench.cli.app import cli, main

__all__ = ["cli", "main"]
