//! `token_authorizer`: the seed guide's Lambda authorizer (`authorizer.py`) in Rust.
//!
//! It takes the bearer token (the `Bearer ` prefix is optional; REQUEST authorizers read the
//! `authorization` header), verifies it as an HS256 or RS256 JWT (signature, `exp`, `nbf`,
//! `iss`, `aud`; `exp` and `sub` are required) and answers:
//! - allow, principal id = `sub`, context `{userId: sub, email: claims.email or "",
//!   role: claims["custom:role"] or "user"}`, and an IAM policy allowing `execute-api:Invoke`
//!   on every method of the stage (`arn:...:{apiId}/{stage}/*`, from the method ARN as the
//!   seed's `generate_policy` builds it);
//! - unauthorized otherwise (the reason goes to the host's log at warn level).
//!
//! Settings, from the plugin's config first, then the stage variables:
//!
//! | config key          | stage variable     | meaning                                        |
//! |---------------------|--------------------|------------------------------------------------|
//! | `issuer`            | `TOKEN_ISSUER`     | required `iss`                                 |
//! | `audience`          | `TOKEN_AUDIENCE`   | required `aud` (comma-separated: any of them)  |
//! | `hs256Secret`       | `TOKEN_SECRET`     | HMAC secret: accept HS256 tokens               |
//! | `rs256PublicKeyPem` | `TOKEN_PUBLIC_KEY` | RSA public key (PEM): accept RS256 tokens      |
//! | `leewaySeconds`     | -                  | clock skew allowed for `exp`/`nbf` (default 0) |
//!
//! Issuer and audience are required, and at least one key; a token's `alg` picks the key, so
//! an HS256 token is never checked against the RSA key, and `none` is never accepted. `exp`
//! and `nbf` are checked against `wasi:clocks/wall-clock`, the component's only WASI import.

mod jwt;

use portico_plugin::serde_json::Value;
use portico_plugin::{config, AuthDecision, AuthRequest, ContextValue, Error, Grant};
use serde::Serialize;

/// Where the authorizer's settings come from: the plugin config key, then the stage variable.
struct Settings<'a> {
    request: &'a AuthRequest,
}

impl Settings<'_> {
    fn get(&self, config_key: &str, stage_variable: Option<&str>) -> Option<String> {
        config::get(config_key)
            .or_else(|| {
                stage_variable
                    .and_then(|v| self.request.stage_variable(v))
                    .map(str::to_owned)
            })
            .filter(|v| !v.trim().is_empty())
    }

    fn required(&self, config_key: &str, stage_variable: &str) -> Result<String, Error> {
        self.get(config_key, Some(stage_variable)).ok_or_else(|| {
            Error::new(format!(
                "not configured: set the plugin config `{config_key}` or the stage variable \
                 `{stage_variable}`"
            ))
        })
    }

    /// Checks the token's signature with the key its `alg` names.
    fn verify_signature(&self, token: &jwt::Token<'_>) -> Result<(), Error> {
        match token.alg.as_str() {
            "HS256" => token.verify_hs256(self.required("hs256Secret", "TOKEN_SECRET")?.as_bytes()),
            "RS256" => {
                let pem = self.required("rs256PublicKeyPem", "TOKEN_PUBLIC_KEY")?;
                // A PEM written on one line (YAML, env-style values) keeps `\n` escapes.
                let pem = if pem.contains('\n') {
                    pem
                } else {
                    pem.replace("\\n", "\n")
                };
                token.verify_rs256(&jwt::rsa_public_key(&pem)?)
            }
            other => Err(Error::new(format!(
                "token algorithm {other:?} is not accepted"
            ))),
        }
    }

    fn leeway(&self) -> Result<f64, Error> {
        match self.get("leewaySeconds", None) {
            None => Ok(0.0),
            Some(s) => s.trim().parse::<u32>().map(f64::from).map_err(|_| {
                Error::new(format!("leewaySeconds is not a number of seconds: {s:?}"))
            }),
        }
    }
}

fn authorize(request: AuthRequest) -> Result<AuthDecision, Error> {
    let token = request
        .bearer_token()
        .ok_or_else(|| Error::new("no token"))?;
    let settings = Settings { request: &request };
    let issuer = settings.required("issuer", "TOKEN_ISSUER")?;
    let audience = settings.required("audience", "TOKEN_AUDIENCE")?;
    let audiences: Vec<&str> = audience
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .collect();

    let token = jwt::parse(token)?;
    settings.verify_signature(&token)?;
    let now = now_seconds();
    let expectations = jwt::Expectations {
        issuer: &issuer,
        audiences: &audiences,
        now,
        leeway: settings.leeway()?,
    };
    jwt::validate(&token.claims, &expectations)?;
    let claims = token.claims;

    let sub = match claims.get("sub") {
        Some(Value::String(sub)) if !sub.is_empty() => sub.clone(),
        _ => return Err(Error::new("the token's sub is not a string")),
    };
    let email = claims
        .get("email")
        .map_or(ContextValue::from(""), ContextValue::from_json);
    let role = claims
        .get("custom:role")
        .map_or(ContextValue::from("user"), ContextValue::from_json);
    let policy = policy_document("Allow", &request.method_arn)?;
    Ok(AuthDecision::Allow(
        Grant::new(sub.clone())
            .context("userId", sub)
            .context("email", email)
            .context("role", role)
            .policy_document(policy),
    ))
}

