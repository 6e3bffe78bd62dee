//! The audit log: who changed or did what, to what, from where. Each event is written in the
//! same transaction as the change it records (`store::audit`), so the log holds every change
//! that happened and nothing that did not; webhooks are queued in that transaction too.
//! Events never carry a secret: ids, names and which fields changed.

use serde::Serialize;
use serde_json::{Value, json};

use crate::clock::unix_now_ms;
use crate::ids::{ApiKeyId, ClientId, EventId, UserId};

/// What happened: a dotted name, the noun first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    ApiKeyCreated,
    ApiKeyUpdated,
    ApiKeyRevoked,
    ClientCreated,
    ClientUpdated,
    ClientSecretRotated,
    ClientDeleted,
    UserCreated,
    UserUpdated,
    UserDisabled,
    UserEnabled,
    UserPasswordReset,
    UserDeleted,
    OrganizationCreated,
    OrganizationDeleted,
    OrganizationMemberAdded,
    OrganizationMemberRemoved,
    SignInSucceeded,
    SignInFailed,
    SignInThrottled,
    ConsentGranted,
    ConsentWithdrawn,
    RefreshTokenReuseDetected,
    AuthorizationCodeReuseDetected,
    SigningKeyRotated,
    WebhookCreated,
    WebhookDeleted,
}

impl Action {
    pub const ALL: [Self; 27] = [
        Self::ApiKeyCreated,
        Self::ApiKeyUpdated,
        Self::ApiKeyRevoked,
        Self::ClientCreated,
        Self::ClientUpdated,
        Self::ClientSecretRotated,
        Self::ClientDeleted,
        Self::UserCreated,
        Self::UserUpdated,
        Self::UserDisabled,
        Self::UserEnabled,
        Self::UserPasswordReset,
        Self::UserDeleted,
        Self::OrganizationCreated,
        Self::OrganizationDeleted,
        Self::OrganizationMemberAdded,
        Self::OrganizationMemberRemoved,
        Self::SignInSucceeded,
        Self::SignInFailed,
        Self::SignInThrottled,
        Self::ConsentGranted,
        Self::ConsentWithdrawn,
        Self::RefreshTokenReuseDetected,
        Self::AuthorizationCodeReuseDetected,
        Self::SigningKeyRotated,
        Self::WebhookCreated,
        Self::WebhookDeleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApiKeyCreated => "api_key.created",
            Self::ApiKeyUpdated => "api_key.updated",
            Self::ApiKeyRevoked => "api_key.revoked",
            Self::ClientCreated => "client.created",
            Self::ClientUpdated => "client.updated",
            Self::ClientSecretRotated => "client.secret_rotated",
            Self::ClientDeleted => "client.deleted",
            Self::UserCreated => "user.created",
            Self::UserUpdated => "user.updated",
            Self::UserDisabled => "user.disabled",
            Self::UserEnabled => "user.enabled",
            Self::UserPasswordReset => "user.password_reset",
            Self::UserDeleted => "user.deleted",
            Self::OrganizationCreated => "organization.created",
            Self::OrganizationDeleted => "organization.deleted",
            Self::OrganizationMemberAdded => "organization.member_added",
            Self::OrganizationMemberRemoved => "organization.member_removed",
            Self::SignInSucceeded => "sign_in.succeeded",
            Self::SignInFailed => "sign_in.failed",
            Self::SignInThrottled => "sign_in.throttled",
            Self::ConsentGranted => "consent.granted",
            Self::ConsentWithdrawn => "consent.withdrawn",
            Self::RefreshTokenReuseDetected => "refresh_token.reuse_detected",
            Self::AuthorizationCodeReuseDetected => "authorization_code.reuse_detected",
            Self::SigningKeyRotated => "signing_key.rotated",
            Self::WebhookCreated => "webhook.created",
            Self::WebhookDeleted => "webhook.deleted",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|action| action.as_str() == name)
    }
}

/// Who asks for an operation: recorded on what it makes, where it matters, and in the audit
/// log always.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// An admin API key, by id.
    AdminKey(ApiKeyId),
    /// A person, by user id: on their own account page, or signing in.
    User(UserId),
    /// An OAuth client, by id (a refresh token it presented, say).
    Client(ClientId),
    /// The command line, which has no identity beyond access to the database and the keys.
    Cli,
    /// Someone not (yet) known: a failed sign-in.
    Anonymous,
}

