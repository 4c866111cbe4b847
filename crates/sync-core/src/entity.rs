//! [`SyncEntity`]: an application type stored as typed documents.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::JsonObject;
use crate::error::CoreError;

/// An application type stored as documents of one collection, so the SDK
/// can hand out typed values instead of raw JSON.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use sync_core::SyncEntity;
///
/// #[derive(Serialize, Deserialize)]
/// struct Todo { text: String, done: bool }
///
/// impl SyncEntity for Todo {
///     const COLLECTION: &'static str = "todos";
/// }
///
/// let data = Todo { text: "Buy milk".into(), done: false }.to_data()?;
/// assert_eq!(data["done"], false);
/// assert_eq!(Todo::from_data(&data)?.text, "Buy milk");
/// # Ok::<(), sync_core::CoreError>(())
/// ```
pub trait SyncEntity: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The collection this type is stored in.
    const COLLECTION: &'static str;

    /// The value as document data; it must serialise to a JSON object.
    fn to_data(&self) -> Result<JsonObject, CoreError> {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(data)) => Ok(data),
            Ok(other) => Err(CoreError::InvalidEntity(format!(
                "{} must serialise to a JSON object, not {other}",
                std::any::type_name::<Self>()
            ))),
            Err(error) => Err(CoreError::InvalidEntity(error.to_string())),
        }
    }

    /// The value stored in a document's data.
    fn from_data(data: &JsonObject) -> Result<Self, CoreError> {
        Self::deserialize(data).map_err(|error| CoreError::InvalidEntity(error.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Serialize, Deserialize)]
    struct NotAnObject(u32);

    impl SyncEntity for NotAnObject {
        const COLLECTION: &'static str = "numbers";
    }

    #[test]
    fn entities_must_be_objects() {
        let error = NotAnObject(3).to_data().unwrap_err();
        assert!(error.to_string().contains("JSON object"), "{error}");
    }
}
