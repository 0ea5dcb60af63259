//! Loading errors, one test per class: every error names the key path where the problem is
//! (`routes."POST /users".requestModel: unknown model "CreateUsr"`), and errors from a file
//! name the file.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use portico::{ApiDefinition, Error, Format, Gateway};

/// A definition that loads; the tests below break it one way at a time.
const VALID: &str = r#"
name: t
routes:
  GET /x:
    integration: { type: mock, body: ok }
stages:
  $default: {}
"#;

/// The error of loading `text` (parse, then compile), or a panic if it loads.
fn error_of(text: &str, format: Format) -> Error {
    match ApiDefinition::from_str_as(text, format).and_then(|def| Gateway::new(&def)) {
        Ok(_) => panic!("loaded without an error:\n{text}"),
        Err(e) => e,
    }
}

fn yaml_error(yaml: &str) -> Error {
    error_of(yaml, Format::Yaml)
}

/// Asserts that `error` is at `key_path` (as printed) and its message says `says`.
#[track_caller]
fn assert_at(error: &Error, key_path: &str, says: &str) {
    let shown = error.to_string();
    let at = error.key_path().map(|p| p.to_string());
    assert_eq!(at.as_deref(), Some(key_path), "key path of: {shown}");
    assert!(
        shown.starts_with(&format!("{key_path}: ")),
        "`{shown}` does not start with the key path `{key_path}`"
    );
    assert!(shown.contains(says), "`{shown}` does not say `{says}`");
}

/// Like [`assert_at`], for a feature that is refused as not supported yet.
#[track_caller]
fn assert_not_supported(error: &Error, key_path: &str) {
    assert!(
        matches!(error, Error::NotSupported { .. }),
        "not a NotSupported error: {error:?}"
    );
    assert_at(error, key_path, "not supported yet");
}

/// `VALID` with its route replaced by `route` (YAML lines under `routes:`).
fn with_route(route: &str) -> String {
    format!("name: t\nroutes:\n{route}\nstages:\n  $default: {{}}\n")
}

#[test]
fn the_base_definition_loads() {
    let def = ApiDefinition::from_str_as(VALID, Format::Yaml).unwrap();
    Gateway::new(&def).unwrap();
}

#[test]
fn the_documented_example_reads_exactly_so() {
    let e = yaml_error(
        r#"
name: users-api
models:
  CreateUser: { type: object }
routes:
  POST /users:
    integration: { type: mock }
    requestModel: CreateUsr
stages:
  $default: {}
"#,
    );
    assert_eq!(
        e.to_string(),
        r#"routes."POST /users".requestModel: unknown model "CreateUsr""#
    );
}

#[test]
fn unknown_top_level_key() {
    let e = yaml_error(&format!("{VALID}nmae: t\n"));
    assert!(matches!(e, Error::Config { .. }), "{e:?}");
    assert_at(&e, "nmae", "unknown field `nmae`");
    let e = error_of(
        r#"{"name":"t","stages":{"$default":{}},"nmae":"t"}"#,
        Format::Json,
    );
    assert_at(&e, "nmae", "unknown field `nmae`");
}

#[test]
fn unknown_key_in_a_route() {
    let e = yaml_error(&with_route(
        "  GET /x:\n    integration: { type: mock }\n    integraton: m\n",
    ));
    assert_at(
        &e,
        r#"routes."GET /x".integraton"#,
        "unknown field `integraton`",
    );
}

#[test]
fn unknown_key_in_an_inline_integration() {
    let e = yaml_error(&with_route(
        "  GET /x:\n    integration: { type: mock, bdy: hi }\n",
    ));
    assert_at(
        &e,
        r#"routes."GET /x".integration.bdy"#,
        "unknown field `bdy`",
    );
}

#[test]
fn unknown_key_in_a_named_integration() {
    let e = yaml_error(&format!(
        "{VALID}integrations:\n  m: {{ type: mock, stauts: 200 }}\n"
    ));
    assert_at(&e, "integrations.m.stauts", "unknown field `stauts`");
}

