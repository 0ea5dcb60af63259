//! Request validation end to end through `Gateway`: the seed guide's CreateUser model against
//! a table of bodies, required parameters, the `validate` switches, `validationDetails`, and
//! the phase's place in the pipeline (after authorize, before the integration).

use bytes::Bytes;
use portico::config::GatewayResponseDefinition;
use portico::{ApiDefinition, Protocol};
use portico_tests::{add_create_user_model, EchoApi};
use serde_json::{json, Value};

/// Request headers of a test case.
type Headers<'a> = &'a [(&'a str, &'a str)];

const INVALID_BODY: &str = r#"{"message":"Invalid request body"}"#;

/// The validation API with the CreateUser model, changed by `edit`.
struct Fixture(EchoApi);

impl Fixture {
    fn new(edit: impl FnOnce(&mut ApiDefinition)) -> Self {
        Fixture(EchoApi::load("validation-api.yaml", |d| {
            add_create_user_model(d);
            edit(d);
        }))
    }

    fn with_details() -> Self {
        Self::new(|d| d.validation_details = true)
    }

    async fn send(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> (u16, String) {
        let answer = self.0.send(method, uri, headers, body).await;
        (answer.status, answer.body)
    }

    async fn post(&self, uri: &str, body: impl Into<Bytes>) -> (u16, String) {
        self.send("POST", uri, &[], body).await
    }

    /// How many calls of the echo plugin with `?kv=1` left their mark.
    fn echo_calls(&self) -> usize {
        self.0.echo_calls()
    }
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The pointers of the `errors` of a 400 body.
fn pointers(body: &str) -> Vec<String> {
    json(body)["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors: {body}"))
        .iter()
        .map(|e| e["pointer"].as_str().unwrap().to_owned())
        .collect()
}

/// A body and what the model says of it: `Ok(())` valid, `Err(pointers)` invalid there.
struct Case {
    what: &'static str,
    body: String,
    expect: Result<(), &'static [&'static str]>,
}

fn case(
    what: &'static str,
    body: impl Into<String>,
    expect: Result<(), &'static [&'static str]>,
) -> Case {
    Case {
        what,
        body: body.into(),
        expect,
    }
}

fn user(extra: Value) -> String {
    let mut user = json!({"email": "ann@example.com", "name": "Ann"});
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            user.as_object_mut().unwrap().remove(k);
        } else {
            user[k] = v.clone();
        }
    }
    user.to_string()
}

