//! The validate phase, between authorize and integrate: a route's required request parameters
//! (`requestParameters`) and its body model (`requestModel`, or `requestModels` by media type;
//! JSON Schema draft 4), as API Gateway's request validators check them. Models are compiled
//! once per API; a failure is a 400 BAD_REQUEST_PARAMETERS or BAD_REQUEST_BODY gateway
//! response.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use jsonschema::error::ValidationErrorKind;
use jsonschema::{PatternOptions, Retrieve, Uri, Validator};
use serde_json::Value;

use crate::config::{ApiDefinition, RouteDefinition};
use crate::error::{Error, KeyPath};
use crate::exchange::{Exchange, Flow};
use crate::respond::{GatewayError, NotAParameter, RequestParameter, Violation};

/// At most this many violations are reported for one body: enough to fix a request, and a
/// bound on the work a hostile body can cause on the failure path.
const MAX_VIOLATIONS: usize = 10;

/// The API's models, each compiled once and shared by every stage and route that uses it.
#[derive(Default)]
pub(crate) struct Models {
    validators: BTreeMap<String, Arc<Validator>>,
}

/// Where a model is referenced from another (`{"$ref": "<this>ModelName"}`): API Gateway's own
/// model URL, with the API's `apiId` (else its `name`) as the REST API id.
fn model_uri_base(api_id: &str) -> String {
    format!("https://apigateway.amazonaws.com/restapis/{api_id}/models/")
}

/// Serves the API's models to `$ref`s by their model URL; nothing else is fetched. Cheap to
/// clone: every model's validator gets one.
#[derive(Clone)]
struct ModelRetriever {
    base: Arc<str>,
    models: Arc<BTreeMap<String, Value>>,
}

impl Retrieve for ModelRetriever {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let uri = uri.as_str();
        uri.strip_prefix(&*self.base)
            .and_then(|name| self.models.get(name))
            .cloned()
            .ok_or_else(|| {
                format!(
                    "\"{uri}\" is not a model of this API (models are referenced as {}NAME)",
                    self.base
                )
                .into()
            })
    }
}

impl Models {
    /// Compiles every entry of `models` as a JSON Schema draft 4 document. A model may
    /// reference another as API Gateway does, by its model URL
    /// (`https://apigateway.amazonaws.com/restapis/{apiId}/models/{name}`); any other reference
    /// out of the model is a load error (nothing is fetched).
    pub(crate) fn compile(definition: &ApiDefinition) -> Result<Self, Error> {
        let mut validators = BTreeMap::new();
        let api_id = definition.api_id.as_deref().unwrap_or(&definition.name);
        let base = model_uri_base(api_id);
        let retriever = ModelRetriever {
            base: Arc::from(base.as_str()),
            models: Arc::new(
                definition
                    .models
                    .iter()
                    .map(|(name, schema)| (name.to_owned(), schema.clone()))
                    .collect(),
            ),
        };
        for (name, schema) in definition.models.iter() {
            let at = KeyPath::root().key("models").key(name);
            let validator = jsonschema::draft4::options()
                .with_retriever(retriever.clone())
                // The model's own URL: `#/definitions/...` inside it stays local.
                .with_base_uri(format!("{base}{name}"))
                // The regex crate: linear-time `pattern` matching, so no body can make a
                // pattern backtrack for long.
                .with_pattern_options(PatternOptions::regex())
                .build(schema)
                .map_err(|e| {
                    Error::config(at, format!("not a valid JSON Schema (draft 4): {e}"))
                })?;
            validators.insert(name.to_owned(), Arc::new(validator));
        }
        Ok(Models { validators })
    }
}

/// A parameter that must be present and not blank.
#[derive(Debug, Clone)]
struct RequiredParameter {
    source: RequestParameter,
    /// The name as written (what the 400 message lists).
    name: String,
}

/// A route's body models: "A model is indexed against the media type of the applied payload.
/// API Gateway uses the `Content-Type` request header to determine the content type. ... To
/// use the same model regardless of the content type, specify `$default` as the key" (API
/// Gateway developer guide, "Set up a method request", api-gateway-method-settings-method-request.md).
struct BodyModels {
    /// Lowercased media types (`application/json`) and their models.
    by_type: Vec<(String, Arc<Validator>)>,
    /// `$default` (or `requestModel`): the model of any other media type.
    default: Option<Arc<Validator>>,
}

