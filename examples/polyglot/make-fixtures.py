#!/usr/bin/python3
"""Writes fixtures/<language>/*.json: every case in cases/ once per implementation of the IVR.

The four scripts must behave identically, so they share one set of test cases. A case is a
fixture without "pbxcore_fixture" and "script" (so `pbx replay` does not take it for one); this
adds both, once per script. `pbx replay` has no option to swap the script of a fixture, hence
the generated copies. Run it after changing a case; tests/integration/test_examples.py fails
when the copies are out of date.

    python3 examples/polyglot/make-fixtures.py          # rewrite the copies
    python3 examples/polyglot/make-fixtures.py --check  # exit 1 if they differ from the cases
"""

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = {"bash": "ivr.sh", "python": "ivr.py", "perl": "ivr.pl", "node": "ivr.js"}


def generated() -> dict[Path, str]:
    out = {}
    for case_file in sorted((HERE / "cases").glob("*.json")):
        case = json.loads(case_file.read_text(encoding="utf-8"))
        for language, script in SCRIPTS.items():
            fixture = {"pbxcore_fixture": 1, "name": f"[{language}] {case['name']}",
                       "script": f"../../{script}"}
            fixture.update((k, v) for k, v in case.items() if k != "name")
            text = json.dumps(fixture, indent=2, ensure_ascii=False) + "\n"
            out[HERE / "fixtures" / language / case_file.name] = text
    return out


def main() -> int:
    wanted = generated()
    present = set((HERE / "fixtures").rglob("*.json"))
    stale = [p for p, text in wanted.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
    extra = sorted(present - set(wanted))
    if "--check" in sys.argv[1:]:
        for path in stale + extra:
            print(f"out of date: {path.relative_to(HERE)}", file=sys.stderr)
        return 1 if stale or extra else 0
    for path in extra:
        path.unlink()
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(wanted[path], encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
