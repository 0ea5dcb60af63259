//! `policy_authorizer`: a scripted custom authorizer, so that end-to-end tests can ask the real
//! component for every outcome of the host's authorize phase.
//!
//! The script is the token (TOKEN authorizers) or the first identity source value (REQUEST
//! authorizers), with an optional `Bearer ` prefix (any case) and surrounding spaces removed.
//! It is `directive(;option)*`:
//!
//! | directive         | decision       | policy document (`{prefix}` = `arn:...:{apiId}/{stage}/`)       |
//! |-------------------|----------------|-----------------------------------------------------------------|
//! | `allow`           | allow          | Allow `{prefix}*`                                               |
//! | `allow-only=R`    | allow          | Allow `{prefix}R` only (`R` like `GET/users` or `*/admin/*`)    |
//! | `explicit-deny=R` | allow          | Allow `{prefix}*`, and Deny `{prefix}R`                         |
//! | `deny`            | deny           | Deny `{prefix}*`                                                |
//! | `unauthorized`    | unauthorized   | -                                                               |
//! | `no-policy`       | allow          | none (for `responseFormat: simple` APIs)                        |
//! | `bad-policy`      | allow          | `{"Version":"2012-10-17","Statement":"nope"}` (malformed)       |
//! | `trap`            | (panics: trap) | -                                                               |
//! | anything else     | unauthorized   | - (warn line `authorization failed: unknown directive "..."`)   |
//!
//! | option  | meaning                                      | default |
//! |---------|----------------------------------------------|---------|
//! | `sub=P` | the grant's principal id                     | `user`  |
//! | `key=K` | the grant's usage identifier key (API key)   | none    |
//! | `invalidate` | one more statement: Allow `execute-api:InvalidateCache` on `{prefix}*` (a policy-bearing directive only) | absent |
//! | `headers` | one more context entry, `headers`: the headers the host handed over, as JSON text `[[name, value], ...]` in their order (REQUEST authorizers; empty for TOKEN) | absent |
//!
//! Every other statement is `Action: execute-api:Invoke`. `{prefix}` is cut from the request's method
//! ARN (`...:{apiId}/{stage}/{METHOD}/{path}` or `...:{apiId}/{stage}/$default`), so `$default`
//! stages and the `$default` route work too; a method ARN it cannot cut answers unauthorized for
//! the directives that need a policy. Spaces around each part are ignored, and so are empty
//! options (`allow;`); the last of a repeated option wins. An unknown option (warn line
//! `unknown option "..."`), or `allow-only=` / `explicit-deny=` without a resource, is
//! unauthorized like an unknown directive.
//!
//! Grants (allow and deny) carry the context `sub` (text), `calls` (number: `total` below,
//! after this call), `kind` (`token` or `request`), `script` (text) and `methodArn` (text).
//!
//! Calls are counted before deciding (so `trap` and unknown scripts count too): in the host's kv
//! store, table = plugin config `counterTable` (default `authorizer-calls`), decimal text values
//! under `total` and `by-script/<script>` (the whole script, options included). Tests read them
//! to prove the authorizer was, or was not, called. A store error (for instance a script over
//! 1014 bytes, whose key the store refuses) is logged at warn level and the call goes on; when
//! `total` could not be counted, `calls` is 0. The count is a read then a write: two calls at
//! the same moment may count once.
//!
//! It imports kv, log and config only; no WASI.

use portico_plugin::{config, kv, log, AuthDecision, AuthKind, AuthRequest, Error, Grant};
use serde::Serialize;

/// The counter table when the plugin config names none.
const DEFAULT_COUNTER_TABLE: &str = "authorizer-calls";
/// The principal id when the script names none.
const DEFAULT_SUB: &str = "user";
/// What `bad-policy` answers: `Statement` must be an object or an array.
const BAD_POLICY: &str = r#"{"Version":"2012-10-17","Statement":"nope"}"#;

