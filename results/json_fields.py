#!/usr/bin/env python3
"""Prints fields of a loadgen JSON report as a Markdown list, for generated blocks:
`json_fields.py FILE path.to.field[:unit]...` (a path's parts separated by dots)."""
import json
import sys

with open(sys.argv[1]) as f:
    doc = json.load(f)
for spec in sys.argv[2:]:
    path, _, unit = spec.partition(":")
    value = doc
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    shown = f"{value:.1f}" if isinstance(value, float) else str(value)
    print(f"- `{path}`: {shown}{' ' + unit if unit else ''}")
