//! OpenAPI 3.0 import: an API described as API Gateway imports it (`x-amazon-apigateway-*`
//! extensions) translated into Portico's native definition.
//!
//! The document is read with the `openapiv3` crate, translated into the native definition's
//! JSON shape, and that is read by the native definition's own serde types, so every native
//! check applies to an imported API as to a hand-written one. Nothing here runs on the request
//! path: the result is an ordinary [`ApiDefinition`].
//!
//! What the document cannot say (which plugin runs each Lambda function, a JWT authorizer's
//! keys, the stage's variables, API keys) comes from a small functions file ([`FunctionsFile`]).
//! What Portico does not implement is reported as an [`ImportWarning`] (API Gateway's import
//! warnings), never dropped silently; [`OpenApiOptions::fail_on_warnings`] turns them into a
//! load error as AWS's `failonwarnings=true` does. A native load error found later (when a
//! gateway compiles the definition) can be moved back onto the document's key paths with
//! [`OpenApiImport::explain`].

mod context;
mod export;
mod functions;
mod integration;
mod schema;
mod security;
mod translate;

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::config::{key_path_of, ApiDefinition, Format, Protocol};
use crate::error::{Error, KeyPath};

pub use export::OpenApiExport;
pub use functions::FunctionsFile;

/// How the document's base path (its `servers`) is applied, as API Gateway's `basepath` import
/// parameter (developer guide, "Set the OpenAPI basePath property").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum BasePathMode {
    /// The base path is left out: paths are served as written (AWS's default).
    #[default]
    Ignore,
    /// The base path is put in front of every path (`/a/b/c` + `/e` = `/a/b/c/e`).
    Prepend,
    /// The base path's first segment is dropped and the rest put in front (`/b/c/e`): for a
    /// base path that starts with the stage's name.
    Split,
}

/// How an OpenAPI document is imported.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct OpenApiOptions {
    /// The stage the API is served on (default `$default`, served at `/`).
    pub stage: Option<String>,
    /// REST API or HTTP API semantics (default `http`): API Gateway imports one document as
    /// either, and the choice is made by the importer, not the document.
    pub protocol: Protocol,
    /// How `servers` base paths are applied (default: ignored, as AWS does).
    pub base_path: BasePathMode,
    /// Refuse to import a document that gives any warning (AWS's `failonwarnings=true`).
    pub fail_on_warnings: bool,
    /// The functions file: plugins for Lambda functions, JWT keys, stage variables, API keys.
    pub functions: Option<FunctionsFile>,
}

impl OpenApiOptions {
    /// The defaults: `$default` stage, HTTP API, base path ignored, warnings allowed, no
    /// functions file.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves the API on stage `name`.
    pub fn stage(mut self, name: impl Into<String>) -> Self {
        self.stage = Some(name.into());
        self
    }

    /// REST API or HTTP API semantics.
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// How `servers` base paths are applied.
    pub fn base_path(mut self, mode: BasePathMode) -> Self {
        self.base_path = mode;
        self
    }

    /// Whether any warning makes the import fail.
    pub fn fail_on_warnings(mut self, fail: bool) -> Self {
        self.fail_on_warnings = fail;
        self
    }

    /// The functions file.
    pub fn functions(mut self, functions: FunctionsFile) -> Self {
        self.functions = Some(functions);
        self
    }
}

/// What kind of thing a warning is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WarningKind {
    /// An `x-amazon-apigateway-*` extension Portico does not implement: it is ignored.
    UnsupportedExtension,
    /// A field Portico does not implement: it is ignored.
    UnsupportedField,
    /// An integration Portico cannot run (type `aws` or `http`, a VPC link, an AWS service
    /// integration, a mapping template, or none at all): the route answers 500, as an
    /// integration that fails does.
    UnsupportedIntegration,
    /// A constraint that is not checked: parameter schemas (API Gateway's validators check
    /// only that required parameters are there) or bodies that are not JSON.
    NotValidated,
}

