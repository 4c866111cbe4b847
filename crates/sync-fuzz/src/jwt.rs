//! `jwt_header`: bearer tokens as `sync_service::auth` reads them before
//! and around the signature check: the token's three parts, its header
//! (the pinned `alg`), its claims (`sub`, `exp`, `ns`, `ro`, `admin`).

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderValue, header::AUTHORIZATION};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::Value;
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

/// What an accepted token must have said. The parts are read as lossy
/// UTF-8: serde_json skips the strings of fields it ignores (unknown
/// claims) without checking their UTF-8, so a token whose unread claims
/// hold invalid UTF-8 is still accepted, and rightly so.
fn check_accepted(principal: &Principal, header: &[u8], claims: &[u8]) {
    let header = String::from_utf8_lossy(header);
    let claims = String::from_utf8_lossy(claims);
    let header: Value = serde_json::from_str(&header)
        .unwrap_or_else(|error| panic!("accepted a token whose header is not JSON: {error}"));
    assert_eq!(
        header.get("alg").and_then(Value::as_str),
        Some("HS256"),
        "accepted a token with header {header}"
    );
    let claims: Value = serde_json::from_str(&claims)
        .unwrap_or_else(|error| panic!("accepted a token whose claims are not JSON: {error}"));
    assert_eq!(
        claims.get("sub").and_then(Value::as_str),
        Some(principal.user.as_str()),
        "principal {principal:?} from claims {claims}"
    );
    let exp = claims.get("exp").and_then(Value::as_u64);
    assert_eq!(exp, principal.expires_at, "exp of claims {claims}");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    // The leeway is 5 s; a minute more covers the time since the check.
    assert!(
        exp.is_some_and(|exp| exp.saturating_add(65) >= now),
        "accepted an expired token: {claims}"
    );
    let admin = claims
        .get("admin")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    assert_eq!(admin, principal.admin, "admin of claims {claims}");
    let names = |claim: &str| -> Vec<String> {
        match claims.get(claim) {
            Some(Value::String(one)) => vec![one.clone()],
            Some(Value::Array(many)) => many
                .iter()
                .filter_map(|name| name.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    };
    let written = names("ns");
    for name in written.iter().chain(&names("ro")) {
        if name != "*" {
            let namespace = name.parse().unwrap_or_else(|error| {
                panic!("accepted a token naming namespace {name:?}: {error}")
            });
            assert!(principal.can_read(&namespace), "{name} of claims {claims}");
        }
    }
    let all = written.iter().any(|name| name == "*");
    assert_eq!(principal.readable().is_none(), all, "ns of claims {claims}");
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
