//! The straightforward forms of the diffs and of field delta application,
//! kept as the reference that the optimised code must match exactly.

use serde_json::{Map, Value};
use sync_diff::{DiffError, FieldDelta, FieldPath, JsonPointer, Patch, PatchOperation};

pub(crate) fn field_delta_diff(old: &Value, new: &Value) -> FieldDelta {
    fn diff_at(path: &FieldPath, old: &Value, new: &Value, delta: &mut FieldDelta) {
        match (old, new) {
            (Value::Object(old_map), Value::Object(new_map)) => {
                for (key, old_value) in old_map {
                    match new_map.get(key) {
                        Some(new_value) => {
                            diff_at(&path.child(key.clone()), old_value, new_value, delta);
                        }
                        None => {
                            delta.removed.insert(path.child(key.clone()));
                        }
                    }
                }
                for (key, new_value) in new_map {
                    if !old_map.contains_key(key) {
                        delta
                            .added
                            .insert(path.child(key.clone()), new_value.clone());
                    }
                }
            }
            _ if old != new => {
                delta.modified.insert(path.clone(), new.clone());
            }
            _ => {}
        }
    }
    let mut delta = FieldDelta::default();
    diff_at(&FieldPath::root(), old, new, &mut delta);
    delta
}

/// Each change applied in turn to a copy of the whole document.
pub(crate) fn field_delta_apply(doc: &Value, delta: &FieldDelta) -> Result<Value, DiffError> {
    fn mismatch(path: &FieldPath, reason: &'static str) -> DiffError {
        DiffError::DeltaMismatch {
            path: path.to_string(),
            reason,
        }
    }
    fn parent_object<'a, 'p>(
        doc: &'a mut Value,
        path: &'p FieldPath,
    ) -> Result<(&'a mut Map<String, Value>, &'p str), DiffError> {
        let (last, parents) = path
            .segments()
            .split_last()
            .ok_or_else(|| mismatch(path, "the root can only be modified"))?;
        let mut current = doc;
        for segment in parents {
            current = current
                .as_object_mut()
                .and_then(|map| map.get_mut(segment))
                .ok_or_else(|| mismatch(path, "parent field does not exist"))?;
        }
        let parent = current
            .as_object_mut()
            .ok_or_else(|| mismatch(path, "parent is not an object"))?;
        Ok((parent, last.as_str()))
    }

    let mut result = doc.clone();
    for path in &delta.removed {
        let (parent, key) = parent_object(&mut result, path)?;
        parent
            .remove(key)
            .ok_or_else(|| mismatch(path, "removed field does not exist"))?;
    }
    for (path, value) in &delta.modified {
        if path.is_root() {
            result = value.clone();
            continue;
        }
        let (parent, key) = parent_object(&mut result, path)?;
        let slot = parent
            .get_mut(key)
            .ok_or_else(|| mismatch(path, "modified field does not exist"))?;
        *slot = value.clone();
    }
    for (path, value) in &delta.added {
        let (parent, key) = parent_object(&mut result, path)?;
        if parent.contains_key(key) {
            return Err(mismatch(path, "added field already exists"));
        }
        parent.insert(key.to_owned(), value.clone());
    }
    Ok(result)
}

pub(crate) fn merge_patch_diff(old: &Value, new: &Value) -> Value {
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => {
            let mut patch = Map::new();
            for (key, old_value) in old {
                match new.get(key) {
                    None => {
                        patch.insert(key.clone(), Value::Null);
                    }
                    Some(new_value) if new_value != old_value => {
                        patch.insert(key.clone(), merge_patch_diff(old_value, new_value));
                    }
                    Some(_) => {}
                }
            }
            for (key, new_value) in new {
                if !old.contains_key(key) {
                    patch.insert(key.clone(), new_value.clone());
                }
            }
            Value::Object(patch)
        }
        _ => new.clone(),
    }
}

pub(crate) fn json_patch_diff(old: &Value, new: &Value) -> Patch {
    fn diff_at(path: &JsonPointer, old: &Value, new: &Value, out: &mut Vec<PatchOperation>) {
        if old == new {
            return;
        }
        match (old, new) {
            (Value::Object(old_map), Value::Object(new_map)) => {
                for (key, old_value) in old_map {
                    match new_map.get(key) {
                        Some(new_value) => {
                            diff_at(&path.child(key.clone()), old_value, new_value, out);
                        }
                        None => out.push(PatchOperation::Remove {
                            path: path.child(key.clone()),
                        }),
                    }
                }
                for (key, new_value) in new_map {
                    if !old_map.contains_key(key) {
                        out.push(PatchOperation::Add {
                            path: path.child(key.clone()),
                            value: new_value.clone(),
                        });
                    }
                }
            }
            (Value::Array(old), Value::Array(new)) => {
                let head = old.iter().zip(new).take_while(|(a, b)| a == b).count();
                let tail = old[head..]
                    .iter()
                    .rev()
                    .zip(new[head..].iter().rev())
                    .take_while(|(a, b)| a == b)
                    .count();
                let old_middle = &old[head..old.len() - tail];
                let new_middle = &new[head..new.len() - tail];
                let paired = old_middle.len().min(new_middle.len());
                for offset in 0..paired {
                    let index = head + offset;
                    diff_at(
                        &path.child(index.to_string()),
                        &old[index],
                        &new[index],
                        out,
                    );
                }
                for _ in paired..old_middle.len() {
                    out.push(PatchOperation::Remove {
                        path: path.child((head + paired).to_string()),
                    });
                }
                for (offset, value) in new_middle.iter().enumerate().skip(paired) {
                    out.push(PatchOperation::Add {
                        path: path.child((head + offset).to_string()),
                        value: value.clone(),
                    });
                }
            }
            _ => out.push(PatchOperation::Replace {
                path: path.clone(),
                value: new.clone(),
            }),
        }
    }
    let mut operations = Vec::new();
    diff_at(&JsonPointer::root(), old, new, &mut operations);
    Patch(operations)
}
