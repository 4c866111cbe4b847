//! Which keys the store may hold, answered from memory: a scalable Bloom
//! filter over the document and op keys. A key it has never been given is
//! absent for certain, so a new document or a new opId costs no sled read;
//! sled's reads wait for any batch being applied, which a group commit
//! holds for its whole write.
//!
//! Keys are only ever added (documents stay as tombstones, op results are
//! kept), and the committer adds a group's keys before storing them, so a
//! key a reader can find in the tree is already in the filter. The keys
//! stored before the store opened are added by a scan in the background;
//! until it is through, every key may be present.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{PoisonError, RwLock};

use foldhash::quality::RandomState;

/// Keys the first layer holds at its false-positive rate; each further
/// layer holds twice the one before.
const FIRST_LAYER_KEYS: usize = 64 * 1024;
/// Probes per key in the first layer, which then answers about one absent
/// key in 2^10 wrongly. Each further layer probes once more at the
/// optimal bits per key, halving its rate, so all layers together stay
/// under twice the first's however far the filter grows.
const FIRST_LAYER_HASHES: u32 = 10;

/// A set of byte strings that answers "maybe" or "certainly not".
#[derive(Debug)]
pub(crate) struct KeyFilter {
    hasher: RandomState,
    /// The newest layer takes new keys; a lookup asks every layer.
    layers: RwLock<Vec<Layer>>,
    /// Keys added to the newest layer.
    newest_keys: AtomicUsize,
    /// Whether it holds every key of the tree: until then it answers
    /// "maybe" to every lookup.
    complete: AtomicBool,
}

#[derive(Debug)]
struct Layer {
    words: Box<[AtomicU64]>,
    capacity: usize,
    hashes: u32,
}

impl Layer {
    /// The layer after `depth` others.
    fn new(depth: u32) -> Layer {
        let capacity = FIRST_LAYER_KEYS << depth;
        let hashes = FIRST_LAYER_HASHES + depth;
        // At k probes, k / ln 2 bits per key give a rate of about 2^-k.
        let bits = (capacity as f64 * f64::from(hashes) / std::f64::consts::LN_2).ceil();
        Layer {
            words: (0..(bits as usize).div_ceil(64))
                .map(|_| AtomicU64::new(0))
                .collect(),
            capacity,
            hashes,
        }
    }

    /// The bits of a key's hash, by double hashing.
    fn bits(&self, hash: u64) -> impl Iterator<Item = (usize, u64)> + '_ {
        let bits = self.words.len() as u64 * 64;
        let (first, step) = (hash & 0xffff_ffff, (hash >> 32) | 1);
        (0..u64::from(self.hashes)).map(move |i| {
            let bit = first.wrapping_add(i.wrapping_mul(step)) % bits;
            ((bit / 64) as usize, 1 << (bit % 64))
        })
    }

    fn insert(&self, hash: u64) {
        for (word, mask) in self.bits(hash) {
            self.words[word].fetch_or(mask, Ordering::Relaxed);
        }
    }

    fn may_contain(&self, hash: u64) -> bool {
        self.bits(hash)
            .all(|(word, mask)| self.words[word].load(Ordering::Relaxed) & mask != 0)
    }
}

impl Default for KeyFilter {
    fn default() -> Self {
        KeyFilter {
            hasher: RandomState::default(),
            layers: RwLock::new(vec![Layer::new(0)]),
            newest_keys: AtomicUsize::new(0),
            complete: AtomicBool::new(false),
        }
    }
}

impl KeyFilter {
    /// Adds `key`. Visible to every `may_contain` that starts after this
    /// returns.
    pub(crate) fn insert(&self, key: &[u8]) {
        let hash = self.hasher.hash_one(key);
        let layers = self.layers.read().unwrap_or_else(PoisonError::into_inner);
        let newest = layers.last().expect("a filter has a layer");
        if self.newest_keys.fetch_add(1, Ordering::Relaxed) < newest.capacity {
            newest.insert(hash);
            return;
        }
        let depth = layers.len() as u32;
        drop(layers);
        let mut layers = self.layers.write().unwrap_or_else(PoisonError::into_inner);
        // Another inserter may have grown the filter meanwhile.
        if layers.len() as u32 == depth {
            layers.push(Layer::new(depth));
            self.newest_keys.store(0, Ordering::Relaxed);
        }
        self.newest_keys.fetch_add(1, Ordering::Relaxed);
        layers.last().expect("a filter has a layer").insert(hash);
    }

    /// Marks it as holding every key of the tree: from now on, a key it
    /// was not given is absent.
    pub(crate) fn complete(&self) {
        self.complete.store(true, Ordering::Release);
    }

    /// Whether `key` may be in the tree: `false` is certain.
    pub(crate) fn may_contain(&self, key: &[u8]) -> bool {
        if !self.complete.load(Ordering::Acquire) {
            return true;
        }
        let hash = self.hasher.hash_one(key);
        let layers = self.layers.read().unwrap_or_else(PoisonError::into_inner);
        layers.iter().any(|layer| layer.may_contain(hash))
    }

    /// Whether it holds every key of the tree yet.
    #[cfg(test)]
    pub(crate) fn is_complete(&self) -> bool {
        self.complete.load(Ordering::Acquire)
    }

    /// The memory its layers take, in bytes.
    #[cfg(test)]
    fn bytes(&self) -> usize {
        let layers = self.layers.read().unwrap_or_else(PoisonError::into_inner);
        layers.iter().map(|layer| layer.words.len() * 8).sum()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn every_added_key_is_found(keys in proptest::collection::vec(any::<Vec<u8>>(), 0..500)) {
            let filter = KeyFilter::default();
            filter.complete();
            for key in &keys {
                filter.insert(key);
            }
            for key in &keys {
                prop_assert!(filter.may_contain(key));
            }
        }
    }

    #[test]
    fn it_grows_layer_by_layer_without_its_false_positives_growing_with_it() {
        let filter = KeyFilter::default();
        assert!(
            filter.may_contain(b"anything"),
            "incomplete: every key may be there"
        );
        filter.complete();
        // Four full layers: 1 + 2 + 4 + 8 times the first's keys.
        let added = 15 * FIRST_LAYER_KEYS;
        for n in 0..added {
            filter.insert(format!("added-{n}").as_bytes());
        }
        assert_eq!(filter.layers.read().expect("layers").len(), 4);
        assert!((0..added).all(|n| filter.may_contain(format!("added-{n}").as_bytes())));
        let probes = 200_000;
        let false_positives = (0..probes)
            .filter(|n| filter.may_contain(format!("absent-{n}").as_bytes()))
            .count();
        // 2^-10 + 2^-11 + 2^-12 + 2^-13 of the probes, about 370, with room
        // for chance; equal layers at the first's rate would give 780.
        assert!(false_positives < 560, "{false_positives} false positives");
        assert!(filter.bytes() < added * 3, "{} bytes", filter.bytes());
    }
}
