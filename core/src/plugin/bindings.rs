//! Bindings of the `portico:plugin` worlds (`wit/`, a link to bindings/wit), and their
//! conversions to and from the plain types of [`super::call`]: the only place WIT-generated
//! types are named. All worlds share one set of interface modules, so one host implementation
//! serves them all.

use std::borrow::Cow;

use wasmtime::component::types::ComponentItem;
use wasmtime::component::{
    ComponentExportIndex, ComponentType, Func, Instance, InstancePre, Lower, TypedFunc,
};
use wasmtime::Store;

use super::call::{
    AuthCall, AuthGrant, AuthVerdict, AuthorizerContext, AuthorizerKind, CallRequest, CallResponse,
    ContextValue,
};

/// The `lazy-integration` world, and the interfaces every world shares (generated here, as
/// this world is the one that refers to the `incoming-request` resource).
pub(super) mod lazy_integration {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "lazy-integration",
        additional_derives: [PartialEq],
        imports: { "portico:plugin/kv": async | trappable, default: trappable },
        exports: { default: async },
        with: { "portico:plugin/types.incoming-request": super::IncomingRequest },
    });
}

/// The host side of the `incoming-request` resource: the request record of one call, which
/// the plugin reads field by field (see `imports`).
pub struct IncomingRequest(pub(super) types::Request);

