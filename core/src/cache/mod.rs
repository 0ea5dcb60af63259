//! The cache phase (REST APIs): a stage's response cache, as API Gateway's
//! (api-gateway-caching.md), between validate and integrate.
//!
//! A stage with `cache: {enabled: true}` keeps its integrations' answers for `ttlSeconds`
//! (default 300, at most 3600, 0 caches nothing), keyed by the route, the request's method and
//! the values of the route's `cacheKeyParameters`. Only `GET` requests are cached unless the
//! stage's `routeSettings` enable caching for the route. A hit answers without calling the
//! integration; a miss calls it and keeps its answer when it is a 2xx of at most 1,048,576
//! bytes (AWS's "maximum size of a response that can be cached"). Concurrent misses on one key
//! call the integration once (moka's `try_get_with`); the others share its answer.
//!
//! Portico's own rules, stricter than AWS's (which keys only on `cacheKeyParameters`):
//! - a route with an authorizer also keys its answers by the caller (the authorizer's
//!   principal id), so that one caller's answer never reaches another; a caller with no
//!   principal id is not cached at all;
//! - only 2xx answers are kept (AWS documents nothing; a third-party report has a 429 cached).
//!
//! The caches live per gateway ([`ResponseCaches`]): a deployment finds its stage's cache
//! there, so cached answers survive a redeploy, as AWS's cache cluster does; a new `sizeMb`
//! makes a new, empty cache (AWS recreates the cluster). A canary keeps its answers apart
//! unless its `useStageCache` is true.
//!
//! A stage's cache is in this process (moka) by default; with `responseCache: {type: redis}`
//! it is on the rate store's Redis, shared by every gateway of a fleet ([`redis`]): the same
//! keys, rules and single call per key and process, stored for the fleet.

mod redis;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL};
use http::{HeaderMap, Method, Response, StatusCode, Version};
use moka::future::Cache;
use moka::policy::EvictionPolicy;
use moka::Expiry;

use self::redis::RedisCache;
use crate::authorize;
use crate::config::{
    ApiDefinition, CacheDefinition, Protocol, RouteDefinition, SharedStoreKind,
    UnauthorizedCacheControlHeaderStrategy,
};
use crate::error::{Error, KeyPath};
use crate::exchange::Exchange;
use crate::fleet::RedisLink;
use crate::respond::{GatewayError, NotAParameter, RequestParameter, ResponseType};

/// AWS's TTL default and ceiling (api-gateway-caching.md: "The default TTL value for API
/// caching is 300 seconds. The maximum TTL value is 3600 seconds. TTL=0 means caching is
/// disabled.").
const DEFAULT_TTL_SECONDS: u32 = 300;
const MAX_TTL_SECONDS: u32 = 3600;
/// The default capacity: AWS's smallest cache cluster, `cacheClusterSize` "0.5" (GB).
const DEFAULT_SIZE_MB: u32 = 512;
/// The largest: AWS's largest cache cluster, "237" (GB).
const MAX_SIZE_MB: u32 = 237 * 1024;
/// api-gateway-caching.md: "The maximum size of a response that can be cached is 1048576
/// bytes."
const MAX_CACHED_BYTES: usize = 1_048_576;
/// What an answer weighs beyond its body and headers (its status, its key, the map's entry),
/// so that many tiny answers still fill a cache.
const ENTRY_OVERHEAD: usize = 128;

/// The header `SUCCEED_WITH_RESPONSE_HEADER` adds. AWS says only that it adds "a warning
/// header in the response" (api-gateway-caching.md) and no recording shows it: the name and
/// text are Portico's choice, an RFC 7234 `Warning` with the miscellaneous code 199.
const IGNORED_CACHE_CONTROL_WARNING: &str =
    "199 - \"Cache-Control: max-age=0 ignored: the caller may not invalidate the cache\"";

/// Every stage cache of a gateway, by API id and stage: what outlives a deployment. A
/// deployment holds its stages' caches; this only finds them again for the next deployment and
/// for a flush.
#[derive(Default)]
pub(crate) struct ResponseCaches {
    /// The caches made for each stage, newest last (an older one lives on while a kept
    /// deployment that was compiled with another size holds it).
    stages: Mutex<StageCacheMap>,
}

/// Each (API id, stage)'s caches.
type StageCacheMap = HashMap<(String, String), Vec<Weak<StageCache>>>;

/// What a stage's cache is to be: `capacity` bytes in this process, or on a Redis.
enum Wanted {
    Memory(u64),
    Redis(Arc<RedisLink>),
}

