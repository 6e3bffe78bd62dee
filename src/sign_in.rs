//! Signing in with a username and password: throttled per username and per network, the
//! password checked in the hashing queue (`passwords`), and nothing told about which part
//! was wrong.

use std::net::{IpAddr, Ipv6Addr};

use serde_json::json;

use crate::app::AppContext;
use crate::audit::{Action, Actor, AuditEvent, Initiator};
use crate::clock::unix_now;
use crate::config::{
    LOGIN_WINDOW_SECS, MAX_LOGIN_FAILURES_PER_ADDRESS, MAX_LOGIN_FAILURES_PER_USERNAME,
};
use crate::ids::UserId;
use crate::metrics;
use crate::passwords;
use crate::store::StoreError;
use crate::users::User;

/// Why a sign-in did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Unknown user, disabled user, or wrong password: the same to the person signing in.
    #[error("the username or password is incorrect")]
    BadCredentials,
    /// Too many failures for this username or from this network in the window.
    #[error("too many failed sign-in attempts")]
    Throttled,
    /// Too many passwords being checked at once: this one was not checked at all.
    #[error("too many sign-ins at once")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The user `username` and `password` prove, asked from `address`.
pub async fn sign_in(
    ctx: &AppContext,
    username: &str,
    password: String,
    address: IpAddr,
    origin: &Initiator,
) -> Result<User, SignInError> {
    let outcome = check(ctx, username, password, address, origin).await;
    metrics::sign_in(match &outcome {
        Ok(_) => "success",
        Err(SignInError::BadCredentials) => "bad_credentials",
        Err(SignInError::Throttled) => "throttled",
        Err(SignInError::Busy) => "busy",
        Err(SignInError::Store(_)) => "error",
    });
    outcome
}

async fn check(
    ctx: &AppContext,
    username: &str,
    password: String,
    address: IpAddr,
    origin: &Initiator,
) -> Result<User, SignInError> {
    // No username has one (see users.rs); refused before the database sees it.
    if username.chars().any(char::is_control) {
        tracing::info!(%address, "failed sign-in: a control character in the username");
        return Err(SignInError::BadCredentials);
    }
    let now = unix_now();
    let user_key = format!("user:{}", username.to_lowercase());
    let address_key = format!("ip:{}", throttled_network(address));
    let store = &ctx.store;
    // Reserved before the password is checked, each attempt in one statement, so that however
    // many arrive at once no more than the limit are checked; while locked, even the right
    // password is refused.
    let address_attempts = store
        .reserve_login_attempt(&address_key, now, LOGIN_WINDOW_SECS)
        .await?;
    if address_attempts > MAX_LOGIN_FAILURES_PER_ADDRESS {
        // Recorded once per window, on the attempt that crosses the limit: a flood of
        // attempts cannot flood the audit log.
        if address_attempts == MAX_LOGIN_FAILURES_PER_ADDRESS + 1 {
            record(
                ctx,
                origin,
                Action::SignInThrottled,
                None,
                username,
                "address",
            )
            .await?;
        }
        return Err(SignInError::Throttled);
    }
    let username_attempts = store
        .reserve_login_attempt(&user_key, now, LOGIN_WINDOW_SECS)
        .await?;
    if username_attempts > MAX_LOGIN_FAILURES_PER_USERNAME {
        if username_attempts == MAX_LOGIN_FAILURES_PER_USERNAME + 1 {
            record(
                ctx,
                origin,
                Action::SignInThrottled,
                None,
                username,
                "username",
            )
            .await?;
        }
        return Err(SignInError::Throttled);
    }

    let found = store.find_user_for_login(username).await?;
    let known_id = found.as_ref().map(|(user, _)| user.id.clone());
    let (user, hash) = match found {
        Some((user, hash)) if !user.is_disabled() => (Some(user), Some(hash)),
        _ => (None, None),
    };
    let Ok(valid) = passwords::verify_password(password, hash).await else {
        for key in [&user_key, &address_key] {
            store.release_login_attempt(key).await?;
        }
        return Err(SignInError::Busy);
    };
    let Some(user) = user.filter(|_| valid) else {
        // Debug-formatted: what someone typed is escaped, so CR, LF or ESC in it cannot forge
        // log lines or drive a terminal.
        tracing::info!(username = ?username, %address, "failed sign-in");
        let reason = if known_id.is_some() {
            "password or disabled"
        } else {
            "no such user"
        };
        record(
            ctx,
            origin,
            Action::SignInFailed,
            known_id.as_ref(),
            username,
            reason,
        )
        .await?;
        return Err(SignInError::BadCredentials);
    };
    // Only this attempt is given back: failures by others in this window still count, or a
    // guesser would get five more every time the owner signs in.
    for key in [&user_key, &address_key] {
        store.release_login_attempt(key).await?;
    }
    tracing::info!(user_id = %user.id, "signed in");
    let event = AuditEvent::new(
        Action::SignInSucceeded,
        &origin.as_actor(Actor::User(user.id.clone())),
        Some(user.id.as_str()),
        json!({ "username": user.username.as_str() }),
    );
    store.record_event_alone(&event).await?;
    Ok(user)
}

/// Longest username kept in an event about a failed sign-in: whatever was typed, bounded.
const MAX_RECORDED_USERNAME_CHARS: usize = 100;

/// Records a sign-in that did not happen, by someone not known to be anyone.
async fn record(
    ctx: &AppContext,
    origin: &Initiator,
    action: Action,
    user_id: Option<&UserId>,
    username: &str,
    reason: &str,
) -> Result<(), StoreError> {
    let username: String = username.chars().take(MAX_RECORDED_USERNAME_CHARS).collect();
    let event = AuditEvent::new(
        action,
        &origin.as_actor(Actor::Anonymous),
        user_id.map(UserId::as_str),
        json!({ "username": username, "reason": reason }),
    );
    ctx.store.record_event_alone(&event).await
}

/// The network a sign-in is throttled by: the address itself for IPv4, its /64 for IPv6, which
/// one subscriber usually holds whole (a guesser would otherwise have 2^64 addresses).
fn throttled_network(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(Ipv6Addr::from(segments))
            }
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::throttled_network;

    #[test]
    fn ipv6_sign_ins_are_throttled_by_their_64() {
        let a = throttled_network("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = throttled_network("2001:db8:1:2:bbbb::9".parse().unwrap());
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "2001:db8:1:2::");
        assert_ne!(a, throttled_network("2001:db8:1:3::1".parse().unwrap()));
        let v4 = throttled_network("192.0.2.7".parse().unwrap());
        assert_eq!(v4.to_string(), "192.0.2.7");
        assert_eq!(throttled_network("::ffff:192.0.2.7".parse().unwrap()), v4);
    }
}
