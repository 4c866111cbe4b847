//! The three-way text merge: the collaborative-notes cases (two people
//! editing one paragraph, one sentence, one word, one deleting what the
//! other edits) as data, and its laws as properties: identity, both sides'
//! separate edits kept whatever the order, competing edits of a word never
//! mixed, and multi-byte text cut only at character boundaries.

use proptest::prelude::*;
use sync_diff::text::{self, TextMerge};

/// Merges and compares the text and the number of overlapping stretches.
fn check(base: &str, earlier: &str, later: &str, expected: &str, overlaps: usize) {
    let merged = text::merge(base, earlier, later);
    assert_eq!(
        (merged.text.as_str(), merged.overlaps.len()),
        (expected, overlaps),
        "\nbase:    {base:?}\nearlier: {earlier:?}\nlater:   {later:?}\n{merged:?}"
    );
}

const AGENDA: &str = "Agenda: budget review. Hiring plan for Q3. Office move in May.";

#[test]
fn two_people_edit_one_paragraph() {
    check(
        AGENDA,
        "Agenda: budget review. Hiring plan for Q4. Office move in May.",
        "Agenda: budget review and forecast. Hiring plan for Q3. Office move in May.",
        "Agenda: budget review and forecast. Hiring plan for Q4. Office move in May.",
        0,
    );
    // Lines of a note are runs of tokens: edits of different lines merge.
    check(
        "line one\nline two\nline three\n",
        "line ONE\nline two\nline three\n",
        "line one\nline two\nline THREE\n",
        "line ONE\nline two\nline THREE\n",
        0,
    );
}

#[test]
fn two_people_edit_one_sentence() {
    check(
        "We meet on Monday at the office.",
        "We meet on Tuesday at the office.",
        "We meet on Monday at the new office.",
        "We meet on Tuesday at the new office.",
        0,
    );
    check(
        "Follow up on Q1 campaign discussion",
        "Follow up on Q2 campaign discussion",
        "Follow up on Q1 campaign discussion soon",
        "Follow up on Q2 campaign discussion soon",
        0,
    );
}

#[test]
fn two_people_edit_one_word() {
    // The later write's word, never a mix of the two ("91am").
    check(
        "Meet at 10am. Bring the slides.",
        "Meet at 11am. Bring the slides.",
        "Meet at 9am. Bring the slides!",
        "Meet at 9am. Bring the slides!",
        1,
    );
    check(
        "Meet at 10am. Bring the slides.",
        "Meet at 9am. Bring the slides!",
        "Meet at 11am. Bring the slides.",
        "Meet at 11am. Bring the slides!",
        1,
    );
    // The same edit on both sides applies once.
    check("a b c d", "a X c d", "a X c Y", "a X c Y", 0);
}

#[test]
fn one_deletes_a_sentence_the_other_edits() {
    let deleted = "Agenda: budget review. Office move in May.";
    let edited = "Agenda: budget review. Hiring plan for Q4. Office move in June.";
    // The later write decides the sentence; the edit outside it stays.
    check(
        AGENDA,
        deleted,
        edited,
        "Agenda: budget review. Hiring plan for Q4. Office move in June.",
        1,
    );
    check(
        AGENDA,
        edited,
        deleted,
        "Agenda: budget review. Office move in June.",
        1,
    );
    // Deleting a sentence next to one the other edits is no overlap.
    check(
        AGENDA,
        "Agenda: budget review. Office move in May.",
        "Agenda: budget review. Hiring plan for Q3. Office move in June.",
        "Agenda: budget review. Office move in June.",
        0,
    );
}

#[test]
fn edits_that_touch_without_overlapping_both_apply() {
    // One appends after the word the other rewrote.
    check(
        "Budget ok",
        "Budget approved",
        "Budget ok. Next: hiring",
        "Budget approved. Next: hiring",
        0,
    );
    // One rewrote a word, the other the comma after it.
    check("red, green", "Red, green", "red; green", "Red; green", 0);
}

#[test]
fn both_delete_overlapping_stretches() {
    check(
        "one two three four five",
        "one four five",
        "one two five",
        "one five",
        0,
    );
}

