//! The respond phase: every failure of the request path becomes one of AWS's gateway responses
//! (status + `{"message": ...}`), here and nowhere else, with the API's overrides applied.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, Response, StatusCode};

use crate::config::GatewayResponseDefinition;
use crate::error::{Error, KeyPath};
use crate::stage;
use crate::template::{ContextNames, Segment, Template};

/// The header that carries the request id on every response.
pub(crate) const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("apigw-requestid");
/// A REST API answer's request id (`requestContext.requestId`, a UUID).
const REST_REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-amzn-requestid");
/// A REST API answer's extended request id (`requestContext.extendedRequestId`).
const REST_EXTENDED_ID_HEADER: HeaderName = HeaderName::from_static("x-amz-apigw-id");
/// A REST API refusal's error type (`MissingAuthenticationTokenException`).
const ERROR_TYPE_HEADER: HeaderName = HeaderName::from_static("x-amzn-errortype");

/// One request's ids, as its answer, its log and its Lambda event carry them. An HTTP API has
/// one, 16 characters (`apigw-requestid: Mc7UVioPPHcEKPA=`, AWS's JWT troubleshooting page);
/// a REST API a UUID (`x-amzn-RequestId`, `requestContext.requestId`) and the extended id in
/// the HTTP API's shape (`x-amz-apigw-id`, `requestContext.extendedRequestId`), as recorded in
/// LocalStack's test_apigateway_lambda.snapshot.json (`invoke-api-with-headers`).
pub(crate) struct RequestIds {
    id: HeaderValue,
    /// REST only: the extended id.
    extended: Option<HeaderValue>,
}

impl RequestIds {
    /// New ids for a request to an API of REST (`rest`) or HTTP semantics.
    pub(crate) fn new(rest: bool) -> Self {
        if rest {
            let mut bytes = [0u8; 16];
            fastrand::fill(&mut bytes);
            let uuid = uuid::Builder::from_random_bytes(bytes).into_uuid();
            let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
            uuid.hyphenated().encode_lower(&mut text);
            let id = shared_header_value(text);
            RequestIds {
                id,
                extended: Some(short_id()),
            }
        } else {
            RequestIds {
                id: short_id(),
                extended: None,
            }
        }
    }

    /// `$context.requestId`.
    pub(crate) fn id(&self) -> &str {
        self.id.to_str().unwrap_or_default()
    }

    /// `$context.extendedRequestId` (an HTTP API's is its request id).
    pub(crate) fn extended(&self) -> &str {
        self.texts().1
    }

    /// `$context.requestId` and `$context.extendedRequestId`, an HTTP API's id read once.
    pub(crate) fn texts(&self) -> (&str, &str) {
        let id = self.id();
        let extended = match &self.extended {
            Some(extended) => extended.to_str().unwrap_or_default(),
            None => id,
        };
        (id, extended)
    }
}

/// An id in the shape of HTTP API's `apigw-requestid` (`Xa1bCdEfIAMEb4Q=`): the base64 of 11
/// random bytes, 16 characters. The characters are drawn from 88 random bits directly, as
/// base64 would spell them (14 characters of 6 bits, one of 4 bits and two zero bits, the
/// padding): the base64 engine took about 150 instructions a request to encode them.
fn short_id() -> HeaderValue {
    const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = fastrand::u128(..);
    // On the stack: the header value is the request's one allocation for it.
    let mut id = [b'='; 16];
    for c in &mut id[..14] {
        *c = BASE64[(bits & 63) as usize];
        bits >>= 6;
    }
    id[14] = BASE64[((bits & 15) << 2) as usize];
    shared_header_value(id)
}

/// A request id as a header value whose clones share its bytes: the answer's header is a
/// clone (the ids stay for the log), and cloning a value made from a copied slice allocated
/// a second time per request (`bytes` promotes a vector's bytes when they are first shared).
fn shared_header_value<const N: usize>(id: [u8; N]) -> HeaderValue {
    HeaderValue::from_maybe_shared(Bytes::from_owner(id))
        .unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

macro_rules! response_types {
    ($($variant:ident = $name:literal, $status:expr, $error_type:literal;)*) => {
        /// API Gateway's gateway response types.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub(crate) enum ResponseType { $($variant,)* }

        impl ResponseType {
            const ALL: &'static [ResponseType] = &[$(ResponseType::$variant,)*];

            /// AWS's name (`RESOURCE_NOT_FOUND`).
            pub(crate) fn name(self) -> &'static str {
                match self { $(ResponseType::$variant => $name,)* }
            }

            /// AWS's default status (`None` for the two defaults).
            fn default_status(self) -> Option<u16> {
                match self { $(ResponseType::$variant => $status,)* }
            }

            /// The `x-amzn-ErrorType` a REST API's answer of this type carries.
            fn error_type(self) -> &'static str {
                match self { $(ResponseType::$variant => $error_type,)* }
            }
        }
    };
}

