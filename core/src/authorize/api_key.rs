//! API keys: `apiKeyRequired` routes need a known, enabled key that is valid for the stage.
//!
//! Keys are looked up by their SHA-256 digest and then compared in constant time, so neither the
//! lookup nor the comparison tells a caller how much of a guessed key was right.

use std::collections::HashMap;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::ApiDefinition;

/// The API's keys, compiled once per definition.
#[derive(Default)]
pub(crate) struct ApiKeys {
    by_digest: HashMap<[u8; 32], ApiKey>,
}

/// One key of the definition.
struct ApiKey {
    name: String,
    value: Vec<u8>,
    enabled: bool,
    /// The stages of the key's usage plans; `None` when the key is in no plan (every stage).
    stages: Option<Vec<String>>,
}

impl ApiKeys {
    /// The keys of `definition` (references and duplicates are checked before).
    pub(crate) fn compile(definition: &ApiDefinition) -> Self {
        let by_digest = definition
            .api_keys
            .iter()
            .map(|key| {
                let stages = (!key.usage_plans.is_empty()).then(|| {
                    key.usage_plans
                        .iter()
                        .filter_map(|plan| definition.usage_plans.get(plan))
                        .flat_map(|plan| plan.stages.iter().cloned())
                        .collect()
                });
                let entry = ApiKey {
                    name: key.name.clone(),
                    value: key.value.as_bytes().to_vec(),
                    enabled: key.enabled,
                    stages,
                };
                (digest(key.value.as_bytes()), entry)
            })
            .collect();
        ApiKeys { by_digest }
    }

    /// The name of the key `presented`, when it is known, enabled and valid for `stage`.
    pub(crate) fn check(&self, presented: &str, stage: &str) -> Option<&str> {
        let key = self.by_digest.get(&digest(presented.as_bytes()))?;
        let same = key.value.as_slice().ct_eq(presented.as_bytes());
        let for_stage = key
            .stages
            .as_ref()
            .is_none_or(|stages| stages.iter().any(|s| s == stage));
        (bool::from(same) && key.enabled && for_stage).then_some(key.name.as_str())
    }
}

fn digest(value: &[u8]) -> [u8; 32] {
    Sha256::digest(value).into()
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
  - { name: everywhere, value: k-everywhere-0123456789 }
  - { name: prod-only, value: k-prod-only-0123456789, usagePlans: [free] }
  - { name: off, value: k-disabled-0123456789, enabled: false }
stages: { prod: {}, dev: {} }
"#,
            Format::Yaml,
        )
        .unwrap();
        ApiKeys::compile(&definition)
    }

    #[test]
    fn known_enabled_keys_pass_for_their_stages() {
        let keys = keys();
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