/// Seconds since the Unix epoch, from `wasi:clocks/wall-clock`.
#[cfg(target_arch = "wasm32")]
fn now_seconds() -> f64 {
    let t = wasi::clocks::wall_clock::now();
    t.seconds as f64 + f64::from(t.nanoseconds) / 1e9
}

#[cfg(not(target_arch = "wasm32"))]
fn now_seconds() -> f64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// The seed's `generate_policy`: the policy covers every method and path of the stage.
fn policy_document(effect: &str, method_arn: &str) -> Result<String, Error> {
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Policy<'a> {
        version: &'a str,
        statement: [Statement<'a>; 1],
    }
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Statement<'a> {
        action: &'a str,
        effect: &'a str,
        resource: String,
    }

    let malformed = || Error::new(format!("malformed method ARN {method_arn:?}"));
    let arn_parts: Vec<&str> = method_arn.split(':').collect();
    if arn_parts.len() < 6 {
        return Err(malformed());
    }
    let api_gateway_arn = arn_parts[..5].join(":");
    let api_id_stage: Vec<&str> = arn_parts[5].split('/').collect();
    if api_id_stage.len() < 2 {
        return Err(malformed());
    }
    let resource = format!(
        "{api_gateway_arn}:{}/{}/*",
        api_id_stage[0], api_id_stage[1]
    );
    let policy = Policy {
        version: "2012-10-17",
        statement: [Statement {
            action: "execute-api:Invoke",
            effect,
            resource,
        }],
    };
    Ok(portico_plugin::serde_json::to_string(&policy)?)
}

