//! OpenAPI import end to end: three documents in tests/data (AWS's PetStore HTTP API, the seed's
//! openapi.yaml for GET /users/{userId}, AWS's request-validation sample with authorizers), each
//! imported and served beside its native twin (`*.native.yaml`, written by hand), with real
//! plugins; the two gateways must answer every request alike, and as the case expects. One
//! document is also served by `portico-serve --openapi` over real HTTP.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use jsonwebtoken::{Algorithm, EncodingKey};
use portico::config::Protocol;
use portico::openapi::{FunctionsFile, WarningKind};
use portico::{ApiDefinition, Gateway, KvStore, MemoryKv, OpenApiImport, OpenApiOptions};
use portico_tests::{plugins_dist, portico_serve_binary, sign, unix_now, ServeProcess};
use serde_json::Value;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(name)
}

/// The imported API and its native twin, each on a store of its own (seeded alike).
struct Twins {
    imported: Gateway,
    native: Gateway,
    import: OpenApiImport,
}

/// `{name}.openapi.yaml` imported with `options` and `{name}.functions.yaml`, and
/// `{name}.native.yaml`.
fn twins(name: &str, options: OpenApiOptions, plugins: &[&str], seed: fn(&MemoryKv)) -> Twins {
    plugins_dist(plugins);
    let functions = FunctionsFile::from_file(data(&format!("{name}.functions.yaml")))
        .unwrap_or_else(|e| panic!("{e}"));
    let import = ApiDefinition::from_openapi_file(
        data(&format!("{name}.openapi.yaml")),
        &options.functions(functions),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let gateway = |definition: ApiDefinition| {
        let kv = Arc::new(MemoryKv::new());
        seed(&kv);
        Gateway::builder(definition)
            .base_dir(data(""))
            .kv_store(kv)
            .build()
    };
    let imported =
        gateway(import.definition.clone()).unwrap_or_else(|e| panic!("{}", import.explain(e)));
    let native = gateway(
        ApiDefinition::from_file(data(&format!("{name}.native.yaml"))).expect("twin parses"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    Twins {
        imported,
        native,
        import,
    }
}

/// One request, the status both gateways must answer, and a text the body must contain.
struct Case {
    method: &'static str,
    uri: String,
    headers: Vec<(&'static str, String)>,
    body: &'static str,
    status: u16,
    contains: &'static str,
}

fn case(method: &'static str, uri: &str, status: u16, contains: &'static str) -> Case {
    Case {
        method,
        uri: uri.to_owned(),
        headers: Vec::new(),
        body: "",
        status,
        contains,
    }
}

impl Case {
    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
    fn body(mut self, body: &'static str) -> Self {
        self.body = body;
        self
    }
}

struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: String,
}

async fn send(gateway: &Gateway, case: &Case) -> Answer {
    let mut request = http::Request::builder().method(case.method).uri(&case.uri);
    for (name, value) in &case.headers {
        request = request.header(*name, value);
    }
    let response = gateway
        .handle(
            request
                .body(Bytes::from_static(case.body.as_bytes()))
                .expect("request"),
        )
        .await;
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: String::from_utf8_lossy(response.body()).into_owned(),
    }
}

/// The body without what differs from request to request (the echo plugin's request id and
/// time).
fn normalized(body: &str) -> Value {
    match serde_json::from_str::<Value>(body) {
        Ok(Value::Object(mut fields)) => {
            fields.remove("requestId");
            fields.remove("requestTimeEpochMs");
            Value::Object(fields)
        }
        Ok(other) => other,
        Err(_) => Value::String(body.to_owned()),
    }
}

/// Headers whose values must agree (the request id header never does).
const COMPARED_HEADERS: [&str; 7] = [
    "content-type",
    "access-control-allow-origin",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "www-authenticate",
    "x-table",
    "x-validation",
];

/// Sends every case to both gateways; collects every difference before failing.
async fn compare(twins: &Twins, cases: &[Case]) {
    let mut failures = Vec::new();
    for case in cases {
        let imported = send(&twins.imported, case).await;
        let native = send(&twins.native, case).await;
        let what = format!("{} {}", case.method, case.uri);
        if imported.status != case.status || native.status != case.status {
            failures.push(format!(
                "{what}: expected {}, imported answered {} {}, native {} {}",
                case.status, imported.status, imported.body, native.status, native.body
            ));
        }
        if normalized(&imported.body) != normalized(&native.body) {
            failures.push(format!(
                "{what}: bodies differ:\n  imported {}\n  native   {}",
                imported.body, native.body
            ));
        }
        if !imported.body.contains(case.contains) {
            failures.push(format!(
                "{what}: the body lacks {:?}: {}",
                case.contains, imported.body
            ));
        }
        for name in COMPARED_HEADERS {
            if imported.headers.get(name) != native.headers.get(name) {
                failures.push(format!(
                    "{what}: header {name} differs: imported {:?}, native {:?}",
                    imported.headers.get(name),
                    native.headers.get(name)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn no_seed(_: &MemoryKv) {}

// AWS's PetStore HTTP API ("Working with OpenAPI definitions for HTTP APIs"): routes, the
// shared integration ($ref into components/x-amazon-apigateway-integrations), the greedy
// x-amazon-apigateway-any-method route, CORS (x-amazon-apigateway-cors), and no validation
// without a request validator (HTTP APIs validate nothing: the import's "Info" category).
#[tokio::test(flavor = "multi_thread")]
async fn petstore_routes_as_its_native_twin() {
    let twins = twins("petstore", OpenApiOptions::new(), &["echo"], no_seed);
    assert!(
        twins.import.warnings.is_empty(),
        "{:?}",
        twins.import.warnings
    );
    let origin = "https://shop.example";
    compare(
        &twins,
        &[
            case(
                "GET",
                "/pets?type=dog&page=2",
                200,
                r#""routeKey":"GET /pets""#,
            ),
            case("POST", "/pets", 200, r#""routeKey":"POST /pets""#)
                .body(r#"{"type":"lizard","price":"free"}"#),
            case("GET", "/pets/7", 200, r#""petId":"7""#),
            case("DELETE", "/pets/7", 200, r#""routeKey":"ANY /{proxy+}""#),
            case(
                "GET",
                "/store/inventory/today",
                200,
                r#""proxy":"store/inventory/today""#,
            ),
            // The servers' base path is ignored, as AWS's import does by default.
            case(
                "GET",
                "/petstore/pets",
                200,
                r#""routeKey":"ANY /{proxy+}""#,
            ),
            case("GET", "/", 404, r#"{"message":"Not Found"}"#),
            case("OPTIONS", "/pets", 204, "")
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "content-type"),
            case("GET", "/pets", 200, "GET /pets").header("origin", origin),
        ],
    )
    .await;
}

/// The seed's users table holds one user.
fn seed_users(kv: &MemoryKv) {
    let user = serde_json::json!({
        "PK": "USER#usr_abcdefghijkl", "SK": "PROFILE", "userId": "usr_abcdefghijkl",
        "name": "Alice", "email": "alice@example.com",
    });
    kv.put(
        "users",
        "USER#usr_abcdefghijkl#PROFILE",
        user.to_string().as_bytes(),
    )
    .expect("seeded");
}

// The seed's openapi.yaml (code example 11, verbatim), run by the seed's own get_user handler
// (python_users). Its parameter pattern and enum cannot be validated (API Gateway's request
// validators check only that required parameters are present: "Basic request validation" in
// "Use request validation in API Gateway"), so they are warnings, and requests that break them
// reach the handler on both gateways.
#[tokio::test(flavor = "multi_thread")]
async fn seed_users_openapi_as_its_native_twin() {
    let twins = twins(
        "users",
        OpenApiOptions::new(),
        &["python_users"],
        seed_users,
    );
    let warnings: Vec<(WarningKind, String)> = twins
        .import
        .warnings
        .iter()
        .map(|w| (w.kind, w.key_path.to_string()))
        .collect();
    assert_eq!(
        warnings,
        [
            (
                WarningKind::NotValidated,
                "paths.\"/users/{userId}\".get.parameters[0].schema".to_owned()
            ),
            (
                WarningKind::NotValidated,
                "paths.\"/users/{userId}\".get.parameters[1].schema".to_owned()
            ),
        ]
    );
    assert!(twins.import.warnings[0]
        .message
        .starts_with("pattern of parameter \"userId\""));
    assert!(twins.import.warnings[1]
        .message
        .starts_with("enum of parameter \"fields\""));
    compare(
        &twins,
        &[
            case("GET", "/users/usr_abcdefghijkl", 200, r#""name": "Alice""#),
            case("GET", "/users/usr_nosuchuser0", 404, "User not found"),
            case("GET", "/users/not-the-pattern", 404, "User not found"),
            case(
                "GET",
                "/users/usr_abcdefghijkl?fields=bogus",
                200,
                "alice@example.com",
            ),
            case(
                "POST",
                "/users/usr_abcdefghijkl",
                404,
                r#"{"message":"Not Found"}"#,
            ),
            case("GET", "/users", 404, r#"{"message":"Not Found"}"#),
        ],
    )
    .await;

    // AWS's failonwarnings=true: the same document refused, naming the first warning.
    let functions = FunctionsFile::from_file(data("users.functions.yaml")).expect("functions");
    let err = ApiDefinition::from_openapi_file(
        data("users.openapi.yaml"),
        &OpenApiOptions::new()
            .functions(functions)
            .fail_on_warnings(true),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("users.openapi.yaml"), "{err}");
    assert!(err.contains("2 warning(s)"), "{err}");
}

const SECRET: &[u8] = b"portico-openapi-e2e-hs256-secret-0123456789";

fn jwt(scope: &str) -> String {
    let now = unix_now();
    let claims = serde_json::json!({
        "iss": "https://issuer.example.com", "aud": "portico-e2e", "sub": "ann",
        "scope": scope, "iat": now, "exp": now + 300,
    });
    sign(
        Algorithm::HS256,
        "e2e",
        &EncodingKey::from_secret(SECRET),
        &claims,
    )
}

// AWS's request-validation sample with authorizers, imported as a REST API on stage prod:
// "x-amazon-apigateway-request-validators" (params-only for the API, all for POST), the API key
// scheme, TOKEN and REQUEST Lambda authorizers ("x-amazon-apigateway-authorizer object"), a JWT
// authorizer with scopes, a mock, a gateway response, and a Lambda ARN whose alias is a stage
// variable.
#[tokio::test(flavor = "multi_thread")]
async fn authorizers_and_validators_as_the_native_twin() {
    let twins = twins(
        "auth",
        OpenApiOptions::new().protocol(Protocol::Rest).stage("prod"),
        &["echo", "policy_authorizer"],
        no_seed,
    );
    assert!(
        twins.import.warnings.is_empty(),
        "{:?}",
        twins.import.warnings
    );
    let key = "k-openapi-partner-0123456789";
    let good = r#"{"type":"dog","name":"Rex","price":100}"#;
    compare(
        &twins,
        &[
            case(
                "GET",
                "/prod/validation?q1=a",
                200,
                r#""routeKey":"GET /validation""#,
            )
            .header("x-api-key", key),
            case(
                "GET",
                "/prod/validation",
                400,
                "Missing required request parameters: [q1]",
            )
            .header("x-api-key", key),
            case("GET", "/prod/validation?q1=a", 403, "Forbidden"),
            case("POST", "/prod/validation", 200, "Rex")
                .header("x-api-key", key)
                .header("h1", "v")
                .body(good),
            case("POST", "/prod/validation", 422, "/price")
                .header("x-api-key", key)
                .header("h1", "v")
                .body(r#"{"type":"dog","name":"Rex","price":10}"#),
            case("POST", "/prod/validation", 400, "[h1]")
                .header("x-api-key", key)
                .body(good),
            case("GET", "/prod/token", 200, r#""principalId":"user""#)
                .header("authorization", "Bearer allow"),
            case("GET", "/prod/token", 403, "not authorized")
                .header("authorization", "Bearer deny"),
            case("GET", "/prod/token", 401, "Unauthorized").header("authorization", "allow"),
            case("GET", "/prod/token", 401, "Unauthorized"),
            case(
                "PUT",
                "/prod/request/a/b?tenant=t",
                200,
                r#""routeKey":"ANY /request/{proxy+}""#,
            )
            .header("authorization", "allow")
            .header("x-api-key", key),
            case("GET", "/prod/request/a?tenant=t", 403, "Forbidden")
                .header("authorization", "allow"),
            case("GET", "/prod/request/a", 401, "Unauthorized")
                .header("authorization", "allow")
                .header("x-api-key", key),
            case("GET", "/prod/jwt", 200, r#""routeKey":"GET /jwt""#)
                .header("authorization", format!("Bearer {}", jwt("pets:read"))),
            case("GET", "/prod/jwt", 403, "Forbidden")
                .header("authorization", format!("Bearer {}", jwt("pets:write"))),
            case("GET", "/prod/jwt", 401, "Unauthorized"),
            case("GET", "/prod/mock", 200, r#"{"table": "pets-prod"}"#),
            case("GET", "/prod/nothing", 403, "Missing Authentication Token"),
        ],
    )
    .await;
}

// portico-serve --openapi: the seed's document served over real HTTP on a named stage, its
// warnings on stderr; with --fail-on-warnings it does not start.
#[tokio::test(flavor = "multi_thread")]
async fn portico_serve_serves_an_openapi_document() {
    plugins_dist(&["python_users"]);
    let openapi = data("users.openapi.yaml");
    let functions = data("users.functions.yaml");
    let serve = ServeProcess::start_with(&[
        "--openapi".as_ref(),
        openapi.as_os_str(),
        "--functions".as_ref(),
        functions.as_os_str(),
        "--stage".as_ref(),
        "dev".as_ref(),
    ]);
    let client = reqwest::Client::new();
    let answer = client
        .get(format!("{}/dev/users/usr_nosuchuser0", serve.base()))
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status().as_u16(), 404);
    assert_eq!(
        answer.text().await.expect("body"),
        r#"{"error": "User not found"}"#
    );
    let answer = client
        .get(format!("{}/users/usr_nosuchuser0", serve.base()))
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status().as_u16(), 404, "no $default stage");
    let log = serve.log();
    assert!(
        log.contains("portico-serve: warning: paths.\"/users/{userId}\".get.parameters[0].schema: pattern of parameter \"userId\" not validated"),
        "{log}"
    );

    let refused = std::process::Command::new(portico_serve_binary())
        .arg("--openapi")
        .arg(&openapi)
        .arg("--functions")
        .arg(&functions)
        .args(["--fail-on-warnings", "--listen", "127.0.0.1:0"])
        .output()
        .expect("portico-serve runs");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("users.openapi.yaml: paths.\"/users/{userId}\".get.parameters[0].schema"),
        "{stderr}"
    );
    assert!(stderr.contains("warnings are errors"), "{stderr}");

    // A function the functions file does not name: the error names the document's key.
    let missing = std::process::Command::new(portico_serve_binary())
        .arg("--openapi")
        .arg(&openapi)
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .expect("portico-serve runs");
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("paths.\"/users/{userId}\".get.x-amazon-apigateway-integration.uri: Lambda function \"GetUserFn\" has no plugin"),
        "{stderr}"
    );
}

// Export (AWS's GetExport of one stage, as OpenAPI 3.0 with API Gateway's extensions): each
// native twin exported and imported again is the same definition, so export and import say
// the same things the same way.
#[test]
fn native_twins_survive_export_and_import() {
    for (name, stage, protocol) in [
        ("petstore", "$default", Protocol::Http),
        ("users", "$default", Protocol::Http),
        ("auth", "prod", Protocol::Rest),
    ] {
        let native =
            ApiDefinition::from_file(data(&format!("{name}.native.yaml"))).expect("twin parses");
        let (again, document) = export_and_import(&native, stage, protocol);
        let before = serde_json::to_value(&native).expect("JSON");
        assert_eq!(again, before, "{name}: {document}");
    }
}

/// A route's `requestModels` are exported as its request body's media types (`$default` as
/// OpenAPI's `*/*`), as API Gateway's export writes a method's requestModels.
#[test]
fn request_models_are_exported_by_media_type() {
    let native = ApiDefinition::from_str_as(
        r#"
name: typed
protocol: rest
models:
  CreateUser: { type: object }
  Anything: { type: object }
routes:
  POST /users:
    integration: { type: mock }
    requestModels: { application/json: CreateUser, $default: Anything }
stages:
  prod: {}
"#,
        portico::Format::Yaml,
    )
    .expect("parses");
    let export = native.to_openapi("prod").expect("exports");
    let content = &export.document["paths"]["/users"]["post"]["requestBody"]["content"];
    assert_eq!(
        content["application/json"]["schema"]["$ref"],
        "#/components/schemas/CreateUser"
    );
    assert_eq!(
        content["*/*"]["schema"]["$ref"],
        "#/components/schemas/Anything"
    );
}

/// Exports `native` (stage `stage`) and imports the document again as `protocol`: the
/// definition it gives, and the document.
fn export_and_import(native: &ApiDefinition, stage: &str, protocol: Protocol) -> (Value, Value) {
    let export = native.to_openapi(stage).expect("exports");
    assert!(export.left_out.is_empty(), "{:?}", export.left_out);
    let text = serde_json::to_string(&export.document).expect("JSON");
    let mut options = OpenApiOptions::new()
        .protocol(protocol)
        .functions(export.functions.clone());
    if stage != "$default" {
        options = options.stage(stage);
    }
    let import = ApiDefinition::from_openapi(&text, portico::Format::Json, &options)
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(import.warnings.is_empty(), "{:?}\n{text}", import.warnings);
    let again = serde_json::to_value(&import.definition).expect("JSON");
    (again, export.document)
}

/// A REST API's cache keys, contentHandling and gateway-response headers mapped from request
/// values survive export and import. AWS keeps cache keys and contentHandling on the
/// integration ("x-amazon-apigateway-integration object": `cacheKeyParameters`,
/// `contentHandling`) and writes mapping expressions without `$`
/// (request-response-data-mappings.md); "x-amazon-apigateway-gateway-responses.responseParameters
/// object" shows `method.request.header.Accept` and `'*.example.domain'` values.
#[test]
fn rest_cache_keys_content_handling_and_mapped_headers_survive_export_and_import() {
    let native = ApiDefinition::from_str_as(
        r#"
name: cached
apiId: cached
protocol: rest
binaryMediaTypes: [image/png]
integrations:
  items: { type: http_proxy, uri: "http://upstream.example/items", method: GET }
routes:
  GET /items:
    integration: items
    requestParameters: { method.request.querystring.page: false, method.request.header.X-Tenant: true }
    cacheKeyParameters: [method.request.querystring.page, method.request.header.X-Tenant]
  POST /upload:
    integration: { type: http_proxy, uri: "http://upstream.example/upload", method: POST, contentHandling: CONVERT_TO_TEXT }
gatewayResponses:
  DEFAULT_4XX:
    headers:
      Access-Control-Allow-Origin: '*.example.domain'
      from-request-header: method.request.header.Accept
      from-stage: stageVariables.ENV
      request-id: context.requestId
stages:
  prod:
    variables: { ENV: production }
"#,
        portico::Format::Yaml,
    )
    .expect("parses");
    let (again, document) = export_and_import(&native, "prod", Protocol::Rest);
    let get = &document["paths"]["/items"]["get"]["x-amazon-apigateway-integration"];
    assert_eq!(
        get["cacheKeyParameters"],
        serde_json::json!([
            "method.request.querystring.page",
            "method.request.header.X-Tenant"
        ])
    );
    assert_eq!(
        document["paths"]["/upload"]["post"]["x-amazon-apigateway-integration"]["contentHandling"],
        "CONVERT_TO_TEXT"
    );
    let mappings =
        &document["x-amazon-apigateway-gateway-responses"]["DEFAULT_4XX"]["responseParameters"];
    assert_eq!(
        mappings["gatewayresponse.header.Access-Control-Allow-Origin"],
        "'*.example.domain'"
    );
    assert_eq!(
        mappings["gatewayresponse.header.from-request-header"],
        "method.request.header.Accept"
    );
    assert_eq!(
        mappings["gatewayresponse.header.request-id"],
        "context.requestId"
    );
    // The shared integration went inline (a `$ref` cannot carry cache keys): compare routes'
    // meaning, not their spelling.
    let before = serde_json::to_value(&native).expect("JSON");
    assert_eq!(
        again["routes"]["GET /items"]["cacheKeyParameters"],
        before["routes"]["GET /items"]["cacheKeyParameters"]
    );
    assert_eq!(
        again["routes"]["GET /items"]["integration"],
        before["integrations"]["items"]
    );
    assert_eq!(
        again["routes"]["POST /upload"],
        before["routes"]["POST /upload"]
    );
    assert_eq!(again["gatewayResponses"], before["gatewayResponses"]);

    // `$request.` spellings are exported in AWS's, and an undeclared key is declared.
    let native = ApiDefinition::from_str_as(
        r#"
name: spelled
protocol: rest
routes:
  GET /items:
    integration: { type: mock }
    cacheKeyParameters: [$request.querystring.page]
stages:
  prod: {}
"#,
        portico::Format::Yaml,
    )
    .expect("parses");
    let export = native.to_openapi("prod").expect("exports");
    let get = &export.document["paths"]["/items"]["get"];
    assert_eq!(
        get["x-amazon-apigateway-integration"]["cacheKeyParameters"],
        serde_json::json!(["method.request.querystring.page"])
    );
    assert_eq!(
        get["parameters"],
        serde_json::json!([{"name": "page", "in": "query", "required": false, "schema": {"type": "string"}}])
    );
    // A header template mixing text and variables has no mapping expression: left out.
    let native = ApiDefinition::from_str_as(
        r#"
name: mixed
protocol: rest
routes:
  GET /items: { integration: { type: mock } }
gatewayResponses:
  DEFAULT_4XX: { headers: { x-id: "id-$context.requestId" } }
stages:
  prod: {}
"#,
        portico::Format::Yaml,
    )
    .expect("parses");
    let export = native.to_openapi("prod").expect("exports");
    assert_eq!(
        export
            .left_out
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["gatewayResponses.DEFAULT_4XX.headers.x-id"]
    );
}

/// An HTTP API's parameter mapping survives export and import: AWS's
/// "x-amazon-apigateway-integration object" carries `requestParameters` and
/// `responseParameters` for HTTP APIs with the native keys' spelling
/// (`append:header.x: $request.header.y`, `"404": {overwrite:statuscode: "410"}`).
#[test]
fn http_parameter_mapping_survives_export_and_import() {
    let native = ApiDefinition::from_str_as(
        r#"
name: mapped
apiId: mapped
protocol: http
routes:
  GET /items:
    integration:
      type: http_proxy
      uri: "http://upstream.example/items"
      method: GET
      requestParameters:
        append:header.x-request-id: $context.requestId
        remove:querystring.debug: "''"
      responseParameters:
        "404": { overwrite:statuscode: "410" }
stages:
  $default: {}
"#,
        portico::Format::Yaml,
    )
    .expect("parses");
    let (again, document) = export_and_import(&native, "$default", Protocol::Http);
    assert_eq!(
        document["paths"]["/items"]["get"]["x-amazon-apigateway-integration"]["requestParameters"]
            ["append:header.x-request-id"],
        "$context.requestId"
    );
    let before = serde_json::to_value(&native).expect("JSON");
    assert_eq!(again, before);
}
