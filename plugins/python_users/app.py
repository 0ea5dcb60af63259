"""python_users: the seed guide's users API (`app.py`: list_users, create_user, get_user), as
a plugin of the `lambda` world (componentize-py).

The handlers below are the seed's Lambda handlers: they take API Gateway's proxy event (a dict)
and return the proxy response (`_response`). The differences: the table is the host's
key-value store instead of DynamoDB (`Table` below offers the three calls the handlers make),
named by the stage variable TABLE instead of the environment variable TABLE_NAME; a body that
is not a JSON object is a 400 (as in the Rust `users` plugin); CORS headers are left to the
gateway. Items are stored as JSON under `USER#<id>#PROFILE`, as the Rust `users` plugin stores
them, so both plugins serve the same table.

`handle_event` is the world's export: it routes the event to a handler by method and path
parameters, as three Lambda functions behind three routes would be. A route whose path ends in
`/event` answers with the event itself (for tests and curious readers).
"""

import json
import uuid
from datetime import datetime

import wit_world
from wit_world.imports import kv, log
from wit_world.imports.types import PluginError
from componentize_py_types import Err


class Table:
    """The part of boto3's DynamoDB Table the handlers use, on the host's kv store."""

    def __init__(self, name: str):
        self.name = name

    def scan(self, Limit: int) -> dict:
        entries = kv.list_prefix(self.name, "USER#", None, Limit)
        items = [json.loads(value) for _, value in entries]
        return {"Items": items, "Count": len(items)}

    def put_item(self, Item: dict) -> None:
        kv.put(self.name, f"{Item['PK']}#{Item['SK']}", json.dumps(Item).encode())

    def get_item(self, Key: dict) -> dict:
        value = kv.get(self.name, f"{Key['PK']}#{Key['SK']}")
        return {} if value is None else {"Item": json.loads(value)}


table: Table  # set per request from the stage variable TABLE (a fresh instance per request)


def _response(status_code: int, body: dict) -> dict:
    """API Gateway プロキシ統合のレスポンス形式"""
    return {
        "statusCode": status_code,
        "headers": {
            "Content-Type": "application/json",
        },
        "body": json.dumps(body, default=str),
    }


def list_users(event, context):
    """GET /users"""
    try:
        # クエリパラメータ
        params = event.get("queryStringParameters") or {}
        limit = int(params.get("limit", 20))

        resp = table.scan(Limit=limit)  # 本番では query を使用
        return _response(200, {
            "users": resp["Items"],
            "count": resp["Count"],
        })
    except Exception as e:
        return _response(500, {"error": str(e)})


def create_user(event, context):
    """POST /users"""
    try:
        body = json.loads(event.get("body") or "{}")
        if not isinstance(body, dict):
            raise ValueError("not an object")
        user_id = str(uuid.uuid4())

        item = {
            "PK": f"USER#{user_id}",
            "SK": "PROFILE",
            "userId": user_id,
            "name": body["name"],
            "email": body["email"],
            "createdAt": datetime.utcnow().isoformat(),
        }
        table.put_item(Item=item)
        return _response(201, {"user": item})
    except KeyError as e:
        return _response(400, {"error": f"Missing field: {e}"})
    except ValueError:  # json.JSONDecodeError is a ValueError
        return _response(400, {"error": "Invalid JSON body"})
    except Exception as e:
        return _response(500, {"error": str(e)})


def get_user(event, context):
    """GET /users/{userId}"""
    try:
        user_id = event["pathParameters"]["userId"]
        resp = table.get_item(
            Key={"PK": f"USER#{user_id}", "SK": "PROFILE"}
        )
        item = resp.get("Item")
        if not item:
            return _response(404, {"error": "User not found"})
        return _response(200, {"user": item})
    except Exception as e:
        return _response(500, {"error": str(e)})


def echo_event(event, context):
    """ANY .../event: the event this function received."""
    return _response(200, event)


# A 1x1 PNG, base64: the image LocalStack's `test_aws_proxy_binary_response` returns.
_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mP8/wIAAgkBAyMAlYwAAAAASUVORK5CYII="


def image(event, context):
    """ANY .../image: a PNG, base64-encoded as a Lambda answers binary data (with `?broken=1`,
    a body that is not base64, as LocalStack's test sends to see the gateway's 500)."""
    broken = (event.get("queryStringParameters") or {}).get("broken")
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "image/png"},
        "body": "èé+à)(" if broken else _PNG,
        "isBase64Encoded": True,
    }


def _route(event: dict):
    """Which handler a request goes to: what API Gateway's routes would decide."""
    if "httpMethod" in event:  # payload 1.0
        method, resource = event["httpMethod"], event["resource"]
    else:  # payload 2.0
        method, resource = event["requestContext"]["http"]["method"], event["routeKey"]
    # The path too: a greedy route (`/{proxy+}`) answers `.../event` with the event.
    path = event.get("path") or event.get("rawPath") or ""
    if resource.endswith("/event") or path.rstrip("/").endswith("/event"):
        return echo_event
    if resource.endswith("/image"):
        return image
    if "userId" in (event.get("pathParameters") or {}):
        return get_user if method == "GET" else None
    return {"GET": list_users, "POST": create_user}.get(method)


class WitWorld(wit_world.WitWorld):
    def handle_event(self, event: str) -> str:
        global table
        event = json.loads(event)
        name = (event.get("stageVariables") or {}).get("TABLE")
        if not name:
            # As the Lambda fails to start without TABLE_NAME: the gateway answers as for a
            # failed Lambda (an HTTP API 500, a REST API 502).
            raise Err(PluginError(message="the stage variable TABLE is not set"))
        table = Table(name)
        handler = _route(event)
        if handler is None:
            return json.dumps(_response(405, {"error": "Method not allowed"}))
        response = handler(event, None)
        log.log(log.Level.DEBUG, f"python_users answered {response['statusCode']}")
        return json.dumps(response)
