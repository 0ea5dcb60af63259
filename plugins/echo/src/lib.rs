//! `echo`: answers 200 with the request it saw, as a JSON object with camelCase keys.
//!
//! Test hooks, read from the query string:
//! - `status=NNN`: answer with that status (100-599) instead of 200;
//! - `kv=1`: put key `echo/<requestId>` = `<requestId>` in table `echo`, read it back, and add
//!   `"kv": "<value read back>"`;
//! - `config=KEY`: add `"config": <the plugin config's KEY, or null>`;
//! - `log=1`: write the info line `echo log line` to the host's log;
//! - `fail=1`: return a plugin error (`echo was asked to fail`) instead of answering;
//! - `calls=1`: add `"calls": <the calls this instance has served, this one included>`,
//!   counted in module-level state (1 on every call of a fresh instance; counting up on a
//!   warm one);
//! - `panic=1`: panic (`echo was asked to panic`), so that the instance traps;
//! - `spin=N`: spin N rounds of a busy loop before answering (a slow call, for queueing tests);
//! - `keep=N`: keep N KiB more in module-level state, never freed (a plugin that leaks: on a
//!   warm instance its memory grows call after call);
//! - `headers=N`: add N headers to the answer, `x-echo-0: 0` to `x-echo-<N-1>: <N-1>`.
//!
//! It imports no WASI, so the host needs no WASI context for it.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};

use portico_plugin::{config, kv, log, ContextValue, Error, Fields, Request, Response};
use serde::ser::{Serialize, SerializeMap, Serializer};

/// The JSON answer; borrows from the request, so echoing copies nothing but the output.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Echo<'a> {
    method: &'a str,
    raw_path: &'a str,
    raw_query: &'a str,
    query_parameters: MultiValued<'a>,
    headers: MultiValued<'a>,
    cookies: &'a [String],
    path_parameters: SingleValued<'a>,
    stage: &'a str,
    stage_variables: SingleValued<'a>,
    route_key: &'a str,
    request_id: &'a str,
    source_ip: &'a str,
    user_agent: &'a str,
    request_time_epoch_ms: u64,
    authorizer: Option<Authorizer<'a>>,
    trace_id: Option<&'a str>,
    body: Cow<'a, str>,
    body_length: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    kv: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    config: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    calls: Option<u64>,
}

/// Calls this instance has served: module-level state, which lives as long as the instance.
static CALLS: AtomicU64 = AtomicU64::new(0);

/// What `keep=N` kept: module-level state, never freed.
static KEPT: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Authorizer<'a> {
    principal_id: &'a str,
    context: Context<'a>,
}

/// `{name: [values...]}`, names in order of first appearance.
struct MultiValued<'a>(&'a Fields);

impl Serialize for MultiValued<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (i, (name, _)) in self.0.iter().enumerate() {
            if self.0.iter().take(i).all(|(seen, _)| seen != name) {
                map.serialize_entry(name, &self.0.get_all(name).collect::<Vec<_>>())?;
            }
        }
        map.end()
    }
}

/// `{name: value}`, the first value of each name.
struct SingleValued<'a>(&'a Fields);

impl Serialize for SingleValued<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (i, (name, value)) in self.0.iter().enumerate() {
            if self.0.iter().take(i).all(|(seen, _)| seen != name) {
                map.serialize_entry(name, value)?;
            }
        }
        map.end()
    }
}

/// Context values as JSON strings, numbers (integral ones without `.0`) and booleans.
struct Context<'a>(&'a [(String, ContextValue)]);

impl Serialize for Context<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in self.0 {
            match value {
                ContextValue::Text(s) => map.serialize_entry(key, s)?,
                ContextValue::Boolean(b) => map.serialize_entry(key, b)?,
                ContextValue::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => {
                    map.serialize_entry(key, &(*n as i64))?
                }
                ContextValue::Number(n) => map.serialize_entry(key, n)?,
            }
        }
        map.end()
    }
}

fn handle(request: Request) -> Result<Response, Error> {
    let calls = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
    if request.query("panic").is_some() {
        panic!("echo was asked to panic");
    }
    if let Some(rounds) = request.query("spin").and_then(|n| n.parse::<u64>().ok()) {
        let mut x = 0u64;
        for i in 0..rounds {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        std::hint::black_box(x);
    }
    if let Some(kib) = request.query("keep").and_then(|n| n.parse::<usize>().ok()) {
        // Written to, so that the pages are really used.
        let kept = vec![1u8; kib << 10];
        if let Ok(mut all) = KEPT.lock() {
            all.push(std::hint::black_box(kept));
        }
    }
    if request.query("fail").is_some() {
        return Err(Error::new("echo was asked to fail"));
    }
    if request.query("log") == Some("1") {
        log::info("echo log line");
    }
    let kv = match request.query("kv") {
        Some("1") => {
            let key = format!("echo/{}", request.request_id);
            kv::put("echo", &key, &request.request_id)?;
            let value = kv::get("echo", &key)?.unwrap_or_default();
            Some(String::from_utf8_lossy(&value).into_owned())
        }
        _ => None,
    };
    let config = request.query("config").map(config::get);
    let status = request
        .query("status")
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|s| (100..=599).contains(s))
        .unwrap_or(200);

    let echo = Echo {
        method: &request.method,
        raw_path: &request.raw_path,
        raw_query: &request.raw_query,
        query_parameters: MultiValued(&request.query_parameters),
        headers: MultiValued(&request.headers),
        cookies: &request.cookies,
        path_parameters: SingleValued(&request.path_parameters),
        stage: &request.stage,
        stage_variables: SingleValued(&request.stage_variables),
        route_key: &request.route_key,
        request_id: &request.request_id,
        source_ip: &request.source_ip,
        user_agent: &request.user_agent,
        request_time_epoch_ms: request.request_time_epoch_ms,
        authorizer: request.authorizer.as_ref().map(|a| Authorizer {
            principal_id: &a.principal_id,
            context: Context(&a.context),
        }),
        trace_id: request.trace_id.as_deref(),
        body: request.body_text(),
        body_length: request.body.len(),
        kv,
        config,
        calls: (request.query("calls") == Some("1")).then_some(calls),
    };
    let extra = request
        .query("headers")
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0);
    let mut response = Response::json(status, &echo)?;
    for i in 0..extra {
        response = response.header(format!("x-echo-{i}"), i.to_string());
    }
    Ok(response)
}