impl ResponseCaches {
    /// Stage `stage` of API `api_id`'s cache as `wanted`: the one it has when it is the same
    /// (the same size, or the same Redis: its answers kept), else a new one.
    fn stage(&self, api_id: &str, stage: &str, wanted: Wanted) -> Result<Arc<StageCache>, Error> {
        let mut stages = self
            .stages
            .lock()
            .map_err(|_| Error::Release("the response caches' lock is poisoned".into()))?;
        stages.retain(|_, caches| {
            caches.retain(|cache| cache.strong_count() > 0);
            !caches.is_empty()
        });
        let caches = stages
            .entry((api_id.to_owned(), stage.to_owned()))
            .or_default();
        let same = caches
            .iter()
            .rev()
            .filter_map(Weak::upgrade)
            .find(|cache| cache.is(&wanted));
        if let Some(cache) = same {
            return Ok(cache);
        }
        let cache = Arc::new(match wanted {
            Wanted::Memory(capacity) => StageCache::memory(capacity),
            Wanted::Redis(link) => StageCache::Redis(RedisCache::new(link, api_id, stage)),
        });
        caches.push(Arc::downgrade(&cache));
        Ok(cache)
    }

    /// Forgets every answer cached for stage `stage` of API `api_id` (AWS's FlushStageCache):
    /// in this process, and on Redis for every gateway of the fleet. A Redis that does not
    /// answer is [`Error::Unavailable`].
    pub(crate) async fn flush(&self, api_id: &str, stage: &str) -> Result<(), Error> {
        let caches: Vec<Arc<StageCache>> = {
            let stages = self
                .stages
                .lock()
                .map_err(|_| Error::Release("the response caches' lock is poisoned".into()))?;
            let key = (api_id.to_owned(), stage.to_owned());
            stages
                .get(&key)
                .into_iter()
                .flatten()
                .filter_map(Weak::upgrade)
                .collect()
        };
        for cache in caches {
            match &*cache {
                StageCache::Memory { answers, .. } => answers.invalidate_all(),
                StageCache::Redis(shared) => shared.flush().await?,
            }
        }
        Ok(())
    }
}

/// One stage's cache.
enum StageCache {
    /// In this process: answers weighed by their bytes, each expiring after its route's TTL,
    /// the least recently used evicted first when it is full.
    Memory {
        capacity: u64,
        answers: Cache<CacheKey, Arc<CachedAnswer>>,
    },
    /// On the fleet's Redis.
    Redis(RedisCache),
}

impl StageCache {
    fn memory(capacity: u64) -> Self {
        let answers = Cache::builder()
            .max_capacity(capacity)
            .weigher(|_key: &CacheKey, answer: &Arc<CachedAnswer>| answer.weight)
            .expire_after(PerAnswerTtl)
            // LRU rather than moka's default TinyLFU admission: an answer just fetched is
            // always kept, and the oldest ones make room, as a response cache is expected to.
            .eviction_policy(EvictionPolicy::lru())
            .build();
        StageCache::Memory { capacity, answers }
    }

    /// Whether this is the cache `wanted` asks for.
    fn is(&self, wanted: &Wanted) -> bool {
        match (self, wanted) {
            (StageCache::Memory { capacity, .. }, Wanted::Memory(wanted)) => capacity == wanted,
            (StageCache::Redis(shared), Wanted::Redis(link)) => Arc::ptr_eq(shared.link(), link),
            _ => false,
        }
    }
}

/// Each answer expires after its route's TTL, counted from when it was stored (a refresh by
/// `Cache-Control: max-age=0` starts it again).
struct PerAnswerTtl;

impl Expiry<CacheKey, Arc<CachedAnswer>> for PerAnswerTtl {
    fn expire_after_create(
        &self,
        _key: &CacheKey,
        answer: &Arc<CachedAnswer>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(answer.ttl)
    }

    fn expire_after_update(
        &self,
        _key: &CacheKey,
        answer: &Arc<CachedAnswer>,
        _updated_at: Instant,
        _left: Option<Duration>,
    ) -> Option<Duration> {
        Some(answer.ttl)
    }
}

/// What a cached answer is filed under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    /// The route key (method and resource path), compiled once per route.
    route: Arc<str>,
    /// The canary's own entries, when it does not share the stage's.
    canary: bool,
    /// The request's method (an `ANY` route serves several).
    method: Method,
    /// Each key parameter's values, in the route's order (none: absent).
    values: Box<[Box<[String]>]>,
    /// The caller's principal id, on a route with an authorizer.
    caller: Option<String>,
}

/// An integration's answer as the cache keeps it.
#[derive(Debug)]
struct CachedAnswer {
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    body: Bytes,
    ttl: Duration,
    /// What it counts for against the cache's capacity.
    weight: u32,
}

impl CachedAnswer {
    /// `response` kept for `ttl`, when it may be: a 2xx of at most [`MAX_CACHED_BYTES`].
    fn of(response: &Response<Bytes>, ttl: Duration) -> Option<Arc<Self>> {
        if !response.status().is_success() || response.body().len() > MAX_CACHED_BYTES {
            return None;
        }
        Some(Self::new(
            response.status(),
            response.version(),
            response.headers().clone(),
            response.body().clone(),
            ttl,
        ))
    }

