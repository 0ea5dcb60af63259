//! `users`: the seed guide's users API (`src/app.py`: list_users, create_user, get_user) on the
//! host's key-value store instead of DynamoDB.
//!
//! - `GET /users?limit=N` (default 20) -> 200 `{"users": [...], "count": n}`
//! - `POST /users` with `{"name": ..., "email": ...}` -> 201 `{"user": item}`;
//!   a missing field -> 400 `{"error": "Missing field: 'name'"}`; a body that is not a JSON
//!   object -> 400 `{"error": "Invalid JSON body"}`
//! - `GET /users/{userId}` -> 200 `{"user": item}` or 404 `{"error": "User not found"}`
//!
//! The table is the stage variable `TABLE`; an item is stored as JSON under the key
//! `USER#<id>#PROFILE` (its PK and SK). Store failures answer 500 `{"error": ...}` as the
//! Lambda's `except Exception` does. The v4 ids read `wasi:random/random`, its only WASI import
//! (besides the wall clock when the host gives no request time).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use portico_plugin::serde_json::{self, json, Value};
use portico_plugin::{kv, Error, Request, Response};
use serde::{Deserialize, Serialize};

/// A user profile, fields in the order the seed's `item` dict has them.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct User {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: String,
    #[serde(rename = "userId")]
    user_id: String,
    name: Value,
    email: Value,
    #[serde(rename = "createdAt")]
    created_at: String,
}

const DEFAULT_LIMIT: i64 = 20;
const KEY_PREFIX: &str = "USER#";

fn key(user_id: &str) -> String {
    format!("{KEY_PREFIX}{user_id}#PROFILE")
}

fn respond(status: u16, body: Value) -> Result<Response, Error> {
    Response::json(status, &body)
}

/// `{"user": item}`, keeping the item's field order (a `json!` value would sort the keys).
#[derive(Serialize)]
struct OneUser<'a> {
    user: &'a User,
}

/// `{"users": [...], "count": n}`, in the seed's key order.
#[derive(Serialize)]
struct UserList {
    users: Vec<User>,
    count: usize,
}

fn handle(request: Request) -> Result<Response, Error> {
    let table = request
        .stage_variable("TABLE")
        .ok_or_else(|| Error::new("the stage variable TABLE (the users table) is not set"))?
        .to_owned();
    let result = match (request.method.as_str(), user_id(&request)) {
        ("GET", Some(id)) => get_user(&table, &id),
        ("GET", None) => list_users(&table, &request),
        ("POST", None) => create_user(&table, &request),
        _ => return respond(405, json!({"error": "Method not allowed"})),
    };
    // The Lambda's `except Exception as e: return _response(500, {"error": str(e)})`.
    result.or_else(|e| respond(500, json!({"error": e.message()})))
}

/// The `userId` path parameter or, behind a greedy or `$default` route, the segment after
/// `/users/`.
fn user_id(request: &Request) -> Option<String> {
    if let Some(id) = request.path_param("userId") {
        return Some(id.to_owned());
    }
    let (_, rest) = request.raw_path.rsplit_once("/users/")?;
    let id = rest.trim_end_matches('/');
    (!id.is_empty() && !id.contains('/')).then(|| id.to_owned())
}

/// GET /users: `table.scan(Limit=limit)`.
fn list_users(table: &str, request: &Request) -> Result<Response, Error> {
    let limit = match request.query("limit") {
        None => DEFAULT_LIMIT,
        Some(raw) => match raw.trim().parse::<i64>() {
            Ok(n) => n,
            Err(_) => {
                return Err(Error::new(format!(
                    "invalid literal for int() with base 10: '{raw}'"
                )))
            }
        },
    };
    if limit < 1 {
        return Err(Error::new(format!(
            "Parameter validation failed:\nInvalid value for parameter Limit, value: {limit}, \
             valid min value: 1"
        )));
    }
    let limit = u32::try_from(limit).unwrap_or(u32::MAX);
    let users = kv::list_prefix(table, KEY_PREFIX, None, limit)?
        .into_iter()
        .map(|(_, value)| serde_json::from_slice::<User>(&value))
        .collect::<Result<Vec<_>, _>>()?;
    let count = users.len();
    Response::json(200, &UserList { users, count })
}

