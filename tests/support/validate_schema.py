#!/usr/bin/python3
"""Validate JSON documents against one of the schemas in proto/.

usage: validate_schema.py SCHEMA [--valid DOC...] [--invalid DOC...]

The schema itself is checked first (draft 2020-12 meta-schema). Every DOC after --valid must
be accepted and every DOC after --invalid must be rejected. Prints one line per document and
exits 0 only when every document behaved as expected; 2 on usage or file errors.

Needs python3-jsonschema (Debian); run it with /usr/bin/python3, not a pyenv interpreter.
"""
import json
import sys

try:
    import jsonschema
except ImportError:
    print("validate_schema: python3-jsonschema is not installed", file=sys.stderr)
    sys.exit(2)


def load(path):
    with open(path, "rb") as f:
        return json.loads(f.read().decode("utf-8"))


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        schema = load(argv[1])
    except (OSError, ValueError) as e:
        print(f"validate_schema: {argv[1]}: {e}", file=sys.stderr)
        return 2
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    validator = cls(schema)
    expect, failures, count = None, 0, 0
    for arg in argv[2:]:
        if arg in ("--valid", "--invalid"):
            expect = arg == "--valid"
            continue
        if expect is None:
            print("validate_schema: say --valid or --invalid before documents",
                  file=sys.stderr)
            return 2
        try:
            doc = load(arg)
        except (OSError, ValueError) as e:
            print(f"validate_schema: {arg}: {e}", file=sys.stderr)
            return 2
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
        count += 1
        if expect and errors:
            failures += 1
            for e in errors:
                where = "/".join(str(p) for p in e.path) or "(root)"
                print(f"FAIL {arg}: rejected at {where}: {e.message}")
        elif not expect and not errors:
            failures += 1
            print(f"FAIL {arg}: accepted, but it must be rejected")
        else:
            why = "" if expect else f" ({errors[0].message[:100]})"
            print(f"ok   {arg}: {'valid' if expect else 'rejected'}{why}")
    print(f"{count} documents, {failures} unexpected")
    return 1 if failures or count == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