    /// An answer of these parts, weighed.
    fn new(
        status: StatusCode,
        version: Version,
        headers: HeaderMap,
        body: Bytes,
        ttl: Duration,
    ) -> Arc<Self> {
        let header_bytes: usize = headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len())
            .sum();
        let weight = body.len() + header_bytes + ENTRY_OVERHEAD;
        Arc::new(CachedAnswer {
            status,
            version,
            headers,
            body,
            ttl,
            weight: u32::try_from(weight).unwrap_or(u32::MAX),
        })
    }

    /// A new response with the kept status, headers and body (the body is shared, not copied).
    fn response(&self) -> Response<Bytes> {
        let mut response = Response::new(self.body.clone());
        *response.status_mut() = self.status;
        *response.version_mut() = self.version;
        *response.headers_mut() = self.headers.clone();
        response
    }
}

/// An answer not kept (not a 2xx, too large, a refusal), shared with the requests that waited
/// for it on the same key.
struct Uncached(Result<Response<Bytes>, GatewayError>);

impl Uncached {
    /// The answer, taken back when no other request shares it, else copied.
    fn into_outcome(shared: Arc<Uncached>) -> Result<Response<Bytes>, GatewayError> {
        match Arc::try_unwrap(shared) {
            Ok(Uncached(outcome)) => outcome,
            Err(shared) => match &shared.0 {
                Ok(response) => {
                    let mut copy = Response::new(response.body().clone());
                    *copy.status_mut() = response.status();
                    *copy.version_mut() = response.version();
                    *copy.headers_mut() = response.headers().clone();
                    Ok(copy)
                }
                Err(error) => Err(error.clone()),
            },
        }
    }
}

/// A request parameter whose values key the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyParameter(RequestParameter);

impl KeyParameter {
    /// Reads one `cacheKeyParameters` entry of route `route_key` (at `at`): AWS's
    /// `method.request.{querystring|multivaluequerystring|header|multivalueheader|path}.NAME`,
    /// or an HTTP API's `$request.{querystring|header|path}.NAME`.
    fn parse(text: &str, route_key: &str, at: &KeyPath) -> Result<Self, Error> {
        let unknown = || {
            Error::config(
                at.clone(),
                format!(
                    "\"{text}\" is not a cache key parameter: expected method.request.querystring.NAME, method.request.header.NAME or method.request.path.NAME (or $request.querystring.NAME, ...)"
                ),
            )
        };
        let rest = text
            .strip_prefix("method.request.")
            .or_else(|| text.strip_prefix("$request."))
            .ok_or_else(unknown)?;
        let (parameter, name) = match RequestParameter::parse(rest, true) {
            Ok(parsed) => parsed,
            Err(NotAParameter::HeaderName(name)) => {
                return Err(Error::config(
                    at.clone(),
                    format!("\"{name}\" is not a header name"),
                ));
            }
            Err(_) => return Err(unknown()),
        };
        if matches!(parameter, RequestParameter::Path(_))
            && !route_key.contains(&format!("{{{name}}}"))
            && !route_key.contains(&format!("{{{name}+}}"))
        {
            return Err(Error::config(
                at.clone(),
                format!("route \"{route_key}\" has no path parameter \"{name}\""),
            ));
        }
        Ok(KeyParameter(parameter))
    }

    /// The request's values of this parameter (none when it is absent).
    fn values(&self, x: &Exchange<'_>) -> Box<[String]> {
        match &self.0 {
            RequestParameter::Query(name) => x
                .query()
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, value)| value.clone())
                .collect(),
            RequestParameter::Header(name) => x
                .parts
                .headers
                .get_all(name)
                .iter()
                .map(|value| crate::net::text(value.as_bytes()).into_owned())
                .collect(),
            RequestParameter::Path(name) => x
                .path_params
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, value)| value.as_ref().to_owned())
                .collect(),
        }
    }
}

/// What a `Cache-Control: max-age=0` may do on a stage.
#[derive(Debug, Clone, Copy)]
struct Invalidation {
    require_authorization: bool,
    strategy: UnauthorizedCacheControlHeaderStrategy,
}

/// A stage's cache settings, compiled once per stage; each route's are made from them.
pub(crate) struct StageCaching<'d> {
    /// The stage's cache, TTL and invalidation rules, when it has an enabled cache.
    cache: Option<(Arc<StageCache>, u32, Invalidation)>,
    /// Whether this is a canary that keeps its answers apart from the stage's.
    canary_apart: bool,
    definition: &'d ApiDefinition,
    stage: &'d str,
}

/// Where an API's stage caches keep their answers: the gateway's [`ResponseCaches`], and the
/// rate store's Redis when `responseCache` is `{type: redis}`. Checked once per API.
pub(crate) struct CacheStores<'g> {
    caches: &'g ResponseCaches,
    redis: Option<Arc<RedisLink>>,
}

