//! Which open spans hold a record of this layer, known without looking the span up in the
//! registry: what lets `on_record` and `on_close` of every other span (tools, retrieval, HTTP
//! clients, …) return at once.
//!
//! A fixed table of span ids in buckets of one cache line each. A span gets a record only after
//! its id is in the table, or, when its bucket is full, after it is counted in `overflow`; its
//! id leaves the table (or the count) when it closes, before the registry can hand the id to
//! another span. So an id in the table is always a span with a record, and an id that is not is
//! a span without one while `overflow` is zero; with spans in overflow, a miss takes the slower
//! path (the registry lookup) and is never wrong. Kept apart so a `loom` model
//! (`RUSTFLAGS="--cfg cost_loom" cargo test -p cost-layer --lib loom_`, run by `.ci/run`) checks
//! every interleaving of racing claims.

#[cfg(cost_loom)]
use loom::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
#[cfg(not(cost_loom))]
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Ids per bucket: eight `u64`s, one cache line.
const BUCKET_LEN: usize = 8;

/// One cache line of span ids (0: free).
#[repr(align(64))]
struct Bucket([AtomicU64; BUCKET_LEN]);

/// The open spans that hold a record of one layer (see the [module docs](self)).
pub(crate) struct LiveRecords {
    buckets: Box<[Bucket]>,
    /// `log2` of the number of buckets.
    bits: u32,
    /// Open spans with a record whose bucket was full when they opened.
    overflow: AtomicUsize,
}

/// Where a span with a record is kept: how its close finds out it was one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kept {
    /// Its id is in the table.
    InTable,
    /// Its bucket was full: it is counted in the overflow.
    Overflow,
}

impl LiveRecords {
    /// `log2` of the default number of buckets: 512 (4 096 ids, 32 KiB). A bucket fills only
    /// with eight open spans with records hashed to it, rare below some hundreds of them.
    pub(crate) const DEFAULT_BITS: u32 = 9;

    /// The default table.
    #[cfg(all(test, not(cost_loom)))]
    pub(crate) fn new() -> Self {
        Self::with_bits(Self::DEFAULT_BITS)
    }

    /// `2^bits` buckets.
    pub(crate) fn with_bits(bits: u32) -> Self {
        LiveRecords {
            buckets: (0..1_usize << bits)
                .map(|_| Bucket(std::array::from_fn(|_| AtomicU64::new(0))))
                .collect(),
            bits,
            overflow: AtomicUsize::new(0),
        }
    }

    #[inline]
    fn bucket(&self, id: u64) -> &Bucket {
        // The registry's ids are its slab's keys (plus one): the slot's address in the low 38
        // bits, the thread's shard in the next 13, and the slot's generation, which changes
        // each time the slot is reused, in the top 13. Hashing without the generation sends
        // the spans a thread opens and closes in turn, which reuse the same few slots, to the
        // same few buckets, warm in the cache; two open spans never share a slot and shard, so
        // they spread as before. (Under another layout, or another subscriber's ids, only the
        // spread would change: ids are always compared whole.)
        let slot_and_shard = id & ((1 << 51) - 1);
        // Fibonacci hashing: the product's top bits depend on every bit of the key. (Shifted
        // in two steps so that one bucket, `bits` 0, is index 0.)
        let index = (slot_and_shard.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (63 - self.bits)) >> 1;
        &self.buckets[index as usize]
    }

    /// Keeps `id` (not 0) as a span with a record; call before the record is stored.
    pub(crate) fn insert(&self, id: u64) -> Kept {
        for slot in &self.bucket(id).0 {
            if slot.load(Ordering::Relaxed) == 0
                && slot
                    .compare_exchange(0, id, Ordering::Release, Ordering::Relaxed)
                    .is_ok()
            {
                return Kept::InTable;
            }
        }
        self.overflow.fetch_add(1, Ordering::AcqRel);
        Kept::Overflow
    }

