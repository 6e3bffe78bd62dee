//! Rate-limit plans: a per-minute limit, an optional per-day limit and a burst, under a name
//! (`pro=300/min,10000/day,burst=50`) that keys and clients refer to.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// One plan's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub per_minute: u32,
    pub per_day: Option<u32>,
    /// Requests that may arrive at once; the rest of the minute's are then spread over it.
    /// At most `per_minute`; without it, a minute's requests may all come at once.
    pub burst: Option<u32>,
}

/// A plan as configured: `NAME=N/min[,N/day][,burst=N]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub name: PlanName,
    pub limits: Limits,
}

/// A plan's name: 1 to 40 of `a-z`, `0-9`, `-` and `_`, so that it is safe in headers, logs
/// and Redis keys.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct PlanName(String);

const MAX_NAME_CHARS: usize = 40;

impl PlanName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for PlanName {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        let allowed =
            |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
        if name.is_empty() || name.len() > MAX_NAME_CHARS || !name.chars().all(allowed) {
            return Err(format!(
                "a rate-limit plan name is 1 to {MAX_NAME_CHARS} of a-z, 0-9, '-' and '_', not {name:?}"
            ));
        }
        Ok(Self(name.to_owned()))
    }
}

impl TryFrom<String> for PlanName {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        name.parse()
    }
}

impl From<PlanName> for String {
    fn from(name: PlanName) -> Self {
        name.0
    }
}

impl fmt::Display for PlanName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Plan {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let usage = "expected NAME=N/min[,N/day][,burst=N], e.g. pro=300/min,10000/day,burst=50";
        let (name, limits) = text
            .split_once('=')
            .ok_or_else(|| format!("rate-limit plan {text:?}: {usage}"))?;
        let name: PlanName = name.trim().parse()?;
        let (mut per_minute, mut per_day, mut burst) = (None, None, None);
        for part in limits.split(',').map(str::trim) {
            let (slot, number) = if let Some(n) = part.strip_prefix("burst=") {
                (&mut burst, n)
            } else if let Some(n) = part
                .strip_suffix("/min")
                .or_else(|| part.strip_suffix("/minute"))
            {
                (&mut per_minute, n)
            } else if let Some(n) = part.strip_suffix("/day") {
                (&mut per_day, n)
            } else {
                return Err(format!(
                    "rate-limit plan {name}: {part:?} is not a limit; {usage}"
                ));
            };
            let number: u32 = number
                .trim()
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    format!("rate-limit plan {name}: {part:?} needs a whole number above 0")
                })?;
            if slot.replace(number).is_some() {
                return Err(format!("rate-limit plan {name}: {part:?} is given twice"));
            }
        }
        let per_minute = per_minute.ok_or_else(|| {
            format!("rate-limit plan {name}: a per-minute limit is required; {usage}")
        })?;
        if let Some(burst) = burst
            && burst > per_minute
        {
            return Err(format!(
                "rate-limit plan {name}: burst={burst} is more than the {per_minute}/min it bursts within"
            ));
        }
        if per_day.is_some_and(|day| day < per_minute) {
            return Err(format!(
                "rate-limit plan {name}: the per-day limit is below the per-minute one"
            ));
        }
        Ok(Self {
            name,
            limits: Limits {
                per_minute,
                per_day,
                burst,
            },
        })
    }
}

/// The configured plans, and the one that applies to keys and clients that name none.
#[derive(Debug, Clone, Default)]
pub struct Plans {
    by_name: BTreeMap<PlanName, Limits>,
    default: Option<PlanName>,
}

impl Plans {
    pub fn new(plans: Vec<Plan>, default: Option<PlanName>) -> Result<Self, String> {
        let mut by_name = BTreeMap::new();
        for plan in plans {
            if by_name.insert(plan.name.clone(), plan.limits).is_some() {
                return Err(format!("rate-limit plan {} is defined twice", plan.name));
            }
        }
        if let Some(default) = &default
            && !by_name.contains_key(default)
        {
            return Err(format!(
                "the default rate-limit plan {default} is not defined: add --rate-limit-plan {default}=N/min,…"
            ));
        }
        Ok(Self { by_name, default })
    }

    /// The named plan, if it is configured.
    pub fn get(&self, name: &PlanName) -> Option<Limits> {
        self.by_name.get(name).copied()
    }

    /// Checks that `name` is configured: an unknown plan is refused where it is set.
    pub fn check(&self, name: &PlanName) -> Result<(), String> {
        if self.by_name.contains_key(name) {
            return Ok(());
        }
        let known: Vec<&str> = self.by_name.keys().map(PlanName::as_str).collect();
        Err(if known.is_empty() {
            format!(
                "unknown rate-limit plan {name}: this server defines none (serve --rate-limit-plan)"
            )
        } else {
            format!(
                "unknown rate-limit plan {name}; defined: {}",
                known.join(", ")
            )
        })
    }

    /// The plan that applies to a key or client naming `named`: its own, else the default.
    /// A name no longer configured (a plan removed from the flags) falls back to the default.
    pub fn applicable(&self, named: Option<&PlanName>) -> Option<(&PlanName, Limits)> {
        named
            .and_then(|name| self.by_name.get_key_value(name))
            .or_else(|| {
                self.default
                    .as_ref()
                    .and_then(|name| self.by_name.get_key_value(name))
            })
            .map(|(name, limits)| (name, *limits))
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_form() {
        let plan: Plan = "pro=300/min,10000/day,burst=50".parse().unwrap();
        assert_eq!(plan.name.as_str(), "pro");
        assert_eq!(
            plan.limits,
            Limits {
                per_minute: 300,
                per_day: Some(10_000),
                burst: Some(50)
            }
        );
        let plan: Plan = "free=60/minute".parse().unwrap();
        assert_eq!(
            plan.limits,
            Limits {
                per_minute: 60,
                per_day: None,
                burst: None
            }
        );
    }

    #[test]
    fn refuses_what_is_not_a_plan() {
        for bad in [
            "pro",
            "pro=",
            "Pro=1/min",
            "pro=1000/day",
            "pro=0/min",
            "pro=10/min,burst=11",
            "pro=10/min,5/day",
            "pro=10/min,10/min",
            "pro=10/hour",
            "pro=-1/min",
            "a b=1/min",
        ] {
            assert!(bad.parse::<Plan>().is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn a_key_without_a_known_plan_gets_the_default() {
        let plans = Plans::new(
            vec![
                "free=60/min".parse().unwrap(),
                "pro=300/min".parse().unwrap(),
            ],
            Some("free".parse().unwrap()),
        )
        .unwrap();
        let pro: PlanName = "pro".parse().unwrap();
        let gone: PlanName = "gone".parse().unwrap();
        assert_eq!(plans.applicable(Some(&pro)).unwrap().0.as_str(), "pro");
        assert_eq!(plans.applicable(None).unwrap().0.as_str(), "free");
        assert_eq!(plans.applicable(Some(&gone)).unwrap().0.as_str(), "free");
        assert!(plans.check(&gone).is_err());
        assert!(Plans::new(vec![], Some(pro)).is_err());
        assert!(Plans::default().applicable(None).is_none());
    }
}