impl<'g> CacheStores<'g> {
    /// Checks `definition`'s `responseCache`: a REST API setting, and `redis` needs the rate
    /// store's Redis (`redis`), as `kvStore` and `authorizerCache` do.
    pub(crate) fn compile(
        definition: &ApiDefinition,
        caches: &'g ResponseCaches,
        redis: Option<&Arc<RedisLink>>,
    ) -> Result<Self, Error> {
        let at = KeyPath::root().key("responseCache");
        let redis = match definition.response_cache.map(|c| c.kind) {
            None => None,
            Some(_) if definition.protocol != Protocol::Rest => {
                return Err(Error::config(
                    at,
                    "the response cache is a REST API feature (protocol: rest), as in API Gateway: HTTP APIs have no cache",
                ))
            }
            Some(SharedStoreKind::Local) => None,
            Some(SharedStoreKind::Redis) => Some(Arc::clone(redis.ok_or_else(|| {
                Error::config(
                    at.key("type"),
                    "a redis cache needs a Redis server: set rateStore: {type: redis, url: ...} (or start portico-serve with --redis URL)",
                )
            })?)),
        };
        Ok(CacheStores { caches, redis })
    }
}

impl<'d> StageCaching<'d> {
    /// Checks stage `stage`'s `cache` and its routes' `caching` and finds its cache in
    /// `stores`; `canary_apart` for a canary whose `useStageCache` is false.
    pub(crate) fn compile(
        definition: &'d ApiDefinition,
        stage: &'d str,
        api_id: &str,
        canary_apart: bool,
        stores: &CacheStores<'_>,
    ) -> Result<Self, Error> {
        let at = KeyPath::root().key("stages").key(stage);
        let Some(stage_def) = definition.stages.get(stage) else {
            return Ok(StageCaching {
                cache: None,
                canary_apart,
                definition,
                stage,
            });
        };
        let rest = definition.protocol == Protocol::Rest;
        let not_rest = |at: KeyPath| {
            Error::config(
                at,
                "the response cache is a REST API feature (protocol: rest), as in API Gateway: HTTP APIs have no cache",
            )
        };
        let settings = stage_def.cache.as_ref();
        if settings.is_some() && !rest {
            return Err(not_rest(at.key("cache")));
        }
        let enabled = settings.is_some_and(|s| s.enabled);
        for (route_key, route_settings) in stage_def.route_settings.iter() {
            let Some(caching) = &route_settings.caching else {
                continue;
            };
            let at = at.key("routeSettings").key(route_key).key("caching");
            if !rest {
                return Err(not_rest(at));
            }
            if let Some(ttl) = caching.ttl_seconds {
                check_ttl(ttl, &at.key("ttlSeconds"))?;
            }
            if caching.enabled == Some(true) && !enabled {
                return Err(Error::config(
                    at.key("enabled"),
                    format!("caching a route needs the stage's cache: set stages.{stage}.cache.enabled to true"),
                ));
            }
        }
        let cache = match settings {
            Some(settings) => compile_stage_cache(settings, api_id, stage, stores, &at)?,
            None => None,
        };
        Ok(StageCaching {
            cache,
            canary_apart,
            definition,
            stage,
        })
    }

    /// Route `route_key`'s caching on this stage (its `cacheKeyParameters` at `at`, checked
    /// even when the stage caches nothing).
    pub(crate) fn route(
        &self,
        route_key: &str,
        route: &RouteDefinition,
        at: &KeyPath,
    ) -> Result<RouteCache, Error> {
        let at = at.key("cacheKeyParameters");
        if !route.cache_key_parameters.is_empty() && self.definition.protocol != Protocol::Rest {
            return Err(Error::config(
                at,
                "cacheKeyParameters key a REST API's response cache (protocol: rest): HTTP APIs have no cache",
            ));
        }
        let key_parameters = route
            .cache_key_parameters
            .iter()
            .enumerate()
            .map(|(i, text)| KeyParameter::parse(text, route_key, &at.index(i)))
            .collect::<Result<Vec<_>, _>>()?;
        let Some((store, stage_ttl, invalidation)) = &self.cache else {
            return Ok(RouteCache(None));
        };
        let caching = self
            .definition
            .stages
            .get(self.stage)
            .and_then(|s| s.route_settings.get(route_key))
            .and_then(|s| s.caching.as_ref());
        let enabled = caching.and_then(|c| c.enabled);
        let ttl = caching.and_then(|c| c.ttl_seconds).unwrap_or(*stage_ttl);
        if enabled == Some(false) || ttl == 0 {
            return Ok(RouteCache(None));
        }
        Ok(RouteCache(Some(Box::new(CachedRoute {
            store: Arc::clone(store),
            ttl: Duration::from_secs(u64::from(ttl)),
            // api-gateway-caching.md: "only GET methods have caching enabled by default ...
            // You can enable caching for other methods by overriding method settings."
            every_method: enabled == Some(true),
            key_parameters,
            by_caller: route.authorizer.is_some(),
            route: route_key.into(),
            canary: self.canary_apart,
            invalidation: *invalidation,
        }))))
    }
}

