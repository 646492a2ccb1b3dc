#!/usr/bin/env python3
"""Print the README's variable tables from each role's meta/argument_specs.yml.

    python3 scripts/variables-table.py > /tmp/tables.md
"""

import json
import pathlib
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent


def cell(value):
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        text = " ".join(value)
    else:
        text = str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def default(option):
    value = option.get("default")
    if isinstance(value, bool):
        return f"`{json.dumps(value)}`"
    if isinstance(value, (dict, list)):
        text = json.dumps(value)
        return f"`{text}`" if len(text) <= 40 else "see defaults/main.yml"
    return f"`{value}`" if value not in ("", None) else '`""`'


def main():
    for spec_file in sorted(ROOT.glob("roles/*/meta/argument_specs.yml")):
        role = spec_file.parent.parent.name
        main_spec = yaml.safe_load(spec_file.read_text())["argument_specs"]["main"]
        print(f"### {role}\n\n{cell(main_spec['short_description'])}.\n")
        print("| variable | type | default | description |\n| --- | --- | --- | --- |")
        for name, option in main_spec["options"].items():
            kind = option["type"] + (f" of {option['elements']}" if option.get("elements") else "")
            if option.get("choices"):
                kind += " (" + ", ".join(map(str, option["choices"])) + ")"
            secret = " **Secret.**" if option.get("no_log") else ""
            print(f"| `{name}` | {kind} | {default(option)} | {cell(option['description'])}{secret} |")
        print()


if __name__ == "__main__":
    sys.exit(main())
