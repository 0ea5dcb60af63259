"""python_hello: an integration written in Python (componentize-py, world `integration`).

Answers 200 {"message": "hello from python", "path": <raw path>, "stage": <stage>, "calls": n}
and writes one info line to the host's log. `calls` counts the calls this instance has served
(module-level state: always 1 on a fresh instance, counting up on a warm one).

It stays on the `integration` world, not `lazy-integration`: with componentize-py 0.25.1 each
method call on an `incoming-request` costs about 2.5 us and a fresh instance's first call about
450 us more, against about 1.1 us a header for the whole record (README.md, "Which integration
world").
"""

import json

import wit_world
from wit_world.imports import log
from wit_world.imports.types import Request, Response


# Calls this instance has served: lives as long as the instance, as a warm Lambda's globals.
_calls = 0


class WitWorld(wit_world.WitWorld):
    def handle(self, request: Request) -> Response:
        global _calls
        _calls += 1
        log.log(log.Level.INFO, f"python_hello answered {request.method} {request.raw_path}")
        body = {
            "message": "hello from python",
            "path": request.raw_path,
            "stage": request.stage,
            "calls": _calls,
        }
        return Response(
            status=200,
            headers=[("content-type", "application/json")],
            cookies=[],
            body=json.dumps(body).encode(),
        )