/// The stage's cache, when `settings` enable one with a TTL above 0.
fn compile_stage_cache(
    settings: &CacheDefinition,
    api_id: &str,
    stage: &str,
    stores: &CacheStores<'_>,
    at: &KeyPath,
) -> Result<Option<(Arc<StageCache>, u32, Invalidation)>, Error> {
    let at = at.key("cache");
    let ttl = settings.ttl_seconds.unwrap_or(DEFAULT_TTL_SECONDS);
    check_ttl(ttl, &at.key("ttlSeconds"))?;
    if let (Some(_), Some(_)) = (settings.size_mb, &stores.redis) {
        // Not honoured, so refused: Redis keeps what its own memory allows.
        return Err(Error::config(
            at.key("sizeMb"),
            "sizes a cache in this process; a cache on Redis (responseCache: {type: redis}) is bounded by Redis's own maxmemory: remove sizeMb",
        ));
    }
    let size_mb = settings.size_mb.unwrap_or(DEFAULT_SIZE_MB);
    if !(1..=MAX_SIZE_MB).contains(&size_mb) {
        return Err(Error::config(
            at.key("sizeMb"),
            format!("{size_mb} is not a cache size: expected 1 to {MAX_SIZE_MB} (237 GB, AWS's largest cache)"),
        ));
    }
    if !settings.enabled {
        return Ok(None);
    }
    let invalidation = Invalidation {
        // AWS's recorded method settings (LocalStack test_apigateway_common.snapshot.json,
        // `TestStages::test_create_update_stages`): `"requireAuthorizationForCacheControl":
        // true, "unauthorizedCacheControlHeaderStrategy": "SUCCEED_WITH_RESPONSE_HEADER"`.
        require_authorization: settings
            .require_authorization_for_cache_control
            .unwrap_or(true),
        strategy: settings
            .unauthorized_cache_control_header_strategy
            .unwrap_or(UnauthorizedCacheControlHeaderStrategy::SucceedWithResponseHeader),
    };
    let wanted = match &stores.redis {
        Some(link) => Wanted::Redis(Arc::clone(link)),
        None => Wanted::Memory(u64::from(size_mb) * 1024 * 1024),
    };
    let cache = stores.caches.stage(api_id, stage, wanted)?;
    Ok(Some((cache, ttl, invalidation)))
}

fn check_ttl(ttl: u32, at: &KeyPath) -> Result<(), Error> {
    if ttl > MAX_TTL_SECONDS {
        return Err(Error::config(
            at.clone(),
            format!("{ttl} is over the longest TTL, {MAX_TTL_SECONDS} seconds (0 caches nothing)"),
        ));
    }
    Ok(())
}

/// A route's caching on one stage: none (boxed otherwise, so that an uncached route's compiled
/// form stays small).
pub(crate) struct RouteCache(Option<Box<CachedRoute>>);

struct CachedRoute {
    store: Arc<StageCache>,
    ttl: Duration,
    /// Whether requests of every method are cached, not only `GET`.
    every_method: bool,
    key_parameters: Vec<KeyParameter>,
    /// Whether the caller's principal id is part of the key (the route has an authorizer).
    by_caller: bool,
    route: Arc<str>,
    canary: bool,
    invalidation: Invalidation,
}

/// A request the cache may answer: its key and what its `Cache-Control` asked.
pub(crate) struct Lookup<'r> {
    route: &'r CachedRoute,
    key: CacheKey,
    /// `Cache-Control: max-age=0` from a caller who may: fetch and replace the entry.
    refresh: bool,
    /// `Cache-Control: max-age=0` ignored: say so in a header (`SUCCEED_WITH_RESPONSE_HEADER`).
    warn: bool,
    /// A cache on Redis: when the request stops waiting for it (its `timeoutMs` budget).
    redis_deadline: Option<Instant>,
}

