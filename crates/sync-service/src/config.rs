//! Server settings: built-in defaults, then a TOML file, then `SYNC_*`
//! environment variables, then command-line flags, each overriding the one
//! before; checked once at start so a bad setting stops the server with a
//! message instead of failing later.
//!
//! ```toml
//! listen = "0.0.0.0:7700"
//! data_dir = "/var/lib/sync"
//! store = "sled"                 # sled | postgres
//! # database_url = "postgres://sync@db/sync"   # store postgres
//! # database_schema = "sync"                     # shared by every node
//! console = true                 # the console at / and the demo at /demo
//! disk_reserve_mb = 64           # free space kept; less refuses writes (507)
//! cache_mb = 1024                # sled's page cache
//!
//! [storage]
//! compression = "zstd"           # none | zstd
//! # encryption_key_file = "/etc/sync/storage.key"   # AES-256-GCM at rest
//!
//! [auth]
//! mode = "jwt"                   # none | jwt
//! algorithm = "HS256"            # HS256 | EdDSA | RS256
//! secret = "a long random secret"
//! # public_key_file = "/etc/sync/jwt.pub.pem"   # EdDSA and RS256
//!
//! [limits]
//! request_bytes_max = 1048576
//! operations_per_second = 1000
//!
//! [collections.visitors]
//! strategy = "merge"
//! text_fields = ["notes"]
//! keep_versions = 50
//! [collections.visitors.fields]
//! interests = "union"
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sync_conflict::{CollectionConfig, ConflictConfig, FieldRule};
use sync_core::Strategy;

use crate::auth::Authenticator;
use crate::limits::Limits;

/// Why the settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML for these settings.
    #[error("invalid configuration in {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's explanation.
        message: String,
    },
    /// A setting has a value it cannot have.
    #[error("invalid setting {name}: {message}")]
    Invalid {
        /// The setting.
        name: &'static str,
        /// Why.
        message: String,
    },
}

fn invalid(name: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        message: message.into(),
    }
}

/// Which store holds the data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// Embedded sled in `data_dir` (zero set-up).
    #[default]
    Sled,
    /// PostgreSQL at `database_url`, shareable by several nodes.
    Postgres,
}

impl std::str::FromStr for StoreKind {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "sled" => Ok(StoreKind::Sled),
            "postgres" | "postgresql" => Ok(StoreKind::Postgres),
            other => Err(format!("unknown store {other:?} (sled | postgres)")),
        }
    }
}

/// How requests are authenticated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Development only: everyone is `anonymous` with every namespace.
    #[default]
    None,
    /// JSON Web Tokens.
    Jwt,
}

impl std::str::FromStr for AuthMode {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "none" => Ok(AuthMode::None),
            "jwt" => Ok(AuthMode::Jwt),
            other => Err(format!("unknown auth mode {other:?} (none | jwt)")),
        }
    }
}

/// The one JWT algorithm accepted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum JwtAlgorithm {
    /// HMAC-SHA256 with a shared secret.
    #[default]
    HS256,
    /// Ed25519 signatures, verified with a public key.
    EdDSA,
    /// RSA PKCS#1 v1.5 with SHA-256, verified with a public key.
    RS256,
}

impl std::str::FromStr for JwtAlgorithm {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "HS256" => Ok(JwtAlgorithm::HS256),
            "EdDSA" | "Ed25519" => Ok(JwtAlgorithm::EdDSA),
            "RS256" => Ok(JwtAlgorithm::RS256),
            other => Err(format!(
                "algorithm {other:?} is not allowed (HS256 | EdDSA | RS256)"
            )),
        }
    }
}

/// Authentication settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// `none` or `jwt`.
    pub mode: AuthMode,
    /// The pinned algorithm.
    pub algorithm: JwtAlgorithm,
    /// The HS256 secret.
    pub secret: Option<String>,
    /// A PEM public key for EdDSA or RS256.
    pub public_key_file: Option<PathBuf>,
}

