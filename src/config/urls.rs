//! The connection strings: RABBITMQ_URL's node list, PostgreSQL DSNs in either form, and
//! URLs with their password taken out for logs. Errors never repeat a secret.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgSslMode};

use super::split_list;

/// The node URLs of a comma-separated RABBITMQ_URL. An entry without a scheme is `host:port`
/// (or `host`) and takes everything else from the first entry, so credentials are written once.
/// Errors name the entry by position, never its text, which may hold a password.
pub fn rabbitmq_nodes(value: &str) -> Result<Vec<String>, String> {
    let entries = split_list(value);
    let Some(first) = entries.first() else {
        return Err("no URL given".into());
    };
    let base = url::Url::parse(first).map_err(|e| format!("entry 1 is not a URL ({e})"))?;
    let mut nodes = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let position = i + 1;
        let url = if entry.contains("://") {
            url::Url::parse(entry).map_err(|e| format!("entry {position} is not a URL ({e})"))?
        } else {
            let (host, port) = match entry.rsplit_once(':') {
                Some((h, p)) => (
                    h,
                    Some(
                        p.parse::<u16>()
                            .map_err(|_| format!("entry {position}: port \"{p}\" is not a number"))?,
                    ),
                ),
                None => (entry.as_str(), None),
            };
            let mut url = base.clone();
            url.set_host(Some(host))
                .map_err(|e| format!("entry {position}: \"{host}\" is not a host name ({e})"))?;
            url.set_port(port)
                .map_err(|_| format!("entry {position}: cannot set a port on this URL"))?;
            url
        };
        if !["amqp", "amqps"].contains(&url.scheme()) {
            return Err(format!(
                "entry {position}: scheme \"{}\" is not one of amqp, amqps",
                url.scheme()
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!("entry {position}: the URL has no host"));
        }
        nodes.push(url.to_string());
    }
    Ok(nodes)
}

/// Drops the password from a URL so it can be logged.
pub fn redact_url(value: &str) -> String {
    match url::Url::parse(value) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "(unparseable URL)".into(),
    }
}

/// Accepts a `postgres://` URL or the libpq `key=value` form of the Go service's `.env`.
/// Errors never repeat the DSN, which may hold a password.
pub fn parse_dsn(dsn: &str) -> Result<PgConnectOptions, String> {
    let dsn = dsn.trim();
    if dsn.starts_with("postgres://") || dsn.starts_with("postgresql://") {
        return PgConnectOptions::from_str(dsn)
            .map_err(|e| format!("not a valid PostgreSQL URL: {}", strip_secrets(&e.to_string())));
    }
    if !dsn.contains('=') {
        return Err("expected a postgres:// URL or key=value pairs".into());
    }
    let mut options = PgConnectOptions::new_without_pgpass();
    for pair in dsn.split_whitespace() {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("\"{}\" is not key=value", pair.split('=').next().unwrap_or("")))?;
        let value = value.trim_matches('\'');
        options = match key {
            "host" | "hostaddr" => options.host(value),
            "port" => options.port(value.parse().map_err(|_| format!("port \"{value}\" is not a number"))?),
            "user" => options.username(value),
            "password" => options.password(value),
            "dbname" => options.database(value),
            "sslmode" => options.ssl_mode(PgSslMode::from_str(value).map_err(|_| {
                format!("sslmode \"{value}\" is not one of disable, allow, prefer, require, verify-ca, verify-full")
            })?),
            "application_name" => options.application_name(value),
            "sslrootcert" => options.ssl_root_cert(value),
            "sslcert" => options.ssl_client_cert(value),
            "sslkey" => options.ssl_client_key(value),
            "connect_timeout" => options,
            other => {
                return Err(format!(
                    "unknown key \"{other}\"; accepted: host, port, user, password, dbname, sslmode, sslrootcert, sslcert, sslkey, application_name"
                ))
            }
        };
    }
    Ok(options)
}

fn strip_secrets(message: &str) -> String {
    // sqlx's URL errors quote the input at times; never echo anything after "://".
    match message.find("://") {
        Some(i) => format!("{}://…", &message[..i]),
        None => message.to_string(),
    }
}
