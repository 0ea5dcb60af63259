//! End-to-end tests of Portico through its public API: the router table, configuration
//! errors, property tests of the request path, and the integrations against real plugins and
//! real upstream servers.

mod access_log;
mod authorizers;
mod binary;
mod cache;
mod cache_fleet;
mod config_errors;
mod conformance;
mod cors;
mod domains;
mod fleet;
mod fleet_script;
mod http_proxy;
mod http_server;
mod instances;
mod jwt;
mod kv_crash;
mod lambda;
mod mapping;
mod metrics;
mod openapi;
mod plugin_host;
mod plugins;
mod proptests;
mod redis_store;
mod releases;
mod reload;
mod router_table;
mod streaming_body;
mod throttle;
mod tls;
mod tracing;
mod validation;
