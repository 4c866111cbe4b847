//! Text: a compact edit list between two strings, and the three-way merge
//! the conflict engine runs on strings both sides edited.
//!
//! The protocol sends whole values with the version they were edited on,
//! not keystrokes, so the server knows three texts: the base, and the two
//! edits of it. [`merge`] diffs each edit against the base and applies both
//! diffs, as operational transform would apply two concurrent operations:
//! edits of different stretches both apply, the same edit made on both
//! sides applies once, insertions both sides made at one place are both
//! kept (the earlier write's first; only the longer, when it repeats the
//! other), and where both sides only deleted, everything either deleted
//! goes. Where both changed the same stretch
//! differently, the later write's version of that stretch is kept, and the
//! stretch is reported. The result depends only on which edit is the
//! earlier, never on which side arrived first, so a server that orders the
//! two by their clocks decides the same whatever the arrival order.
//!
//! The merge works on word tokens (runs of letters and digits, runs of
//! white space, and single other characters) rather than characters:
//! competing edits of one word never interleave their letters, as a
//! character-level transform would (`10am` edited to `11am` and to `9am`
//! gives one of the two, not `91am`). Combining marks, variation selectors
//! and joiners stay with the character before them. Chinese and Japanese
//! text has no spaces to find words by, so there each character is a
//! token. Lines are runs of tokens, so multi-line text merges the same way.

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

/// A stretch of the base both sides changed differently: the merge kept
/// the later side's version of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConflictRegion {
    /// The stretch in the common ancestor.
    pub base: String,
    /// What the earlier write made of it (not in the merged text).
    pub earlier: String,
    /// What the later write made of it (in the merged text).
    pub later: String,
}

/// The result of a three-way text merge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextMerge {
    /// The merged text.
    pub text: String,
    /// The stretches both sides changed differently, in text order; empty
    /// when every edit of both sides is in [`text`](Self::text).
    pub overlaps: Vec<ConflictRegion>,
}

impl TextMerge {
    /// Whether every edit of both sides is in the merged text.
    pub fn is_clean(&self) -> bool {
        self.overlaps.is_empty()
    }

    fn clean(text: &str) -> TextMerge {
        TextMerge {
            text: text.to_owned(),
            overlaps: Vec::new(),
        }
    }
}

/// How a character groups with its neighbours into tokens.
#[derive(PartialEq, Clone, Copy)]
enum Class {
    /// Letters and digits: runs of them are one token.
    Word,
    /// White space: runs of it are one token.
    Space,
    /// Anything else: one token per character.
    Other,
    /// A character of a script written without spaces: one token each.
    Ideograph,
    /// A combining mark, variation selector or joiner: part of the token
    /// before it.
    Mark,
}

fn class(c: char) -> Class {
    if c.is_ascii() {
        return if c.is_ascii_alphanumeric() {
            Class::Word
        } else if c.is_ascii_whitespace() || c == '\u{B}' {
            Class::Space
        } else {
            Class::Other
        };
    }
    match c {
        '\u{0300}'..='\u{036F}'
        | '\u{1AB0}'..='\u{1AFF}'
        | '\u{1DC0}'..='\u{1DFF}'
        | '\u{200C}'..='\u{200D}'
        | '\u{20D0}'..='\u{20FF}'
        | '\u{3099}'..='\u{309A}'
        | '\u{FE00}'..='\u{FE0F}'
        | '\u{FE20}'..='\u{FE2F}'
        | '\u{1F3FB}'..='\u{1F3FF}'
        | '\u{E0020}'..='\u{E007F}'
        | '\u{E0100}'..='\u{E01EF}' => Class::Mark,
        '\u{3040}'..='\u{30FF}'
        | '\u{3400}'..='\u{4DBF}'
        | '\u{4E00}'..='\u{9FFF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{20000}'..='\u{3134F}' => Class::Ideograph,
        c if c.is_alphanumeric() => Class::Word,
        c if c.is_whitespace() => Class::Space,
        _ => Class::Other,
    }
}

