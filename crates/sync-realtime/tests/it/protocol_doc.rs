//! Keeps `docs/protocol.md` true to the code: every JSON example in it is
//! read as the type its fence tag names (the tags are listed at the top of
//! that file), and what the server writes must also serialise back to the
//! same JSON. A block that fails is reported with its line number.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sync_core::store::DeviceCapabilities;
use sync_core::{
    Change, ConflictRecord, Cursor, Document, ErrorBody, OpError, OpResult, Operation, Strategy,
};
use sync_realtime::{ClientMessage, ServerMessage};
use sync_service::SyncRequest;

/// Every tag a JSON block may carry; each must be used at least once.
const TAGS: [&str; 11] = [
    "client-message",
    "server-message",
    "operation",
    "change",
    "document",
    "conflict",
    "result",
    "error",
    "request",
    "response",
    "claims",
];

/// A fenced JSON block: the line of its opening fence, its tag, its text.
struct Block {
    line: usize,
    tag: String,
    text: String,
}

/// The ```` ```json <tag> ```` blocks of `doc`; other fenced blocks are
/// skipped whole.
fn json_blocks(doc: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<Option<Block>> = None;
    for (index, line) in doc.lines().enumerate() {
        let fence = line.trim_start().strip_prefix("```");
        // Only a bare fence closes a block.
        let closes = fence.is_some_and(|rest| rest.trim().is_empty());
        match (&mut open, fence) {
            (None, Some(info)) => {
                let mut words = info.split_whitespace();
                open = Some((words.next() == Some("json")).then(|| Block {
                    line: index + 1,
                    tag: words.next().unwrap_or_default().to_owned(),
                    text: String::new(),
                }));
            }
            (Some(block), _) if closes => {
                blocks.extend(block.take());
                open = None;
            }
            (Some(Some(block)), _) => {
                block.text.push_str(line);
                block.text.push('\n');
            }
            (Some(None), _) | (None, None) => {}
        }
    }
    blocks
}

/// An HTTP error body.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpError {
    error: ErrorBody,
}

/// The claims of a token, as the server reads them.
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Claims {
    sub: String,
    exp: u64,
    #[serde(default)]
    ns: Option<OneOrMany>,
    #[serde(default)]
    ro: Option<OneOrMany>,
    #[serde(default)]
    admin: Option<bool>,
}

/// A string or a list of strings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
#[allow(dead_code)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// `value` read as `T`.
fn parse<T: DeserializeOwned>(value: &Value) -> Result<T, String> {
    T::deserialize(value).map_err(|error| error.to_string())
}

/// `value` read as `T`, which must write back the same JSON.
fn exact<T: DeserializeOwned + Serialize>(value: &Value) -> Result<(), String> {
    let parsed: T = parse(value)?;
    let back = serde_json::to_value(&parsed).map_err(|error| error.to_string())?;
    if &back == value {
        Ok(())
    } else {
        Err(format!(
            "does not read back the same; it writes back as {back}"
        ))
    }
}

/// An operation, valid for its action.
fn operation(value: &Value) -> Result<(), String> {
    parse::<Operation>(value)?
        .validate()
        .map_err(|error| error.to_string())
}

/// Each item of `value` (or `value` itself when it is not a list) as `T`.
fn each<T: DeserializeOwned + Serialize>(value: &Value, strict: bool) -> Result<(), String> {
    let check = |item: &Value| {
        if strict {
            exact::<T>(item)
        } else {
            parse::<T>(item).map(drop)
        }
    };
    match value {
        Value::Array(items) => items.iter().try_for_each(check),
        item => check(item),
    }
}

/// An HTTP body: its known fields read as their types (exactly, for
/// responses). A request with `operations` is a sync request.
fn body(value: &Value, response: bool) -> Result<(), String> {
    let fields = value.as_object().ok_or("not an object")?;
    if !response && fields.contains_key("operations") {
        parse::<SyncRequest>(value)?;
    }
    for (key, field) in fields {
        // Lists by their plural names, objects by their singular ones; a
        // field of the same name with another shape (the stats' counts) is
        // something else.
        let checked = match (key.as_str(), field) {
            ("operations", Value::Array(items)) => items.iter().try_for_each(operation),
            ("results", Value::Array(_)) => each::<OpResult>(field, response),
            ("conflicts", Value::Array(_)) | ("conflict", Value::Object(_)) => {
                each::<ConflictRecord>(field, response)
            }
            ("errors", Value::Array(_)) => each::<OpError>(field, response),
            ("changes", Value::Array(_)) => each::<Change>(field, response),
            ("documents", Value::Array(_)) | ("document", Value::Object(_)) => {
                each::<Document>(field, response)
            }
            ("error", _) => each::<ErrorBody>(field, response),
            ("cursor", Value::String(_)) => each::<Cursor>(field, response),
            ("capabilities", _) => each::<DeviceCapabilities>(field, response),
            ("strategy", _) => each::<Strategy>(field, response),
            _ => Ok(()),
        };
        checked.map_err(|error| format!("{key}: {error}"))?;
    }
    Ok(())
}

/// Checks one block against the type its tag names.
fn check(block: &Block) -> Result<(), String> {
    let value: Value =
        serde_json::from_str(&block.text).map_err(|error| format!("not JSON: {error}"))?;
    match block.tag.as_str() {
        "client-message" => parse::<ClientMessage>(&value).map(drop),
        "server-message" => exact::<ServerMessage>(&value),
        "operation" => operation(&value),
        "change" => exact::<Change>(&value),
        "document" => exact::<Document>(&value),
        "conflict" => exact::<ConflictRecord>(&value),
        "result" => exact::<OpResult>(&value),
        "error" => exact::<HttpError>(&value),
        "request" => body(&value, false),
        "response" => body(&value, true),
        "claims" => parse::<Claims>(&value).map(drop),
        "" => Err(format!("no tag; use one of {TAGS:?}")),
        other => Err(format!("unknown tag {other:?}; use one of {TAGS:?}")),
    }
}

#[test]
fn every_json_example_of_the_protocol_reference_parses_as_its_type() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/protocol.md");
    let doc = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    let blocks = json_blocks(&doc);
    let failures: Vec<String> = blocks
        .iter()
        .filter_map(|block| {
            check(block).err().map(|error| {
                format!(
                    "docs/protocol.md line {}: ```json {}: {error}",
                    block.line, block.tag
                )
            })
        })
        .collect();
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    for tag in TAGS {
        assert!(
            blocks.iter().any(|block| block.tag == tag),
            "docs/protocol.md has no ```json {tag} example"
        );
    }
}

#[test]
fn blocks_are_found_with_their_lines_and_tags() {
    let doc = "text\n```json change\n{\"a\": 1}\n```\n```text\n```json x\n```\n```json\n{}\n```\n";
    let blocks = json_blocks(doc);
    let found: Vec<(usize, &str, &str)> = blocks
        .iter()
        .map(|block| (block.line, block.tag.as_str(), block.text.as_str()))
        .collect();
    assert_eq!(found, [(2, "change", "{\"a\": 1}\n"), (8, "", "{}\n")]);
    assert!(check(&blocks[0]).is_err());
    assert!(check(&blocks[1]).unwrap_err().contains("no tag"));
}
