//! The header names of a request as the client wrote them.
//!
//! `http::HeaderMap` keeps names lower-case, and hyper keeps the original spelling only in a
//! private extension, so an embedder that knows the spelling (portico-serve reads it off the
//! wire) hands it over as this request extension. A REST API's Lambda event (payload 1.0)
//! then names headers as the client did (`"headers": {"User-Agent": ...}`, LocalStack's
//! test_apigateway_lambda.snapshot.json, recorded against AWS), as API Gateway does.

use http::HeaderMap;

/// The header names of one request as sent, in order, repeats included: an `http::Request`
/// extension. It is used only when it describes the request's headers exactly (the same names,
/// ignoring case, as many times each), so a stale or foreign value changes nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeaderCase {
    names: Vec<String>,
}

impl HeaderCase {
    /// The names as sent (`["Host", "User-Agent", "X-Custom"]`).
    pub fn new(names: Vec<String>) -> Self {
        HeaderCase { names }
    }

    /// The names as sent.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Whether these are the names of `headers`: each name of the map as many times as it
    /// has values, and nothing else.
    pub(crate) fn describes(&self, headers: &HeaderMap) -> bool {
        if self.names.len() != headers.len() {
            return false;
        }
        headers.keys().all(|name| {
            let sent = self
                .names
                .iter()
                .filter(|n| n.eq_ignore_ascii_case(name.as_str()))
                .count();
            sent == headers.get_all(name).iter().count()
        })
    }

    /// The spelling the client first used for `lower` (a lower-case name), if it sent one.
    pub(crate) fn spelling<'a>(&'a self, lower: &'a str) -> &'a str {
        self.names
            .iter()
            .find(|n| n.eq_ignore_ascii_case(lower))
            .map_or(lower, String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_only_the_same_names_and_counts() {
        let mut headers = HeaderMap::new();
        headers.append("host", "h".parse().unwrap());
        headers.append("x-a", "1".parse().unwrap());
        headers.append("x-a", "2".parse().unwrap());
        let case = HeaderCase::new(vec!["Host".into(), "X-A".into(), "x-A".into()]);
        assert!(case.describes(&headers));
        assert_eq!(case.spelling("x-a"), "X-A");
        assert_eq!(case.spelling("accept"), "accept");
        let fewer = HeaderCase::new(vec!["Host".into(), "X-A".into()]);
        assert!(!fewer.describes(&headers));
        let other = HeaderCase::new(vec!["Host".into(), "X-A".into(), "X-B".into()]);
        assert!(!other.describes(&headers));
    }
}
