//! The stage phase: which stage a request path names, and stage variables.
//!
//! As in API Gateway: `$default` is served at `/`, any other stage at `/{stageName}/...`. A
//! path whose first segment names a stage goes to that stage (with the stage segment removed);
//! any other path goes to the `$default` stage when there is one, else it is not found.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;

use crate::config::StageDefinition;
use crate::error::{Error, KeyPath};
use crate::template::{is_stage_variable_name, ContextNames, Template};

/// The name of the stage served at the root.
pub const DEFAULT_STAGE: &str = "$default";

/// Picks the stage for `path` among `stages` (by name) and returns it with the path that the
/// router sees (the stage segment removed for a named stage).
///
/// A REST API (`rest`) takes doubled slashes around the stage as AWS was recorded taking them
/// (LocalStack test_apigateway_lambda.snapshot.json, `test_lambda_aws_proxy_integration`):
/// slashes before the stage segment collapse (`//stage/proxy-value` is served as
/// `/stage/proxy-value`), and those right after it are dropped from the path routed
/// (`/stage//hardcoded` reaches `/hardcoded`).
pub(crate) fn select<'a, 'p, T>(
    stages: &'a [(String, Arc<T>)],
    default_stage: Option<&'a Arc<T>>,
    path: &'p str,
    rest: bool,
) -> Option<(&'a Arc<T>, &'p str)> {
    let path = if rest {
        collapse_leading_slashes(path)
    } else {
        path
    };
    if let Some(after) = path.strip_prefix('/') {
        let (first, remainder) = match after.find('/') {
            Some(i) => (&after[..i], &after[i..]),
            None => (after, "/"),
        };
        if !first.is_empty() {
            if let Some((_, stage)) = stages.iter().find(|(name, _)| name == first) {
                let remainder = if rest {
                    collapse_leading_slashes(remainder)
                } else {
                    remainder
                };
                return Some((stage, remainder));
            }
        }
    }
    default_stage.map(|stage| (stage, path))
}

/// `path` with the slashes it starts with collapsed into one (`//a` is `/a`; `//` is `/`).
pub(crate) fn collapse_leading_slashes(path: &str) -> &str {
    let trimmed = path.trim_start_matches('/');
    match path.len() - trimmed.len() {
        0 | 1 => path,
        _ => &path[path.len() - trimmed.len() - 1..],
    }
}

/// Checks a stage name against AWS's rules: `$default` (HTTP APIs only) or 1-128 of `[A-Za-z0-9_-]`.
pub(crate) fn check_stage_name(name: &str, allow_default: bool, at: &KeyPath) -> Result<(), Error> {
    if name == DEFAULT_STAGE {
        return if allow_default {
            Ok(())
        } else {
            Err(Error::config(
                at.clone(),
                "REST APIs have no $default stage: stage names use 1-128 of [A-Za-z0-9_-]",
            ))
        };
    }
    let valid = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if valid {
        Ok(())
    } else {
        Err(Error::config(
            at.clone(),
            format!("bad stage name \"{name}\": expected $default or 1-128 of [A-Za-z0-9_-]"),
        ))
    }
}

/// Checks stage variables against AWS's rules: names of 1-64 `[A-Za-z0-9_]`, values of 1-512
/// `[A-Za-z0-9-._~:/?#&=,]`.
pub(crate) fn check_variables<'a>(
    variables: impl Iterator<Item = (&'a str, &'a String)>,
    at: &KeyPath,
) -> Result<BTreeMap<String, String>, Error> {
    let mut checked = BTreeMap::new();
    for (name, value) in variables {
        let here = at.key(name);
        if !is_stage_variable_name(name) || name.len() > 64 {
            return Err(Error::config(
                here,
                format!("bad stage variable name \"{name}\": expected 1-64 of [A-Za-z0-9_]"),
            ));
        }
        if value.is_empty()
            || value.len() > 512
            || !value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._~:/?#&=,".contains(c))
        {
            return Err(Error::config(
                here,
                format!("bad stage variable value \"{value}\": expected 1-512 of [A-Za-z0-9-._~:/?#&=,]"),
            ));
        }
        checked.insert(name.to_owned(), value.clone());
    }
    Ok(checked)
}

/// Replaces every `${stageVariables.NAME}` in `template` with the variable's value; an undefined
/// variable becomes the empty string, as in API Gateway. A malformed reference is an error.
pub(crate) fn substitute(
    template: &str,
    variables: &BTreeMap<String, String>,
    at: &KeyPath,
) -> Result<String, Error> {
    let parsed = Template::<Infallible>::parse_with_stage_variables(
        template,
        ContextNames::Ignored,
        variables,
        at,
        |_| None,
    )?;
    Ok(parsed.render(|never, _| match *never {}))
}