// The error types: MissingAuthenticationTokenException and InternalServerErrorException are
// recorded against AWS in LocalStack's tests/aws/services/apigateway/
// test_apigateway_common.snapshot.json (`test_routing_not_found`) and
// test_apigateway_integrations.snapshot.json (`test_apigateway_header_remapping_http`); the
// others follow LocalStack's gateway_response.py (services/apigateway/next_gen/execute_api),
// the closest record of AWS's there is.
response_types! {
    AccessDenied = "ACCESS_DENIED", Some(403), "AccessDeniedException";
    ApiConfigurationError = "API_CONFIGURATION_ERROR", Some(500), "ApiConfigurationException";
    AuthorizerConfigurationError = "AUTHORIZER_CONFIGURATION_ERROR", Some(500), "AuthorizerConfigurationException";
    AuthorizerFailure = "AUTHORIZER_FAILURE", Some(500), "AuthorizerFailureException";
    BadRequestParameters = "BAD_REQUEST_PARAMETERS", Some(400), "BadRequestException";
    BadRequestBody = "BAD_REQUEST_BODY", Some(400), "BadRequestException";
    Default4xx = "DEFAULT_4XX", None, "BadRequestException";
    Default5xx = "DEFAULT_5XX", None, "InternalServerErrorException";
    ExpiredToken = "EXPIRED_TOKEN", Some(403), "ExpiredTokenException";
    IntegrationFailure = "INTEGRATION_FAILURE", Some(504), "InternalServerErrorException";
    IntegrationTimeout = "INTEGRATION_TIMEOUT", Some(504), "InternalServerErrorException";
    InvalidApiKey = "INVALID_API_KEY", Some(403), "ForbiddenException";
    InvalidSignature = "INVALID_SIGNATURE", Some(403), "InvalidSignatureException";
    MissingAuthenticationToken = "MISSING_AUTHENTICATION_TOKEN", Some(403), "MissingAuthenticationTokenException";
    QuotaExceeded = "QUOTA_EXCEEDED", Some(429), "LimitExceededException";
    RequestTooLarge = "REQUEST_TOO_LARGE", Some(413), "RequestTooLargeException";
    ResourceNotFound = "RESOURCE_NOT_FOUND", Some(404), "ResourceNotFoundException";
    Throttled = "THROTTLED", Some(429), "TooManyRequestsException";
    Unauthorized = "UNAUTHORIZED", Some(401), "UnauthorizedException";
    UnsupportedMediaType = "UNSUPPORTED_MEDIA_TYPE", Some(415), "BadRequestException";
    WafFiltered = "WAF_FILTERED", Some(403), "WafFilteredException";
}

impl ResponseType {
    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|t| t.name() == name)
    }
}

/// A failure on the request path: which gateway response answers it, and its message.
#[derive(Debug, Clone)]
pub(crate) struct GatewayError {
    pub(crate) response_type: ResponseType,
    pub(crate) message: String,
    /// A status other than the type's default (a Lambda-style 502 is an integration failure).
    pub(crate) status: Option<StatusCode>,
    /// What went wrong, for the access log (`integrationErrorMessage`, `authorizer.error`);
    /// never sent to the client.
    pub(crate) detail: Option<String>,
    /// What made a body invalid (`$context.error.validationErrorString`).
    pub(crate) violations: Vec<Violation>,
    /// Whether AWS's default body also lists `violations` as `errors` (`validationDetails`).
    pub(crate) show_violations: bool,
    /// The answer's `www-authenticate` (a JWT authorizer's refusal).
    pub(crate) challenge: Option<HeaderValue>,
}

/// One reason a request body failed its model.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Violation {
    /// A JSON pointer into the body (`/email`; empty for the whole body).
    pub(crate) pointer: String,
    /// What is wrong, without the sent value.
    pub(crate) reason: String,
}

impl GatewayError {
    pub(crate) fn new(response_type: ResponseType, message: impl Into<String>) -> Self {
        GatewayError {
            response_type,
            message: message.into(),
            status: None,
            detail: None,
            violations: Vec::new(),
            show_violations: false,
            challenge: None,
        }
    }

    /// Required request parameters are missing or blank: 400, named in AWS's words.
    pub(crate) fn bad_request_parameters(names: &[&str]) -> Self {
        Self::new(
            ResponseType::BadRequestParameters,
            format!(
                "Missing required request parameters: [{}]",
                names.join(", ")
            ),
        )
    }

    /// The body does not satisfy the route's model (or is not JSON): 400.
    pub(crate) fn bad_request_body(violations: Vec<Violation>, show: bool) -> Self {
        GatewayError {
            violations,
            show_violations: show,
            ..Self::new(ResponseType::BadRequestBody, "Invalid request body")
        }
    }