/// What the script asks for.
#[derive(Debug, PartialEq, Eq)]
enum Directive<'a> {
    Allow,
    AllowOnly(&'a str),
    ExplicitDeny(&'a str),
    Deny,
    Unauthorized,
    NoPolicy,
    BadPolicy,
    Trap,
}

/// A parsed script.
#[derive(Debug, PartialEq, Eq)]
struct Script<'a> {
    directive: Directive<'a>,
    sub: &'a str,
    key: Option<&'a str>,
    /// Whether the policy also allows `execute-api:InvalidateCache` (API Gateway's permission
    /// to refresh a cached answer with `Cache-Control: max-age=0`).
    invalidate: bool,
    /// Whether the grant shows the headers it was handed (so tests see the event).
    headers: bool,
}

/// Reads `directive(;option)*`; the error names what it did not understand.
fn parse(script: &str) -> Result<Script<'_>, Error> {
    let mut parts = script.split(';').map(str::trim);
    let head = parts.next().unwrap_or_default();
    let directive = match head.split_once('=') {
        None => match head {
            "allow" => Some(Directive::Allow),
            "deny" => Some(Directive::Deny),
            "unauthorized" => Some(Directive::Unauthorized),
            "no-policy" => Some(Directive::NoPolicy),
            "bad-policy" => Some(Directive::BadPolicy),
            "trap" => Some(Directive::Trap),
            _ => None,
        },
        Some(("allow-only", r)) if !r.is_empty() => Some(Directive::AllowOnly(r)),
        Some(("explicit-deny", r)) if !r.is_empty() => Some(Directive::ExplicitDeny(r)),
        Some(_) => None,
    }
    .ok_or_else(|| Error::new(format!("unknown directive {head:?}")))?;

    let mut parsed = Script {
        directive,
        sub: DEFAULT_SUB,
        key: None,
        invalidate: false,
        headers: false,
    };
    for option in parts.filter(|o| !o.is_empty()) {
        match option.split_once('=') {
            Some(("sub", p)) => parsed.sub = p,
            Some(("key", k)) => parsed.key = Some(k),
            None if option == "invalidate" => parsed.invalidate = true,
            None if option == "headers" => parsed.headers = true,
            _ => return Err(Error::new(format!("unknown option {option:?}"))),
        }
    }
    Ok(parsed)
}

fn authorize(request: AuthRequest) -> Result<AuthDecision, Error> {
    let script = script_of(&request);
    let calls = count_call(script);
    let parsed = parse(script)?;

    let grant = || {
        let kind = match request.kind {
            AuthKind::Token => "token",
            AuthKind::Request => "request",
        };
        let grant = Grant::new(parsed.sub)
            .context("sub", parsed.sub)
            .context("calls", calls)
            .context("kind", kind)
            .context("script", script)
            .context("methodArn", request.method_arn.as_str());
        let grant = if parsed.headers {
            let headers: Vec<(&str, &str)> = request.headers.iter().collect();
            let text = portico_plugin::serde_json::to_string(&headers).unwrap_or_default();
            grant.context("headers", text)
        } else {
            grant
        };
        match parsed.key {
            Some(key) => grant.usage_identifier_key(key),
            None => grant,
        }
    };
    let prefix = || stage_prefix(&request.method_arn);
    let invalidate = parsed.invalidate;
    Ok(match parsed.directive {
        Directive::Allow => AuthDecision::Allow(
            grant().policy_document(policy(&[("Allow", prefix()?, "*")], invalidate)?),
        ),
        Directive::AllowOnly(r) => AuthDecision::Allow(
            grant().policy_document(policy(&[("Allow", prefix()?, r)], invalidate)?),
        ),
        Directive::ExplicitDeny(r) => {
            let p = prefix()?;
            AuthDecision::Allow(
                grant().policy_document(policy(&[("Allow", p, "*"), ("Deny", p, r)], invalidate)?),
            )
        }
        Directive::Deny => AuthDecision::Deny(
            grant().policy_document(policy(&[("Deny", prefix()?, "*")], invalidate)?),
        ),
        Directive::Unauthorized => AuthDecision::Unauthorized,
        Directive::NoPolicy => AuthDecision::Allow(grant()),
        Directive::BadPolicy => AuthDecision::Allow(grant().policy_document(BAD_POLICY)),
        Directive::Trap => panic!("policy_authorizer: the script {script:?} asked for a trap"),
    })
}

