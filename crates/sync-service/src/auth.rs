//! Who is asking, and what they may touch (`docs/protocol.md`, "Security
//! and limits").
//!
//! Two modes: `none` (development: everyone is `anonymous` with every
//! namespace) and `jwt`. A JWT is checked against one pinned algorithm
//! (HS256 with a shared secret, EdDSA or RS256 with a public key), so a
//! token signed otherwise, or with `alg: none`, is refused before its claims
//! are read; `exp` is required and enforced. Claims: `sub` (the user), `ns`
//! (namespaces readable and writable, `"*"` for all; a string counts as
//! one), `ro` (namespaces readable only) and `admin` (operator endpoints:
//! global stats, metrics, every user's devices).

use std::collections::BTreeSet;

use axum::http::HeaderMap;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sync_core::{Namespace, UserId};

use crate::error::ApiError;

/// The namespaces a principal may read or write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// Every namespace (`"*"`).
    All,
    /// Only these.
    Some(BTreeSet<Namespace>),
}

impl Grant {
    fn contains(&self, namespace: &Namespace) -> bool {
        match self {
            Grant::All => true,
            Grant::Some(set) => set.contains(namespace),
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user (`sub`).
    pub user: UserId,
    /// Namespaces readable and writable.
    pub write: Grant,
    /// Namespaces readable only (beside those in `write`).
    pub read_only: BTreeSet<Namespace>,
    /// Whether the caller may use the operator endpoints.
    pub admin: bool,
    /// When the credentials expire (seconds since the epoch), if they do.
    pub expires_at: Option<u64>,
}

/// The write path asks the principal what its token allows.
impl sync_engine::Access for Principal {
    fn user(&self) -> &UserId {
        &self.user
    }

    fn check_write(&self, namespace: &Namespace) -> Result<(), sync_engine::EngineError> {
        Principal::check_write(self, namespace)
            .map_err(|error| sync_engine::EngineError::Forbidden(error.to_string()))
    }
}

impl Principal {
    /// The development principal of auth mode `none`.
    pub fn anonymous() -> Principal {
        Principal {
            user: UserId::anonymous(),
            write: Grant::All,
            read_only: BTreeSet::new(),
            admin: true,
            expires_at: None,
        }
    }

    /// Whether the caller may read `namespace`.
    pub fn can_read(&self, namespace: &Namespace) -> bool {
        self.write.contains(namespace) || self.read_only.contains(namespace)
    }

    /// Whether the caller may write `namespace`.
    pub fn can_write(&self, namespace: &Namespace) -> bool {
        self.write.contains(namespace)
    }

    /// Fails unless the caller may read `namespace`.
    pub fn check_read(&self, namespace: &Namespace) -> Result<(), ApiError> {
        if self.can_read(namespace) {
            Ok(())
        } else {
            Err(ApiError::namespace_forbidden(namespace.as_str()))
        }
    }

    /// Fails unless the caller may write `namespace`.
    pub fn check_write(&self, namespace: &Namespace) -> Result<(), ApiError> {
        if self.can_write(namespace) {
            Ok(())
        } else if self.can_read(namespace) {
            Err(ApiError::Forbidden(format!(
                "namespace {namespace:?} is read-only for this token"
            )))
        } else {
            Err(ApiError::namespace_forbidden(namespace.as_str()))
        }
    }

    /// Fails unless the caller is an operator.
    pub fn check_admin(&self) -> Result<(), ApiError> {
        if self.admin {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "this endpoint needs an admin token".into(),
            ))
        }
    }

    /// Every namespace the caller may read; `None` when that is all of them.
    pub fn readable(&self) -> Option<BTreeSet<Namespace>> {
        match &self.write {
            Grant::All => None,
            Grant::Some(set) => Some(set.union(&self.read_only).cloned().collect()),
        }
    }

    /// Whether the credentials have expired at `now_secs`.
    pub fn is_expired(&self, now_secs: u64) -> bool {
        self.expires_at.is_some_and(|exp| exp <= now_secs)
    }
}

