//! The integrate phase: what answers a matched route.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, Response, StatusCode};

use crate::config::{IntegrationDefinition, IntegrationType};
use crate::error::{Error, KeyPath};
use crate::respond::{header_map, status_code};
use crate::stage;

/// A compiled integration of one stage (stage variables already substituted).
#[derive(Debug, Clone)]
pub(crate) enum Integration {
    /// A static response.
    Mock(MockResponse),
}

/// A mock integration's response, built once per stage.
#[derive(Debug, Clone)]
pub(crate) struct MockResponse {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Integration {
    /// Compiles `definition` (found at `at`) for a stage with `variables`.
    pub(crate) fn compile(
        definition: &IntegrationDefinition,
        variables: &BTreeMap<String, String>,
        plugin_exists: impl Fn(&str) -> bool,
        at: &KeyPath,
    ) -> Result<Self, Error> {
        let only_for = |field: &str, set: bool, kind: &str| {
            if set {
                Err(Error::config(
                    at.key(field),
                    format!("only valid for integrations of type {kind}"),
                ))
            } else {
                Ok(())
            }
        };
        match definition.integration_type {
            IntegrationType::Mock => {
                only_for("plugin", definition.plugin.is_some(), "plugin")?;
                only_for("uri", definition.uri.is_some(), "http")?;
                only_for(
                    "payloadFormatVersion",
                    definition.payload_format_version.is_some(),
                    "plugin or http",
                )?;
                only_for(
                    "timeoutMs",
                    definition.timeout_ms.is_some(),
                    "plugin or http",
                )?;
                let status =
                    status_code(definition.status_code.unwrap_or(200), &at.key("statusCode"))?;
                let mut headers = match &definition.headers {
                    Some(headers) => header_map(headers.iter(), variables, &at.key("headers"))?,
                    None => HeaderMap::new(),
                };
                headers
                    .entry(CONTENT_TYPE)
                    .or_insert(HeaderValue::from_static("application/json"));
                let body = match &definition.body {
                    Some(body) => stage::substitute(body, variables, &at.key("body"))?,
                    None => String::new(),
                };
                Ok(Integration::Mock(MockResponse {
                    status,
                    headers,
                    body: Bytes::from(body),
                }))
            }
            IntegrationType::Plugin => {
                for field in ["statusCode", "headers", "body"] {
                    let set = match field {
                        "statusCode" => definition.status_code.is_some(),
                        "headers" => definition.headers.is_some(),
                        _ => definition.body.is_some(),
                    };
                    only_for(field, set, "mock")?;
                }
                let plugin = definition.plugin.as_deref().ok_or_else(|| {
                    Error::config(at.key("plugin"), "required for integrations of type plugin")
                })?;
                if !plugin_exists(plugin) {
                    return Err(Error::config(
                        at.key("plugin"),
                        format!("unknown plugin \"{plugin}\""),
                    ));
                }
                Err(Error::not_supported(
                    at.clone(),
                    "integration type \"plugin\"",
                ))
            }
            IntegrationType::Http => {
                if definition.uri.is_none() {
                    return Err(Error::config(
                        at.key("uri"),
                        "required for integrations of type http",
                    ));
                }
                Err(Error::not_supported(
                    at.clone(),
                    "integration type \"http\"",
                ))
            }
        }
    }

    /// Calls the integration.
    pub(crate) async fn invoke(&self) -> Response<Bytes> {
        match self {
            Integration::Mock(mock) => {
                let mut response = Response::new(mock.body.clone());
                *response.status_mut() = mock.status;
                *response.headers_mut() = mock.headers.clone();
                response
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mock(yaml: &str) -> Result<Integration, Error> {
        let def: IntegrationDefinition = serde_yaml::from_str(yaml).unwrap();
        let vars = BTreeMap::from([("TABLE".to_owned(), "dev-Users".to_owned())]);
        Integration::compile(&def, &vars, |_| true, &KeyPath::root().key("i"))
    }

    #[tokio::test]
    async fn mock_substitutes_stage_variables() {
        let i = mock("{type: mock, statusCode: 201, headers: {x-t: '${stageVariables.TABLE}'}, body: 't=${stageVariables.TABLE}'}")
            .unwrap();
        let r = i.invoke().await;
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers()["x-t"], "dev-Users");
        assert_eq!(r.headers()["content-type"], "application/json");
        assert_eq!(r.body(), "t=dev-Users");
    }

    #[test]
    fn mock_rejects_fields_of_other_types() {
        let err = mock("{type: mock, plugin: users}").unwrap_err().to_string();
        assert!(
            err.contains("i.plugin: only valid for integrations of type plugin"),
            "{err}"
        );
        assert!(mock("{type: mock, statusCode: 42}")
            .unwrap_err()
            .to_string()
            .contains("i.statusCode"));
    }

    #[test]
    fn plugin_integrations_are_not_supported_yet() {
        let err = mock("{type: plugin, plugin: users}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not supported yet"), "{err}");
    }
}