/// The script: the token (TOKEN) or the first identity source value (REQUEST), without an
/// optional `Bearer ` prefix (any case) and surrounding spaces.
fn script_of(request: &AuthRequest) -> &str {
    let raw = match request.kind {
        AuthKind::Token => request.token.as_str(),
        AuthKind::Request => request.identity_source.first().map_or("", String::as_str),
    }
    .trim();
    match raw.get(..7) {
        Some(bearer) if bearer.eq_ignore_ascii_case("bearer ") => raw[7..].trim(),
        _ => raw,
    }
}

/// Counts this call under `total` and `by-script/<script>`; answers the new total (0 when the
/// store failed, which is logged and otherwise ignored).
fn count_call(script: &str) -> u64 {
    let table = config::get("counterTable")
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_COUNTER_TABLE.to_owned());
    let total = increment(&table, "total").unwrap_or_else(|e| {
        log::warn(format_args!(
            "could not count the call in {table}/total: {e}"
        ));
        0
    });
    let key = format!("by-script/{script}");
    if let Err(e) = increment(&table, &key) {
        log::warn(format_args!(
            "could not count the call in {table}/{key}: {e}"
        ));
    }
    total
}

/// Adds one to the decimal counter `table`/`key` (absent = 0); the new value.
fn increment(table: &str, key: &str) -> Result<u64, Error> {
    let current = match kv::get(table, key)? {
        None => 0,
        Some(bytes) => std::str::from_utf8(&bytes)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .ok_or_else(|| {
                Error::new(format!(
                    "the value is not a decimal count: {:?}",
                    String::from_utf8_lossy(&bytes)
                ))
            })?,
    };
    let next = current + 1;
    kv::put(table, key, next.to_string())?;
    Ok(next)
}

/// `arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/` of a method ARN (which goes on
/// with `{METHOD}/{path}` or `$default`).
fn stage_prefix(method_arn: &str) -> Result<&str, Error> {
    let malformed = || Error::new(format!("malformed method ARN {method_arn:?}"));
    // The resource starts after the fifth `:` (a path may hold more colons).
    let (colon, _) = method_arn.match_indices(':').nth(4).ok_or_else(malformed)?;
    let (head, resource) = (&method_arn[..colon], &method_arn[colon + 1..]);
    let mut segments = resource.splitn(3, '/');
    let (Some(api_id), Some(stage), Some(_)) = (segments.next(), segments.next(), segments.next())
    else {
        return Err(malformed());
    };
    if !head.starts_with("arn:") || head.contains('/') || api_id.is_empty() || stage.is_empty() {
        return Err(malformed());
    }
    Ok(&method_arn[..colon + 1 + api_id.len() + 1 + stage.len() + 1])
}

/// An IAM policy of `(effect, prefix, resource)` statements on `execute-api:Invoke`, and with
/// `invalidate` one more: Allow `execute-api:InvalidateCache` on the stage's every method.
fn policy(statements: &[(&str, &str, &str)], invalidate: bool) -> Result<String, Error> {
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Policy<'a> {
        version: &'a str,
        statement: Vec<Statement<'a>>,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Statement<'a> {
        action: &'a str,
        effect: &'a str,
        resource: String,
    }

    let mut statement: Vec<Statement> = statements
        .iter()
        .map(|&(effect, prefix, resource)| Statement {
            action: "execute-api:Invoke",
            effect,
            resource: format!("{prefix}{resource}"),
        })
        .collect();
    if let (true, Some(&(_, prefix, _))) = (invalidate, statements.first()) {
        statement.push(Statement {
            action: "execute-api:InvalidateCache",
            effect: "Allow",
            resource: format!("{prefix}*"),
        });
    }
    let policy = Policy {
        version: "2012-10-17",
        statement,
    };
    Ok(portico_plugin::serde_json::to_string(&policy)?)
}