/// A world whose interfaces are the shared ones (generated with `lazy_integration`), so that
/// one host implementation serves every world.
macro_rules! world_of_shared_interfaces {
    ($(#[$doc:meta])* $module:ident, $world:literal) => {
        $(#[$doc])*
        pub(super) mod $module {
            wasmtime::component::bindgen!({
                path: "wit",
                world: $world,
                imports: { default: trappable },
                exports: { default: async },
                with: {
                    "portico:plugin/types": super::lazy_integration::portico::plugin::types,
                    "portico:plugin/kv": super::lazy_integration::portico::plugin::kv,
                    "portico:plugin/log": super::lazy_integration::portico::plugin::log,
                    "portico:plugin/config": super::lazy_integration::portico::plugin::config,
                },
            });
        }
    };
}

// The `integration` world has no bindgen module: its one export, `handle`, is called through
// [`HandleExport`] with a borrowed [`RequestRecord`], and its imports are the shared ones.
world_of_shared_interfaces!(
    /// The `authorizer` world.
    authorizer,
    "authorizer"
);
world_of_shared_interfaces!(
    /// The `lambda` world.
    lambda,
    "lambda"
);

pub(super) use lazy_integration::portico::plugin::{config, kv, log, types};

fn pairs(map: &std::collections::BTreeMap<String, String>) -> Vec<(String, String)> {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

impl From<ContextValue> for types::ContextValue {
    fn from(value: ContextValue) -> Self {
        match value {
            ContextValue::Text(s) => types::ContextValue::Text(s),
            ContextValue::Number(n) => types::ContextValue::Number(n),
            ContextValue::Boolean(b) => types::ContextValue::Boolean(b),
        }
    }
}

impl From<types::ContextValue> for ContextValue {
    fn from(value: types::ContextValue) -> Self {
        match value {
            types::ContextValue::Text(s) => ContextValue::Text(s),
            types::ContextValue::Number(n) => ContextValue::Number(n),
            types::ContextValue::Boolean(b) => ContextValue::Boolean(b),
        }
    }
}

fn context_to_wit(context: Vec<(String, ContextValue)>) -> Vec<(String, types::ContextValue)> {
    context.into_iter().map(|(k, v)| (k, v.into())).collect()
}

impl From<AuthorizerContext> for types::AuthorizerContext {
    fn from(context: AuthorizerContext) -> Self {
        types::AuthorizerContext {
            principal_id: context.principal_id,
            context: context_to_wit(context.context),
        }
    }
}

impl From<CallRequest<'_>> for types::Request {
    fn from(request: CallRequest<'_>) -> Self {
        types::Request {
            method: request.method.to_owned(),
            raw_path: request.raw_path.to_owned(),
            raw_query: request.raw_query.to_owned(),
            query_parameters: request.query_parameters.into_owned(),
            headers: request
                .headers
                .into_iter()
                .map(|(name, value)| (name.into_owned(), value.into_owned()))
                .collect(),
            cookies: request.cookies.into_iter().map(Cow::into_owned).collect(),
            path_parameters: request
                .path_parameters
                .iter()
                .map(|(name, value)| ((*name).to_owned(), value.clone().into_owned()))
                .collect(),
            stage: request.stage.to_owned(),
            stage_variables: pairs(request.stage_variables),
            route_key: request.route_key.to_owned(),
            request_id: request.request_id.to_owned(),
            source_ip: request.source_ip,
            user_agent: request.user_agent.into_owned(),
            request_time_epoch_ms: request.request_time_epoch_ms,
            authorizer: request.authorizer.map(Into::into),
            trace_id: request.trace_id,
            body: request.body.to_vec(),
        }
    }
}

/// The integration world's `request` record as `handle` lowers it: borrowed from the
/// [`CallRequest`], so that each string is copied once, into the plugin's memory.
/// bindgen's [`types::Request`] owns its strings: building one allocated, copied and freed
/// every header's name and value on the host before the lowering copied them again (about 500
/// instructions of a call with one header, and 270 more a header, counted by callgrind on
/// portico-serve).
/// The field names are the WIT's; [`HandleExport::new`] checks the whole record against the
/// component's `handle` when the plugin loads.
#[derive(ComponentType, Lower)]
#[component(record)]
pub(super) struct RequestRecord<'a> {
    method: &'a str,
    #[component(name = "raw-path")]
    raw_path: &'a str,
    #[component(name = "raw-query")]
    raw_query: &'a str,
    #[component(name = "query-parameters")]
    query_parameters: &'a [(String, String)],
    headers: Vec<(&'a str, &'a str)>,
    cookies: Vec<&'a str>,
    #[component(name = "path-parameters")]
    path_parameters: Vec<(&'a str, &'a str)>,
    stage: &'a str,
    #[component(name = "stage-variables")]
    stage_variables: Vec<(&'a str, &'a str)>,
    #[component(name = "route-key")]
    route_key: &'a str,
    #[component(name = "request-id")]
    request_id: &'a str,
    #[component(name = "source-ip")]
    source_ip: &'a str,
    #[component(name = "user-agent")]
    user_agent: &'a str,
    #[component(name = "request-time-epoch-ms")]
    request_time_epoch_ms: u64,
    authorizer: Option<types::AuthorizerContext>,
    #[component(name = "trace-id")]
    trace_id: Option<&'a str>,
    body: &'a [u8],
}

impl<'a> RequestRecord<'a> {
    /// The record of `request`, whose authorizer context it takes (moved, not copied).
    pub(super) fn new(request: &'a mut CallRequest<'_>) -> Self {
        let authorizer = request.authorizer.take().map(Into::into);
        let request: &'a CallRequest<'_> = request;
        let fields = |fields: &'a [(Cow<'_, str>, Cow<'_, str>)]| {
            fields
                .iter()
                .map(|(name, value)| (&**name, &**value))
                .collect()
        };
        RequestRecord {
            method: request.method,
            raw_path: request.raw_path,
            raw_query: request.raw_query,
            query_parameters: &request.query_parameters,
            headers: fields(&request.headers),
            cookies: request.cookies.iter().map(|c| &**c).collect(),
            path_parameters: request
                .path_parameters
                .iter()
                .map(|(name, value)| (*name, &**value))
                .collect(),
            stage: request.stage,
            stage_variables: request
                .stage_variables
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str()))
                .collect(),
            route_key: request.route_key,
            request_id: request.request_id,
            source_ip: &request.source_ip,
            user_agent: &request.user_agent,
            request_time_epoch_ms: request.request_time_epoch_ms,
            authorizer,
            trace_id: request.trace_id.as_deref(),
            body: request.body,
        }
    }
}

