//! Reading and resetting what API keys used: AWS's GetUsage (requests per day, and what is left
//! of the quota) and a quota reset.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use ::time::macros::format_description;
use ::time::Date;
use serde::Serialize;

use super::quota::QuotaRule;
use super::redis::Unavailable;
use super::{Backend, StoreHandle};

/// The longest span one usage query covers (AWS's GetUsage reads at most 90 days back; a year
/// leaves room and keeps one answer small).
const MAX_DAYS: i64 = 366;

/// What the keys of a usage plan used, day by day: AWS's GetUsage answer
/// (`{"usagePlanId", "startDate", "endDate", "items": {KEY_ID: [[used, remaining], ...]}}`,
/// one pair per day from `startDate` to `endDate`). `remaining` is what was left of the key's
/// quota at the end of that day; a plan without a quota gives `[used]` alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Usage {
    /// The usage plan.
    pub usage_plan_id: String,
    /// The first day, `YYYY-MM-DD` (UTC).
    pub start_date: String,
    /// The last day, `YYYY-MM-DD` (UTC).
    pub end_date: String,
    /// By API key id: per day, `[used, remaining]` (or `[used]`).
    pub items: BTreeMap<String, Vec<Vec<u64>>>,
}

/// Why a usage query or a quota reset failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    /// No usage plan has that name.
    #[error("unknown usage plan \"{0}\"")]
    UnknownPlan(String),
    /// No key of that id is in the plan.
    #[error("API key \"{key_id}\" is not in usage plan \"{plan}\"")]
    UnknownKey {
        /// The plan.
        plan: String,
        /// The key id asked for.
        key_id: String,
    },
    /// A date is not `YYYY-MM-DD`, or the range is backwards or too long.
    #[error("{0}")]
    BadDates(String),
    /// The rate store (Redis) did not answer.
    #[error("the rate store is unavailable: {0}")]
    Unavailable(String),
}

impl From<Unavailable> for UsageError {
    fn from(why: Unavailable) -> Self {
        UsageError::Unavailable(why.to_string())
    }
}

/// Each plan's quota and key ids, for usage queries.
#[derive(Default)]
pub(crate) struct PlanKeys {
    pub(crate) plans: HashMap<String, (Option<QuotaRule>, Vec<Arc<str>>)>,
}

fn parse_day(text: &str, name: &str) -> Result<Date, UsageError> {
    Date::parse(text, format_description!("[year]-[month]-[day]"))
        .map_err(|_| UsageError::BadDates(format!("{name} \"{text}\" is not a date (YYYY-MM-DD)")))
}

impl StoreHandle {
    /// Requests of `key_id` in `plan` on each of `days`.
    async fn days(&self, plan: &str, key_id: &str, days: &[Date]) -> Result<Vec<u64>, Unavailable> {
        match &self.backend {
            Backend::Memory(store) => Ok(store.usage(plan, key_id, days)),
            Backend::Redis(store) => store.usage(&self.api_id, plan, key_id, days).await,
        }
    }

    /// AWS's GetUsage for `plan` (one key, or all of the plan's), `start` to `end` inclusive.
    pub(crate) async fn usage(
        &self,
        keys: &PlanKeys,
        plan: &str,
        key_id: Option<&str>,
        start: &str,
        end: &str,
    ) -> Result<Usage, UsageError> {
        let (quota, plan_keys) = keys
            .plans
            .get(plan)
            .ok_or_else(|| UsageError::UnknownPlan(plan.to_owned()))?;
        let (first, last) = (parse_day(start, "startDate")?, parse_day(end, "endDate")?);
        let span = (last - first).whole_days();
        if !(0..MAX_DAYS).contains(&span) {
            return Err(UsageError::BadDates(format!(
                "endDate must be on or after startDate, at most {MAX_DAYS} days later"
            )));
        }
        let selected: Vec<&Arc<str>> = match key_id {
            Some(id) => vec![plan_keys.iter().find(|k| k.as_ref() == id).ok_or_else(|| {
                UsageError::UnknownKey {
                    plan: plan.to_owned(),
                    key_id: id.to_owned(),
                }
            })?],
            None => plan_keys.iter().collect(),
        };
        // From the start of the first day's quota period: what was left on a day counts the
        // days of its period before it.
        let from = quota.map_or(first, |q| q.period_of(first).0);
        let days: Vec<Date> = std::iter::successors(Some(from), |d| d.next_day())
            .take_while(|d| *d <= last)
            .collect();
        let mut items = BTreeMap::new();
        for key in selected {
            let used = self.days(plan, key, &days).await?;
            let mut rows = Vec::new();
            let mut in_period = 0u64;
            let mut period = None;
            for (day, used) in days.iter().zip(used) {
                let row = match quota {
                    Some(q) => {
                        let this = q.period_of(*day).0;
                        if period != Some(this) {
                            (period, in_period) = (Some(this), 0);
                        }
                        in_period += used;
                        vec![used, q.limit.saturating_sub(in_period)]
                    }
                    None => vec![used],
                };
                if *day >= first {
                    rows.push(row);
                }
            }
            items.insert(key.to_string(), rows);
        }
        Ok(Usage {
            usage_plan_id: plan.to_owned(),
            start_date: first.to_string(),
            end_date: last.to_string(),
            items,
        })
    }

    /// Forgets what `key_id` used of its quota in the current period.
    pub(crate) async fn reset_quota(
        &self,
        keys: &PlanKeys,
        plan: &str,
        key_id: &str,
    ) -> Result<(), UsageError> {
        let (quota, plan_keys) = keys
            .plans
            .get(plan)
            .ok_or_else(|| UsageError::UnknownPlan(plan.to_owned()))?;
        if !plan_keys.iter().any(|k| k.as_ref() == key_id) {
            return Err(UsageError::UnknownKey {
                plan: plan.to_owned(),
                key_id: key_id.to_owned(),
            });
        }
        match &self.backend {
            Backend::Memory(store) => {
                store.reset_quota(plan, key_id);
                Ok(())
            }
            Backend::Redis(store) => {
                let period = quota.map(|q| q.period_at(self.clock.now()).0);
                Ok(store
                    .reset_quota(&self.api_id, plan, key_id, period)
                    .await?)
            }
        }
    }
}
