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

use base64::Engine as _;
use bytes::Bytes;

use crate::config::ContentHandling;
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

/// A REST integration's `contentHandling`: what it does to a request body, by the request
/// rows of the workflow table in API Gateway's developer guide ("Content type conversions in
/// API Gateway", api-gateway-payload-encodings-workflow.md). A body is binary when its
/// `Content-Type` is listed in `binaryMediaTypes`, text otherwise:
///
/// | body | `CONVERT_TO_TEXT` | `CONVERT_TO_BINARY` |
/// |---|---|---|
/// | text | as it is | base64-decoded (not base64: 500) |
/// | binary | base64-encoded | as it is |
#[derive(Debug, Clone)]
pub(crate) struct RequestConversion {
    handling: ContentHandling,
    binary: std::sync::Arc<BinaryMediaTypes>,
}

impl RequestConversion {
    pub(crate) fn new(handling: ContentHandling, binary: std::sync::Arc<BinaryMediaTypes>) -> Self {
        RequestConversion { handling, binary }
    }

    /// The body the integration gets for a request of `content_type`, or why the conversion
    /// failed ("If the conversion fails, it returns a 500 response", the same page).
    pub(crate) fn apply(&self, content_type: Option<&str>, body: &Bytes) -> Result<Bytes, String> {
        let binary = content_type.is_some_and(|t| self.binary.lists(t));
        let engine = &base64::engine::general_purpose::STANDARD;
        match (self.handling, binary) {
            (ContentHandling::ConvertToText, true) => Ok(Bytes::from(engine.encode(body))),
            (ContentHandling::ConvertToBinary, false) => {
                let text = body.trim_ascii();
                engine
                    .decode(text)
                    .map(Bytes::from)
                    .map_err(|e| format!("the request body is not base64: {e}"))
            }
            _ => Ok(body.clone()),
        }
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

    /// The request rows of AWS's workflow table (api-gateway-payload-encodings-workflow.md).
    #[test]
    fn content_handling_converts_request_bodies() {
        let at = KeyPath::root();
        let types =
            std::sync::Arc::new(BinaryMediaTypes::compile(&["image/png".into()], &at).unwrap());
        let to_text = RequestConversion::new(ContentHandling::ConvertToText, types.clone());
        let to_binary = RequestConversion::new(ContentHandling::ConvertToBinary, types);
        let raw = Bytes::from_static(&[0x89, b'P', b'N', b'G', 0xff]);
        let encoded = Bytes::from_static(b"iVBORw==");
        // Binary data of a listed type: CONVERT_TO_TEXT gives a base64-encoded string,
        // CONVERT_TO_BINARY the binary data.
        assert_eq!(to_text.apply(Some("image/png"), &raw).unwrap(), "iVBOR/8=");
        assert_eq!(to_binary.apply(Some("image/png"), &raw).unwrap(), raw);
        // Text data of a type not listed: CONVERT_TO_TEXT leaves it text, CONVERT_TO_BINARY
        // decodes it, and fails when it is not base64.
        assert_eq!(
            to_text.apply(Some("text/plain"), &encoded).unwrap(),
            encoded
        );
        assert_eq!(
            to_binary
                .apply(Some("text/plain"), &encoded)
                .unwrap()
                .as_ref(),
            &[0x89, b'P', b'N', b'G']
        );
        assert_eq!(to_binary.apply(None, &encoded).unwrap().len(), 4);
        assert!(to_binary
            .apply(Some("text/plain"), &Bytes::from("èé+à)("))
            .is_err());
    }
}