/// POST /users.
fn create_user(table: &str, request: &Request) -> Result<Response, Error> {
    let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(&request.body) else {
        return respond(400, json!({"error": "Invalid JSON body"}));
    };
    let mut field = |name: &str| {
        body.remove(name)
            .ok_or_else(|| format!("Missing field: '{name}'"))
    };
    let (name, email) = match (field("name"), field("email")) {
        (Ok(name), Ok(email)) => (name, email),
        (Err(missing), _) | (_, Err(missing)) => return respond(400, json!({"error": missing})),
    };
    let user_id = uuid::Builder::from_random_bytes(random_bytes())
        .into_uuid()
        .to_string();
    let item = User {
        pk: format!("{KEY_PREFIX}{user_id}"),
        sk: "PROFILE".into(),
        user_id,
        name,
        email,
        created_at: utc_isoformat(created_at(request)),
    };
    kv::put_json(table, &key(&item.user_id), &item)?;
    Response::json(201, &OneUser { user: &item })
}

/// GET /users/{userId}.
fn get_user(table: &str, user_id: &str) -> Result<Response, Error> {
    match kv::get_json::<User>(table, &key(user_id))? {
        Some(user) => Response::json(200, &OneUser { user: &user }),
        None => respond(404, json!({"error": "User not found"})),
    }
}

/// When the gateway received the request, or now when the host did not say.
fn created_at(request: &Request) -> SystemTime {
    if request.request_time_epoch_ms > 0 {
        request.request_time()
    } else {
        now()
    }
}

/// 16 bytes from the host's secure random source.
#[cfg(target_arch = "wasm32")]
fn random_bytes() -> [u8; 16] {
    let bytes = wasi::random::random::get_random_bytes(16);
    let mut out = [0; 16];
    out.copy_from_slice(&bytes[..16]);
    out
}

/// The wall clock (`wasi:clocks/wall-clock`).
#[cfg(target_arch = "wasm32")]
fn now() -> SystemTime {
    let t = wasi::clocks::wall_clock::now();
    UNIX_EPOCH + Duration::new(t.seconds, t.nanoseconds)
}

/// Host builds (unit tests): std's per-process random keys are random enough for test ids.
#[cfg(not(target_arch = "wasm32"))]
fn random_bytes() -> [u8; 16] {
    use std::hash::{BuildHasher, Hasher};
    let half = || {
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
    };
    let mut out = [0; 16];
    out[..8].copy_from_slice(&half().to_le_bytes());
    out[8..].copy_from_slice(&half().to_le_bytes());
    out
}

#[cfg(not(target_arch = "wasm32"))]
fn now() -> SystemTime {
    SystemTime::now()
}

/// Python's `datetime.utcnow().isoformat()`: `2024-05-01T12:34:56.789000`, the fraction left
/// out when it is zero.
fn utc_isoformat(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let t = portico_plugin::time::UtcDateTime::from_epoch_secs(since.as_secs());
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    );
    let micros = since.subsec_micros();
    if micros != 0 {
        out.push_str(&format!(".{micros:06}"));
    }
    out
}

portico_plugin::integration!(handle);

#[cfg(test)]
mod tests {
    use super::*;
    use portico_plugin::testing;

    fn request(method: &str, path: &str) -> Request {
        let mut r = Request::new(method, path);
        r.stage_variables = [("TABLE", "dev-Users")].into_iter().collect();
        r.request_time_epoch_ms = 1_714_566_896_789;
        r
    }

    fn call(r: Request) -> (u16, Value) {
        let response = handle(r).unwrap();
        assert_eq!(
            response.headers.get("content-type"),
            Some("application/json")
        );
        (
            response.status,
            serde_json::from_slice(&response.body).unwrap(),
        )
    }