fn cases() -> Vec<Case> {
    let hundred = "n".repeat(100);
    let hundred_one = "n".repeat(101);
    vec![
        case("minimal", user(json!({})), Ok(())),
        case(
            "every field",
            user(json!({"age": 30, "role": "editor"})),
            Ok(()),
        ),
        case("age 0", user(json!({"age": 0})), Ok(())),
        case("age 150", user(json!({"age": 150})), Ok(())),
        case(
            "name of 100 characters",
            user(json!({"name": hundred})),
            Ok(()),
        ),
        case("name of one character", user(json!({"name": "A"})), Ok(())),
        case("each role", user(json!({"role": "admin"})), Ok(())),
        case("viewer", user(json!({"role": "viewer"})), Ok(())),
        case(
            "unknown members are allowed",
            user(json!({"nickname": "a"})),
            Ok(()),
        ),
        case(
            "plus, dots and subdomains in the email",
            user(json!({"email": "first.last+tag@mail.example.co.uk"})),
            Ok(()),
        ),
        case("no email", user(json!({"email": null})), Err(&["/email"])),
        case("no name", user(json!({"name": null})), Err(&["/name"])),
        case("neither", "{}", Err(&["/email", "/name"])),
        case(
            "email without @",
            user(json!({"email": "ann.example.com"})),
            Err(&["/email"]),
        ),
        case(
            "email with a one-letter TLD",
            user(json!({"email": "a@b.c"})),
            Err(&["/email"]),
        ),
        case(
            "email not a string",
            user(json!({"email": 42})),
            Err(&["/email"]),
        ),
        case("empty name", user(json!({"name": ""})), Err(&["/name"])),
        case(
            "name of 101 characters",
            user(json!({"name": hundred_one})),
            Err(&["/name"]),
        ),
        case(
            "name not a string",
            user(json!({"name": ["Ann"]})),
            Err(&["/name"]),
        ),
        case("age -1", user(json!({"age": -1})), Err(&["/age"])),
        case("age 151", user(json!({"age": 151})), Err(&["/age"])),
        case("age 1.5", user(json!({"age": 1.5})), Err(&["/age"])),
        case(
            "age as a string",
            user(json!({"age": "30"})),
            Err(&["/age"]),
        ),
        case(
            "unknown role",
            user(json!({"role": "owner"})),
            Err(&["/role"]),
        ),
        case(
            "role in the wrong case",
            user(json!({"role": "Admin"})),
            Err(&["/role"]),
        ),
        case(
            "several violations at once",
            user(json!({"email": "x", "age": 200, "role": "root"})),
            Err(&["/email", "/age", "/role"]),
        ),
        case("an array", "[]", Err(&[""])),
        case("null", "null", Err(&[""])),
        case("a string", r#""ann@example.com""#, Err(&[""])),
        case("form data", "email=ann%40example.com&name=Ann", Err(&[""])),
        case(
            "truncated JSON",
            r#"{"email":"ann@example.com","#,
            Err(&[""]),
        ),
        case(
            "trailing garbage",
            format!("{} x", user(json!({}))),
            Err(&[""]),
        ),
        case("only whitespace", "   ", Err(&[""])),
        case(
            "nested past any sane depth",
            "[".repeat(100_000),
            Err(&[""]),
        ),
        // API Gateway validates an empty body as `{}`: the model's required members are missing.
        case("empty body", "", Err(&["/email", "/name"])),
    ]
}

#[tokio::test]
async fn create_user_bodies_against_the_model() {
    let f = Fixture::with_details();
    let cases = cases();
    assert!(cases.len() >= 30);
    for Case { what, body, expect } in cases {
        let (status, answer) = f.post("/users", body.clone()).await;
        match expect {
            Ok(()) => {
                assert_eq!(status, 200, "{what}: {answer}");
                assert_eq!(json(&answer)["body"], body.as_str(), "{what}");
            }
            Err(expected) => {
                assert_eq!(status, 400, "{what}: {answer}");
                assert_eq!(json(&answer)["message"], "Invalid request body", "{what}");
                let mut got = pointers(&answer);
                got.dedup();
                for pointer in expected {
                    assert!(
                        got.iter().any(|p| p == pointer),
                        "{what}: {pointer} not in {got:?}"
                    );
                }
                assert!(
                    got.iter().all(|p| expected.contains(&p.as_str())),
                    "{what}: {got:?} beyond {expected:?}"
                );
            }
        }
    }
}

#[tokio::test]
async fn without_validation_details_the_body_is_aws_own() {
    let f = Fixture::new(|_| {});
    for body in ["{}", "not json", "", r#"{"email":"x","name":"A"}"#] {
        assert_eq!(
            f.post("/users", body).await,
            (400, INVALID_BODY.into()),
            "{body:?}"
        );
    }
    let (status, _) = f.post("/users", user(json!({}))).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn reasons_name_the_rule_and_never_echo_the_value() {
    let f = Fixture::with_details();
    let (status, answer) = f
        .post(
            "/users",
            user(json!({"name": "secret-value-".repeat(10), "age": 987})),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        !answer.contains("secret-value") && !answer.contains("987"),
        "{answer}"
    );
    let errors = &json(&answer)["errors"];
    let reason = |pointer: &str| {
        errors
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["pointer"] == pointer)
            .map(|e| e["reason"].as_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("no {pointer}: {errors}"))
    };
    assert!(reason("/name").contains("100"), "{errors}");
    assert!(reason("/age").contains("150"), "{errors}");
    let (_, answer) = f.post("/users", "{oops").await;
    assert!(reason_of(&answer).contains("not valid JSON"), "{answer}");
    let (_, answer) = f.post("/users", user(json!({"email": null}))).await;
    assert!(reason_of(&answer).contains("email"), "{answer}");
}

fn reason_of(answer: &str) -> String {
    json(answer)["errors"][0]["reason"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn huge_bodies_are_answered_without_trouble() {
    let f = Fixture::with_details();
    // A valid 9 MB body passes (the mock answers; nothing is echoed back).
    let padding = "p".repeat(9 * 1024 * 1024);
    let (status, answer) = f
        .send(
            "PUT",
            "/mock/users",
            &[],
            user(json!({ "padding": padding })),
        )
        .await;
    assert_eq!((status, answer.as_str()), (201, "created"));
    // A 5 MB name: 400, and the answer stays small.
    let (status, answer) = f
        .post(
            "/users",
            user(json!({ "name": "n".repeat(5 * 1024 * 1024) })),
        )
        .await;
    assert_eq!(status, 400);
    assert!(answer.len() < 1024, "{} bytes", answer.len());
    assert_eq!(pointers(&answer), ["/name"]);
    // Many violations: the list is capped.
    let many: Vec<Value> = (0..1000).map(|_| json!(1)).collect();
    let model_of_strings = |d: &mut ApiDefinition| {
        d.validation_details = true;
        d.models = [
            (
                "CreateUser",
                json!({"type": "array", "items": {"type": "string"}}),
            ),
            ("Anything", json!({"type": "object"})),
        ]
        .into_iter()
        .collect();
    };
    let g = Fixture::new(model_of_strings);
    let (status, answer) = g.post("/users", Value::Array(many).to_string()).await;
    assert_eq!(status, 400);
    assert_eq!(pointers(&answer).len(), 10);
    // Over 10 MB is still the 413 of the request-size limit, before any validation.
    let (status, _) = f
        .post("/users", vec![b' '; portico::MAX_BODY_BYTES + 1])
        .await;
    assert_eq!(status, 413);
}

#[tokio::test]
async fn required_parameters_are_listed_like_aws() {
    let f = Fixture::new(|_| {});
    let body = user(json!({}));
    let uri = "/tenants/t1/users?tenant=t1";
    let trace = [("x-trace-id", "abc")];
    let (status, answer) = f.send("POST", uri, &trace, body.clone()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(json(&answer)["pathParameters"]["tenantId"], "t1");
    // Header names are case-insensitive; optional parameters may be absent.
    let (status, _) = f
        .send("POST", uri, &[("X-Trace-ID", "abc")], body.clone())
        .await;
    assert_eq!(status, 200);
    let missing = |names: &str| {
        (
            400,
            format!(r#"{{"message":"Missing required request parameters: [{names}]"}}"#),
        )
    };
    let cases: [(&str, Headers, &str); 6] = [
        ("/tenants/t1/users", &trace, "tenant"),
        (uri, &[], "x-trace-id"),
        ("/tenants/t1/users", &[], "x-trace-id, tenant"),
        ("/tenants/t1/users?tenant=", &trace, "tenant"),
        ("/tenants/t1/users?tenant=%20%20", &trace, "tenant"),
        (
            "/tenants/t1/users?Tenant=t1&dryRun=1",
            &[("x-trace-id", " ")],
            "x-trace-id, tenant",
        ),
    ];
    for (uri, headers, names) in cases {
        assert_eq!(
            f.send("POST", uri, headers, body.clone()).await,
            missing(names),
            "{uri} {headers:?}"
        );
    }
    // Parameters are checked before the body.
    assert_eq!(
        f.send("POST", "/tenants/t1/users", &trace, "not json")
            .await,
        missing("tenant")
    );
    assert_eq!(
        f.send("POST", uri, &trace, "not json").await,
        (400, INVALID_BODY.into())
    );
}

#[tokio::test]
async fn validate_turns_each_check_off() {
    let f = Fixture::new(|_| {});
    // `validate: {body: false}`: any body passes, the parameters are still required.
    let (status, answer) = f.post("/lenient/users?tenant=t", "not json").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(json(&answer)["body"], "not json");
    assert_eq!(
        f.post("/lenient/users", "{}").await,
        (
            400,
            r#"{"message":"Missing required request parameters: [tenant]"}"#.into()
        )
    );
    // Both off: the route declares a model and parameters but checks neither.
    let (status, _) = f.post("/unchecked/users", "not json").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn validation_runs_after_authorization() {
    let f = Fixture::new(|_| {});
    let key = [("x-api-key", "k-validation-0123456789")];
    let forbidden = (403, r#"{"message":"Forbidden"}"#.to_owned());
    assert_eq!(f.post("/keyed/users", "not json").await, forbidden);
    assert_eq!(f.post("/keyed/users", "").await, forbidden);
    assert_eq!(
        f.send("POST", "/keyed/users", &key, "not json").await,
        (400, INVALID_BODY.into())
    );
    let (status, _) = f.send("POST", "/keyed/users", &key, user(json!({}))).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_refused_request_never_reaches_the_integration() {
    let f = Fixture::new(|_| {});
    let trace = [("x-trace-id", "abc")];
    for body in [
        "not json",
        "{}",
        r#"{"email":"ann@example.com","name":""}"#,
        "",
    ] {
        let (status, _) = f.post("/users?kv=1", body).await;
        assert_eq!(status, 400, "{body:?}");
        let (status, _) = f
            .send("POST", "/tenants/t/users?kv=1&tenant=t", &trace, body)
            .await;
        assert_eq!(status, 400, "{body:?}");
    }
    let (status, _) = f
        .send("POST", "/tenants/t/users?kv=1", &trace, user(json!({})))
        .await;
    assert_eq!(status, 400);
    assert_eq!(f.echo_calls(), 0, "the echo plugin was called");
    // The same probe sees a call that does get through.
    let (status, answer) = f.post("/users?kv=1", user(json!({}))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(f.echo_calls(), 1);
}

#[tokio::test]
async fn gateway_responses_can_reshape_validation_failures() {
    let f = Fixture::new(|d| {
        d.gateway_responses = [
            (
                "BAD_REQUEST_BODY",
                GatewayResponseDefinition::with_body(
                    r#"{"error":$context.error.messageString,"type":"$context.error.responseType","details":"$context.error.validationErrorString"}"#,
                )
                .status(422),
            ),
            (
                "BAD_REQUEST_PARAMETERS",
                GatewayResponseDefinition::with_body(r#"{"error":$context.error.messageString}"#),
            ),
        ]
        .into_iter()
        .collect();
    });
    let (status, answer) = f.post("/users", r#"{"name":"A \"quoted\" name"}"#).await;
    assert_eq!(status, 422);
    let answer = json(&answer);
    assert_eq!(answer["error"], "Invalid request body");
    assert_eq!(answer["type"], "BAD_REQUEST_BODY");
    let details = answer["details"].as_str().unwrap();
    assert!(
        details.starts_with("[/email: ") && details.ends_with(']'),
        "{details}"
    );
    let (status, answer) = f.post("/lenient/users", "").await;
    assert_eq!(
        (status, json(&answer)),
        (
            400,
            json!({"error": "Missing required request parameters: [tenant]"})
        )
    );
}

#[tokio::test]
async fn gateway_response_templates_never_expand_request_text() {
    // A model whose members may have any name: the name of a bad one reaches the violation's
    // pointer, and so `$context.error.validationErrorString`.
    let f = Fixture(EchoApi::load("validation-api.yaml", |d| {
        let model = json!({"type": "object", "additionalProperties": {"type": "integer"}});
        d.models.insert("CreateUser", model).unwrap();
        d.gateway_responses = [(
            "BAD_REQUEST_BODY",
            GatewayResponseDefinition::with_body(
                r#"{"details":"$context.error.validationErrorString","message":"$context.error.message","id":"$context.requestId"}"#,
            ),
        )]
        .into_iter()
        .collect();
    }));
    let answer =
        f.0.send(
            "POST",
            "/users",
            &[],
            r#"{"$context.requestId":"x","${stageVariables.X}":"y"}"#,
        )
        .await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    let body = json(&answer.body);
    let details = body["details"].as_str().unwrap();
    assert!(
        details.contains("/$context.requestId: ") && details.contains("/${stageVariables.X}: "),
        "{details}"
    );
    assert_eq!(body["message"], "Invalid request body");
    // The template's own reference is expanded, once.
    assert_eq!(
        body["id"].as_str(),
        answer.header("apigw-requestid"),
        "{body}"
    );
}

#[tokio::test]
async fn validation_works_for_rest_apis_too() {
    let f = Fixture::new(|d| {
        d.protocol = Protocol::Rest;
        d.stages = [("prod", Default::default())].into_iter().collect();
    });
    assert_eq!(
        f.post("/prod/users", "{}").await,
        (400, INVALID_BODY.into())
    );
    let (status, _) = f.post("/prod/users", user(json!({}))).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_model_may_reference_another_by_its_model_url() {
    // CreateUser's `address` is the Address model, referenced as API Gateway writes it.
    let f = Fixture(EchoApi::load("validation-api.yaml", |d| {
        let url = "https://apigateway.amazonaws.com/restapis/validation-e2e/models/Address";
        let create_user = json!({
            "type": "object",
            "required": ["email", "name", "address"],
            "properties": {"address": {"$ref": url}},
        });
        d.models.insert("CreateUser", create_user).unwrap();
        let address = json!({"type": "object", "required": ["city"], "properties": {"city": {"type": "string", "minLength": 1}}});
        d.models.insert("Address", address).unwrap();
    }));
    let body = |address: Value| json!({"email": "a@example.com", "name": "A", "address": address});
    for bad in [json!({}), json!({"city": ""}), json!("Kyoto")] {
        assert_eq!(
            f.post("/users", body(bad.clone()).to_string()).await,
            (400, INVALID_BODY.into()),
            "{bad}"
        );
    }
    let (status, _) = f
        .post("/users", body(json!({"city": "Kyoto"})).to_string())
        .await;
    assert_eq!(status, 200);
}

/// `requestModels` choose the model by the body's `Content-Type` ("A model is indexed against
/// the media type of the applied payload. API Gateway uses the Content-Type request header to
/// determine the content type ... specify `$default` as the key" for any other: API Gateway
/// developer guide, api-gateway-method-settings-method-request.md). A media type without a
/// model and no `$default` is refused (Portico's choice, as AWS's WebSocket APIs document:
/// "If there is no matching model and $default isn't defined, the validation fails").
#[tokio::test]
async fn request_models_are_chosen_by_content_type() {
    let f = Fixture::new(|_| {});
    let json_type = [("content-type", "application/json; charset=utf-8")];
    let text_type = [("content-type", "text/plain")];
    let other_json = [("content-type", "application/vnd.api+json")];
    // application/json: CreateUser, with or without the header (API Gateway assumes JSON).
    for headers in [&json_type[..], &[]] {
        let (status, _) = f.send("POST", "/typed/users", headers, "{}").await;
        assert_eq!(status, 400, "{headers:?}");
        let (status, _) = f
            .send("POST", "/typed/users", headers, user(json!({})))
            .await;
        assert_eq!(status, 200, "{headers:?}");
    }
    // Another media type, no $default: refused, even with a body CreateUser accepts.
    assert_eq!(
        f.send("POST", "/typed/users", &text_type, user(json!({})))
            .await,
        (400, INVALID_BODY.into())
    );
    // With $default, another media type meets its model (any object).
    let (status, _) = f
        .send("POST", "/typed-or-any/users", &other_json, "{}")
        .await;
    assert_eq!(status, 200);
    let (status, _) = f
        .send("POST", "/typed-or-any/users", &other_json, "[1]")
        .await;
    assert_eq!(status, 400);
    let (status, _) = f
        .send("POST", "/typed-or-any/users", &json_type, "{}")
        .await;
    assert_eq!(status, 400);
}
