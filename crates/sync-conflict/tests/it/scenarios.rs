//! The conflict scenarios of the bulk-sync examples with their data (a
//! title edited on two devices, interests merged, several fields at once,
//! a bulk update left pending), the other edge cases of the contract, and
//! the TOML configuration format.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Value, json};
use sync_conflict::{
    Base, ClientEdit, CollectionConfig, ConflictConfig, ConflictEngine, FieldRule, RecordContext,
};
use sync_core::conflict::{ConflictInput, ConflictResolver, Resolution};
use sync_core::{ConflictStatus, OpStatus, Strategy, Timestamp};

use crate::support::{ServerDoc, key, obj, time};

/// Scenario 1: the title edited offline at 10:30 and online at 10:25.
fn simple_field_conflict(strategy: Strategy) -> (ServerDoc, sync_conflict::Outcome) {
    let base = obj(json!({"name": "John Smith", "title": "Manager", "company": "Tech Corp"}));
    let mut server = ServerDoc::new(base.clone(), time(1_000, 1));
    server
        .data
        .insert("title".into(), json!("Director of Operations"));
    server
        .clocks
        .insert("title".into(), time(1_701_426_300_000, 1)); // 10:25
    let patch = obj(json!({"title": "Senior Manager"}));
    let outcome = server.apply(
        &ConflictEngine::default(),
        Base::Document(&base),
        ClientEdit::Update(&patch),
        time(1_701_426_600_000, 2), // 10:30
        Some(strategy),
    );
    (server, outcome)
}

#[test]
fn seed_004_simple_field_conflict_under_every_strategy() {
    for (strategy, title, status) in [
        (
            Strategy::ServerWins,
            "Director of Operations",
            OpStatus::Merged,
        ),
        (Strategy::ClientWins, "Senior Manager", OpStatus::Merged),
        (
            Strategy::Manual,
            "Director of Operations",
            OpStatus::Conflict,
        ),
        (Strategy::Lww, "Senior Manager", OpStatus::Merged),
        // The server rewrote the word the client added one before: the
        // text merge applies both edits (seed 004's manual compromise
        // was "Senior Director").
        (
            Strategy::Merge,
            "Senior Director of Operations",
            OpStatus::Merged,
        ),
    ] {
        let (server, outcome) = simple_field_conflict(strategy);
        assert_eq!(server.data["title"], title, "{strategy}");
        assert_eq!(server.data["name"], "John Smith", "{strategy}");
        assert_eq!(outcome.status, status, "{strategy}");
        assert_eq!(outcome.conflict_fields, ["title"], "{strategy}");
        assert_eq!(outcome.pending, strategy == Strategy::Manual, "{strategy}");
    }
}

#[test]
fn seed_004_array_merge() {
    let base = obj(json!({"interests": ["technology", "innovation"]}));
    let mut server = ServerDoc::new(base.clone(), time(1_000, 1));
    server.data =
        obj(json!({"interests": ["technology", "innovation", "leadership", "management"]}));
    let patch = obj(json!({"interests": ["technology", "innovation", "AI", "blockchain"]}));
    let outcome = server.apply(
        &ConflictEngine::default(),
        Base::Document(&base),
        ClientEdit::Update(&patch),
        time(2_000, 2),
        None,
    );
    assert_eq!(
        server.data["interests"],
        json!([
            "technology",
            "innovation",
            "AI",
            "blockchain",
            "leadership",
            "management"
        ])
    );
    assert_eq!(outcome.status, OpStatus::Merged);
    assert_eq!(outcome.strategy, Strategy::Merge);
}

#[test]
fn array_merge_does_not_resurrect_removed_items() {
    let base = obj(json!({"tags": ["a", "b", "c"]}));
    let mut server = ServerDoc::new(base.clone(), time(1_000, 1));
    server.data = obj(json!({"tags": ["a", "c", "s"]})); // removed b, added s
    let patch = obj(json!({"tags": ["b", "c", "x"]})); // removed a, added x
    server.apply(
        &ConflictEngine::default(),
        Base::Document(&base),
        ClientEdit::Update(&patch),
        time(2_000, 2),
        None,
    );
    assert_eq!(server.data["tags"], json!(["c", "x", "s"]));
}

