#!/usr/bin/env python3
"""The second load generator of `cargo xtask bench`: CPython's `ssl` module (its own build of
the client, its own ClientHello, blocking sockets on threads), independent of the Rust one.

Each thread makes one connection after another: TLS 1.3 handshake with SNI, one HTTP/1.1
request, the answer read to its end, close. Names are taken in order from a file (one per
line), spread over the threads.

Prints `measuring` when the measured window starts (after a warm-up), then `done N FAILED`
at its end with the connections completed inside it, so that the caller can read the server's
CPU time at those two moments. With --once: one connection per name, all of them measured.
"""

import argparse
import itertools
import socket
import ssl
import sys
import threading
import time


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--addr", required=True, help="host:port")
    p.add_argument("--names", required=True, help="file of server names, one per line")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=0.7)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--once", action="store_true", help="one connection per name, then stop")
    a = p.parse_args()
    host, port = a.addr.rsplit(":", 1)
    with open(a.names) as f:
        names = [l.strip() for l in f if l.strip()]
    if not names:
        print(f"{a.names}: no server names", file=sys.stderr)
        return 2

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3

    counter = itertools.count()  # next() is atomic under the GIL
    lock = threading.Lock()
    state = {"measuring": a.once, "running": True, "done": 0, "failed": 0}

    def one(name: str) -> bool:
        try:
            with socket.create_connection((host, int(port)), timeout=10) as raw:
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with ctx.wrap_socket(raw, server_hostname=name) as tls:
                    tls.sendall(
                        f"GET / HTTP/1.1\r\nhost: {name}\r\nconnection: close\r\n\r\n".encode()
                    )
                    answer = b""
                    while True:
                        chunk = tls.recv(4096)
                        if not chunk:
                            break
                        answer += chunk
                    return answer.startswith(b"HTTP/")
        except (OSError, ssl.SSLError):
            return False

    def worker() -> None:
        while state["running"]:
            k = next(counter)
            if a.once and k >= len(names):
                return
            ok = one(names[k % len(names)])
            with lock:
                if state["measuring"]:
                    state["done" if ok else "failed"] += 1

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(a.concurrency)]
    for t in threads:
        t.start()
    if a.once:
        print("measuring", flush=True)
        for t in threads:
            t.join()
    else:
        time.sleep(a.warmup)
        with lock:
            state["measuring"] = True
        print("measuring", flush=True)
        time.sleep(a.seconds)
        with lock:
            state["measuring"] = False
            done, failed = state["done"], state["failed"]
        print(f"done {done} {failed}", flush=True)
        state["running"] = False
        for t in threads:
            t.join()
        return 0
    print(f"done {state['done']} {state['failed']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