impl BodyModels {
    /// The model for a request's `Content-Type` (its media type, parameters dropped; none is
    /// `application/json`, as API Gateway assumes for a request without one).
    fn select(&self, content_type: Option<&[u8]>) -> Result<&Validator, String> {
        if !self.by_type.is_empty() {
            let media_type = content_type
                .and_then(|value| std::str::from_utf8(value).ok())
                .map(|value| value.split(';').next().unwrap_or("").trim())
                .filter(|media_type| !media_type.is_empty())
                .unwrap_or("application/json");
            if let Some((_, model)) = self
                .by_type
                .iter()
                .find(|(listed, _)| listed.eq_ignore_ascii_case(media_type))
            {
                return Ok(model);
            }
            if self.default.is_none() {
                // AWS documents no REST behaviour for a media type without a model; its
                // WebSocket APIs refuse ("If there is no matching model and $default isn't
                // defined, the validation fails", websocket-api-request-validation.md), and
                // so does Portico, rather than let a Content-Type skip validation.
                return Err(format!(
                    "the route has no model for Content-Type {media_type:?} (and no $default)"
                ));
            }
        }
        self.default.as_deref().ok_or_else(String::new)
    }
}

/// What the validate phase checks on one route.
#[derive(Default)]
pub(crate) struct RouteValidation {
    /// Required parameters, in the order of their keys (`header.*`, `path.*`, `querystring.*`).
    required: Vec<RequiredParameter>,
    body: Option<BodyModels>,
    /// Whether a failed body answer lists its violations (`validationDetails`).
    details: bool,
}

impl RouteValidation {
    /// Compiles the checks of `route` (its model references were checked before).
    pub(crate) fn compile(
        route_key: &str,
        route: &RouteDefinition,
        models: &Models,
        details: bool,
        at: &KeyPath,
    ) -> Result<Self, Error> {
        let mut required = Vec::new();
        let path_variables = path_variables(route_key);
        for (key, &is_required) in &route.request_parameters {
            let here = at.key("requestParameters").key(key);
            let (source, name) = parse_parameter(key, &path_variables)
                .map_err(|message| Error::config(here, message))?;
            if is_required {
                required.push(RequiredParameter {
                    source,
                    name: name.to_owned(),
                });
            }
        }
        let choice = route.validate.clone().unwrap_or_default();
        let has_model = route.request_model.is_some() || !route.request_models.is_empty();
        let validate_body = choice.body.unwrap_or(has_model);
        let validate_parameters = choice.parameters.unwrap_or(true);
        if route.request_model.is_some() && !route.request_models.is_empty() {
            return Err(Error::config(
                at.key("requestModels"),
                "a route has requestModel or requestModels, not both (requestModel is requestModels: {$default: NAME})",
            ));
        }
        let body = match validate_body {
            true if !has_model => {
                return Err(Error::config(
                    at.key("validate").key("body"),
                    "body validation needs a requestModel or requestModels",
                ))
            }
            true => Some(body_models(route, models, at)?),
            false => None,
        };
        if !validate_parameters {
            required.clear();
        }
        Ok(RouteValidation {
            required,
            body,
            details,
        })
    }

    /// Whether the route checks nothing (the phase is skipped).
    pub(crate) fn is_empty(&self) -> bool {
        self.required.is_empty() && self.body.is_none()
    }
}

/// The validate phase: checks the request against the route's rules, parameters first, then
/// the body, as API Gateway does.
pub(crate) fn phase(rules: &RouteValidation, x: &Exchange<'_>) -> Flow {
    if rules.is_empty() {
        return Ok(());
    }
    if !rules.required.is_empty() {
        let missing: Vec<&str> = rules
            .required
            .iter()
            .filter(|p| !is_present(p, x))
            .map(|p| p.name.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(GatewayError::bad_request_parameters(&missing));
        }
    }
    if let Some(models) = &rules.body {
        let content_type = x
            .parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .map(|v| v.as_bytes());
        match models.select(content_type) {
            Ok(model) => check_body(model, &x.body, rules.details)?,
            Err(reason) => {
                let violation = Violation {
                    pointer: String::new(),
                    reason,
                };
                return Err(GatewayError::bad_request_body(
                    vec![violation],
                    rules.details,
                ));
            }
        }
    }
    Ok(())
}

