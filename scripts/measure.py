#!/usr/bin/env python3
"""Runs a command and prints one JSON line: its wall time and the peak resident memory of the
largest process it waited for (the command or any descendant it reaped), from getrusage. With
MEASURE_STDOUT=FILE the command's stdout goes to FILE (else it is dropped)."""
import json
import os
import resource
import subprocess
import sys
import time

start = time.monotonic()
sink = open(os.environ["MEASURE_STDOUT"], "wb") if os.environ.get("MEASURE_STDOUT") else subprocess.DEVNULL
done = subprocess.run(sys.argv[1:], stdout=sink, stderr=subprocess.DEVNULL)
seconds = time.monotonic() - start
peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"seconds": seconds, "peak_rss_mib": peak_kib / 1024, "exit": done.returncode}))
