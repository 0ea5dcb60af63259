//! Custom authorizers (Lambda TOKEN/REQUEST authorizers), run as plugins of the `authorizer`
//! world, with API Gateway's result cache.
//!
//! A decision is cached per stage and exact identity-source values for `resultTtlSeconds`. What
//! is cached is the grant and its compiled policy, never the yes/no for one request: a policy
//! cached for `GET /a` is evaluated again for `DELETE /b`.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lru::LruCache;
use regex::Regex;

use crate::config::{AuthorizerDefinition, AuthorizerType, PluginWorld, ResponseFormat};
use crate::error::{Error, KeyPath};
use crate::plugin::{AuthCall, AuthVerdict, AuthorizerKind, ContextValue, LoadedPlugin};
use crate::respond::GatewayError;

use super::policy::{Decision, Policy};

/// `resultTtlSeconds` when the definition says nothing, and its ceiling (AWS's).
const DEFAULT_TTL_SECONDS: u32 = 300;
const MAX_TTL_SECONDS: u32 = 3600;
/// Cached decisions per authorizer: bounded, the least recently used go first.
const CACHE_ENTRIES: usize = 10_000;

/// A compiled custom authorizer.
pub(crate) struct CustomAuthorizer {
    plugin: Arc<LoadedPlugin>,
    kind: AuthorizerKind,
    /// TOKEN: the token must match this (anchored) before the plugin is called.
    validation: Option<Regex>,
    /// `simple` responses: the decision itself is `isAuthorized`; no policy is evaluated.
    simple: bool,
    ttl: Duration,
    cache: Option<Mutex<LruCache<String, Cached>>>,
}

/// A cache entry.
struct Cached {
    expires_at: Instant,
    verdict: Arc<Verdict>,
}

/// What a plugin's answer means, compiled once and re-applied to each method ARN.
enum Verdict {
    /// `allow`: subject to the policy, when there is one (IAM format).
    Allow {
        grant: Arc<CustomGrant>,
        policy: Option<Policy>,
    },
    /// `deny`: the caller is known and refused.
    Deny,
}

/// What a custom authorizer established about the caller.
#[derive(Debug)]
pub(crate) struct CustomGrant {
    pub(crate) principal_id: String,
    pub(crate) context: Vec<(String, ContextValue)>,
    pub(crate) usage_identifier_key: Option<String>,
}

impl CustomAuthorizer {
    /// Compiles a `token` or `request` authorizer whose plugin is `plugin`.
    pub(crate) fn compile(
        definition: &AuthorizerDefinition,
        plugin: Arc<LoadedPlugin>,
        at: &KeyPath,
    ) -> Result<Self, Error> {
        let kind = match definition.authorizer_type {
            AuthorizerType::Token => AuthorizerKind::Token,
            AuthorizerType::Request => AuthorizerKind::Request,
            AuthorizerType::Jwt => {
                return Err(Error::config(
                    at.key("type"),
                    "a JWT authorizer verifies tokens itself and runs no plugin",
                ))
            }
        };
        if plugin.world() != PluginWorld::Authorizer {
            return Err(Error::config(
                at.key("plugin"),
                format!(
                    "plugin \"{}\" implements the {} world; a custom authorizer needs the authorizer world",
                    plugin.name(),
                    plugin.world()
                ),
            ));
        }
        let validation = match &definition.identity_validation_expression {
            None => None,
            Some(_) if kind != AuthorizerKind::Token => {
                return Err(Error::config(
                    at.key("identityValidationExpression"),
                    "only valid for authorizers of type token",
                ))
            }
            Some(expression) => Some(Regex::new(&format!("^(?:{expression})$")).map_err(|e| {
                Error::config(at.key("identityValidationExpression"), e.to_string())
            })?),
        };
        let simple = match definition.response_format.unwrap_or_default() {
            ResponseFormat::Iam => false,
            ResponseFormat::Simple => true,
        };
        let ttl_seconds = definition.result_ttl_seconds.unwrap_or(DEFAULT_TTL_SECONDS);
        if ttl_seconds > MAX_TTL_SECONDS {
            return Err(Error::config(
                at.key("resultTtlSeconds"),
                format!("{ttl_seconds} is over the maximum of {MAX_TTL_SECONDS} seconds"),
            ));
        }
        let cache = NonZeroUsize::new(CACHE_ENTRIES)
            .filter(|_| ttl_seconds > 0)
            .map(|entries| Mutex::new(LruCache::new(entries)));
        Ok(CustomAuthorizer {
            plugin,
            kind,
            validation,
            simple,
            ttl: Duration::from_secs(ttl_seconds.into()),
            cache,
        })
    }

