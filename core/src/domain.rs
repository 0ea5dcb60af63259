//! The host/domain and stage phases: which API, stage and deployment serve a request, from its
//! `Host` and its path, over [`Served`], the request path's immutable view of what the gateway
//! serves (rebuilt by `release` on every deployment change and swapped in atomically).
//!
//! API Gateway's rules, as its developer guide gives them ("Use API mappings to connect API
//! stages to a custom domain name for REST APIs", rest-api-mappings.md):
//! - a custom domain's API mappings take a request by base path, the longest matching one
//!   winning; the empty base path catches what no other takes; the base path is stripped
//!   before routing ("API Gateway would invoke the /hats resource of the test stage").
//!   With single-level mappings only, a base path matches a whole first segment; once a
//!   domain has a multi-level mapping (`orders/v1/items`), the longest matching *prefix*
//!   wins (the guide's `/ordersandmore` goes to `orders`).
//! - a path no mapping of its domain takes is answered 403 `{"message":"Forbidden"}`.
//! - the API's own host, `{apiId}.execute-api.{region}.amazonaws.com`, keeps serving
//!   `/{stage}/...` paths (see `crate::stage`).
//!
//! Our decisions where AWS has nothing to copy: a gateway with one API and no domains serves
//! that API on every host (an embedder or a local `portico-serve --api` has no DNS name to
//! match); otherwise a host that is neither a domain nor an API's own host is answered 403
//! `{"message":"Forbidden"}`, as API Gateway answers a request for a domain it does not serve.
//! Wildcard domains (`*.example.com`) match any host ending in `.example.com`, as Envoy's
//! suffix wildcards do; an exact domain wins over a wildcard, a longer wildcard over a
//! shorter one.

use std::borrow::Cow;
use std::sync::Arc;

use http::request::Parts;

use crate::config::{DomainDefinition, UniqueMap};
use crate::deployment::{Api, Deployment};
use crate::error::{Error, KeyPath};
use crate::respond::GatewayError;
use crate::stage::DEFAULT_STAGE;

/// What the gateway serves, as the request path reads it.
pub(crate) struct Served {
    pub(crate) apis: Vec<ServedApi>,
    /// Exact domains first, then wildcards from the longest suffix.
    domains: Vec<Domain>,
    /// One API and no domains: every host is that API's.
    any_host: bool,
    /// Answers requests no API takes (an unknown host, an unmapped path).
    nowhere: Api,
}

/// An API's stages by name (`$default` among them), in the definition's order.
pub(crate) type Stages = Vec<(String, Arc<StageView>)>;

/// One API: its stages and the deployment each runs.
pub(crate) struct ServedApi {
    pub(crate) name: String,
    /// `{apiId}.execute-api.{region}.amazonaws.com`, lowercase.
    host: String,
    /// Named stages (not `$default`), in the definition's order.
    stages: Vec<(String, Arc<StageView>)>,
    default_stage: Option<Arc<StageView>>,
    /// The API's last deployment: answers a path that names no stage, and the API-wide
    /// questions (usage plans).
    pub(crate) latest: Arc<Api>,
}

/// One stage: the deployment it runs, and its canary's.
pub(crate) struct StageView {
    main: Target,
    /// The canary's share of requests (0-100) and what it runs.
    canary: Option<(f64, Target)>,
}

/// A compiled stage and the deployment it belongs to.
pub(crate) struct Target {
    api: Arc<Api>,
    stage: Arc<Deployment>,
}

struct Domain {
    /// Lowercase; for a wildcard, the suffix with its dot (`.example.com`).
    host: String,
    wildcard: bool,
    /// Longest base path first; the empty one last.
    mappings: Vec<Mapping>,
    /// Some base path has several segments: prefixes match by character, as AWS's do.
    multi_level: bool,
}

struct Mapping {
    /// Without leading or trailing `/`; empty for the catch-all.
    base: String,
    stage: Arc<StageView>,
}

/// The request's API, and its stage with the path within it or the refusal.
pub(crate) struct Selected<'s, 'p> {
    pub(crate) api: &'s Api,
    pub(crate) stage: Result<(&'s Deployment, Cow<'p, str>), Unserved>,
}

/// Why no stage serves a request: kept small (the request's future holds it), made a
/// [`GatewayError`] only when it answers.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Unserved {
    /// No stage of the API: 404 Not Found (REST: 403 Forbidden).
    NoStage { rest: bool },
    /// An unknown host, or a path no mapping of its domain takes: 403 Forbidden.
    Unmapped,
}

