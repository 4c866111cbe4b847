//! Validated names and numbers: namespaces, collections, ids, versions and
//! log positions.
//!
//! Each name type checks its rules once, at construction (including
//! deserialisation), so code holding one never re-validates it. The rules are
//! chosen so that every name is safe in a URL path segment, a log line and a
//! storage key without escaping.

use std::fmt;
use std::sync::{Arc, LazyLock};

use serde::{Deserialize, Serialize};

use crate::error::{CoreError, excerpt};

/// Characters allowed in ids (documents, operations, devices, conflicts):
/// enough for UUIDs, ULIDs, slugs and `local_001`-style client ids.
fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '@' | '+' | '=' | '~')
}

fn is_collection_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-')
}

/// The separator of a branch address: `notes@draft` is the branch `draft`
/// of documents of `notes` (`docs/protocol.md`, "Branches").
pub const BRANCH_SEPARATOR: char = '@';

/// The longest collection or branch name, in characters.
const COLLECTION_PART_MAX_CHARS: usize = 64;

/// A collection name, or a branch address: a plain name, then optionally
/// the separator and a branch name, each part by the collection rule. The
/// longest address (`_max_chars`) follows: two parts and the separator.
fn check_collection(
    kind: &'static str,
    value: &str,
    _max_chars: usize,
    allowed: fn(char) -> bool,
    rule: &'static str,
) -> Result<(), CoreError> {
    let part = |text: &str| check(kind, text, COLLECTION_PART_MAX_CHARS, allowed, rule);
    match value.split_once(BRANCH_SEPARATOR) {
        None => part(value),
        Some((base, branch)) => {
            part(base)
                .and_then(|()| part(branch))
                .map_err(|_| CoreError::InvalidName {
                    kind,
                    value: excerpt(value),
                    reason: rule,
                })
        }
    }
}

fn is_namespace_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')
}

fn is_user_char(c: char) -> bool {
    !c.is_control()
}

fn check(
    kind: &'static str,
    value: &str,
    max_chars: usize,
    allowed: fn(char) -> bool,
    rule: &'static str,
) -> Result<(), CoreError> {
    let invalid = |reason| CoreError::InvalidName {
        kind,
        value: excerpt(value),
        reason,
    };
    if value.is_empty() {
        return Err(invalid("must not be empty"));
    }
    // A string has no more chars than bytes: only a long one is counted.
    if value.len() > max_chars && value.chars().count() > max_chars {
        return Err(invalid("too long"));
    }
    if !value.chars().all(allowed) {
        return Err(invalid(rule));
    }
    Ok(())
}

