//! API tokens and their scopes: `API_TOKENS` entries are `TOKEN` (every scope, as before
//! scopes existed), `read:TOKEN` (GET only) or `send:TOKEN` (create and cancel, and read what
//! it sent: `dispatchctl send --wait` needs both). Only the SHA-256 digest is compared, so the
//! comparison takes the same time whatever the length of the token presented.

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Read = 1,
    Send = 2,
    All = 3,
}

impl Scope {
    /// Whether a token of this scope may make a request with `method`.
    pub fn allows(self, method: &axum::http::Method) -> bool {
        use axum::http::Method;
        match self {
            Scope::All | Scope::Send => true,
            Scope::Read => matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Send => "send",
            Scope::All => "all",
        }
    }

    fn from_u8(v: u8) -> Option<Scope> {
        match v {
            1 => Some(Scope::Read),
            2 => Some(Scope::Send),
            3 => Some(Scope::All),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct ApiToken {
    /// The token itself, without its scope prefix (what a client presents).
    pub secret: SecretString,
    pub scope: Scope,
    digest: [u8; 32],
}

impl ApiToken {
    /// One `API_TOKENS` entry. A known scope prefix is split off; any other colon belongs
    /// to the token.
    pub fn parse(entry: &str) -> ApiToken {
        let (scope, token) = match entry.split_once(':') {
            Some(("read", t)) => (Scope::Read, t),
            Some(("send", t)) => (Scope::Send, t),
            _ => (Scope::All, entry),
        };
        ApiToken {
            digest: digest(token),
            secret: SecretString::from(token.to_string()),
            scope,
        }
    }

    /// A token taken whole, colons and all (METRICS_TOKEN has no scopes).
    pub fn parse_unscoped(token: &str) -> ApiToken {
        ApiToken {
            digest: digest(token),
            secret: SecretString::from(token.to_string()),
            scope: Scope::Read,
        }
    }

    pub fn token(&self) -> &str {
        self.secret.expose_secret()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The scope of the token `presented` among `tokens`, or None. Compares digests in constant
/// time against every token, whether or not one matched already.
pub fn scope_of(tokens: &[ApiToken], presented: &str) -> Option<Scope> {
    let presented = digest(presented);
    let mut found = 0u8;
    for t in tokens {
        let matched = presented.ct_eq(&t.digest);
        found = u8::conditional_select(&found, &(t.scope as u8), matched);
    }
    Scope::from_u8(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Method;

    #[test]
    fn scopes_come_from_known_prefixes_only() {
        let tokens: Vec<ApiToken> = ["read:r-1", "send:s-1", "plain", "odd:colon"]
            .into_iter()
            .map(ApiToken::parse)
            .collect();
        assert_eq!(scope_of(&tokens, "r-1"), Some(Scope::Read));
        assert_eq!(scope_of(&tokens, "s-1"), Some(Scope::Send));
        assert_eq!(scope_of(&tokens, "plain"), Some(Scope::All));
        assert_eq!(scope_of(&tokens, "odd:colon"), Some(Scope::All));
        assert_eq!(
            scope_of(&tokens, "read:r-1"),
            None,
            "the prefix is not part of the token"
        );
        assert_eq!(scope_of(&tokens, ""), None);
        assert_eq!(scope_of(&tokens, "r-"), None);
    }

    #[test]
    fn read_may_only_get() {
        assert!(Scope::Read.allows(&Method::GET) && !Scope::Read.allows(&Method::POST));
        assert!(Scope::Send.allows(&Method::POST) && Scope::Send.allows(&Method::GET));
    }
}