impl Actor {
    /// The id recorded as the creator of what the actor makes; none for the CLI.
    pub fn id(&self) -> Option<&str> {
        match self {
            Self::AdminKey(id) => Some(id.as_str()),
            Self::User(id) => Some(id.as_str()),
            Self::Client(id) => Some(id.as_str()),
            Self::Cli | Self::Anonymous => None,
        }
    }

    /// As the audit log records it.
    pub fn recorded(&self) -> &str {
        match self {
            Self::Cli => "cli",
            Self::Anonymous => "anonymous",
            other => other.id().unwrap_or_default(),
        }
    }
}

/// The actor, and where the request came from: what every event records besides what
/// happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Initiator {
    pub actor: Actor,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

impl Initiator {
    /// The command line: no address, no request.
    pub fn cli() -> Self {
        Self::without_request(Actor::Cli)
    }

    /// An actor acting outside any HTTP request (a test, the CLI).
    pub fn without_request(actor: Actor) -> Self {
        Self {
            actor,
            ip: None,
            user_agent: None,
            request_id: None,
        }
    }

    /// The same request and place, another actor (the person a sign-in identified).
    pub fn as_actor(&self, actor: Actor) -> Self {
        Self {
            actor,
            ..self.clone()
        }
    }
}

/// One event, as stored and as sent to webhooks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEvent {
    pub id: EventId,
    /// Milliseconds since the Unix epoch.
    #[serde(rename = "at", serialize_with = "rfc3339_ms")]
    pub at_ms: i64,
    #[serde(serialize_with = "action_name")]
    pub action: Action,
    pub actor: String,
    pub target: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub details: Value,
}

impl AuditEvent {
    /// `action` by `by` on `target`, now.
    pub fn new(action: Action, by: &Initiator, target: Option<&str>, details: Value) -> Self {
        Self {
            id: EventId::generate(),
            at_ms: unix_now_ms(),
            action,
            actor: by.actor.recorded().to_owned(),
            target: target.map(str::to_owned),
            ip: by.ip.clone(),
            user_agent: by.user_agent.clone(),
            request_id: by.request_id.clone(),
            details: if details.is_null() {
                json!({})
            } else {
                details
            },
        }
    }
}

fn action_name<S: serde::Serializer>(action: &Action, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(action.as_str())
}

fn rfc3339_ms<S: serde::Serializer>(at_ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_rfc3339_ms(*at_ms))
}

/// `2026-12-01T19:05:29.123Z`.
pub fn format_rfc3339_ms(at_ms: i64) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_ms) * 1_000_000)
        .ok()
        .and_then(|at| at.format(&format).ok())
        .unwrap_or_else(|| at_ms.to_string())
}

/// Which events an operator wants: an action's name, every action of a noun (`api_key.*`), or
/// all (`*`).
pub fn wants(patterns: &[String], action: Action) -> bool {
    let name = action.as_str();
    patterns.iter().any(|pattern| {
        pattern == "*"
            || pattern == name
            || pattern
                .strip_suffix(".*")
                .is_some_and(|noun| name.split_once('.').is_some_and(|(n, _)| n == noun))
    })
}

/// Whether `pattern` can match any action: refused where endpoints are registered.
pub fn is_valid_pattern(pattern: &str) -> bool {
    Action::ALL
        .iter()
        .any(|action| wants(&[pattern.to_owned()], *action))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dotted_and_parse_back() {
        for action in Action::ALL {
            assert_eq!(Action::parse(action.as_str()), Some(action));
            assert!(action.as_str().contains('.'));
        }
        assert_eq!(Action::parse("api_key"), None);
    }

    #[test]
    fn patterns_choose_actions() {
        let patterns = vec!["api_key.*".to_owned(), "client.deleted".to_owned()];
        assert!(wants(&patterns, Action::ApiKeyRevoked));
        assert!(wants(&patterns, Action::ClientDeleted));
        assert!(!wants(&patterns, Action::ClientCreated));
        assert!(wants(&["*".to_owned()], Action::SignInFailed));
        assert!(is_valid_pattern("sign_in.*"));
        assert!(!is_valid_pattern("nope.*"));
        assert!(!is_valid_pattern("api_key.exploded"));
    }

    #[test]
    fn times_are_rfc3339_with_milliseconds() {
        assert_eq!(
            format_rfc3339_ms(1_796_154_351_042),
            "2026-12-01T19:45:51.042Z"
        );
    }
}
