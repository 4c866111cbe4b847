//! Text: a compact edit list between two strings, and the three-way merge
//! (diff3) the conflict engine uses for strings both sides edited.
//!
//! The merge works on word tokens (runs of letters and digits, runs of
//! white space, and single other characters) rather than characters or
//! lines: two people editing different words of one sentence, the common
//! case for fields like `notes`, merge cleanly, while the result never
//! interleaves the letters of two competing edits of the same word. Lines
//! are runs of tokens, so multi-line text merges the same way.

use serde::{Deserialize, Serialize};
use similar::{Algorithm, DiffOp, capture_diff_slices};

use crate::error::DiffError;

/// One step of a text edit, in characters (Unicode scalar values).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TextOp {
    /// Keep this many characters.
    Retain(usize),
    /// Drop this many characters.
    Delete(usize),
    /// Insert this text.
    Insert(String),
}

/// An edit that turns one string into another: `[{"retain": 5}, {"insert": "x"}, ...]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TextDelta(pub Vec<TextOp>);

/// The edit from `old` to `new`, character by character (Myers' diff).
pub fn diff(old: &str, new: &str) -> TextDelta {
    let old_chars: Vec<char> = old.chars().collect();
    let new_chars: Vec<char> = new.chars().collect();
    let mut ops: Vec<TextOp> = Vec::new();
    let mut push = |op: TextOp| match (ops.last_mut(), op) {
        (Some(TextOp::Retain(n)), TextOp::Retain(m)) => *n += m,
        (Some(TextOp::Delete(n)), TextOp::Delete(m)) => *n += m,
        (Some(TextOp::Insert(s)), TextOp::Insert(t)) => s.push_str(&t),
        (_, op) => ops.push(op),
    };
    for op in capture_diff_slices(Algorithm::Myers, &old_chars, &new_chars) {
        match op {
            DiffOp::Equal { len, .. } => push(TextOp::Retain(len)),
            DiffOp::Delete { old_len, .. } => push(TextOp::Delete(old_len)),
            DiffOp::Insert {
                new_index, new_len, ..
            } => push(TextOp::Insert(
                new_chars[new_index..new_index + new_len].iter().collect(),
            )),
            DiffOp::Replace {
                old_len,
                new_index,
                new_len,
                ..
            } => {
                push(TextOp::Delete(old_len));
                push(TextOp::Insert(
                    new_chars[new_index..new_index + new_len].iter().collect(),
                ));
            }
        }
    }
    if matches!(ops.last(), Some(TextOp::Retain(_))) {
        ops.pop();
    }
    TextDelta(ops)
}

/// `text` with `delta` applied; the rest of the text after the last op is kept.
pub fn apply(text: &str, delta: &TextDelta) -> Result<String, DiffError> {
    let mut chars = text.chars();
    let mut out = String::with_capacity(text.len());
    for op in &delta.0 {
        match op {
            TextOp::Retain(n) => {
                for _ in 0..*n {
                    out.push(
                        chars
                            .next()
                            .ok_or(DiffError::TextMismatch("retain past the end"))?,
                    );
                }
            }
            TextOp::Delete(n) => {
                for _ in 0..*n {
                    chars
                        .next()
                        .ok_or(DiffError::TextMismatch("delete past the end"))?;
                }
            }
            TextOp::Insert(inserted) => out.push_str(inserted),
        }
    }
    out.extend(chars);
    Ok(out)
}

/// A stretch of text both sides changed differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConflictRegion {
    /// The stretch in the common ancestor.
    pub base: String,
    /// What "ours" made of it.
    pub ours: String,
    /// What "theirs" made of it.
    pub theirs: String,
}

/// A three-way merge with overlapping edits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} overlapping edit(s)", .regions.len())]
pub struct TextConflict {
    /// Each stretch both sides changed differently, in text order.
    pub regions: Vec<ConflictRegion>,
    /// The merge with "ours" taken in every conflicting stretch.
    pub merged_preferring_ours: String,
}