impl Unserved {
    /// The gateway response that answers it.
    pub(crate) fn error(self) -> GatewayError {
        match self {
            Unserved::NoStage { rest } => GatewayError::no_stage(rest),
            Unserved::Unmapped => GatewayError::forbidden(),
        }
    }
}

impl Target {
    /// Stage `name` of deployment `api`.
    pub(crate) fn new(api: Arc<Api>, name: &str) -> Result<Self, Error> {
        let stage = api.stage_named(name).cloned().ok_or_else(|| {
            Error::Release(format!("deployment {} has no stage \"{name}\"", api.id))
        })?;
        Ok(Target { api, stage })
    }
}

impl StageView {
    pub(crate) fn new(main: Target, canary: Option<(f64, Target)>) -> Self {
        StageView { main, canary }
    }

    /// The canary draw: each request independently goes to the canary with its share.
    fn draw(&self) -> &Target {
        match &self.canary {
            Some((percent, canary)) if fastrand::f64() * 100.0 < *percent => canary,
            _ => &self.main,
        }
    }
}

impl Served {
    /// The view of `apis` (name, last deployment, stages) behind `domains`; a mapping to an
    /// API or stage that does not exist is an error at its key.
    pub(crate) fn new(
        apis: Vec<(String, Arc<Api>, Stages)>,
        domains: &UniqueMap<DomainDefinition>,
    ) -> Result<Self, Error> {
        let apis: Vec<ServedApi> = apis
            .into_iter()
            .map(|(name, latest, stages)| {
                let (default, named): (Vec<_>, Vec<_>) =
                    stages.into_iter().partition(|(s, _)| s == DEFAULT_STAGE);
                ServedApi {
                    host: format!(
                        "{}.execute-api.{}.amazonaws.com",
                        latest.identity.api_id, latest.identity.region
                    )
                    .to_ascii_lowercase(),
                    name,
                    stages: named,
                    default_stage: default.into_iter().next().map(|(_, view)| view),
                    latest,
                }
            })
            .collect();
        let mut compiled = Vec::new();
        for (host, domain) in domains.iter() {
            let at = KeyPath::root().key("domains").key(host);
            compiled.push(Domain::compile(host, domain, &apis, &at)?);
        }
        compiled.sort_by_key(|d| (d.wildcard, std::cmp::Reverse(d.host.len())));
        Ok(Served {
            any_host: apis.len() == 1 && compiled.is_empty(),
            apis,
            domains: compiled,
            nowhere: Api::empty(),
        })
    }

    /// The host/domain and stage phases' choice for a request (the canary drawn).
    pub(crate) fn select<'s, 'p>(&'s self, parts: &'p Parts) -> Selected<'s, 'p> {
        let path = parts.uri.path();
        if self.any_host {
            return self.apis[0].by_path(path);
        }
        let host = host_of(parts);
        if let Some(api) = self.apis.iter().find(|a| a.host.eq_ignore_ascii_case(host)) {
            return api.by_path(path);
        }
        let mapped = self
            .domains
            .iter()
            .find(|d| d.serves(host))
            .and_then(|domain| domain.map(path));
        match mapped {
            Some((view, within)) => {
                let target = view.draw();
                Selected {
                    api: &target.api,
                    stage: Ok((&target.stage, within)),
                }
            }
            None => Selected {
                api: &self.nowhere,
                stage: Err(Unserved::Unmapped),
            },
        }
    }
}

impl ServedApi {
    /// The stage `/{stage}/...` names, else `$default`, else none.
    fn by_path<'s, 'p>(&'s self, path: &'p str) -> Selected<'s, 'p> {
        let rest = self.latest.protocol == crate::config::Protocol::Rest;
        match crate::stage::select(&self.stages, self.default_stage.as_ref(), path, rest) {
            Some((view, within)) => {
                let target = view.draw();
                Selected {
                    api: &target.api,
                    stage: Ok((&target.stage, Cow::Borrowed(within))),
                }
            }
            None => Selected {
                api: &self.latest,
                stage: Err(Unserved::NoStage { rest }),
            },
        }
    }
}