/// The load-time checks of a stage's `canary` (found at `at`'s `canary`).
pub(crate) fn check_canary(stage_def: &StageDefinition, at: &KeyPath) -> Result<(), Error> {
    let Some(canary) = &stage_def.canary else {
        return Ok(());
    };
    let at = at.key("canary");
    if !(0.0..=100.0).contains(&canary.percent_traffic) {
        return Err(Error::config(
            at.key("percentTraffic"),
            format!(
                "{} is not a share of traffic: expected 0.0 to 100.0",
                canary.percent_traffic
            ),
        ));
    }
    check_variables(
        canary.stage_variable_overrides.iter(),
        &at.key("stageVariableOverrides"),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, String> {
        BTreeMap::from([("TABLE".to_owned(), "dev-Users".to_owned())])
    }

    #[test]
    fn substitutes_defined_and_empties_undefined() {
        let at = KeyPath::root();
        assert_eq!(
            substitute(
                "t=${stageVariables.TABLE};u=${stageVariables.NOPE}.",
                &vars(),
                &at
            )
            .unwrap(),
            "t=dev-Users;u=."
        );
        assert_eq!(
            substitute("no vars ${other}", &vars(), &at).unwrap(),
            "no vars ${other}"
        );
        assert!(substitute("${stageVariables.TABLE", &vars(), &at).is_err());
        assert!(substitute("${stageVariables.a-b}", &vars(), &at).is_err());
    }

    #[test]
    fn selects_named_stage_then_default() {
        let stages = vec![
            ("prod".to_owned(), Arc::new(1)),
            ("dev".to_owned(), Arc::new(2)),
        ];
        let default = Arc::new(0);
        let pick = |path| select(&stages, Some(&default), path, false).map(|(s, p)| (**s, p));
        assert_eq!(pick("/prod/users"), Some((1, "/users")));
        assert_eq!(pick("/prod"), Some((1, "/")));
        assert_eq!(pick("/dev/"), Some((2, "/")));
        assert_eq!(pick("/production/users"), Some((0, "/production/users")));
        assert_eq!(pick("/"), Some((0, "/")));
        assert_eq!(
            select(&stages, None, "/other", false).map(|(s, _)| **s),
            None
        );
    }

    #[test]
    fn checks_names_and_values() {
        let at = KeyPath::root();
        assert!(check_stage_name("prod_1-a", false, &at).is_ok());
        assert!(check_stage_name("$default", true, &at).is_ok());
        assert!(check_stage_name("$default", false, &at).is_err());
        assert!(check_stage_name("pr od", true, &at).is_err());
        let bad_value = BTreeMap::from([("A".to_owned(), "has space".to_owned())]);
        assert!(check_variables(bad_value.iter().map(|(k, v)| (k.as_str(), v)), &at).is_err());
        let bad_name = BTreeMap::from([("a-b".to_owned(), "x".to_owned())]);
        assert!(check_variables(bad_name.iter().map(|(k, v)| (k.as_str(), v)), &at).is_err());
    }

    #[test]
    fn rest_apis_collapse_slashes_around_the_stage() {
        let stages = vec![("stage".to_owned(), Arc::new(1))];
        let pick = |path, rest| select(&stages, None, path, rest).map(|(_, p)| p);
        // LocalStack test_apigateway_lambda.snapshot.json (`test_lambda_aws_proxy_integration`):
        // `//stage/proxy-value` and `/stage//proxy-value` are served as `/proxy-value`.
        assert_eq!(pick("//stage/proxy-value", true), Some("/proxy-value"));
        assert_eq!(pick("/stage//proxy-value", true), Some("/proxy-value"));
        assert_eq!(
            pick("/stage/proxy-value//double", true),
            Some("/proxy-value//double")
        );
        assert_eq!(pick("/stage//", true), Some("/"));
        // HTTP APIs keep today's rule: an empty first segment names no stage.
        assert_eq!(pick("//stage/proxy-value", false), None);
        assert_eq!(pick("/stage//proxy-value", false), Some("//proxy-value"));
        assert_eq!(collapse_leading_slashes("///a//b"), "/a//b");
        assert_eq!(collapse_leading_slashes("/a"), "/a");
        assert_eq!(collapse_leading_slashes(""), "");
    }

    #[test]
    fn canary_settings_are_checked_at_their_key() {
        let mut stage = StageDefinition::default();
        let canary = |percent: f64, cache: bool| {
            let text = format!("{{percentTraffic: {percent}, useStageCache: {cache}}}");
            yaml_serde::from_str::<crate::config::CanaryDefinition>(&text).unwrap()
        };
        let at = KeyPath::root().key("stages").key("prod");
        stage.canary = Some(canary(10.5, false));
        assert!(check_canary(&stage, &at).is_ok());
        stage.canary = Some(canary(100.5, false));
        let error = check_canary(&stage, &at).unwrap_err().to_string();
        assert!(
            error.contains("stages.prod.canary.percentTraffic"),
            "{error}"
        );
        // A canary may share the stage's response cache (crate::cache).
        stage.canary = Some(canary(10.0, true));
        assert!(check_canary(&stage, &at).is_ok());
    }
}