/// How tokens are verified.
#[derive(Clone)]
pub enum Authenticator {
    /// No authentication: every request is [`Principal::anonymous`].
    None,
    /// JWTs verified with one pinned algorithm and key.
    Jwt {
        /// The key that verifies signatures.
        key: DecodingKey,
        /// The validation rules (pinned algorithm, `exp` required).
        validation: Box<Validation>,
    },
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Authenticator::None => f.write_str("Authenticator::None"),
            Authenticator::Jwt { validation, .. } => f
                .debug_struct("Authenticator::Jwt")
                .field("algorithms", &validation.algorithms)
                .finish_non_exhaustive(),
        }
    }
}

/// One string or a list of strings (`"ns": "team-1"` or `["a", "b"]`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        }
    }
}

/// The claims read. `sub` and `exp` are required, but optional here so
/// that a token without them is refused by the validation, which says so,
/// rather than by the parser.
#[derive(Debug, Deserialize)]
struct Claims {
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    ns: Option<OneOrMany>,
    #[serde(default)]
    ro: Option<OneOrMany>,
    #[serde(default)]
    admin: bool,
    #[serde(default)]
    exp: Option<u64>,
}

/// The leeway allowed on `exp` for clock differences, in seconds.
const EXP_LEEWAY_SECS: u64 = 5;

impl Authenticator {
    /// HS256 with a shared secret.
    pub fn hs256(secret: &[u8]) -> Authenticator {
        Self::jwt(DecodingKey::from_secret(secret), Algorithm::HS256)
    }

    /// EdDSA (Ed25519) with a PEM public key.
    pub fn ed25519_pem(pem: &[u8]) -> Result<Authenticator, ApiError> {
        let key = DecodingKey::from_ed_pem(pem)
            .map_err(|error| ApiError::Invalid(format!("Ed25519 public key: {error}")))?;
        Ok(Self::jwt(key, Algorithm::EdDSA))
    }

    /// RS256 with a PEM public key.
    pub fn rs256_pem(pem: &[u8]) -> Result<Authenticator, ApiError> {
        let key = DecodingKey::from_rsa_pem(pem)
            .map_err(|error| ApiError::Invalid(format!("RSA public key: {error}")))?;
        Ok(Self::jwt(key, Algorithm::RS256))
    }

    fn jwt(key: DecodingKey, algorithm: Algorithm) -> Authenticator {
        let mut validation = Validation::new(algorithm);
        validation.leeway = EXP_LEEWAY_SECS;
        validation.validate_exp = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Authenticator::Jwt {
            key,
            validation: Box::new(validation),
        }
    }

    /// Whether requests go unauthenticated.
    pub fn is_none(&self) -> bool {
        matches!(self, Authenticator::None)
    }

    /// The principal of `token` (`None` when the request carried none).
    pub fn authenticate(&self, token: Option<&str>) -> Result<Principal, ApiError> {
        let (key, validation) = match self {
            Authenticator::None => return Ok(Principal::anonymous()),
            Authenticator::Jwt { key, validation } => (key, validation),
        };
        let token =
            token.ok_or_else(|| ApiError::Unauthorized("a bearer token is required".into()))?;
        let data = jsonwebtoken::decode::<Claims>(token, key, validation).map_err(|error| {
            // The token itself is never echoed or logged.
            ApiError::Unauthorized(format!("token refused: {}", describe(&error)))
        })?;
        let claims = data.claims;
        let user = claims
            .sub
            .and_then(|sub| UserId::new(sub).ok())
            .ok_or_else(|| ApiError::Unauthorized("token refused: invalid sub".into()))?;
        let exp = claims.exp.ok_or_else(|| {
            ApiError::Unauthorized("token refused: a required claim is missing".into())
        })?;
        let mut write = BTreeSet::new();
        let mut all = false;
        for name in claims.ns.map(OneOrMany::into_vec).unwrap_or_default() {
            if name == "*" {
                all = true;
            } else {
                write.insert(parse_namespace(&name)?);
            }
        }
        let read_only = claims
            .ro
            .map(OneOrMany::into_vec)
            .unwrap_or_default()
            .iter()
            .map(|name| parse_namespace(name))
            .collect::<Result<BTreeSet<_>, _>>()?;
        Ok(Principal {
            user,
            write: if all { Grant::All } else { Grant::Some(write) },
            read_only,
            admin: claims.admin,
            expires_at: Some(exp),
        })
    }