macro_rules! name_type {
    (
        $(#[$meta:meta])*
        $name:ident, kind = $kind:literal, max = $max:literal, allowed = $allowed:ident, rule = $rule:literal,
        pattern = $pattern:literal
    ) => {
        name_type! {
            $(#[$meta])*
            $name, kind = $kind, max = $max, allowed = $allowed, check = check, rule = $rule,
            pattern = $pattern
        }
    };
    (
        $(#[$meta:meta])*
        $name:ident, kind = $kind:literal, max = $max:literal, allowed = $allowed:ident,
        check = $check:ident, rule = $rule:literal, pattern = $pattern:literal
    ) => {
        $(#[$meta])*
        ///
        /// Shared, not copied: a clone costs a reference count.
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Arc<str>);

        impl $name {
            /// The longest value accepted, in characters (of each part, for
            /// a branch address).
            pub const MAX_CHARS: usize = $max;

            #[doc = concat!("Validates `value` as a ", $kind, ": ", $rule, ".")]
            pub fn new(value: impl Into<String>) -> Result<Self, CoreError> {
                Self::from_checked_str(&value.into())
            }

            /// Validates a borrowed `value`, copying it once.
            fn from_checked_str(value: &str) -> Result<Self, CoreError> {
                $check($kind, value, $max, $allowed, $rule)?;
                Ok($name(Arc::from(value)))
            }

            /// The name as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The name as an owned string.
            pub fn into_string(self) -> String {
                String::from(&*self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct NameVisitor;
                impl serde::de::Visitor<'_> for NameVisitor {
                    type Value = $name;
                    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                        formatter.write_str("a string")
                    }
                    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<$name, E> {
                        $name::from_checked_str(value).map_err(E::custom)
                    }
                }
                deserializer.deserialize_str(NameVisitor)
            }
        }

        impl TryFrom<String> for $name {
            type Error = CoreError;
            fn try_from(value: String) -> Result<Self, CoreError> {
                $name::new(value)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = CoreError;
            fn try_from(value: &str) -> Result<Self, CoreError> {
                $name::new(value)
            }
        }

        impl std::str::FromStr for $name {
            type Err = CoreError;
            fn from_str(value: &str) -> Result<Self, CoreError> {
                $name::new(value)
            }
        }

        impl From<$name> for String {
            fn from(name: $name) -> String {
                name.into_string()
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                &*self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                &*self.0 == *other
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                crate::schema::name(concat!("A ", $kind, ": ", $rule, "."), $max, $pattern)
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}
    };
}

name_type! {
    /// The unit of isolation and sharing (a user's space, a team, a room).
    /// Access is granted per namespace.
    Namespace, kind = "namespace", max = 64, allowed = is_namespace_char,
    rule = "1-64 characters of A-Z a-z 0-9 _ - . :",
    pattern = "^[A-Za-z0-9_.:-]{1,64}$"
}

name_type! {
    /// A named set of documents inside a namespace (`todos`), or a branch
    /// address (`todos@draft`): the branch `draft` of documents of `todos`.
    CollectionName, kind = "collection", max = 129, allowed = is_collection_char,
    check = check_collection,
    rule = "1-64 characters of A-Z a-z 0-9 _ -, optionally followed by @ and a branch name by the same rule",
    pattern = "^[A-Za-z0-9_-]{1,64}(@[A-Za-z0-9_-]{1,64})?$"
}

name_type! {
    /// The name of a branch of a document (`draft`).
    BranchName, kind = "branch", max = 64, allowed = is_collection_char,
    rule = "1-64 characters of A-Z a-z 0-9 _ -",
    pattern = "^[A-Za-z0-9_-]{1,64}$"
}

name_type! {
    /// A document id, unique within its namespace and collection. Clients may
    /// choose it (a UUIDv7 is a good choice); the server generates one for a
    /// create without an id.
    DocId, kind = "document id", max = 128, allowed = is_id_char,
    rule = "1-128 characters of A-Z a-z 0-9 _ - . : @ + = ~",
    pattern = "^[A-Za-z0-9_.:@+=~-]{1,128}$"
}

name_type! {
    /// The idempotency key of an operation: a replay with a known `OpId`
    /// returns the first result and changes nothing.
    OpId, kind = "opId", max = 128, allowed = is_id_char,
    rule = "1-128 characters of A-Z a-z 0-9 _ - . : @ + = ~",
    pattern = "^[A-Za-z0-9_.:@+=~-]{1,128}$"
}

name_type! {
    /// A device (an app install), stable across restarts.
    DeviceId, kind = "deviceId", max = 128, allowed = is_id_char,
    rule = "1-128 characters of A-Z a-z 0-9 _ - . : @ + = ~",
    pattern = "^[A-Za-z0-9_.:@+=~-]{1,128}$"
}

name_type! {
    /// The id of a recorded conflict.
    ConflictId, kind = "conflict id", max = 128, allowed = is_id_char,
    rule = "1-128 characters of A-Z a-z 0-9 _ - . : @ + = ~",
    pattern = "^[A-Za-z0-9_.:@+=~-]{1,128}$"
}

name_type! {
    /// The authenticated user (the token's `sub`, or `anonymous`).
    UserId, kind = "user", max = 256, allowed = is_user_char,
    rule = "1-256 characters without control characters",
    pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]{1,256}$"
}

impl Namespace {
    /// The namespace used when a request names none.
    pub const DEFAULT: &'static str = "default";

    /// The `default` namespace.
    pub fn default_namespace() -> Namespace {
        static DEFAULT: LazyLock<Namespace> =
            LazyLock::new(|| Namespace(Arc::from(Namespace::DEFAULT)));
        DEFAULT.clone()
    }
}

impl Default for Namespace {
    fn default() -> Self {
        Namespace::default_namespace()
    }
}

impl CollectionName {
    /// The collection a branch address belongs to; a plain name itself.
    pub fn base(&self) -> CollectionName {
        match self.0.split_once(BRANCH_SEPARATOR) {
            Some((base, _)) => CollectionName(Arc::from(base)),
            None => self.clone(),
        }
    }

    /// The base collection's name, without copying.
    pub fn base_str(&self) -> &str {
        self.0
            .split_once(BRANCH_SEPARATOR)
            .map_or(self.as_str(), |(base, _)| base)
    }

    /// The branch this address names; `None` for a plain collection.
    pub fn branch(&self) -> Option<BranchName> {
        self.0
            .split_once(BRANCH_SEPARATOR)
            .map(|(_, branch)| BranchName(Arc::from(branch)))
    }

    /// Whether this is a branch address rather than a plain collection.
    pub fn is_branch(&self) -> bool {
        self.0.contains(BRANCH_SEPARATOR)
    }

    /// The address of branch `branch` of this collection's documents (of
    /// the base collection's, for a branch address).
    pub fn with_branch(&self, branch: &BranchName) -> CollectionName {
        CollectionName(Arc::from(format!(
            "{}{BRANCH_SEPARATOR}{branch}",
            self.base_str()
        )))
    }
}

/// A fresh, time-ordered UUIDv7 in its hyphenated lower-case text.
fn fresh_uuid() -> Arc<str> {
    let mut text = uuid::Uuid::encode_buffer();
    Arc::from(&*uuid::Uuid::now_v7().hyphenated().encode_lower(&mut text))
}

impl DocId {
    /// A fresh, time-ordered id (UUIDv7) for a document created without one.
    pub fn generate() -> DocId {
        DocId(fresh_uuid())
    }
}

impl OpId {
    /// A fresh, time-ordered operation id (UUIDv7).
    pub fn generate() -> OpId {
        OpId(fresh_uuid())
    }
}

impl DeviceId {
    /// A fresh device id (UUIDv7), made once per install and persisted.
    pub fn generate() -> DeviceId {
        DeviceId(fresh_uuid())
    }
}

impl ConflictId {
    /// A fresh conflict id (UUIDv7).
    pub fn generate() -> ConflictId {
        ConflictId(fresh_uuid())
    }
}

impl UserId {
    /// The user of every request when authentication is off.
    pub const ANONYMOUS: &'static str = "anonymous";

    /// The `anonymous` user.
    pub fn anonymous() -> UserId {
        UserId(Arc::from(Self::ANONYMOUS))
    }
}

macro_rules! counter_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl $name {
            /// Zero: before the first.
            pub const ZERO: $name = $name(0);

            /// The raw number.
            pub fn get(self) -> u64 {
                self.0
            }

            /// The one after this one.
            pub fn next(self) -> $name {
                $name(self.0 + 1)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl From<u64> for $name {
            fn from(value: u64) -> Self {
                $name(value)
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                crate::schema::counter(stringify!($name))
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}
    };
}

counter_type! {
    /// A document's version: 1 at creation, +1 on each accepted change.
    /// Version 0 means the document does not exist yet.
    Version
}

counter_type! {
    /// A position in the change log: gap-free and strictly increasing from 1.
    /// Seq 0 is the position before the first change.
    Seq
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_name<T: std::str::FromStr<Err = CoreError>>(input: &str, ok: bool) {
        assert_eq!(T::from_str(input).is_ok(), ok, "{input:?}");
    }

    #[test]
    fn collection_names() {
        for (input, ok) in [
            ("todos", true),
            ("Todo_Items-2", true),
            (&"a".repeat(64), true),
            (&"a".repeat(65), false),
            ("", false),
            ("to dos", false),
            ("todos/1", false),
            ("tödös", false),
            ("a.b", false),
            ("todos@draft", true),
            (&format!("{}@{}", "a".repeat(64), "b".repeat(64)), true),
            (&format!("todos@{}", "b".repeat(65)), false),
            ("todos@", false),
            ("@draft", false),
            ("todos@draft@2", false),
            ("todos@dr aft", false),
        ] {
            check_name::<CollectionName>(input, ok);
        }
    }

    #[test]
    fn branch_addresses() {
        let todos = CollectionName::new("todos").unwrap();
        assert!(!todos.is_branch());
        assert_eq!(todos.branch(), None);
        assert_eq!(todos.base(), todos);
        let draft = BranchName::new("draft").unwrap();
        let address = todos.with_branch(&draft);
        assert_eq!(address, "todos@draft");
        assert!(address.is_branch());
        assert_eq!(address.branch(), Some(draft));
        assert_eq!(address.base(), todos);
        assert_eq!(address.base_str(), "todos");
        let other = BranchName::new("other").unwrap();
        assert_eq!(address.with_branch(&other), "todos@other");
        assert!(BranchName::new("a@b").is_err());
    }

    #[test]
    fn namespaces() {
        for (input, ok) in [
            ("default", true),
            ("team:42", true),
            ("user.alice", true),
            ("*", false),
            ("", false),
            ("a b", false),
            (&"n".repeat(65), false),
        ] {
            check_name::<Namespace>(input, ok);
        }
    }

    #[test]
    fn document_ids() {
        for (input, ok) in [
            ("0192f5e4-8a1b-7c3d-9e2f-123456789abc", true),
            ("local_001", true),
            ("uuid-existing-456", true),
            ("alice@example.com", true),
            (&"x".repeat(128), true),
            (&"x".repeat(129), false),
            ("a/b", false),
            ("a b", false),
            ("a\nb", false),
            ("", false),
        ] {
            check_name::<DocId>(input, ok);
        }
    }

    #[test]
    fn users_allow_any_printable_text() {
        check_name::<UserId>("auth0|5f7c8ec7", true);
        check_name::<UserId>("Zoë Müller", true);
        check_name::<UserId>("bad\u{0}", false);
    }

    #[test]
    fn a_bad_name_is_an_error_value_when_deserialised() {
        let error = serde_json::from_str::<CollectionName>("\"no spaces\"").unwrap_err();
        assert!(error.to_string().contains("invalid collection"), "{error}");
        let ok: CollectionName = serde_json::from_str("\"todos\"").unwrap();
        assert_eq!(ok, "todos");
    }

    #[test]
    fn generated_ids_are_valid_and_distinct() {
        let a = OpId::generate();
        let b = OpId::generate();
        assert_ne!(a, b);
        assert!(OpId::new(a.as_str()).is_ok());
        assert!(DocId::new(DocId::generate().into_string()).is_ok());
    }

    #[test]
    fn counters_serialise_as_numbers() {
        assert_eq!(serde_json::to_string(&Version(3)).unwrap(), "3");
        assert_eq!(serde_json::from_str::<Seq>("1234").unwrap(), Seq(1234));
        assert_eq!(Version::ZERO.next(), Version(1));
    }
}
