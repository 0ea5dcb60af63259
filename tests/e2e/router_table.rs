//! The route phase as a table: (route set, method, raw path) -> route key and decoded path
//! parameters, or no match. One row per case; every rule of `portico::route`'s docs has rows.
//! Then the no-match answers through `Gateway`: 404 for HTTP APIs, 403 for REST APIs.

use bytes::Bytes;
use http::{Method, Request};
use portico::{ApiDefinition, Format, Gateway, Router};

use Want::{NoMatch, Route};

/// What one row expects.
#[derive(Debug)]
enum Want {
    /// This route key, with these decoded path parameters in path order.
    Route(&'static str, &'static [(&'static str, &'static str)]),
    /// No route, not even `$default`.
    NoMatch,
}

/// One row: with `routes` installed, `method path` finds `want`.
struct Case {
    routes: &'static [&'static str],
    method: &'static str,
    path: &'static str,
    want: Want,
}

/// AWS's own precedence example: full match, then greedy, then `$default`.
const AWS: &[&str] = &[
    "GET /pets/dog/1",
    "GET /pets/dog/{id}",
    "GET /pets/{proxy+}",
    "ANY /{proxy+}",
    "$default",
];
/// Literal beats `{param}` beats `{proxy+}` at the same position.
const SPECIFIC: &[&str] = &["GET /pets/{id}", "GET /pets/dog", "GET /pets/{proxy+}"];
/// A non-greedy `ANY` route beats a greedy route of the exact method.
const ANY_EXACT: &[&str] = &["ANY /pets/{id}", "GET /pets/{proxy+}"];
/// Exact method beats `ANY` on the same path, whichever is inserted first.
const ANY_FIRST: &[&str] = &["ANY /pets", "GET /pets"];
const GET_FIRST: &[&str] = &["GET /pets", "ANY /pets"];
const GET_A: &[&str] = &["GET /a"];
const GET_A_DEFAULT: &[&str] = &["GET /a", "$default"];
const DEFAULT_ONLY: &[&str] = &["$default"];
/// `HEAD` and `OPTIONS` are ordinary methods.
const HEAD_OPTIONS: &[&str] = &["GET /a", "GET /b", "HEAD /b", "ANY /c", "OPTIONS /d"];
const FILES: &[&str] = &["GET /files/{proxy+}"];
const NAMES: &[&str] = &["GET /files/{name}", "GET /files/{name}/meta"];
const PETS: &[&str] = &["GET /", "GET /pets", "GET /pets/{id}"];
/// Everything that can catch a request: only unroutable paths miss.
const CATCH_ALL: &[&str] = &["GET /pets/{id}", "ANY /{proxy+}", "$default"];
const ROOT: &[&str] = &["GET /"];
const PROXY_ONLY: &[&str] = &["ANY /{proxy+}"];
/// Parameter names may differ at different depths.
const USERS: &[&str] = &["GET /users/{id}", "GET /users/{userId}/posts"];
/// `{param}` and `{proxy+}` at the same position.
const PARAM_GREEDY: &[&str] = &["GET /a/{id}", "GET /a/{proxy+}"];
const TENANT: &[&str] = &["ANY /{proxy+}", "GET /{tenant}/files/{proxy+}"];
/// A literal that fails deeper must give way to a parameter (backtracking).
const BACKTRACK: &[&str] = &["GET /a/b/c", "GET /a/{x}/d"];
/// `ANY` and an exact method on the same shape, parameter names differing.
const ANY_RENAMED: &[&str] = &["ANY /pets/{id}", "GET /pets/{petId}"];
const RENAMED_ANY: &[&str] = &["GET /pets/{petId}", "ANY /pets/{id}"];
/// `ANY` and an exact method on the same greedy shape, with a greedy route beside them.
const ANY_GREEDY: &[&str] = &["ANY /{proxy+}", "GET /{a}/{proxy+}", "GET /{proxy+}"];
/// Literal segments with the punctuation a path segment may hold.
const PUNCTUATION: &[&str] = &[
    "GET /v1.0/items",
    "GET /a+b",
    "GET /*",
    "GET /:id",
    "GET /@me",
    "GET /a=b;c",
];
/// Several greedy routes: the most specific path wins.
const GREEDIES: &[&str] = &["ANY /{proxy+}", "GET /{a}/{proxy+}", "GET /{a}/x/{proxy+}"];

