//! Per-collection conflict settings, as plain serde types the server loads
//! from TOML:
//!
//! ```toml
//! [collections.visitors]
//! strategy = "merge"
//! text_fields = ["notes"]
//! [collections.visitors.fields]
//! notes = "concat"
//! interests = "union"
//! title = "server_wins"
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sync_core::Strategy;

/// A named rule for one top-level field, applied when both sides changed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldRule {
    /// The server's value.
    ServerWins,
    /// The client's value.
    ClientWins,
    /// The value written later (HLC).
    Lww,
    /// The `merge` strategy for this field alone.
    Merge,
    /// Arrays: every item of both, client's first, without duplicates.
    Union,
    /// Strings: the client's text, the separator, then the server's.
    Concat,
    /// Numbers: the larger.
    Max,
    /// Numbers: the smaller.
    Min,
}

/// How conflicts in one collection are resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CollectionConfig {
    /// The strategy for fields without a rule (`merge` by default).
    pub strategy: Strategy,
    /// Strings that merge as text under `merge`; empty means every string.
    pub text_fields: Vec<String>,
    /// Named rules by top-level field; they take precedence over `strategy`.
    pub fields: BTreeMap<String, FieldRule>,
    /// What `concat` puts between the two texts.
    pub concat_separator: String,
}

impl Default for CollectionConfig {
    fn default() -> Self {
        CollectionConfig {
            strategy: Strategy::Merge,
            text_fields: Vec::new(),
            fields: BTreeMap::new(),
            concat_separator: ". ".to_owned(),
        }
    }
}

impl CollectionConfig {
    /// A configuration with `strategy` and no field rules.
    pub fn with_strategy(strategy: Strategy) -> CollectionConfig {
        CollectionConfig {
            strategy,
            ..CollectionConfig::default()
        }
    }

    /// Adds a rule for `field`.
    pub fn with_rule(mut self, field: impl Into<String>, rule: FieldRule) -> CollectionConfig {
        self.fields.insert(field.into(), rule);
        self
    }

    /// Whether strings in `field` merge as text.
    pub fn merges_text(&self, field: &str) -> bool {
        self.text_fields.is_empty() || self.text_fields.iter().any(|name| name == field)
    }
}

/// Settings of every collection: a default and per-collection overrides
/// (`[collections.<name>]` in the server's TOML).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConflictConfig {
    /// For collections without their own section.
    pub default: CollectionConfig,
    /// By collection name.
    pub collections: BTreeMap<String, CollectionConfig>,
}

impl ConflictConfig {
    /// The settings for `collection`.
    pub fn for_collection(&self, collection: &str) -> &CollectionConfig {
        self.collections.get(collection).unwrap_or(&self.default)
    }
}