/// Splits text into word tokens: runs of alphanumerics, runs of white space,
/// and single other characters. Concatenating the tokens gives the text.
fn tokens(text: &str) -> Vec<&str> {
    #[derive(PartialEq, Clone, Copy)]
    enum Class {
        Word,
        Space,
        Other,
    }
    let class = |c: char| {
        if c.is_alphanumeric() {
            Class::Word
        } else if c.is_whitespace() {
            Class::Space
        } else {
            Class::Other
        }
    };
    let mut out = Vec::new();
    let mut start = 0;
    let mut previous: Option<Class> = None;
    for (index, c) in text.char_indices() {
        let current = class(c);
        let joins = previous == Some(current) && current != Class::Other;
        if !joins && index > start {
            out.push(&text[start..index]);
            start = index;
        }
        previous = Some(current);
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// A change one side made: base tokens `start..end` became `replacement`.
#[derive(Debug, Clone)]
struct Hunk<'a> {
    start: usize,
    end: usize,
    replacement: Vec<&'a str>,
    ours: bool,
}

fn hunks<'a>(base: &[&'a str], side: &[&'a str], ours: bool) -> Vec<Hunk<'a>> {
    let mut out: Vec<Hunk<'a>> = Vec::new();
    for op in capture_diff_slices(Algorithm::Myers, base, side) {
        let (old_range, new_range) = match op {
            DiffOp::Equal { .. } => continue,
            op => (op.old_range(), op.new_range()),
        };
        let replacement = side[new_range].to_vec();
        match out.last_mut() {
            Some(last) if last.end == old_range.start => {
                last.end = old_range.end;
                last.replacement.extend(replacement);
            }
            _ => out.push(Hunk {
                start: old_range.start,
                end: old_range.end,
                replacement,
                ours,
            }),
        }
    }
    out
}

/// One side's version of base tokens `start..end`, given that side's hunks
/// inside that stretch.
fn side_version<'a>(base: &[&'a str], start: usize, end: usize, hunks: &[&Hunk<'a>]) -> String {
    let mut out = String::new();
    let mut at = start;
    for hunk in hunks {
        out.extend(base[at..hunk.start].iter().copied());
        out.extend(hunk.replacement.iter().copied());
        at = hunk.end;
    }
    out.extend(base[at..end].iter().copied());
    out
}

