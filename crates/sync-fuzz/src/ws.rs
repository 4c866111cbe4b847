//! `ws_client_message`: a WebSocket text frame as the server reads it (the
//! size limit, the depth check on the raw bytes, then
//! [`ClientMessage::from_json`], as `sync_service::ws` does, which must
//! agree with serde's derived reader), and the same text as a
//! [`ServerMessage`], as `sync_realtime::RealtimeClient` reads what a
//! server sends.

use serde_json::Value;
use sync_core::Action;
use sync_realtime::{ClientMessage, ServerMessage};
use sync_service::limits::Limits;

/// Reads `data` as one incoming text frame. A message that parses must
/// write back to JSON that starts with its `type` and parses to the same
/// message; the operation a write message asks for must survive its own
/// round trip and validate without panicking. A message the server refuses
/// must still be readable for its `opId`, as the error answer does.
pub fn ws_client_message(data: &[u8]) {
    // Text frames are UTF-8; the WebSocket layer refuses anything else.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let limits = Limits::default();
    if text.len() > limits.request_bytes_max {
        return;
    }
    // The depth check, compared with what the parser makes of the text.
    let depth_ok = limits.check_depth(text.as_bytes()).is_ok();
    let _ = crate::split::server_json(data);
    if !depth_ok {
        return;
    }
    let read = ClientMessage::from_json(text);
    assert_eq!(
        read.as_ref().map_err(ToString::to_string),
        serde_json::from_str::<ClientMessage>(text)
            .as_ref()
            .map_err(ToString::to_string),
        "the write reader and the derived reader disagree on {text}"
    );
    match read {
        Ok(message) => client_round_trip(&message),
        Err(_) => {
            // The error answer names the write when it can.
            let _ = serde_json::from_str::<Value>(text)
                .ok()
                .and_then(|v| v.get("opId").and_then(Value::as_str).map(str::to_owned));
        }
    }
    if let Ok(message) = serde_json::from_str::<ServerMessage>(text) {
        let wire = message.to_json();
        assert!(
            wire.starts_with(r#"{"type":"#),
            "server message without `type` first: {wire}"
        );
        let back: ServerMessage = serde_json::from_str(&wire)
            .unwrap_or_else(|error| panic!("server message {wire} does not read back: {error}"));
        assert_eq!(back, message, "server message changed in a round trip");
    }
}

fn client_round_trip(message: &ClientMessage) {
    let wire = serde_json::to_string(message)
        .unwrap_or_else(|error| panic!("{message:?} does not serialise: {error}"));
    assert!(
        wire.starts_with(r#"{"type":"#),
        "client message without `type` first: {wire}"
    );
    let back: ClientMessage = serde_json::from_str(&wire)
        .unwrap_or_else(|error| panic!("client message {wire} does not read back: {error}"));
    assert_eq!(&back, message, "client message changed in a round trip");
    let (write, action) = match message {
        ClientMessage::Insert(write) => (write, Action::Upsert),
        ClientMessage::Update(write) => (write, Action::Update),
        ClientMessage::Delete(write) => (write, Action::Delete),
        _ => return,
    };
    let operation = write.clone().into_operation(action);
    let _ = operation.validate();
    crate::sync_request::operation_round_trip(&operation);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_spec_messages() {
        for text in [
            r#"{"type":"hello","deviceId":"device-A","cursor":"c1.0000000000000abc.7"}"#,
            r#"{"type":"subscribe","collection":"todos","where":{"done":false}}"#,
            r#"{"type":"insert","collection":"todos","recordId":"t1","data":{"text":"milk"}}"#,
            r#"{"type":"ping"}"#,
            r#"{"type":"pong"}"#,
            r#"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"#,
            "\u{0}\u{ff}garbage",
        ] {
            ws_client_message(text.as_bytes());
        }
    }
}
