"""``sandbench schema``: the JSON Schema of the files a run writes, generated from the models
they are written through (sandbench.formats)."""

from __future__ import annotations

import sys

import click

from sandbench import formats


@click.command(name="schema")
@click.argument("name", type=click.Choice(list(formats.SCHEMAS)))
def schema_command(name: str) -> None:
    """Print the JSON Schema of NAME: run (run.json) or sample (one line of samples.jsonl).

    \b
    sandbench schema run > run.schema.json
    check-jsonschema --schemafile run.schema.json reports/<run-id>/run.json
    """
    sys.stdout.write(formats.schema_text(name))