/// Something in the document that Portico imports only in part, or not at all.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportWarning {
    /// What kind of thing it is about.
    pub kind: WarningKind,
    /// Where in the document (`paths."/pets".get.x-amazon-apigateway-integration.tlsConfig`).
    pub key_path: KeyPath,
    /// What is ignored, and what Portico does instead.
    pub message: String,
}

impl fmt::Display for ImportWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key_path, self.message)
    }
}

/// An imported document: the native definition and the warnings of the import.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct OpenApiImport {
    /// The API as a native definition (relative paths in it start from the document's
    /// directory, or are absolute when they came from a functions file elsewhere).
    pub definition: ApiDefinition,
    /// What was imported only in part, in document order.
    pub warnings: Vec<ImportWarning>,
    /// Where each native part came from, for [`OpenApiImport::explain`].
    origins: Vec<Origin>,
    /// The document's file, when it came from one.
    file: Option<PathBuf>,
}

/// A native key path prefix and the place in the document (or the functions file) it was
/// translated from.
#[derive(Debug, Clone)]
struct Origin {
    native: String,
    source: KeyPath,
    /// The functions file, for parts that came from it; `None` for the document.
    file: Option<PathBuf>,
}

impl OpenApiImport {
    /// `error`, from compiling [`OpenApiImport::definition`], with its key path moved onto the
    /// document it came from (`routes."GET /pets".integration.timeoutMs` becomes
    /// `paths."/pets".get.x-amazon-apigateway-integration.timeoutMs`) and the document's file.
    pub fn explain(&self, error: Error) -> Error {
        let (file, key_path) = match error {
            Error::Config {
                ref file,
                ref key_path,
                ..
            }
            | Error::NotSupported {
                ref file,
                ref key_path,
                ..
            } => (file, key_path),
            other => return other,
        };
        let native = key_path.as_str();
        let origin = self
            .origins
            .iter()
            .filter(|o| {
                native.strip_prefix(&o.native).is_some_and(|rest| {
                    rest.is_empty() || rest.starts_with('.') || rest.starts_with('[')
                })
            })
            .max_by_key(|o| o.native.len());
        let (new_file, new_path) = match origin {
            Some(origin) => (
                origin.file.clone().or_else(|| self.file.clone()),
                origin.source.join_printed(&native[origin.native.len()..]),
            ),
            None => (self.file.clone().or_else(|| file.clone()), key_path.clone()),
        };
        match error {
            Error::Config { message, .. } => Error::Config {
                file: new_file,
                key_path: new_path,
                message,
            },
            Error::NotSupported { feature, .. } => Error::NotSupported {
                file: new_file,
                key_path: new_path,
                feature,
            },
            other => other,
        }
    }
}

impl ApiDefinition {
    /// Imports an OpenAPI 3.0 document (YAML or JSON text) as API Gateway does. Relative paths
    /// in the result start from wherever the caller's gateway starts them
    /// ([`crate::GatewayBuilder::base_dir`]).
    pub fn from_openapi(
        text: &str,
        format: Format,
        options: &OpenApiOptions,
    ) -> Result<OpenApiImport, Error> {
        let yaml = read_document(text, format)?;
        let raw = yaml_to_json(yaml.clone(), &KeyPath::root())?;
        let document = parse_document(&yaml)?;
        let translated = translate::translate(&document, &raw, options)?;
        let mut import = OpenApiImport {
            definition: ApiDefinition::default(),
            warnings: translated.warnings,
            origins: translated.origins,
            file: None,
        };
        let definition: ApiDefinition = serde_path_to_error::deserialize(translated.native)
            .map_err(|e| {
                import.explain(Error::config(key_path_of(e.path()), e.inner().to_string()))
            })?;
        import.definition = definition;
        if options.fail_on_warnings && !import.warnings.is_empty() {
            let list: Vec<String> = import.warnings.iter().map(|w| w.to_string()).collect();
            return Err(Error::config(
                import.warnings[0].key_path.clone(),
                format!(
                    "the import gave {} warning(s) and warnings are errors (--fail-on-warnings): {}",
                    list.len(),
                    list.join("; ")
                ),
            ));
        }
        Ok(import)
    }

