//! `syncctl token mint`: a development HS256 token with the claims the
//! server reads (`sub`, `ns`, `ro`, `admin`, `exp`; see the server's
//! `auth` module), signed with the secret the server was given
//! (`SYNC_JWT_SECRET`). For tests and development: production tokens come
//! from the application's own identity provider.

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow, bail};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::FormatArg;
use crate::output;

/// The shortest secret the server accepts for HS256.
const SECRET_BYTES_MIN: usize = 16;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum TokenCommand {
    /// Makes a development HS256 token.
    Mint {
        /// The server's HS256 secret.
        #[arg(long, env = "SYNC_JWT_SECRET", hide_env_values = true)]
        secret: String,
        /// The user.
        #[arg(long)]
        sub: String,
        /// Namespaces readable and writable (`*` for all); repeatable or
        /// comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "default")]
        ns: Vec<String>,
        /// Namespaces readable only; repeatable or comma-separated.
        #[arg(long, value_delimiter = ',')]
        ro: Vec<String>,
        /// May use the operator endpoints (stats, metrics, backup).
        #[arg(long)]
        admin: bool,
        /// How long it is valid: `90s`, `15m`, `12h`, `7d` or seconds.
        #[arg(long, default_value = "1h")]
        ttl: String,
        #[command(flatten)]
        format: FormatArg,
    },
}

/// Seconds in a duration written as `90s`, `15m`, `12h`, `7d` or `3600`.
pub(crate) fn parse_ttl(text: &str) -> anyhow::Result<u64> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, "s"),
    };
    let number: u64 = number
        .parse()
        .map_err(|_| anyhow!("--ttl {text:?}: expected a number with s, m, h or d"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => bail!("--ttl {text:?}: the unit must be s, m, h or d"),
    };
    let secs = number
        .checked_mul(scale)
        .filter(|secs| *secs > 0)
        .ok_or_else(|| anyhow!("--ttl {text:?}: must be positive and not absurdly long"))?;
    Ok(secs)
}

pub(crate) fn run(command: TokenCommand) -> anyhow::Result<ExitCode> {
    let TokenCommand::Mint {
        secret,
        sub,
        ns,
        ro,
        admin,
        ttl,
        format,
    } = command;
    if secret.len() < SECRET_BYTES_MIN {
        bail!("--secret: the server needs at least {SECRET_BYTES_MIN} bytes");
    }
    if sub.trim().is_empty() {
        bail!("--sub: the user must not be empty");
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the clock is before 1970")?
        .as_secs();
    let exp = now + parse_ttl(&ttl)?;
    let list = |names: &[String]| -> Value {
        let names: Vec<&str> = names
            .iter()
            .map(|n| n.trim())
            .filter(|n| !n.is_empty())
            .collect();
        match names.as_slice() {
            ["*"] => json!("*"),
            names => json!(names),
        }
    };
    let mut claims = json!({"sub": sub, "ns": list(&ns), "iat": now, "exp": exp});
    if !ro.is_empty() {
        claims["ro"] = list(&ro);
    }
    if admin {
        claims["admin"] = json!(true);
    }
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .context("cannot sign the token")?;
    let value = json!({"token": token, "claims": claims});
    output::result(format.format, &value, || token.clone());
    Ok(ExitCode::SUCCESS)
}