#[test]
fn both_insert_at_one_place() {
    // Both kept, the earlier write's first.
    check(
        "Shopping:\n- milk",
        "Shopping:\n- milk\n- eggs",
        "Shopping:\n- milk\n- bread",
        "Shopping:\n- milk\n- eggs\n- bread",
        0,
    );
    check(
        "Shopping:\n- milk",
        "Shopping:\n- milk\n- bread",
        "Shopping:\n- milk\n- eggs",
        "Shopping:\n- milk\n- bread\n- eggs",
        0,
    );
    // One typed what the other typed, and more: that one.
    check(
        "Call Bob",
        "Call Bob tomorrow",
        "Call Bob tomorrow at 9",
        "Call Bob tomorrow at 9",
        0,
    );
    check(
        "Call Bob",
        "Call Bob tomorrow",
        "Call Bob tomorrow",
        "Call Bob tomorrow",
        0,
    );
    // Seed 004's title: one side added a word before the one the other
    // replaced. The edits touch without overlapping, so both apply.
    check(
        "Manager",
        "Director of Operations",
        "Senior Manager",
        "Senior Director of Operations",
        0,
    );
}

#[test]
fn scripts_and_marks() {
    // Without spaces, each ideograph is a token: separate edits merge.
    check(
        "明天开会讨论预算",
        "明天上午开会讨论预算",
        "明天开会讨论明年预算",
        "明天上午开会讨论明年预算",
        0,
    );
    // A combining accent stays on its letter.
    check(
        "cafe\u{301} au lait",
        "cafe\u{301} au lait chaud",
        "Cafe\u{301} au lait",
        "Cafe\u{301} au lait chaud",
        0,
    );
    check(
        "Grüße 👍",
        "Grüße 👍🏽",
        "Grüße, Welt 👍",
        "Grüße, Welt 👍🏽",
        0,
    );
}

/// What one side does to one word of the base.
#[derive(Debug, Clone)]
enum Edit {
    Keep,
    Replace(String),
    Delete,
    InsertAfter(String),
}

fn edit(word: &'static str) -> impl Strategy<Value = Edit> {
    prop_oneof![
        2 => Just(Edit::Keep),
        1 => word.prop_map(Edit::Replace),
        1 => Just(Edit::Delete),
        1 => word.prop_map(Edit::InsertAfter),
    ]
}

/// Base words, each unique (a numbered word), so a diff cannot match one
/// for another.
fn base_words() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec("[a-cé]{1,3}", 1..12).prop_map(|words| {
        words
            .into_iter()
            .enumerate()
            .map(|(i, word)| format!("{word}{i}"))
            .collect()
    })
}

/// The words with the edits made, joined by single spaces.
fn render(words: &[String], edits: &[(usize, &Edit)]) -> String {
    let mut out: Vec<&str> = Vec::new();
    for (slot, word) in words.iter().enumerate() {
        match edits
            .iter()
            .find(|(at, _)| *at == slot)
            .map(|(_, edit)| *edit)
        {
            None | Some(Edit::Keep) => out.push(word),
            Some(Edit::Replace(new)) => out.push(new),
            Some(Edit::Delete) => {}
            Some(Edit::InsertAfter(new)) => out.extend([word.as_str(), new.as_str()]),
        }
    }
    out.join(" ")
}

/// `word` with the letters `mask` picks (at least the first) written as
/// capitals counting from `first`: `abc3` with `[false, true]` and `D` is
/// `aEc3`.
fn rewrite(word: &str, mask: &[bool], first: char) -> String {
    let letters = word.chars().take_while(|c| !c.is_ascii_digit()).count();
    let none_picked = !mask.iter().take(letters).any(|&picked| picked);
    word.chars()
        .enumerate()
        .map(|(i, c)| {
            let picked =
                i < letters && (mask.get(i).copied().unwrap_or(false) || none_picked && i == 0);
            match picked {
                true => char::from_u32(first as u32 + i as u32 % 3).unwrap_or(first),
                false => c,
            }
        })
        .collect()
}