#[test]
fn seed_004_complex_multi_field_conflict_with_field_rules() {
    let config = CollectionConfig::default()
        .with_rule("title", FieldRule::ServerWins)
        .with_rule("phone", FieldRule::ClientWins)
        .with_rule("interests", FieldRule::Union)
        .with_rule("notes", FieldRule::Concat);
    let engine = ConflictEngine::new(ConflictConfig {
        collections: [("visitors".to_owned(), config)].into(),
        ..ConflictConfig::default()
    });
    let base = obj(json!({
        "title": "Marketing Manager", "phone": "+1-555-0100",
        "interests": ["marketing"], "notes": ""
    }));
    let mut server = ServerDoc::new(base.clone(), time(1_000, 1));
    server.data = obj(json!({
        "title": "Chief Marketing Officer", "phone": "+1-555-0124",
        "interests": ["marketing", "strategy", "branding"],
        "notes": "Interested in our new product line"
    }));
    let patch = obj(json!({
        "title": "VP Marketing", "phone": "+1-555-0123",
        "interests": ["marketing", "digital", "analytics"],
        "notes": "Follow up on Q1 campaign discussion"
    }));
    let outcome = server.apply(
        &engine,
        Base::Document(&base),
        ClientEdit::Update(&patch),
        time(2_000, 2),
        None,
    );
    assert_eq!(
        Value::Object(server.data.clone()),
        json!({
            "title": "Chief Marketing Officer",
            "phone": "+1-555-0123",
            "interests": ["marketing", "digital", "analytics", "strategy", "branding"],
            "notes": "Follow up on Q1 campaign discussion. Interested in our new product line"
        })
    );
    assert_eq!(
        outcome.conflict_fields,
        ["interests", "notes", "phone", "title"]
    );
    assert_eq!(outcome.status, OpStatus::Merged);
}

#[test]
fn seed_004_bulk_update_left_pending_reports_both_sides() {
    let base = obj(json!({"title": "Developer", "interests": ["technology"]}));
    let mut server = ServerDoc::new(base.clone(), time(1_000, 1));
    server.data =
        obj(json!({"title": "Lead Developer", "interests": ["technology", "leadership"]}));
    let patch =
        obj(json!({"title": "Senior Developer", "interests": ["technology", "programming", "AI"]}));
    let outcome = server.apply(
        &ConflictEngine::default(),
        Base::Document(&base),
        ClientEdit::Update(&patch),
        time(2_000, 2),
        Some(Strategy::Manual),
    );
    assert_eq!(outcome.status, OpStatus::Conflict);
    assert_eq!(outcome.client_data, patch);
    assert_eq!(
        Value::Object(outcome.server_data.clone()),
        json!({"title": "Lead Developer", "interests": ["technology", "leadership"]})
    );
    let record = outcome
        .conflict_record(
            &key(),
            RecordContext {
                id: "c-1".parse().unwrap(),
                op_id: "op-1".parse().unwrap(),
                local_id: Some("local_002".into()),
                device_id: None,
                user: None,
                created_at: Timestamp::parse("2023-12-01T11:20:00.000Z").unwrap(),
            },
        )
        .unwrap();
    assert_eq!(record.status, ConflictStatus::Pending);
    assert_eq!(record.resolved_data, None);
    let wire = serde_json::to_value(&record).unwrap();
    assert_eq!(
        wire["conflictData"]["conflictFields"],
        json!(["interests", "title"])
    );
    assert_eq!(wire["serverId"], "uuid-456");
}

#[test]
fn one_sided_and_nested_changes_merge_without_conflict() {
    let base = obj(json!({"a": 1, "address": {"city": "Oslo", "zip": "0150"}}));
    let mut server = ServerDoc::new(base.clone(), time(1_000, 1));
    server.data = obj(json!({"a": 2, "address": {"city": "Oslo", "zip": "0151"}}));
    let patch = obj(json!({"address": {"city": "Bergen"}, "b": true}));
    let outcome = server.apply(
        &ConflictEngine::default(),
        Base::Document(&base),
        ClientEdit::Update(&patch),
        time(2_000, 2),
        None,
    );
    assert_eq!(outcome.status, OpStatus::Success);
    assert_eq!(
        Value::Object(server.data),
        json!({"a": 2, "b": true, "address": {"city": "Bergen", "zip": "0151"}})
    );

    // Both edited the same nested field: reported by its dotted path.
    let mut server = ServerDoc::new(base.clone(), time(1_000, 1));
    server.data = obj(json!({"a": 1, "address": {"city": "Trondheim", "zip": "0150"}}));
    let outcome = server.apply(
        &ConflictEngine::default(),
        Base::Document(&base),
        ClientEdit::Update(&patch),
        time(500, 2),
        None,
    );
    assert_eq!(outcome.conflict_fields, ["address.city"]);
}

#[test]
fn strings_with_separate_edits_merge_as_text() {
    let base = obj(json!({"notes": "Follow up on Q1 campaign discussion"}));
    let mut server = ServerDoc::new(base.clone(), time(1_000, 1));
    server.data = obj(json!({"notes": "Follow up on Q1 campaign discussion soon"}));
    let patch = obj(json!({"notes": "Follow up on Q2 campaign discussion"}));
    server.apply(
        &ConflictEngine::default(),
        Base::Document(&base),
        ClientEdit::Update(&patch),
        time(2_000, 2),
        None,
    );
    assert_eq!(
        server.data["notes"],
        "Follow up on Q2 campaign discussion soon"
    );
}

