//! The API token (`USER@REALM!TOKENID` + secret) and the `Authorization` header built from it. The secret is
//! kept in a `SecretString` and never appears in `Debug`, errors or events.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

use crate::error::{Error, Result};

/// A PVE API token.
#[derive(Clone)]
pub struct ApiToken {
    id: String,
    secret: SecretString,
}

impl ApiToken {
    /// A token from its id (`USER@REALM!TOKENID`) and secret (the UUID PVE showed once).
    pub fn new(id: impl Into<String>, secret: SecretString) -> Result<Self> {
        let id = id.into();
        if !valid_token_id(&id) {
            return Err(Error::InvalidTokenId { token_id: id });
        }
        Ok(ApiToken { id, secret })
    }

    /// The token id, e.g. `homelab@pve!homelabctl`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The user part, e.g. `homelab@pve`.
    pub fn user(&self) -> &str {
        self.id.split('!').next().unwrap_or(&self.id)
    }

    /// `PVEAPIToken=USER@REALM!TOKENID=SECRET`.
    pub(crate) fn header_value(&self) -> Result<reqwest::header::HeaderValue> {
        let mut value = reqwest::header::HeaderValue::from_str(&format!(
            "PVEAPIToken={}={}",
            self.id,
            self.secret.expose_secret()
        ))
        .map_err(|_| Error::InvalidTokenId {
            token_id: format!("{} (or its secret has invalid characters)", self.id),
        })?;
        value.set_sensitive(true);
        Ok(value)
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiToken")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

fn valid_token_id(id: &str) -> bool {
    let Some((user, token)) = id.rsplit_once('!') else {
        return false;
    };
    let Some((name, realm)) = user.rsplit_once('@') else {
        return false;
    };
    let ident = |s: &str| {
        s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    };
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == ':' || c == '/')
        && ident(realm)
        && ident(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_ids_follow_user_at_realm_bang_name() {
        assert!(valid_token_id("homelab@pve!homelabctl"));
        assert!(valid_token_id("root@pam!ci-1"));
        assert!(!valid_token_id("homelab@pve"));
        assert!(!valid_token_id("homelab!x"));
        assert!(!valid_token_id("home lab@pve!x"));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let t = ApiToken::new("a@pve!b", SecretString::from("s3cr3t-uuid")).expect("valid");
        assert!(!format!("{t:?}").contains("s3cr3t"));
        assert_eq!(t.user(), "a@pve");
    }
}
