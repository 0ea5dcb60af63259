"""python_hello: an integration written in Python (componentize-py, world `lazy-integration`).

Answers 200 {"message": "hello from python", "path": <raw path>, "stage": <stage>, "calls": n}
and writes one info line to the host's log. `calls` counts the calls this instance has served
(module-level state: always 1 on a fresh instance, counting up on a warm one).

The request is an `incoming-request` resource, read through its methods (`request.raw_path()`,
`request.header("accept")`): only what the plugin asks for becomes Python values, so a request
with many headers costs no more than one with few.
"""

import json

import wit_world
from wit_world.imports import log
from wit_world.imports.types import IncomingRequest, Response


# Calls this instance has served: lives as long as the instance, as a warm Lambda's globals.
_calls = 0


class WitWorld(wit_world.WitWorld):
    def handle_request(self, request: IncomingRequest) -> Response:
        global _calls
        _calls += 1
        path = request.raw_path()
        log.log(log.Level.INFO, f"python_hello answered {request.method()} {path}")
        body = {
            "message": "hello from python",
            "path": path,
            "stage": request.stage(),
            "calls": _calls,
        }
        return Response(
            status=200,
            headers=[("content-type", "application/json")],
            cookies=[],
            body=json.dumps(body).encode(),
        )
