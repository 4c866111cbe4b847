//! `jwt_header`: bearer tokens as `sync_service::auth` reads them before
//! and around the signature check: the token's three parts, its header
//! (the pinned `alg`), its claims (`sub`, `exp`, `ns`, `ro`, `admin`).

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderValue, header::AUTHORIZATION};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde::Deserialize;
use sync_service::{ApiError, Authenticator, Principal};

/// The HS256 secret of the fuzzed server.
const SECRET: &[u8] = b"fuzzing-secret-0123456789abcdef";

/// Checks `data` twice against an HS256 authenticator. As a token (in the
/// `Authorization` header or the `?token=` parameter) it must be refused
/// with `unauthorized`: without the secret nothing is accepted. Then,
/// split at the first NUL into a header and claims signed with the right
/// secret: accepted only with `alg` `HS256`, a valid `sub` and an `exp` not
/// past, and then the principal is what the claims say.
pub fn jwt_header(data: &[u8]) {
    let auth = Authenticator::hs256(SECRET);
    if let Ok(token) = std::str::from_utf8(data) {
        assert_unauthorized(auth.authenticate(Some(token)), token);
        let empty = HeaderMap::new();
        assert_unauthorized(auth.authenticate_request(&empty, Some(token)), token);
        if let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}")) {
            let mut headers = HeaderMap::new();
            headers.insert(AUTHORIZATION, value);
            assert_unauthorized(auth.authenticate_request(&headers, None), token);
        }
    }
    let parts = crate::split::split(data, 2);
    let (header, claims) = (parts[0], parts.get(1).copied().unwrap_or_default());
    let message = format!("{}.{}", base64url(header), base64url(claims));
    let Ok(signature) = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_secret(SECRET),
        Algorithm::HS256,
    ) else {
        return;
    };
    let token = format!("{message}.{signature}");
    match auth.authenticate(Some(&token)) {
        Ok(principal) => check_accepted(&principal, header, claims),
        Err(error) => assert!(
            matches!(error, ApiError::Unauthorized(_)),
            "a signed token refused with {error:?}"
        ),
    }
}

fn assert_unauthorized(result: Result<Principal, ApiError>, token: &str) {
    assert!(
        matches!(result, Err(ApiError::Unauthorized(_))),
        "token {token:?} without the secret gave {result:?}"
    );
}

/// The header fields the check reads.
#[derive(Debug, Deserialize)]
struct KnownHeader {
    alg: Option<String>,
}

/// The claims the server reads, read as it reads them: serde skips unknown
/// claims without checking them (a number out of range, a string of
/// invalid UTF-8), so a token whose unread claims hold such values is
/// still accepted, and rightly so.
#[derive(Debug, Deserialize)]
struct KnownClaims {
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    exp: Option<u64>,
    #[serde(default)]
    admin: Option<bool>,
    #[serde(default)]
    ns: Option<Names>,
    #[serde(default)]
    ro: Option<Names>,
}

/// `ns` and `ro`: one name or a list.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Names {
    One(String),
    Many(Vec<String>),
}

impl Names {
    fn list(names: Option<&Names>) -> &[String] {
        match names {
            Some(Names::One(one)) => std::slice::from_ref(one),
            Some(Names::Many(many)) => many,
            None => &[],
        }
    }
}

/// What an accepted token must have said.
fn check_accepted(principal: &Principal, header: &[u8], claims: &[u8]) {
    let shown = String::from_utf8_lossy(claims);
    let header: KnownHeader = serde_json::from_slice(header)
        .unwrap_or_else(|error| panic!("accepted a token whose header does not read: {error}"));
    assert_eq!(
        header.alg.as_deref(),
        Some("HS256"),
        "accepted a token with header {header:?}"
    );
    let claims: KnownClaims = serde_json::from_slice(claims)
        .unwrap_or_else(|error| panic!("accepted a token whose claims do not read: {error}"));
    assert_eq!(
        claims.sub.as_deref(),
        Some(principal.user.as_str()),
        "principal {principal:?} from claims {shown}"
    );
    assert_eq!(claims.exp, principal.expires_at, "exp of claims {shown}");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    // The leeway is 5 s; a minute more covers the time since the check.
    assert!(
        claims.exp.is_some_and(|exp| exp.saturating_add(65) >= now),
        "accepted an expired token: {shown}"
    );
    assert_eq!(
        claims.admin.unwrap_or(false),
        principal.admin,
        "admin of claims {shown}"
    );
    let written = Names::list(claims.ns.as_ref());
    for name in written.iter().chain(Names::list(claims.ro.as_ref())) {
        if name != "*" {
            let namespace = name.parse().unwrap_or_else(|error| {
                panic!("accepted a token naming namespace {name:?}: {error}")
            });
            assert!(principal.can_read(&namespace), "{name} of claims {shown}");
        }
    }
    let all = written.iter().any(|name| name == "*");
    assert_eq!(principal.readable().is_none(), all, "ns of claims {shown}");
}

/// Base64url without padding (RFC 7515's encoding of JWT parts).
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_base64url() {
        assert_eq!(base64url(b""), "");
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(b"\xfb\xff"), "-_8");
    }

    #[test]
    fn accepts_a_well_formed_token() {
        let header = br#"{"alg":"HS256","typ":"JWT"}"#;
        let claims = br#"{"sub":"alice","ns":["team"],"ro":"pub","exp":4102444800}"#;
        let message = format!("{}.{}", base64url(header), base64url(claims));
        let signature = jsonwebtoken::crypto::sign(
            message.as_bytes(),
            &EncodingKey::from_secret(SECRET),
            Algorithm::HS256,
        )
        .unwrap();
        let principal = Authenticator::hs256(SECRET)
            .authenticate(Some(&format!("{message}.{signature}")))
            .unwrap();
        assert_eq!(principal.user.as_str(), "alice");
        let mut input = header.to_vec();
        input.push(0);
        input.extend_from_slice(claims);
        jwt_header(&input);
    }
}