    /// Whether the authorizer keeps results (identity sources are then required).
    pub(crate) fn caches(&self) -> bool {
        self.cache.is_some()
    }

    /// Whether this is a TOKEN authorizer.
    pub(crate) fn is_token(&self) -> bool {
        self.kind == AuthorizerKind::Token
    }

    /// Decides on a request: the cached verdict for `cache_key` when there is a fresh one, else
    /// the plugin's, then the verdict applied to `method_arn`.
    pub(crate) async fn authorize(
        &self,
        cache_key: &str,
        method_arn: &str,
        build_request: impl FnOnce(AuthorizerKind) -> AuthCall,
    ) -> Result<Arc<CustomGrant>, GatewayError> {
        let verdict = match self.cached(cache_key) {
            Some(verdict) => verdict,
            None => {
                let request = build_request(self.kind);
                let verdict = self.ask_plugin(request).await?;
                self.remember(cache_key, &verdict);
                verdict
            }
        };
        self.apply(&verdict, method_arn)
    }

    /// Forgets every cached decision.
    pub(crate) fn clear_cache(&self) {
        if let Some(Ok(mut cache)) = self.cache.as_ref().map(Mutex::lock) {
            cache.clear();
        }
    }

    /// Checks a TOKEN authorizer's `identityValidationExpression`.
    pub(crate) fn token_is_valid(&self, token: &str) -> bool {
        self.validation.as_ref().is_none_or(|re| re.is_match(token))
    }

    fn cached(&self, key: &str) -> Option<Arc<Verdict>> {
        let mut cache = self.cache.as_ref()?.lock().ok()?;
        match cache.get(key) {
            Some(entry) if entry.expires_at > Instant::now() => Some(Arc::clone(&entry.verdict)),
            Some(_) => {
                cache.pop(key);
                None
            }
            None => None,
        }
    }

    fn remember(&self, key: &str, verdict: &Arc<Verdict>) {
        if let Some(Ok(mut cache)) = self.cache.as_ref().map(Mutex::lock) {
            let entry = Cached {
                expires_at: Instant::now() + self.ttl,
                verdict: Arc::clone(verdict),
            };
            cache.put(key.to_owned(), entry);
        }
    }

    async fn ask_plugin(&self, request: AuthCall) -> Result<Arc<Verdict>, GatewayError> {
        // Boxed: a plugin call's future is kilobytes, and it would make every request's
        // future (cached decisions included) that large to move around.
        let decision = Box::pin(self.plugin.authorize(request))
            .await
            .map_err(|failure| {
                tracing::error!(plugin = self.plugin.name(), "authorizer failed: {failure}");
                GatewayError::authorizer_failure()
            })?;
        let grant = match decision {
            AuthVerdict::Unauthorized => return Err(GatewayError::unauthorized()),
            AuthVerdict::Deny(_) => return Ok(Arc::new(Verdict::Deny)),
            AuthVerdict::Allow(grant) => grant,
        };
        let policy = match (&grant.policy_document, self.simple) {
            (Some(document), false) => Some(Policy::parse(document).map_err(|e| {
                tracing::error!(plugin = self.plugin.name(), "authorizer answered {e}");
                GatewayError::authorizer_configuration_error()
            })?),
            _ => None,
        };
        let grant = Arc::new(CustomGrant {
            principal_id: grant.principal_id,
            context: grant.context,
            usage_identifier_key: grant.usage_identifier_key,
        });
        Ok(Arc::new(Verdict::Allow { grant, policy }))
    }

    fn apply(&self, verdict: &Verdict, method_arn: &str) -> Result<Arc<CustomGrant>, GatewayError> {
        let refused = || {
            if self.simple {
                GatewayError::forbidden()
            } else {
                GatewayError::policy_denied()
            }
        };
        match verdict {
            Verdict::Deny => Err(refused()),
            Verdict::Allow { grant, policy } => {
                match policy.as_ref().map(|p| p.evaluate(method_arn)) {
                    None | Some(Decision::Allow) => Ok(Arc::clone(grant)),
                    Some(Decision::Deny | Decision::NoMatch) => Err(refused()),
                }
            }
        }
    }
}