    /// Imports the OpenAPI 3.0 document in a `.yaml`/`.yml`/`.json` file; errors name the
    /// file.
    pub fn from_openapi_file(
        path: impl AsRef<Path>,
        options: &OpenApiOptions,
    ) -> Result<OpenApiImport, Error> {
        let path = path.as_ref();
        let (text, format) = crate::config::read_file(path)?;
        let mut import = Self::from_openapi(&text, format, options).map_err(|e| match e {
            // An error the functions file's part caused already names that file.
            Error::Config { file: Some(_), .. } | Error::NotSupported { file: Some(_), .. } => e,
            e => e.in_file(path),
        })?;
        import.file = Some(path.to_path_buf());
        Ok(import)
    }
}

/// The document as YAML values, whichever format it was written in: their maps keep the
/// document's order (JSON values would sort them), which routes and warnings follow.
fn read_document(text: &str, format: Format) -> Result<yaml_serde::Value, Error> {
    let root = KeyPath::root();
    let value: yaml_serde::Value = match format {
        Format::Json => serde_json::from_str(text)
            .map_err(|e| Error::config(root.clone(), format!("not a JSON document: {e}")))?,
        Format::Yaml => yaml_serde::from_str(text)
            .map_err(|e| Error::config(root.clone(), format!("not a YAML document: {e}")))?,
    };
    if !value.is_mapping() {
        return Err(Error::config(root, "an OpenAPI document is an object"));
    }
    Ok(value)
}

/// YAML to JSON: scalar keys become strings (YAML writes `200:` for a response code).
fn yaml_to_json(yaml: yaml_serde::Value, at: &KeyPath) -> Result<Value, Error> {
    use yaml_serde::Value as Y;
    Ok(match yaml {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(&n).unwrap_or(Value::Null),
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| yaml_to_json(item, &at.index(i)))
                .collect::<Result<_, _>>()?,
        ),
        Y::Mapping(map) => {
            let mut object = serde_json::Map::new();
            for (key, value) in map {
                let key = match key {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    _ => {
                        return Err(Error::config(
                            at.clone(),
                            "a key that is not a string, a number or a boolean",
                        ))
                    }
                };
                let value = yaml_to_json(value, &at.key(&key))?;
                object.insert(key, value);
            }
            Value::Object(object)
        }
        Y::Tagged(tagged) => {
            return Err(Error::config(
                at.clone(),
                format!(
                    "YAML tag {} is not allowed (CloudFormation functions such as !Sub are resolved before import)",
                    tagged.tag
                ),
            ))
        }
    })
}

/// The methods of a Path Item, and API Gateway's catch-all one.
const OPERATION_KEYS: [&str; 9] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace", ANY_METHOD,
];

/// `x-amazon-apigateway-any-method`: the `ANY` route of a path.
const ANY_METHOD: &str = "x-amazon-apigateway-any-method";

/// The mapping expressions a gateway-response header may take its value from, written as AWS
/// writes them (request-response-data-mappings.md: "The "$" prefix is omitted in this
/// syntax"); the native header reads them as they are.
const GATEWAY_HEADER_SOURCES: [&str; 5] = [
    "method.request.header.",
    "method.request.path.",
    "method.request.querystring.",
    "stageVariables.",
    "context.",
];

