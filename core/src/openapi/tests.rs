//! The translation, checked on the native definition it produces (no plugin is loaded: the
//! end-to-end tests in tests/e2e/openapi.rs serve imported documents).

use serde_json::{json, Value};

use super::*;
use crate::config::UniqueMap;

/// A functions file naming plugin `echo.wasm` for each of `names`.
fn functions(names: &[&str]) -> FunctionsFile {
    let mut file = FunctionsFile::default();
    for name in names {
        file.functions
            .insert(*name, crate::config::PluginDefinition::new("echo.wasm"))
            .unwrap();
    }
    file
}

fn import(yaml: &str, options: &OpenApiOptions) -> Result<OpenApiImport, Error> {
    ApiDefinition::from_openapi(yaml, Format::Yaml, options)
}

/// The native definition as JSON, for comparisons.
fn native(import: &OpenApiImport) -> Value {
    serde_json::to_value(&import.definition).unwrap()
}

fn warning_paths(import: &OpenApiImport) -> Vec<(WarningKind, String)> {
    import
        .warnings
        .iter()
        .map(|w| (w.kind, w.key_path.to_string()))
        .collect()
}

const LAMBDA: &str = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:HelloWorld/invocations";

fn doc(paths: &str) -> String {
    format!("openapi: 3.0.1\ninfo: {{title: Test API, version: '1'}}\npaths:\n{paths}")
}

// "x-amazon-apigateway-integration object" and "x-amazon-apigateway-any-method object"
// (developer guide): an aws_proxy integration with a Lambda ARN, on an ANY route of a greedy
// path; `isDefaultRoute` makes the $default route.
#[test]
fn lambda_proxy_routes_map_to_plugins() {
    let yaml = doc(&format!(
        r#"
  /{{proxy+}}:
    x-amazon-apigateway-any-method:
      x-amazon-apigateway-integration: {{type: AWS_PROXY, httpMethod: POST, uri: "{LAMBDA}", payloadFormatVersion: 1.0, timeoutInMillis: 1000}}
  /$default:
    x-amazon-apigateway-any-method:
      isDefaultRoute: true
      x-amazon-apigateway-integration: {{type: aws_proxy, uri: "arn:aws:lambda:us-east-2:123456789012:function:HelloWorld"}}
"#
    ));
    let import = import(
        &yaml,
        &OpenApiOptions::new().functions(functions(&["HelloWorld"])),
    )
    .unwrap();
    assert!(import.warnings.is_empty(), "{:?}", import.warnings);
    let native = native(&import);
    assert_eq!(
        native["routes"]["ANY /{proxy+}"]["integration"],
        json!({"type": "plugin", "plugin": "HelloWorld", "payloadFormatVersion": "1.0", "timeoutMs": 1000})
    );
    assert_eq!(
        native["routes"]["$default"]["integration"],
        json!({"type": "plugin", "plugin": "HelloWorld"})
    );
    assert_eq!(native["plugins"]["HelloWorld"]["path"], "echo.wasm");
    assert_eq!(native["name"], "Test API");
    assert_eq!(native["apiId"], "test-api");
    assert_eq!(native["stages"], json!({"$default": {"variables": {}}}));
}

#[test]
fn a_function_without_a_plugin_is_an_error_naming_the_uri() {
    let yaml = doc(&format!(
        "  /a:\n    get:\n      x-amazon-apigateway-integration: {{type: aws_proxy, uri: \"{LAMBDA}\"}}\n"
    ));
    let err = import(&yaml, &OpenApiOptions::new())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("paths.\"/a\".get.x-amazon-apigateway-integration.uri"),
        "{err}"
    );
    assert!(
        err.contains("Lambda function \"HelloWorld\" has no plugin"),
        "{err}"
    );
}

