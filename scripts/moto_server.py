"""moto's server with every request handled atomically.

DynamoDB applies conditional writes to one item one at a time. moto's own
threaded server does not: two concurrent UpdateItem calls can both pass the same
condition, which real DynamoDB never allows, and the session-rotation contract
test (32 concurrent refreshes, exactly one rotation) would then fail for moto's
sake. This wrapper keeps moto's threads (and HTTP keep-alive) but runs one request
at a time through the backend, as DynamoDB does per item.

Usage: python scripts/moto_server.py PORT
"""

import sys
import threading

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)


def main() -> None:
    port = int(sys.argv[1])
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def one_at_a_time(environ, start_response):
        with lock:
            return list(app(environ, start_response))

    run_simple(
        "127.0.0.1",
        port,
        one_at_a_time,
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
