"""python_hello: an integration written in Python (componentize-py, world `integration`).

Answers 200 {"message": "hello from python", "path": <raw path>, "stage": <stage>} and writes
one info line to the host's log.
"""

import json

import wit_world
from wit_world.imports import log
from wit_world.imports.types import Request, Response


class WitWorld(wit_world.WitWorld):
    def handle(self, request: Request) -> Response:
        log.log(log.Level.INFO, f"python_hello answered {request.method} {request.raw_path}")
        body = {"message": "hello from python", "path": request.raw_path, "stage": request.stage}
        return Response(
            status=200,
            headers=[("content-type", "application/json")],
            cookies=[],
            body=json.dumps(body).encode(),
        )
