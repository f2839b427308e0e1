"""One item of the python-jq example: counts the lines and words of {input} and writes one JSON
line to {output}, shaped by jq (the example's point: the image has both tools)."""

import json
import subprocess
import sys


def main() -> int:
    source, target = sys.argv[1], sys.argv[2]
    lines = words = 0
    with open(source, "rb") as f:
        for line in f:
            lines += 1
            words += len(line.split())
    record = json.dumps({"lines": lines, "words": words, "python": sys.version.split()[0]})
    shaped = subprocess.run(["jq", "-c", "{lines, words, python}"], input=record.encode(), capture_output=True, check=True)
    with open(target, "wb") as f:
        f.write(shaped.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
