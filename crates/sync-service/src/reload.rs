//! Reloading the settings of a running server (SIGHUP, or
//! `POST /v1/admin/reload`): the per-collection conflict settings, the
//! retention and the limits take effect at once, without dropping a
//! connection. A setting that needs a restart (the address, the store, the
//! auth, ...) changed, or new settings that do not validate, refuse the
//! reload with the reason, and the running settings stay.

use std::sync::{Arc, Mutex, PoisonError};

use sync_core::CollectionName;

use crate::config::{Config, ConfigError};

/// Where a reload reads the new settings (the configuration file with the
/// environment and flags applied again).
pub type ConfigSource = Arc<dyn Fn() -> Result<Config, ConfigError> + Send + Sync>;

/// The settings the server runs with, and where new ones come from.
pub(crate) struct Reloader {
    current: Mutex<Config>,
    source: Option<ConfigSource>,
}

impl Reloader {
    pub(crate) fn new(current: Config, source: Option<ConfigSource>) -> Reloader {
        Reloader {
            current: Mutex::new(current),
            source,
        }
    }

    /// The settings in force.
    pub(crate) fn current(&self) -> Config {
        self.lock().clone()
    }

    /// Reads the source again; `None` when the server has none.
    pub(crate) fn read_source(&self) -> Option<Result<Config, ConfigError>> {
        self.source.as_ref().map(|source| source())
    }

    /// Checks `new` against the settings in force and makes it current;
    /// the caller applies it.
    pub(crate) fn accept(&self, new: Config) -> Result<Config, ConfigError> {
        new.validate()?;
        let mut current = self.lock();
        if let Some(key) = restart_only_change(&current, &new) {
            return Err(ConfigError::Invalid {
                name: key,
                message: "changes only with a restart; the running settings stay".into(),
            });
        }
        *current = new.clone();
        Ok(new)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Config> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The first setting that differs between `old` and `new` and cannot
/// change while the server runs.
fn restart_only_change(old: &Config, new: &Config) -> Option<&'static str> {
    let fixed: [(&'static str, bool); 16] = [
        ("listen", old.listen == new.listen),
        ("data_dir", old.data_dir == new.data_dir),
        ("store", old.store == new.store),
        ("database_url", old.database_url == new.database_url),
        (
            "database_schema",
            old.database_schema == new.database_schema,
        ),
        ("node_name", old.node_name == new.node_name),
        ("auth", old.auth == new.auth),
        (
            "max_clock_skew_secs",
            old.max_clock_skew_secs == new.max_clock_skew_secs,
        ),
        ("heartbeat_secs", old.heartbeat_secs == new.heartbeat_secs),
        ("durability", old.durability == new.durability),
        ("cors", old.cors == new.cors),
        ("console", old.console == new.console),
        (
            "disk_reserve_mb",
            old.disk_reserve_mb == new.disk_reserve_mb,
        ),
        ("cache_mb", old.cache_mb == new.cache_mb),
        ("storage", old.storage == new.storage),
        (
            "limits.send_queue_frames_max",
            old.limits.send_queue_frames_max == new.limits.send_queue_frames_max,
        ),
    ];
    fixed
        .into_iter()
        .find(|(_, same)| !same)
        .map(|(key, _)| key)
}

/// The collections whose log compaction keeps a bounded number of versions.
pub(crate) fn retention(config: &Config) -> Vec<(CollectionName, u64)> {
    config
        .collections
        .iter()
        .filter_map(|(name, settings)| {
            Some((
                CollectionName::new(name.as_str()).ok()?,
                settings.keep_versions?,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_reloadable_settings_may_change() {
        let reloader = Reloader::new(Config::default(), None);
        let mut new = Config::default();
        new.limits.operations_per_second = 5;
        new.default_collection.keep_versions = Some(3);
        assert!(reloader.accept(new.clone()).is_ok());
        assert_eq!(reloader.current().limits.operations_per_second, 5);

        let mut moved = new.clone();
        moved.listen = "127.0.0.1:1".parse().unwrap();
        let refused = reloader.accept(moved).unwrap_err();
        assert!(
            matches!(refused, ConfigError::Invalid { name: "listen", .. }),
            "{refused}"
        );
        let mut broken = new;
        broken.store = crate::config::StoreKind::Postgres;
        assert!(reloader.accept(broken).is_err(), "no database URL");
        assert_eq!(reloader.current().limits.operations_per_second, 5);
    }
}
