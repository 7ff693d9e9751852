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

/// REDIS_URL's Sentinel form: `redis+sentinel://[user:password@]host:port[,host:port…]/MASTER[/DB]`,
/// or `rediss+sentinel://` for TLS to the sentinels and the master. The credentials are the
/// master's (the sentinels are asked without any).
#[derive(Clone, Debug, PartialEq)]
pub struct RedisSentinel {
    pub sentinels: Vec<(String, u16)>,
    pub master: String,
    pub db: i64,
    pub tls: bool,
    userinfo: String,
}

impl RedisSentinel {
    /// The URL of a sentinel, for asking it where the master is.
    pub fn sentinel_url(&self, (host, port): &(String, u16)) -> String {
        format!("{}://{host}:{port}", if self.tls { "rediss" } else { "redis" })
    }

    /// The URL of the master that a sentinel named, with the credentials and database.
    pub fn master_url(&self, host: &str, port: u16) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}://{}{host}:{port}/{}", self.userinfo, self.db)
    }

    /// `sentinel a:26379,b:26379 master mymaster db 0`, without credentials.
    pub fn display(&self) -> String {
        let hosts: Vec<String> = self.sentinels.iter().map(|(h, p)| format!("{h}:{p}")).collect();
        format!("sentinel {} master {} db {}", hosts.join(","), self.master, self.db)
    }
}

/// The Sentinel form of REDIS_URL, None for a plain `redis://` or `rediss://` URL. Errors
/// never repeat the URL, which may hold a password.
pub fn redis_sentinel(value: &str) -> Result<Option<RedisSentinel>, String> {
    let (tls, rest) = match value.split_once("://") {
        Some(("redis+sentinel", rest)) => (false, rest),
        Some(("rediss+sentinel", rest)) => (true, rest),
        _ => return Ok(None),
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((u, h)) => (format!("{u}@"), h),
        None => (String::new(), authority),
    };
    let mut sentinels = Vec::new();
    for (i, entry) in hosts.split(',').enumerate() {
        let (host, port) = match entry.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse::<u16>()
                    .map_err(|_| format!("sentinel {}: port \"{p}\" is not a number", i + 1))?,
            ),
            None => (entry, 26379),
        };
        if host.is_empty() {
            return Err(format!("sentinel {} has no host", i + 1));
        }
        sentinels.push((host.to_string(), port));
    }
    let mut parts = path.split('/').filter(|p| !p.is_empty());
    let master = parts
        .next()
        .ok_or("the Sentinel form names the master: redis+sentinel://host:26379/MASTER[/DB]")?
        .to_string();
    let db = match parts.next() {
        Some(db) => db
            .parse::<i64>()
            .map_err(|_| format!("database \"{db}\" is not a number"))?,
        None => 0,
    };
    Ok(Some(RedisSentinel {
        sentinels,
        master,
        db,
        tls,
        userinfo,
    }))
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

/// Where PostgreSQL is: the hosts of DATABASE_DSN in the order given (libpq's multi-host
/// form), each with the rest of the options, and whether only a writable one will do.
#[derive(Clone, Debug)]
pub struct PgTargets {
    pub hosts: Vec<PgConnectOptions>,
    /// `target_session_attrs=read-write` (or `primary`): skip standbys and read-only servers.
    /// The default with several hosts, since dispatchctl writes; `any` takes the first that
    /// answers, as libpq does.
    pub read_write: bool,
}

impl PgTargets {
    /// The first host's options (the only ones for a single-host DSN).
    pub fn first(&self) -> &PgConnectOptions {
        &self.hosts[0]
    }

    /// Whether a process should watch for a switch of primary: when there is a host to switch
    /// to, or when the one host name may come to point at a new primary.
    pub fn watched(&self) -> bool {
        self.hosts.len() > 1 || self.read_write
    }

    /// `a:5432,b:5433/db`, without credentials.
    pub fn display(&self) -> String {
        let hosts: Vec<String> = self
            .hosts
            .iter()
            .map(|h| format!("{}:{}", h.get_host(), h.get_port()))
            .collect();
        format!(
            "{}/{}",
            hosts.join(","),
            self.first().get_database().unwrap_or("(default)")
        )
    }
}

/// `target_session_attrs`: true for read-write, false for any; what dispatchctl cannot use
/// (it writes) is an error.
fn session_attrs(value: &str) -> Result<bool, String> {
    match value {
        "read-write" | "primary" => Ok(true),
        "any" => Ok(false),
        "read-only" | "standby" | "prefer-standby" => Err(format!(
            "target_session_attrs={value} cannot serve dispatchctl, which writes; use read-write (or any)"
        )),
        other => Err(format!(
            "target_session_attrs \"{other}\" is not one of read-write, primary, any"
        )),
    }
}