/// Checks the version and reads the document with `openapiv3`.
fn parse_document(raw: &yaml_serde::Value) -> Result<openapiv3::OpenAPI, Error> {
    let root = KeyPath::root();
    if raw.get("swagger").is_some() {
        return Err(Error::config(
            root.key("swagger"),
            "OpenAPI 2.0 (swagger) documents are not imported: convert the document to OpenAPI 3.0",
        ));
    }
    match raw.get("openapi").and_then(yaml_serde::Value::as_str) {
        Some(v) if v.starts_with("3.0") => {}
        Some(v) => {
            return Err(Error::config(
                root.key("openapi"),
                format!("OpenAPI {v} is not imported: API Gateway imports OpenAPI 3.0.x"),
            ))
        }
        None => {
            return Err(Error::config(
                root.key("openapi"),
                "missing: an OpenAPI 3.0 document starts with openapi: \"3.0.1\"",
            ))
        }
    }
    // API Gateway takes operations without `responses` and parameters without a `schema` (its
    // own examples leave them out); OpenAPI 3.0 requires them, and so does openapiv3: an empty
    // map stands in (an empty schema constrains nothing).
    let mut raw = raw.clone();
    if let Some(paths) = raw
        .get_mut("paths")
        .and_then(yaml_serde::Value::as_mapping_mut)
    {
        for (_, item) in paths.iter_mut() {
            let Some(item) = item.as_mapping_mut() else {
                continue;
            };
            schemas_for_parameters(item.get_mut("parameters"));
            for key in OPERATION_KEYS {
                if let Some(operation) = item
                    .get_mut(key)
                    .and_then(yaml_serde::Value::as_mapping_mut)
                {
                    if !operation.contains_key("responses") {
                        operation.insert("responses".into(), empty_map());
                    }
                    schemas_for_parameters(operation.get_mut("parameters"));
                }
            }
        }
    }
    if let Some(parameters) = raw
        .get_mut("components")
        .and_then(|c| c.get_mut("parameters"))
        .and_then(yaml_serde::Value::as_mapping_mut)
    {
        for (_, parameter) in parameters.iter_mut() {
            schema_for_parameter(parameter);
        }
    }
    serde_path_to_error::deserialize(raw).map_err(|e| {
        Error::config(
            key_path_of(e.path()),
            format!("not a valid OpenAPI 3.0 document: {}", e.inner()),
        )
    })
}

fn empty_map() -> yaml_serde::Value {
    yaml_serde::Value::Mapping(Default::default())
}

/// An empty `schema` for each parameter of the list that has neither a schema nor content.
fn schemas_for_parameters(parameters: Option<&mut yaml_serde::Value>) {
    if let Some(parameters) = parameters.and_then(yaml_serde::Value::as_sequence_mut) {
        parameters.iter_mut().for_each(schema_for_parameter);
    }
}

fn schema_for_parameter(parameter: &mut yaml_serde::Value) {
    if let Some(parameter) = parameter.as_mapping_mut() {
        if !["$ref", "schema", "content"]
            .iter()
            .any(|k| parameter.contains_key(*k))
        {
            parameter.insert("schema".into(), empty_map());
        }
    }
}

/// The warnings of an import, and where its native parts came from.
#[derive(Default)]
struct Report {
    warnings: Vec<ImportWarning>,
    origins: Vec<Origin>,
}

impl Report {
    fn warn(&mut self, kind: WarningKind, key_path: KeyPath, message: impl Into<String>) {
        self.warnings.push(ImportWarning {
            kind,
            key_path,
            message: message.into(),
        });
    }

    /// Native key path `native` came from `source` in the document.
    fn origin(&mut self, native: &KeyPath, source: &KeyPath) {
        self.origins.push(Origin {
            native: native.as_str().to_owned(),
            source: source.clone(),
            file: None,
        });
    }

    /// Native key path `native` came from `source` in the functions file `file`.
    fn origin_in(&mut self, native: &KeyPath, source: &KeyPath, file: Option<&Path>) {
        self.origins.push(Origin {
            native: native.as_str().to_owned(),
            source: source.clone(),
            file: file.map(Path::to_path_buf),
        });
    }
}

#[cfg(test)]
mod tests;
