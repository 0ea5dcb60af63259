//! IAM policy documents from custom authorizers, evaluated against method ARNs as API Gateway
//! does.
//!
//! An authorizer answers with a policy (`Effect`, `Action`, `Resource`); the gateway then asks it
//! one question per request: may the caller `execute-api:Invoke` this method ARN,
//! `arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/{METHOD}/{resource-path}`? An explicit
//! `Deny` wins over everything, then any `Allow`; with neither the request is implicitly denied.
//! A policy is compiled once (statements that cannot apply to `execute-api:Invoke` are dropped,
//! resource patterns are classified) because a cached policy is re-evaluated on every request,
//! against that request's own method ARN. Statements about `execute-api:InvalidateCache` are
//! kept apart: the cache phase asks them whether a `Cache-Control: max-age=0` may refresh the
//! cache (AWS's api-gateway-caching.md, "Invalidate an API Gateway cache entry").

use std::fmt;

use serde_json::Value;

/// The only partition a local gateway answers for.
const PARTITION: &str = "aws";
/// The action API Gateway checks authorizer policies for, lower-cased: IAM matches actions
/// case-insensitively.
const INVOKE_ACTION: &str = "execute-api:invoke";
/// The action that lets a caller refresh a cached answer with `Cache-Control: max-age=0`,
/// lower-cased.
const INVALIDATE_CACHE_ACTION: &str = "execute-api:invalidatecache";
/// The policy language versions IAM accepts.
const VERSIONS: [&str; 2] = ["2012-10-17", "2008-10-17"];
/// IAM statement elements this gateway refuses: each could make a statement grant more, or
/// less, than a plain reading of `Effect`, `Action` and `Resource` says.
const UNSUPPORTED: [&str; 5] = [
    "NotAction",
    "NotResource",
    "Condition",
    "Principal",
    "NotPrincipal",
];
/// How much of a plugin-supplied string an error message repeats.
const QUOTE_LIMIT: usize = 64;

/// The route key of an HTTP API's catch-all route; its ARN ends in `/{stage}/$default`.
pub(crate) const DEFAULT_ROUTE: &str = "$default";

/// The ARN of one method (REST) or route (HTTP) of a deployed stage, as API Gateway hands it to
/// authorizers (`methodArn`, `routeArn`) and matches their policies against.
///
/// The parts are taken as API Gateway makes them: ids and stage names hold neither `:` nor `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MethodArn {
    region: String,
    account_id: String,
    api_id: String,
    stage: String,
    target: ArnTarget,
}

/// What a method ARN names within its stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ArnTarget {
    /// A method: the request's verb and its path without the leading `/` (`GET` + `pets/7`; the
    /// root is an empty path, written `GET/`).
    Method {
        /// The HTTP verb, as in the request line (`GET`).
        method: String,
        /// The path without its leading `/`.
        resource_path: String,
    },
    /// An HTTP API's `$default` route, written `$default` with neither verb nor path.
    DefaultRoute,
}

impl MethodArn {
    /// The ARN of `method` on `resource_path`; a leading `/` on the path is dropped, so the
    /// request path can be passed as it is (`/pets/7` is written `GET/pets/7`, `/` is `GET/`).
    pub(crate) fn new(
        region: &str,
        account_id: &str,
        api_id: &str,
        stage: &str,
        method: &str,
        resource_path: &str,
    ) -> Self {
        let resource_path = resource_path.strip_prefix('/').unwrap_or(resource_path);
        MethodArn {
            region: region.to_owned(),
            account_id: account_id.to_owned(),
            api_id: api_id.to_owned(),
            stage: stage.to_owned(),
            target: ArnTarget::Method {
                method: method.to_owned(),
                resource_path: resource_path.to_owned(),
            },
        }
    }

    /// The ARN of an HTTP API's `$default` route: `{apiId}/{stage}/$default`.
    pub(crate) fn default_route(region: &str, account_id: &str, api_id: &str, stage: &str) -> Self {
        MethodArn {
            region: region.to_owned(),
            account_id: account_id.to_owned(),
            api_id: api_id.to_owned(),
            stage: stage.to_owned(),
            target: ArnTarget::DefaultRoute,
        }
    }

