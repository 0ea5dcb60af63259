//! Custom authorizers (Lambda TOKEN/REQUEST authorizers), run as plugins of the `authorizer`
//! world, with API Gateway's result cache.
//!
//! A decision is cached per stage and exact identity-source values for `resultTtlSeconds`. What
//! is cached is the grant and its compiled policy, never the yes/no for one request: a policy
//! cached for `GET /a` is evaluated again for `DELETE /b`.
//!
//! With `authorizerCache: {type: redis}` the cache is the fleet's: the plugin's answer (grant
//! and policy document, as JSON) is kept in Redis under a digest of the cache key, expiring
//! after the TTL, and every gateway reads it. Redis being away only costs a cache miss.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lru::LruCache;
use regex::Regex;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::config::{AuthorizerDefinition, AuthorizerType, PluginWorld, ResponseFormat};
use crate::error::{Error, KeyPath};
use crate::fleet::{Budget, RedisLink, Unavailable, WarningGate};
use crate::plugin::{AuthCall, AuthVerdict, AuthorizerKind, ContextValue, LoadedPlugin};
use crate::respond::GatewayError;
use crate::trace::call_span;
use tracing::Instrument;

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
    cache: Option<ResultCache>,
}

/// Where decisions are kept.
enum ResultCache {
    /// In this process, bounded.
    Local(Mutex<LruCache<String, Cached>>),
    /// In Redis, shared by every gateway on it: keys are `prefix` and the cache key's digest.
    Redis {
        link: Arc<RedisLink>,
        prefix: String,
        /// That Redis did not answer, written at most once a period.
        warnings: WarningGate,
    },
}

/// The warning that the shared result cache did not answer (`also`: how many such warnings
/// were left unwritten since the last one).
fn unavailable(why: &Unavailable, also: u64) {
    tracing::warn!(error = %why, unreported_since = also, "authorizer cache unavailable");
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
        policy: Option<Arc<Policy>>,
        /// The policy's document as the plugin wrote it (what a shared cache keeps).
        document: Option<String>,
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
    /// The IAM policy the grant came with (IAM format), which the cache phase also asks about
    /// `execute-api:InvalidateCache`.
    pub(crate) policy: Option<Arc<Policy>>,
}

impl CustomAuthorizer {
    /// Compiles a `token` or `request` authorizer whose plugin is `plugin`, caching its
    /// results in `shared` (a Redis connection and the authorizer's key prefix there) when
    /// given, else in this process.
    pub(crate) fn compile(
        definition: &AuthorizerDefinition,
        plugin: Arc<LoadedPlugin>,
        shared: Option<(Arc<RedisLink>, String)>,
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
        let cache = match shared {
            _ if ttl_seconds == 0 => None,
            Some((link, prefix)) => Some(ResultCache::Redis {
                link,
                prefix,
                warnings: WarningGate::new(),
            }),
            None => NonZeroUsize::new(CACHE_ENTRIES)
                .map(|entries| ResultCache::Local(Mutex::new(LruCache::new(entries)))),
        };
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
    /// the plugin's, then the verdict applied to `method_arn`. A shared cache waits for Redis
    /// at most what is left of `budget`.
    pub(crate) async fn authorize(
        &self,
        cache_key: &str,
        method_arn: &str,
        budget: &Budget,
        build_request: impl FnOnce(AuthorizerKind) -> AuthCall,
    ) -> Result<Arc<CustomGrant>, GatewayError> {
        let verdict = match self.cached(cache_key, budget).await {
            Some(verdict) => verdict,
            None => {
                let request = build_request(self.kind);
                let verdict = self.ask_plugin(request).await?;
                self.remember(cache_key, &verdict, budget).await;
                verdict
            }
        };
        self.apply(&verdict, method_arn)
    }

    /// Forgets every decision cached in this process (a shared cache's entries expire in
    /// Redis).
    #[cfg(feature = "bench")]
    pub(crate) fn clear_cache(&self) {
        if let Some(ResultCache::Local(cache)) = &self.cache {
            if let Ok(mut cache) = cache.lock() {
                cache.clear();
            }
        }
    }

    /// Checks a TOKEN authorizer's `identityValidationExpression`.
    pub(crate) fn token_is_valid(&self, token: &str) -> bool {
        self.validation.as_ref().is_none_or(|re| re.is_match(token))
    }

    async fn cached(&self, key: &str, budget: &Budget) -> Option<Arc<Verdict>> {
        match self.cache.as_ref()? {
            ResultCache::Local(cache) => {
                let mut cache = cache.lock().ok()?;
                match cache.get(key) {
                    Some(entry) if entry.expires_at > Instant::now() => {
                        Some(Arc::clone(&entry.verdict))
                    }
                    Some(_) => {
                        cache.pop(key);
                        None
                    }
                    None => None,
                }
            }
            ResultCache::Redis {
                link,
                prefix,
                warnings,
            } => {
                let redis_key = shared_key(prefix, key);
                let found = link
                    .run(budget, |mut c| async move {
                        redis::cmd("GET")
                            .arg(&redis_key)
                            .query_async::<Option<String>>(&mut c)
                            .await
                    })
                    .await
                    .map_err(|e| warnings.warn(|also| unavailable(&e, also)))
                    .ok()??;
                self.thaw(&found).map(Arc::new)
            }
        }
    }

    async fn remember(&self, key: &str, verdict: &Arc<Verdict>, budget: &Budget) {
        match &self.cache {
            None => {}
            Some(ResultCache::Local(cache)) => {
                if let Ok(mut cache) = cache.lock() {
                    let entry = Cached {
                        expires_at: Instant::now() + self.ttl,
                        verdict: Arc::clone(verdict),
                    };
                    cache.put(key.to_owned(), entry);
                }
            }
            Some(ResultCache::Redis {
                link,
                prefix,
                warnings,
            }) => {
                let (redis_key, frozen) = (shared_key(prefix, key), freeze(verdict));
                let ttl_ms = u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX);
                let stored = link
                    .run(budget, |mut c| async move {
                        redis::cmd("SET")
                            .arg(&redis_key)
                            .arg(&frozen)
                            .arg("PX")
                            .arg(ttl_ms)
                            .query_async::<()>(&mut c)
                            .await
                    })
                    .await;
                if let Err(e) = stored {
                    warnings.warn(|also| unavailable(&e, also));
                }
            }
        }
    }