#[test]
fn unknown_key_in_a_stage() {
    let e = yaml_error(&VALID.replace("$default: {}", "prod: { varibles: { A: b } }"));
    assert_at(&e, "stages.prod.varibles", "unknown field `varibles`");
}

#[test]
fn wrong_type() {
    let e = yaml_error(&with_route(
        "  GET /x:\n    integration: { type: mock, statusCode: abc }\n",
    ));
    assert_at(&e, r#"routes."GET /x".integration.statusCode"#, "invalid");
    let e = yaml_error(&VALID.replace(
        "$default: {}",
        "prod: { throttle: { rateLimit: fast, burstLimit: 1 } }",
    ));
    assert_at(&e, "stages.prod.throttle.rateLimit", "invalid");
    let e = yaml_error(&VALID.replace("  $default: {}\n", "  - prod\n"));
    assert_at(&e, "stages", "invalid type");
    let e = error_of(
        r#"{"name":"t","routes":{"GET /x":{"integration":{"type":"mock","statusCode":"200"}}},"stages":{"$default":{}}}"#,
        Format::Json,
    );
    assert_at(
        &e,
        r#"routes."GET /x".integration.statusCode"#,
        "invalid type",
    );
}

/// The same mistake reads the same in YAML and in JSON: the key path once, then the message
/// (yaml_serde's own path prefix must not leak into it).
#[test]
fn yaml_and_json_report_a_mistake_alike() {
    let mut differences = Vec::new();
    for (yaml, json) in [
        (
            with_route("  GET /x:\n    integration: { type: mock }\n    integraton: m\n"),
            r#"{"name":"t","routes":{"GET /x":{"integration":{"type":"mock"},"integraton":"m"}},"stages":{"$default":{}}}"#,
        ),
        (
            with_route("  GET /x:\n    integration: { type: mock, statusCode: abc }\n"),
            r#"{"name":"t","routes":{"GET /x":{"integration":{"type":"mock","statusCode":"abc"}}},"stages":{"$default":{}}}"#,
        ),
        (
            VALID.replace("$default: {}", "prod: { variables: { A: a, A: b } }"),
            r#"{"name":"t","routes":{},"stages":{"prod":{"variables":{"A":"a","A":"b"}}}}"#,
        ),
    ] {
        let without_location = |e: Error| {
            let shown = e.to_string();
            shown[..shown.find(" (at line").unwrap_or(shown.len())].to_owned()
        };
        let (yaml, json) = (
            without_location(yaml_error(&yaml)),
            without_location(error_of(json, Format::Json)),
        );
        if yaml != json {
            differences.push(format!("YAML: {yaml}\nJSON: {json}"));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

#[test]
fn duplicate_map_key_in_yaml() {
    let e = yaml_error(&with_route(
        "  GET /x:\n    integration: { type: mock }\n  GET /x:\n    integration: { type: mock }\n",
    ));
    assert_at(&e, "routes", r#"duplicate key "GET /x""#);
    let e = yaml_error(&VALID.replace("$default: {}", "prod: { variables: { A: a, A: b } }"));
    assert_at(&e, "stages.prod.variables", r#"duplicate key "A""#);
}

#[test]
fn duplicate_map_key_in_json() {
    let e = error_of(
        r#"{"name":"t","routes":{"GET /x":{"integration":"m"},"GET /x":{"integration":"m"}},"stages":{"$default":{}}}"#,
        Format::Json,
    );
    assert_at(&e, "routes", r#"duplicate key "GET /x""#);
    let e = error_of(
        r#"{"name":"t","routes":{},"stages":{"prod":{},"prod":{}}}"#,
        Format::Json,
    );
    assert_at(&e, "stages", r#"duplicate key "prod""#);
}

#[test]
fn unknown_model() {
    let e = yaml_error(&with_route(
        "  POST /users:\n    integration: { type: mock }\n    requestModel: CreateUsr\n",
    ));
    assert_at(
        &e,
        r#"routes."POST /users".requestModel"#,
        r#"unknown model "CreateUsr""#,
    );
}

#[test]
fn unknown_authorizer() {
    let e = yaml_error(&with_route(
        "  GET /x:\n    integration: { type: mock }\n    authorizer: cognto\n",
    ));
    assert_at(
        &e,
        r#"routes."GET /x".authorizer"#,
        r#"unknown authorizer "cognto""#,
    );
}

#[test]
fn unknown_integration() {
    let e = yaml_error(&with_route("  GET /x:\n    integration: users-fn\n"));
    assert_at(
        &e,
        r#"routes."GET /x".integration"#,
        r#"unknown integration "users-fn""#,
    );
}

#[test]
fn unknown_plugin_of_an_integration() {
    let e = yaml_error(&format!(
        "{VALID}integrations:\n  users-fn: {{ type: plugin, plugin: usres }}\n"
    ));
    assert_at(
        &e,
        "integrations.users-fn.plugin",
        r#"unknown plugin "usres""#,
    );
    let e = yaml_error(&with_route(
        "  GET /x:\n    integration: { type: plugin, plugin: usres }\n",
    ));
    assert_at(
        &e,
        r#"routes."GET /x".integration.plugin"#,
        r#"unknown plugin "usres""#,
    );
}

#[test]
fn unknown_usage_plan_of_an_api_key() {
    let e = yaml_error(&format!(
        "{VALID}usagePlans:\n  free: {{ stages: [$default] }}\napiKeys:\n  - {{ name: k, value: k-0123456789abcdef0123, usagePlans: [free, fre] }}\n"
    ));
    assert_at(
        &e,
        "apiKeys[0].usagePlans[1]",
        r#"unknown usage plan "fre""#,
    );
}

#[test]
fn unknown_stage_of_a_usage_plan() {
    let e = yaml_error(&format!(
        "{VALID}usagePlans:\n  free: {{ stages: [prod] }}\n"
    ));
    assert_at(&e, "usagePlans.free.stages[0]", r#"unknown stage "prod""#);
}

#[test]
fn unknown_route_in_route_settings() {
    let e = yaml_error(&VALID.replace(
        "$default: {}",
        "prod:\n    routeSettings:\n      GET /y: { throttle: { rateLimit: 1, burstLimit: 1 } }",
    ));
    assert_at(
        &e,
        r#"stages.prod.routeSettings."GET /y""#,
        r#"unknown route "GET /y""#,
    );
}

#[test]
fn duplicate_routes_differing_only_in_parameter_names() {
    let e = yaml_error(&with_route(
        "  GET /a/{id}:\n    integration: { type: mock }\n  GET /a/{x}:\n    integration: { type: mock }\n",
    ));
    assert_at(
        &e,
        r#"routes."GET /a/{x}""#,
        r#"duplicate of route "GET /a/{id}""#,
    );
}

#[test]
fn malformed_route_keys() {
    for (key, says) in [
        ("/a", "METHOD /path"),
        ("get /a", "unknown method \"get\""),
        ("FETCH /a", "unknown method \"FETCH\""),
        ("GET a", "must start with '/'"),
        ("GET /a/", "must not end with '/'"),
        ("GET /a//b", "empty segment"),
        ("GET /{proxy+}/a", "must be the last segment"),
        ("GET /a{id}", "must be a whole segment"),
        ("GET /{}", "bad path variable"),
        ("GET /a/../b", "bad segment"),
        ("GET /a b", "not allowed"),
    ] {
        let e = yaml_error(&with_route(&format!(
            "  '{key}':\n    integration: {{ type: mock }}\n"
        )));
        let at = format!("routes.\"{key}\"");
        assert_at(&e, &at, says);
    }
}

#[test]
fn bad_stage_names() {
    let e = yaml_error(&VALID.replace("$default: {}", "'pr od': {}"));
    assert_at(&e, r#"stages."pr od""#, r#"bad stage name "pr od""#);
    let e = yaml_error(&VALID.replace("$default: {}", "prod/v1: {}"));
    assert_at(&e, r#"stages."prod/v1""#, "bad stage name");
    let long = "s".repeat(129);
    let e = yaml_error(&VALID.replace("$default: {}", &format!("{long}: {{}}")));
    assert_at(&e, &format!("stages.{long}"), "bad stage name");
    let e = yaml_error(&VALID.replace("name: t", "name: t\nprotocol: rest"));
    assert_at(&e, "stages.$default", "REST APIs have no $default stage");
}

#[test]
fn bad_stage_variable_names() {
    for (name, at) in [
        ("a-b", "stages.prod.variables.a-b".to_owned()),
        ("a.b", r#"stages.prod.variables."a.b""#.to_owned()),
        ("'a b'", r#"stages.prod.variables."a b""#.to_owned()),
        (
            &"v".repeat(65),
            format!("stages.prod.variables.{}", "v".repeat(65)),
        ),
    ] {
        let e = yaml_error(&VALID.replace(
            "$default: {}",
            &format!("prod: {{ variables: {{ {name}: x }} }}"),
        ));
        assert_at(&e, &at, "bad stage variable name");
    }
}

#[test]
fn bad_stage_variable_values() {
    for value in [
        "'has space'",
        "''",
        "'a\"b'",
        "'x<y>'",
        "café",
        &"v".repeat(513),
    ] {
        let e = yaml_error(&VALID.replace(
            "$default: {}",
            &format!("prod: {{ variables: {{ TABLE: {value} }} }}"),
        ));
        assert_at(
            &e,
            "stages.prod.variables.TABLE",
            "bad stage variable value",
        );
    }
}

#[test]
fn malformed_stage_variable_references() {
    let e = yaml_error(&with_route(
        "  GET /x:\n    integration: { type: mock, body: 'table=${stageVariables.TABLE' }\n",
    ));
    assert_at(
        &e,
        r#"routes."GET /x".integration.body"#,
        "unterminated \"${stageVariables.\"",
    );
    let e = yaml_error(&with_route(
        "  GET /x:\n    integration: { type: mock, body: '${stageVariables.a-b}' }\n",
    ));
    assert_at(
        &e,
        r#"routes."GET /x".integration.body"#,
        "bad stage variable reference",
    );
    let e = yaml_error(&with_route(
        "  GET /x:\n    integration: { type: mock, headers: { x-table: '${stageVariables.}' } }\n",
    ));
    assert_at(
        &e,
        r#"routes."GET /x".integration.headers.x-table"#,
        "bad stage variable reference",
    );
    let e = yaml_error(&format!(
        "{VALID}gatewayResponses:\n  DEFAULT_4XX: {{ body: '${{stageVariables.X' }}\n"
    ));
    assert_at(&e, "gatewayResponses.DEFAULT_4XX.body", "unterminated");
}

#[test]
fn no_stages() {
    let without = "name: t\nroutes:\n  GET /x:\n    integration: { type: mock }\n";
    let e = yaml_error(without);
    assert_at(&e, "stages", "at least one stage is required");
    let e = yaml_error(&format!("{without}stages: {{}}\n"));
    assert_at(&e, "stages", "at least one stage is required");
}

#[test]
fn not_supported_yet_http_integration() {
    let e = yaml_error(&with_route(
        "  GET /x:\n    integration: { type: http, uri: 'https://backend.example/x' }\n",
    ));
    assert_not_supported(&e, r#"routes."GET /x".integration"#);
    let e = yaml_error(&format!(
        "integrations:\n  backend: {{ type: http, uri: 'https://backend.example' }}\n{}",
        with_route("  GET /x:\n    integration: backend\n")
    ));
    assert_not_supported(&e, "integrations.backend");
}

/// An HTTP client that never sends anything: the `http_proxy` errors below are load errors,
/// found before any request.
struct NoNetwork;

impl portico::HttpClient for NoNetwork {
    fn send(&self, _request: http::Request<bytes::Bytes>) -> portico::HttpClientFuture<'_> {
        Box::pin(async { Err(portico::HttpClientError::new("no network in these tests")) })
    }
}

/// The error of loading `yaml` on a gateway that has an HTTP client.
fn error_with_client(yaml: &str) -> Error {
    let loaded = ApiDefinition::from_str_as(yaml, Format::Yaml).and_then(|def| {
        Gateway::builder(def)
            .http_client(std::sync::Arc::new(NoNetwork))
            .build()
    });
    match loaded {
        Ok(_) => panic!("loaded without an error:\n{yaml}"),
        Err(e) => e,
    }
}

#[test]
fn an_http_proxy_integration_needs_a_client_and_a_good_uri() {
    let proxy = |settings: &str| {
        format!(
            "integrations:\n  orders: {{ type: http_proxy, {settings} }}\n{}",
            with_route("  GET /orders/{id}:\n    integration: orders\n")
        )
    };
    // No HTTP client: Portico opens no sockets of its own.
    let e = yaml_error(&proxy("uri: 'http://backend/orders/{id}'"));
    assert_at(&e, "integrations.orders.type", "need an HTTP client");
    let e = error_with_client(&proxy("method: GET"));
    assert_at(
        &e,
        "integrations.orders.uri",
        "required for integrations of type http_proxy",
    );
    let e = error_with_client(&proxy("uri: 'http://backend/orders/{key}'"));
    assert_at(
        &e,
        "integrations.orders.uri",
        "\"{key}\" is not a path variable of route \"GET /orders/{id}\"",
    );
    let e = error_with_client(&proxy("uri: 'backend/orders'"));
    assert_at(
        &e,
        "integrations.orders.uri",
        "is not an absolute http or https URL",
    );
    // A stage that lacks the variable the host comes from names itself.
    let e = error_with_client(&proxy("uri: 'http://${stageVariables.HOST}/orders/{id}'"));
    assert_at(&e, "integrations.orders.uri", "(in stage \"$default\")");
    // API Gateway's integration timeout: 50 ms to 29 s.
    for bad in [49, 29_001] {
        let e = error_with_client(&proxy(&format!(
            "uri: 'http://backend/orders/{{id}}', timeoutMs: {bad}"
        )));
        assert_at(
            &e,
            "integrations.orders.timeoutMs",
            "is not between 50 and 29000",
        );
    }
    let e = yaml_error(&proxy("uri: 'http://backend/', method: FETCH"));
    assert_at(&e, "integrations.orders.method", "unknown variant `FETCH`");
    // Settings of other integration types are refused, and `method` is http_proxy's.
    let e = error_with_client(&proxy("uri: 'http://backend/', body: hi"));
    assert_at(
        &e,
        "integrations.orders.body",
        "only valid for integrations of type mock",
    );
    let e = yaml_error(&with_route(
        "  GET /x:\n    integration: { type: mock, method: GET }\n",
    ));
    assert_at(
        &e,
        "routes.\"GET /x\".integration.method",
        "only valid for integrations of type http_proxy",
    );
}

#[test]
fn a_missing_plugin_file_is_a_load_error() {
    let e = yaml_error(&format!(
        "plugins:\n  users: {{ path: no/such/users.wasm }}\n{}",
        with_route("  GET /x:\n    integration: { type: plugin, plugin: users }\n")
    ));
    assert_eq!(
        e.key_path().map(|p| p.as_str()),
        Some("plugins.users.path"),
        "{e}"
    );
    assert!(e.to_string().contains("no/such/users.wasm"), "{e}");
}

#[test]
fn a_jwt_authorizer_needs_its_keys() {
    let e = yaml_error(&format!(
        "authorizers:\n  cognito: {{ type: jwt, issuer: 'https://issuer', audience: [c] }}\n{}",
        with_route("  GET /x:\n    integration: { type: mock }\n    authorizer: cognito\n")
    ));
    assert_at(
        &e,
        "authorizers.cognito.jwks",
        "required for JWT authorizers",
    );
}

#[test]
fn an_invalid_model_names_the_model() {
    let e = yaml_error(&format!(
        "models:\n  CreateUser: {{ type: object, properties: {{ age: {{ minimum: '0' }} }} }}\n{}",
        with_route(
            "  POST /users:\n    integration: { type: mock }\n    requestModel: CreateUser\n"
        )
    ));
    assert_at(&e, "models.CreateUser", "not a valid JSON Schema (draft 4)");
}

#[test]
fn bad_request_parameters_name_the_key() {
    let e = yaml_error(&with_route(
        "  GET /x:\n    integration: { type: mock }\n    requestParameters: { cookie.session: true }\n",
    ));
    assert_at(
        &e,
        r#"routes."GET /x".requestParameters."cookie.session""#,
        "unknown parameter location",
    );
}

#[test]
fn api_key_required_loads() {
    let def = ApiDefinition::from_str_as(
        &with_route("  GET /x:\n    integration: { type: mock }\n    apiKeyRequired: true\n"),
        Format::Yaml,
    )
    .unwrap();
    Gateway::new(&def).unwrap();
}

#[test]
fn a_bad_cors_origin_names_its_index() {
    let e = yaml_error(&format!(
        "{VALID}cors:\n  allowOrigins: ['https://example.com', 'https://example.com/']\n"
    ));
    assert_at(&e, "cors.allowOrigins[1]", "no path or trailing slash");
}

#[test]
fn throttle_settings_are_checked_at_their_key() {
    let stage = |setting: &str| VALID.replace("$default: {}", &format!("prod: {{ {setting} }}"));
    let e = yaml_error(&stage("throttle: { rateLimit: -1, burstLimit: 5 }"));
    assert_at(&e, "stages.prod.throttle.rateLimit", "requests per second");
    let e = yaml_error(&stage("throttle: { rateLimit: 1, burstLimit: 5000000000 }"));
    assert_at(&e, "stages.prod.throttle.burstLimit", "at most");
    let e = yaml_error(&stage(
        "routeSettings: { GET /nope: { throttle: { rateLimit: 1, burstLimit: 1 } } }",
    ));
    assert_at(
        &e,
        r#"stages.prod.routeSettings."GET /nope""#,
        r#"unknown route "GET /nope""#,
    );
    let e = yaml_error(&format!("{VALID}throttle: {{ rateLimit: 1 }}\n"));
    assert_at(&e, "throttle", "burstLimit");
}

#[test]
fn usage_plan_limits_are_checked_at_their_key() {
    let plan = |setting: &str| {
        format!("{VALID}usagePlans:\n  free: {{ stages: [$default], {setting} }}\n")
    };
    let e = yaml_error(&plan("quota: { limit: 100, period: WEEK, offset: 7 }"));
    assert_at(&e, "usagePlans.free.quota.offset", "0 to 6");
    let e = yaml_error(&plan("quota: { limit: 100, period: YEAR }"));
    assert_at(&e, "usagePlans.free.quota.period", "unknown variant `YEAR`");
    let e = yaml_error(&plan(
        "apiStages: [{ stage: $default, throttle: { GET /nope: { rateLimit: 1, burstLimit: 1 } } }]",
    ));
    assert_at(
        &e,
        r#"usagePlans.free.apiStages[0].throttle."GET /nope""#,
        r#"unknown route "GET /nope""#,
    );
    let e = yaml_error(&plan("apiStages: [{ stage: beta }]"));
    assert_at(
        &e,
        "usagePlans.free.apiStages[0].stage",
        r#"unknown stage "beta""#,
    );
    let e = yaml_error(&plan("throttle: { rateLimit: .nan, burstLimit: 1 }"));
    assert_at(
        &e,
        "usagePlans.free.throttle.rateLimit",
        "requests per second",
    );
}

#[test]
fn typed_settings_refuse_unknown_values_at_their_key() {
    let e = yaml_error(&format!(
        "{VALID}authorizers:\n  a: {{ type: oauth, identitySource: $request.header.Authorization }}\n"
    ));
    assert_at(&e, "authorizers.a.type", "unknown variant `oauth`");
    let e = yaml_error(&format!(
        "{VALID}plugins:\n  p: {{ path: p.wasm }}\nauthorizers:\n  a: {{ type: token, plugin: p, responseFormat: fancy }}\n"
    ));
    assert_at(
        &e,
        "authorizers.a.responseFormat",
        "unknown variant `fancy`",
    );
    let e = yaml_error(&with_route(
        "  GET /x:\n    integration: { type: plugin, plugin: p, payloadFormatVersion: '3.0' }",
    ));
    assert_at(
        &e,
        "routes.\"GET /x\".integration.payloadFormatVersion",
        "unknown payload format version \"3.0\"",
    );
    let e = yaml_error(&format!(
        "{VALID}plugins:\n  p: {{ path: p.wasm, instances: hot }}\n"
    ));
    assert_at(&e, "plugins.p.instances", "unknown variant `hot`");
    let e = yaml_error(&with_route("  GET /x:\n    integration: { type: lambda }"));
    assert_at(
        &e,
        "routes.\"GET /x\".integration.type",
        "unknown variant `lambda`",
    );
}

#[test]
fn access_log_unknown_variable() {
    let e = yaml_error(&VALID.replace(
        "$default: {}",
        "prod: { accessLog: { format: '$context.requestId $context.requestTim' } }",
    ));
    assert_at(
        &e,
        "stages.prod.accessLog.format",
        "unknown variable \"$context.requestTim\"",
    );
}

#[test]
fn unknown_gateway_response_type() {
    let e = yaml_error(&format!(
        "{VALID}gatewayResponses:\n  NOT_FOUND: {{ statusCode: 404 }}\n"
    ));
    assert_at(
        &e,
        "gatewayResponses.NOT_FOUND",
        "unknown gateway response type",
    );
    assert!(e.to_string().contains("RESOURCE_NOT_FOUND"), "{e}");
}

/// A path in the temp directory that no other test (or test run) uses.
fn temp_path(extension: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    std::env::temp_dir().join(format!(
        "portico-e2e-{}-{}.{extension}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Writes `text` to a fresh temp file, loads it with `Gateway::from_file` and returns the
/// error with the file's path.
fn file_error(text: &str, extension: &str) -> (Error, PathBuf) {
    let path = temp_path(extension);
    std::fs::write(&path, text).expect("temp file written");
    let result = Gateway::from_file(&path);
    let _ = std::fs::remove_file(&path);
    match result {
        Ok(_) => panic!("{} loaded without an error", path.display()),
        Err(e) => (e, path),
    }
}

#[test]
fn a_missing_file_is_named() {
    let path = temp_path("yaml");
    let e = Gateway::from_file(&path).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
    assert!(e.key_path().is_none());
    let shown = e.to_string();
    assert!(shown.contains(&path.display().to_string()), "{shown}");
}

#[test]
fn file_errors_name_the_file_and_the_key_path() {
    // A shape error (found while parsing) ...
    let (e, path) = file_error(&format!("{VALID}nmae: t\n"), "yaml");
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!("{}: ", path.display())),
        "{shown}"
    );
    assert!(shown.contains("nmae"), "{shown}");
    // ... a reference error (found while compiling) ...
    let (e, path) = file_error(
        &with_route(
            "  POST /users:\n    integration: { type: mock }\n    requestModel: CreateUsr\n",
        ),
        "yml",
    );
    assert_eq!(
        e.to_string(),
        format!(
            r#"{}: routes."POST /users".requestModel: unknown model "CreateUsr""#,
            path.display()
        )
    );
    assert_eq!(
        e.key_path().map(|p| p.as_str()),
        Some(r#"routes."POST /users".requestModel"#)
    );
    // ... a JSON file, chosen by its extension ...
    let (e, path) = file_error(
        r#"{"name":"t","routes":{"GET /x":{"integration":{"type":"mock","statusCode":"abc"}}},"stages":{"$default":{}}}"#,
        "json",
    );
    assert!(
        e.to_string().starts_with(&format!(
            r#"{}: routes."GET /x".integration.statusCode: "#,
            path.display()
        )),
        "{e}"
    );
    // ... and a setting checked when its phase compiles.
    let (e, path) = file_error(
        &VALID.replace(
            "$default: {}",
            "prod: { throttle: { rateLimit: -10, burstLimit: 5 } }",
        ),
        "yaml",
    );
    assert_eq!(
        e.to_string(),
        format!(
            "{}: stages.prod.throttle.rateLimit: rateLimit is requests per second: a number, 0 or more",
            path.display()
        )
    );
}