    /// Reads back `arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/{METHOD}/{path}` or
    /// `arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/$default`.
    #[cfg(test)] // reading ARNs back is for the tests' round trips
    pub(crate) fn parse(arn: &str) -> Result<Self, ArnError> {
        let fail = |reason: &'static str| ArnError {
            arn: quoted(arn),
            reason,
        };
        let mut parts = arn.splitn(6, ':');
        let (
            Some("arn"),
            Some(PARTITION),
            Some("execute-api"),
            Some(region),
            Some(account_id),
            Some(resource),
        ) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        )
        else {
            return Err(fail(
                "expected arn:aws:execute-api:{region}:{account-id}:{api-id}/{stage}/...",
            ));
        };
        if region.is_empty() || account_id.is_empty() {
            return Err(fail("the region and the account id must not be empty"));
        }
        let mut segments = resource.splitn(3, '/');
        let (Some(api_id), Some(stage), Some(rest)) =
            (segments.next(), segments.next(), segments.next())
        else {
            return Err(fail("expected {api-id}/{stage}/{METHOD}/{resource-path}"));
        };
        if api_id.is_empty() || stage.is_empty() {
            return Err(fail("the api id and the stage must not be empty"));
        }
        if rest == DEFAULT_ROUTE {
            return Ok(Self::default_route(region, account_id, api_id, stage));
        }
        match rest.split_once('/') {
            Some((method, resource_path)) if !method.is_empty() => Ok(Self::new(
                region,
                account_id,
                api_id,
                stage,
                method,
                resource_path,
            )),
            _ => Err(fail(
                "expected {METHOD}/{resource-path} (the root is {METHOD}/) or $default after the stage",
            )),
        }
    }

    /// The region (`us-east-1`).
    #[cfg(test)] // reading ARNs back is for the tests' round trips
    pub(crate) fn region(&self) -> &str {
        &self.region
    }

    /// The account id (`123456789012`).
    #[cfg(test)] // reading ARNs back is for the tests' round trips
    pub(crate) fn account_id(&self) -> &str {
        &self.account_id
    }

    /// The API id.
    #[cfg(test)] // reading ARNs back is for the tests' round trips
    pub(crate) fn api_id(&self) -> &str {
        &self.api_id
    }

    /// The stage name (`$default` included).
    #[cfg(test)] // reading ARNs back is for the tests' round trips
    pub(crate) fn stage(&self) -> &str {
        &self.stage
    }

    /// The method, or the `$default` route.
    #[cfg(test)] // reading ARNs back is for the tests' round trips
    pub(crate) fn target(&self) -> &ArnTarget {
        &self.target
    }
}

impl fmt::Display for MethodArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{PARTITION}:execute-api:{}:{}:{}/{}/",
            self.region, self.account_id, self.api_id, self.stage
        )?;
        match &self.target {
            ArnTarget::Method {
                method,
                resource_path,
            } => write!(f, "{method}/{resource_path}"),
            ArnTarget::DefaultRoute => f.write_str(DEFAULT_ROUTE),
        }
    }
}

/// A string that is not an execute-api method ARN.
#[cfg(test)]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{arn} is not an execute-api method ARN: {reason}")]
pub(crate) struct ArnError {
    arn: String,
    reason: &'static str,
}

/// Why an authorizer's policy document cannot be used; the authorize phase answers it with a 500
/// `AUTHORIZER_CONFIGURATION_ERROR`, as API Gateway does for a malformed authorizer response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PolicyError {
    /// The document is not JSON.
    #[error("the policy document is not valid JSON: {0}")]
    Json(String),
    /// The document is JSON but not a policy; `at` names the element (`Statement[1].Effect`).
    #[error("the policy document is malformed at {at}: {message}")]
    Malformed {
        /// Where in the document.
        at: String,
        /// What is wrong and what was expected.
        message: String,
    },
    /// An IAM element this gateway does not evaluate. Refused rather than ignored, so that a
    /// policy never grants more than it says.
    #[error("the policy document uses {element} at {at}, which is not supported")]
    Unsupported {
        /// Where in the document.
        at: String,
        /// The element (`NotAction`).
        element: &'static str,
    },
}

/// What a policy says about one method ARN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// A statement allows the call and none denies it.
    Allow,
    /// A statement denies the call, whatever else allows it (an explicit deny).
    Deny,
    /// No statement speaks of the call: an implicit deny.
    NoMatch,
}

/// A compiled policy document: the resource patterns of the statements that apply to
/// `execute-api:Invoke`, split by effect.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Policy {
    deny: Vec<Glob>,
    allow: Vec<Glob>,
    /// The resources of the statements about `execute-api:InvalidateCache`, by effect.
    invalidate_deny: Vec<Glob>,
    invalidate_allow: Vec<Glob>,
}

impl Policy {
    /// Parses and compiles a policy document given as JSON text (`grant.policy-document`).
    pub(crate) fn parse(document: &str) -> Result<Self, PolicyError> {
        let value: Value =
            serde_json::from_str(document).map_err(|e| PolicyError::Json(e.to_string()))?;
        Self::from_value(&value)
    }

    /// Compiles a policy document already parsed as JSON (a Lambda-style `policyDocument`).
    pub(crate) fn from_value(document: &Value) -> Result<Self, PolicyError> {
        let Value::Object(fields) = document else {
            return Err(malformed(
                "the document",
                format!("expected an object, found {}", kind(document)),
            ));
        };
        let mut statements = None;
        for (key, value) in fields {
            match key.as_str() {
                "Version" => check_version(value)?,
                "Id" => {}
                "Statement" => statements = Some(value),
                other => {
                    return Err(malformed(
                        &quoted(other),
                        "unknown policy element: expected Version, Id or Statement",
                    ))
                }
            }
        }
        let mut policy = Policy::default();
        match statements {
            Some(Value::Array(statements)) => {
                for (i, statement) in statements.iter().enumerate() {
                    policy.add_statement(statement, &format!("Statement[{i}]"))?;
                }
            }
            Some(statement @ Value::Object(_)) => policy.add_statement(statement, "Statement")?,
            Some(other) => {
                return Err(malformed(
                    "Statement",
                    format!("expected an object or an array, found {}", kind(other)),
                ))
            }
            None => return Err(malformed("the document", "Statement is required")),
        }
        Ok(policy)
    }

    /// Decides on one method ARN: an explicit deny wins, then any allow; otherwise no match.
    /// Allocation-free, so a cached policy costs only the pattern matching.
    pub(crate) fn evaluate(&self, method_arn: &str) -> Decision {
        if self.deny.iter().any(|glob| glob.matches(method_arn)) {
            Decision::Deny
        } else if self.allow.iter().any(|glob| glob.matches(method_arn)) {
            Decision::Allow
        } else {
            Decision::NoMatch
        }
    }