    /// `false` only when the span `id` surely holds no record (then it need not be looked up).
    #[inline]
    pub(crate) fn may_hold(&self, id: u64) -> bool {
        self.holds(id) || self.overflow.load(Ordering::Acquire) != 0
    }

    /// `true` when `id` is in the table.
    #[inline]
    fn holds(&self, id: u64) -> bool {
        self.bucket(id)
            .0
            .iter()
            .any(|slot| slot.load(Ordering::Acquire) == id)
    }

    /// At the close of span `id`: takes it out of the table, and says whether the span holds a
    /// record: surely, surely not, or maybe (spans are in overflow: the caller looks it up).
    #[inline]
    pub(crate) fn remove(&self, id: u64) -> Removed {
        for slot in &self.bucket(id).0 {
            if slot.load(Ordering::Acquire) == id {
                // Only the span's close writes a slot holding its id.
                slot.store(0, Ordering::Release);
                return Removed::WasInTable;
            }
        }
        if self.overflow.load(Ordering::Acquire) != 0 {
            Removed::MaybeOverflow
        } else {
            Removed::NoRecord
        }
    }

    /// A span counted in the overflow closed (call once per such span, when its record is
    /// found at its close).
    pub(crate) fn overflow_closed(&self) {
        let _ = self
            .overflow
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }
}

/// What [`LiveRecords::remove`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Removed {
    /// The span held a record, and its id left the table.
    WasInTable,
    /// The span is not in the table, and spans are in overflow: it may be one of them.
    MaybeOverflow,
    /// The span holds no record.
    NoRecord,
}

#[cfg(all(test, not(cost_loom)))]
mod tests {
    use super::{Kept, LiveRecords, Removed};

    #[test]
    fn ids_in_the_table_are_found_until_removed() {
        let live = LiveRecords::new();
        assert_eq!(live.insert(7), Kept::InTable);
        assert_eq!(live.insert(1 << 40 | 7), Kept::InTable);
        assert!(live.may_hold(7));
        assert!(live.may_hold(1 << 40 | 7));
        assert!(!live.may_hold(8));
        assert_eq!(live.remove(8), Removed::NoRecord);
        assert_eq!(live.remove(7), Removed::WasInTable);
        assert!(!live.may_hold(7));
        assert_eq!(live.remove(7), Removed::NoRecord);
        assert!(live.may_hold(1 << 40 | 7));
    }

    #[test]
    fn a_reused_slot_keeps_its_bucket_and_open_spans_spread() {
        use tracing_subscriber::layer::SubscriberExt;

        let live = LiveRecords::new();
        // Under a layer: a bare registry never frees a closed span's slot.
        let subscriber =
            tracing_subscriber::registry().with(tracing::level_filters::LevelFilter::TRACE);
        let (first, reused) = tracing::subscriber::with_default(subscriber, || {
            let first = tracing::info_span!("a").id().map(|id| id.into_u64());
            // The first span is closed: the next one takes its slot, in a new generation.
            let reused = tracing::info_span!("b").id().map(|id| id.into_u64());
            (first, reused)
        });
        let (Some(first), Some(reused)) = (first, reused) else {
            panic!("the registry gave no ids")
        };
        assert_ne!(first, reused, "a new generation");
        assert!(std::ptr::eq(live.bucket(first), live.bucket(reused)));

        // 64 spans open at once on one thread: no bucket gets more than two of them.
        let registry = tracing_subscriber::registry();
        let ids: Vec<u64> = tracing::subscriber::with_default(registry, || {
            let spans: Vec<_> = (0..64).map(|i| tracing::info_span!("s", i)).collect();
            spans
                .iter()
                .filter_map(|s| s.id())
                .map(|id| id.into_u64())
                .collect()
        });
        assert_eq!(ids.len(), 64);
        let mut per_bucket = std::collections::HashMap::new();
        for &id in &ids {
            *per_bucket.entry(live.bucket(id) as *const _).or_insert(0) += 1;
        }
        let fullest = per_bucket.values().copied().max().unwrap_or(0);
        assert!(fullest <= 2, "{fullest} of 64 open spans in one bucket");
    }

