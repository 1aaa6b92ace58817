"""R7 in CI: tests/fuzz/api_fuzz.py against a gateway of its own for ~30 s with a fixed seed
(every route with valid, foreign and malformed ids, mutated query strings, headers and bodies,
raw-socket requests): no 5xx, a JSON error for every 4xx, every answer within 5 s, the gateway
alive, /healthz ok, RSS bounded, no sanitizer report (the asan preset runs this too).
UPMON_API_FUZZ_SECONDS and UPMON_API_FUZZ_SEED override the defaults.
"""
import os
import subprocess
import sys

SRC = os.environ["UPMON_SOURCE_DIR"]


def main():
    seconds = os.environ.get("UPMON_API_FUZZ_SECONDS", "30")
    seed = os.environ.get("UPMON_API_FUZZ_SEED", "20261121")
    rc = subprocess.run([sys.executable, os.path.join(SRC, "tests", "fuzz", "api_fuzz.py"),
                         "--seed", seed, "--seconds", seconds]).returncode
    if rc != 0:
        print("FAIL: api_fuzz exited with %d (the request above is the repro)" % rc,
              file=sys.stderr)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
