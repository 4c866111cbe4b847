//! Filters: the field equalities of `where` in subscriptions, document
//! lists and live queries.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::JsonObject;
use crate::error::CoreError;

/// Top-level field equalities that must all hold
/// (`{"roomId": "42", "done": false}`). The empty filter matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Filter(BTreeMap<String, Value>);

impl Filter {
    /// The filter that matches every document.
    pub fn all() -> Filter {
        Filter::default()
    }

    /// Adds the condition `field == value`.
    pub fn and_equals(mut self, field: impl Into<String>, value: impl Into<Value>) -> Filter {
        self.0.insert(field.into(), value.into());
        self
    }

    /// Whether the filter has no conditions.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The conditions, by field.
    pub fn conditions(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(field, value)| (field.as_str(), value))
    }

    /// Whether `data` satisfies every condition. A missing field equals `null`.
    pub fn matches(&self, data: &JsonObject) -> bool {
        self.0
            .iter()
            .all(|(field, expected)| data.get(field).unwrap_or(&Value::Null) == expected)
    }

    /// Parses the HTTP form `field:value` (repeatable). The value is read as
    /// JSON when it is a JSON scalar (`done:false`, `n:3`, `x:null`,
    /// `id:"7"`), otherwise as a string (`roomId:abc`).
    pub fn parse_query_params<'a>(
        params: impl IntoIterator<Item = &'a str>,
    ) -> Result<Filter, CoreError> {
        let mut filter = Filter::all();
        for param in params {
            let (field, raw) = param.split_once(':').ok_or_else(|| {
                CoreError::InvalidFilter(format!("expected field:value, got {param:?}"))
            })?;
            if field.is_empty() {
                return Err(CoreError::InvalidFilter("empty field name".into()));
            }
            let value = match serde_json::from_str::<Value>(raw) {
                Ok(value) if !value.is_object() && !value.is_array() => value,
                _ => Value::String(raw.to_owned()),
            };
            filter = filter.and_equals(field, value);
        }
        Ok(filter)
    }
}

impl From<JsonObject> for Filter {
    fn from(object: JsonObject) -> Self {
        Filter(object.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn obj(value: Value) -> JsonObject {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn matches_all_conditions() {
        let filter: Filter =
            serde_json::from_value(json!({"roomId": "42", "done": false})).unwrap();
        assert!(filter.matches(&obj(json!({"roomId": "42", "done": false, "x": 1}))));
        assert!(!filter.matches(&obj(json!({"roomId": "42", "done": true}))));
        assert!(!filter.matches(&obj(json!({"roomId": "42"}))));
        assert!(Filter::all().matches(&obj(json!({}))));
        assert!(
            Filter::all()
                .and_equals("gone", Value::Null)
                .matches(&obj(json!({})))
        );
    }

    #[test]
    fn parses_query_params() {
        let filter = Filter::parse_query_params([
            "done:false",
            "roomId:abc",
            "n:3",
            "quoted:\"7\"",
            "url:a:b",
        ])
        .unwrap();
        assert_eq!(
            serde_json::to_value(&filter).unwrap(),
            json!({"done": false, "roomId": "abc", "n": 3, "quoted": "7", "url": "a:b"})
        );
        assert!(Filter::parse_query_params(["nocolon"]).is_err());
        assert!(Filter::parse_query_params([":x"]).is_err());
    }
}