#[rustfmt::skip]
static CASES: &[Case] = &[
    // AWS's example.
    Case { routes: AWS, method: "GET", path: "/pets/dog/1", want: Route("GET /pets/dog/1", &[]) },
    Case { routes: AWS, method: "GET", path: "/pets/dog/2", want: Route("GET /pets/dog/{id}", &[("id", "2")]) },
    Case { routes: AWS, method: "GET", path: "/pets/cat/1", want: Route("GET /pets/{proxy+}", &[("proxy", "cat/1")]) },
    Case { routes: AWS, method: "POST", path: "/pets/dog/1", want: Route("ANY /{proxy+}", &[("proxy", "pets/dog/1")]) },
    Case { routes: AWS, method: "GET", path: "/pets/dog", want: Route("GET /pets/{proxy+}", &[("proxy", "dog")]) },
    Case { routes: AWS, method: "GET", path: "/pets", want: Route("ANY /{proxy+}", &[("proxy", "pets")]) },
    Case { routes: AWS, method: "DELETE", path: "/other", want: Route("ANY /{proxy+}", &[("proxy", "other")]) },
    Case { routes: AWS, method: "PROPFIND", path: "/pets/dog/1", want: Route("ANY /{proxy+}", &[("proxy", "pets/dog/1")]) },
    Case { routes: AWS, method: "GET", path: "/", want: Route("$default", &[]) },
    Case { routes: AWS, method: "POST", path: "/", want: Route("$default", &[]) },
    // Literal beats {param} beats {proxy+}; non-greedy beats greedy whatever the method.
    Case { routes: SPECIFIC, method: "GET", path: "/pets/dog", want: Route("GET /pets/dog", &[]) },
    Case { routes: SPECIFIC, method: "GET", path: "/pets/cat", want: Route("GET /pets/{id}", &[("id", "cat")]) },
    Case { routes: SPECIFIC, method: "GET", path: "/pets/cat/1", want: Route("GET /pets/{proxy+}", &[("proxy", "cat/1")]) },
    Case { routes: SPECIFIC, method: "GET", path: "/pets/dog/1", want: Route("GET /pets/{proxy+}", &[("proxy", "dog/1")]) },
    Case { routes: SPECIFIC, method: "GET", path: "/pets", want: NoMatch },
    Case { routes: ANY_EXACT, method: "GET", path: "/pets/1", want: Route("ANY /pets/{id}", &[("id", "1")]) },
    Case { routes: ANY_EXACT, method: "GET", path: "/pets/1/2", want: Route("GET /pets/{proxy+}", &[("proxy", "1/2")]) },
    Case { routes: ANY_EXACT, method: "POST", path: "/pets/1/2", want: NoMatch },
    // Exact method beats ANY; ANY takes every other method, known or not.
    Case { routes: ANY_FIRST, method: "GET", path: "/pets", want: Route("GET /pets", &[]) },
    Case { routes: ANY_FIRST, method: "POST", path: "/pets", want: Route("ANY /pets", &[]) },
    Case { routes: ANY_FIRST, method: "PROPFIND", path: "/pets", want: Route("ANY /pets", &[]) },
    Case { routes: GET_FIRST, method: "GET", path: "/pets", want: Route("GET /pets", &[]) },
    Case { routes: GET_FIRST, method: "PATCH", path: "/pets", want: Route("ANY /pets", &[]) },
    Case { routes: GET_FIRST, method: "HEAD", path: "/pets", want: Route("ANY /pets", &[]) },
    Case { routes: GET_A, method: "PROPFIND", path: "/a", want: NoMatch },
    Case { routes: GET_A, method: "get", path: "/a", want: NoMatch },
    Case { routes: GET_A_DEFAULT, method: "PROPFIND", path: "/a", want: Route("$default", &[]) },
    // HEAD and OPTIONS match HEAD/OPTIONS/ANY routes, never GET.
    Case { routes: HEAD_OPTIONS, method: "HEAD", path: "/a", want: NoMatch },
    Case { routes: HEAD_OPTIONS, method: "OPTIONS", path: "/a", want: NoMatch },
    Case { routes: HEAD_OPTIONS, method: "HEAD", path: "/b", want: Route("HEAD /b", &[]) },
    Case { routes: HEAD_OPTIONS, method: "GET", path: "/b", want: Route("GET /b", &[]) },
    Case { routes: HEAD_OPTIONS, method: "HEAD", path: "/c", want: Route("ANY /c", &[]) },
    Case { routes: HEAD_OPTIONS, method: "OPTIONS", path: "/c", want: Route("ANY /c", &[]) },
    Case { routes: HEAD_OPTIONS, method: "OPTIONS", path: "/d", want: Route("OPTIONS /d", &[]) },
    Case { routes: HEAD_OPTIONS, method: "GET", path: "/d", want: NoMatch },
    Case { routes: GET_A_DEFAULT, method: "HEAD", path: "/a", want: Route("$default", &[]) },
    // {proxy+} is non-empty and takes several segments.
    Case { routes: FILES, method: "GET", path: "/files", want: NoMatch },
    Case { routes: FILES, method: "GET", path: "/files/", want: NoMatch },
    Case { routes: FILES, method: "GET", path: "/files/a", want: Route("GET /files/{proxy+}", &[("proxy", "a")]) },
    Case { routes: FILES, method: "GET", path: "/files/a/b/c.txt", want: Route("GET /files/{proxy+}", &[("proxy", "a/b/c.txt")]) },
    Case { routes: FILES, method: "GET", path: "/files/a/b/", want: Route("GET /files/{proxy+}", &[("proxy", "a/b")]) },
    Case { routes: FILES, method: "GET", path: "/files/a%2Fb/c", want: Route("GET /files/{proxy+}", &[("proxy", "a/b/c")]) },
    Case { routes: FILES, method: "GET", path: "/files/dir%20x/%2541", want: Route("GET /files/{proxy+}", &[("proxy", "dir x/%41")]) },
    Case { routes: FILES, method: "GET", path: "/files/a/%FF", want: NoMatch },
    // Parameters are percent-decoded exactly once; %2F stays in its segment.
    Case { routes: NAMES, method: "GET", path: "/files/%2541", want: Route("GET /files/{name}", &[("name", "%41")]) },
    Case { routes: NAMES, method: "GET", path: "/files/a%20b", want: Route("GET /files/{name}", &[("name", "a b")]) },
    Case { routes: NAMES, method: "GET", path: "/files/a+b", want: Route("GET /files/{name}", &[("name", "a+b")]) },
    Case { routes: NAMES, method: "GET", path: "/files/a%2Fb", want: Route("GET /files/{name}", &[("name", "a/b")]) },
    Case { routes: NAMES, method: "GET", path: "/files/a%2fb/meta", want: Route("GET /files/{name}/meta", &[("name", "a/b")]) },
    Case { routes: NAMES, method: "GET", path: "/files/a/b", want: NoMatch },
    Case { routes: NAMES, method: "GET", path: "/files/caf%C3%A9", want: Route("GET /files/{name}", &[("name", "café")]) },
    Case { routes: NAMES, method: "GET", path: "/files/café", want: Route("GET /files/{name}", &[("name", "café")]) },
    Case { routes: NAMES, method: "GET", path: "/files/%7Bx%7D", want: Route("GET /files/{name}", &[("name", "{x}")]) },
    Case { routes: NAMES, method: "GET", path: "/files/%FF", want: NoMatch },
    Case { routes: NAMES, method: "GET", path: "/files/%C3", want: NoMatch },
    Case { routes: NAMES, method: "GET", path: "/files/%E2%82/meta", want: NoMatch },
    // One trailing slash is ignored; empty segments never match.
    Case { routes: PETS, method: "GET", path: "/pets/", want: Route("GET /pets", &[]) },
    Case { routes: PETS, method: "GET", path: "/pets/1/", want: Route("GET /pets/{id}", &[("id", "1")]) },
    Case { routes: PETS, method: "GET", path: "/pets//", want: NoMatch },
    Case { routes: PETS, method: "GET", path: "/pets//1", want: NoMatch },
    Case { routes: PETS, method: "GET", path: "//pets", want: NoMatch },
    Case { routes: ROOT, method: "GET", path: "//", want: NoMatch },
    // Empty and dot segments never match, not even $default or ANY /{proxy+}.
    Case { routes: CATCH_ALL, method: "GET", path: "/a//b", want: NoMatch },
    Case { routes: CATCH_ALL, method: "GET", path: "//", want: NoMatch },
    Case { routes: CATCH_ALL, method: "GET", path: "/pets/.", want: NoMatch },
    Case { routes: CATCH_ALL, method: "GET", path: "/pets/..", want: NoMatch },
    Case { routes: CATCH_ALL, method: "GET", path: "/pets/../pets/1", want: NoMatch },
    Case { routes: CATCH_ALL, method: "GET", path: "/./pets/1", want: NoMatch },
    Case { routes: CATCH_ALL, method: "GET", path: "/pets/%2e%2E", want: NoMatch },
    Case { routes: CATCH_ALL, method: "GET", path: "/pets/%2E", want: NoMatch },
    Case { routes: CATCH_ALL, method: "POST", path: "/pets/.%2e/x", want: NoMatch },
    Case { routes: CATCH_ALL, method: "GET", path: "/pets/%2e%2e/", want: NoMatch },
    Case { routes: CATCH_ALL, method: "GET", path: "/pets/...", want: Route("GET /pets/{id}", &[("id", "...")]) },
    Case { routes: CATCH_ALL, method: "GET", path: "/pets/.hidden", want: Route("GET /pets/{id}", &[("id", ".hidden")]) },
    Case { routes: CATCH_ALL, method: "GET", path: "/pets/%252e%252e", want: Route("GET /pets/{id}", &[("id", "%2e%2e")]) },
    // A path must start with '/'.
    Case { routes: CATCH_ALL, method: "GET", path: "pets/1", want: NoMatch },
    Case { routes: CATCH_ALL, method: "GET", path: "", want: NoMatch },
    Case { routes: CATCH_ALL, method: "GET", path: "*", want: NoMatch },
    // Literals compare byte for byte and case-sensitively; `/` is the root.
    Case { routes: PETS, method: "GET", path: "/", want: Route("GET /", &[]) },
    Case { routes: PETS, method: "GET", path: "/Pets", want: NoMatch },
    Case { routes: PETS, method: "GET", path: "/PETS/1", want: NoMatch },
    Case { routes: PETS, method: "GET", path: "/%70ets", want: NoMatch },
    Case { routes: PETS, method: "GET", path: "/pets/Rex", want: Route("GET /pets/{id}", &[("id", "Rex")]) },
    Case { routes: PROXY_ONLY, method: "GET", path: "/", want: NoMatch },
    // $default only when nothing else matches.
    Case { routes: GET_A_DEFAULT, method: "GET", path: "/a", want: Route("GET /a", &[]) },
    Case { routes: GET_A_DEFAULT, method: "GET", path: "/b", want: Route("$default", &[]) },
    Case { routes: GET_A_DEFAULT, method: "POST", path: "/a", want: Route("$default", &[]) },
    Case { routes: GET_A_DEFAULT, method: "GET", path: "/a/b", want: Route("$default", &[]) },
    Case { routes: DEFAULT_ONLY, method: "GET", path: "/", want: Route("$default", &[]) },
    Case { routes: DEFAULT_ONLY, method: "PROPFIND", path: "/x/y", want: Route("$default", &[]) },
    // Parameter names differ at different depths.
    Case { routes: USERS, method: "GET", path: "/users/7", want: Route("GET /users/{id}", &[("id", "7")]) },
    Case { routes: USERS, method: "GET", path: "/users/7/posts", want: Route("GET /users/{userId}/posts", &[("userId", "7")]) },
    Case { routes: USERS, method: "GET", path: "/users/7/comments", want: NoMatch },
    Case { routes: USERS, method: "GET", path: "/users", want: NoMatch },
    // {param} and {proxy+} at the same position: the most specific wins.
    Case { routes: PARAM_GREEDY, method: "GET", path: "/a/1", want: Route("GET /a/{id}", &[("id", "1")]) },
    Case { routes: PARAM_GREEDY, method: "GET", path: "/a/1/", want: Route("GET /a/{id}", &[("id", "1")]) },
    Case { routes: PARAM_GREEDY, method: "GET", path: "/a/1/2", want: Route("GET /a/{proxy+}", &[("proxy", "1/2")]) },
    Case { routes: PARAM_GREEDY, method: "GET", path: "/a", want: NoMatch },
    Case { routes: TENANT, method: "GET", path: "/acme/files/x/y", want: Route("GET /{tenant}/files/{proxy+}", &[("tenant", "acme"), ("proxy", "x/y")]) },
    Case { routes: TENANT, method: "GET", path: "/acme/other/x", want: Route("ANY /{proxy+}", &[("proxy", "acme/other/x")]) },
    Case { routes: TENANT, method: "POST", path: "/acme/files/x", want: Route("ANY /{proxy+}", &[("proxy", "acme/files/x")]) },
    Case { routes: TENANT, method: "GET", path: "/acme/files", want: Route("ANY /{proxy+}", &[("proxy", "acme/files")]) },
    Case { routes: TENANT, method: "GET", path: "/acme", want: Route("ANY /{proxy+}", &[("proxy", "acme")]) },
    Case { routes: GREEDIES, method: "GET", path: "/t/y/1", want: Route("GET /{a}/{proxy+}", &[("a", "t"), ("proxy", "y/1")]) },
    Case { routes: GREEDIES, method: "GET", path: "/t/x/1", want: Route("GET /{a}/x/{proxy+}", &[("a", "t"), ("proxy", "1")]) },
    Case { routes: GREEDIES, method: "GET", path: "/t/x", want: Route("GET /{a}/{proxy+}", &[("a", "t"), ("proxy", "x")]) },
    Case { routes: GREEDIES, method: "GET", path: "/t", want: Route("ANY /{proxy+}", &[("proxy", "t")]) },
    Case { routes: GREEDIES, method: "PUT", path: "/t/x/1", want: Route("ANY /{proxy+}", &[("proxy", "t/x/1")]) },
    // An exact method beats ANY on the same shape, whatever the parameter names and order.
    Case { routes: ANY_RENAMED, method: "GET", path: "/pets/1", want: Route("GET /pets/{petId}", &[("petId", "1")]) },
    Case { routes: ANY_RENAMED, method: "POST", path: "/pets/1", want: Route("ANY /pets/{id}", &[("id", "1")]) },
    Case { routes: RENAMED_ANY, method: "GET", path: "/pets/1", want: Route("GET /pets/{petId}", &[("petId", "1")]) },
    Case { routes: RENAMED_ANY, method: "HEAD", path: "/pets/1", want: Route("ANY /pets/{id}", &[("id", "1")]) },
    Case { routes: ANY_GREEDY, method: "GET", path: "/x", want: Route("GET /{proxy+}", &[("proxy", "x")]) },
    Case { routes: ANY_GREEDY, method: "GET", path: "/x/y", want: Route("GET /{a}/{proxy+}", &[("a", "x"), ("proxy", "y")]) },
    Case { routes: ANY_GREEDY, method: "POST", path: "/x/y", want: Route("ANY /{proxy+}", &[("proxy", "x/y")]) },
    Case { routes: ANY_GREEDY, method: "GET", path: "/x/", want: Route("GET /{proxy+}", &[("proxy", "x")]) },
    Case { routes: ANY_GREEDY, method: "GET", path: "/%2F", want: Route("GET /{proxy+}", &[("proxy", "/")]) },
    Case { routes: ANY_GREEDY, method: "GET", path: "/x/%2e%2e/y", want: NoMatch },
    // Literal punctuation is literal (no router syntax), compared before decoding.
    Case { routes: PUNCTUATION, method: "GET", path: "/v1.0/items", want: Route("GET /v1.0/items", &[]) },
    Case { routes: PUNCTUATION, method: "GET", path: "/v1%2E0/items", want: NoMatch },
    Case { routes: PUNCTUATION, method: "GET", path: "/a+b", want: Route("GET /a+b", &[]) },
    Case { routes: PUNCTUATION, method: "GET", path: "/a%2Bb", want: NoMatch },
    Case { routes: PUNCTUATION, method: "GET", path: "/*", want: Route("GET /*", &[]) },
    Case { routes: PUNCTUATION, method: "GET", path: "/:id", want: Route("GET /:id", &[]) },
    Case { routes: PUNCTUATION, method: "GET", path: "/5", want: NoMatch },
    Case { routes: PUNCTUATION, method: "GET", path: "/x", want: NoMatch },
    Case { routes: PUNCTUATION, method: "GET", path: "/@me", want: Route("GET /@me", &[]) },
    Case { routes: PUNCTUATION, method: "GET", path: "/a=b;c", want: Route("GET /a=b;c", &[]) },
    Case { routes: NAMES, method: "GET", path: "/files/100%25", want: Route("GET /files/{name}", &[("name", "100%")]) },
    Case { routes: NAMES, method: "GET", path: "/files/{name}", want: Route("GET /files/{name}", &[("name", "{name}")]) },
    Case { routes: CATCH_ALL, method: "GET", path: "/.", want: NoMatch },
    Case { routes: CATCH_ALL, method: "GET", path: "/..", want: NoMatch },
    Case { routes: CATCH_ALL, method: "GET", path: "/pets///", want: NoMatch },
    // A literal that fails deeper gives way to a parameter.
    Case { routes: BACKTRACK, method: "GET", path: "/a/b/c", want: Route("GET /a/b/c", &[]) },
    Case { routes: BACKTRACK, method: "GET", path: "/a/b/d", want: Route("GET /a/{x}/d", &[("x", "b")]) },
    Case { routes: BACKTRACK, method: "GET", path: "/a/z/d", want: Route("GET /a/{x}/d", &[("x", "z")]) },
    Case { routes: BACKTRACK, method: "GET", path: "/a/b/e", want: NoMatch },
];

