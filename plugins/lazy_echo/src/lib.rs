//! `lazy_echo`: an integration of the `lazy-integration` world (the SDK's `lazy_integration!`).
//! It reads every part of the request through [`LazyRequest`]'s methods and answers 200 with
//! them as JSON, in the same shape as `echo` (camelCase keys; `queryParameters` and `headers`
//! as `{name: [values]}`), so a test can compare the two field by field. Plus `lookups`: the
//! one-name methods asked for by the query string, each name once (`header=NAME`,
//! `query=NAME`, `path=NAME`, `variable=NAME`, repeatable): `{"header": {NAME: value or null},
//! "query": {...}, "path": {...}, "variable": {...}}`.
//!
//! It imports no WASI.

use portico_plugin::serde_json::{json, Map, Value};
use portico_plugin::{AuthorizerContext, ContextValue, Error, Fields, LazyRequest, Response};

/// `{name: [values...]}`, names in order of first appearance.
fn multi_valued(fields: &Fields) -> Value {
    let mut map = Map::new();
    for (name, value) in fields.iter() {
        let values = map.entry(name.to_owned()).or_insert_with(|| json!([]));
        if let Value::Array(values) = values {
            values.push(json!(value));
        }
    }
    Value::Object(map)
}

/// `{name: value}`, the first value of each name.
fn single_valued(fields: &Fields) -> Value {
    let mut map = Map::new();
    for (name, value) in fields.iter() {
        map.entry(name.to_owned()).or_insert_with(|| json!(value));
    }
    Value::Object(map)
}

/// An authorizer's context as echo writes it (integral numbers without `.0`).
fn authorizer(context: AuthorizerContext) -> Value {
    let entries = context.context.into_iter().map(|(key, value)| {
        let value = match value {
            ContextValue::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => json!(n as i64),
            other => other.to_json(),
        };
        (key, value)
    });
    json!({ "principalId": context.principal_id, "context": Map::from_iter(entries) })
}

/// The names the query string asks `kind` lookups for, each with what `look` answers.
fn lookups(query: &Fields, kind: &str, look: impl Fn(&str) -> Option<String>) -> Value {
    let mut map = Map::new();
    for name in query.get_all(kind) {
        map.insert(name.to_owned(), json!(look(name)));
    }
    Value::Object(map)
}

fn handle(request: LazyRequest) -> Result<Response, Error> {
    let query = request.query_parameters();
    let body = request.body();
    let echo = json!({
        "method": request.method(),
        "rawPath": request.raw_path(),
        "rawQuery": request.raw_query(),
        "queryParameters": multi_valued(&query),
        "headers": multi_valued(&request.headers()),
        "cookies": request.cookies(),
        "pathParameters": single_valued(&request.path_parameters()),
        "stage": request.stage(),
        "stageVariables": single_valued(&request.stage_variables()),
        "routeKey": request.route_key(),
        "requestId": request.request_id(),
        "sourceIp": request.source_ip(),
        "userAgent": request.user_agent(),
        "requestTimeEpochMs": request.request_time_epoch_ms(),
        "authorizer": request.authorizer().map(authorizer),
        "traceId": request.trace_id(),
        "body": String::from_utf8_lossy(&body),
        "bodyLength": body.len(),
        "lookups": {
            "header": lookups(&query, "header", |name| request.header(name)),
            "query": lookups(&query, "query", |name| request.query(name)),
            "path": lookups(&query, "path", |name| request.path_param(name)),
            "variable": lookups(&query, "variable", |name| request.stage_variable(name)),
        },
    });
    Response::json(200, &echo)
}

portico_plugin::lazy_integration!(handle);