    /// Whether the policy lets the caller invalidate the cached answer of `method_arn`
    /// (`execute-api:InvalidateCache` allowed and not denied).
    pub(crate) fn allows_cache_invalidation(&self, method_arn: &str) -> bool {
        !self.invalidate_deny.iter().any(|g| g.matches(method_arn))
            && self.invalidate_allow.iter().any(|g| g.matches(method_arn))
    }

    fn add_statement(&mut self, statement: &Value, at: &str) -> Result<(), PolicyError> {
        let Value::Object(fields) = statement else {
            return Err(malformed(
                at,
                format!("expected a statement object, found {}", kind(statement)),
            ));
        };
        let (mut effect, mut actions, mut resources) = (None, None, None);
        for (key, value) in fields {
            match key.as_str() {
                "Sid" => {}
                "Effect" => effect = Some(effect_of(value, &format!("{at}.Effect"))?),
                "Action" => actions = Some(strings(value, &format!("{at}.Action"))?),
                "Resource" => resources = Some(strings(value, &format!("{at}.Resource"))?),
                other => {
                    return Err(match UNSUPPORTED.into_iter().find(|e| *e == other) {
                        Some(element) => PolicyError::Unsupported {
                            at: at.to_owned(),
                            element,
                        },
                        None => malformed(
                            &format!("{at}.{}", quoted(other)),
                            "unknown statement element: expected Sid, Effect, Action or Resource",
                        ),
                    })
                }
            }
        }
        let effect = effect.ok_or_else(|| malformed(at, "Effect is required (Allow or Deny)"))?;
        let actions = actions.ok_or_else(|| malformed(at, "Action is required"))?;
        let resources = resources.ok_or_else(|| malformed(at, "Resource is required"))?;
        // A statement about other actions (`s3:*`) has no say.
        let names = |wanted: &str| {
            actions
                .iter()
                .any(|action| glob_match(action.to_ascii_lowercase().as_bytes(), wanted.as_bytes()))
        };
        if names(INVOKE_ACTION) {
            let globs = match effect {
                Effect::Allow => &mut self.allow,
                Effect::Deny => &mut self.deny,
            };
            globs.extend(resources.iter().map(|resource| Glob::compile(resource)));
        }
        if names(INVALIDATE_CACHE_ACTION) {
            let globs = match effect {
                Effect::Allow => &mut self.invalidate_allow,
                Effect::Deny => &mut self.invalidate_deny,
            };
            globs.extend(resources.iter().map(|resource| Glob::compile(resource)));
        }
        Ok(())
    }
}

/// A statement's `Effect`.
#[derive(Debug, Clone, Copy)]
enum Effect {
    Allow,
    Deny,
}

/// The `Effect` of a statement; IAM spells it exactly `Allow` or `Deny`.
fn effect_of(value: &Value, at: &str) -> Result<Effect, PolicyError> {
    match value {
        Value::String(s) if s == "Allow" => Ok(Effect::Allow),
        Value::String(s) if s == "Deny" => Ok(Effect::Deny),
        Value::String(s) => Err(malformed(
            at,
            format!(
                "expected \"Allow\" or \"Deny\" (case-sensitive), found {}",
                quoted(s)
            ),
        )),
        other => Err(malformed(
            at,
            format!("expected \"Allow\" or \"Deny\", found {}", kind(other)),
        )),
    }
}

/// `Version`, when present, must be one IAM knows.
fn check_version(value: &Value) -> Result<(), PolicyError> {
    match value {
        Value::String(v) if VERSIONS.contains(&v.as_str()) => Ok(()),
        Value::String(v) => Err(malformed(
            "Version",
            format!("expected 2012-10-17 or 2008-10-17, found {}", quoted(v)),
        )),
        other => Err(malformed(
            "Version",
            format!("expected a string, found {}", kind(other)),
        )),
    }
}

/// `Action` and `Resource`: a string or an array of strings.
fn strings<'v>(value: &'v Value, at: &str) -> Result<Vec<&'v str>, PolicyError> {
    match value {
        Value::String(s) => Ok(vec![s.as_str()]),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                item.as_str().ok_or_else(|| {
                    malformed(
                        &format!("{at}[{i}]"),
                        format!("expected a string, found {}", kind(item)),
                    )
                })
            })
            .collect(),
        other => Err(malformed(
            at,
            format!(
                "expected a string or an array of strings, found {}",
                kind(other)
            ),
        )),
    }
}

