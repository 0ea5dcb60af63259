//! REST APIs' binary media types (`binaryMediaTypes`), as API Gateway applies them to Lambda
//! proxy integrations: a request body of a listed `Content-Type` reaches the function base64
//! encoded (`isBase64Encoded: true`), any other as text; a function's base64 answer
//! (`isBase64Encoded: true`) is decoded only when the client's *first* `Accept` type is listed,
//! and otherwise sent as the base64 text it is.
//!
//! Sources: AWS's developer guide, "Working with binary media types for REST APIs"
//! (api-gateway-payload-encodings.md: "When a request contains multiple media types in its
//! Accept header, API Gateway honors only the first Accept media type"; "`*/*` includes all
//! content types"), and LocalStack's `test_aws_proxy_binary_response`
//! (tests/aws/services/apigateway/test_apigateway_lambda.py, `@markers.aws.validated`): the
//! first `Accept` type must equal a listed type or fall under a listed `type/*`; `*/test` or an
//! `Accept` of `*/*` match nothing. HTTP APIs have no binary media types: their Lambda
//! integrations infer the encoding (see `lambda.rs`).

use crate::error::{Error, KeyPath};

/// The compiled `binaryMediaTypes` of a REST API.
#[derive(Debug, Clone, Default)]
pub(crate) struct BinaryMediaTypes {
    /// `(type, subtype)`, lowercase; `*` in either is a wildcard.
    types: Vec<(String, String)>,
}

impl BinaryMediaTypes {
    /// Reads `binaryMediaTypes` (at `at`): each `type/subtype`, either part may be `*`.
    pub(crate) fn compile(types: &[String], at: &KeyPath) -> Result<Self, Error> {
        let mut compiled = Vec::new();
        for (i, text) in types.iter().enumerate() {
            let lower = text.trim().to_ascii_lowercase();
            let parsed = lower
                .split_once('/')
                .filter(|(t, s)| !t.is_empty() && !s.is_empty() && !s.contains('/'));
            let Some((kind, subtype)) = parsed else {
                return Err(Error::config(
                    at.index(i),
                    format!("\"{text}\" is not a media type (type/subtype, `*` for any)"),
                ));
            };
            compiled.push((kind.to_owned(), subtype.to_owned()));
        }
        Ok(BinaryMediaTypes { types: compiled })
    }

    /// Whether `media` (a `Content-Type` or one `Accept` entry, parameters allowed) is listed:
    /// equal to an entry, under a `type/*` entry, or anything under `*/*`. A `*` on the
    /// request's side matches nothing but the same text.
    pub(crate) fn lists(&self, media: &str) -> bool {
        let essence = media.split(';').next().unwrap_or_default().trim();
        let Some((kind, subtype)) = essence.split_once('/') else {
            return false;
        };
        self.types.iter().any(|(t, s)| {
            if t == "*" {
                // `*/*` lists everything; `*/test` nothing (AWS: "wildcard with star on the
                // left is not supported").
                s == "*"
            } else {
                t.eq_ignore_ascii_case(kind) && (s == "*" || s.eq_ignore_ascii_case(subtype))
            }
        })
    }

    /// Whether the client's first `Accept` type is listed (API Gateway reads only the first).
    pub(crate) fn accepted(&self, accept: Option<&str>) -> bool {
        accept
            .and_then(|a| a.split(',').next())
            .is_some_and(|first| self.lists(first))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// LocalStack's `test_aws_proxy_binary_response` table, recorded against AWS.
    #[test]
    fn the_first_accept_type_must_be_listed() {
        let at = KeyPath::root().key("binaryMediaTypes");
        let png = BinaryMediaTypes::compile(&["image/png".into(), "*/test".into()], &at).unwrap();
        for (accept, binary) in [
            (Some("image/png"), true),
            (Some("image/jpg"), false),
            (Some("image/*"), false),
            (Some("*/test"), false),
            (Some("random/test"), false),
            (Some("*/*"), false),
            (Some("image/webp,image/png,*/*;q=0.8"), false),
            (Some("image/png,image/*,*/*;q=0.8"), true),
            (None, false),
        ] {
            assert_eq!(png.accepted(accept), binary, "{accept:?}");
        }
        let app = BinaryMediaTypes::compile(
            &[
                "image/png".into(),
                "application/*".into(),
                "image/jpg".into(),
            ],
            &at,
        )
        .unwrap();
        for accept in [
            "application/whatever",
            "application/test",
            "application/*",
            "image/jpg",
        ] {
            assert!(app.accepted(Some(accept)), "{accept}");
        }
        assert!(!app.accepted(Some("application")));
        // The guide: "`*/*` includes all content types".
        let all = BinaryMediaTypes::compile(&["*/*".into()], &at).unwrap();
        assert!(all.accepted(Some("text/html")));
        assert!(all.lists("application/octet-stream; charset=binary"));
        let error = BinaryMediaTypes::compile(&["png".into()], &at)
            .unwrap_err()
            .to_string();
        assert!(error.contains("binaryMediaTypes[0]"), "{error}");
    }
}