/// A route's models by media type (checked to exist before).
fn body_models(
    route: &RouteDefinition,
    models: &Models,
    at: &KeyPath,
) -> Result<BodyModels, Error> {
    let model = |name: &str| {
        models.validators.get(name).cloned().ok_or_else(|| {
            Error::config(at.key("requestModels"), format!("unknown model \"{name}\""))
        })
    };
    let mut body = BodyModels {
        by_type: Vec::new(),
        default: route.request_model.as_deref().map(model).transpose()?,
    };
    for (media_type, name) in route.request_models.iter() {
        if media_type == "$default" {
            body.default = Some(model(name)?);
            continue;
        }
        let valid = media_type
            .split_once('/')
            .is_some_and(|(kind, sub)| !kind.is_empty() && !sub.is_empty())
            && !media_type.contains([';', ' ', '*']);
        if !valid {
            return Err(Error::config(
                at.key("requestModels").key(media_type),
                "expected a media type (application/json) or $default",
            ));
        }
        body.by_type
            .push((media_type.to_ascii_lowercase(), model(name)?));
    }
    Ok(body)
}

fn check_body(model: &Validator, body: &Bytes, details: bool) -> Result<(), GatewayError> {
    // API Gateway validates an empty body as `{}`.
    let parsed: Result<Value, _> = if body.is_empty() {
        Ok(Value::Object(Default::default()))
    } else {
        serde_json::from_slice(body)
    };
    let instance = match parsed {
        Ok(instance) => instance,
        Err(e) => {
            let violation = Violation {
                pointer: String::new(),
                reason: format!("the body is not valid JSON: {e}"),
            };
            return Err(GatewayError::bad_request_body(vec![violation], details));
        }
    };
    if model.is_valid(&instance) {
        return Ok(());
    }
    let violations = model
        .iter_errors(&instance)
        .take(MAX_VIOLATIONS)
        .map(|error| {
            let mut pointer = error.instance_path().as_str().to_owned();
            // A missing member is reported where it should be, not at its parent object.
            if let ValidationErrorKind::Required { property } = error.kind() {
                if let Some(name) = property.as_str() {
                    pointer.push('/');
                    pointer.push_str(&name.replace('~', "~0").replace('/', "~1"));
                }
            }
            // `masked` leaves the sent values out: a 400 never echoes the request back.
            Violation {
                pointer,
                reason: error.masked().to_string(),
            }
        })
        .collect();
    Err(GatewayError::bad_request_body(violations, details))
}

fn is_present(parameter: &RequiredParameter, x: &Exchange<'_>) -> bool {
    // "Included and not blank", in API Gateway's words.
    let not_blank = |value: &[u8]| !value.iter().all(u8::is_ascii_whitespace);
    match &parameter.source {
        RequestParameter::Header(name) => x
            .parts
            .headers
            .get_all(name)
            .iter()
            .any(|v| not_blank(v.as_bytes())),
        RequestParameter::Query(name) => x
            .query()
            .iter()
            .any(|(k, v)| k == name && not_blank(v.as_bytes())),
        RequestParameter::Path(name) => x
            .path_params
            .iter()
            .any(|(k, v)| k == name && not_blank(v.as_bytes())),
    }
}

/// `header.X`, `querystring.X` or `path.X` (REST's `method.request.` prefix allowed).
fn parse_parameter<'k>(
    key: &'k str,
    path_variables: &[&str],
) -> Result<(RequestParameter, &'k str), String> {
    let bare = key.strip_prefix("method.request.").unwrap_or(key);
    let expected = "expected header.NAME, querystring.NAME or path.NAME";
    let (parameter, name) = RequestParameter::parse(bare, false).map_err(|why| match why {
        NotAParameter::Shape => format!("bad request parameter: {expected}"),
        NotAParameter::NoName => format!("the parameter has no name: {expected}"),
        NotAParameter::HeaderName(name) => format!("bad header name \"{name}\""),
        NotAParameter::Location(kind) => {
            format!("unknown parameter location \"{kind}\": {expected}")
        }
    })?;
    if matches!(parameter, RequestParameter::Path(_)) && !path_variables.contains(&name) {
        return Err(format!("the route key has no path variable {{{name}}}"));
    }
    Ok((parameter, name))
}