/// What the integration world's `handle` returns.
type HandleResult = Result<types::Response, types::PluginError>;

/// The integration world's `handle` export of one component, checked at load against
/// [`RequestRecord`] and found by index in each instance. It stands in for bindgen's
/// `IntegrationPre` and `Integration`: those check the export's types with bindgen's owned
/// record, and `Integration` again in every instance it binds (about 2,400 instructions of a
/// fresh instance, counted by callgrind on portico-serve).
pub(super) struct HandleExport {
    index: ComponentExportIndex,
}

impl HandleExport {
    /// The export of `pre`'s component, its types checked as bindgen's own `IntegrationPre::new`
    /// checks them (with the same `ComponentFunc::typecheck`, which generated code calls).
    pub(super) fn new<T: 'static>(pre: &InstancePre<T>) -> wasmtime::Result<Self> {
        let (item, index) = pre
            .component()
            .get_export(None, "handle")
            .ok_or_else(|| wasmtime::format_err!("no export `handle` found"))?;
        let ComponentItem::ComponentFunc(func) = item else {
            wasmtime::bail!("export `handle` is not a function");
        };
        wasmtime::error::Context::context(
            func.typecheck::<(&RequestRecord<'_>,), (HandleResult,)>(&pre.instance_type()),
            "type-checking export func `handle`",
        )?;
        Ok(HandleExport { index })
    }

    /// `handle` in `instance`, an instance of this export's component.
    pub(super) fn bind<T>(
        &self,
        store: &mut Store<T>,
        instance: &Instance,
    ) -> wasmtime::Result<HandleFunc> {
        instance
            .get_func(&mut *store, self.index)
            .map(HandleFunc)
            .ok_or_else(|| wasmtime::format_err!("no export `handle` found"))
    }
}

/// The `handle` function of one integration instance, its types checked ([`HandleExport`]).
pub(super) struct HandleFunc(Func);