portico_plugin::integration!(handle);

#[cfg(test)]
mod tests {
    use super::*;
    use portico_plugin::{testing, AuthorizerContext};
    use serde_json::{json, Value};

    fn call(request: Request) -> (u16, Value) {
        let response = handle(request).unwrap();
        assert_eq!(
            response.headers.get("content-type"),
            Some("application/json")
        );
        (
            response.status,
            serde_json::from_slice(&response.body).unwrap(),
        )
    }

    #[test]
    fn echoes_the_request() {
        let mut r = Request::new("POST", "/items/7");
        r.raw_query = "a=1&a=2&b=x".into();
        r.query_parameters = [("a", "1"), ("a", "2"), ("b", "x")].into_iter().collect();
        r.headers = [("x-b", "1"), ("x-a", "2"), ("x-b", "3")]
            .into_iter()
            .collect();
        r.cookies = vec!["s=1".into()];
        r.path_parameters = [("id", "7")].into_iter().collect();
        r.stage = "dev".into();
        r.stage_variables = [("TABLE", "t")].into_iter().collect();
        r.route_key = "POST /items/{id}".into();
        r.request_id = "rid".into();
        r.source_ip = "10.0.0.1".into();
        r.user_agent = "curl/8".into();
        r.trace_id = Some("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1".into());
        r.request_time_epoch_ms = 1_700_000_000_000;
        let mut auth = AuthorizerContext::new("user-1");
        auth.context = vec![
            ("role".into(), ContextValue::Text("admin".into())),
            ("level".into(), ContextValue::Number(3.0)),
            ("ratio".into(), ContextValue::Number(0.5)),
            ("ok".into(), ContextValue::Boolean(true)),
        ];
        r.authorizer = Some(auth);
        r.body = vec![b'h', b'i', 0xff];
        let (status, body) = call(r);
        assert_eq!(status, 200);
        assert_eq!(
            body,
            json!({
                "method": "POST",
                "rawPath": "/items/7",
                "rawQuery": "a=1&a=2&b=x",
                "queryParameters": {"a": ["1", "2"], "b": ["x"]},
                "headers": {"x-b": ["1", "3"], "x-a": ["2"]},
                "cookies": ["s=1"],
                "pathParameters": {"id": "7"},
                "stage": "dev",
                "stageVariables": {"TABLE": "t"},
                "routeKey": "POST /items/{id}",
                "requestId": "rid",
                "sourceIp": "10.0.0.1",
                "userAgent": "curl/8",
                "requestTimeEpochMs": 1_700_000_000_000u64,
                "traceId": "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",
                "authorizer": {
                    "principalId": "user-1",
                    "context": {"role": "admin", "level": 3, "ratio": 0.5, "ok": true}
                },
                "body": "hi\u{fffd}",
                "bodyLength": 3
            })
        );
    }

    #[test]
    fn hooks() {
        testing::reset();
        testing::set_config("greeting", "hello");
        let mut r = Request::new("GET", "/");
        r.request_id = "r1".into();
        r.query_parameters = [
            ("status", "418"),
            ("kv", "1"),
            ("config", "greeting"),
            ("log", "1"),
        ]
        .into_iter()
        .collect();
        let (status, body) = call(r);
        assert_eq!(status, 418);
        assert_eq!(body["kv"], "r1");
        assert_eq!(body["config"], "hello");
        assert_eq!(body["authorizer"], Value::Null);
        assert_eq!(
            testing::logs(),
            [(log::Level::Info, "echo log line".to_owned())]
        );
        assert_eq!(
            testing::kv_entries("echo"),
            [("echo/r1".to_owned(), b"r1".to_vec())]
        );

        let mut r = Request::new("GET", "/");
        r.query_parameters = [("config", "missing"), ("status", "99")]
            .into_iter()
            .collect();
        let (status, body) = call(r);
        assert_eq!(status, 200);
        assert_eq!(body["config"], Value::Null);
        assert!(body.get("kv").is_none());

        let mut r = Request::new("GET", "/");
        r.query_parameters = [("fail", "1")].into_iter().collect();
        assert_eq!(handle(r).unwrap_err().message(), "echo was asked to fail");
    }

    #[test]
    fn counts_the_calls_of_its_instance() {
        let counted = || {
            let mut r = Request::new("GET", "/");
            r.query_parameters = [("calls", "1"), ("spin", "1000")].into_iter().collect();
            call(r).1["calls"].as_u64().unwrap()
        };
        let first = counted();
        assert!(first >= 1);
        // Other tests of this process may call in between: the count only goes up.
        assert!(counted() > first);
        let (_, plain) = call(Request::new("GET", "/"));
        assert!(plain.get("calls").is_none());
    }
}
