//! The functions file: what an OpenAPI document for API Gateway cannot say, kept beside it so
//! that the document stays as AWS exports and imports it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{
    deserialize_text, ApiKeyDefinition, Format, JwksDefinition, PluginDefinition, UniqueMap,
};
use crate::error::Error;

/// `portico-serve --functions FILE`: the plugins that stand for the document's Lambda
/// functions, and the rest of what an OpenAPI document leaves to the AWS account.
///
/// ```yaml
/// functions:                     # Lambda function name -> plugin (as under the native `plugins`)
///   GetUserFn: { path: ../plugins/dist/python_users.wasm }
///   my-authorizer: { path: ../plugins/dist/token_authorizer.wasm }
/// jwks:                          # security scheme name -> a JWT authorizer's keys (native `jwks`)
///   cognito: { path: jwks.json }
/// stageVariables: { TABLE: users }
/// apiKeys: [{ name: partner, value: k-0123456789abcdef0123 }]
/// ```
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct FunctionsFile {
    /// Lambda function name (the `NAME` of `arn:aws:lambda:REGION:ACCOUNT:function:NAME`, or
    /// `NAME:QUALIFIER` for one alias or version) to the plugin that runs it.
    #[serde(default)]
    pub functions: UniqueMap<PluginDefinition>,
    /// Security scheme name to the signing keys of its JWT authorizer (Portico does not read
    /// the issuer's OpenID discovery document).
    #[serde(default)]
    pub jwks: UniqueMap<JwksDefinition>,
    /// The stage's variables (`${stageVariables.NAME}`).
    #[serde(default)]
    pub stage_variables: UniqueMap<String>,
    /// API keys, for routes whose security asks for one.
    #[serde(default)]
    pub api_keys: Vec<ApiKeyDefinition>,
    /// The file, when it came from one: relative paths in it start from its directory.
    #[serde(skip)]
    pub(super) file: Option<PathBuf>,
}

impl FunctionsFile {
    /// Reads a functions file (`.json`, else YAML); relative paths in it are made absolute,
    /// starting from its directory (the document it goes with may be elsewhere).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let (text, format) = crate::config::read_file(path)?;
        let mut file = Self::from_str_as(&text, format).map_err(|e| e.in_file(path))?;
        let dir = path.parent().unwrap_or(Path::new(""));
        let anchor = |p: &mut PathBuf| {
            if p.is_relative() {
                let joined = dir.join(&*p);
                *p = std::path::absolute(&joined).unwrap_or(joined);
            }
        };
        for (_, plugin) in file.functions.iter_mut() {
            anchor(&mut plugin.path);
        }
        for (_, jwks) in file.jwks.iter_mut() {
            if let Some(p) = jwks.path.as_mut() {
                anchor(p);
            }
        }
        file.file = Some(path.to_path_buf());
        Ok(file)
    }

    /// Parses a functions file from text; relative paths stay as written (they start from the
    /// gateway's base directory).
    pub fn from_str_as(text: &str, format: Format) -> Result<Self, Error> {
        deserialize_text(text, format)
    }

    /// The file it was read from, if any.
    pub(super) fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }
}
