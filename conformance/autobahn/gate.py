#!/usr/bin/env python3
"""The Autobahn gate of scripts/autobahn: reads the fuzzingclient reports (index.json) of one or
more targets, fails the cases whose result is not acceptable, and compares every case's
(behavior, behaviorClose) with the committed expected results.

usage: gate.py --expected FILE --cases "1.* 2.*" [--exclude "12.4.*"] [--bless [--note TEXT]]
               [--broken LABEL=REASON]... LABEL=INDEX_JSON...

A case of a target passes when
  - its behavior and behaviorClose are both OK, NON-STRICT or INFORMATIONAL, or
    UNIMPLEMENTED where the expected file says exactly that (FAILED never passes), and
  - its (behavior, behaviorClose) equals the expected file's entry for it.
A case in the expected file (within --cases, not --exclude'd) that the run lacks fails too, and so
does a case the expected file lacks. --bless first rewrites the expected entries of the selected
cases from the first target (other cases in the file are kept), then gates as usual.
A --broken target (its server did not start, wstest crashed, ...) counts as one failure.

Prints one line per target, the differences, and last `N passed, N failed` (one item per case
and target). Exit status 1 when anything failed."""
import argparse
import fnmatch
import json
import os
import sys
import time

PASS = {"OK", "NON-STRICT", "INFORMATIONAL"}


def case_key(case_id):
    return tuple(int(p) if p.isdigit() else p for p in case_id.split("."))


def selected(case_id, cases, exclude):
    return any(fnmatch.fnmatchcase(case_id, p) for p in cases) and not any(
        fnmatch.fnmatchcase(case_id, p) for p in exclude
    )


def load_index(path):
    """{case id: (behavior, behaviorClose)} of the only agent in a report's index.json."""
    with open(path) as f:
        index = json.load(f)
    results = {}
    for agent_cases in index.values():
        for case_id, r in agent_cases.items():
            results[case_id] = (r.get("behavior", "MISSING"), r.get("behaviorClose", "MISSING"))
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--expected", required=True)
    ap.add_argument("--cases", required=True, help="space-separated case patterns")
    ap.add_argument("--exclude", default="")
    ap.add_argument("--bless", action="store_true")
    ap.add_argument("--note", default="", help="the note written with --bless")
    ap.add_argument("--broken", action="append", default=[])
    ap.add_argument("targets", nargs="*", help="LABEL=INDEX_JSON")
    args = ap.parse_args()
    cases = args.cases.split()
    exclude = args.exclude.split()

    runs = []
    passed = failed = 0
    for item in args.broken:
        label, _, reason = item.partition("=")
        print("autobahn %s: FAILED: %s" % (label, reason))
        failed += 1
    for item in args.targets:
        label, _, path = item.partition("=")
        try:
            runs.append((label, load_index(path)))
        except (OSError, ValueError) as e:
            print("autobahn %s: FAILED: no readable report (%s)" % (label, e))
            failed += 1

    expected_doc = {"cases": {}}
    if os.path.exists(args.expected):
        with open(args.expected) as f:
            expected_doc = json.load(f)
    elif not args.bless:
        print("autobahn: no expected file %s (run with --bless to write it)" % args.expected)
    expected_all = expected_doc.setdefault("cases", {})

    if args.bless and runs:
        label, results = runs[0]
        for case_id in [c for c in expected_all if selected(c, cases, exclude)]:
            del expected_all[case_id]
        for case_id, (b, bc) in results.items():
            if selected(case_id, cases, exclude):
                expected_all[case_id] = {"behavior": b, "behaviorClose": bc}
        expected_doc["cases"] = {k: expected_all[k] for k in sorted(expected_all, key=case_key)}
        expected_all = expected_doc["cases"]
        os.makedirs(os.path.dirname(os.path.abspath(args.expected)), exist_ok=True)
        with open(args.expected, "w") as f:
            # One line per case, so that a change of one case is a one-line diff.
            lines = [
                "  %s: %s" % (json.dumps(c), json.dumps(e, sort_keys=True))
                for c, e in expected_all.items()
            ]
            note = args.note or "blessed by scripts/autobahn --bless from target %s on %s" % (
                label,
                time.strftime("%Y-%m-%d", time.gmtime()),
            )
            f.write(
                '{\n "note": %s,\n "cases": {\n%s\n }\n}\n' % (json.dumps(note), ",\n".join(lines))
            )
        print("autobahn: blessed %d cases from %s into %s" % (len(results), label, args.expected))

    expected = {
        c: (e.get("behavior"), e.get("behaviorClose"))
        for c, e in expected_all.items()
        if selected(c, cases, exclude)
    }
    for label, results in runs:
        results = {c: r for c, r in results.items() if selected(c, cases, exclude)}
        bad = []
        for case_id in sorted(set(results) | set(expected), key=case_key):
            got = results.get(case_id)
            want = expected.get(case_id)
            problems = []
            if got is None:
                problems.append("missing from the run (expected %s/%s)" % want)
            else:
                for name, value, want_value in zip(
                    ("behavior", "behaviorClose"), got, want or (None, None)
                ):
                    if value not in PASS and not (value == "UNIMPLEMENTED" and value == want_value):
                        problems.append("%s %s" % (name, value))
                if want is None:
                    problems.append("not in the expected file (got %s/%s)" % got)
                elif got != want:
                    problems.append("expected %s/%s, got %s/%s" % (want + got))
            if problems:
                bad.append((case_id, problems))
            else:
                passed += 1
        failed += len(bad)
        ok = len(results) + len(set(expected) - set(results)) - len(bad)
        print(
            "autobahn %s: %d cases, %d passed, %d failed%s"
            % (label, ok + len(bad), ok, len(bad), "" if bad else " (matches %s)" % args.expected)
        )
        for case_id, problems in bad[:60]:
            print("  %s: %s" % (case_id, "; ".join(problems)))
        if len(bad) > 60:
            print("  ... and %d more" % (len(bad) - 60))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