    /// The principal of a request: the `Authorization: Bearer` header, or
    /// else the `token` query parameter (for WebSocket clients that cannot
    /// set headers).
    pub fn authenticate_request(
        &self,
        headers: &HeaderMap,
        query_token: Option<&str>,
    ) -> Result<Principal, ApiError> {
        let header = headers
            .get(axum::http::header::AUTHORIZATION)
            .map(|value| {
                value.to_str().ok().and_then(bearer_token).ok_or_else(|| {
                    ApiError::Unauthorized("Authorization must be `Bearer <token>`".into())
                })
            })
            .transpose()?;
        self.authenticate(header.or(query_token))
    }
}

/// The token of an `Authorization: Bearer <token>` value; the scheme's
/// case does not matter (RFC 9110 section 11.1).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

fn parse_namespace(name: &str) -> Result<Namespace, ApiError> {
    Namespace::new(name)
        .map_err(|_| ApiError::Unauthorized("token refused: invalid namespace claim".into()))
}

fn describe(error: &jsonwebtoken::errors::Error) -> &'static str {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::ExpiredSignature => "expired",
        ErrorKind::InvalidSignature => "bad signature",
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => "algorithm not allowed",
        ErrorKind::MissingRequiredClaim(_) => "a required claim is missing",
        ErrorKind::ImmatureSignature => "not valid yet",
        ErrorKind::InvalidToken
        | ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_) => "malformed",
        _ => "invalid",
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    use super::*;

    fn token(claims: serde_json::Value, secret: &[u8]) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret),
        )
        .unwrap()
    }

    fn far() -> u64 {
        4_102_444_800 // 2100-01-01
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for value in ["Bearer abc", "bearer abc", "BEARER abc", "bEaReR  abc "] {
            assert_eq!(bearer_token(value), Some("abc"), "{value}");
        }
        for value in ["Basic abc", "Bearer", "Bearer ", "Bearerabc", "abc"] {
            assert_eq!(bearer_token(value), None, "{value}");
        }
    }

    #[test]
    fn reads_the_claims() {
        let auth = Authenticator::hs256(b"secret");
        let principal = auth
            .authenticate(Some(&token(
                json!({"sub": "alice", "ns": "team", "ro": ["pub"], "exp": far()}),
                b"secret",
            )))
            .unwrap();
        let ns = |name: &str| Namespace::new(name).unwrap();
        assert!(principal.can_write(&ns("team")));
        assert!(principal.can_read(&ns("pub")) && !principal.can_write(&ns("pub")));
        assert!(!principal.can_read(&ns("other")));
        assert!(!principal.admin);
        let all = auth
            .authenticate(Some(&token(
                json!({"sub": "ops", "ns": ["*"], "admin": true, "exp": far()}),
                b"secret",
            )))
            .unwrap();
        assert!(all.can_write(&ns("anything")) && all.admin);
    }

    #[test]
    fn refuses_bad_tokens() {
        let auth = Authenticator::hs256(b"secret");
        let expired = token(json!({"sub": "a", "ns": "x", "exp": 1_000}), b"secret");
        let wrong_key = token(json!({"sub": "a", "ns": "x", "exp": far()}), b"other");
        let no_exp = token(json!({"sub": "a", "ns": "x"}), b"secret");
        // alg: none, with an empty signature.
        let none = format!(
            "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.",
            "eyJzdWIiOiJhIiwibnMiOiIqIiwiZXhwIjo0MTAyNDQ0ODAwfQ"
        );
        for (bad, why) in [
            (None, "required"),
            (Some(expired.as_str()), "expired"),
            (Some(wrong_key.as_str()), "bad signature"),
            (Some(no_exp.as_str()), "missing"),
            (Some(none.as_str()), "token refused"),
            (Some("not.a.jwt"), "malformed"),
        ] {
            let error = auth.authenticate(bad).unwrap_err();
            assert!(matches!(error, ApiError::Unauthorized(_)), "{bad:?}");
            assert!(error.to_string().contains(why), "{bad:?}: {error}");
        }
    }
}
