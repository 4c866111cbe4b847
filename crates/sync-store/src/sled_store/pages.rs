//! The log's pages: consecutive changes kept together in one record under
//! the seq of the last, so a group commit writes one log record per
//! [`PAGE_ENTRIES_MAX`] changes instead of one per change, and a page of
//! similar changes compresses far better than each change alone.
//!
//! A page is the byte [`PAGE_TAG`], then its entries in seq order, each
//! its seq and the seq of its document's previous change (8 bytes each,
//! big-endian), the length of its change (4 bytes, big-endian) and the
//! change (its JSON as [`log_change`](crate::log_change) stores it).
//!
//! Keyed by its last seq, the last page's key is the head, and the page
//! holding a seq is the first at or after it. Compaction drops entries
//! from a page in place, under the same key: a page's entries need not be
//! consecutive, but every entry of a page is at or before the page's key
//! and after the previous page's key.

use sync_core::{Change, Seq};

use super::layout;
use crate::error::Error;
use crate::log_change::{self, LogChange};

/// The first byte of a page. Format 3's one-change log records start with
/// the high byte of their previous seq, which is zero.
const PAGE_TAG: u8 = b'P';
/// An entry's seq, previous seq and change length.
const ENTRY_HEADER: usize = 8 + 8 + 4;
/// A page closes once it holds this many entries...
pub(crate) const PAGE_ENTRIES_MAX: usize = 64;
/// ...or this many bytes, so reading one change never opens a large record.
pub(crate) const PAGE_BYTES_MAX: usize = 32 * 1024;

/// One entry of a page, its change still encoded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry<'a> {
    /// The change's seq.
    pub(crate) seq: Seq,
    /// The seq of its document's change before it (`Seq::ZERO` for none).
    pub(crate) previous: Seq,
    /// The change, as JSON.
    pub(crate) change: &'a [u8],
}

impl Entry<'_> {
    /// The change.
    pub(crate) fn decode(&self) -> Result<Change, Error> {
        self.decode_as()
    }

    /// The change, as a [`Change`] or a [`RawChange`](sync_core::RawChange).
    pub(crate) fn decode_as<C: LogChange>(&self) -> Result<C, Error> {
        log_change::decode(self.change).map_err(|error| corrupt(error.to_string()))
    }
}

/// Whether an opened log record is a page (not a record of format 3).
pub(crate) fn is_page(record: &[u8]) -> bool {
    record.first() == Some(&PAGE_TAG)
}

/// The entries of an opened page, in seq order.
pub(crate) fn entries(page: &[u8]) -> Result<Vec<Entry<'_>>, Error> {
    let mut rest = page
        .strip_prefix(&[PAGE_TAG])
        .ok_or_else(|| corrupt("not a log page".into()))?;
    let mut entries = Vec::new();
    while !rest.is_empty() {
        let (header, body) = rest
            .split_at_checked(ENTRY_HEADER)
            .ok_or_else(|| corrupt("short entry header".into()))?;
        let seq = layout::decode_seq(&header[..8]).unwrap_or_default();
        let previous = layout::decode_seq(&header[8..16]).unwrap_or_default();
        let length = u32::from_be_bytes([header[16], header[17], header[18], header[19]]);
        let (change, after) = body
            .split_at_checked(length as usize)
            .ok_or_else(|| corrupt("short entry".into()))?;
        entries.push(Entry {
            seq,
            previous,
            change,
        });
        rest = after;
    }
    Ok(entries)
}

/// The entry at `seq` of an opened page, if the page holds it.
pub(crate) fn find(page: &[u8], seq: Seq) -> Result<Option<Entry<'_>>, Error> {
    Ok(entries(page)?.into_iter().find(|entry| entry.seq == seq))
}

/// An opened page without the entries `doomed` picks (`None` when none is
/// left), and how many those were.
pub(crate) fn without(
    page: &[u8],
    doomed: impl Fn(Seq) -> bool,
) -> Result<(Option<Vec<u8>>, u64), Error> {
    let mut kept = Paginator::default();
    let mut dropped = 0;
    for entry in entries(page)? {
        if doomed(entry.seq) {
            dropped += 1;
        } else {
            // Fewer entries than a page held: no page closes on the way.
            let closed = kept.push_encoded(entry.seq, entry.previous, entry.change);
            debug_assert!(closed.is_none());
        }
    }
    Ok((kept.finish().map(|page| page.bytes), dropped))
}

/// A page, before it is sealed.
#[derive(Debug)]
pub(crate) struct Page {
    /// The seq of its last entry: its key.
    pub(crate) last: Seq,
    /// Its bytes.
    pub(crate) bytes: Vec<u8>,
}

/// Lays entries given in seq order out in pages.
#[derive(Debug, Default)]
pub(crate) struct Paginator {
    open: Option<(Page, usize)>,
}