#[test]
fn strings_both_edited_in_one_word_keep_the_later_word() {
    let base = obj(json!({"notes": "Meet at 10am. Bring the slides."}));
    for (server_at, client_at, expected) in [
        (1_000, 2_000, "Meet at 9am. Bring the slides!"),
        (2_000, 1_000, "Meet at 11am. Bring the slides!"),
    ] {
        let mut server = ServerDoc::new(base.clone(), time(500, 1));
        server.data = obj(json!({"notes": "Meet at 11am. Bring the slides."}));
        server.clocks.insert("notes".into(), time(server_at, 1));
        let patch = obj(json!({"notes": "Meet at 9am. Bring the slides!"}));
        let outcome = server.apply(
            &ConflictEngine::default(),
            Base::Document(&base),
            ClientEdit::Update(&patch),
            time(client_at, 2),
            None,
        );
        assert_eq!(server.data["notes"], expected);
        assert_eq!(outcome.conflict_fields, ["notes"]);
        assert_eq!(outcome.status, OpStatus::Merged);
    }
}

#[test]
fn strings_without_a_base_string_do_not_merge_as_text() {
    // Both created the field: two insertions, which would both be kept,
    // so the later write wins instead.
    let base = obj(json!({"title": "x"}));
    let mut server = ServerDoc::new(base.clone(), time(1_000, 1));
    server.data.insert("notes".into(), json!("Call Bob"));
    let patch = obj(json!({"notes": "Call Alice"}));
    server.apply(
        &ConflictEngine::default(),
        Base::Document(&base),
        ClientEdit::Update(&patch),
        time(2_000, 2),
        None,
    );
    assert_eq!(server.data["notes"], "Call Alice");
}

#[test]
fn without_a_base_the_later_write_wins() {
    let mut server = ServerDoc::new(obj(json!({"title": "Director", "x": 1})), time(5_000, 1));
    let patch = obj(json!({"title": "Manager", "x": 1}));
    let outcome = server.apply(
        &ConflictEngine::default(),
        Base::Unknown,
        ClientEdit::Update(&patch),
        time(4_000, 2),
        None,
    );
    assert_eq!(outcome.conflict_fields, ["title"]);
    assert_eq!(outcome.strategy, Strategy::Lww);
    assert_eq!(server.data["title"], "Director");
    let outcome = server.apply(
        &ConflictEngine::default(),
        Base::Unknown,
        ClientEdit::Update(&patch),
        time(6_000, 2),
        None,
    );
    assert_eq!(outcome.status, OpStatus::Merged);
    assert_eq!(server.data["title"], "Manager");
}

#[test]
fn without_a_base_a_field_the_server_never_wrote_is_no_conflict() {
    let mut server = ServerDoc::new(obj(json!({"n": 1})), time(5_000, 1));
    // Even an earlier (or equal) client time: the server has nothing there.
    let patch = obj(json!({"even": true}));
    let outcome = server.apply(
        &ConflictEngine::default(),
        Base::Unknown,
        ClientEdit::Update(&patch),
        time(5_000, 0),
        None,
    );
    assert!(
        outcome.conflict_fields.is_empty(),
        "{:?}",
        outcome.conflict_fields
    );
    assert_eq!(outcome.status, OpStatus::Success);
    assert_eq!(
        Value::Object(server.data.clone()),
        json!({"n": 1, "even": true})
    );
    // A field the server removed keeps its clock: that is still decided by time.
    let removal = obj(json!({"n": null}));
    server.apply(
        &ConflictEngine::default(),
        Base::Unknown,
        ClientEdit::Update(&removal),
        time(6_000, 1),
        None,
    );
    let late = obj(json!({"n": 2}));
    let outcome = server.apply(
        &ConflictEngine::default(),
        Base::Unknown,
        ClientEdit::Update(&late),
        time(5_500, 2),
        None,
    );
    assert_eq!(outcome.conflict_fields, ["n"]);
    assert!(!server.data.contains_key("n"));
}

#[test]
fn with_a_sync_point_only_fields_changed_since_conflict() {
    let mut server = ServerDoc::new(
        obj(json!({"title": "Director", "phone": "1"})),
        time(5_000, 1),
    );
    let changed: BTreeSet<String> = ["title".to_owned()].into();
    let patch = obj(json!({"title": "Manager", "phone": "2"}));
    let outcome = server.apply(
        &ConflictEngine::default(),
        Base::ChangedSince(&changed),
        ClientEdit::Update(&patch),
        time(4_000, 2),
        Some(Strategy::ServerWins),
    );
    assert_eq!(outcome.conflict_fields, ["title"]);
    assert_eq!(
        Value::Object(server.data),
        json!({"title": "Director", "phone": "2"})
    );
}