    /// The same error with `detail` for the access log.
    pub(crate) fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// No route matched: HTTP APIs answer 404, REST APIs 403 "Missing Authentication Token".
    pub(crate) fn no_route(rest: bool) -> Self {
        if rest {
            Self::new(
                ResponseType::MissingAuthenticationToken,
                "Missing Authentication Token",
            )
        } else {
            Self::new(ResponseType::ResourceNotFound, "Not Found")
        }
    }

    /// No stage serves the path and there is no `$default` stage: HTTP APIs answer 404
    /// "Not Found"; REST APIs 403 "Forbidden", as API Gateway answers for a stage never
    /// deployed.
    pub(crate) fn no_stage(rest: bool) -> Self {
        if rest {
            Self::new(ResponseType::AccessDenied, "Forbidden")
        } else {
            Self::no_route(false)
        }
    }

    /// No credentials, or credentials that do not verify: 401 `{"message":"Unauthorized"}`.
    pub(crate) fn unauthorized() -> Self {
        Self::new(ResponseType::Unauthorized, "Unauthorized")
    }

    /// The caller is known but may not call this route (JWT scopes, a simple authorizer
    /// response's `isAuthorized: false`): 403 `{"message":"Forbidden"}`.
    pub(crate) fn forbidden() -> Self {
        Self::new(ResponseType::AccessDenied, "Forbidden")
    }

    /// An authorizer's IAM policy does not allow the method ARN (explicit deny, or no allow).
    pub(crate) fn policy_denied() -> Self {
        Self::new(
            ResponseType::AccessDenied,
            "User is not authorized to access this resource",
        )
    }

    /// The route needs an API key and none that is valid for the stage came with the request.
    pub(crate) fn invalid_api_key() -> Self {
        Self::new(ResponseType::InvalidApiKey, "Forbidden")
    }

    /// A custom authorizer gave no answer (trap, timeout, memory cap).
    pub(crate) fn authorizer_failure() -> Self {
        Self::new(ResponseType::AuthorizerFailure, "Internal Server Error")
    }

    /// A custom authorizer answered something unusable (a malformed policy document).
    pub(crate) fn authorizer_configuration_error() -> Self {
        Self::new(
            ResponseType::AuthorizerConfigurationError,
            "Internal Server Error",
        )
    }

    /// The method ARN an authorizer would see is over API Gateway's 1600-byte limit.
    pub(crate) fn uri_too_long() -> Self {
        GatewayError {
            status: Some(StatusCode::URI_TOO_LONG),
            ..Self::new(ResponseType::Default4xx, "Request-URI Too Long")
        }
    }

    /// The request body is over API Gateway's 10 MB limit.
    /// Over a token bucket: 429 (AWS's THROTTLED body).
    pub(crate) fn throttled() -> Self {
        Self::new(ResponseType::Throttled, "Too Many Requests")
    }

    /// Over the usage plan's quota: 429 (AWS's QUOTA_EXCEEDED body).
    pub(crate) fn quota_exceeded() -> Self {
        Self::new(ResponseType::QuotaExceeded, "Limit Exceeded")
    }

    /// The rate store did not answer and the API fails closed (`failOpen: false`): 503.
    pub(crate) fn service_unavailable() -> Self {
        GatewayError {
            status: Some(StatusCode::SERVICE_UNAVAILABLE),
            ..Self::new(ResponseType::Default5xx, "Service Unavailable")
        }
    }

    pub(crate) fn too_large() -> Self {
        Self::new(ResponseType::RequestTooLarge, "Request Entity Too Large")
    }

    /// The request body could not be read (the client broke off the upload, bad framing):
    /// 400. API Gateway never sees such a request, so no specific gateway response names it.
    pub(crate) fn unreadable_body() -> Self {
        GatewayError {
            status: Some(StatusCode::BAD_REQUEST),
            ..Self::new(ResponseType::Default4xx, "Bad Request")
        }
    }

    fn status(&self) -> StatusCode {
        self.status.unwrap_or_else(|| {
            StatusCode::from_u16(self.response_type.default_status().unwrap_or(500))
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        })
    }
}

/// One compiled override.
#[derive(Debug, Clone)]
struct Override {
    status: Option<StatusCode>,
    headers: Vec<(HeaderName, HeaderSource)>,
    /// The body template, stage variables already substituted.
    body: Option<Template<ResponseVar>>,
}

/// The `$context` variables a gateway response body may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResponseVar {
    ValidationErrorString,
    ErrorMessage,
    ErrorMessageString,
    ErrorResponseType,
    RequestId,
    Stage,
    ApiId,
}

impl ResponseVar {
    /// The variable named `$context.NAME`. Unknown names stay text in a body, as they always
    /// have; where one name starts another, the longest wins (`error.messageString`).
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "error.validationErrorString" => ResponseVar::ValidationErrorString,
            "error.message" => ResponseVar::ErrorMessage,
            "error.messageString" => ResponseVar::ErrorMessageString,
            "error.responseType" => ResponseVar::ErrorResponseType,
            "requestId" => ResponseVar::RequestId,
            "stage" => ResponseVar::Stage,
            "apiId" => ResponseVar::ApiId,
            _ => return None,
        })
    }
}

