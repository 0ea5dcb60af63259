//! What the translation of one document builds up: the native definition's parts, the
//! warnings and where each part came from.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{FunctionsFile, OpenApiOptions, Report, WarningKind};
use crate::config::Protocol;
use crate::error::{Error, KeyPath};

/// The translation's state, shared by the modules that translate each part.
pub(super) struct Ctx<'a> {
    pub(super) document: &'a openapiv3::OpenAPI,
    /// The document as JSON: schemas are taken from it as written.
    pub(super) raw: &'a Value,
    pub(super) options: &'a OpenApiOptions,
    pub(super) functions: &'a FunctionsFile,
    pub(super) report: Report,
    /// The served stage's variables, substituted where AWS resolves them at import time.
    pub(super) stage_variables: BTreeMap<String, String>,
    /// The native definition's `apiId` (what models are referenced by).
    pub(super) api_id: String,
    pub(super) plugins: Map<String, Value>,
    pub(super) integrations: Map<String, Value>,
    pub(super) authorizers: Map<String, Value>,
    pub(super) models: Map<String, Value>,
}

impl Ctx<'_> {
    pub(super) fn rest(&self) -> bool {
        self.options.protocol == Protocol::Rest
    }

    pub(super) fn warn(&mut self, kind: WarningKind, at: &KeyPath, message: impl Into<String>) {
        self.report.warn(kind, at.clone(), message);
    }

    /// The document's value at the JSON pointer `pointer`.
    pub(super) fn raw_at(&self, pointer: &str) -> Option<&Value> {
        self.raw.pointer(pointer)
    }
}

/// `key` of the JSON object `value`, which must be a string if present.
pub(super) fn string_field<'v>(
    value: &'v Map<String, Value>,
    key: &str,
    at: &KeyPath,
) -> Result<Option<&'v str>, Error> {
    match value.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Error::config(at.key(key), "expected a string")),
    }
}

/// An integer written as a number or a string (AWS's own exports write both).
pub(super) fn integer_field(
    value: &Map<String, Value>,
    key: &str,
    at: &KeyPath,
) -> Result<Option<u64>, Error> {
    match value.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64()),
        Some(Value::String(s)) if s.trim().parse::<u64>().is_ok() => Ok(s.trim().parse().ok()),
        Some(_) => Err(Error::config(at.key(key), "expected a whole number")),
    }
}

/// A boolean written as `true`/`false` or as a string.
pub(super) fn bool_field(
    value: &Map<String, Value>,
    key: &str,
    at: &KeyPath,
) -> Result<Option<bool>, Error> {
    match value.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(_) => Err(Error::config(at.key(key), "expected true or false")),
    }
}

/// `value` as a JSON object, or an error at `at`.
pub(super) fn object<'v>(value: &'v Value, at: &KeyPath) -> Result<&'v Map<String, Value>, Error> {
    value
        .as_object()
        .ok_or_else(|| Error::config(at.clone(), "expected an object"))
}

/// JSON pointer escaping of one reference token (`/` and `~`).
pub(super) fn pointer_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}