/// Three-way merge of `ours` and `theirs`, both edited from `base`.
/// Edits of different stretches both apply; the same edit on both sides
/// applies once; different edits of the same stretch (or insertions at the
/// same place) are reported as a [`TextConflict`].
pub fn merge3(base: &str, ours: &str, theirs: &str) -> Result<String, TextConflict> {
    if ours == theirs || theirs == base {
        return Ok(ours.to_owned());
    }
    if ours == base {
        return Ok(theirs.to_owned());
    }
    let base_tokens = tokens(base);
    let mut all = hunks(&base_tokens, &tokens(ours), true);
    all.extend(hunks(&base_tokens, &tokens(theirs), false));
    all.sort_by_key(|hunk| (hunk.start, hunk.end, !hunk.ours));

    let mut merged = String::new();
    let mut merged_preferring_ours = String::new();
    let mut regions = Vec::new();
    let mut at = 0;
    let mut index = 0;
    while index < all.len() {
        let group_start = all[index].start;
        let mut group_end = all[index].end;
        let mut next = index + 1;
        while next < all.len() && (all[next].start < group_end || all[next].start == group_start) {
            group_end = group_end.max(all[next].end);
            next += 1;
        }
        let group = &all[index..next];
        let unchanged: String = base_tokens[at..group_start].concat();
        merged.push_str(&unchanged);
        merged_preferring_ours.push_str(&unchanged);

        let ours_hunks: Vec<&Hunk<'_>> = group.iter().filter(|h| h.ours).collect();
        let theirs_hunks: Vec<&Hunk<'_>> = group.iter().filter(|h| !h.ours).collect();
        let ours_text = side_version(&base_tokens, group_start, group_end, &ours_hunks);
        let theirs_text = side_version(&base_tokens, group_start, group_end, &theirs_hunks);
        if ours_hunks.is_empty() || theirs_hunks.is_empty() || ours_text == theirs_text {
            let chosen = if ours_hunks.is_empty() {
                &theirs_text
            } else {
                &ours_text
            };
            merged.push_str(chosen);
            merged_preferring_ours.push_str(chosen);
        } else {
            merged_preferring_ours.push_str(&ours_text);
            regions.push(ConflictRegion {
                base: base_tokens[group_start..group_end].concat(),
                ours: ours_text,
                theirs: theirs_text,
            });
        }
        at = group_end;
        index = next;
    }
    let rest: String = base_tokens[at..].concat();
    merged.push_str(&rest);
    merged_preferring_ours.push_str(&rest);
    if regions.is_empty() {
        Ok(merged)
    } else {
        Err(TextConflict {
            regions,
            merged_preferring_ours,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_concatenate_to_the_text() {
        let text = "Follow up on Q1 campaign, ok?\n  Ünïcode wörds";
        assert_eq!(tokens(text).concat(), text);
        assert_eq!(tokens("a, b"), ["a", ",", " ", "b"]);
    }

    #[test]
    fn diff_and_apply_roundtrip() {
        for (old, new) in [
            ("", ""),
            ("", "hello"),
            ("hello", ""),
            ("kitten", "sitting"),
            ("Grüße, Welt", "Grüße an die Welt"),
        ] {
            let delta = diff(old, new);
            assert_eq!(apply(old, &delta).unwrap(), new, "{old} -> {new}");
        }
        let delta = diff("abc", "abXc");
        assert_eq!(
            serde_json::to_string(&delta).unwrap(),
            r#"[{"retain":2},{"insert":"X"}]"#
        );
        assert!(apply("a", &TextDelta(vec![TextOp::Retain(2)])).is_err());
        assert!(apply("a", &TextDelta(vec![TextOp::Delete(2)])).is_err());
    }

    fn check(base: &str, ours: &str, theirs: &str, expected: Result<&str, usize>) {
        let actual = merge3(base, ours, theirs);
        match expected {
            Ok(text) => assert_eq!(actual, Ok(text.to_owned()), "{base} | {ours} | {theirs}"),
            Err(regions) => {
                let conflict = actual.expect_err("expected a conflict");
                assert_eq!(conflict.regions.len(), regions, "{conflict:?}");
            }
        }
    }

    #[test]
    fn three_way_merges() {
        // Non-overlapping edits merge.
        check(
            "Follow up on Q1 campaign discussion",
            "Follow up on Q2 campaign discussion",
            "Follow up on Q1 campaign discussion soon",
            Ok("Follow up on Q2 campaign discussion soon"),
        );
        check(
            "line one\nline two\nline three\n",
            "line ONE\nline two\nline three\n",
            "line one\nline two\nline THREE\n",
            Ok("line ONE\nline two\nline THREE\n"),
        );
        // The same edit on both sides applies once.
        check("a b c", "a X c", "a X c", Ok("a X c"));
        check("a b c d", "a X c d", "a X c Y", Ok("a X c Y"));
        // One side unchanged gives the other.
        check("same", "same", "changed", Ok("changed"));
        check("same", "changed", "same", Ok("changed"));
        // Deletion on one side, edit elsewhere on the other.
        check(
            "keep this and that",
            "keep this",
            "keep these and that",
            Ok("keep these"),
        );
        // Overlapping different edits conflict.
        check("title", "Senior Manager", "Director of Operations", Err(1));
        check("a b c", "a X c", "a Y c", Err(1));
        check("a c", "a X c", "a Y c", Err(1));
    }

    #[test]
    fn a_conflict_reports_both_sides_and_an_ours_merge() {
        let conflict = merge3("one two three", "one 2 three!", "one II three").unwrap_err();
        assert_eq!(
            conflict.regions,
            [ConflictRegion {
                base: "two".into(),
                ours: "2".into(),
                theirs: "II".into()
            }]
        );
        assert_eq!(conflict.merged_preferring_ours, "one 2 three!");
    }
}