impl Domain {
    fn compile(
        host: &str,
        domain: &DomainDefinition,
        apis: &[ServedApi],
        at: &KeyPath,
    ) -> Result<Self, Error> {
        let lower = host.to_ascii_lowercase();
        let (name, wildcard) = match lower.strip_prefix("*.") {
            Some(rest) => (rest, true),
            None => (lower.as_str(), false),
        };
        let valid = !name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !valid {
            return Err(Error::config(
                at.clone(),
                "a domain is a host name (labels of [A-Za-z0-9-]), or *.NAME for a wildcard",
            ));
        }
        let mut mappings = Vec::new();
        for (base, mapping) in domain.mappings.iter() {
            let at = at.key("mappings").key(base);
            check_base_path(base, &at)?;
            let api = apis.iter().find(|a| a.name == mapping.api).ok_or_else(|| {
                Error::config(at.key("api"), format!("unknown API \"{}\"", mapping.api))
            })?;
            let stage = if mapping.stage == DEFAULT_STAGE {
                api.default_stage.clone()
            } else {
                api.stages
                    .iter()
                    .find(|(name, _)| *name == mapping.stage)
                    .map(|(_, view)| Arc::clone(view))
            }
            .ok_or_else(|| {
                Error::config(
                    at.key("stage"),
                    format!("API \"{}\" has no stage \"{}\"", mapping.api, mapping.stage),
                )
            })?;
            mappings.push(Mapping {
                base: base.to_owned(),
                stage,
            });
        }
        mappings.sort_by_key(|m| std::cmp::Reverse(m.base.len()));
        Ok(Domain {
            host: if wildcard {
                format!(".{name}")
            } else {
                name.to_owned()
            },
            wildcard,
            multi_level: mappings.iter().any(|m| m.base.contains('/')),
            mappings,
        })
    }

    fn serves(&self, host: &str) -> bool {
        if self.wildcard {
            host.len() > self.host.len()
                && host.is_char_boundary(host.len() - self.host.len())
                && host[host.len() - self.host.len()..].eq_ignore_ascii_case(&self.host)
        } else {
            host.eq_ignore_ascii_case(&self.host)
        }
    }

    /// The mapping that takes `path` and the path within it (the base path stripped).
    fn map<'p>(&self, path: &'p str) -> Option<(&StageView, Cow<'p, str>)> {
        let rest = path.strip_prefix('/').unwrap_or(path);
        self.mappings.iter().find_map(|mapping| {
            if mapping.base.is_empty() {
                return Some((&*mapping.stage, Cow::Borrowed(path)));
            }
            let after = rest.strip_prefix(mapping.base.as_str())?;
            let within = if after.is_empty() {
                Cow::Borrowed("/")
            } else if after.starts_with('/') {
                Cow::Borrowed(after)
            } else if self.multi_level {
                Cow::Owned(format!("/{after}"))
            } else {
                return None;
            };
            Some((&*mapping.stage, within))
        })
    }
}

/// AWS's rule for a mapping's path: letters, digits and `$-_.+!*'()/`, at most 300
/// characters; here also no empty segment (`a//b`, a leading or trailing `/`).
fn check_base_path(base: &str, at: &KeyPath) -> Result<(), Error> {
    let valid = base.len() <= 300
        && base
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"$-_.+!*'()/".contains(&b))
        && (base.is_empty() || base.split('/').all(|segment| !segment.is_empty()));
    if valid {
        Ok(())
    } else {
        Err(Error::config(
            at.clone(),
            "a base path is at most 300 of [A-Za-z0-9$-_.+!*'()/], segments not empty (\"\" catches the rest)",
        ))
    }
}

/// The request's host name: the `Host` header (HTTP/1.1), else the URI's authority (HTTP/2's
/// `:authority`), without the port.
fn host_of(parts: &Parts) -> &str {
    let authority = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
        .unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        // An IPv6 literal: up to its bracket.
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    host.strip_suffix('.').unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_paths_follow_aws_rules() {
        let at = KeyPath::root();
        for good in ["", "orders", "orders/v1/items", "v1.2", "a$-_.+!*'()"] {
            assert!(check_base_path(good, &at).is_ok(), "{good}");
        }
        for bad in ["/orders", "orders/", "a//b", "a b", "a?b", &"x".repeat(301)] {
            assert!(check_base_path(bad, &at).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_host_comes_without_its_port() {
        let parts = |host: &str| {
            http::Request::get("/")
                .header("host", host)
                .body(())
                .unwrap()
                .into_parts()
                .0
        };
        assert_eq!(host_of(&parts("api.example.com:8443")), "api.example.com");
        assert_eq!(host_of(&parts("API.example.com.")), "API.example.com");
        assert_eq!(host_of(&parts("[::1]:80")), "::1");
        let h2 = http::Request::get("https://h2.example.com:443/x")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        assert_eq!(host_of(&h2), "h2.example.com");
    }
}