/// The cache phase, before the integration: `None` when the cache has no say (no cache on the
/// route, a method it does not cache, a caller with no identity), else the request's
/// [`Lookup`]; a refused `Cache-Control: max-age=0` (`FAIL_WITH_403`) answers 403.
pub(crate) fn phase<'r>(
    route: &'r RouteCache,
    x: &Exchange<'_>,
) -> Result<Option<Lookup<'r>>, GatewayError> {
    let Some(cached) = route.0.as_deref() else {
        return Ok(None);
    };
    if !cached.every_method && x.parts.method != Method::GET {
        return Ok(None);
    }
    let caller = if cached.by_caller {
        // Portico's rule (AWS keys only on cacheKeyParameters): a route with an authorizer
        // caches per caller.
        match x.caller.authorization.as_ref().map(|a| a.principal_id()) {
            Some(id) if !id.is_empty() => Some(id.to_owned()),
            _ => return Ok(None),
        }
    } else {
        None
    };
    let mut refresh = false;
    let mut warn = false;
    if asks_for_fresh(&x.parts.headers) {
        let rules = cached.invalidation;
        // api-gateway-caching.md: "If you don't impose an InvalidateCache policy (or choose
        // the Require authorization check box in the console), any client can invalidate the
        // API cache."
        let allowed = !rules.require_authorization
            || x.caller
                .authorization
                .as_ref()
                .is_some_and(|authorization| {
                    authorization.may_invalidate_cache(&authorize::request_method_arn(x))
                });
        match (allowed, rules.strategy) {
            (true, _) => refresh = true,
            // api-gateway-caching.md: FAIL_WITH_403 "returns a 403 Unauthorized response";
            // the body's text follows those words (no recording shows it).
            (false, UnauthorizedCacheControlHeaderStrategy::FailWith403) => {
                return Err(GatewayError::new(
                    ResponseType::AccessDenied,
                    "Unauthorized",
                ))
            }
            (false, UnauthorizedCacheControlHeaderStrategy::SucceedWithResponseHeader) => {
                warn = true
            }
            (false, _) => {}
        }
    }
    let key = CacheKey {
        route: Arc::clone(&cached.route),
        canary: cached.canary,
        method: x.parts.method.clone(),
        values: cached
            .key_parameters
            .iter()
            .map(|parameter| parameter.values(x))
            .collect(),
        caller,
    };
    let redis_deadline = match &*cached.store {
        StageCache::Redis(shared) => Some(x.redis_budget.deadline(shared.link().timeout())),
        StageCache::Memory { .. } => None,
    };
    Ok(Some(Lookup {
        route: cached,
        key,
        refresh,
        warn,
        redis_deadline,
    }))
}

/// Whether the request's `Cache-Control` has `max-age=0` (the invalidation AWS documents).
fn asks_for_fresh(headers: &HeaderMap) -> bool {
    headers.get_all(CACHE_CONTROL).iter().any(|value| {
        value.to_str().is_ok_and(|text| {
            text.split(',').any(|directive| {
                directive
                    .trim()
                    .split_once('=')
                    .is_some_and(|(name, value)| {
                        name.trim().eq_ignore_ascii_case("max-age") && value.trim() == "0"
                    })
            })
        })
    })
}

/// What the cache phase answered: the answer, and whether it came from the cache.
pub(crate) struct Answered {
    outcome: Result<Response<Bytes>, GatewayError>,
    hit: bool,
}

impl Lookup<'_> {
    /// The cached answer, or `fetch`'s (the integration's), kept when it may be. Concurrent
    /// misses on one key await one `fetch`; the others count as hits (their integration is
    /// never called).
    pub(crate) async fn answer<F>(self, fetch: F) -> Answered
    where
        F: Future<Output = Result<Response<Bytes>, GatewayError>> + Send,
    {
        let Lookup {
            route,
            key,
            refresh,
            warn,
            redis_deadline,
        } = self;
        let (outcome, hit) = match &*route.store {
            StageCache::Memory { answers, .. } => {
                from_memory(answers, key, refresh, route.ttl, fetch).await
            }
            StageCache::Redis(shared) => {
                // Always set for a cache on Redis; none left would only make it a miss.
                let deadline = redis_deadline.unwrap_or_else(Instant::now);
                shared
                    .answer(key, refresh, route.ttl, deadline, fetch)
                    .await
            }
        };
        let mut answered = Answered { outcome, hit };
        if let (true, Ok(response)) = (warn, answered.outcome.as_mut()) {
            response.headers_mut().append(
                http::header::WARNING,
                HeaderValue::from_static(IGNORED_CACHE_CONTROL_WARNING),
            );
        }
        answered
    }
}

/// [`Lookup::answer`] on a cache in this process: the answer, and whether it is a hit.
async fn from_memory<F>(
    answers: &Cache<CacheKey, Arc<CachedAnswer>>,
    key: CacheKey,
    refresh: bool,
    ttl: Duration,
    fetch: F,
) -> (Result<Response<Bytes>, GatewayError>, bool)
where
    F: Future<Output = Result<Response<Bytes>, GatewayError>> + Send,
{
    if refresh {
        let outcome = fetch.await;
        if let Some(answer) = outcome.as_ref().ok().and_then(|r| CachedAnswer::of(r, ttl)) {
            answers.insert(key, answer).await;
            answers.run_pending_tasks().await;
        }
        return (outcome, false);
    }
    let mut fetched = false;
    let loaded = answers
        .try_get_with(key, async {
            fetched = true;
            let outcome = fetch.await;
            match outcome.as_ref().ok().and_then(|r| CachedAnswer::of(r, ttl)) {
                Some(answer) => Ok(answer),
                None => Err(Uncached(outcome)),
            }
        })
        .await;
    if fetched {
        // Evictions are settled now, so that the cache never stays over its size.
        answers.run_pending_tasks().await;
    }
    let outcome = match loaded {
        Ok(answer) => Ok(answer.response()),
        Err(uncached) => Uncached::into_outcome(uncached),
    };
    (outcome, !fetched)
}