impl Paginator {
    /// Adds a change; returns the page it closed to make room, if any.
    pub(crate) fn push(&mut self, seq: Seq, previous: Seq, change: &Change) -> Option<Page> {
        self.push_with(seq, previous, |out| log_change::encode_into(out, change))
    }

    /// Adds a change already encoded; returns the page it closed to make
    /// room, if any.
    pub(crate) fn push_encoded(&mut self, seq: Seq, previous: Seq, change: &[u8]) -> Option<Page> {
        self.push_with(seq, previous, |out| out.extend_from_slice(change))
    }

    /// The page still open, if any.
    pub(crate) fn finish(self) -> Option<Page> {
        self.open.map(|(page, _)| page)
    }

    fn push_with(
        &mut self,
        seq: Seq,
        previous: Seq,
        write_change: impl FnOnce(&mut Vec<u8>),
    ) -> Option<Page> {
        let full = self.open.as_ref().is_some_and(|(page, entries)| {
            *entries >= PAGE_ENTRIES_MAX || page.bytes.len() >= PAGE_BYTES_MAX
        });
        let closed = if full { self.open.take() } else { None };
        let (page, entries) = self.open.get_or_insert_with(|| {
            let mut bytes = Vec::with_capacity(4 * 1024);
            bytes.push(PAGE_TAG);
            (Page { last: seq, bytes }, 0)
        });
        page.last = seq;
        let out = &mut page.bytes;
        out.extend_from_slice(&seq.get().to_be_bytes());
        out.extend_from_slice(&previous.get().to_be_bytes());
        let length_at = out.len();
        out.extend_from_slice(&[0; 4]);
        write_change(out);
        let length = (out.len() - length_at - 4) as u32;
        out[length_at..length_at + 4].copy_from_slice(&length.to_be_bytes());
        *entries += 1;
        closed.map(|(page, _)| page)
    }
}

/// Every page of `entries`, given in seq order.
pub(crate) fn paginate<'a>(entries: impl IntoIterator<Item = (Seq, &'a Change)>) -> Vec<Page> {
    let mut paginator = Paginator::default();
    let mut pages = Vec::new();
    for (previous, change) in entries {
        pages.extend(paginator.push(change.seq, previous, change));
    }
    pages.extend(paginator.finish());
    pages
}

fn corrupt(message: String) -> Error {
    Error::Corrupt {
        tree: "log",
        message,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use sync_core::{ChangeOp, Hlc, OpId, Version};

    use super::*;

    fn change(seq: u64, padding: usize) -> Change {
        let mut data = serde_json::Map::new();
        data.insert("text".into(), "x".repeat(padding).into());
        Change {
            seq: Seq(seq),
            namespace: "ns".parse().expect("namespace"),
            collection: "todos".parse().expect("collection"),
            id: format!("doc-{}", seq % 7).parse().expect("id"),
            op: ChangeOp::Update,
            delta: data.clone(),
            version: Version(seq),
            timestamp: Hlc::default(),
            op_id: OpId::new(format!("op-{seq}")).expect("op id"),
            device_id: None,
            user: None,
            data: Some(data),
        }
    }

    proptest! {
        #[test]
        fn pages_hold_every_entry_in_order_within_their_bounds(
            paddings in proptest::collection::vec(0usize..4_000, 0..300),
        ) {
            let changes: Vec<Change> = paddings
                .iter()
                .enumerate()
                .map(|(i, padding)| change(i as u64 + 1, *padding))
                .collect();
            let previous = |change: &Change| Seq(change.seq.get() / 2);
            let pages = paginate(changes.iter().map(|c| (previous(c), c)));
            let mut read = Vec::new();
            for page in &pages {
                let entries = entries(&page.bytes).expect("page");
                prop_assert!(!entries.is_empty());
                prop_assert_eq!(entries[entries.len() - 1].seq, page.last);
                prop_assert!(entries.len() <= PAGE_ENTRIES_MAX);
                let last = &entries[entries.len() - 1];
                prop_assert!(page.bytes.len() - last.change.len() - ENTRY_HEADER <= PAGE_BYTES_MAX);
                for entry in entries {
                    let decoded = entry.decode().expect("change");
                    prop_assert_eq!(entry.seq, decoded.seq);
                    prop_assert_eq!(entry.previous, previous(&decoded));
                    read.push(decoded);
                }
            }
            prop_assert_eq!(read, changes);
        }
    }

    #[test]
    fn a_truncated_or_foreign_record_is_corrupt_not_a_panic() {
        let page = paginate([(Seq::ZERO, &change(1, 10))]).remove(0);
        assert!(is_page(&page.bytes));
        for end in 2..page.bytes.len() {
            assert!(matches!(
                entries(&page.bytes[..end]).and_then(|e| e[0].decode()),
                Err(Error::Corrupt { .. })
            ));
        }
        assert!(!is_page(b"\0\0\0\0\0\0\0\x01{}"));
        assert!(matches!(entries(b"\0\0"), Err(Error::Corrupt { .. })));
    }
}