/// Where a gateway response header's value comes from: AWS's `responseParameters` values
/// ("x-amazon-apigateway-gateway-responses.responseParameters": a `'quoted'` literal or
/// `method.request.header|path|querystring.NAME`; "Setting up gateway responses": a gateway
/// response "can access `$context` variable values and `$stageVariables` property values, as
/// well as method request parameters") and Portico's plain text with `${stageVariables.X}`.
#[derive(Debug, Clone)]
enum HeaderSource {
    /// Known at load: plain text (stage variables put in), a quoted literal, a stage
    /// variable.
    Static(HeaderValue),
    /// A parameter of the request being refused.
    Request(RequestParameter),
    /// Text with `$context` variables (the body's).
    Template(Template<ResponseVar>),
}

/// A request parameter a definition names (`method.request.header.NAME`, `...path.NAME`,
/// `...querystring.NAME`, or an HTTP API's `$request....`): what a gateway response header,
/// a required parameter (validate) and a cache key parameter (cache) read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RequestParameter {
    /// `header.NAME`.
    Header(HeaderName),
    /// `path.NAME`.
    Path(String),
    /// `querystring.NAME`.
    Query(String),
}

/// Why a `LOCATION.NAME` is not a [`RequestParameter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NotAParameter<'t> {
    /// No `.` between a location and a name.
    Shape,
    /// Nothing after the `.`.
    NoName,
    /// A location other than `header`, `querystring` and `path`: the location as written.
    Location(&'t str),
    /// A header name that is not one: the name as written.
    HeaderName(&'t str),
}

impl RequestParameter {
    /// Reads `LOCATION.NAME` (what follows `method.request.` or `$request.`); with
    /// `multi_valued`, `multivalueheader` and `multivaluequerystring` name the same parameters
    /// as `header` and `querystring` (a cache key reads every value either way).
    pub(crate) fn parse(text: &str, multi_valued: bool) -> Result<(Self, &str), NotAParameter<'_>> {
        let (location, name) = text.split_once('.').ok_or(NotAParameter::Shape)?;
        if name.is_empty() {
            return Err(NotAParameter::NoName);
        }
        let parameter = match location {
            "header" => RequestParameter::header(name)?,
            "multivalueheader" if multi_valued => RequestParameter::header(name)?,
            "querystring" => RequestParameter::Query(name.to_owned()),
            "multivaluequerystring" if multi_valued => RequestParameter::Query(name.to_owned()),
            "path" => RequestParameter::Path(name.to_owned()),
            _ => return Err(NotAParameter::Location(location)),
        };
        Ok((parameter, name))
    }

    fn header(name: &str) -> Result<Self, NotAParameter<'_>> {
        HeaderName::from_bytes(name.as_bytes())
            .map(RequestParameter::Header)
            .map_err(|_| NotAParameter::HeaderName(name))
    }
}

/// The request being refused, as a gateway response header reads it. Several values of a
/// header or a query parameter give the last, as a REST API's `method.request.header.X` and
/// `method.request.querystring.X` do (LocalStack's parameters_mapping.py, its model of AWS's
/// parameter mapping; payload 1.0's single-value maps keep the last too).
pub(crate) trait RequestValues {
    /// The last value of header `name`.
    fn header(&self, name: &HeaderName) -> Option<&HeaderValue>;
    /// The route's path parameter `name` (decoded).
    fn path_parameter(&self, name: &str) -> Option<&str>;
    /// The last value of query parameter `name` (decoded).
    fn query_parameter(&self, name: &str) -> Option<&str>;
}

