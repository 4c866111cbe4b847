//! `text_merge3`: the three-way text merge the conflict engine runs on
//! strings both sides edited, and the character edit lists of
//! `sync_diff::text`.

use sync_diff::text::{self, TextDelta};

/// Splits `data` at NUL bytes into `base`, `ours` and `theirs` (lossy
/// UTF-8) and checks: a side that did not change yields the other side;
/// the same edit on both sides applies once; swapping the sides gives the
/// same clean merge, or conflicts in the same places with the sides
/// swapped; a conflict lists at least one region; and every edit list
/// turns its old text into its new one, also after its JSON round trip.
pub fn text_merge3(data: &[u8]) {
    let parts = crate::split::split(data, 3);
    let text_of = |index: usize| {
        parts
            .get(index)
            .map(|part| String::from_utf8_lossy(part).into_owned())
            .unwrap_or_default()
    };
    let (base, ours, theirs) = (text_of(0), text_of(1), text_of(2));

    for side in [&ours, &theirs] {
        assert_eq!(
            text::merge3(&base, &base, side).as_deref(),
            Ok(side.as_str())
        );
        assert_eq!(
            text::merge3(&base, side, &base).as_deref(),
            Ok(side.as_str())
        );
        assert_eq!(
            text::merge3(&base, side, side).as_deref(),
            Ok(side.as_str())
        );
    }
    let merged = text::merge3(&base, &ours, &theirs);
    let swapped = text::merge3(&base, &theirs, &ours);
    match (&merged, &swapped) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "merge3 depends on which side is ours"),
        (Err(a), Err(b)) => {
            assert!(!a.regions.is_empty(), "a conflict without regions");
            assert_eq!(a.regions.len(), b.regions.len());
            for (x, y) in a.regions.iter().zip(&b.regions) {
                assert_eq!((&x.base, &x.ours, &x.theirs), (&y.base, &y.theirs, &y.ours));
            }
        }
        _ => panic!("merge3 is clean one way only: {merged:?} / {swapped:?}"),
    }

    for (old, new) in [(&base, &ours), (&ours, &theirs)] {
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