fn malformed(at: &str, message: impl Into<String>) -> PolicyError {
    PolicyError::Malformed {
        at: at.to_owned(),
        message: message.into(),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A plugin- or request-supplied string as an error message repeats it: quoted, and cut short.
fn quoted(s: &str) -> String {
    match s.char_indices().nth(QUOTE_LIMIT) {
        Some((cut, _)) => format!("{:?}...", &s[..cut]),
        None => format!("{s:?}"),
    }
}

/// A resource pattern, classified once so that the usual shapes skip the general matcher.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Glob {
    /// `*`: every ARN.
    Any,
    /// No wildcard: that ARN only.
    Exact(Box<str>),
    /// A literal then one `*`, as in `.../{stage}/*`.
    Prefix(Box<str>),
    /// Anything else, runs of `*` collapsed to one.
    Pattern(Box<[u8]>),
}

impl Glob {
    fn compile(pattern: &str) -> Self {
        let mut collapsed = String::with_capacity(pattern.len());
        for c in pattern.chars() {
            if !(c == '*' && collapsed.ends_with('*')) {
                collapsed.push(c);
            }
        }
        let has_wildcard = |s: &str| s.contains(['*', '?']);
        if collapsed == "*" {
            Glob::Any
        } else if !has_wildcard(&collapsed) {
            Glob::Exact(collapsed.into_boxed_str())
        } else if let Some(prefix) = collapsed.strip_suffix('*').filter(|p| !has_wildcard(p)) {
            Glob::Prefix(prefix.into())
        } else {
            Glob::Pattern(collapsed.into_bytes().into_boxed_slice())
        }
    }

    fn matches(&self, text: &str) -> bool {
        match self {
            Glob::Any => true,
            Glob::Exact(exact) => **exact == *text,
            Glob::Prefix(prefix) => text.starts_with(&**prefix),
            Glob::Pattern(pattern) => glob_match(pattern, text.as_bytes()),
        }
    }
}

/// IAM's wildcard match of UTF-8 `text` against `pattern`: `*` is any run of characters (`/` and
/// `:` included), `?` exactly one character; everything else is literal and case-sensitive.
///
/// Iterative, backtracking only to the last `*` seen: a failed attempt moves that `*` on by one
/// character and never revisits earlier ones, which is enough because an earlier `*` can only
/// give the later one less room. At worst O(pattern x text), never exponential, never recursive.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // Where to resume after the last `*`: the pattern just past it, and the text it would take.
    let mut resume: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                p += 1;
                resume = Some((p, t));
                continue;
            }
            // `p` and `t` are both on character boundaries here: literals are whole characters.
            Some(b'?') => {
                p += 1;
                t = (t + char_width(text[t])).min(text.len());
                continue;
            }
            Some(&literal) if literal == text[t] => {
                p += 1;
                t += 1;
                continue;
            }
            _ => {}
        }
        let Some((after_star, taken)) = resume else {
            return false;
        };
        let width = text.get(taken).map_or(1, |&lead| char_width(lead));
        let next = (taken + width).min(text.len());
        resume = Some((after_star, next));
        p = after_star;
        t = next;
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