impl HeaderSource {
    /// Compiles a header's `text` (at `at`) for a stage with `variables`.
    fn compile(
        text: &str,
        variables: &BTreeMap<String, String>,
        at: &KeyPath,
    ) -> Result<Self, Error> {
        let value = |text: &str| {
            HeaderValue::from_str(text)
                .map_err(|_| Error::config(at.clone(), format!("bad header value \"{text}\"")))
        };
        if let Some(literal) = text
            .strip_prefix('\'')
            .and_then(|rest| rest.strip_suffix('\''))
        {
            return Ok(HeaderSource::Static(value(literal)?));
        }
        // `$stageVariables.X` (Portico's template spelling) and `stageVariables.X` (AWS's
        // mapping-expression spelling, request-response-data-mappings.md: "The "$" prefix is
        // omitted in this syntax").
        let stage_variable = text
            .strip_prefix("$stageVariables.")
            .or_else(|| text.strip_prefix("stageVariables."));
        if let Some(name) = stage_variable {
            if crate::template::is_stage_variable_name(name) {
                let variable = variables.get(name).map(String::as_str).unwrap_or_default();
                return Ok(HeaderSource::Static(value(variable)?));
            }
        }
        // `context.X`, AWS's spelling of a context variable in a mapping expression: it "must
        // be one of the supported context variables" (same page), so an unknown one is a load
        // error rather than literal text.
        if let Some(name) = text.strip_prefix("context.") {
            return ResponseVar::from_name(name)
                .map(|_| {
                    let template = Template::parse_with_stage_variables(
                        &format!("$context.{name}"),
                        ContextNames::LongestKnown,
                        variables,
                        at,
                        ResponseVar::from_name,
                    )?;
                    Ok(HeaderSource::Template(template))
                })
                .unwrap_or_else(|| {
                    Err(Error::config(
                        at.clone(),
                        format!("\"{text}\": not a context variable a gateway response knows (requestId, stage, apiId, error.message, error.messageString, error.responseType, error.validationErrorString)"),
                    ))
                });
        }
        if let Some(parameter) = text.strip_prefix("method.request.") {
            let parameter = RequestParameter::parse(parameter, false).ok();
            return parameter.map(|(p, _)| HeaderSource::Request(p)).ok_or_else(|| {
                Error::config(
                    at.clone(),
                    format!("\"{text}\": expected method.request.header.NAME, method.request.path.NAME or method.request.querystring.NAME"),
                )
            });
        }
        let template = Template::parse_with_stage_variables(
            text,
            ContextNames::LongestKnown,
            variables,
            at,
            ResponseVar::from_name,
        )?;
        match template.segments() {
            [] => Ok(HeaderSource::Static(HeaderValue::from_static(""))),
            [Segment::Literal(text)] => Ok(HeaderSource::Static(value(text)?)),
            _ => Ok(HeaderSource::Template(template)),
        }
    }

    /// The value for `error` refused with `context`; `None` when the request has no such
    /// parameter (the header is left out: nothing empty is sent, as LocalStack's model of
    /// AWS's parameter mapping skips a mapping whose value is absent) or the text is not a
    /// header value.
    fn value(&self, error: &GatewayError, context: &ResponseContext<'_>) -> Option<HeaderValue> {
        match self {
            HeaderSource::Static(value) => Some(value.clone()),
            HeaderSource::Request(parameter) => {
                let request = context.request?;
                match parameter {
                    RequestParameter::Header(name) => request.header(name).cloned(),
                    RequestParameter::Path(name) => request
                        .path_parameter(name)
                        .and_then(|v| HeaderValue::from_str(v).ok()),
                    RequestParameter::Query(name) => request
                        .query_parameter(name)
                        .and_then(|v| HeaderValue::from_str(v).ok()),
                }
            }
            HeaderSource::Template(template) => {
                HeaderValue::from_str(&render_template(template, error, context)).ok()
            }
        }
    }
}

/// A response template rendered for `error` refused with `context`, in one pass: text from
/// the request (in a message or a violation) is never read for `$context` names.
fn render_template(
    template: &Template<ResponseVar>,
    error: &GatewayError,
    context: &ResponseContext<'_>,
) -> String {
    template.render(|var, out| match var {
        ResponseVar::ValidationErrorString => out.raw(&validation_error_string(&error.violations)),
        ResponseVar::ErrorMessage => out.text(&error.message),
        ResponseVar::ErrorMessageString => {
            out.raw(&serde_json::to_string(&error.message).unwrap_or_else(|_| "\"\"".into()))
        }
        ResponseVar::ErrorResponseType => out.text(error.response_type.name()),
        ResponseVar::RequestId => out.text(context.request_id),
        ResponseVar::Stage => out.text(context.stage),
        ResponseVar::ApiId => out.text(context.api_id),
    })
}

/// The gateway responses of one stage: AWS's defaults plus the API's overrides.
#[derive(Debug, Clone, Default)]
pub(crate) struct GatewayResponses {
    overrides: Vec<(ResponseType, Override)>,
}

/// What a response template may refer to besides stage variables.
pub(crate) struct ResponseContext<'a> {
    pub(crate) request_id: &'a str,
    /// REST API semantics: the answer carries `x-amzn-ErrorType`.
    pub(crate) rest: bool,
    pub(crate) stage: &'a str,
    pub(crate) api_id: &'a str,
    /// The request being refused, for headers mapped from it (`None` when there is none to
    /// read: those headers are left out).
    pub(crate) request: Option<&'a dyn RequestValues>,
}