/// `merge` both ways round.
fn both_orders(base: &str, a: &str, b: &str) -> [TextMerge; 2] {
    [text::merge(base, a, b), text::merge(base, b, a)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_side_unchanged_or_both_equal_give_that_text(
        base in "\\PC{0,30}", edited in "\\PC{0,30}",
    ) {
        for merged in [
            text::merge(&base, &base, &edited),
            text::merge(&base, &edited, &base),
            text::merge(&base, &edited, &edited),
        ] {
            prop_assert_eq!(&merged.text, &edited);
            prop_assert!(merged.is_clean());
        }
    }

    #[test]
    fn separate_edits_of_both_sides_are_all_kept_in_either_order(
        words in base_words(),
        earlier in proptest::collection::vec(edit("[d-fö字]{1,3}"), 12),
        later in proptest::collection::vec(edit("[g-iü👍]{1,3}"), 12),
    ) {
        // The sides edit words two apart: an unchanged word between.
        let earlier: Vec<(usize, &Edit)> = earlier.iter().enumerate().filter(|(i, _)| i % 4 == 0).collect();
        let later: Vec<(usize, &Edit)> = later.iter().enumerate().filter(|(i, _)| i % 4 == 2).collect();
        let base = render(&words, &[]);
        let a = render(&words, &earlier);
        let b = render(&words, &later);
        let expected = render(&words, &[earlier.clone(), later.clone()].concat());
        for merged in both_orders(&base, &a, &b) {
            prop_assert_eq!(&merged.text, &expected);
            prop_assert!(merged.is_clean(), "{:?}", merged);
        }
    }

    #[test]
    fn competing_edits_of_a_word_are_never_mixed(
        words in base_words(),
        at in any::<prop::sample::Index>(),
        ours in proptest::collection::vec(any::<bool>(), 4),
        theirs in proptest::collection::vec(any::<bool>(), 4),
        deleted_around in proptest::option::of((0usize..3, 0usize..3)),
        far_edit in "[d-f]{1,3}",
    ) {
        let at = at.index(words.len());
        // Each side rewrites some letters of the same word (capitals of its
        // own), so a character-level merge could combine the two; one side
        // also edits the last word, far from it. Or the other side deletes
        // a run of words around the word instead.
        let ours = rewrite(&words[at], &ours, 'D');
        let theirs = rewrite(&words[at], &theirs, 'G');
        let far = (at + 6 < words.len()).then_some(words.len() - 1);
        let replace_ours = Edit::Replace(ours.clone());
        let replace_theirs = Edit::Replace(theirs.clone());
        let replace_far = Edit::Replace(far_edit.clone());
        let far_edits: Vec<(usize, &Edit)> = far.map(|slot| (slot, &replace_far)).into_iter().collect();
        let a = render(&words, &[vec![(at, &replace_ours)], far_edits.clone()].concat());
        let deleted: Vec<String> = match deleted_around {
            Some((before, after)) => words
                .iter()
                .enumerate()
                .filter(|(i, _)| *i + before < at || *i > at + after)
                .map(|(_, word)| word.clone())
                .collect(),
            None => Vec::new(),
        };
        let b = match deleted_around {
            Some(_) => deleted.join(" "),
            None => render(&words, &[(at, &replace_theirs)]),
        };
        let base = render(&words, &[]);
        let [ours_earlier, ours_later] = both_orders(&base, &a, &b);
        // Ours later: its version of the stretch, and its far edit.
        let expected = render(&words, &[vec![(at, &replace_ours)], far_edits.clone()].concat());
        prop_assert_eq!(&ours_later.text, &expected);
        // Theirs later: its word or its deletion, and our far edit.
        let expected = match deleted_around {
            Some(_) => {
                let mut kept = deleted.clone();
                if let (Some(_), Some(last)) = (far, kept.last_mut()) {
                    last.clone_from(&far_edit);
                }
                kept.join(" ")
            }
            None => render(&words, &[vec![(at, &replace_theirs)], far_edits].concat()),
        };
        prop_assert_eq!(&ours_earlier.text, &expected);
        for merged in [ours_earlier, ours_later] {
            prop_assert_eq!(merged.overlaps.len(), 1, "{:?}", merged);
        }
    }

    #[test]
    fn multi_byte_text_merges_at_character_boundaries(
        base in "[aé漢👍\u{301}\u{200D} \n.]{0,16}",
        a in "[aé漢👍\u{301}\u{200D} \n.]{0,16}",
        b in "[aé漢👍\u{301}\u{200D} \n.]{0,16}",
    ) {
        // Any input merges without panicking (no cut inside a character)
        // and without tearing a mark from its letter; swapping the sides
        // reports the same stretches, swapped.
        let [forward, backward] = both_orders(&base, &a, &b);
        let starts_with_mark = |text: &str| text.starts_with(['\u{301}', '\u{200D}']);
        let any_input_does = [&base, &a, &b].iter().any(|text| starts_with_mark(text));
        prop_assert!(!starts_with_mark(&forward.text) || any_input_does, "{:?}", forward);
        prop_assert_eq!(forward.overlaps.len(), backward.overlaps.len());
        for (x, y) in forward.overlaps.iter().zip(&backward.overlaps) {
            prop_assert_eq!((&x.base, &x.earlier, &x.later), (&y.base, &y.later, &y.earlier));
        }
        if forward.is_clean() {
            let sorted = |text: &str| {
                let mut chars: Vec<char> = text.chars().collect();
                chars.sort_unstable();
                chars
            };
            prop_assert_eq!(sorted(&forward.text), sorted(&backward.text));
        }
    }
}