/// The names of the path variables of a route key (`{id}`, `{proxy+}` -> `id`, `proxy`).
fn path_variables(route_key: &str) -> Vec<&str> {
    let path = route_key.split_once(' ').map_or("", |(_, path)| path);
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| name.strip_suffix('+').unwrap_or(name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Format, ValidateDefinition};

    const API: &str = r#"
name: t
models:
  CreateUser:
    type: object
    required: [email, name]
    properties:
      email: { type: string, pattern: "^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\\.[a-zA-Z]{2,}$" }
      name:  { type: string, minLength: 1, maxLength: 100 }
      age:   { type: integer, minimum: 0, maximum: 150 }
      role:  { type: string, enum: [admin, editor, viewer] }
routes:
  POST /users/{id}:
    integration: {type: mock}
    requestModel: CreateUser
    requestParameters: {querystring.tenant: true, header.x-trace: true, path.id: true, header.x-opt: false}
"#;

    fn definition() -> ApiDefinition {
        ApiDefinition::from_str_as(API, Format::Yaml).unwrap()
    }

    fn rules(edit: impl FnOnce(&mut RouteDefinition)) -> Result<RouteValidation, Error> {
        let def = definition();
        let models = Models::compile(&def).unwrap();
        let mut route = def.routes.iter().next().unwrap().1.clone();
        edit(&mut route);
        RouteValidation::compile(
            "POST /users/{id}",
            &route,
            &models,
            true,
            &KeyPath::root().key("routes").key("POST /users/{id}"),
        )
    }

    fn run(
        rules: &RouteValidation,
        uri: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Result<(), GatewayError> {
        let mut request = http::Request::post(uri);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let (parts, ()) = request.body(()).unwrap().into_parts();
        let mut x = Exchange::for_test(&parts);
        x.path_params = vec![("id", "7".into())];
        x.body = Bytes::from(body.to_owned());
        phase(rules, &x)
    }

    const GOOD: &str = r#"{"email":"a@example.com","name":"A"}"#;

    #[test]
    fn missing_parameters_are_listed_in_key_order() {
        let rules = rules(|_| {}).unwrap();
        let err = run(&rules, "/users/7", &[], GOOD).unwrap_err();
        assert_eq!(
            err.message,
            "Missing required request parameters: [x-trace, tenant]"
        );
        let err = run(&rules, "/users/7?tenant=%20", &[("x-trace", "1")], GOOD).unwrap_err();
        assert_eq!(err.message, "Missing required request parameters: [tenant]");
        run(&rules, "/users/7?tenant=t", &[("X-Trace", "1")], GOOD).unwrap();
    }

    #[test]
    fn body_violations_point_at_members() {
        let rules = rules(|r| r.request_parameters.clear()).unwrap();
        let err = run(&rules, "/u", &[], r#"{"name":"","age":151}"#).unwrap_err();
        assert_eq!(err.message, "Invalid request body");
        let pointers: Vec<&str> = err.violations.iter().map(|v| v.pointer.as_str()).collect();
        assert!(pointers.contains(&"/email"), "{pointers:?}");
        assert!(pointers.contains(&"/name"), "{pointers:?}");
        assert!(pointers.contains(&"/age"), "{pointers:?}");
        assert!(
            !err.violations.iter().any(|v| v.reason.contains("151")),
            "{:?}",
            err.violations
        );
        let err = run(&rules, "/u", &[], "{nope").unwrap_err();
        assert_eq!(err.violations[0].pointer, "");
        assert!(err.violations[0].reason.contains("not valid JSON"));
    }

    #[test]
    fn validate_switches_each_check() {
        let off = rules(|r| {
            r.validate = Some(ValidateDefinition {
                body: Some(false),
                parameters: None,
            })
        })
        .unwrap();
        assert!(off.body.is_none());
        assert_eq!(off.required.len(), 3);
        let off = rules(|r| {
            r.validate = Some(ValidateDefinition {
                body: None,
                parameters: Some(false),
            })
        })
        .unwrap();
        assert!(off.body.is_some() && off.required.is_empty());
        let err = rules(|r| {
            r.request_model = None;
            r.validate = Some(ValidateDefinition {
                body: Some(true),
                parameters: None,
            })
        })
        .err()
        .unwrap();
        assert!(err.to_string().contains("validate.body"), "{err}");
    }

    /// `requestModels` by media type (API Gateway developer guide, "Set up a method request":
    /// "API Gateway uses the `Content-Type` request header to determine the content type";
    /// `$default` for any other).
    #[test]
    fn models_are_chosen_by_content_type() {
        let mut def = definition();
        def.models
            .insert("Anything", serde_json::json!({"type": "object"}))
            .unwrap();
        let models = Models::compile(&def).unwrap();
        let compile = |entries: &[(&str, &str)]| {
            let mut route = def.routes.iter().next().unwrap().1.clone();
            route.request_parameters.clear();
            route.request_model = None;
            route.request_models = entries.iter().map(|(k, v)| (*k, v.to_string())).collect();
            RouteValidation::compile("POST /users/{id}", &route, &models, true, &KeyPath::root())
        };
        let json_only = compile(&[("application/json", "CreateUser")]).unwrap();
        let bad = r#"{"name":""}"#;
        // The JSON model for application/json, with parameters and in any case, and for a
        // request without Content-Type (API Gateway assumes application/json).
        for content_type in [
            Some("application/json"),
            Some("Application/JSON; charset=utf-8"),
            None,
        ] {
            let headers: Vec<(&str, &str)> = content_type
                .map(|c| ("content-type", c))
                .into_iter()
                .collect();
            run(&json_only, "/u", &headers, GOOD).unwrap();
            let err = run(&json_only, "/u", &headers, bad).unwrap_err();
            assert_eq!(err.message, "Invalid request body", "{content_type:?}");
        }
        // No model for text/plain and no $default: refused, never skipped.
        let err = run(&json_only, "/u", &[("content-type", "text/plain")], "hi").unwrap_err();
        assert!(err.violations[0].reason.contains("text/plain"), "{err:?}");
        // $default takes every other media type.
        let with_default =
            compile(&[("application/json", "CreateUser"), ("$default", "Anything")]).unwrap();
        run(
            &with_default,
            "/u",
            &[("content-type", "text/x-json")],
            "{}",
        )
        .unwrap();
        run(
            &with_default,
            "/u",
            &[("content-type", "application/json")],
            bad,
        )
        .unwrap_err();
        // Bad keys and both spellings at once are load errors at their key.
        let err = compile(&[("json", "CreateUser")]).err().unwrap();
        assert!(err.to_string().contains("requestModels.json"), "{err}");
        let err = compile(&[("application/json", "Nope")]).err().unwrap();
        assert!(err.to_string().contains("Nope"), "{err}");
        let mut route = def.routes.iter().next().unwrap().1.clone();
        route.request_models = [("$default", "Anything".to_owned())].into_iter().collect();
        let err =
            RouteValidation::compile("POST /users/{id}", &route, &models, true, &KeyPath::root())
                .err()
                .unwrap();
        assert!(err.to_string().contains("not both"), "{err}");
    }

    #[test]
    fn bad_parameter_keys_are_load_errors() {
        for (key, expected) in [
            ("cookie.x", "unknown parameter location"),
            ("header.", "has no name"),
            ("header", "bad request parameter"),
            ("header.bad name", "bad header name"),
            ("path.nope", "no path variable {nope}"),
        ] {
            let err = rules(|r| {
                r.request_parameters = BTreeMap::from([(key.to_owned(), true)]);
            })
            .err()
            .unwrap()
            .to_string();
            assert!(err.contains(expected), "{key}: {err}");
            let at = portico_key(key);
            assert!(err.starts_with(&at), "{at}: {err}");
        }
        rules(|r| {
            r.request_parameters =
                BTreeMap::from([("method.request.querystring.q".to_owned(), true)]);
        })
        .unwrap();
    }

    fn portico_key(key: &str) -> String {
        KeyPath::root()
            .key("routes")
            .key("POST /users/{id}")
            .key("requestParameters")
            .key(key)
            .to_string()
    }

    #[test]
    fn bad_models_name_their_key() {
        let mut def = definition();
        def.models = [("Broken", serde_json::json!({"type": "nope"}))]
            .into_iter()
            .collect();
        let err = Models::compile(&def).err().unwrap().to_string();
        assert!(
            err.starts_with("models.Broken: not a valid JSON Schema"),
            "{err}"
        );
        for schema in [
            serde_json::json!({"pattern": "("}),
            serde_json::json!({"$ref": "https://models.example.com/User.json"}),
            serde_json::json!({"$ref": "#/definitions/missing"}),
        ] {
            def.models = [("Bad", schema.clone())].into_iter().collect();
            let err = Models::compile(&def).err();
            assert!(err.is_some(), "{schema} compiled");
        }
        def.models = [(
            "Local",
            serde_json::json!({"definitions": {"n": {"type": "integer"}}, "$ref": "#/definitions/n"}),
        )]
        .into_iter()
        .collect();
        Models::compile(&def).unwrap();
    }

    #[test]
    fn models_reference_each_other_by_their_model_url() {
        let yaml = r##"
name: t
apiId: shop
models:
  Address:
    type: object
    required: [city]
    properties: { city: { type: string, minLength: 1 } }
  Order:
    type: object
    required: [ship_to]
    properties:
      ship_to: { $ref: "https://apigateway.amazonaws.com/restapis/shop/models/Address" }
      lines: { type: array, items: { $ref: "#/definitions/line" } }
    definitions:
      line: { type: object, required: [sku] }
  Tree:
    type: object
    properties:
      children: { type: array, items: { $ref: "https://apigateway.amazonaws.com/restapis/shop/models/Tree" } }
      name: { type: string }
routes:
  GET /x: { integration: {type: mock} }
"##;
        let def = ApiDefinition::from_str_as(yaml, Format::Yaml).unwrap();
        let models = Models::compile(&def).expect("models referencing models load");
        let valid = |model: &str, body: serde_json::Value| models.validators[model].is_valid(&body);
        assert!(valid(
            "Order",
            serde_json::json!({"ship_to": {"city": "Kyoto"}, "lines": [{"sku": "a"}]})
        ));
        // The referenced model's rules apply: Address needs a non-empty city.
        assert!(!valid("Order", serde_json::json!({"ship_to": {}})));
        assert!(!valid(
            "Order",
            serde_json::json!({"ship_to": {"city": ""}})
        ));
        // `#/definitions` stays inside the model that writes it.
        assert!(!valid(
            "Order",
            serde_json::json!({"ship_to": {"city": "Kyoto"}, "lines": [{}]})
        ));
        // A model may refer to itself.
        assert!(valid(
            "Tree",
            serde_json::json!({"children": [{"name": "a", "children": [{"name": "b"}]}]})
        ));
        assert!(!valid(
            "Tree",
            serde_json::json!({"children": [{"children": [{"name": 7}]}]})
        ));

        // An unknown model, or another API's model URL, is a load error naming the model.
        for target in [
            "https://apigateway.amazonaws.com/restapis/shop/models/Nope",
            "https://apigateway.amazonaws.com/restapis/other/models/Address",
        ] {
            let bad = yaml.replace(
                "https://apigateway.amazonaws.com/restapis/shop/models/Address",
                target,
            );
            let def = ApiDefinition::from_str_as(&bad, Format::Yaml).unwrap();
            let err = Models::compile(&def).err().expect(target).to_string();
            assert!(err.starts_with("models.Order: "), "{err}");
        }
    }

    #[test]
    fn path_variables_of_route_keys() {
        assert_eq!(path_variables("GET /a/{id}/b/{proxy+}"), ["id", "proxy"]);
        assert!(path_variables("$default").is_empty());
    }
}
