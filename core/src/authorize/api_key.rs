//! API keys: `apiKeyRequired` routes need a known, enabled key that is valid for the stage.
//!
//! Keys are looked up by their SHA-256 digest and then compared in constant time, so neither the
//! lookup nor the comparison tells a caller how much of a guessed key was right.

use std::collections::HashMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::caller::AcceptedKey;
use crate::config::ApiDefinition;

/// The API's keys, compiled once per definition.
#[derive(Default)]
pub(crate) struct ApiKeys {
    by_digest: HashMap<[u8; 32], ApiKey>,
}

/// One key of the definition.
struct ApiKey {
    name: String,
    /// What the 1.0 Lambda event's `identity.apiKeyId` says (`id`, else derived from the name).
    id: Arc<str>,
    value: Vec<u8>,
    enabled: bool,
    /// The key's usage plans with their stages; empty when the key is in no plan (every stage).
    plans: Vec<(Arc<str>, Vec<String>)>,
}

impl ApiKeys {
    /// The keys of `definition` (references and duplicates are checked before).
    pub(crate) fn compile(definition: &ApiDefinition) -> Self {
        let by_digest = definition
            .api_keys
            .iter()
            .map(|key| {
                let plans = key
                    .usage_plans
                    .iter()
                    .filter_map(|name| {
                        let plan = definition.usage_plans.get(name)?;
                        Some((Arc::from(name.as_str()), plan.stages.clone()))
                    })
                    .collect();
                let id = match &key.id {
                    Some(id) => Arc::from(id.as_str()),
                    None => derived_id(&key.name).into(),
                };
                let entry = ApiKey {
                    name: key.name.clone(),
                    id,
                    value: key.value.as_bytes().to_vec(),
                    enabled: key.enabled,
                    plans,
                };
                (digest(key.value.as_bytes()), entry)
            })
            .collect();
        ApiKeys { by_digest }
    }

    /// The key `presented` with its name, when it is known, enabled and valid for `stage`: a
    /// key in usage plans is valid on those plans' stages, a key in none on every stage.
    pub(crate) fn check(&self, presented: &str, stage: &str) -> Option<(&str, AcceptedKey)> {
        let key = self.by_digest.get(&digest(presented.as_bytes()))?;
        let same = key.value.as_slice().ct_eq(presented.as_bytes());
        if !(bool::from(same) && key.enabled) {
            return None;
        }
        let usage_plan = if key.plans.is_empty() {
            None
        } else {
            let (plan, _) = key
                .plans
                .iter()
                .find(|(_, stages)| stages.iter().any(|s| s == stage))?;
            Some(Arc::clone(plan))
        };
        let accepted = AcceptedKey {
            id: Arc::clone(&key.id),
            value: Arc::from(presented),
            usage_plan,
        };
        Some((key.name.as_str(), accepted))
    }
}

fn digest(value: &[u8]) -> [u8; 32] {
    Sha256::digest(value).into()
}

/// A key id in the shape of API Gateway's (10 lower-case letters and digits), stable for a
/// key name, for keys whose definition gives no `id`.
fn derived_id(name: &str) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    Sha256::digest(name.as_bytes())
        .iter()
        .take(10)
        .map(|byte| char::from(ALPHABET[usize::from(*byte) % ALPHABET.len()]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Format;

    fn keys() -> ApiKeys {
        let definition = ApiDefinition::from_str_as(
            r#"
name: t
usagePlans:
  free: { stages: [prod] }
apiKeys:
  - { name: everywhere, id: given-id-1, value: k-everywhere-0123456789 }
  - { name: prod-only, value: k-prod-only-0123456789, usagePlans: [free] }
  - { name: off, value: k-disabled-0123456789, enabled: false }
stages: { prod: {}, dev: {} }
"#,
            Format::Yaml,
        )
        .unwrap();
        ApiKeys::compile(&definition)
    }

    /// `ApiKeys::check`, naming the accepted key.
    struct Names<'a>(&'a ApiKeys);

    impl Names<'_> {
        fn check(&self, presented: &str, stage: &str) -> Option<&str> {
            self.0.check(presented, stage).map(|(name, _)| name)
        }
    }

    #[test]
    fn an_accepted_key_carries_its_id_value_and_plan() {
        let keys = keys();
        let (_, key) = keys.check("k-prod-only-0123456789", "prod").unwrap();
        assert_eq!(&*key.value, "k-prod-only-0123456789");
        assert_eq!(key.usage_plan.as_deref(), Some("free"));
        assert_eq!(key.id.len(), 10);
        assert!(key
            .id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
        // Stable: the same name gives the same id on every load.
        assert_eq!(
            keys.check("k-prod-only-0123456789", "prod").unwrap().1.id,
            key.id
        );
        let (_, plain) = keys.check("k-everywhere-0123456789", "dev").unwrap();
        assert_eq!(plain.usage_plan, None);
        assert_eq!(&*plain.id, "given-id-1");
    }

    #[test]
    fn known_enabled_keys_pass_for_their_stages() {
        let keys = keys();
        let keys = Names(&keys);
        assert_eq!(
            keys.check("k-everywhere-0123456789", "dev"),
            Some("everywhere")
        );
        assert_eq!(
            keys.check("k-prod-only-0123456789", "prod"),
            Some("prod-only")
        );
        assert_eq!(keys.check("k-prod-only-0123456789", "dev"), None);
        assert_eq!(keys.check("k-disabled-0123456789", "prod"), None);
        assert_eq!(keys.check("k-everywhere-012345678", "dev"), None);
        assert_eq!(keys.check("", "dev"), None);
    }
}
