"""A static HTTP server with single-range requests (`Range: bytes=a-b`, RFC 9110), which the stdlib server lacks.

    python -m tests.batch.range_server FOLDER LOG      # prints its port, then serves FOLDER on 127.0.0.1

Every response is appended to LOG as a JSON line {"method", "path", "range", "bytes"}. It runs as its own process: in
the test's process GDAL would hold the GIL during an open while its sidecar probes wait for the server thread.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import sys


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    log_path = os.devnull

    def send_head(self):
        path = self.translate_path(self.path)
        if not os.path.isfile(path):
            self.send_error(404)
            self._log(0)
            return None
        size = os.path.getsize(path)
        handle = open(path, "rb")
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if match:
            first = int(match.group(1))
            last = min(int(match.group(2)) if match.group(2) else size - 1, size - 1)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
            handle.seek(first)
        else:
            first, last = 0, size - 1
            self.send_response(200)
        self.length = last - first + 1
        self.send_header("Content-Length", str(self.length))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if self.command == "HEAD":
            self._log(0)
        return handle

    def copyfile(self, source, destination):
        destination.write(source.read(self.length))
        self._log(self.length)

    def _log(self, sent: int) -> None:
        with open(self.log_path, "a") as log:
            log.write(json.dumps({"method": self.command, "path": self.path, "range": self.headers.get("Range"),
                                  "bytes": sent}) + "\n")

    def log_message(self, *args):
        pass


def main(folder: str, log: str) -> None:
    handler = type("Handler", (RangeHandler,), {"log_path": log})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: handler(*a, directory=folder))
    sys.stdout.write(f"{server.server_address[1]}\n")
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main(*sys.argv[1:3])