portico_plugin::authorizer!(authorize);

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use hmac::{Hmac, Mac};
    use portico_plugin::serde_json::json;
    use portico_plugin::testing;
    use portico_plugin::AuthKind;
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::signature::{SignatureEncoding, Signer};
    use sha2::Sha256;

    const ARN: &str = "arn:aws:execute-api:ap-northeast-1:123456789012:abc123/prod/GET/users/42";
    const SECRET: &str = "test-secret";
    const PRIVATE_PEM: &str = include_str!("../testdata/rs256-private.pem");
    const PUBLIC_PEM: &str = include_str!("../testdata/rs256-public.pem");

    fn now() -> i64 {
        now_seconds() as i64
    }

    fn claims() -> Value {
        json!({
            "sub": "user-123",
            "email": "ann@example.com",
            "custom:role": "admin",
            "iss": "https://issuer.example",
            "aud": "portico",
            "exp": now() + 300,
        })
    }

    fn signing_input(alg: &str, claims: &Value) -> String {
        let header = json!({"alg": alg, "typ": "JWT"});
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )
    }

    fn hs256_with(secret: &[u8], claims: &Value) -> String {
        let input = signing_input("HS256", claims);
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(input.as_bytes());
        format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    fn hs256(claims: &Value) -> String {
        hs256_with(SECRET.as_bytes(), claims)
    }

    fn rs256(claims: &Value) -> String {
        let key = rsa::RsaPrivateKey::from_pkcs1_pem(PRIVATE_PEM).unwrap();
        let input = signing_input("RS256", claims);
        let signature = rsa::pkcs1v15::SigningKey::<Sha256>::new(key).sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }

    fn configure() {
        testing::reset();
        testing::set_config("issuer", "https://issuer.example");
        testing::set_config("audience", "other, portico");
        testing::set_config("hs256Secret", SECRET);
        testing::set_config("rs256PublicKeyPem", PUBLIC_PEM);
    }

    fn ask(token: &str) -> AuthDecision {
        let mut request = AuthRequest::with_token(token);
        request.method_arn = ARN.into();
        portico_plugin::IntoAuthDecision::into_auth_decision(authorize(request))
    }

    fn expect_allow(decision: AuthDecision) -> Grant {
        match decision {
            AuthDecision::Allow(grant) => grant,
            other => panic!("expected allow, got {other:?} ({:?})", testing::logs()),
        }
    }

    #[test]
    fn allows_a_valid_hs256_token_with_the_seed_policy() {
        configure();
        let grant = expect_allow(ask(&format!("Bearer {}", hs256(&claims()))));
        assert_eq!(grant.principal_id, "user-123");
        assert_eq!(
            grant.context,
            [
                ("userId".to_owned(), ContextValue::from("user-123")),
                ("email".to_owned(), ContextValue::from("ann@example.com")),
                ("role".to_owned(), ContextValue::from("admin")),
            ]
        );
        assert_eq!(
            grant.policy_document.unwrap(),
            r#"{"Version":"2012-10-17","Statement":[{"Action":"execute-api:Invoke","Effect":"Allow","Resource":"arn:aws:execute-api:ap-northeast-1:123456789012:abc123/prod/*"}]}"#
        );
    }

    #[test]
    fn allows_a_valid_rs256_token_without_the_prefix() {
        configure();
        let mut c = claims();
        c.as_object_mut().unwrap().remove("custom:role");
        c.as_object_mut().unwrap().remove("email");
        let grant = expect_allow(ask(&rs256(&c)));
        // An array audience naming us passes too.
        c["aud"] = json!(["x", "portico"]);
        expect_allow(ask(&rs256(&c)));
        // A PEM configured on one line with `\n` escapes works too.
        testing::set_config("rs256PublicKeyPem", PUBLIC_PEM.trim().replace('\n', "\\n"));
        expect_allow(ask(&rs256(&c)));
        assert_eq!(grant.context[1].1, ContextValue::from(""));
        assert_eq!(grant.context[2].1, ContextValue::from("user"));
    }

    #[test]
    fn reads_stage_variables_when_the_config_is_silent() {
        testing::reset();
        let mut request = AuthRequest::with_token(hs256(&claims()));
        request.kind = AuthKind::Token;
        request.method_arn = ARN.into();
        request.stage_variables = [
            ("TOKEN_ISSUER", "https://issuer.example"),
            ("TOKEN_AUDIENCE", "portico"),
            ("TOKEN_SECRET", SECRET),
        ]
        .into_iter()
        .collect();
        expect_allow(authorize(request).unwrap());
    }

    #[test]
    fn refuses_bad_tokens() {
        configure();
        let with = |patch: Value| {
            let mut c = claims();
            for (k, v) in patch.as_object().unwrap() {
                if v.is_null() {
                    c.as_object_mut().unwrap().remove(k);
                } else {
                    c[k] = v.clone();
                }
            }
            c
        };
        let cases = [
            ("expired", hs256(&with(json!({"exp": now() - 10})))),
            ("no exp", hs256(&with(json!({"exp": null})))),
            ("not yet valid", hs256(&with(json!({"nbf": now() + 100})))),
            (
                "wrong issuer",
                hs256(&with(json!({"iss": "https://evil.example"}))),
            ),
            (
                "wrong audience",
                hs256(&with(json!({"aud": "someone-else"}))),
            ),
            ("no sub", hs256(&with(json!({"sub": null})))),
            ("numeric sub", hs256(&with(json!({"sub": 5})))),
            ("wrong secret", hs256_with(b"nope", &claims())),
            (
                "array audience elsewhere",
                hs256(&with(json!({"aud": ["a", "b"]}))),
            ),
            (
                "float exp in the past",
                hs256(&with(json!({"exp": now() as f64 - 0.5}))),
            ),
            ("tampered", {
                let t = hs256(&claims());
                let (head, sig) = t.rsplit_once('.').unwrap();
                let other = hs256(&with(json!({"sub": "admin"})));
                let (other_head, _) = other.rsplit_once('.').unwrap();
                assert_ne!(head, other_head);
                format!("{other_head}.{sig}")
            }),
            ("garbage", "not-a-token".to_owned()),
            ("empty", String::new()),
            ("alg none", format!("{}.", signing_input("none", &claims()))),
            ("HS256 signed with the public key", {
                // The classic confusion attack: must not verify against the RSA key.
                hs256_with(PUBLIC_PEM.as_bytes(), &claims())
            }),
            ("RS256 header on an HMAC signature", {
                let t = hs256(&claims());
                let sig = t.rsplit_once('.').unwrap().1.to_owned();
                format!("{}.{sig}", signing_input("RS256", &claims()))
            }),
        ];
        for (name, token) in cases {
            assert_eq!(ask(&token), AuthDecision::Unauthorized, "{name}");
        }
    }

    #[test]
    fn refuses_an_algorithm_without_a_key() {
        testing::reset();
        testing::set_config("issuer", "https://issuer.example");
        testing::set_config("audience", "portico");
        testing::set_config("hs256Secret", SECRET);
        assert_eq!(ask(&rs256(&claims())), AuthDecision::Unauthorized);
        assert!(
            testing::logs()[0].1.contains("rs256PublicKeyPem"),
            "{:?}",
            testing::logs()
        );
    }

    #[test]
    fn refuses_everything_when_unconfigured() {
        testing::reset();
        assert_eq!(ask(&hs256(&claims())), AuthDecision::Unauthorized);
    }

    #[test]
    fn policy_follows_generate_policy() {
        assert_eq!(
            policy_document(
                "Allow",
                "arn:aws:execute-api:us-east-1:1:api/$default/POST/a:b"
            )
            .unwrap(),
            r#"{"Version":"2012-10-17","Statement":[{"Action":"execute-api:Invoke","Effect":"Allow","Resource":"arn:aws:execute-api:us-east-1:1:api/$default/*"}]}"#
        );
        assert!(policy_document("Allow", "arn:aws:execute-api:us-east-1:1").is_err());
        assert!(policy_document("Allow", "arn:aws:execute-api:us-east-1:1:api").is_err());
    }
}