/// The length of the UTF-8 character that starts with `lead`.
fn char_width(lead: u8) -> usize {
    match lead {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::stage::DEFAULT_STAGE;

    const REGION: &str = "us-east-1";
    const ACCOUNT: &str = "123456789012";
    const API: &str = "abcdef123";

    fn arn(stage: &str, method: &str, path: &str) -> String {
        MethodArn::new(REGION, ACCOUNT, API, stage, method, path).to_string()
    }

    /// A resource on this test's API: `res("prod/GET/pets")`.
    fn res(tail: &str) -> String {
        format!("arn:aws:execute-api:{REGION}:{ACCOUNT}:{API}/{tail}")
    }

    /// A one-statement policy; `action` and `resource` are JSON values.
    fn one(effect: &str, action: &str, resource: &str) -> String {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"{effect}","Action":{action},"Resource":{resource}}}]}}"#
        )
    }

    fn allow(resource: &str) -> String {
        one("Allow", r#""execute-api:Invoke""#, &format!("{resource:?}"))
    }

    fn statements(list: &[(&str, &str)]) -> String {
        let statements: Vec<String> = list
            .iter()
            .map(|(effect, resource)| {
                format!(
                    r#"{{"Effect":"{effect}","Action":"execute-api:Invoke","Resource":{resource:?}}}"#
                )
            })
            .collect();
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
            statements.join(",")
        )
    }

    #[test]
    fn evaluates_policies_as_api_gateway_does() {
        use Decision::{Allow, Deny, NoMatch};
        let prod = "prod";
        // The seed guide's generated policy: the method ARN cut back to `{apiId}/{stage}/*`.
        let seed = allow(&res("prod/*"));
        #[rustfmt::skip]
        let cases: Vec<(&str, String, String, Decision)> = vec![
            ("exact resource", allow(&res("prod/GET/pets")), arn(prod, "GET", "/pets"), Allow),
            ("exact resource, other path", allow(&res("prod/GET/pets")), arn(prod, "GET", "/users"), NoMatch),
            ("exact resource, longer path", allow(&res("prod/GET/pets")), arn(prod, "GET", "/pets/7"), NoMatch),
            ("method mismatch", allow(&res("prod/GET/pets")), arn(prod, "POST", "/pets"), NoMatch),
            ("stage mismatch", allow(&res("prod/GET/pets")), arn("dev", "GET", "/pets"), NoMatch),
            ("other API", allow(&res("prod/GET/pets").replace(API, "zzzzzz999")), arn(prod, "GET", "/pets"), NoMatch),
            ("* as stage", allow(&res("*/GET/pets")), arn("dev", "GET", "/pets"), Allow),
            ("* as method", allow(&res("prod/*/pets")), arn(prod, "DELETE", "/pets"), Allow),
            ("* as path", allow(&res("prod/GET/*")), arn(prod, "GET", "/pets/7/toys"), Allow),
            ("* as path matches the root", allow(&res("prod/GET/*")), arn(prod, "GET", "/"), Allow),
            ("path/* needs the slash", allow(&res("prod/GET/pets/*")), arn(prod, "GET", "/pets"), NoMatch),
            ("* inside the path", allow(&res("prod/GET/pets/*/toys")), arn(prod, "GET", "/pets/7/toys"), Allow),
            ("* crosses / (greedy)", allow(&res("prod/GET/pets/*/toys")), arn(prod, "GET", "/pets/7/8/toys"), Allow),
            ("* as method crosses / too, as IAM's does", allow(&res("*/GET/*")), arn(prod, "POST", "/reports/GET/x"), Allow),
            ("* in region and account", allow(&format!("arn:aws:execute-api:*:*:{API}/prod/GET/pets")), arn(prod, "GET", "/pets"), Allow),
            ("arn:aws:execute-api:*:*:* is everything", allow("arn:aws:execute-api:*:*:*"), arn("dev", "PATCH", "/a/b"), Allow),
            ("bare * is everything", allow("*"), arn("dev", "PUT", "/a"), Allow),
            ("? is one character", allow(&res("prod/GET/pets/?")), arn(prod, "GET", "/pets/7"), Allow),
            ("? is not two", allow(&res("prod/GET/pets/?")), arn(prod, "GET", "/pets/42"), NoMatch),
            ("? is not zero", allow(&res("prod/GET/pets/?")), arn(prod, "GET", "/pets/"), NoMatch),
            ("??? as method: PUT", allow(&res("prod/???/pets")), arn(prod, "PUT", "/pets"), Allow),
            ("??? as method: not POST", allow(&res("prod/???/pets")), arn(prod, "POST", "/pets"), NoMatch),
            ("? is a character, not a byte", allow(&res("prod/GET/caf?")), arn(prod, "GET", "/café"), Allow),
            ("resources are case-sensitive: method", allow(&res("prod/get/pets")), arn(prod, "GET", "/pets"), NoMatch),
            ("resources are case-sensitive: path", allow(&res("prod/GET/Pets")), arn(prod, "GET", "/pets"), NoMatch),
            ("cached for GET /a: GET /a", allow(&res("prod/GET/a")), arn(prod, "GET", "/a"), Allow),
            ("cached for GET /a: DELETE /b", allow(&res("prod/GET/a")), arn(prod, "DELETE", "/b"), NoMatch),
            ("deny before allow", statements(&[("Deny", &res("prod/DELETE/*")), ("Allow", &res("prod/*"))]), arn(prod, "DELETE", "/pets/7"), Deny),
            ("allow before deny", statements(&[("Allow", &res("prod/*")), ("Deny", &res("prod/DELETE/*"))]), arn(prod, "DELETE", "/pets/7"), Deny),
            ("deny elsewhere leaves the allow", statements(&[("Allow", &res("prod/*")), ("Deny", &res("prod/DELETE/*"))]), arn(prod, "GET", "/pets/7"), Allow),
            ("a deny alone", statements(&[("Deny", &res("*"))]), arn(prod, "GET", "/pets"), Deny),
            ("a deny elsewhere alone", statements(&[("Deny", &res("dev/*"))]), arn(prod, "GET", "/pets"), NoMatch),
            ("Action execute-api:*", one("Allow", r#""execute-api:*""#, &format!("{:?}", res("prod/*"))), arn(prod, "GET", "/pets"), Allow),
            ("Action *", one("Allow", r#""*""#, &format!("{:?}", res("prod/*"))), arn(prod, "GET", "/pets"), Allow),
            ("Action lower case", one("Allow", r#""execute-api:invoke""#, &format!("{:?}", res("prod/*"))), arn(prod, "GET", "/pets"), Allow),
            ("Action upper case", one("Allow", r#""EXECUTE-API:INVOKE""#, &format!("{:?}", res("prod/*"))), arn(prod, "GET", "/pets"), Allow),
            ("Action with ?", one("Allow", r#""execute-api:Inv?ke""#, &format!("{:?}", res("prod/*"))), arn(prod, "GET", "/pets"), Allow),
            ("Action array", one("Allow", r#"["s3:GetObject","execute-api:Invoke"]"#, &format!("{:?}", res("prod/*"))), arn(prod, "GET", "/pets"), Allow),
            ("Action InvalidateCache only", one("Allow", r#""execute-api:InvalidateCache""#, &format!("{:?}", res("prod/*"))), arn(prod, "GET", "/pets"), NoMatch),
            ("Action s3:* only", one("Allow", r#"["s3:*"]"#, &format!("{:?}", res("prod/*"))), arn(prod, "GET", "/pets"), NoMatch),
            (
                "a deny of another action does not deny Invoke",
                r#"{"Statement":[{"Effect":"Deny","Action":"execute-api:ManageConnections","Resource":"*"},{"Effect":"Allow","Action":"execute-api:Invoke","Resource":"*"}]}"#.to_owned(),
                arn(prod, "GET", "/pets"),
                Allow,
            ),
            (
                "Statement as an object",
                format!(r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Action":"execute-api:Invoke","Resource":{:?}}}}}"#, res("prod/GET/pets")),
                arn(prod, "GET", "/pets"),
                Allow,
            ),
            ("Resource as an array", one("Allow", r#""execute-api:Invoke""#, &format!("[{:?},{:?}]", res("prod/GET/users"), res("prod/GET/pets"))), arn(prod, "GET", "/pets"), Allow),
            ("Resource as an empty array", one("Allow", r#""execute-api:Invoke""#, "[]"), arn(prod, "GET", "/pets"), NoMatch),
            ("no statements", r#"{"Version":"2012-10-17","Statement":[]}"#.to_owned(), arn(prod, "GET", "/pets"), NoMatch),
            ("Version 2008-10-17, Id and Sid", format!(r#"{{"Version":"2008-10-17","Id":"p","Statement":[{{"Sid":"s1","Effect":"Allow","Action":"execute-api:Invoke","Resource":{:?}}}]}}"#, res("prod/*")), arn(prod, "GET", "/pets"), Allow),
            ("no Version", format!(r#"{{"Statement":[{{"Effect":"Allow","Action":"execute-api:Invoke","Resource":{:?}}}]}}"#, res("prod/*")), arn(prod, "GET", "/pets"), Allow),
            ("seed policy: GET", seed.clone(), arn(prod, "GET", "/pets"), Allow),
            ("seed policy: DELETE deeper", seed.clone(), arn(prod, "DELETE", "/pets/7/toys/3"), Allow),
            ("seed policy: POST root", seed.clone(), arn(prod, "POST", "/"), Allow),
            ("seed policy: another stage", seed.clone(), arn("dev", "GET", "/pets"), NoMatch),
            ("seed policy: a stage it prefixes", seed.clone(), arn("prod-old", "GET", "/pets"), NoMatch),
            ("$default stage", allow(&res("$default/GET/pets")), arn(DEFAULT_STAGE, "GET", "/pets"), Allow),
            ("$default route", allow(&res("$default/$default")), MethodArn::default_route(REGION, ACCOUNT, API, DEFAULT_STAGE).to_string(), Allow),
            ("$default route is not a method", allow(&res("*/GET/*")), MethodArn::default_route(REGION, ACCOUNT, API, DEFAULT_STAGE).to_string(), NoMatch),
            ("stage/* covers the $default route", allow(&res("$default/*")), MethodArn::default_route(REGION, ACCOUNT, API, DEFAULT_STAGE).to_string(), Allow),
        ];
        assert!(cases.len() >= 25);
        for (name, document, method_arn, expected) in cases {
            let policy = Policy::parse(&document)
                .unwrap_or_else(|e| panic!("{name}: {document} does not parse: {e}"));
            assert_eq!(
                policy.evaluate(&method_arn),
                expected,
                "{name}: {document} against {method_arn}"
            );
        }
    }

    #[test]
    fn invalidate_cache_statements_are_asked_apart_from_invoke() {
        // api-gateway-caching.md: the permission a `Cache-Control: max-age=0` needs is
        // `execute-api:InvalidateCache` on `arn:aws:execute-api:region:account-id:api-id/
        // stage-name/GET/resource-path-specifier`.
        let document = format!(
            r#"{{"Version":"2012-10-17","Statement":[
                {{"Effect":"Allow","Action":"execute-api:Invoke","Resource":"{all}"}},
                {{"Effect":"Allow","Action":["execute-api:InvalidateCache"],"Resource":"{get}"}},
                {{"Effect":"Deny","Action":"execute-api:*","Resource":"{secret}"}}]}}"#,
            all = res("prod/*"),
            get = res("prod/GET/*"),
            secret = res("prod/GET/secret"),
        );
        let policy = Policy::parse(&document).unwrap();
        assert!(policy.allows_cache_invalidation(&arn("prod", "GET", "/pets")));
        assert!(!policy.allows_cache_invalidation(&arn("prod", "POST", "/pets")));
        assert!(!policy.allows_cache_invalidation(&arn("prod", "GET", "/secret")));
        assert!(!policy.allows_cache_invalidation(&arn("dev", "GET", "/pets")));
        // Invoke alone grants no invalidation.
        let invoke_only = Policy::parse(&allow(&res("prod/*"))).unwrap();
        assert!(!invoke_only.allows_cache_invalidation(&arn("prod", "GET", "/pets")));
        assert_eq!(
            invoke_only.evaluate(&arn("prod", "GET", "/pets")),
            Decision::Allow
        );
    }

    #[test]
    fn a_cached_policy_decides_per_method_arn() {
        let policy = Policy::parse(&statements(&[
            ("Allow", &res("prod/GET/a")),
            ("Allow", &res("prod/*/public/*")),
            ("Deny", &res("prod/*/public/secret")),
        ]))
        .unwrap();
        let cases = [
            (arn("prod", "GET", "/a"), Decision::Allow),
            (arn("prod", "DELETE", "/b"), Decision::NoMatch),
            (arn("prod", "GET", "/b"), Decision::NoMatch),
            (arn("prod", "DELETE", "/a"), Decision::NoMatch),
            (arn("prod", "PUT", "/public/x"), Decision::Allow),
            (arn("prod", "PUT", "/public/secret"), Decision::Deny),
            (arn("prod", "GET", "/a"), Decision::Allow),
        ];
        for (method_arn, expected) in cases {
            assert_eq!(policy.evaluate(&method_arn), expected, "{method_arn}");
        }
    }

    #[test]
    fn malformed_documents_are_errors() {
        let good_resource = format!("{:?}", res("prod/*"));
        #[rustfmt::skip]
        let cases: Vec<(&str, String, &str)> = vec![
            ("not JSON", "{".to_owned(), "not valid JSON"),
            ("empty", String::new(), "not valid JSON"),
            ("trailing garbage", r#"{"Statement":[]} x"#.to_owned(), "not valid JSON"),
            ("nested too deep", "[".repeat(100_000), "not valid JSON"),
            ("an array", "[]".to_owned(), "expected an object, found an array"),
            ("a string", r#""Allow""#.to_owned(), "expected an object, found a string"),
            ("no Statement", r#"{"Version":"2012-10-17"}"#.to_owned(), "Statement is required"),
            ("Statement a string", r#"{"Statement":"Allow"}"#.to_owned(), "at Statement: expected an object or an array"),
            ("statement a number", r#"{"Statement":[1]}"#.to_owned(), "at Statement[0]: expected a statement object"),
            ("no Effect", format!(r#"{{"Statement":[{{"Action":"*","Resource":{good_resource}}}]}}"#), "Effect is required"),
            ("Effect lower case", one("allow", r#""*""#, &good_resource), r#"at Statement[0].Effect: expected "Allow" or "Deny" (case-sensitive), found "allow""#),
            ("Effect Permit", one("Permit", r#""*""#, &good_resource), r#"found "Permit""#),
            ("Effect not a string", format!(r#"{{"Statement":[{{"Effect":true,"Action":"*","Resource":{good_resource}}}]}}"#), "found a boolean"),
            ("second statement bad", r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Nope","Action":"*","Resource":"*"}]}"#.to_owned(), "at Statement[1].Effect"),
            ("no Action", format!(r#"{{"Statement":[{{"Effect":"Allow","Resource":{good_resource}}}]}}"#), "Action is required"),
            ("no Resource", r#"{"Statement":[{"Effect":"Allow","Action":"*"}]}"#.to_owned(), "Resource is required"),
            ("Action a number", one("Allow", "7", &good_resource), "at Statement[0].Action: expected a string or an array of strings, found a number"),
            ("Resource holding a number", one("Allow", r#""*""#, r#"["*", 7]"#), "at Statement[0].Resource[1]: expected a string, found a number"),
            ("Version unknown", r#"{"Version":"2020-01-01","Statement":[]}"#.to_owned(), r#"at Version: expected 2012-10-17 or 2008-10-17, found "2020-01-01""#),
            ("Version a number", r#"{"Version":2012,"Statement":[]}"#.to_owned(), "at Version: expected a string"),
            ("the whole authorizer output", r#"{"principalId":"u","policyDocument":{"Statement":[]}}"#.to_owned(), "unknown policy element"),
            ("unknown statement element", r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Resources":"*"}]}"#.to_owned(), r#"at Statement[0]."Resources": unknown statement element"#),
            ("NotAction", r#"{"Statement":[{"Effect":"Allow","NotAction":"s3:*","Resource":"*"}]}"#.to_owned(), "uses NotAction at Statement[0], which is not supported"),
            ("NotResource", r#"{"Statement":[{"Effect":"Allow","Action":"*","NotResource":"*"}]}"#.to_owned(), "uses NotResource"),
            ("Condition", r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{}}]}"#.to_owned(), "uses Condition"),
            ("Principal", r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}"#.to_owned(), "uses Principal"),
        ];
        for (name, document, expected) in cases {
            match Policy::parse(&document) {
                Ok(policy) => panic!("{name}: parsed as {policy:?}"),
                Err(e) => assert!(
                    e.to_string().contains(expected),
                    "{name}: {e} does not contain {expected}"
                ),
            }
        }
    }

    #[test]
    fn error_messages_cut_long_values_short() {
        let long = "x".repeat(10_000);
        let e = Policy::parse(&one(&long, r#""*""#, r#""*""#)).unwrap_err();
        assert!(e.to_string().len() < 300, "{e}");
        let e = MethodArn::parse(&format!("arn:aws:s3:::{long}")).unwrap_err();
        assert!(e.to_string().len() < 300, "{e}");
    }

    #[test]
    fn method_arns_are_written_as_aws_writes_them_and_read_back() {
        let cases = [
            (
                MethodArn::new(REGION, ACCOUNT, API, "prod", "GET", "pets"),
                "arn:aws:execute-api:us-east-1:123456789012:abcdef123/prod/GET/pets",
            ),
            (
                MethodArn::new(REGION, ACCOUNT, API, "prod", "GET", "/pets/7/toys"),
                "arn:aws:execute-api:us-east-1:123456789012:abcdef123/prod/GET/pets/7/toys",
            ),
            (
                MethodArn::new(REGION, ACCOUNT, API, "prod", "POST", "/"),
                "arn:aws:execute-api:us-east-1:123456789012:abcdef123/prod/POST/",
            ),
            (
                MethodArn::new(REGION, ACCOUNT, API, "prod", "POST", ""),
                "arn:aws:execute-api:us-east-1:123456789012:abcdef123/prod/POST/",
            ),
            (
                MethodArn::new(REGION, ACCOUNT, API, DEFAULT_STAGE, "DELETE", "/pets/7"),
                "arn:aws:execute-api:us-east-1:123456789012:abcdef123/$default/DELETE/pets/7",
            ),
            (
                MethodArn::default_route(REGION, ACCOUNT, API, DEFAULT_STAGE),
                "arn:aws:execute-api:us-east-1:123456789012:abcdef123/$default/$default",
            ),
            (
                MethodArn::default_route("eu-west-1", ACCOUNT, API, "prod"),
                "arn:aws:execute-api:eu-west-1:123456789012:abcdef123/prod/$default",
            ),
            (
                MethodArn::new(REGION, ACCOUNT, API, "prod", "GET", "/files/a:b/ü"),
                "arn:aws:execute-api:us-east-1:123456789012:abcdef123/prod/GET/files/a:b/ü",
            ),
        ];
        for (method_arn, expected) in cases {
            assert_eq!(method_arn.to_string(), expected);
            assert_eq!(
                MethodArn::parse(expected).as_ref(),
                Ok(&method_arn),
                "{expected}"
            );
        }
        let parsed = MethodArn::parse(&arn("prod", "GET", "/pets/7")).unwrap();
        assert_eq!(
            (
                parsed.region(),
                parsed.account_id(),
                parsed.api_id(),
                parsed.stage()
            ),
            (REGION, ACCOUNT, API, "prod")
        );
        assert_eq!(
            parsed.target(),
            &ArnTarget::Method {
                method: "GET".into(),
                resource_path: "pets/7".into()
            }
        );
    }

    #[test]
    fn strings_that_are_not_method_arns_are_errors() {
        let cases = [
            "",
            "arn:aws:s3:::bucket/key",
            "arn:aws-cn:execute-api:cn-north-1:123456789012:abcdef123/prod/GET/pets",
            "arn:aws:execute-api:us-east-1:123456789012",
            "arn:aws:execute-api::123456789012:abcdef123/prod/GET/pets",
            "arn:aws:execute-api:us-east-1::abcdef123/prod/GET/pets",
            "arn:aws:execute-api:us-east-1:123456789012:abcdef123",
            "arn:aws:execute-api:us-east-1:123456789012:abcdef123/prod",
            "arn:aws:execute-api:us-east-1:123456789012:abcdef123/prod/GET",
            "arn:aws:execute-api:us-east-1:123456789012:abcdef123//GET/pets",
            "arn:aws:execute-api:us-east-1:123456789012:/prod/GET/pets",
            "arn:aws:execute-api:us-east-1:123456789012:abcdef123/prod//pets",
        ];
        for case in cases {
            assert!(MethodArn::parse(case).is_err(), "{case} parsed");
        }
    }

    #[test]
    fn glob_matches_like_iam() {
        let cases = [
            ("", "", true),
            ("", "a", false),
            ("*", "", true),
            ("**", "abc", true),
            ("?", "", false),
            ("?", "é", true),
            ("??", "é", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("a*", "a", true),
            ("*a", "ba", true),
            ("*a", "ab", false),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXcYb", false),
            ("a*b", "a/x/y/b", true),
            ("*/GET/*", "prod/GET/", true),
            ("a*?", "a", false),
            ("a*?", "ab", true),
            ("*x*", "abc", false),
            ("é*ü", "é/ö/ü", true),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(
                glob_match(pattern.as_bytes(), text.as_bytes()),
                expected,
                "{pattern:?} against {text:?}"
            );
            assert_eq!(
                Glob::compile(pattern).matches(text),
                expected,
                "compiled {pattern:?} against {text:?}"
            );
        }
    }

    /// Every position of every `*`, tried: slow and obviously right.
    fn reference_match(pattern: &[char], text: &[char]) -> bool {
        match pattern.split_first() {
            None => text.is_empty(),
            Some(('*', rest)) => (0..=text.len()).any(|i| reference_match(rest, &text[i..])),
            Some(('?', rest)) => !text.is_empty() && reference_match(rest, &text[1..]),
            Some((c, rest)) => text.first() == Some(c) && reference_match(rest, &text[1..]),
        }
    }

    #[test]
    fn glob_agrees_with_a_reference_matcher() {
        let mut rng = fastrand::Rng::with_seed(4);
        let pattern_chars = ['a', 'b', '/', 'é', '*', '?'];
        let text_chars = ['a', 'b', '/', 'é'];
        for _ in 0..5_000 {
            let pattern: String = (0..rng.usize(0..8))
                .map(|_| pattern_chars[rng.usize(..pattern_chars.len())])
                .collect();
            let text: String = (0..rng.usize(0..10))
                .map(|_| text_chars[rng.usize(..text_chars.len())])
                .collect();
            let expected = reference_match(
                &pattern.chars().collect::<Vec<_>>(),
                &text.chars().collect::<Vec<_>>(),
            );
            assert_eq!(
                Glob::compile(&pattern).matches(&text),
                expected,
                "{pattern:?} against {text:?}"
            );
        }
    }

    #[test]
    fn adversarial_patterns_finish_fast() {
        let long = "a".repeat(200_000);
        let started = Instant::now();
        assert!(!Glob::compile("a*a*a*a*a*a*a*a*b").matches(&long));
        assert!(!Glob::compile("*?*?*?*?*?*?*?*?b").matches(&long));
        assert!(Glob::compile("a*a*a*a*a*a*a*a*a").matches(&long));
        // Through a policy, against a long method ARN.
        let policy = Policy::parse(&allow(&res("*a*a*a*a*a*a*a*a*a*a*a*a*/DELETE/*"))).unwrap();
        let method_arn = arn("prod", "GET", &"a/".repeat(50_000));
        assert_eq!(policy.evaluate(&method_arn), Decision::NoMatch);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "took {:?}",
            started.elapsed()
        );
    }

    #[test]
    fn patterns_are_classified_once() {
        assert_eq!(Glob::compile("*"), Glob::Any);
        assert_eq!(Glob::compile("***"), Glob::Any);
        assert_eq!(Glob::compile("a/b"), Glob::Exact("a/b".into()));
        assert_eq!(Glob::compile("a/b/**"), Glob::Prefix("a/b/".into()));
        assert_eq!(
            Glob::compile("a/**/b"),
            Glob::Pattern(b"a/*/b".to_vec().into_boxed_slice())
        );
        assert_eq!(
            Glob::compile("a/?"),
            Glob::Pattern(b"a/?".to_vec().into_boxed_slice())
        );
    }
}
