//! Why a TLS connection to PostgreSQL failed, in words an operator can act on: sqlx reports a
//! certificate it does not trust as "error communicating with database: invalid peer
//! certificate: UnknownIssuer", and a missing `sslrootcert` without its path.

use sqlx::postgres::{PgConnectOptions, PgSslMode};

/// The cause and the fix when `error`, from connecting with `options` as `url` says, is a TLS
/// failure; None for any other error.
pub(super) fn explain(
    error: &sqlx::Error,
    options: &PgConnectOptions,
    url: &str,
) -> Option<String> {
    let mode = options.get_ssl_mode();
    if matches!(mode, PgSslMode::Disable | PgSslMode::Allow) {
        return None;
    }
    let (host, port) = (options.get_host(), options.get_port());
    let mode_name = mode_name(mode);
    match error {
        // sqlx's words when the server answers the TLS request with "no".
        sqlx::Error::Tls(cause) if cause.to_string().contains("does not support TLS") => {
            Some(format!(
                "PostgreSQL at {host}:{port} does not offer TLS, and sslmode={mode_name} \
                 insists on it: turn on ssl in its postgresql.conf (ssl = on, with a certificate), \
                 or connect with sslmode=prefer only over a network you trust"
            ))
        }
        sqlx::Error::Tls(cause) => Some(format!(
            "cannot set up TLS with PostgreSQL at {host}:{port} (sslmode={mode_name}): {cause}"
        )),
        sqlx::Error::Io(io) => {
            if let Some(tls) = io
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            {
                return Some(certificate_failure(
                    tls,
                    host,
                    port,
                    root_cert(url).as_deref(),
                ));
            }
            // Only sslrootcert is read from a file while connecting (in the verifying modes).
            let verifies = matches!(mode, PgSslMode::VerifyCa | PgSslMode::VerifyFull);
            let unreadable = matches!(
                io.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
            );
            let root_cert = root_cert(url).filter(|_| verifies && unreadable)?;
            Some(format!("cannot read sslrootcert {root_cert}: {io}"))
        }
        _ => None,
    }
}

fn certificate_failure(
    error: &rustls::Error,
    host: &str,
    port: u16,
    root_cert: Option<&str>,
) -> String {
    use rustls::CertificateError::{
        Expired, ExpiredContext, NotValidForName, NotValidForNameContext, NotValidYet,
        NotValidYetContext, UnknownIssuer,
    };
    let server = format!("PostgreSQL at {host}:{port}");
    let rustls::Error::InvalidCertificate(certificate) = error else {
        return format!("the TLS handshake with {server} failed: {error}");
    };
    match (certificate, root_cert) {
        (UnknownIssuer, Some(root_cert)) => format!(
            "the certificate of {server} is not signed by a CA in sslrootcert ({root_cert}): \
             point sslrootcert at the CA that signed it (a managed database's provider \
             publishes its CA)"
        ),
        (UnknownIssuer, None) => format!(
            "the certificate of {server} is not signed by a public CA: download the CA that \
             signed it (a managed database's provider publishes it) and name it with \
             sslrootcert=PATH"
        ),
        (NotValidForName | NotValidForNameContext { .. }, _) => format!(
            "the certificate of {server} is not valid for {host} ({error}): connect by a name \
             the certificate holds, or use sslmode=verify-ca, which checks the CA but not the \
             name"
        ),
        (Expired | ExpiredContext { .. }, _) => {
            format!("the certificate of {server} has expired ({error}): renew it on the server")
        }
        (NotValidYet | NotValidYetContext { .. }, _) => format!(
            "the certificate of {server} is not valid yet ({error}): check the clocks of both \
             machines"
        ),
        _ => format!("the certificate of {server} is not accepted: {error}"),
    }
}

/// The `sslrootcert` of a URL (or its aliases, or PGSSLROOTCERT, as sqlx reads them).
fn root_cert(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let from_url = parsed.query_pairs().find_map(|(name, value)| {
        matches!(name.as_ref(), "sslrootcert" | "ssl-root-cert" | "ssl-ca")
            .then(|| value.into_owned())
    });
    from_url.or_else(|| std::env::var("PGSSLROOTCERT").ok())
}

fn mode_name(mode: PgSslMode) -> &'static str {
    match mode {
        PgSslMode::Disable => "disable",
        PgSslMode::Allow => "allow",
        PgSslMode::Prefer => "prefer",
        PgSslMode::Require => "require",
        PgSslMode::VerifyCa => "verify-ca",
        PgSslMode::VerifyFull => "verify-full",
    }
}