/// Splits text into word tokens: runs of alphanumerics, runs of white
/// space, and single other characters, each with the marks that follow it
/// (and, after a zero-width joiner, the character it joins). Concatenating
/// the tokens gives the text.
fn tokens(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut previous: Option<Class> = None;
    let mut after_joiner = false;
    for (index, c) in text.char_indices() {
        let current = class(c);
        let joins = after_joiner
            || current == Class::Mark
            || (previous == Some(current) && matches!(current, Class::Word | Class::Space));
        if !joins && index > start {
            out.push(&text[start..index]);
            start = index;
        }
        after_joiner = c == '\u{200D}';
        if current != Class::Mark {
            previous = Some(current);
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// Which of the two edits a hunk belongs to. The order is the tie-break:
/// at one place, the earlier write's insertion comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Side {
    Earlier,
    Later,
}

/// A change one side made: base tokens `start..end` became `replacement`
/// (an insertion when `start == end`). One side's hunks never touch: an
/// unchanged token lies between any two.
#[derive(Debug, Clone)]
struct Hunk<'a> {
    start: usize,
    end: usize,
    replacement: Vec<&'a str>,
    side: Side,
}

impl Hunk<'_> {
    fn is_insertion(&self) -> bool {
        self.start == self.end
    }
}

fn hunks<'a>(base: &[&'a str], edited: &[&'a str], side: Side) -> Vec<Hunk<'a>> {
    let mut out: Vec<Hunk<'a>> = Vec::new();
    for op in capture_diff_slices(Algorithm::Myers, base, edited) {
        let (old_range, new_range) = match op {
            DiffOp::Equal { .. } => continue,
            op => (op.old_range(), op.new_range()),
        };
        let replacement = edited[new_range].to_vec();
        match out.last_mut() {
            Some(last) if last.end == old_range.start => {
                last.end = old_range.end;
                last.replacement.extend(replacement);
            }
            _ => out.push(Hunk {
                start: old_range.start,
                end: old_range.end,
                replacement,
                side,
            }),
        }
    }
    out
}

/// One side's version of base tokens `start..end`, given that side's hunks
/// inside that stretch.
fn side_version<'a>(
    base: &[&'a str],
    start: usize,
    end: usize,
    hunks: &[&Hunk<'a>],
) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut at = start;
    for hunk in hunks {
        out.extend_from_slice(&base[at..hunk.start]);
        out.extend_from_slice(&hunk.replacement);
        at = hunk.end;
    }
    out.extend_from_slice(&base[at..end]);
    out
}

/// Whether `inner` occurs as a run of tokens inside `outer`.
fn contains(outer: &[&str], inner: &[&str]) -> bool {
    !inner.is_empty() && outer.windows(inner.len()).any(|window| window == inner)
}

/// What two insertions at one place become: one, when they are equal or
/// one repeats the other with more around it; otherwise both, the earlier
/// first.
fn insertions_at_one_place<'a>(earlier: &[&'a str], later: &[&'a str]) -> Vec<&'a str> {
    if contains(later, earlier) {
        later.to_vec()
    } else if contains(earlier, later) {
        earlier.to_vec()
    } else {
        [earlier, later].concat()
    }
}

/// Three-way merge of two edits of `base`: `earlier` and `later` are the
/// two edited texts in the order they were written (the conflict engine
/// orders them by their clocks). Never fails: where both sides changed the
/// same stretch differently, the later side's version of that stretch is
/// kept and the stretch is listed in [`TextMerge::overlaps`].
///
/// ```
/// use sync_diff::text;
///
/// let base = "Meet at 10am. Bring the slides.";
/// let merged = text::merge(base, "Meet at 11am. Bring the slides.", "Meet at 10am. Bring the report.");
/// assert_eq!(merged.text, "Meet at 11am. Bring the report.");
/// assert!(merged.is_clean());
///
/// let merged = text::merge(base, "Meet at 11am. Bring the slides.", "Meet at 9am. Bring the slides!");
/// assert_eq!(merged.text, "Meet at 9am. Bring the slides!");
/// assert_eq!((merged.overlaps[0].earlier.as_str(), merged.overlaps[0].later.as_str()), ("11am", "9am"));
/// ```
pub fn merge(base: &str, earlier: &str, later: &str) -> TextMerge {
    if earlier == later || later == base {
        return TextMerge::clean(earlier);
    }
    if earlier == base {
        return TextMerge::clean(later);
    }
    let base_tokens = tokens(base);
    let mut all = hunks(&base_tokens, &tokens(earlier), Side::Earlier);
    all.extend(hunks(&base_tokens, &tokens(later), Side::Later));
    // By place; at one place insertions first, the earlier side's first.
    all.sort_by_key(|hunk| (hunk.start, hunk.end, hunk.side));

    let mut merged: Vec<&str> = Vec::with_capacity(base_tokens.len());
    let mut overlaps = Vec::new();
    let mut at = 0;
    let mut index = 0;
    while index < all.len() {
        // A group: hunks that overlap, transitively. Two hunks overlap when
        // they change a common token, or when one inserts strictly inside
        // a stretch the other changes; insertions at one place group with
        // each other only. Hunks that merely touch do not overlap.
        let group_start = all[index].start;
        let mut group_end = all[index].end;
        let mut next = index + 1;
        while let Some(hunk) = all.get(next) {
            let joins = if group_start == group_end {
                hunk.is_insertion() && hunk.start == group_start
            } else if hunk.is_insertion() {
                group_start < hunk.start && hunk.start < group_end
            } else {
                hunk.start < group_end
            };
            if !joins {
                break;
            }
            group_end = group_end.max(hunk.end);
            next += 1;
        }
        let group = &all[index..next];
        merged.extend_from_slice(&base_tokens[at..group_start]);
        at = group_end;
        index = next;
        if let [hunk] = group {
            merged.extend_from_slice(&hunk.replacement);
            continue;
        }

        let earlier_hunks: Vec<&Hunk<'_>> =
            group.iter().filter(|h| h.side == Side::Earlier).collect();
        let later_hunks: Vec<&Hunk<'_>> = group.iter().filter(|h| h.side == Side::Later).collect();
        let earlier_version = side_version(&base_tokens, group_start, group_end, &earlier_hunks);
        let later_version = side_version(&base_tokens, group_start, group_end, &later_hunks);
        if earlier_hunks.is_empty() {
            merged.extend(later_version);
        } else if later_hunks.is_empty() || earlier_version == later_version {
            merged.extend(earlier_version);
        } else if group_start == group_end {
            merged.extend(insertions_at_one_place(&earlier_version, &later_version));
        } else if group.iter().all(|hunk| hunk.replacement.is_empty()) {
            // Both only deleted: whatever either deleted goes.
        } else {
            overlaps.push(ConflictRegion {
                base: base_tokens[group_start..group_end].concat(),
                earlier: earlier_version.concat(),
                later: later_version.concat(),
            });
            merged.extend(later_version);
        }
    }
    merged.extend_from_slice(&base_tokens[at..]);
    TextMerge {
        text: merged.concat(),
        overlaps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_concatenate_to_the_text() {
        let text = "Follow up on Q1 campaign, ok?\n  Ünïcode wörds, cafe\u{301}, 会议纪要, 👨\u{200D}👩\u{200D}👧!";
        assert_eq!(tokens(text).concat(), text);
        assert_eq!(tokens("a, b"), ["a", ",", " ", "b"]);
        // A combining accent stays with its letter, a joined emoji is one.
        assert_eq!(tokens("cafe\u{301} ok"), ["cafe\u{301}", " ", "ok"]);
        assert_eq!(tokens("👍\u{1F3FD}!"), ["👍\u{1F3FD}", "!"]);
        assert_eq!(tokens("👨\u{200D}👩 x"), ["👨\u{200D}👩", " ", "x"]);
        // Without spaces to find words by, each ideograph is a token.
        assert_eq!(tokens("会议 ok"), ["会", "议", " ", "ok"]);
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

    #[test]
    fn an_overlap_reports_both_sides_and_keeps_the_later() {
        let merged = merge("one two three", "one 2 three!", "one II three");
        assert_eq!(
            merged.overlaps,
            [ConflictRegion {
                base: "two".into(),
                earlier: "2".into(),
                later: "II".into()
            }]
        );
        assert_eq!(merged.text, "one II three!");
        assert!(!merged.is_clean());
    }
}