    fn create(name: &str) -> Value {
        let mut r = request("POST", "/users");
        r.body = serde_json::to_vec(&json!({"name": name, "email": format!("{name}@example.com")}))
            .unwrap();
        let (status, body) = call(r);
        assert_eq!(status, 201, "{body}");
        body["user"].clone()
    }

    #[test]
    fn create_then_get_then_list() {
        testing::reset();
        let user = create("ann");
        let id = user["userId"].as_str().unwrap().to_owned();
        let parsed = uuid::Uuid::parse_str(&id).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
        assert_eq!(user["PK"], format!("USER#{id}"));
        assert_eq!(user["SK"], "PROFILE");
        assert_eq!(user["name"], "ann");
        assert_eq!(user["email"], "ann@example.com");
        assert_eq!(user["createdAt"], "2024-05-01T12:34:56.789000");

        let mut get = request("GET", &format!("/users/{id}"));
        get.path_parameters = [("userId", id.as_str())].into_iter().collect();
        assert_eq!(call(get), (200, json!({"user": user})));
        // Behind a greedy route the id comes from the path.
        assert_eq!(call(request("GET", &format!("/users/{id}"))).0, 200);

        create("bob");
        create("cid");
        let (status, body) = call(request("GET", "/users"));
        assert_eq!(status, 200);
        assert_eq!(body["count"], 3);
        assert_eq!(body["users"].as_array().unwrap().len(), 3);
        let mut limited = request("GET", "/users");
        limited.query_parameters = [("limit", "2")].into_iter().collect();
        assert_eq!(call(limited).1["count"], 2);
    }

    #[test]
    fn errors_match_the_lambda() {
        testing::reset();
        let mut r = request("POST", "/users");
        r.body = br#"{"email": "x@example.com"}"#.to_vec();
        assert_eq!(call(r), (400, json!({"error": "Missing field: 'name'"})));
        let mut r = request("POST", "/users");
        r.body = br#"{"name": "x"}"#.to_vec();
        assert_eq!(call(r), (400, json!({"error": "Missing field: 'email'"})));
        for body in [&b"not json"[..], b"", b"[1]"] {
            let mut r = request("POST", "/users");
            r.body = body.to_vec();
            assert_eq!(call(r), (400, json!({"error": "Invalid JSON body"})));
        }
        let mut r = request("GET", "/users/nope");
        r.path_parameters = [("userId", "nope")].into_iter().collect();
        assert_eq!(call(r), (404, json!({"error": "User not found"})));
        let mut r = request("GET", "/users");
        r.query_parameters = [("limit", "ten")].into_iter().collect();
        assert_eq!(
            call(r),
            (
                500,
                json!({"error": "invalid literal for int() with base 10: 'ten'"})
            )
        );
        assert_eq!(call(request("DELETE", "/users")).0, 405);

        let mut no_table = request("GET", "/users");
        no_table.stage_variables = Default::default();
        assert!(handle(no_table).is_err());
    }

    #[test]
    fn items_keep_the_seed_key_order() {
        testing::reset();
        let mut r = request("POST", "/users");
        r.body = br#"{"name": "ann", "email": "a@example.com"}"#.to_vec();
        let text = String::from_utf8(handle(r).unwrap().body).unwrap();
        let at = |key: &str| text.find(&format!("\"{key}\"")).unwrap();
        let keys = ["PK", "SK", "userId", "name", "email", "createdAt"].map(at);
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{text}");
        let text = String::from_utf8(handle(request("GET", "/users")).unwrap().body).unwrap();
        assert!(
            text.starts_with(r#"{"users":[{"PK":"#) && text.ends_with(r#""count":1}"#),
            "{text}"
        );
    }

    #[test]
    fn isoformat_matches_python() {
        let t = |ms: u64| utc_isoformat(UNIX_EPOCH + Duration::from_millis(ms));
        assert_eq!(t(0), "1970-01-01T00:00:00");
        assert_eq!(t(1_714_566_896_789), "2024-05-01T12:34:56.789000");
        assert_eq!(t(951_782_400_000), "2000-02-29T00:00:00");
    }
}