impl Answered {
    /// The answer, recorded for the log (`$context.cacheHit`, the hit and miss counters).
    pub(crate) fn settle(self, x: &mut Exchange<'_>) -> Result<Response<Bytes>, GatewayError> {
        x.record.cached(self.hit);
        self.outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Format;

    fn definition(text: &str) -> ApiDefinition {
        ApiDefinition::from_str_as(text, Format::Yaml).unwrap()
    }

    /// The error compiling stage `prod` and its route `GET /items/{id}`, if any.
    fn error_of(text: &str) -> Option<String> {
        let def = definition(text);
        let caches = ResponseCaches::default();
        let outcome = CacheStores::compile(&def, &caches, None)
            .and_then(|stores| StageCaching::compile(&def, "prod", "api", false, &stores))
            .and_then(|s| {
                let (key, route) = def.routes.iter().next().expect("a route");
                s.route(key, route, &KeyPath::root().key("routes").key(key))
            });
        outcome.err().map(|e| e.to_string())
    }

    const REST: &str = "name: t\nprotocol: rest\nroutes:\n  GET /items/{id}:\n    integration: {type: mock}\n    cacheKeyParameters: KEYS\nstages:\n  prod:\n    cache: CACHE\n    routeSettings:\n      GET /items/{id}: SETTINGS\n";

    fn rest(keys: &str, cache: &str, settings: &str) -> String {
        REST.replace("KEYS", keys)
            .replace("CACHE", cache)
            .replace("SETTINGS", settings)
    }

    #[test]
    fn settings_are_checked_at_their_key_path() {
        let ok = rest(
            "[method.request.querystring.page, method.request.header.X-Tenant, method.request.path.id, $request.querystring.q]",
            "{enabled: true, ttlSeconds: 3600, sizeMb: 1}",
            "{caching: {enabled: true, ttlSeconds: 0}}",
        );
        assert_eq!(error_of(&ok), None);
        let cases = [
            (
                rest("[]", "{enabled: true, ttlSeconds: 3601}", "{}"),
                "stages.prod.cache.ttlSeconds",
            ),
            (
                rest("[]", "{enabled: true, sizeMb: 0}", "{}"),
                "stages.prod.cache.sizeMb",
            ),
            (
                rest("[]", "{enabled: true}", "{caching: {ttlSeconds: 7200}}"),
                "stages.prod.routeSettings.\"GET /items/{id}\".caching.ttlSeconds",
            ),
            (
                rest("[]", "{enabled: false}", "{caching: {enabled: true}}"),
                "stages.prod.routeSettings.\"GET /items/{id}\".caching.enabled",
            ),
            (
                rest("[method.request.body.page]", "{enabled: true}", "{}"),
                "routes.\"GET /items/{id}\".cacheKeyParameters[0]",
            ),
            (
                rest(
                    "[method.request.querystring.a, page]",
                    "{enabled: true}",
                    "{}",
                ),
                "routes.\"GET /items/{id}\".cacheKeyParameters[1]",
            ),
            (
                rest("[method.request.path.other]", "{enabled: true}", "{}"),
                "routes.\"GET /items/{id}\".cacheKeyParameters[0]",
            ),
            (
                rest(
                    "[method.request.header.bad header]",
                    "{enabled: true}",
                    "{}",
                ),
                "routes.\"GET /items/{id}\".cacheKeyParameters[0]",
            ),
            (
                rest("[]", "{enabled: true}", "{}").replace("protocol: rest", "protocol: http"),
                "stages.prod.cache",
            ),
            (
                rest("[method.request.querystring.a]", "{enabled: true}", "{}")
                    .replace("protocol: rest", "protocol: http")
                    .replace("    cache: {enabled: true}\n", ""),
                "routes.\"GET /items/{id}\".cacheKeyParameters",
            ),
        ];
        let mut failures = Vec::new();
        for (text, path) in cases {
            match error_of(&text) {
                Some(error) if error.contains(path) => {}
                other => failures.push(format!("{path}: {other:?}")),
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
        // The strategy is an enum: a misspelling is refused by serde, at its key.
        let error = ApiDefinition::from_str_as(
            &rest(
                "[]",
                "{enabled: true, unauthorizedCacheControlHeaderStrategy: FAIL}",
                "{}",
            ),
            Format::Yaml,
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("stages.prod.cache.unauthorizedCacheControlHeaderStrategy"),
            "{error}"
        );
    }

    #[test]
    fn response_cache_settings_are_checked_at_their_key_path() {
        let link = Arc::new(
            RedisLink::open(
                &crate::config::RedisDefinition::new("redis://127.0.0.1:1"),
                &KeyPath::root(),
            )
            .unwrap(),
        );
        let caches = ResponseCaches::default();
        let compile = |text: &str, redis: Option<&Arc<RedisLink>>| {
            let def = definition(text);
            CacheStores::compile(&def, &caches, redis)
                .and_then(|stores| StageCaching::compile(&def, "prod", "api", false, &stores))
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        let on_redis = format!(
            "{}responseCache: {{type: redis}}\n",
            rest("[]", "{enabled: true}", "{}")
        );
        assert_eq!(compile(&on_redis, Some(&link)), Ok(()));
        let mut failures = Vec::new();
        let cases = [
            (on_redis.clone(), None, "responseCache.type"),
            (
                on_redis.replace("{enabled: true}", "{enabled: true, sizeMb: 64}"),
                Some(&link),
                "stages.prod.cache.sizeMb",
            ),
            (
                on_redis
                    .replace("protocol: rest", "protocol: http")
                    .replace("    cache: {enabled: true}\n", "")
                    .replace("    routeSettings:\n      GET /items/{id}: {}\n", ""),
                Some(&link),
                "responseCache",
            ),
        ];
        for (text, redis, path) in cases {
            match compile(&text, redis) {
                Err(error) if error.starts_with(&format!("{path}: ")) => {}
                other => failures.push(format!("{path}: {other:?}")),
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
        // `memory` (or `local`) is the default, and sizes the cache as before.
        let in_memory = on_redis.replace("{type: redis}", "{type: memory}");
        assert_eq!(compile(&in_memory, None), Ok(()));
    }

    #[test]
    fn a_stage_finds_its_cache_again_unless_its_size_or_its_redis_changed() {
        let caches = ResponseCaches::default();
        let memory = |mb: u64| Wanted::Memory(mb << 20);
        let first = caches.stage("api", "prod", memory(1)).unwrap();
        let again = caches.stage("api", "prod", memory(1)).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        let other = caches.stage("api", "dev", memory(1)).unwrap();
        assert!(!Arc::ptr_eq(&first, &other));
        let bigger = caches.stage("api", "prod", memory(2)).unwrap();
        assert!(!Arc::ptr_eq(&first, &bigger));
        drop((first, again, other, bigger));
        let fresh = caches.stage("api", "prod", memory(1)).unwrap();
        assert!(
            matches!(&*fresh, StageCache::Memory { answers, .. } if answers.entry_count() == 0)
        );
        // On Redis: the same connection (the rate store kept across reloads) finds the same
        // cache; another Redis, or memory, is another cache.
        let link = |url: &str| {
            let settings = crate::config::RedisDefinition::new(url);
            Arc::new(RedisLink::open(&settings, &KeyPath::root()).unwrap())
        };
        let (one, two) = (link("redis://127.0.0.1:1"), link("redis://127.0.0.1:2"));
        let shared = caches
            .stage("api", "prod", Wanted::Redis(Arc::clone(&one)))
            .unwrap();
        let same = caches
            .stage("api", "prod", Wanted::Redis(Arc::clone(&one)))
            .unwrap();
        assert!(Arc::ptr_eq(&shared, &same));
        let elsewhere = caches.stage("api", "prod", Wanted::Redis(two)).unwrap();
        assert!(!Arc::ptr_eq(&shared, &elsewhere));
        assert!(!Arc::ptr_eq(&shared, &fresh));
    }

    #[test]
    fn max_age_zero_is_read_among_other_directives() {
        let headers = |values: &[&str]| {
            let mut map = HeaderMap::new();
            for value in values {
                map.append(CACHE_CONTROL, HeaderValue::from_str(value).unwrap());
            }
            map
        };
        assert!(asks_for_fresh(&headers(&["max-age=0"])));
        assert!(asks_for_fresh(&headers(&["no-store, Max-Age = 0"])));
        assert!(asks_for_fresh(&headers(&["no-cache", "max-age=0"])));
        assert!(!asks_for_fresh(&headers(&["max-age=10"])));
        assert!(!asks_for_fresh(&headers(&["no-cache"])));
        assert!(!asks_for_fresh(&headers(&[])));
    }

    #[test]
    fn only_small_successful_answers_are_kept() {
        let answer = |status: u16, bytes: usize| {
            let mut response = Response::new(Bytes::from(vec![b'a'; bytes]));
            *response.status_mut() = StatusCode::from_u16(status).unwrap();
            CachedAnswer::of(&response, Duration::from_secs(1)).is_some()
        };
        assert!(answer(200, 10));
        assert!(answer(204, 0));
        assert!(answer(200, MAX_CACHED_BYTES));
        assert!(!answer(200, MAX_CACHED_BYTES + 1));
        assert!(!answer(404, 10));
        assert!(!answer(500, 10));
        assert!(!answer(302, 10));
    }
}