    /// A verdict read back from the shared cache (`None`, a miss, for anything unreadable).
    fn thaw(&self, text: &str) -> Option<Verdict> {
        let value: Value = serde_json::from_str(text).ok()?;
        if value.get("deny").and_then(Value::as_bool) == Some(true) {
            return Some(Verdict::Deny);
        }
        let context = value
            .get("context")?
            .as_array()?
            .iter()
            .map(|pair| {
                let name = pair.get(0)?.as_str()?.to_owned();
                let value = match pair.get(1)? {
                    Value::String(text) => ContextValue::Text(text.clone()),
                    Value::Bool(b) => ContextValue::Boolean(*b),
                    other => ContextValue::Number(other.as_f64().unwrap_or(f64::NAN)),
                };
                Some((name, value))
            })
            .collect::<Option<Vec<_>>>()?;
        let document = value
            .get("policy")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let policy = match (&document, self.simple) {
            (Some(document), false) => Some(Arc::new(Policy::parse(document).ok()?)),
            _ => None,
        };
        let grant = Arc::new(CustomGrant {
            principal_id: value.get("principalId")?.as_str()?.to_owned(),
            context,
            usage_identifier_key: value
                .get("usageIdentifierKey")
                .and_then(Value::as_str)
                .map(str::to_owned),
            policy: policy.clone(),
        });
        Some(Verdict::Allow {
            grant,
            policy,
            document,
        })
    }

    async fn ask_plugin(&self, request: AuthCall) -> Result<Arc<Verdict>, GatewayError> {
        // Boxed: a plugin call's future is kilobytes, and it would make every request's
        // future (cached decisions included) that large to move around.
        let span = call_span!(
            "plugin",
            plugin.name = self.plugin.name(),
            plugin.world = "authorizer"
        );
        let decision = Box::pin(self.plugin.authorize(request).instrument(span))
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
            (Some(document), false) => Some(Arc::new(Policy::parse(document).map_err(|e| {
                tracing::error!(plugin = self.plugin.name(), "authorizer answered {e}");
                GatewayError::authorizer_configuration_error()
            })?)),
            _ => None,
        };
        // Only a shared cache needs the document again.
        let shared = matches!(self.cache, Some(ResultCache::Redis { .. }));
        let document = grant.policy_document.filter(|_| shared && policy.is_some());
        let grant = Arc::new(CustomGrant {
            principal_id: grant.principal_id,
            context: grant.context,
            usage_identifier_key: grant.usage_identifier_key,
            policy: policy.clone(),
        });
        Ok(Arc::new(Verdict::Allow {
            grant,
            policy,
            document,
        }))
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
            Verdict::Allow { grant, policy, .. } => {
                match policy.as_ref().map(|p| p.evaluate(method_arn)) {
                    None | Some(Decision::Allow) => Ok(Arc::clone(grant)),
                    Some(Decision::Deny | Decision::NoMatch) => Err(refused()),
                }
            }
        }
    }
}

/// The Redis key prefix of `definition`'s shared cache, authorizer `name` of API `api_id`:
/// it names a digest of the definition, so that a changed authorizer (another plugin, format
/// or source) never reads what the old one decided.
pub(crate) fn shared_prefix(api_id: &str, name: &str, definition: &AuthorizerDefinition) -> String {
    let settings = serde_json::to_string(definition).unwrap_or_default();
    let digest = hex(&Sha256::digest(settings.as_bytes())[..8]);
    format!("portico:authorizer:{api_id}/{name}/{digest}/")
}

/// The Redis key of a cached decision: the authorizer's prefix and a digest of the cache key
/// (identity values, tokens among them, never appear in Redis in the clear).
fn shared_key(prefix: &str, cache_key: &str) -> String {
    format!("{prefix}{}", hex(&Sha256::digest(cache_key.as_bytes())))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A verdict as the shared cache keeps it (JSON).
fn freeze(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Deny => json!({ "deny": true }).to_string(),
        Verdict::Allow {
            grant, document, ..
        } => {
            let context: Vec<Value> = grant
                .context
                .iter()
                .map(|(name, value)| {
                    let value = match value {
                        ContextValue::Text(text) => json!(text),
                        ContextValue::Number(n) => json!(n),
                        ContextValue::Boolean(b) => json!(b),
                    };
                    json!([name, value])
                })
                .collect();
            json!({
                "principalId": grant.principal_id,
                "context": context,
                "usageIdentifierKey": grant.usage_identifier_key,
                "policy": document,
            })
            .to_string()
        }
    }
}