impl HandleFunc {
    /// Calls `handle` with `request`, lowered from where it lies.
    pub(super) async fn call<T: Send>(
        &self,
        store: &mut Store<T>,
        request: &RequestRecord<'_>,
    ) -> wasmtime::Result<HandleResult> {
        // SAFETY: `HandleExport::bind` made this `HandleFunc` from an instance of a component
        // whose `handle` `HandleExport::new` checked against exactly these parameter and
        // result types (a lifetime is no part of a component type). bindgen's own
        // `call_handle` makes its `TypedFunc` the same way.
        let handle =
            unsafe { TypedFunc::<(&RequestRecord<'_>,), (HandleResult,)>::new_unchecked(self.0) };
        let (result,) = handle.call_async(store, (request,)).await?;
        Ok(result)
    }
}

impl From<types::Response> for CallResponse {
    fn from(response: types::Response) -> Self {
        CallResponse {
            status: response.status,
            headers: response.headers,
            cookies: response.cookies,
            body: response.body,
        }
    }
}

impl From<AuthorizerKind> for types::AuthorizerKind {
    fn from(kind: AuthorizerKind) -> Self {
        match kind {
            AuthorizerKind::Token => types::AuthorizerKind::Token,
            AuthorizerKind::Request => types::AuthorizerKind::Request,
        }
    }
}

impl From<AuthCall> for types::AuthRequest {
    fn from(call: AuthCall) -> Self {
        types::AuthRequest {
            kind: call.kind.into(),
            token: call.token,
            identity_source: call.identity_source,
            method_arn: call.method_arn,
            method: call.method,
            raw_path: call.raw_path,
            route_key: call.route_key,
            stage: call.stage,
            request_id: call.request_id,
            source_ip: call.source_ip,
            headers: call.headers,
            query_parameters: call.query_parameters,
            path_parameters: call.path_parameters,
            stage_variables: call.stage_variables,
        }
    }
}

impl From<types::Grant> for AuthGrant {
    fn from(grant: types::Grant) -> Self {
        AuthGrant {
            principal_id: grant.principal_id,
            context: grant
                .context
                .into_iter()
                .map(|(k, v)| (k, v.into()))
                .collect(),
            policy_document: grant.policy_document,
            usage_identifier_key: grant.usage_identifier_key,
        }
    }
}

impl From<types::AuthDecision> for AuthVerdict {
    fn from(decision: types::AuthDecision) -> Self {
        match decision {
            types::AuthDecision::Allow(grant) => AuthVerdict::Allow(grant.into()),
            types::AuthDecision::Deny(grant) => AuthVerdict::Deny(grant.into()),
            types::AuthDecision::Unauthorized => AuthVerdict::Unauthorized,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_request_becomes_the_wit_record_field_by_field() {
        let path_parameters = vec![("id", "42".into())];
        let variables = std::collections::BTreeMap::from([("T".to_owned(), "dev".to_owned())]);
        let request = CallRequest {
            method: "POST",
            raw_path: "/items/42",
            raw_query: "a=1",
            query_parameters: vec![("a".into(), "1".into())].into(),
            headers: vec![("x-h".into(), "v".into())],
            cookies: vec!["c=1".into()],
            path_parameters: &path_parameters,
            stage: "dev",
            stage_variables: &variables,
            route_key: "POST /items/{id}",
            request_id: "rid",
            source_ip: "192.0.2.1".into(),
            user_agent: "ua".into(),
            request_time_epoch_ms: 7,
            authorizer: Some(AuthorizerContext {
                principal_id: "p".into(),
                context: vec![("n".into(), ContextValue::Number(1.5))],
            }),
            body: b"body",
            trace_id: Some("Root=1-5759e988-bd862e3fe1be46a994272793".into()),
        };
        let record = types::Request::from(request);
        assert_eq!(
            record,
            types::Request {
                method: "POST".into(),
                raw_path: "/items/42".into(),
                raw_query: "a=1".into(),
                query_parameters: vec![("a".into(), "1".into())],
                headers: vec![("x-h".into(), "v".into())],
                cookies: vec!["c=1".into()],
                path_parameters: vec![("id".into(), "42".into())],
                stage: "dev".into(),
                stage_variables: vec![("T".into(), "dev".into())],
                route_key: "POST /items/{id}".into(),
                request_id: "rid".into(),
                source_ip: "192.0.2.1".into(),
                user_agent: "ua".into(),
                request_time_epoch_ms: 7,
                authorizer: Some(types::AuthorizerContext {
                    principal_id: "p".into(),
                    context: vec![("n".into(), types::ContextValue::Number(1.5))],
                }),
                trace_id: Some("Root=1-5759e988-bd862e3fe1be46a994272793".into()),
                body: b"body".to_vec(),
            }
        );
    }

    #[test]
    fn a_decision_keeps_its_grant() {
        let grant = types::Grant {
            principal_id: "p".into(),
            context: vec![
                ("t".into(), types::ContextValue::Text("x".into())),
                ("b".into(), types::ContextValue::Boolean(true)),
            ],
            policy_document: Some("{}".into()),
            usage_identifier_key: Some("key".into()),
        };
        let expected = AuthGrant {
            principal_id: "p".into(),
            context: vec![
                ("t".into(), ContextValue::Text("x".into())),
                ("b".into(), ContextValue::Boolean(true)),
            ],
            policy_document: Some("{}".into()),
            usage_identifier_key: Some("key".into()),
        };
        assert_eq!(
            AuthVerdict::from(types::AuthDecision::Allow(grant.clone())),
            AuthVerdict::Allow(expected.clone())
        );
        assert_eq!(
            AuthVerdict::from(types::AuthDecision::Deny(grant)),
            AuthVerdict::Deny(expected)
        );
        assert_eq!(
            AuthVerdict::from(types::AuthDecision::Unauthorized),
            AuthVerdict::Unauthorized
        );
    }
}