impl GatewayResponses {
    /// Compiles the `gatewayResponses` section for a stage with `variables`.
    pub(crate) fn compile<'a>(
        definitions: impl Iterator<Item = (&'a str, &'a GatewayResponseDefinition)>,
        variables: &BTreeMap<String, String>,
        at: &KeyPath,
    ) -> Result<Self, Error> {
        let mut overrides = Vec::new();
        for (name, def) in definitions {
            let here = at.key(name);
            let response_type = ResponseType::from_name(name).ok_or_else(|| {
                let names: Vec<&str> = ResponseType::ALL.iter().map(|t| t.name()).collect();
                Error::config(
                    here.clone(),
                    format!(
                        "unknown gateway response type: expected one of {}",
                        names.join(", ")
                    ),
                )
            })?;
            let status = match def.status_code {
                None => None,
                Some(_) if response_type.default_status().is_none() => {
                    return Err(Error::config(
                        here.key("statusCode"),
                        format!("{name} applies to many statuses and cannot set one"),
                    ))
                }
                Some(code) => Some(status_code(code, &here.key("statusCode"))?),
            };
            let headers_at = here.key("headers");
            let mut headers = Vec::with_capacity(def.headers.len());
            for (name, text) in &def.headers {
                let at = headers_at.key(name);
                let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                    Error::config(at.clone(), format!("bad header name \"{name}\""))
                })?;
                headers.push((header, HeaderSource::compile(text, variables, &at)?));
            }
            let body = match &def.body {
                Some(body) => Some(Template::parse_with_stage_variables(
                    body,
                    ContextNames::LongestKnown,
                    variables,
                    &here.key("body"),
                    ResponseVar::from_name,
                )?),
                None => None,
            };
            overrides.push((
                response_type,
                Override {
                    status,
                    headers,
                    body,
                },
            ));
        }
        Ok(GatewayResponses { overrides })
    }

    fn find(&self, response_type: ResponseType) -> Option<&Override> {
        self.overrides
            .iter()
            .find(|(t, _)| *t == response_type)
            .map(|(_, o)| o)
    }

    /// The response for `error`: the type's override, else the DEFAULT_4XX/5XX one, else AWS's.
    pub(crate) fn render(
        &self,
        error: &GatewayError,
        context: &ResponseContext<'_>,
    ) -> Response<Bytes> {
        let specific = self.find(error.response_type);
        let status = specific
            .and_then(|o| o.status)
            .unwrap_or_else(|| error.status());
        let fallback = if status.is_server_error() {
            ResponseType::Default5xx
        } else {
            ResponseType::Default4xx
        };
        let chosen = specific.or_else(|| self.find(fallback));
        let message_json = serde_json::to_string(&error.message).unwrap_or_else(|_| "\"\"".into());
        let body = match chosen.and_then(|o| o.body.as_ref()) {
            Some(template) => render_template(template, error, context),
            None if error.show_violations && !error.violations.is_empty() => {
                let errors =
                    serde_json::to_string(&error.violations).unwrap_or_else(|_| "[]".into());
                format!("{{\"message\":{message_json},\"errors\":{errors}}}")
            }
            // A REST integration's failure is not rendered from the gateway responses'
            // template: AWS writes it with a space (`{"message": "Internal server error"}`,
            // 36 bytes, recorded in LocalStack's test_apigateway_integrations.snapshot.json
            // `test_apigateway_header_remapping_http`; the Lambda developer guide's "Handling
            // errors with an API Gateway API" quotes the same).
            None if context.rest && error.response_type == ResponseType::IntegrationFailure => {
                format!("{{\"message\": {message_json}}}")
            }
            None => format!("{{\"message\":{message_json}}}"),
        };
        let mut response = Response::new(Bytes::from(body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(challenge) = &error.challenge {
            headers.insert(http::header::WWW_AUTHENTICATE, challenge.clone());
        }
        if context.rest {
            headers.insert(
                ERROR_TYPE_HEADER,
                HeaderValue::from_static(error.response_type.error_type()),
            );
        }
        if let Some(o) = chosen {
            for (name, source) in &o.headers {
                if let Some(value) = source.value(error, context) {
                    headers.insert(name.clone(), value);
                }
            }
        }
        response
    }
}

/// `[/email: reason, ...]`, escaped for use inside a JSON string of a template, like AWS's
/// `$context.error.validationErrorString`; empty when there is nothing to tell.
fn validation_error_string(violations: &[Violation]) -> String {
    if violations.is_empty() {
        return String::new();
    }
    let list: Vec<String> = violations
        .iter()
        .map(|v| match v.pointer.as_str() {
            "" => v.reason.clone(),
            pointer => format!("{pointer}: {}", v.reason),
        })
        .collect();
    let text = format!("[{}]", list.join(", "));
    let quoted = serde_json::to_string(&text).unwrap_or_default();
    quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or_default()
        .to_owned()
}

/// A status code from the definition (100-599).
pub(crate) fn status_code(code: u16, at: &KeyPath) -> Result<StatusCode, Error> {
    match StatusCode::from_u16(code) {
        Ok(status) if (100..=599).contains(&code) => Ok(status),
        _ => Err(Error::config(
            at.clone(),
            format!("bad status code {code}: expected 100-599"),
        )),
    }
}

/// Headers from the definition, with stage variables substituted in values.
pub(crate) fn header_map<'a>(
    headers: impl Iterator<Item = (&'a String, &'a String)>,
    variables: &BTreeMap<String, String>,
    at: &KeyPath,
) -> Result<HeaderMap, Error> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let here = at.key(name);
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| Error::config(here.clone(), format!("bad header name \"{name}\"")))?;
        let value = stage::substitute(value, variables, &here)?;
        let value = HeaderValue::from_str(&value)
            .map_err(|_| Error::config(here.clone(), format!("bad header value \"{value}\"")))?;
        map.append(header, value);
    }
    Ok(map)
}

