//! A token's claims and API Gateway's checks on them: `iss`, `aud` (or `client_id`), `exp`, `nbf`
//! and `iat` with a leeway for clock skew, and the scopes (`scope`, `scp`) a route can ask for.

use serde_json::{Map, Value};

use crate::config::AuthorizerDefinition;
use crate::error::{Error, KeyPath};

/// Clock skew allowed on `exp`, `nbf` and `iat` when the definition sets no `leewaySeconds`.
pub(super) const DEFAULT_LEEWAY_SECONDS: u64 = 30;
/// The largest `leewaySeconds` accepted: more would keep expired tokens alive for long.
const MAX_LEEWAY_SECONDS: u64 = 300;

/// What a verified token established.
#[derive(Debug)]
pub(crate) struct VerifiedToken {
    claims: Map<String, Value>,
    scopes: Vec<String>,
    expires_at: u64,
}

impl VerifiedToken {
    /// The token's claims, as it carried them.
    pub(crate) fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// The scopes the token grants (`scope`, space-separated, and `scp`, a string or a list).
    pub(crate) fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The token's `sub`, or `""` without one.
    pub(crate) fn principal_id(&self) -> &str {
        self.claims.get("sub").and_then(Value::as_str).unwrap_or("")
    }

    /// The token's `exp` (Unix seconds).
    pub(crate) fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// A token with only `sub`, valid until `expires_at` (for tests of the cache).
    #[cfg(test)]
    pub(super) fn for_tests(sub: &str, expires_at: u64) -> Self {
        let mut claims = Map::new();
        claims.insert("sub".to_owned(), Value::from(sub));
        VerifiedToken {
            claims,
            scopes: Vec::new(),
            expires_at,
        }
    }

    /// API Gateway's rule: with scopes on the route, the token needs at least one of them.
    pub(super) fn grants_any(&self, required: &[String]) -> bool {
        required.is_empty() || required.iter().any(|scope| self.scopes.contains(scope))
    }
}

/// What an authorizer expects of a token's claims.
pub(super) struct ClaimChecks {
    issuer: String,
    audience: Vec<String>,
    leeway: u64,
}

impl ClaimChecks {
    /// Reads the definition's `issuer`, `audience` and `leewaySeconds`; `at` is the
    /// authorizer's key path (`authorizers.cognito`) for errors.
    pub(super) fn compile(definition: &AuthorizerDefinition, at: &KeyPath) -> Result<Self, Error> {
        let issuer = match definition.issuer.as_deref() {
            Some(issuer) if !issuer.is_empty() => issuer.to_owned(),
            _ => {
                return Err(Error::config(
                    at.key("issuer"),
                    "required for JWT authorizers: the `iss` every token must carry",
                ))
            }
        };
        if definition.audience.is_empty() {
            return Err(Error::config(
                at.key("audience"),
                "required for JWT authorizers: the `aud` (or `client_id`) values accepted",
            ));
        }
        if let Some(i) = definition.audience.iter().position(String::is_empty) {
            return Err(Error::config(
                at.key("audience").index(i),
                "an audience must not be empty",
            ));
        }
        let leeway = definition.leeway_seconds.unwrap_or(DEFAULT_LEEWAY_SECONDS);
        if leeway > MAX_LEEWAY_SECONDS {
            return Err(Error::config(
                at.key("leewaySeconds"),
                format!("at most {MAX_LEEWAY_SECONDS} seconds"),
            ));
        }
        Ok(ClaimChecks {
            issuer,
            audience: definition.audience.clone(),
            leeway,
        })
    }

    /// API Gateway's claim checks at `now` (Unix seconds), in its order, on the claims of a
    /// token whose signature verified. The error is a 401's reason.
    pub(super) fn verify(
        &self,
        claims: Map<String, Value>,
        now: u64,
    ) -> Result<VerifiedToken, &'static str> {
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err("the token's issuer is not valid");
        }
        // `aud` when present, else `client_id` (Cognito access tokens carry no `aud`).
        let audience_ok = match claims.get("aud") {
            Some(Value::String(aud)) => self.audience.contains(aud),
            Some(Value::Array(auds)) => auds
                .iter()
                .filter_map(Value::as_str)
                .any(|aud| self.audience.iter().any(|a| a == aud)),
            Some(_) => false,
            None => claims
                .get("client_id")
                .and_then(Value::as_str)
                .is_some_and(|id| self.audience.iter().any(|a| a == id)),
        };
        if !audience_ok {
            // AWS's wording (http-api-troubleshooting-jwt.md), shown to the client.
            return Err("the token does not have a valid audience");
        }
        let exp = match claims.get("exp") {
            None => return Err("the token has no expiry (exp)"),
            Some(exp) => {
                seconds(exp, f64::floor).ok_or("the token's expiry (exp) is not a number")?
            }
        };
        if now >= exp.saturating_add(self.leeway) {
            return Err("the token has expired");
        }
        let not_in_future = |claim: &str| match claims.get(claim) {
            None => true,
            Some(value) => {
                seconds(value, f64::ceil).is_some_and(|at| at <= now.saturating_add(self.leeway))
            }
        };
        if !not_in_future("nbf") {
            return Err("the token is not valid yet (nbf)");
        }
        if !not_in_future("iat") {
            return Err("the token's issue time (iat) is in the future");
        }
        Ok(VerifiedToken {
            scopes: scopes_of(&claims),
            claims,
            expires_at: exp,
        })
    }
}

/// The scopes a token grants: `scope` (space-separated) and `scp` (a string or a list).
fn scopes_of(claims: &Map<String, Value>) -> Vec<String> {
    let mut scopes = Vec::new();
    for claim in ["scope", "scp"] {
        match claims.get(claim) {
            Some(Value::String(text)) => {
                scopes.extend(text.split_ascii_whitespace().map(str::to_owned));
            }
            Some(Value::Array(items)) => {
                scopes.extend(items.iter().filter_map(Value::as_str).map(str::to_owned));
            }
            _ => {}
        }
    }
    scopes
}

/// A NumericDate claim as whole seconds (`round` says which way fractions go), if it is one.
fn seconds(value: &Value, round: fn(f64) -> f64) -> Option<u64> {
    if let Some(whole) = value.as_u64() {
        return Some(whole);
    }
    let float = value.as_f64()?;
    // `as` saturates; the range check keeps negative and absurd values out.
    (float.is_finite() && (0.0..1e15).contains(&float)).then(|| round(float) as u64)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::fixtures::*;

    #[tokio::test]
    async fn a_verified_token_exposes_its_claims_and_scopes() {
        let auth = authorizer(all_jwks());
        let token = rs256(json!({"scope": "a b", "scp": ["c"], "email": "u@example.com"}));
        let verified = auth.authorize(Some(&token), &[]).await.expect("valid");
        assert_eq!(verified.scopes(), ["a", "b", "c"]);
        assert_eq!(verified.claims()["email"], "u@example.com");
        assert_eq!(verified.principal_id(), SUBJECT);
        assert_eq!(
            Some(verified.expires_at()),
            verified.claims()["exp"].as_u64()
        );
        let anonymous = rs256(json!({"sub": null}));
        let verified = auth.authorize(Some(&anonymous), &[]).await.expect("valid");
        assert_eq!(verified.principal_id(), "");
    }
}