/// Runs one row; `Err` describes how it went wrong.
fn run(case: &Case) -> Result<(), String> {
    let mut router = Router::new();
    for key in case.routes {
        router
            .insert(key, *key)
            .map_err(|e| format!("insert failed: {e}"))?;
    }
    let method = Method::from_bytes(case.method.as_bytes()).map_err(|e| e.to_string())?;
    let got = router.at(&method, case.path).map(|m| {
        let params: Vec<(String, String)> = m
            .params()
            .map(|(name, value)| (name.to_owned(), value.into_owned()))
            .collect();
        assert_eq!(
            m.route_key(),
            *m.value,
            "route_key() is not the key inserted"
        );
        (m.route_key().to_owned(), params)
    });
    let want = match &case.want {
        Route(key, params) => Some((
            (*key).to_owned(),
            params
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect::<Vec<_>>(),
        )),
        NoMatch => None,
    };
    if got == want {
        Ok(())
    } else {
        Err(format!("expected {want:?}, got {got:?}"))
    }
}

#[test]
fn router_table() {
    assert!(
        CASES.len() >= 45,
        "the table shrank to {} rows",
        CASES.len()
    );
    let failures: Vec<String> = CASES
        .iter()
        .filter_map(|case| {
            run(case).err().map(|why| {
                format!(
                    "{} {:?} with {:?}: {why}",
                    case.method, case.path, case.routes
                )
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} router cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

const HTTP_API: &str = r#"
name: http-table
protocol: http
routes:
  GET /pets/{id}:
    integration: { type: mock, body: pet }
  $default:
    integration: { type: mock, statusCode: 200, body: default }
stages:
  $default: {}
  prod: {}
"#;

const HTTP_API_NO_DEFAULT_ROUTE: &str = r#"
name: http-table
routes:
  GET /pets/{id}:
    integration: { type: mock, body: pet }
stages:
  $default: {}
"#;

const REST_API: &str = r#"
name: rest-table
protocol: rest
routes:
  GET /pets/{id}:
    integration: { type: mock, body: pet }
  ANY /files/{proxy+}:
    integration: { type: mock, body: files }
stages:
  prod: {}
"#;

fn gateway(yaml: &str) -> Gateway {
    let def = ApiDefinition::from_str_as(yaml, Format::Yaml).expect("definition parses");
    Gateway::new(&def).expect("definition compiles")
}

async fn call(gateway: &Gateway, method: &str, path: &str) -> (u16, String) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .body(Bytes::new())
        .expect("a valid request");
    let response = gateway.handle(request).await;
    // HTTP APIs answer with `apigw-requestid`; REST APIs with `x-amzn-RequestId` and
    // `x-amz-apigw-id` (recorded in LocalStack's test_apigateway_lambda.snapshot.json,
    // `invoke-api-with-headers`).
    let id = ["apigw-requestid", "x-amzn-requestid"]
        .iter()
        .find(|name| response.headers().contains_key(**name));
    assert!(id.is_some(), "{method} {path}: no request id header");
    let body = String::from_utf8(response.body().to_vec()).expect("a UTF-8 body");
    (response.status().as_u16(), body)
}

const NOT_FOUND: &str = r#"{"message":"Not Found"}"#;
const MISSING_TOKEN: &str = r#"{"message":"Missing Authentication Token"}"#;

#[tokio::test]
async fn http_api_answers_404_when_no_route_matches() {
    let gw = gateway(HTTP_API_NO_DEFAULT_ROUTE);
    assert_eq!(call(&gw, "GET", "/pets/1").await, (200, "pet".into()));
    for (method, path) in [
        ("GET", "/nothing"),
        ("POST", "/pets/1"),
        ("HEAD", "/pets/1"),
        ("GET", "/pets"),
        ("GET", "/pets/%FF"),
        ("GET", "/Pets/1"),
    ] {
        let (status, body) = call(&gw, method, path).await;
        assert_eq!(status, 404, "{method} {path}");
        if method != "HEAD" {
            assert_eq!(body, NOT_FOUND, "{method} {path}");
        }
    }
}

#[tokio::test]
async fn http_api_unroutable_paths_skip_the_default_route() {
    let gw = gateway(HTTP_API);
    assert_eq!(call(&gw, "GET", "/pets/1").await, (200, "pet".into()));
    assert_eq!(call(&gw, "GET", "/other").await, (200, "default".into()));
    assert_eq!(call(&gw, "GET", "/prod/pets/1").await, (200, "pet".into()));
    assert_eq!(
        call(&gw, "GET", "/prod/other").await,
        (200, "default".into())
    );
    for path in [
        "/pets/../pets/1",
        "/pets/%2e%2E",
        "/a//b",
        "/./other",
        "/prod/pets/../x",
        "/prod//x",
        "/prod/%2E",
    ] {
        assert_eq!(
            call(&gw, "GET", path).await,
            (404, NOT_FOUND.into()),
            "{path}"
        );
    }
}

#[tokio::test]
async fn http_api_without_a_default_stage_answers_404_outside_its_stages() {
    let gw = gateway(&HTTP_API_NO_DEFAULT_ROUTE.replace("$default: {}", "prod: {}"));
    assert_eq!(call(&gw, "GET", "/prod/pets/1").await, (200, "pet".into()));
    assert_eq!(call(&gw, "GET", "/pets/1").await, (404, NOT_FOUND.into()));
}

#[tokio::test]
async fn rest_api_answers_403_forbidden_outside_its_stages() {
    let gw = gateway(REST_API);
    for path in ["/pets/1", "/dev/pets/1", "/", "/Prod/pets/1"] {
        assert_eq!(
            call(&gw, "GET", path).await,
            (403, r#"{"message":"Forbidden"}"#.into()),
            "{path}"
        );
    }
}

#[tokio::test]
async fn rest_api_answers_403_missing_authentication_token_when_no_route_matches() {
    let gw = gateway(REST_API);
    assert_eq!(call(&gw, "GET", "/prod/pets/1").await, (200, "pet".into()));
    assert_eq!(
        call(&gw, "DELETE", "/prod/files/a/b").await,
        (200, "files".into())
    );
    for (method, path) in [
        ("GET", "/prod/nothing"),
        ("POST", "/prod/pets/1"),
        ("GET", "/prod/pets"),
        ("GET", "/prod/files"),
        ("GET", "/prod/files/../pets/1"),
        ("GET", "/prod/files/%2e%2e"),
        ("PROPFIND", "/prod/pets/1"),
    ] {
        assert_eq!(
            call(&gw, method, path).await,
            (403, MISSING_TOKEN.into()),
            "{method} {path}"
        );
    }
}