/// Stamps the request id on a response and drops the body of an answer to `HEAD`, keeping its
/// `content-length` as HTTP requires.
pub(crate) fn finish(response: &mut Response<Bytes>, ids: &RequestIds, head: bool) {
    let headers = response.headers_mut();
    match &ids.extended {
        None => {
            headers.insert(REQUEST_ID_HEADER, ids.id.clone());
        }
        Some(extended) => {
            headers.insert(REST_REQUEST_ID_HEADER, ids.id.clone());
            headers.insert(REST_EXTENDED_ID_HEADER, extended.clone());
        }
    }
    if head && !response.body().is_empty() {
        let length = HeaderValue::from(response.body().len());
        response
            .headers_mut()
            .entry(CONTENT_LENGTH)
            .or_insert(length);
        *response.body_mut() = Bytes::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// HTTP API's `apigw-requestid` is the base64 of 11 bytes (`Xa1bCdEfIAMEb4Q=`): the ids
    /// drawn from random bits decode as base64 does, and differ.
    #[test]
    fn short_ids_are_the_base64_of_eleven_random_bytes() {
        use base64::Engine as _;
        let ids: Vec<HeaderValue> = (0..200).map(|_| short_id()).collect();
        for id in &ids {
            let text = id.to_str().unwrap();
            assert_eq!(text.len(), 16, "{text}");
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text)
                .unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(bytes.len(), 11, "{text}");
        }
        let distinct: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        // Every character of the alphabet turns up in some id's first 14 places.
        let seen: std::collections::HashSet<u8> = ids
            .iter()
            .flat_map(|id| id.as_bytes()[..14].to_vec())
            .collect();
        assert_eq!(seen.len(), 64);
    }

    fn context() -> ResponseContext<'static> {
        ResponseContext {
            request_id: "rid",
            rest: false,
            stage: "dev",
            api_id: "api",
            request: None,
        }
    }

    #[test]
    fn defaults_follow_aws() {
        let responses = GatewayResponses::default();
        let r = responses.render(&GatewayError::no_route(false), &context());
        assert_eq!(r.status(), 404);
        assert_eq!(r.body(), r#"{"message":"Not Found"}"#);
        let r = responses.render(&GatewayError::no_route(true), &context());
        assert_eq!(r.status(), 403);
        assert_eq!(r.body(), r#"{"message":"Missing Authentication Token"}"#);
        assert_eq!(
            responses
                .render(&GatewayError::too_large(), &context())
                .status(),
            413
        );
    }

    #[test]
    fn overrides_apply_specific_then_default_class() {
        let defs = [
            (
                "RESOURCE_NOT_FOUND",
                GatewayResponseDefinition {
                    status_code: Some(410),
                    headers: BTreeMap::from([("x-table".into(), "${stageVariables.T}".into())]),
                    body: Some(
                        r#"{"error":$context.error.messageString,"id":"$context.requestId"}"#
                            .into(),
                    ),
                },
            ),
            (
                "DEFAULT_4XX",
                GatewayResponseDefinition {
                    body: Some("4xx: $context.error.message".into()),
                    ..Default::default()
                },
            ),
        ];
        let vars = BTreeMap::from([("T".to_owned(), "t1".to_owned())]);
        let responses =
            GatewayResponses::compile(defs.iter().map(|(n, d)| (*n, d)), &vars, &KeyPath::root())
                .unwrap();
        let r = responses.render(&GatewayError::no_route(false), &context());
        assert_eq!(r.status(), 410);
        assert_eq!(r.headers()["x-table"], "t1");
        assert_eq!(r.body(), r#"{"error":"Not Found","id":"rid"}"#);
        let r = responses.render(&GatewayError::too_large(), &context());
        assert_eq!(
            (r.status().as_u16(), r.body().as_ref()),
            (413, b"4xx: Request Entity Too Large".as_ref())
        );
    }

    #[test]
    fn templates_never_expand_request_text_again() {
        let def = GatewayResponseDefinition {
            body: Some(
                r#"{"m":"$context.error.message","d":"$context.error.validationErrorString","id":"$context.requestId"}"#
                    .into(),
            ),
            ..Default::default()
        };
        let vars = BTreeMap::from([("T".to_owned(), "t1".to_owned())]);
        let responses = GatewayResponses::compile(
            [("BAD_REQUEST_BODY", &def)].into_iter(),
            &vars,
            &KeyPath::root(),
        )
        .unwrap();
        // What a request put in a violation (a member's name) or a message.
        let violation = Violation {
            pointer: "/$context.requestId".into(),
            reason: "${stageVariables.T} $context.stage".into(),
        };
        let error = GatewayError {
            message: "bad $context.apiId".into(),
            ..GatewayError::bad_request_body(vec![violation], false)
        };
        let r = responses.render(&error, &context());
        assert_eq!(
            r.body(),
            r#"{"m":"bad $context.apiId","d":"[/$context.requestId: ${stageVariables.T} $context.stage]","id":"rid"}"#
        );
    }

    /// A request to `/pets/p-1?q=a&q=b` with `accept: application/xml` sent twice.
    struct Refused;

    impl RequestValues for Refused {
        fn header(&self, name: &HeaderName) -> Option<&HeaderValue> {
            static LAST: HeaderValue = HeaderValue::from_static("application/xml");
            (name == "accept").then_some(&LAST)
        }
        fn path_parameter(&self, name: &str) -> Option<&str> {
            (name == "petId").then_some("p-1")
        }
        fn query_parameter(&self, name: &str) -> Option<&str> {
            (name == "q").then_some("b")
        }
    }

    #[test]
    fn header_values_are_literals_request_values_or_templates() {
        let def = GatewayResponseDefinition {
            headers: BTreeMap::from([
                ("a-literal".into(), "'*.example.domain'".into()),
                ("a-header".into(), "method.request.header.Accept".into()),
                ("a-path".into(), "method.request.path.petId".into()),
                ("a-query".into(), "method.request.querystring.q".into()),
                ("a-absent".into(), "method.request.header.x-nope".into()),
                ("a-stage".into(), "$stageVariables.T".into()),
                (
                    "a-template".into(),
                    "$context.requestId/${stageVariables.T}".into(),
                ),
                ("a-plain".into(), "text $context.nope".into()),
                ("aws-stage".into(), "stageVariables.T".into()),
                ("aws-context".into(), "context.requestId".into()),
            ]),
            ..Default::default()
        };
        let vars = BTreeMap::from([("T".to_owned(), "t1".to_owned())]);
        let responses =
            GatewayResponses::compile([("DEFAULT_4XX", &def)].into_iter(), &vars, &KeyPath::root())
                .unwrap();
        let refused = Refused;
        let with_request = ResponseContext {
            request: Some(&refused),
            ..context()
        };
        let r = responses.render(&GatewayError::no_route(false), &with_request);
        let h = r.headers();
        assert_eq!(h["a-literal"], "*.example.domain");
        assert_eq!(h["a-header"], "application/xml");
        assert_eq!(h["a-path"], "p-1");
        assert_eq!(h["a-query"], "b");
        assert!(!h.contains_key("a-absent"));
        assert_eq!(h["a-stage"], "t1");
        assert_eq!(h["a-template"], "rid/t1");
        assert_eq!(h["a-plain"], "text $context.nope");
        assert_eq!(h["aws-stage"], "t1");
        assert_eq!(h["aws-context"], "rid");
        // Without a request to read, request values are left out.
        let r = responses.render(&GatewayError::no_route(false), &context());
        assert!(!r.headers().contains_key("a-path"));
        assert_eq!(r.headers()["a-literal"], "*.example.domain");
        // A `method.request.` value that names nothing readable is a load error.
        let bad = GatewayResponseDefinition {
            headers: BTreeMap::from([("x".into(), "method.request.body".into())]),
            ..Default::default()
        };
        let err = GatewayResponses::compile(
            [("DEFAULT_4XX", &bad)].into_iter(),
            &vars,
            &KeyPath::root().key("gatewayResponses"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with(
                "gatewayResponses.DEFAULT_4XX.headers.x: \"method.request.body\": expected"
            ),
            "{err}"
        );
    }

    #[test]
    fn bad_overrides_are_load_errors() {
        let def = GatewayResponseDefinition {
            status_code: Some(401),
            ..Default::default()
        };
        let err = GatewayResponses::compile(
            [("DEFAULT_4XX", &def)].into_iter(),
            &BTreeMap::new(),
            &KeyPath::root().key("gatewayResponses"),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("gatewayResponses.DEFAULT_4XX.statusCode"),
            "{err}"
        );
        let err = GatewayResponses::compile(
            [("NOPE", &def)].into_iter(),
            &BTreeMap::new(),
            &KeyPath::root(),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("unknown gateway response type"),
            "{err}"
        );
        // AWS's `context.X` names a supported context variable or is refused.
        let bad = GatewayResponseDefinition {
            headers: BTreeMap::from([("x".into(), "context.identity.sourceIp".into())]),
            ..Default::default()
        };
        let err = GatewayResponses::compile(
            [("DEFAULT_4XX", &bad)].into_iter(),
            &BTreeMap::new(),
            &KeyPath::root().key("gatewayResponses"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("gatewayResponses.DEFAULT_4XX.headers.x: \"context.identity.sourceIp\": not a context variable"),
            "{err}"
        );
    }
}