impl AuthConfig {
    /// The authenticator these settings describe.
    pub fn authenticator(&self) -> Result<Authenticator, ConfigError> {
        match (self.mode, self.algorithm) {
            (AuthMode::None, _) => Ok(Authenticator::None),
            (AuthMode::Jwt, JwtAlgorithm::HS256) => {
                let secret = self.secret.as_deref().unwrap_or_default();
                if secret.len() < 16 {
                    return Err(invalid(
                        "auth.secret",
                        "jwt mode with HS256 needs a secret of at least 16 bytes (SYNC_JWT_SECRET)",
                    ));
                }
                Ok(Authenticator::hs256(secret.as_bytes()))
            }
            (AuthMode::Jwt, algorithm) => {
                let path = self.public_key_file.as_ref().ok_or_else(|| {
                    invalid(
                        "auth.public_key_file",
                        format!("jwt mode with {algorithm:?} needs a PEM public key file"),
                    )
                })?;
                let pem = std::fs::read(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                let made = match algorithm {
                    JwtAlgorithm::EdDSA => Authenticator::ed25519_pem(&pem),
                    _ => Authenticator::rs256_pem(&pem),
                };
                made.map_err(|error| invalid("auth.public_key_file", error.to_string()))
            }
        }
    }
}

/// One collection's settings: its conflict resolution and retention.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CollectionSettings {
    /// The strategy (`merge` by default).
    pub strategy: Option<Strategy>,
    /// Strings merged as text under `merge`; empty means every string.
    pub text_fields: Vec<String>,
    /// Rules for single fields.
    pub fields: BTreeMap<String, FieldRule>,
    /// What `concat` puts between the two texts.
    pub concat_separator: Option<String>,
    /// Versions of each document kept in the log; unset keeps all.
    pub keep_versions: Option<u64>,
}

impl CollectionSettings {
    fn conflict_config(&self) -> CollectionConfig {
        let default = CollectionConfig::default();
        CollectionConfig {
            strategy: self.strategy.unwrap_or(default.strategy),
            text_fields: self.text_fields.clone(),
            fields: self.fields.clone(),
            concat_separator: self
                .concat_separator
                .clone()
                .unwrap_or(default.concat_separator),
        }
    }
}

/// Cross-origin settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorsConfig {
    /// Origins allowed to call the HTTP API from a browser (`*` for any);
    /// empty allows none.
    pub allowed_origins: Vec<String>,
    /// Origins allowed to open WebSockets; empty allows any (clients that
    /// are not browsers send no origin).
    pub websocket_origins: Vec<String>,
}

/// Whether acknowledgements wait for the disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DurabilityMode {
    /// fsync before acknowledging (the durability guarantee of
    /// `docs/protocol.md`).
    #[default]
    Fsync,
    /// Acknowledge before the flush: a killed server process (the store
    /// flushes by itself about every 500 ms), an OS crash or power loss can
    /// lose acknowledged writes. Tests and benchmarks only.
    Os,
}

/// HTTPS and WSS served by the server itself: both files or neither.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain, PEM (the server's certificate first).
    pub cert_file: Option<PathBuf>,
    /// The private key, PEM (PKCS #8, PKCS #1 or SEC1).
    pub key_file: Option<PathBuf>,
}

/// Whether the sled store compresses its records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CompressionMode {
    /// Records as they are.
    None,
    /// Records of 512 bytes or more compressed with zstd.
    #[default]
    Zstd,
}

/// How the sled store keeps its records on disk.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Compression of records.
    pub compression: CompressionMode,
    /// A file holding the AES-256-GCM key (64 hexadecimal digits) records
    /// are encrypted under; unset: not encrypted.
    pub encryption_key_file: Option<PathBuf>,
    /// Files of earlier keys, for records still under them: at start the
    /// server re-encrypts those under the current key.
    pub previous_key_files: Vec<PathBuf>,
}

/// Every setting of the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to serve on.
    pub listen: SocketAddr,
    /// The sled store's directory.
    pub data_dir: PathBuf,
    /// Which store.
    pub store: StoreKind,
    /// The PostgreSQL URL (store `postgres`).
    pub database_url: Option<String>,
    /// The PostgreSQL schema of the store's tables; every node sharing a
    /// log uses the same one.
    pub database_schema: String,
    /// This node's name; its HLC node id derives from it.
    pub node_name: String,
    /// Authentication.
    pub auth: AuthConfig,
    /// Client times more than this far ahead of the server are clamped.
    pub max_clock_skew_secs: u64,
    /// Seconds between WebSocket pings.
    pub heartbeat_secs: u64,
    /// When writes are acknowledged.
    pub durability: DurabilityMode,
    /// TLS (`https://`, `wss://`); plain HTTP without it.
    pub tls: TlsConfig,
    /// Request, connection and rate limits.
    pub limits: Limits,
    /// Cross-origin settings.
    pub cors: CorsConfig,
    /// Seconds between compactions of the log (0: never).
    pub compaction_interval_secs: u64,
    /// Settings for collections without their own section.
    pub default_collection: CollectionSettings,
    /// Per collection.
    pub collections: BTreeMap<String, CollectionSettings>,
    /// Whether `GET /` serves the console and `GET /demo` the todo demo.
    pub console: bool,
    /// Megabytes kept free on the data directory's disk (store `sled`):
    /// with less, writes are answered `507 insufficient_storage` and
    /// `/ready` says so, until space is free again.
    pub disk_reserve_mb: u64,
    /// Megabytes of sled's page cache (store `sled`): the bound on the
    /// memory the store keeps of its data.
    pub cache_mb: u64,
    /// Compression and encryption at rest (store `sled`).
    pub storage: StorageConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 7700)),
            data_dir: PathBuf::from("./sync-data"),
            store: StoreKind::Sled,
            database_url: None,
            database_schema: "sync".into(),
            node_name: "sync-server".into(),
            auth: AuthConfig::default(),
            max_clock_skew_secs: 60,
            heartbeat_secs: 30,
            durability: DurabilityMode::Fsync,
            tls: TlsConfig::default(),
            limits: Limits::default(),
            cors: CorsConfig::default(),
            compaction_interval_secs: 3_600,
            default_collection: CollectionSettings::default(),
            collections: BTreeMap::new(),
            console: true,
            disk_reserve_mb: 64,
            cache_mb: 1024,
            storage: StorageConfig::default(),
        }
    }
}

