//! Webhooks: endpoints that operators register to hear of audit events, the rules their URL
//! and action filters follow, and how events reach them. Deliveries are queued in the
//! transaction that records the event (`store::audit`, the outbox); the [`Deliverer`] on
//! each server sends them, signed as Standard Webhooks (<https://www.standardwebhooks.com/>)
//! prescribes, one server per endpoint at a time (docs/decisions.md, "Webhooks: an outbox
//! written with the event, one deliverer per endpoint").

mod deliverer;
pub mod signature;

use std::net::IpAddr;

use serde::Serialize;

use crate::audit::is_valid_pattern;
use crate::ids::WebhookId;

pub use deliverer::Deliverer;

/// Longest URL an endpoint may have.
pub const MAX_URL_CHARS: usize = 2048;
/// Most action patterns one endpoint may list.
pub const MAX_ACTIONS: usize = 64;

/// Where events go, and which.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookEndpoint {
    pub id: WebhookId,
    pub url: String,
    /// Action names, `noun.*` or `*` (see [`crate::audit::wants`]).
    pub actions: Vec<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; a disabled endpoint is sent nothing and queues nothing.
    pub disabled_at: Option<i64>,
}

/// How an endpoint's deliveries stand, for an operator looking into one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryStatus {
    /// Events queued and not yet acknowledged.
    pub pending: i64,
    /// Events acknowledged and not yet pruned.
    pub delivered: i64,
    /// The oldest pending event: the one that goes next.
    pub next: Option<PendingSummary>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingSummary {
    pub event_id: String,
    /// Attempts made so far.
    pub attempts: i64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Unix milliseconds.
    pub next_attempt_at_ms: i64,
}

/// Checks an endpoint's URL: https, or http to this machine only (a receiver under test, or a
/// local relay): events name people and keys, and would otherwise cross the network in clear.
/// No credentials in it: URLs are listed and logged, and deliveries are signed anyway.
pub fn check_url(text: &str) -> Result<url::Url, String> {
    if text.chars().count() > MAX_URL_CHARS {
        return Err(format!("url must be at most {MAX_URL_CHARS} characters"));
    }
    let url = url::Url::parse(text).map_err(|e| format!("url {text:?} is not a URL: {e}"))?;
    let Some(host) = url.host() else {
        return Err(format!("url {text:?} has no host"));
    };
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&host) => {}
        "http" => {
            return Err(format!(
                "url must be https: http is allowed only to this machine (127.0.0.1, [::1] or \
                 localhost), and {host} is not"
            ));
        }
        other => return Err(format!("url must be https, not {other}")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "url must not carry credentials: deliveries are signed with the endpoint's secret"
                .into(),
        );
    }
    if url.fragment().is_some() {
        return Err("url must not have a fragment".into());
    }
    Ok(url)
}

fn is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => IpAddr::V4(*ip).is_loopback(),
        url::Host::Ipv6(ip) => IpAddr::V6(*ip).is_loopback(),
    }
}

/// Checks an endpoint's action filters: at least one, each an action's name, `noun.*` or `*`;
/// returns them without repeats, in the order given.
pub fn check_actions(actions: &[String]) -> Result<Vec<String>, String> {
    if actions.is_empty() {
        return Err(
            "actions must list at least one action: a name such as api_key.revoked, every \
             action of a kind such as api_key.*, or * for all"
                .into(),
        );
    }
    if actions.len() > MAX_ACTIONS {
        return Err(format!("actions may list at most {MAX_ACTIONS} patterns"));
    }
    let mut checked: Vec<String> = Vec::with_capacity(actions.len());
    for pattern in actions {
        if !is_valid_pattern(pattern) {
            return Err(format!(
                "unknown action {pattern:?}: use a name such as api_key.revoked, every action \
                 of a kind such as api_key.*, or * for all"
            ));
        }
        if !checked.contains(pattern) {
            checked.push(pattern.clone());
        }
    }
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_https_or_loopback_http() {
        assert!(check_url("https://hooks.example.com/portcullis").is_ok());
        assert!(check_url("http://127.0.0.1:9000/hook").is_ok());
        assert!(check_url("http://127.8.0.1/hook").is_ok());
        assert!(check_url("http://[::1]:9000/hook").is_ok());
        assert!(check_url("http://LOCALHOST:9000/hook").is_ok());
        let refused = check_url("http://hooks.example.com/").unwrap_err();
        assert!(refused.contains("https"), "{refused}");
        assert!(check_url("http://10.0.0.1/").is_err());
        assert!(check_url("ftp://hooks.example.com/").is_err());
        assert!(check_url("hooks.example.com").is_err());
        assert!(check_url("https://user:pw@hooks.example.com/").is_err());
        assert!(check_url("https://hooks.example.com/#part").is_err());
        let long = format!("https://hooks.example.com/{}", "a".repeat(MAX_URL_CHARS));
        assert!(check_url(&long).is_err());
    }

    #[test]
    fn actions_are_known_patterns() {
        let given = ["api_key.*", "client.deleted", "api_key.*"].map(String::from);
        assert_eq!(
            check_actions(&given).unwrap(),
            ["api_key.*", "client.deleted"]
        );
        assert!(check_actions(&[]).is_err());
        assert!(check_actions(&["api_key.exploded".into()]).is_err());
        assert!(check_actions(&["*".into()]).is_ok());
    }
}