/// `host[:port]` entries of a multi-host list, with `default_port` where none is given.
fn host_list(hosts: &str, ports: &[u16], default_port: u16) -> Result<Vec<(String, u16)>, String> {
    let hosts: Vec<&str> = hosts.split(',').map(str::trim).collect();
    if hosts.iter().any(|h| h.is_empty()) {
        return Err("a host in the list is empty".into());
    }
    if ports.len() > 1 && ports.len() != hosts.len() {
        return Err(format!(
            "{} hosts but {} ports: give one port for all, or one per host",
            hosts.len(),
            ports.len()
        ));
    }
    Ok(hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(default_port);
            (h.to_string(), port)
        })
        .collect())
}

/// Accepts a `postgres://` URL or the libpq `key=value` form of the Go service's `.env`,
/// each with one host or several (`host=a,b port=5432,5433`, `postgres://a:5432,b:5433/db`),
/// and `target_session_attrs`. Errors never repeat the DSN, which may hold a password.
pub fn parse_dsn(dsn: &str) -> Result<PgTargets, String> {
    let dsn = dsn.trim();
    if dsn.starts_with("postgres://") || dsn.starts_with("postgresql://") {
        return parse_dsn_url(dsn);
    }
    if !dsn.contains('=') {
        return Err("expected a postgres:// URL or key=value pairs".into());
    }
    let mut options = PgConnectOptions::new_without_pgpass();
    let (mut hosts, mut ports, mut attrs) = (None, Vec::new(), None);
    for pair in dsn.split_whitespace() {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("\"{}\" is not key=value", pair.split('=').next().unwrap_or("")))?;
        let value = value.trim_matches('\'');
        options = match key {
            "host" | "hostaddr" => {
                hosts = Some(value.to_string());
                options
            }
            "port" => {
                ports = value
                    .split(',')
                    .map(|p| {
                        p.trim()
                            .parse::<u16>()
                            .map_err(|_| format!("port \"{p}\" is not a number"))
                    })
                    .collect::<Result<_, _>>()?;
                options
            }
            "target_session_attrs" => {
                attrs = Some(session_attrs(value)?);
                options
            }
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
                    "unknown key \"{other}\"; accepted: host, port, user, password, dbname, sslmode, sslrootcert, \
                     sslcert, sslkey, application_name, target_session_attrs"
                ))
            }
        };
    }
    let list = match hosts {
        Some(h) => host_list(&h, &ports, options.get_port())?,
        None => vec![(
            options.get_host().to_string(),
            ports.first().copied().unwrap_or(options.get_port()),
        )],
    };
    Ok(targets(options, list, attrs))
}

/// The URL form: the authority may list several `host:port`, which `url` cannot parse, so
/// the list is taken out and the URL parsed with its first host.
fn parse_dsn_url(dsn: &str) -> Result<PgTargets, String> {
    let invalid = |e: &dyn std::fmt::Display| format!("not a valid PostgreSQL URL: {}", strip_secrets(&e.to_string()));
    let (scheme, rest) = dsn.split_once("://").ok_or("not a valid PostgreSQL URL")?;
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let (userinfo, host_part) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let mut entries = Vec::new();
    for entry in host_part.split(',') {
        let (host, port) = match entry.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || entry.starts_with('[') => (
                h.to_string(),
                Some(
                    p.parse::<u16>()
                        .map_err(|_| format!("not a valid PostgreSQL URL: port \"{p}\" is not a number"))?,
                ),
            ),
            _ => (entry.to_string(), None),
        };
        entries.push((host, port));
    }
    // The session attribute is ours to read; sqlx would ignore it.
    let mut attrs = None;
    let (path, query) = match tail.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (tail, None),
    };
    let mut kept = Vec::new();
    for param in query.into_iter().flat_map(|q| q.split('&')).filter(|p| !p.is_empty()) {
        match param.split_once('=') {
            Some(("target_session_attrs", v)) => attrs = Some(session_attrs(v)?),
            _ => kept.push(param),
        }
    }
    let first = entries.first().map(|(h, _)| h.clone()).unwrap_or_default();
    let userinfo = userinfo.map_or_else(String::new, |u| format!("{u}@"));
    let query = if kept.is_empty() {
        String::new()
    } else {
        format!("?{}", kept.join("&"))
    };
    let single = format!("{scheme}://{userinfo}{first}{path}{query}");
    let options = PgConnectOptions::from_str(&single).map_err(|e| invalid(&e))?;
    let default_port = options.get_port();
    let list = entries
        .into_iter()
        .map(|(h, p)| (h, p.unwrap_or(default_port)))
        .collect();
    Ok(targets(options, list, attrs))
}

fn targets(options: PgConnectOptions, hosts: Vec<(String, u16)>, attrs: Option<bool>) -> PgTargets {
    let read_write = attrs.unwrap_or(hosts.len() > 1);
    PgTargets {
        hosts: hosts
            .into_iter()
            .map(|(host, port)| options.clone().host(&host).port(port))
            .collect(),
        read_write,
    }
}

fn strip_secrets(message: &str) -> String {
    // sqlx's URL errors quote the input at times; never echo anything after "://".
    match message.find("://") {
        Some(i) => format!("{}://…", &message[..i]),
        None => message.to_string(),
    }
}