/// Settings given on the command line or in the environment; `None` keeps
/// the value from the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--listen` / `SYNC_LISTEN`.
    pub listen: Option<SocketAddr>,
    /// `--tls-cert` / `SYNC_TLS_CERT`.
    pub tls_cert: Option<PathBuf>,
    /// `--tls-key` / `SYNC_TLS_KEY`.
    pub tls_key: Option<PathBuf>,
    /// `--data-dir` / `SYNC_DATA_DIR`.
    pub data_dir: Option<PathBuf>,
    /// `--store` / `SYNC_STORE`.
    pub store: Option<StoreKind>,
    /// `--database-url` / `SYNC_DATABASE_URL`.
    pub database_url: Option<String>,
    /// `--database-schema` / `SYNC_DATABASE_SCHEMA`.
    pub database_schema: Option<String>,
    /// `--node-name` / `SYNC_NODE_NAME`.
    pub node_name: Option<String>,
    /// `--auth` / `SYNC_AUTH`.
    pub auth: Option<AuthMode>,
    /// `--jwt-algorithm` / `SYNC_JWT_ALGORITHM`.
    pub jwt_algorithm: Option<JwtAlgorithm>,
    /// `--jwt-secret` / `SYNC_JWT_SECRET`.
    pub jwt_secret: Option<String>,
    /// `--jwt-public-key-file` / `SYNC_JWT_PUBLIC_KEY_FILE`.
    pub jwt_public_key_file: Option<PathBuf>,
    /// `--heartbeat-secs` / `SYNC_HEARTBEAT_SECS`.
    pub heartbeat_secs: Option<u64>,
    /// `--max-clock-skew-secs` / `SYNC_MAX_CLOCK_SKEW_SECS`.
    pub max_clock_skew_secs: Option<u64>,
    /// `--durability` / `SYNC_DURABILITY`.
    pub durability: Option<DurabilityMode>,
    /// `--console` / `SYNC_CONSOLE`.
    pub console: Option<bool>,
}

