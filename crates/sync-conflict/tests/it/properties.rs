//! The properties convergence rests on: determinism, arrival-order
//! independence of `lww` and of text merges, disjoint edits merging,
//! `manual` leaving conflicts alone, rebase convergence, and no panic on
//! any input.

use proptest::prelude::*;
use serde_json::{Map, Value};
use sync_conflict::{Base, ClientEdit, ConflictEngine, ResolveRequest, ServerState, rebase};
use sync_core::{JsonObject, Strategy as Resolution};
use sync_diff::merge_patch;

use crate::support::{ServerDoc, key, time};

fn field() -> impl Strategy<Value = String> {
    prop_oneof![Just("a"), Just("b"), Just("c"), Just("title"), Just("tags")]
        .prop_map(str::to_owned)
}

fn value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(Value::from),
        (0i64..5).prop_map(Value::from),
        prop_oneof![Just("x"), Just("y z"), Just("x y z")].prop_map(Value::from),
        Just(Value::Null),
    ];
    leaf.prop_recursive(3, 20, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(field(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
    .boxed()
}

fn document() -> impl Strategy<Value = JsonObject> {
    proptest::collection::btree_map(field(), value(), 0..5).prop_map(|m| m.into_iter().collect())
}

/// A merge patch: values and removals (`null`) of a few fields.
fn patch() -> impl Strategy<Value = JsonObject> {
    proptest::collection::btree_map(field(), value(), 1..4).prop_map(|m| m.into_iter().collect())
}

fn any_strategy() -> impl Strategy<Value = Resolution> {
    prop::sample::select(Resolution::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn resolution_is_deterministic(
        base in document(), server in document(), edit in patch(),
        strategy in any_strategy(), t1 in 0u64..10, t2 in 0u64..10,
    ) {
        let clocks = server.keys().map(|k| (k.clone(), time(t1, 1))).collect();
        let key = key();
        let request = ResolveRequest {
            key: &key,
            base: Base::Document(&base),
            server: ServerState { data: &server, deleted: false, field_clocks: &clocks, updated_at: time(t1, 1) },
            edit: ClientEdit::Update(&edit),
            client_time: time(t2, 2),
            strategy: Some(strategy),
        };
        let engine = ConflictEngine::default();
        prop_assert_eq!(engine.resolve(&request), engine.resolve(&request));
    }

    #[test]
    fn lww_does_not_depend_on_arrival_order(
        base in document(), first in patch(), second in patch(), t1 in 1u64..100, t2 in 1u64..100,
    ) {
        let engine = ConflictEngine::default();
        let run = |order: [(&JsonObject, u64, u64); 2]| {
            let mut server = ServerDoc::new(base.clone(), time(0, 0));
            for (edit, at, node) in order {
                server.apply(&engine, Base::Document(&base), ClientEdit::Update(edit), time(at, node), Some(Resolution::Lww));
            }
            server.data
        };
        let forward = run([(&first, t1, 1), (&second, t2, 2)]);
        let backward = run([(&second, t2, 2), (&first, t1, 1)]);
        prop_assert_eq!(forward, backward);
    }

    #[test]
    fn text_merge_does_not_depend_on_arrival_order(
        base in "[xyz .]{0,12}", first in "[xyz .]{0,12}", second in "[xyz .]{0,12}",
        t1 in 1u64..100, t2 in 1u64..100,
    ) {
        // Two clients edit one note from the same base; the server merges
        // the text of whichever arrives second with the stored one.
        let engine = ConflictEngine::default();
        let doc = |notes: &str| -> JsonObject { [("notes".to_owned(), Value::from(notes))].into_iter().collect() };
        let base = doc(&base);
        let run = |order: [(&str, u64, u64); 2]| {
            let mut server = ServerDoc::new(base.clone(), time(0, 0));
            for (notes, at, node) in order {
                server.apply(&engine, Base::Document(&base), ClientEdit::Update(&doc(notes)), time(at, node), None);
            }
            server.data
        };
        let forward = run([(&first, t1, 1), (&second, t2, 2)]);
        let backward = run([(&second, t2, 2), (&first, t1, 1)]);
        prop_assert_eq!(forward, backward);
    }

    #[test]
    fn disjoint_edits_merge_to_both(base in document(), server_edit in patch(), client_edit in patch(), strategy in any_strategy()) {
        let client_edit: JsonObject = client_edit
            .into_iter()
            .filter(|(k, _)| !server_edit.contains_key(k))
            .collect();
        let server_data = merge_patch::apply_to_object(&base, &server_edit);
        let mut server = ServerDoc::new(server_data.clone(), time(5, 1));
        let outcome = server.apply(&ConflictEngine::default(), Base::Document(&base), ClientEdit::Update(&client_edit), time(3, 2), Some(strategy));
        prop_assert!(!outcome.has_conflict());
        prop_assert_eq!(server.data, merge_patch::apply_to_object(&server_data, &client_edit));
    }

    #[test]
    fn manual_never_changes_a_conflicting_field(base in document(), server_edit in patch(), client_edit in patch()) {
        let server_data = merge_patch::apply_to_object(&base, &server_edit);
        let mut server = ServerDoc::new(server_data.clone(), time(5, 1));
        let outcome = server.apply(&ConflictEngine::default(), Base::Document(&base), ClientEdit::Update(&client_edit), time(9, 2), Some(Resolution::Manual));
        for field in &outcome.conflict_fields {
            let top = field.split('.').next().unwrap_or_default();
            if !field.contains('.') {
                prop_assert_eq!(server.data.get(top), server_data.get(top), "{}", field);
            }
        }
        prop_assert_eq!(outcome.pending, outcome.has_conflict());
    }

    #[test]
    fn a_client_rebasing_its_pending_edits_ends_equal_to_the_server(
        start in document(), pending in proptest::collection::vec(patch(), 0..5), strategy in any_strategy(),
    ) {
        // The client adopted the server's document and made edits on top.
        let local_view = rebase(&start, &pending);
        // The server receives them in order, each made on the previous version.
        let mut server = ServerDoc::new(start.clone(), time(1, 1));
        for (n, edit) in pending.iter().enumerate() {
            let base = server.data.clone();
            server.apply(&ConflictEngine::default(), Base::Document(&base), ClientEdit::Update(edit), time(10 + n as u64, 2), Some(strategy));
        }
        prop_assert_eq!(server.data, local_view);
    }

    #[test]
    fn nothing_panics_on_any_input(
        base in proptest::option::of(document()), server in document(), edit in patch(),
        strategy in any_strategy(), deleted in any::<bool>(), delete in any::<bool>(), no_base in any::<bool>(),
    ) {
        let clocks = Default::default();
        let key = key();
        let base = match (&base, no_base) {
            (Some(base), false) => Base::Document(base),
            _ => Base::Unknown,
        };
        let outcome = ConflictEngine::default().resolve(&ResolveRequest {
            key: &key,
            base,
            server: ServerState { data: &server, deleted, field_clocks: &clocks, updated_at: time(5, 1) },
            edit: if delete { ClientEdit::Delete } else { ClientEdit::Update(&edit) },
            client_time: time(5, 2),
            strategy: Some(strategy),
        });
        prop_assert!(!outcome.deleted || outcome.data.is_empty());
    }
}