#[test]
fn deletes_do_not_resurrect_and_do_not_vanish_silently() {
    let base = obj(json!({"title": "a"}));
    let edited = obj(json!({"title": "b"}));
    let patch = obj(json!({"title": "c"}));
    // A delete concurrent with a server edit: under merge the delete wins
    // and is reported as a resolved conflict.
    let mut server = ServerDoc::new(edited.clone(), time(1_000, 1));
    let outcome = server.apply(
        &ConflictEngine::default(),
        Base::Document(&base),
        ClientEdit::Delete,
        time(900, 2),
        None,
    );
    assert!(server.deleted && outcome.has_conflict());
    assert_eq!(outcome.status, OpStatus::Merged);
    // Under server_wins the edit stands.
    let mut server = ServerDoc::new(edited.clone(), time(1_000, 1));
    server.apply(
        &ConflictEngine::default(),
        Base::Document(&base),
        ClientEdit::Delete,
        time(900, 2),
        Some(Strategy::ServerWins),
    );
    assert!(!server.deleted);
    // A delete of an unchanged document is no conflict.
    let mut server = ServerDoc::new(base.clone(), time(1_000, 1));
    let outcome = server.apply(
        &ConflictEngine::default(),
        Base::Document(&base),
        ClientEdit::Delete,
        time(900, 2),
        None,
    );
    assert_eq!(outcome.status, OpStatus::Success);

    // An update of a deleted document: merge keeps the delete; lww revives
    // it only when the edit is later than the delete.
    for (strategy, client_ms, revived) in [
        (Strategy::Merge, 3_000, false),
        (Strategy::Lww, 1_500, false),
        (Strategy::Lww, 3_000, true),
        (Strategy::ClientWins, 1_500, true),
    ] {
        let mut server = ServerDoc::new(base.clone(), time(1_000, 1));
        server.apply(
            &ConflictEngine::default(),
            Base::Document(&base),
            ClientEdit::Delete,
            time(2_000, 1),
            None,
        );
        assert!(server.deleted);
        let outcome = server.apply(
            &ConflictEngine::default(),
            Base::Document(&base),
            ClientEdit::Update(&patch),
            time(client_ms, 2),
            Some(strategy),
        );
        assert_eq!(!server.deleted, revived, "{strategy} at {client_ms}");
        assert_eq!(outcome.conflict_fields, ["title"]);
        if revived {
            assert_eq!(server.data["title"], "c");
        }
    }
}

struct LongestTitle;

impl ConflictResolver for LongestTitle {
    fn resolve(&self, input: &ConflictInput<'_>) -> Resolution {
        let title = |doc: &sync_core::JsonObject| {
            doc.get("title")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let mut document = input.server.clone();
        let longest = std::cmp::max_by_key(title(input.server), title(input.client), String::len);
        document.insert("title".into(), json!(longest));
        Resolution {
            document,
            conflict_fields: input.conflict_fields.to_vec(),
            strategy: Strategy::Custom,
            pending: false,
        }
    }
}

#[test]
fn custom_strategy_calls_the_registered_resolver() {
    let mut engine = ConflictEngine::new(ConflictConfig {
        collections: [(
            "visitors".to_owned(),
            CollectionConfig::with_strategy(Strategy::Custom),
        )]
        .into(),
        ..ConflictConfig::default()
    });
    engine.register_resolver("visitors", Arc::new(LongestTitle));
    let (base, patch) = (
        obj(json!({"title": "Dev"})),
        obj(json!({"title": "Principal Engineer"})),
    );
    let mut server = ServerDoc::new(obj(json!({"title": "Lead"})), time(1_000, 1));
    let outcome = server.apply(
        &engine,
        Base::Document(&base),
        ClientEdit::Update(&patch),
        time(500, 2),
        None,
    );
    assert_eq!(server.data["title"], "Principal Engineer");
    assert_eq!(outcome.strategy, Strategy::Custom);
    assert_eq!(outcome.status, OpStatus::Merged);
}

#[test]
fn configuration_loads_from_toml() {
    let config: ConflictConfig = toml::from_str(
        r#"
        [default]
        strategy = "lww"

        [collections.visitors]
        strategy = "merge"
        text_fields = ["notes"]
        [collections.visitors.fields]
        notes = "concat"
        interests = "union"
        title = "server_wins"
        "#,
    )
    .unwrap();
    assert_eq!(config.for_collection("todos").strategy, Strategy::Lww);
    let visitors = config.for_collection("visitors");
    assert_eq!(visitors.fields["interests"], FieldRule::Union);
    assert!(visitors.merges_text("notes") && !visitors.merges_text("title"));
    assert!(toml::from_str::<ConflictConfig>("[default]\nstratgy = \"lww\"").is_err());
    assert!(toml::from_str::<ConflictConfig>("[default]\nstrategy = \"coin_flip\"").is_err());
}