    #[test]
    fn a_full_bucket_overflows_and_every_miss_is_then_a_maybe() {
        // One bucket: the ninth id overflows.
        let live = LiveRecords::with_bits(1);
        let ids: Vec<u64> = (1..=100).collect();
        let same_bucket: Vec<u64> = ids
            .iter()
            .copied()
            .filter(|&id| std::ptr::eq(live.bucket(id), live.bucket(1)))
            .take(9)
            .collect();
        assert_eq!(same_bucket.len(), 9);
        for &id in &same_bucket[..8] {
            assert_eq!(live.insert(id), Kept::InTable);
        }
        assert_eq!(live.insert(same_bucket[8]), Kept::Overflow);
        let other = (101..).find(|&id| !same_bucket.contains(&id)).unwrap_or(0);
        assert!(
            live.may_hold(other),
            "with spans in overflow a miss is a maybe"
        );
        assert_eq!(live.remove(same_bucket[8]), Removed::MaybeOverflow);
        live.overflow_closed();
        assert_eq!(live.remove(same_bucket[0]), Removed::WasInTable);
        // The overflow is back to zero: misses are sure again, and the freed slot is reused.
        assert_eq!(live.remove(same_bucket[8]), Removed::NoRecord);
        assert_eq!(live.insert(same_bucket[8]), Kept::InTable);
        // A second count of a close never goes below zero.
        live.overflow_closed();
        assert_eq!(live.remove(10_000), Removed::NoRecord);
    }
}

#[cfg(all(test, cost_loom))]
mod loom_models {
    use super::{Kept, LiveRecords, Removed};
    use loom::sync::Arc;

    /// Two threads open spans into one bucket with one free slot while a third span is closing:
    /// exactly one claims the slot, the other overflows, and each is found afterwards.
    #[test]
    fn loom_racing_claims_take_each_slot_once() {
        loom::model(|| {
            let live = Arc::new(LiveRecords::with_bits(0));
            // Seven of the eight slots taken by open spans.
            for id in 100..107 {
                assert_eq!(live.insert(id), Kept::InTable);
            }
            let threads: Vec<_> = [1_u64, 2]
                .into_iter()
                .map(|id| {
                    let live = Arc::clone(&live);
                    loom::thread::spawn(move || (id, live.insert(id)))
                })
                .collect();
            let kept: Vec<(u64, Kept)> = threads
                .into_iter()
                .map(|t| t.join().unwrap_or((0, Kept::Overflow)))
                .collect();
            let in_table = kept.iter().filter(|(_, k)| *k == Kept::InTable).count();
            assert_eq!(in_table, 1, "{kept:?}");
            for (id, k) in kept {
                assert!(live.may_hold(id));
                match k {
                    Kept::InTable => assert_eq!(live.remove(id), Removed::WasInTable),
                    Kept::Overflow => {
                        assert_eq!(live.remove(id), Removed::MaybeOverflow);
                        live.overflow_closed();
                    }
                }
            }
            assert_eq!(live.remove(1), Removed::NoRecord);
        });
    }

    /// A span opened on one thread and closed on another (its handle sent over): the close
    /// finds it, and a concurrent open of another span in the same bucket never hides it.
    #[test]
    fn loom_a_span_closed_on_another_thread_is_found() {
        loom::model(|| {
            let live = Arc::new(LiveRecords::with_bits(0));
            assert_eq!(live.insert(1), Kept::InTable);
            let closer = {
                let live = Arc::clone(&live);
                loom::thread::spawn(move || live.remove(1))
            };
            let opener = {
                let live = Arc::clone(&live);
                loom::thread::spawn(move || live.insert(2))
            };
            let removed = closer.join().unwrap_or(Removed::NoRecord);
            let kept = opener.join().unwrap_or(Kept::Overflow);
            assert_eq!(removed, Removed::WasInTable);
            assert_eq!(kept, Kept::InTable);
            assert!(live.may_hold(2));
            assert!(!live.may_hold(1));
        });
    }
}
