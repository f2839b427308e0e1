#!/usr/bin/env python3
"""Runs a moto server on 127.0.0.1:PORT until stdin closes (the test process exited).

Tying the server's life to a pipe means no test run leaves a server behind, even when the
test binary is killed.
"""
import os
import sys

from moto.server import ThreadedMotoServer

# moto's Batch (Docker mode) writes container output to CloudWatch Logs with fractional
# millisecond timestamps; AWS's are whole milliseconds and the SDK refuses a fraction.
import moto.batch.models as _batch_models  # noqa: E402

_unix_time_millis = _batch_models.unix_time_millis
_batch_models.unix_time_millis = lambda dt=None: int(_unix_time_millis(dt))

port = int(sys.argv[1])
server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
server.start()
print("ready", flush=True)
# The reader of "ready" may close the pipe: later output (moto's Batch jobs print) goes to stderr.
os.dup2(2, 1)
try:
    sys.stdin.read()
finally:
    server.stop()