// "AWS variables for OpenAPI import": ${AWS::Region} and the rest are resolved at import; a
// stage variable in a Lambda ARN picks the function (or alias) per stage.
#[test]
fn aws_and_stage_variables_in_lambda_arns() {
    let yaml = doc(r#"
  /a:
    get:
      x-amazon-apigateway-integration:
        type: aws_proxy
        uri: "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${stageVariables.fn}:${stageVariables.alias}/invocations"
"#);
    let mut file = functions(&["orders:live"]);
    file.stage_variables.insert("fn", "orders".into()).unwrap();
    file.stage_variables.insert("alias", "live".into()).unwrap();
    let import = import(&yaml, &OpenApiOptions::new().stage("prod").functions(file)).unwrap();
    let native = native(&import);
    assert_eq!(
        native["routes"]["GET /a"]["integration"]["plugin"],
        "orders:live"
    );
    assert_eq!(
        native["stages"],
        json!({"prod": {"variables": {"fn": "orders", "alias": "live"}}})
    );
    let err = ApiDefinition::from_openapi(&yaml, Format::Yaml, &OpenApiOptions::new())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("stage variable \"fn\" is not defined"),
        "{err}"
    );
}

// The seed's openapi.yaml names its function with a CloudFormation placeholder.
#[test]
fn cloudformation_placeholders_name_functions() {
    let yaml = doc(r#"
  /users/{userId}:
    get:
      x-amazon-apigateway-integration:
        type: aws_proxy
        uri: "arn:aws:apigateway:ap-northeast-1:lambda:path/2015-03-31/functions/${GetUserFn.Arn}/invocations"
"#);
    let import = import(
        &yaml,
        &OpenApiOptions::new().functions(functions(&["GetUserFn"])),
    )
    .unwrap();
    assert_eq!(
        native(&import)["routes"]["GET /users/{userId}"]["integration"]["plugin"],
        "GetUserFn"
    );
}

// http_proxy onto the native {type: http_proxy, uri, method, timeoutMs} (the HTTP proxy
// integration of issue 13's item 5); stage variables and {proxy} stay for the integration to
// substitute per request. A REST API's identity parameter mapping is what it does anyway.
#[test]
fn http_proxy_maps_onto_the_native_keys() {
    let yaml = doc(r#"
  /orders/{proxy+}:
    x-amazon-apigateway-any-method:
      x-amazon-apigateway-integration:
        type: http_proxy
        httpMethod: ANY
        uri: "http://${stageVariables.ORDERS_HOST}/orders/{proxy}"
        timeoutInMillis: 5000
        requestParameters: {integration.request.path.proxy: method.request.path.proxy}
        tlsConfig: {insecureSkipVerification: true}
"#);
    let err = import(&yaml, &OpenApiOptions::new()).map(|i| i.definition);
    // Until the http_proxy integration is in the native definition, the native loader refuses
    // its type; the translation itself is what this test checks.
    let translated = {
        let yaml = read_document(&yaml, Format::Yaml).unwrap();
        let document = parse_document(&yaml).unwrap();
        let raw = yaml_to_json(yaml, &KeyPath::root()).unwrap();
        translate::translate(&document, &raw, &OpenApiOptions::new()).unwrap()
    };
    assert_eq!(
        translated.native["routes"]["ANY /orders/{proxy+}"]["integration"],
        json!({"type": "http_proxy", "uri": "http://${stageVariables.ORDERS_HOST}/orders/{proxy}", "method": "ANY", "timeoutMs": 5000})
    );
    let warnings: Vec<String> = translated
        .warnings
        .iter()
        .map(|w| w.key_path.to_string())
        .collect();
    assert_eq!(
        warnings,
        ["paths.\"/orders/{proxy+}\".x-amazon-apigateway-any-method.x-amazon-apigateway-integration.tlsConfig"]
    );
    if let Err(e) = err {
        // The native type is not there yet: the error names the document's key.
        assert!(
            e.to_string()
                .contains("paths.\"/orders/{proxy+}\".x-amazon-apigateway-any-method.x-amazon-apigateway-integration."),
            "{e}"
        );
    }
}

// A mock integration as API Gateway answers it: the request template's statusCode selects the
// integration response ("x-amazon-apigateway-integration.responses object": a regular
// expression matched against the status code, or `default`); static header mappings
// ("...integration.responseParameters": `'static value'`) and a template without VTL are the
// answer.
#[test]
fn mocks_answer_the_selected_response() {
    let yaml = doc(r#"
  /health:
    get:
      x-amazon-apigateway-integration:
        type: mock
        requestTemplates: {application/json: '{"statusCode": 404}'}
        responses:
          "2\\d{2}": {statusCode: "200"}
          "404":
            statusCode: "404"
            responseParameters: {method.response.header.x-why: "'gone'", method.response.header.x-id: "context.requestId"}
            responseTemplates: {application/json: '{"stage": "$stageVariables.NAME"}'}
  /vtl:
    get:
      x-amazon-apigateway-integration:
        type: mock
        requestTemplates: {application/json: '{"statusCode": 200}'}
        responses:
          default:
            statusCode: "200"
            responseTemplates: {application/json: '{"id": "$context.requestId"}'}
"#);
    let import = import(&yaml, &OpenApiOptions::new().protocol(Protocol::Rest)).unwrap();
    let native = native(&import);
    assert_eq!(
        native["routes"]["GET /health"]["integration"],
        json!({"type": "mock", "statusCode": 404, "headers": {"x-why": "gone"}, "body": "{\"stage\": \"${stageVariables.NAME}\"}"})
    );
    // What Portico cannot render answers 500, as a failing integration does.
    assert_eq!(
        native["routes"]["GET /vtl"]["integration"],
        json!({"type": "mock", "statusCode": 500, "body": "{\"message\":\"Internal server error\"}"})
    );
    assert_eq!(
        warning_paths(&import),
        [
            (
                WarningKind::UnsupportedField,
                r#"paths."/health".get.x-amazon-apigateway-integration.responses.404.responseParameters."method.response.header.x-id""#.to_owned()
            ),
            (
                WarningKind::UnsupportedIntegration,
                "paths.\"/vtl\".get.x-amazon-apigateway-integration.responses.default.responseTemplates.\"application/json\"".to_owned()
            ),
        ]
    );
}

// HTTP APIs support only proxy integrations: other types are import warnings, not errors
// ("Working with OpenAPI definitions for HTTP APIs", Warning); the route answers 500.
#[test]
fn unsupported_integrations_are_warnings_and_answer_500() {
    let yaml = doc(r#"
  /s3:
    get:
      x-amazon-apigateway-integration: {type: aws, httpMethod: GET, uri: "arn:aws:apigateway:us-east-1:s3:path/bucket"}
  /none:
    get:
      responses: {}
"#);
    let import = import(&yaml, &OpenApiOptions::new()).unwrap();
    assert_eq!(
        warning_paths(&import),
        [
            (
                WarningKind::UnsupportedIntegration,
                "paths.\"/s3\".get.x-amazon-apigateway-integration".to_owned()
            ),
            (
                WarningKind::UnsupportedIntegration,
                "paths.\"/none\".get".to_owned()
            ),
        ]
    );
    let native = native(&import);
    assert_eq!(
        native["routes"]["GET /s3"]["integration"]["statusCode"],
        500
    );
    assert_eq!(
        native["routes"]["GET /none"]["integration"]["body"],
        "{\"message\":\"Internal Server Error\"}"
    );
    // failonwarnings ("Errors and warnings during import").
    let err = ApiDefinition::from_openapi(
        &yaml,
        Format::Yaml,
        &OpenApiOptions::new().fail_on_warnings(true),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("2 warning(s)"), "{err}");
    assert!(
        err.contains("paths.\"/s3\".get.x-amazon-apigateway-integration"),
        "{err}"
    );
}

// "x-amazon-apigateway-request-validators object", "x-amazon-apigateway-request-validator
// property": the API's validator applies unless the method names another; without any,
// nothing is validated.
#[test]
fn validators_decide_what_is_validated() {
    let yaml = format!(
        r##"openapi: 3.0.1
info: {{title: v, version: '1'}}
x-amazon-apigateway-request-validators:
  all: {{validateRequestBody: true, validateRequestParameters: true}}
  params-only: {{validateRequestBody: false, validateRequestParameters: true}}
x-amazon-apigateway-request-validator: params-only
paths:
  /v:
    post:
      x-amazon-apigateway-request-validator: all
      parameters: [{{in: header, name: h1, required: true, schema: {{type: string}}}}]
      requestBody:
        content:
          application/json: {{schema: {{type: object, required: [name]}}}}
          application/xml: {{schema: {{type: object}}}}
      x-amazon-apigateway-integration: {{type: aws_proxy, uri: "{LAMBDA}"}}
    get:
      parameters: [{{in: query, name: q1, required: true}}, {{$ref: "#/components/parameters/page"}}]
      x-amazon-apigateway-integration: {{type: aws_proxy, uri: "{LAMBDA}"}}
components:
  parameters:
    page: {{in: query, name: page, schema: {{type: integer, minimum: 1}}}}
"##
    );
    let import = import(
        &yaml,
        &OpenApiOptions::new().functions(functions(&["HelloWorld"])),
    )
    .unwrap();
    let native = native(&import);
    let post = &native["routes"]["POST /v"];
    assert_eq!(post["requestModel"], "PostVBody");
    assert_eq!(post["validate"], json!({"body": true, "parameters": true}));
    assert_eq!(post["requestParameters"], json!({"header.h1": true}));
    assert_eq!(
        native["models"]["PostVBody"],
        json!({"type": "object", "required": ["name"]})
    );
    let get = &native["routes"]["GET /v"];
    assert_eq!(get["validate"], json!({"body": false, "parameters": true}));
    assert_eq!(
        get["requestParameters"],
        json!({"querystring.q1": true, "querystring.page": false})
    );
    assert_eq!(
        warning_paths(&import),
        // A path's operations come in openapiv3's order: get, put, post, ...
        [
            (
                WarningKind::NotValidated,
                "paths.\"/v\".get.parameters[1].schema".to_owned()
            ),
            (
                WarningKind::NotValidated,
                "paths.\"/v\".post.requestBody.content.\"application/xml\"".to_owned()
            ),
        ]
    );
    assert!(
        import.warnings[0]
            .message
            .starts_with("minimum, type of parameter \"page\" not validated"),
        "{}",
        import.warnings[0].message
    );

    let unknown = yaml.replace(
        "x-amazon-apigateway-request-validator: all",
        "x-amazon-apigateway-request-validator: nope",
    );
    let err = ApiDefinition::from_openapi(
        &unknown,
        Format::Yaml,
        &OpenApiOptions::new().functions(functions(&["HelloWorld"])),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("paths.\"/v\".post.x-amazon-apigateway-request-validator: x-amazon-apigateway-request-validators has no validator \"nope\""), "{err}");
}

// "Set the OpenAPI basePath property": ignore (the default), prepend, split.
#[test]
fn base_paths_ignore_prepend_split() {
    let yaml = format!(
        "openapi: 3.0.1\ninfo: {{title: b, version: '1'}}\nservers: [{{url: 'https://example.com/{{basePath}}', variables: {{basePath: {{default: 'a/b/c'}}}}}}]\npaths:\n  /e:\n    get:\n      x-amazon-apigateway-integration: {{type: aws_proxy, uri: \"{LAMBDA}\"}}\n"
    );
    let keys = |mode| {
        let options = OpenApiOptions::new()
            .functions(functions(&["HelloWorld"]))
            .base_path(mode);
        let native = native(&import(&yaml, &options).unwrap());
        native["routes"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(BasePathMode::Ignore), ["GET /e"]);
    assert_eq!(keys(BasePathMode::Prepend), ["GET /a/b/c/e"]);
    assert_eq!(keys(BasePathMode::Split), ["GET /b/c/e"]);
    // Without a basePath variable, the server URL's path is the base path.
    let plain = yaml.replace(
        "'https://example.com/{basePath}', variables: {basePath: {default: 'a/b/c'}}",
        "'https://example.com/v1/'",
    );
    let options = OpenApiOptions::new()
        .functions(functions(&["HelloWorld"]))
        .base_path(BasePathMode::Prepend);
    let native = native(&import(&plain, &options).unwrap());
    assert!(native["routes"].get("GET /v1/e").is_some(), "{native}");
}

// "x-amazon-apigateway-authorizer object", "x-amazon-apigateway-authtype property".
#[test]
fn authorizers_and_api_keys() {
    let yaml = format!(
        r#"openapi: 3.0.1
info: {{title: auth, version: '1'}}
paths:
  /t:
    get:
      security: [{{tok: [], api_key: []}}]
      x-amazon-apigateway-integration: {{type: aws_proxy, uri: "{LAMBDA}"}}
  /j:
    get:
      security: [{{jwt: [read]}}]
      x-amazon-apigateway-integration: {{type: aws_proxy, uri: "{LAMBDA}"}}
components:
  securitySchemes:
    api_key: {{type: apiKey, name: x-api-key, in: header}}
    tok:
      type: apiKey
      name: Auth
      in: header
      x-amazon-apigateway-authtype: custom
      x-amazon-apigateway-authorizer:
        type: token
        authorizerUri: "{LAMBDA}"
        authorizerResultTtlInSeconds: "60"
        identityValidationExpression: "^x-[a-z]+"
    jwt:
      type: openIdConnect
      openIdConnectUrl: https://cognito-idp.us-east-1.amazonaws.com/pool/.well-known/openid-configuration
      x-amazon-apigateway-authorizer:
        type: jwt
        jwtConfiguration: {{audience: [a1]}}
        identitySource: $request.header.Authorization
"#
    );
    let mut file = functions(&["HelloWorld"]);
    let err = import(&yaml, &OpenApiOptions::new().functions(file.clone()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("components.securitySchemes.jwt.x-amazon-apigateway-authorizer"),
        "{err}"
    );
    assert!(err.contains("needs its signing keys"), "{err}");
    let jwks: crate::config::JwksDefinition =
        serde_json::from_value(json!({"path": "jwks.json"})).unwrap();
    file.jwks.insert("jwt", jwks).unwrap();
    let native = native(&import(&yaml, &OpenApiOptions::new().functions(file)).unwrap());
    assert_eq!(
        native["authorizers"]["tok"],
        json!({"type": "token", "identitySource": ["$request.header.Auth"], "plugin": "HelloWorld", "resultTtlSeconds": 60, "identityValidationExpression": "^x-[a-z]+"})
    );
    assert_eq!(
        native["authorizers"]["jwt"],
        json!({"type": "jwt", "identitySource": ["$request.header.Authorization"], "issuer": "https://cognito-idp.us-east-1.amazonaws.com/pool", "audience": ["a1"], "jwks": {"path": "jwks.json"}})
    );
    assert_eq!(native["routes"]["GET /t"]["authorizer"], "tok");
    assert_eq!(native["routes"]["GET /t"]["apiKeyRequired"], true);
    assert_eq!(
        native["routes"]["GET /j"]["authorizationScopes"],
        json!(["read"])
    );
}

// What Portico cannot enforce is never served open: IAM, Cognito user pools, schemes without an
// authorizer, and alternatives ("Each operation can have only one of IAM authorization, a Lambda
// authorizer, or a JWT authorizer").
#[test]
fn unenforceable_security_is_a_load_error() {
    let with = |security: &str, schemes: &str| {
        let yaml = format!(
            "openapi: 3.0.1\ninfo: {{title: s, version: '1'}}\npaths:\n  /x:\n    get:\n      security: {security}\n      responses: {{}}\ncomponents:\n  securitySchemes:\n{schemes}"
        );
        import(&yaml, &OpenApiOptions::new())
            .unwrap_err()
            .to_string()
    };
    let iam = with(
        "[{sig: []}]",
        "    sig: {type: apiKey, name: Authorization, in: header, x-amazon-apigateway-authtype: awsSigv4}\n",
    );
    assert!(
        iam.contains("IAM authorization (awsSigv4) is not supported yet"),
        "{iam}"
    );
    let bearer = with("[{b: []}]", "    b: {type: http, scheme: bearer}\n");
    assert!(bearer.contains("components.securitySchemes.b"), "{bearer}");
    let two = with(
        "[{a: []}, {b: []}]",
        "    a: {type: apiKey, name: x-api-key, in: header}\n    b: {type: apiKey, name: x-api-key, in: header}\n",
    );
    assert!(
        two.contains("paths.\"/x\".get.security: API Gateway takes one security requirement"),
        "{two}"
    );
    let cognito = with(
        "[{c: []}]",
        "    c: {type: apiKey, name: Authorization, in: header, x-amazon-apigateway-authorizer: {type: cognito_user_pools, providerARNs: []}}\n",
    );
    assert!(
        cognito.contains("Cognito user pool authorizers"),
        "{cognito}"
    );
    let missing = with(
        "[{nope: []}]",
        "    a: {type: apiKey, name: x-api-key, in: header}\n",
    );
    assert!(
        missing.contains("paths.\"/x\".get.security[0].nope"),
        "{missing}"
    );
}

// "x-amazon-apigateway-cors object" (HTTP APIs), "x-amazon-apigateway-gateway-responses
// object" (static `gatewayresponse.header.X` values, the application/json template); an
// extension Portico does not implement is a warning ("Errors and warnings during import").
#[test]
fn cors_gateway_responses_and_unsupported_extensions() {
    let yaml = format!(
        r#"openapi: 3.0.1
info: {{title: c, version: '1'}}
x-amazon-apigateway-cors: {{allowOrigins: ["https://www.example.com"], allowMethods: [GET], maxAge: 3600}}
x-amazon-apigateway-binary-media-types: [image/png]
x-amazon-apigateway-gateway-responses:
  DEFAULT_4XX:
    statusCode: 400
    responseParameters: {{gatewayresponse.header.x-a: "'b'"}}
    responseTemplates: {{application/json: '{{"m": $context.error.messageString}}'}}
x-amazon-apigateway-importexport-version: "1.0"
x-other-tool: ignored
paths:
  /x:
    get:
      x-amazon-apigateway-integration: {{type: aws_proxy, uri: "{LAMBDA}"}}
"#
    );
    let import = import(
        &yaml,
        &OpenApiOptions::new().functions(functions(&["HelloWorld"])),
    )
    .unwrap();
    let native = native(&import);
    assert_eq!(
        native["cors"]["allowOrigins"],
        json!(["https://www.example.com"])
    );
    assert_eq!(native["cors"]["maxAge"], 3600);
    assert_eq!(
        native["gatewayResponses"]["DEFAULT_4XX"],
        json!({"statusCode": 400, "headers": {"x-a": "b"}, "body": "{\"m\": $context.error.messageString}"})
    );
    assert_eq!(
        warning_paths(&import),
        [(
            WarningKind::UnsupportedExtension,
            "x-amazon-apigateway-binary-media-types".to_owned()
        )]
    );
    // CORS is an HTTP API setting: a REST import warns and leaves it out.
    let rest = ApiDefinition::from_openapi(
        &yaml,
        Format::Yaml,
        &OpenApiOptions::new()
            .protocol(Protocol::Rest)
            .functions(functions(&["HelloWorld"])),
    )
    .unwrap();
    assert!(rest.definition.cors.is_none());
    assert!(
        rest.warnings
            .iter()
            .any(|w| w.key_path.to_string() == "x-amazon-apigateway-cors"),
        "{:?}",
        rest.warnings
    );
    // Binary media types are a REST API's ("x-amazon-apigateway-binary-media-types property").
    assert_eq!(rest.definition.binary_media_types, ["image/png"]);
    assert!(!rest
        .warnings
        .iter()
        .any(|w| w.key_path.to_string() == "x-amazon-apigateway-binary-media-types"));
}

// "Working with OpenAPI definitions for HTTP APIs", Error: "HTTP APIs support only the OpenAPI
// 3.0 specification"; a malformed document is an error, not a warning.
#[test]
fn documents_that_are_not_openapi_3_0_are_refused() {
    let err = |text: &str| {
        ApiDefinition::from_openapi(text, Format::Yaml, &OpenApiOptions::new())
            .unwrap_err()
            .to_string()
    };
    assert!(err("swagger: '2.0'\ninfo: {title: a}\n").contains("swagger: OpenAPI 2.0"));
    assert!(
        err("openapi: 3.1.0\ninfo: {title: a, version: '1'}\npaths: {}\n")
            .contains("OpenAPI 3.1.0 is not imported")
    );
    assert!(err("- a\n").contains("an OpenAPI document is an object"));
    let bad = err("openapi: 3.0.1\ninfo: {title: a, version: '1'}\npaths:\n  /x:\n    get:\n      parameters: [{name: a, in: nowhere}]\n");
    assert!(bad.contains("paths"), "{bad}");
    assert!(bad.contains("not a valid OpenAPI 3.0 document"), "{bad}");
    assert!(err("openapi: 3.0.1\ninfo: {title: a, version: '1'}\npaths:\n  /x:\n    get:\n      x-amazon-apigateway-integration: {type: soap}\n")
        .contains("paths.\"/x\".get.x-amazon-apigateway-integration.type: unknown integration type \"soap\""));
}

// A native load error found when a gateway compiles the definition is moved back onto the
// document's key path.
#[test]
fn native_errors_are_explained_in_the_documents_terms() {
    let yaml = doc(&format!(
        "  /a:\n    get:\n      x-amazon-apigateway-integration: {{$ref: '#/components/x-amazon-apigateway-integrations/i'}}\ncomponents:\n  x-amazon-apigateway-integrations:\n    i: {{type: aws_proxy, uri: \"{LAMBDA}\"}}\n  schemas:\n    Pet: {{type: object}}\n"
    ));
    let import = import(
        &yaml,
        &OpenApiOptions::new().functions(functions(&["HelloWorld"])),
    )
    .unwrap();
    let native = native(&import);
    assert_eq!(native["routes"]["GET /a"]["integration"], "i");
    assert_eq!(native["integrations"]["i"]["plugin"], "HelloWorld");
    let explain = |native: KeyPath| {
        import
            .explain(Error::config(native, "bad"))
            .key_path()
            .unwrap()
            .to_string()
    };
    let root = KeyPath::root();
    assert_eq!(
        explain(
            root.key("routes")
                .key("GET /a")
                .key("integration")
                .key("timeoutMs")
        ),
        "paths.\"/a\".get.x-amazon-apigateway-integration.timeoutMs"
    );
    assert_eq!(
        explain(root.key("integrations").key("i").key("uri")),
        "components.x-amazon-apigateway-integrations.i.uri"
    );
    assert_eq!(
        explain(root.key("models").key("Pet")),
        "components.schemas.Pet"
    );
    assert_eq!(
        explain(root.key("plugins").key("HelloWorld").key("path")),
        "functions.HelloWorld.path"
    );
    assert_eq!(explain(root.key("name")), "name");
}

#[test]
fn functions_files_name_their_key_paths() {
    let err = FunctionsFile::from_str_as("functions:\n  f: {paht: x.wasm}\n", Format::Yaml)
        .unwrap_err()
        .to_string();
    assert!(err.contains("functions.f"), "{err}");
    let file = FunctionsFile::from_str_as(
        "functions:\n  f: {path: x.wasm, instances: warm}\nstageVariables: {A: b}\n",
        Format::Yaml,
    )
    .unwrap();
    assert_eq!(
        file.stage_variables,
        [("A", "b".to_owned())]
            .into_iter()
            .collect::<UniqueMap<String>>()
    );
}

// A functions file's relative paths start from its own directory, wherever the document and
// the process are.
#[test]
fn functions_file_paths_start_from_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("functions.yaml");
    std::fs::write(
        &file,
        "functions:\n  f: {path: plugins/f.wasm}\njwks:\n  j: {path: keys.json}\n",
    )
    .unwrap();
    let read = FunctionsFile::from_file(&file).unwrap();
    let plugin = &read.functions.get("f").unwrap().path;
    assert!(plugin.is_absolute(), "{}", plugin.display());
    assert!(plugin.ends_with("plugins/f.wasm"));
    assert!(
        plugin.starts_with(dir.path()) || plugin.starts_with(dir.path().canonicalize().unwrap())
    );
    let keys = read.jwks.get("j").unwrap().path.as_ref().unwrap();
    assert!(keys.is_absolute() && keys.ends_with("keys.json"));
    let missing = FunctionsFile::from_file(dir.path().join("nope.yaml")).unwrap_err();
    assert!(missing.to_string().contains("nope.yaml"), "{missing}");
}

// An AWS-written REST document's cache keys (on an inline and on a shared integration),
// contentHandling and gateway-response mappings ("x-amazon-apigateway-integration object",
// "x-amazon-apigateway-gateway-responses.responseParameters object") are imported; on an HTTP
// API, which has no cache, cache keys are a warning.
#[test]
fn cache_keys_content_handling_and_mapped_gateway_headers() {
    let yaml = r##"openapi: 3.0.1
info: {title: c, version: '1'}
x-amazon-apigateway-gateway-responses:
  DEFAULT_4XX:
    responseParameters:
      gatewayresponse.header.Access-Control-Allow-Origin: "'*.example.domain'"
      gatewayresponse.header.from-request-header: method.request.header.Accept
      gatewayresponse.header.from-request-path: method.request.path.petId
      gatewayresponse.header.from-stage: stageVariables.ENV
      gatewayresponse.header.request-id: context.requestId
      gatewayresponse.header.literal-dollar: "'$x'"
      gatewayresponse.header.from-body: method.request.body
paths:
  /pets/{petId}:
    get:
      parameters: [{name: petId, in: path, required: true, schema: {type: string}}]
      x-amazon-apigateway-integration:
        type: http_proxy
        httpMethod: GET
        uri: "http://example.com/pets/{petId}"
        cacheNamespace: abc123
        cacheKeyParameters: [method.request.path.petId]
        contentHandling: CONVERT_TO_TEXT
  /items:
    get:
      x-amazon-apigateway-integration: {$ref: "#/components/x-amazon-apigateway-integrations/items"}
components:
  x-amazon-apigateway-integrations:
    items:
      type: http_proxy
      httpMethod: GET
      uri: "http://example.com/items"
      cacheKeyParameters: [method.request.querystring.page]
"##;
    let rest = import(yaml, &OpenApiOptions::new().protocol(Protocol::Rest)).unwrap();
    assert_eq!(
        warning_paths(&rest),
        [(
            WarningKind::UnsupportedField,
            "x-amazon-apigateway-gateway-responses.DEFAULT_4XX.responseParameters.\"gatewayresponse.header.from-body\"".to_owned()
        )]
    );
    let native = native(&rest);
    assert_eq!(
        native["routes"]["GET /pets/{petId}"]["cacheKeyParameters"],
        json!(["method.request.path.petId"])
    );
    assert_eq!(
        native["routes"]["GET /pets/{petId}"]["integration"]["contentHandling"],
        "CONVERT_TO_TEXT"
    );
    assert_eq!(
        native["routes"]["GET /items"]["cacheKeyParameters"],
        json!(["method.request.querystring.page"])
    );
    assert_eq!(
        native["gatewayResponses"]["DEFAULT_4XX"]["headers"],
        json!({
            "Access-Control-Allow-Origin": "*.example.domain",
            "from-request-header": "method.request.header.Accept",
            "from-request-path": "method.request.path.petId",
            "from-stage": "stageVariables.ENV",
            "request-id": "context.requestId",
            "literal-dollar": "'$x'",
        })
    );

    let http = import(yaml, &OpenApiOptions::new()).unwrap();
    let warned = warning_paths(&http);
    for path in [
        "paths.\"/pets/{petId}\".get.x-amazon-apigateway-integration.cacheKeyParameters",
        "paths.\"/pets/{petId}\".get.x-amazon-apigateway-integration.contentHandling",
        "components.x-amazon-apigateway-integrations.items.cacheKeyParameters",
    ] {
        assert!(
            warned.iter().any(|(_, p)| p == path),
            "{path} not in {warned:?}"
        );
    }
    assert!(native_of(&http)["routes"]["GET /items"]
        .get("cacheKeyParameters")
        .is_none());
}

fn native_of(import: &OpenApiImport) -> Value {
    native(import)
}