impl Config {
    /// The settings of `file` (defaults where it is silent).
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|error| ConfigError::Parse {
            path: path.to_owned(),
            message: error.to_string(),
        })
    }

    /// The settings as TOML, as a configuration file would hold them, with
    /// the secrets masked (the JWT secret, a password in the database URL).
    pub fn to_toml_masked(&self) -> String {
        const MASK: &str = "********";
        let mut shown = self.clone();
        if shown.auth.secret.is_some() {
            shown.auth.secret = Some(MASK.to_owned());
        }
        if let Some(url) = &mut shown.database_url {
            *url = mask_password(url, MASK);
        }
        toml::to_string(&shown).unwrap_or_else(|error| format!("# cannot print: {error}\n"))
    }

    /// Applies the overrides that are set.
    pub fn apply(&mut self, overrides: Overrides) {
        let Overrides {
            listen,
            tls_cert,
            tls_key,
            data_dir,
            store,
            database_url,
            database_schema,
            node_name,
            auth,
            jwt_algorithm,
            jwt_secret,
            jwt_public_key_file,
            heartbeat_secs,
            max_clock_skew_secs,
            durability,
            console,
        } = overrides;
        set(&mut self.listen, listen);
        set(&mut self.data_dir, data_dir);
        set(&mut self.store, store);
        set(&mut self.node_name, node_name);
        set(&mut self.database_schema, database_schema);
        set(&mut self.auth.mode, auth);
        set(&mut self.auth.algorithm, jwt_algorithm);
        set(&mut self.heartbeat_secs, heartbeat_secs);
        set(&mut self.max_clock_skew_secs, max_clock_skew_secs);
        set(&mut self.durability, durability);
        set(&mut self.console, console);
        if database_url.is_some() {
            self.database_url = database_url;
        }
        if tls_cert.is_some() {
            self.tls.cert_file = tls_cert;
        }
        if tls_key.is_some() {
            self.tls.key_file = tls_key;
        }
        if jwt_secret.is_some() {
            self.auth.secret = jwt_secret;
        }
        if jwt_public_key_file.is_some() {
            self.auth.public_key_file = jwt_public_key_file;
        }
    }

    /// Checks the settings that types alone do not.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.store == StoreKind::Postgres && self.database_url.is_none() {
            return Err(invalid(
                "database_url",
                "store postgres needs a database URL (--database-url or SYNC_DATABASE_URL)",
            ));
        }
        if self.tls.cert_file.is_some() != self.tls.key_file.is_some() {
            return Err(invalid(
                "tls",
                "give both the certificate and the key (--tls-cert and --tls-key), or neither",
            ));
        }
        if self.node_name.trim().is_empty() {
            return Err(invalid("node_name", "must not be empty"));
        }
        if self.store == StoreKind::Postgres && self.storage != StorageConfig::default() {
            return Err(invalid(
                "storage",
                "compression and encryption settings are for store sled; PostgreSQL keeps its own",
            ));
        }
        if self.storage.encryption_key_file.is_none() && !self.storage.previous_key_files.is_empty()
        {
            return Err(invalid(
                "storage.previous_key_files",
                "earlier keys need the current one (storage.encryption_key_file)",
            ));
        }
        if self.heartbeat_secs == 0 {
            return Err(invalid("heartbeat_secs", "must be at least 1"));
        }
        let limits = &self.limits;
        for (name, value) in [
            ("limits.request_bytes_max", limits.request_bytes_max),
            ("limits.json_depth_max", limits.json_depth_max),
            (
                "limits.operations_per_request_max",
                limits.operations_per_request_max,
            ),
            ("limits.document_bytes_max", limits.document_bytes_max),
            (
                "limits.subscriptions_per_connection_max",
                limits.subscriptions_per_connection_max,
            ),
            (
                "limits.connections_per_user_max",
                limits.connections_per_user_max,
            ),
            ("limits.changes_per_page_max", limits.changes_per_page_max),
        ] {
            if value == 0 {
                return Err(invalid(name, "must be at least 1"));
            }
        }
        if limits.operations_per_second == 0 {
            return Err(invalid(
                "limits.operations_per_second",
                "must be at least 1",
            ));
        }
        for (name, settings) in &self.collections {
            if sync_core::CollectionName::new(name.as_str()).is_err() {
                return Err(invalid(
                    "collections",
                    format!("{name:?} is not a valid collection name"),
                ));
            }
            if name.contains(sync_core::BRANCH_SEPARATOR) {
                return Err(invalid(
                    "collections",
                    format!(
                        "{name:?} is a branch address; branches take their collection's settings"
                    ),
                ));
            }
            if settings.keep_versions == Some(0) {
                return Err(invalid(
                    "collections.keep_versions",
                    format!("{name}: must be at least 1"),
                ));
            }
        }
        self.auth.authenticator()?;
        Ok(())
    }

    /// The conflict engine's configuration.
    pub fn conflict_config(&self) -> ConflictConfig {
        ConflictConfig {
            default: self.default_collection.conflict_config(),
            collections: self
                .collections
                .iter()
                .map(|(name, settings)| (name.clone(), settings.conflict_config()))
                .collect(),
        }
    }

    /// The allowed clock skew.
    pub fn max_clock_skew(&self) -> Duration {
        Duration::from_secs(self.max_clock_skew_secs)
    }
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
    }
}

