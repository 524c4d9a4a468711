#!/usr/bin/env python3
"""A Djinn CI webhook receiver with the Python standard library only.

Usage: python3 receiver.py HOST:PORT SECRET_FILE   (port 0: any free port)

For each POST it checks X-Djinn-CI-Signature (`sha256=` and the hex HMAC-SHA256 of the raw
body, keyed with the webhook's secret) and, when the Standard Webhooks headers are there,
those too; it answers 204 when they hold and 401 otherwise, before doing any work: the work
goes to a queue, and a delivery seen before (same X-Djinn-CI-Delivery) is answered 204 again
but not queued twice. One line per request goes to stdout (the repository's test reads it).
docs/RECEIVING.md explains each step.
"""

import base64
import collections
import hashlib
import hmac
import json
import queue
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 16 * 1024 * 1024  # refuse larger bodies (413) before reading them, as `listen` does
TOLERANCE = 5 * 60  # seconds a webhook-timestamp may lie from our clock, either way
MAX_STANDARD_SIGNATURES = 16  # v1 entries checked at most, so a forged header costs little
REMEMBERED = 10_000  # delivery ids kept for de-duplication


def load_secret(path):
    """The secret as `djinn-hooks --secret-file` reads it: one trailing newline dropped."""
    with open(path, "rb") as file:
        secret = file.read()
    secret = secret.removesuffix(b"\n").removesuffix(b"\r")
    if not secret:
        sys.exit(f"receiver.py: {path} is empty")
    return secret


def standard_key(secret):
    """The Standard Webhooks key: a `whsec_<base64>` secret decoded, any other as it is."""
    if secret.startswith(b"whsec_"):
        return base64.b64decode(secret[len(b"whsec_"):], validate=True)
    return secret


def djinn_signature_ok(secret, body, header):
    expected = b"sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest().encode()
    return hmac.compare_digest(expected, header.encode("latin-1"))


def standard_signature_ok(key, msg_id, timestamp, body, header):
    if not timestamp.isascii() or not timestamp.isdigit():
        return False
    if abs(time.time() - int(timestamp)) > TOLERANCE:
        return False  # too old or too far ahead: a replay, or a clock to fix
    signed = f"{msg_id}.{int(timestamp)}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    entries = [e for e in header.split(" ") if e.startswith("v1,")][:MAX_STANDARD_SIGNATURES]
    # Every entry is compared (no early exit), each in constant time.
    matches = [hmac.compare_digest(expected, e[3:].encode("latin-1")) for e in entries]
    return any(matches)


class Seen:
    """The last REMEMBERED delivery ids: a redelivery or a retry is acknowledged, not redone."""

    def __init__(self):
        self.ids = collections.OrderedDict()
        self.lock = threading.Lock()

    def first_time(self, delivery_id):
        with self.lock:
            if delivery_id in self.ids:
                return False
            self.ids[delivery_id] = None
            if len(self.ids) > REMEMBERED:
                self.ids.popitem(last=False)
            return True


def work(jobs):
    """The slow part, off the request: here it only reads the payload and says so."""
    while True:
        event, delivery_id, body = jobs.get()
        try:
            payload = json.loads(body)
        except ValueError as error:
            print(f"not processed {event} {delivery_id}: {error}", flush=True)
            continue
        print(f"processed {event} {delivery_id} ({len(payload)} top-level keys)", flush=True)


def handler(secret, seen, jobs):
    key = standard_key(secret)

    class Hook(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the sender reuses its connections
        timeout = 30  # seconds a client may stall mid-request before its connection is closed

        def do_POST(self):
            length = self.headers.get("Content-Length", "")
            if not length.isdigit():
                return self.answer(411)
            if int(length) > MAX_BODY:
                self.close_connection = True
                return self.answer(413)
            body = self.rfile.read(int(length))  # the raw bytes: verify before parsing

            event = self.headers.get("X-Djinn-CI-Event", "-")
            delivery_id = self.headers.get("X-Djinn-CI-Delivery", "-")
            ok = djinn_signature_ok(secret, body, self.headers.get("X-Djinn-CI-Signature", ""))
            standard = "absent"
            if "webhook-signature" in self.headers:
                standard_ok = standard_signature_ok(
                    key,
                    self.headers.get("webhook-id", ""),
                    self.headers.get("webhook-timestamp", ""),
                    body,
                    self.headers.get("webhook-signature", ""),
                )
                standard = "ok" if standard_ok else "BAD"
                ok = ok and standard_ok
            if not ok:
                print(f"{event} {delivery_id} BAD SIGNATURE (standard webhooks {standard}) -> 401",
                      flush=True)
                return self.answer(401)
            new = seen.first_time(delivery_id)
            print(f"{event} {delivery_id} signature ok (standard webhooks {standard}) "
                  f"{'new' if new else 'duplicate'} -> 204", flush=True)
            if new:
                jobs.put((event, delivery_id, body))
            self.answer(204)

        def answer(self, status):
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass  # one line per request is printed above; the secret is never printed

    return Hook


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: python3 receiver.py HOST:PORT SECRET_FILE")
    host, port = sys.argv[1].rsplit(":", 1)
    secret = load_secret(sys.argv[2])
    jobs = queue.Queue()
    threading.Thread(target=work, args=(jobs,), daemon=True).start()
    server = ThreadingHTTPServer((host, int(port)), handler(secret, Seen(), jobs))
    print(f"listening on http://{host}:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