portico_plugin::authorizer!(authorize);

#[cfg(test)]
mod tests {
    use super::*;
    use portico_plugin::log::Level;
    use portico_plugin::{testing, ContextValue, IntoAuthDecision};

    const PREFIX: &str = "arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/";
    const ARN: &str = "arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/GET/users/42";

    fn token(script: &str) -> AuthRequest {
        let mut request = AuthRequest::with_token(script);
        request.method_arn = ARN.into();
        request
    }

    fn ask(request: AuthRequest) -> AuthDecision {
        authorize(request).into_auth_decision()
    }

    fn ask_token(script: &str) -> AuthDecision {
        ask(token(script))
    }

    fn expect_allow(decision: AuthDecision) -> Grant {
        match decision {
            AuthDecision::Allow(grant) => grant,
            other => panic!("expected allow, got {other:?} ({:?})", testing::logs()),
        }
    }

    /// `{"Version":..,"Statement":[{"Action":..,"Effect":e,"Resource":r},..]}`.
    fn policy_of(statements: &[(&str, &str)]) -> String {
        let statements: Vec<String> = statements
            .iter()
            .map(|(effect, resource)| {
                format!(
                    r#"{{"Action":"execute-api:Invoke","Effect":"{effect}","Resource":"{resource}"}}"#
                )
            })
            .collect();
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
            statements.join(",")
        )
    }

    fn counter(key: &str) -> Option<String> {
        testing::kv_entries(DEFAULT_COUNTER_TABLE)
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| String::from_utf8(v).unwrap())
    }

    fn warnings() -> Vec<String> {
        testing::logs()
            .into_iter()
            .filter(|(level, _)| *level == Level::Warn)
            .map(|(_, line)| line)
            .collect()
    }

    #[test]
    fn allow_allows_the_whole_stage() {
        testing::reset();
        let grant = expect_allow(ask_token("allow"));
        assert_eq!(grant.principal_id, "user");
        assert_eq!(
            grant.policy_document.as_deref(),
            Some(policy_of(&[("Allow", &format!("{PREFIX}*"))]).as_str())
        );
        assert_eq!(
            grant.policy_document.as_deref(),
            Some(
                r#"{"Version":"2012-10-17","Statement":[{"Action":"execute-api:Invoke","Effect":"Allow","Resource":"arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/*"}]}"#
            )
        );
        assert_eq!(grant.usage_identifier_key, None);
    }

    #[test]
    fn invalidate_adds_the_invalidate_cache_permission() {
        testing::reset();
        let grant = expect_allow(ask_token("allow;invalidate"));
        assert_eq!(
            grant.policy_document.as_deref(),
            Some(
                r#"{"Version":"2012-10-17","Statement":[{"Action":"execute-api:Invoke","Effect":"Allow","Resource":"arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/*"},{"Action":"execute-api:InvalidateCache","Effect":"Allow","Resource":"arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/*"}]}"#
            )
        );
        // `invalidate=x` is no option.
        assert_eq!(ask_token("allow;invalidate=1"), AuthDecision::Unauthorized);
    }

    #[test]
    fn headers_shows_the_headers_as_handed_over() {
        testing::reset();
        let mut request = token("allow;headers");
        request.kind = AuthKind::Request;
        request.identity_source = vec!["allow;headers".into()];
        request.headers.append("Accept", "*/*");
        request.headers.append("X-Multi", "1");
        request.headers.append("X-Multi", "2");
        let headers = |grant: Grant| {
            grant
                .context
                .into_iter()
                .find(|(name, _)| name == "headers")
                .map(|(_, value)| value)
        };
        assert_eq!(
            headers(expect_allow(ask(request))),
            Some(ContextValue::from(
                r#"[["Accept","*/*"],["X-Multi","1"],["X-Multi","2"]]"#
            ))
        );
        // Without the option there is no such entry.
        assert_eq!(headers(expect_allow(ask_token("allow"))), None);
    }

    #[test]
    fn allow_only_allows_one_resource() {
        testing::reset();
        for r in ["GET/users", "*/admin/*", "POST/a:b/\"q\""] {
            let grant = expect_allow(ask_token(&format!("allow-only={r}")));
            let expected = policy_of(&[("Allow", &format!("{PREFIX}{}", r.replace('"', "\\\"")))]);
            assert_eq!(grant.policy_document.unwrap(), expected, "{r}");
        }
    }

    #[test]
    fn explicit_deny_allows_all_but_denies_one() {
        testing::reset();
        let grant = expect_allow(ask_token("explicit-deny=DELETE/users/*"));
        assert_eq!(
            grant.policy_document.unwrap(),
            policy_of(&[
                ("Allow", &format!("{PREFIX}*")),
                ("Deny", &format!("{PREFIX}DELETE/users/*")),
            ])
        );
    }

    #[test]
    fn deny_answers_deny_with_a_deny_all_policy() {
        testing::reset();
        match ask_token("deny;sub=mallory;key=k1") {
            AuthDecision::Deny(grant) => {
                assert_eq!(grant.principal_id, "mallory");
                assert_eq!(grant.usage_identifier_key.as_deref(), Some("k1"));
                assert_eq!(
                    grant.policy_document.unwrap(),
                    policy_of(&[("Deny", &format!("{PREFIX}*"))])
                );
            }
            other => panic!("expected deny, got {other:?}"),
        }
    }

    #[test]
    fn unauthorized_no_policy_and_bad_policy() {
        testing::reset();
        assert_eq!(ask_token("unauthorized"), AuthDecision::Unauthorized);
        assert_eq!(warnings(), Vec::<String>::new());
        let grant = expect_allow(ask_token("no-policy"));
        assert_eq!(grant.policy_document, None);
        let grant = expect_allow(ask_token("bad-policy"));
        assert_eq!(grant.policy_document.as_deref(), Some(BAD_POLICY));
        assert_eq!(
            grant.policy_document.as_deref(),
            Some(r#"{"Version":"2012-10-17","Statement":"nope"}"#)
        );
    }

    #[test]
    #[should_panic(expected = "asked for a trap")]
    fn trap_panics() {
        testing::reset();
        let _ = ask_token("trap");
    }

    #[test]
    fn trap_is_counted_before_it_panics() {
        testing::reset();
        let outcome = std::panic::catch_unwind(|| ask_token("trap;sub=x"));
        assert!(outcome.is_err());
        assert_eq!(counter("total").as_deref(), Some("1"));
        assert_eq!(counter("by-script/trap;sub=x").as_deref(), Some("1"));
    }

    #[test]
    fn unknown_scripts_are_unauthorized_and_logged() {
        testing::reset();
        let cases = [
            ("nope", "unknown directive \"nope\""),
            ("", "unknown directive \"\""),
            ("Allow", "unknown directive \"Allow\""),
            ("allow=GET/x", "unknown directive \"allow=GET/x\""),
            ("allow-only=", "unknown directive \"allow-only=\""),
            ("explicit-deny", "unknown directive \"explicit-deny\""),
            ("allow;role=admin", "unknown option \"role=admin\""),
            ("allow;sub", "unknown option \"sub\""),
        ];
        for (script, warning) in cases {
            testing::reset();
            assert_eq!(ask_token(script), AuthDecision::Unauthorized, "{script}");
            assert_eq!(
                warnings(),
                [format!("authorization failed: {warning}")],
                "{script}"
            );
            // Counted all the same.
            assert_eq!(counter("total").as_deref(), Some("1"), "{script}");
        }
    }

    #[test]
    fn options_set_the_principal_and_the_api_key() {
        testing::reset();
        let grant = expect_allow(ask_token("allow; sub=alice ;key=abc=def;"));
        assert_eq!(grant.principal_id, "alice");
        assert_eq!(grant.context[0].1, ContextValue::from("alice"));
        assert_eq!(grant.usage_identifier_key.as_deref(), Some("abc=def"));
        // The last of a repeated option wins.
        let grant = expect_allow(ask_token("no-policy;sub=a;sub=b"));
        assert_eq!(grant.principal_id, "b");
    }

    #[test]
    fn the_script_is_the_token_or_the_first_identity_source() {
        testing::reset();
        for t in ["Bearer allow", "bearer allow", "BEARER  allow ", "  allow"] {
            let grant = expect_allow(ask_token(t));
            assert_eq!(grant.context[3].1, ContextValue::from("allow"), "{t:?}");
        }
        // `Bearer` alone (no space) is not a prefix.
        assert_eq!(ask_token("Bearerallow"), AuthDecision::Unauthorized);

        let mut request = token("unauthorized");
        request.kind = AuthKind::Request;
        request.token = String::new();
        request.identity_source = vec!["Bearer no-policy;sub=r".into(), "deny".into()];
        request.headers.append("authorization", "deny");
        let grant = expect_allow(ask(request.clone()));
        assert_eq!(grant.principal_id, "r");
        assert_eq!(grant.context[2].1, ContextValue::from("request"));

        request.identity_source.clear();
        assert_eq!(ask(request), AuthDecision::Unauthorized);
    }

    #[test]
    fn grants_carry_the_context() {
        testing::reset();
        let grant = expect_allow(ask_token("Bearer allow;sub=u-7"));
        assert_eq!(
            grant.context,
            [
                ("sub".to_owned(), ContextValue::from("u-7")),
                ("calls".to_owned(), ContextValue::Number(1.0)),
                ("kind".to_owned(), ContextValue::from("token")),
                ("script".to_owned(), ContextValue::from("allow;sub=u-7")),
                ("methodArn".to_owned(), ContextValue::from(ARN)),
            ]
        );
        let grant = expect_allow(ask_token("no-policy"));
        assert_eq!(grant.context[1].1, ContextValue::Number(2.0));
    }

    #[test]
    fn calls_are_counted_in_total_and_by_script() {
        testing::reset();
        ask_token("allow");
        ask_token("Bearer allow");
        ask_token("deny;sub=x");
        ask_token("whatever");
        assert_eq!(
            testing::kv_entries(DEFAULT_COUNTER_TABLE),
            [
                ("by-script/allow".to_owned(), b"2".to_vec()),
                ("by-script/deny;sub=x".to_owned(), b"1".to_vec()),
                ("by-script/whatever".to_owned(), b"1".to_vec()),
                ("total".to_owned(), b"4".to_vec()),
            ]
        );
    }

    #[test]
    fn the_counter_table_comes_from_the_config() {
        testing::reset();
        testing::set_config("counterTable", "calls-e2e");
        kv::put("calls-e2e", "total", "41").unwrap();
        let grant = expect_allow(ask_token("no-policy"));
        assert_eq!(grant.context[1].1, ContextValue::Number(42.0));
        assert_eq!(
            testing::kv_entries("calls-e2e"),
            [
                ("by-script/no-policy".to_owned(), b"1".to_vec()),
                ("total".to_owned(), b"42".to_vec()),
            ]
        );
        assert!(testing::kv_entries(DEFAULT_COUNTER_TABLE).is_empty());
        // A blank setting means the default table.
        testing::set_config("counterTable", " ");
        ask_token("no-policy");
        assert_eq!(counter("total").as_deref(), Some("1"));
    }

    #[test]
    fn store_errors_are_logged_and_do_not_stop_the_decision() {
        testing::reset();
        // The by-script key is over the store's 1024 bytes: refused, logged, and the call goes on.
        let long = format!("no-policy;sub={}", "x".repeat(1024));
        let grant = expect_allow(ask_token(&long));
        assert_eq!(grant.context[1].1, ContextValue::Number(1.0));
        let logged = warnings();
        assert_eq!(logged.len(), 1, "{logged:?}");
        assert!(logged[0].starts_with("could not count the call in authorizer-calls/by-script/"));
        assert!(logged[0].contains("invalid table or key name"));
        // A counter that is not a number is left alone; calls is then 0.
        testing::reset();
        kv::put(DEFAULT_COUNTER_TABLE, "total", "many").unwrap();
        let grant = expect_allow(ask_token("no-policy"));
        assert_eq!(grant.context[1].1, ContextValue::Number(0.0));
        assert_eq!(counter("total").as_deref(), Some("many"));
        assert_eq!(counter("by-script/no-policy").as_deref(), Some("1"));
        assert!(warnings()[0].contains("not a decimal count"));
    }

    #[test]
    fn the_prefix_is_cut_from_every_method_arn_form() {
        let cases = [
            (ARN, PREFIX),
            (
                "arn:aws:execute-api:us-east-1:1:api/prod/GET/",
                "arn:aws:execute-api:us-east-1:1:api/prod/",
            ),
            (
                "arn:aws:execute-api:us-east-1:1:api/$default/POST/a:b/c",
                "arn:aws:execute-api:us-east-1:1:api/$default/",
            ),
            (
                "arn:aws:execute-api:us-east-1:1:api/$default/$default",
                "arn:aws:execute-api:us-east-1:1:api/$default/",
            ),
            (
                "arn:aws:execute-api:us-east-1:1:api/dev/$default",
                "arn:aws:execute-api:us-east-1:1:api/dev/",
            ),
        ];
        for (arn, prefix) in cases {
            assert_eq!(stage_prefix(arn).unwrap(), prefix, "{arn}");
        }
        for bad in [
            "",
            "arn",
            "arn:aws:execute-api:us-east-1:1",
            "arn:aws:execute-api:us-east-1:1:api",
            "arn:aws:execute-api:us-east-1:1:api/prod",
            "arn:aws:execute-api:us-east-1:1:/prod/GET/",
            "arn:aws:execute-api:us-east-1:1:api//GET/",
            "arn:aws:execute-api:x/y:1:api/prod/GET/",
            "nra:aws:execute-api:us-east-1:1:api/prod/GET/",
        ] {
            assert!(stage_prefix(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn default_route_and_stage_policies() {
        testing::reset();
        let mut request = token("explicit-deny=$default");
        request.method_arn = "arn:aws:execute-api:us-east-1:1:api/$default/$default".into();
        let grant = expect_allow(ask(request));
        assert_eq!(
            grant.policy_document.unwrap(),
            policy_of(&[
                ("Allow", "arn:aws:execute-api:us-east-1:1:api/$default/*"),
                (
                    "Deny",
                    "arn:aws:execute-api:us-east-1:1:api/$default/$default"
                ),
            ])
        );
    }

    #[test]
    fn a_malformed_method_arn_refuses_policies_but_not_the_rest() {
        testing::reset();
        let mut request = token("allow");
        request.method_arn = "not-an-arn".into();
        assert_eq!(ask(request.clone()), AuthDecision::Unauthorized);
        assert!(warnings()[0].contains("malformed method ARN \"not-an-arn\""));
        request.token = "no-policy".into();
        expect_allow(ask(request.clone()));
        request.token = "bad-policy".into();
        expect_allow(ask(request));
    }

    #[test]
    fn scripts_parse() {
        assert_eq!(
            parse("allow-only=GET/a=b;key=k").unwrap(),
            Script {
                directive: Directive::AllowOnly("GET/a=b"),
                sub: "user",
                key: Some("k"),
                invalidate: false,
                headers: false,
            }
        );
        assert!(parse("deny;invalidate").unwrap().invalidate);
        assert!(parse("allow;headers").unwrap().headers);
        assert!(parse("allow;headers=1").is_err());
        assert_eq!(parse("trap").unwrap().directive, Directive::Trap);
    }
}