/// `url` with the password of its `user:password@` part replaced by `mask`.
fn mask_password(url: &str, mask: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((credentials, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:{mask}@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_file() {
        let text = r#"
            listen = "0.0.0.0:7700"
            store = "sled"
            [auth]
            mode = "jwt"
            algorithm = "HS256"
            secret = "a long random secret"
            [limits]
            operations_per_second = 1000
            [collections.visitors]
            strategy = "merge"
            text_fields = ["notes"]
            keep_versions = 50
            [collections.visitors.fields]
            interests = "union"
        "#;
        let config: Config = toml::from_str(text).unwrap();
        config.validate().unwrap();
        assert_eq!(config.limits.operations_per_second, 1000);
        assert_eq!(config.limits.json_depth_max, 64);
        let conflicts = config.conflict_config();
        assert_eq!(
            conflicts.for_collection("visitors").fields["interests"],
            FieldRule::Union
        );
        assert_eq!(conflicts.for_collection("other").strategy, Strategy::Merge);
    }

    #[test]
    fn later_layers_override_and_bad_settings_are_explained() {
        let mut config = Config::default();
        config.apply(Overrides {
            store: Some(StoreKind::Postgres),
            ..Overrides::default()
        });
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("database URL"), "{error}");
        config.apply(Overrides {
            database_url: Some("postgres://localhost/x".into()),
            auth: Some(AuthMode::Jwt),
            ..Overrides::default()
        });
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("secret"), "{error}");
        assert!(toml::from_str::<Config>("lisen = 1").is_err());
        assert!("RS512".parse::<JwtAlgorithm>().is_err());

        let mut config = Config::default();
        config.apply(Overrides {
            tls_cert: Some("cert.pem".into()),
            ..Overrides::default()
        });
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("--tls-key"), "{error}");
        let file: Config =
            toml::from_str("[tls]\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"").unwrap();
        assert_eq!(file.tls.key_file, Some(PathBuf::from("k.pem")));
        file.validate().unwrap();
    }

    #[test]
    fn printed_settings_hide_secrets_and_read_back() {
        let mut config = Config {
            database_url: Some("postgres://sync:hunter2@db:5432/sync".into()),
            ..Config::default()
        };
        config.auth.secret = Some("a-very-secret-secret".into());
        let printed = config.to_toml_masked();
        assert!(
            !printed.contains("hunter2") && !printed.contains("a-very-secret"),
            "{printed}"
        );
        assert!(
            printed.contains("postgres://sync:********@db:5432/sync"),
            "{printed}"
        );
        let read: Config = toml::from_str(&printed).expect("the printed settings read back");
        assert_eq!(read.limits, config.limits);
        assert_eq!(read.listen, config.listen);
    }

    /// The dotted keys of every leaf of `value`, with their values.
    fn leaves(prefix: &str, value: &toml::Value, out: &mut Vec<(String, toml::Value)>) {
        match value {
            toml::Value::Table(table) if !table.is_empty() => {
                for (key, value) in table {
                    let key = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    leaves(&key, value, out);
                }
            }
            other => out.push((prefix.to_owned(), other.clone())),
        }
    }

    #[test]
    fn the_reference_lists_every_setting_with_its_default() {
        let reference = include_str!("../../../docs/configuration.md");
        let row = |key: &str| {
            reference
                .lines()
                .find(|line| line.starts_with(&format!("| `{key}` |")))
                .unwrap_or_else(|| panic!("docs/configuration.md has no row for {key}"))
                .to_owned()
        };
        // Every key, the optional ones set.
        let mut full = Config {
            database_url: Some("postgres://db/sync".into()),
            ..Config::default()
        };
        full.auth.secret = Some("s".into());
        full.auth.public_key_file = Some("k.pem".into());
        full.tls.cert_file = Some("cert.pem".into());
        full.tls.key_file = Some("key.pem".into());
        full.default_collection = CollectionSettings {
            strategy: Some(Strategy::Merge),
            text_fields: vec!["notes".into()],
            fields: BTreeMap::from([("tags".into(), FieldRule::Union)]),
            concat_separator: Some(". ".into()),
            keep_versions: Some(1),
        };
        full.collections
            .insert("<name>".into(), full.default_collection.clone());
        let mut keys = Vec::new();
        leaves("", &toml::Value::try_from(&full).unwrap(), &mut keys);
        for (key, _) in keys {
            let key = match key.split_once(".fields.") {
                Some((section, _)) => format!("{section}.fields"),
                None => key,
            };
            let key = if key.starts_with("collections.<name>.") {
                "collections.<name>.*".to_owned()
            } else {
                key
            };
            row(&key);
        }
        // Every default as the reference gives it.
        let mut defaults = Vec::new();
        leaves(
            "",
            &toml::Value::try_from(Config::default()).unwrap(),
            &mut defaults,
        );
        for (key, value) in defaults {
            // Sections whose keys are all unset by default.
            if matches!(
                key.as_str(),
                "collections" | "default_collection.fields" | "tls"
            ) {
                continue;
            }
            let shown = match &value {
                toml::Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            let line = row(&key);
            assert!(
                line.contains(&format!("`{shown}`")),
                "{key}: default {shown} not in {line}"
            );
        }
    }
}
