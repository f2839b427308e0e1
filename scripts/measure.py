#!/usr/bin/env python3
"""Runs a command and prints one JSON line: its wall time and the peak resident memory of the
largest process it waited for (the command or any descendant it reaped), from getrusage."""
import json
import resource
import subprocess
import sys
import time

start = time.monotonic()
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
seconds = time.monotonic() - start
peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"seconds": seconds, "peak_rss_mib": peak_kib / 1024, "exit": done.returncode}))
