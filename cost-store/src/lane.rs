//! Closed calls on their way to the writer thread, queued by one producing thread.
//!
//! A lane keeps each call's numbers in a fixed-size slot, copied as they are: money as its exact
//! units, and the call's times as the layer's clock readings ([`CallTimes`]), dated and turned
//! into the record's milliseconds and microseconds only on the writer's thread (done on the
//! instrumented thread, that took a fifth of the lane's instructions, and the layer's own dating
//! as many again). Its texts go as bytes beside the slots, each only when it is not the same
//! string (the same shared allocation) as the one written last at its place in the same
//! buffer: calls in a row share their model, session, price table and provider, so a typical
//! call adds no text bytes, and the writer reads each repeated text back as one shared string
//! instead of allocating it again. A slot is copied in a few vector moves, not encoded: an
//! encoding that left absent parts out took ~100 bytes instead of the slot's 240, but ~45% more
//! of the instrumented thread's instructions (590 per call against 407, `scripts/instructions`;
//! the slot, 256 bytes then, took 318; counting image prompt tokens, file search calls, the
//! image generation tool's images and code interpreter sessions apart made it 104 bytes larger). Queuing allocates nothing once the buffers have grown
//! (the writer hands them back emptied), and the writer never touches the reference counts of
//! the strings the instrumented program shares.
use std::borrow::Cow;
use std::sync::Arc;

use cost_core::{CostBreakdown, Money, SearchContextSize, ServiceTier, Usage};
use cost_layer::{CallTimes, ClosedCall};

use crate::record::{CallRecord, CallStatus, micros, status_of, unix_ms};

/// The queued calls of one producing thread.
#[derive(Default)]
pub(crate) struct Lane {
    /// What the writer takes (swapping it for an empty one).
    pub(crate) queued: Queued,
    /// The texts written last in the current buffer (forgotten when the writer takes it), kept
    /// alive so that a text at the same address is the same string.
    previous: [Option<Arc<str>>; TEXTS],
}

/// Calls in the order they were queued: their slots, and the texts they did not share.
#[derive(Default)]
pub(crate) struct Queued {
    slots: Vec<Slot>,
    /// Each text a slot's `present & !same` names, in order: its length (two bytes, or a
    /// marker and eight for the rare long text), then its bytes.
    texts: Vec<u8>,
}

/// A call's numbers, as the layer gave them (its times too: they are dated and converted to
/// the record's units on the writer's thread).
#[derive(Clone, Copy)]
struct Slot {
    times: CallTimes,
    span_id: u64,
    parent_span_id: Option<u64>,
    usage: Usage,
    cost: CostBreakdown,
    cache_hit_savings: Money,
    status: CallStatus,
    service_tier: ServiceTier,
    data_residency: bool,
    search_context_size: Option<SearchContextSize>,
    reported_cost: Option<Money>,
    /// Bit `i`: the call has text `i`.
    present: u16,
    /// Bit `i`: text `i` is the one written last at its place (it is not in `texts` again).
    same: u16,
    name: &'static str,
}

/// The texts of a call, in the order a lane keeps them: request model, response model, model,
/// price table, provider, operation; session, agent, user, org, feature.
const TEXTS: usize = 11;

impl Lane {
    /// Calls queued.
    pub(crate) fn len(&self) -> usize {
        self.queued.slots.len()
    }

    /// Queues a closed call: its slot, then only the texts that differ from those written
    /// last at their places.
    pub(crate) fn push(&mut self, call: &ClosedCall<'_>) {
        // The first call of a buffer refers to no previous one, and no later call of it may
        // refer to a text last written in a buffer the writer has taken: forget them.
        if self.queued.slots.is_empty() {
            self.previous = Default::default();
        }
        let totals = call.totals;
        let a = call.attribution;
        let texts: [Option<&Arc<str>>; TEXTS] = [
            call.request_model,
            call.response_model,
            Some(call.model),
            totals.price_table.as_ref(),
            call.provider,
            call.operation,
            a.session.as_ref(),
            a.agent.as_ref(),
            a.user.as_ref(),
            a.org.as_ref(),
            a.feature.as_ref(),
        ];
        let mut present = 0_u16;
        let mut same = 0_u16;
        for (i, (text, previous)) in texts.iter().zip(&self.previous).enumerate() {
            if let Some(text) = text {
                present |= 1 << i;
                if previous.as_ref().is_some_and(|p| Arc::ptr_eq(p, text)) {
                    same |= 1 << i;
                }
            }
        }
        self.queued.slots.push(Slot {
            times: call.times,
            span_id: call.span_id,
            parent_span_id: call.parent_span_id,
            usage: totals.usage,
            cost: totals.cost,
            cache_hit_savings: totals.cache_hit_savings,
            status: status_of(totals),
            service_tier: call.service_tier,
            data_residency: call.data_residency,
            search_context_size: call.search_context_size,
            reported_cost: call.reported_cost,
            present,
            same,
            name: call.name,
        });
        // Usually none: calls in a row share their texts.
        let out = &mut self.queued.texts;
        let mut new = present & !same;
        while new != 0 {
            let i = new.trailing_zeros() as usize;
            new &= new - 1;
            let (Some(Some(text)), Some(previous)) = (texts.get(i), self.previous.get_mut(i))
            else {
                continue;
            };
            match u16::try_from(text.len()) {
                Ok(len) if len != u16::MAX => out.extend_from_slice(&len.to_le_bytes()),
                _ => {
                    out.extend_from_slice(&u16::MAX.to_le_bytes());
                    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
                }
            }
            out.extend_from_slice(text.as_bytes());
            *previous = Some(Arc::clone(text));
        }
    }
}

impl Queued {
    /// The records of the queued calls, in order, built on the writer's thread; left empty,
    /// its buffers kept for reuse. Returns how many calls could not be read back (it reads
    /// only what [`Lane::push`] wrote, so that would be a bug): from the first such call on,
    /// the buffer's calls are left out rather than misread, and the writer counts them.
    pub(crate) fn drain_into(&mut self, records: &mut Vec<CallRecord>) -> u64 {
        records.reserve(self.slots.len());
        let mut reader = TextReader {
            bytes: &self.texts,
            at: 0,
            previous: Default::default(),
        };
        let queued = self.slots.len();
        let mut read = 0;
        for slot in &self.slots {
            match reader.record(slot) {
                Some(record) => {
                    records.push(record);
                    read += 1;
                }
                None => break,
            }
        }
        self.slots.clear();
        self.texts.clear();
        (queued - read) as u64
    }
}

/// Reads calls' texts back from a lane's text bytes.
struct TextReader<'a> {
    bytes: &'a [u8],
    at: usize,
    /// The texts read last at each place (a repeated text is shared, not read again).
    previous: [Option<Arc<str>>; TEXTS],
}

impl TextReader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let end = self.at.checked_add(N)?;
        let bytes = self.bytes.get(self.at..end)?.try_into().ok()?;
        self.at = end;
        Some(bytes)
    }

    fn text(&mut self) -> Option<Arc<str>> {
        let len = match self.take().map(u16::from_le_bytes)? {
            u16::MAX => usize::try_from(u64::from_le_bytes(self.take()?)).ok()?,
            len => usize::from(len),
        };
        let end = self.at.checked_add(len)?;
        let text = std::str::from_utf8(self.bytes.get(self.at..end)?).ok()?;
        self.at = end;
        Some(Arc::from(text))
    }

    /// The record of `slot`, its texts read or shared.
    fn record(&mut self, slot: &Slot) -> Option<CallRecord> {
        let mut texts: [Option<Arc<str>>; TEXTS] = Default::default();
        for (i, text) in texts.iter_mut().enumerate() {
            if slot.present & (1 << i) == 0 {
                continue;
            }
            let read = if slot.same & (1 << i) != 0 {
                Arc::clone(self.previous[i].as_ref()?)
            } else {
                let read = self.text()?;
                self.previous[i] = Some(Arc::clone(&read));
                read
            };
            *text = Some(read);
        }
        let [
            request_model,
            response_model,
            model,
            price_table,
            provider,
            operation,
            session,
            agent,
            user,
            org,
            feature,
        ] = texts;
        Some(CallRecord {
            id: None,
            at_ms: unix_ms(slot.times.at()),
            duration_us: micros(slot.times.duration()),
            name: Cow::Borrowed(slot.name),
            span_id: slot.span_id,
            parent_span_id: slot.parent_span_id,
            request_model,
            response_model,
            model: model.unwrap_or_else(|| Arc::from("unknown")),
            status: slot.status,
            price_table,
            provider,
            operation,
            service_tier: slot.service_tier,
            data_residency: slot.data_residency,
            search_context_size: slot.search_context_size,
            reported_cost: slot.reported_cost,
            session,
            agent,
            user,
            org,
            feature,
            usage: slot.usage,
            cost: slot.cost,
            cache_hit_savings: slot.cache_hit_savings,
            previous_cost: None,
            repriced_with: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use cost_layer::{Attribution, ClosedCall, Totals};
    use proptest::prelude::*;

    use super::*;

    /// How many service tiers there are.
    const TIERS: usize = ServiceTier::ALL.len();

    /// Everything a closed call borrows, owned.
    #[derive(Clone, Debug)]
    struct Owned {
        at_ms: u64,
        duration_us: u64,
        span_id: u64,
        parent_span_id: Option<u64>,
        /// The service tier's index in `ServiceTier::ALL`, plus its length on a data-residency
        /// endpoint.
        tier: u8,
        /// 0 priced, 1 unpriced, 2 rejected, 3 cache hit, 4 cache hit of an unpriced model, 5
        /// charged its provider's reported cost.
        status: u8,
        usage: [u64; 16],
        cost: [i128; 16],
        savings: i128,
        /// Request model, response model, model, price table, provider, operation; session,
        /// agent, user, org, feature.
        texts: [Option<Arc<str>>; 11],
    }

    impl Owned {
        fn with_call<R>(&self, f: impl FnOnce(&ClosedCall<'_>) -> R) -> R {
            let [
                u0,
                u1,
                u2,
                u3,
                u4,
                u5,
                u6,
                u7,
                u8,
                u9,
                u10,
                u11,
                u12,
                u13,
                u14,
                u15,
            ] = self.usage;
            let [
                c0,
                c1,
                c2,
                c3,
                c4,
                c5,
                c6,
                c7,
                c8,
                c9,
                c10,
                c11,
                c12,
                c13,
                c14,
                c15,
            ] = self.cost.map(Money::from_units);
            let t = &self.texts;
            let totals = Totals {
                usage: Usage {
                    input: u0,
                    cache_read: u1,
                    cache_write: u2,
                    cache_write_1h: u3,
                    output: u4,
                    reasoning: u5,
                    audio_input: u6,
                    audio_output: u7,
                    cache_read_audio: u8,
                    image_output: u9,
                    web_search_requests: u10,
                    image_input: u11,
                    cache_read_image: u12,
                    file_search_calls: u13,
                    image_generation_calls: u14,
                    code_interpreter_sessions: u15,
                },
                cost: CostBreakdown {
                    uncached_input: c0,
                    cache_read: c1,
                    cache_write: c2,
                    cache_write_1h: c3,
                    output: c4,
                    reasoning: c5,
                    cache_savings: c6,
                    audio_input: c7,
                    audio_output: c8,
                    image_output: c9,
                    web_search: c10,
                    image_input: c11,
                    file_search: c12,
                    image_generation: c13,
                    code_interpreter: c14,
                    provider_reported: c15,
                },
                llm_calls: u64::from(self.status < 2 || self.status == 5),
                unpriced_calls: u64::from(self.status == 1),
                rejected_calls: u64::from(self.status == 2),
                cache_hits: u64::from(self.status == 3 || self.status == 4),
                unpriced_cache_hits: u64::from(self.status == 4),
                provider_reported_calls: u64::from(self.status == 5),
                cache_hit_savings: Money::from_units(self.savings),
                price_table: t[3].clone(),
                ..Totals::default()
            };
            let attribution = Attribution {
                session: t[6].clone(),
                agent: t[7].clone(),
                user: t[8].clone(),
                org: t[9].clone(),
                feature: t[10].clone(),
            };
            let unknown: Arc<str> = Arc::from("unknown");
            let call = ClosedCall {
                times: CallTimes::new(
                    SystemTime::UNIX_EPOCH + Duration::from_millis(self.at_ms),
                    Duration::from_micros(self.duration_us),
                ),
                name: "chat",
                span_id: self.span_id,
                parent_span_id: self.parent_span_id,
                request_model: t[0].as_ref(),
                response_model: t[1].as_ref(),
                model: t[2].as_ref().unwrap_or(&unknown),
                provider: t[4].as_ref(),
                operation: t[5].as_ref(),
                service_tier: ServiceTier::ALL[usize::from(self.tier) % TIERS],
                data_residency: usize::from(self.tier) >= TIERS,
                // None, or one of the sizes, by the span id.
                search_context_size: SearchContextSize::ALL
                    .get((self.span_id % 4) as usize)
                    .copied(),
                // None, or an amount, by the savings.
                reported_cost: (self.savings % 3 != 0).then(|| Money::from_units(self.savings)),
                attribution: &attribution,
                totals: &totals,
            };
            f(&call)
        }
    }

    /// Queues the calls in one lane and checks each reads back as the record made directly.
    fn round_trip(calls: &[Owned]) {
        round_trip_taken_after(calls, &[]);
    }

    /// The same, the writer taking the lane's buffer after the calls `taken_after` says.
    fn round_trip_taken_after(calls: &[Owned], taken_after: &[bool]) {
        let mut lane = Lane::default();
        let mut records = Vec::new();
        for (i, call) in calls.iter().enumerate() {
            call.with_call(|call| lane.push(call));
            if taken_after.get(i).copied().unwrap_or(false) {
                lane.queued.drain_into(&mut records);
            }
        }
        assert_eq!(records.len() + lane.len(), calls.len());
        lane.queued.drain_into(&mut records);
        assert_eq!(lane.len(), 0);
        assert_eq!(records.len(), calls.len());
        for (record, call) in records.iter().zip(calls) {
            call.with_call(|call| assert_eq!(*record, CallRecord::from_closed(call)));
        }
    }

    /// A priced call with most of its texts.
    fn sample_call() -> Owned {
        let shared = |s: &str| Some(Arc::<str>::from(s));
        Owned {
            at_ms: 1_764_072_000_123,
            duration_us: 1_500,
            span_id: 42,
            parent_span_id: Some(7),
            tier: 6,
            status: 0,
            usage: [1_000, 0, 0, 0, 100, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            cost: [0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            savings: 0,
            texts: [
                shared("gpt-4o"),
                None,
                shared("gpt-4o"),
                shared("2025.11.24"),
                shared("openai"),
                None,
                shared("s-1"),
                None,
                shared("u:ab"),
                // An empty text is not an absent one.
                shared(""),
                shared("search"),
            ],
        }
    }

    #[test]
    fn a_call_with_every_part_reads_back() {
        let mut call = sample_call();
        call.usage = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
        call.cost = [
            -1,
            2,
            -3,
            4,
            -5,
            6,
            i128::MAX,
            7,
            -8,
            9,
            -10,
            11,
            -12,
            13,
            -14,
            15,
        ];
        call.savings = i128::MIN;
        call.parent_span_id = Some(u64::MAX);
        call.texts = Default::default();
        call.texts[2] = Some(Arc::from("gpt-4o"));
        let mut lane = Lane::default();
        call.with_call(|closed| lane.push(closed));
        // The model's length and bytes, once.
        assert_eq!(lane.queued.texts.len(), 2 + "gpt-4o".len());
        round_trip(&[call.clone(), call]);
    }

    #[test]
    fn texts_at_each_side_of_the_two_byte_lengths_limit_read_back() {
        // 65 535 is the marker of a long text's eight-byte length: a text of exactly that many
        // bytes is written as a long one.
        for len in [65_534, 65_535, 65_536] {
            let mut call = sample_call();
            call.texts[6] = Some(Arc::from("s".repeat(len)));
            // Read back as the same record, session id whole, the call before it too.
            round_trip(&[sample_call(), call]);
        }
    }

    #[test]
    fn a_text_last_written_in_a_buffer_the_writer_took_is_written_again() {
        // A priced call (with a price table), the writer takes the buffer, then an unpriced call
        // (no price table) and a priced one with the same table string: the table is not in the
        // new buffer yet, so the third call must carry it, not refer to it.
        let priced = sample_call();
        let mut unpriced = sample_call();
        unpriced.texts[3] = None;
        unpriced.status = 1;
        let mut lane = Lane::default();
        let mut records = Vec::new();
        priced.with_call(|call| lane.push(call));
        lane.queued.drain_into(&mut records);
        unpriced.with_call(|call| lane.push(call));
        priced.with_call(|call| lane.push(call));
        lane.queued.drain_into(&mut records);
        assert_eq!(records.len(), 3);
        for (record, call) in records.iter().zip([&priced, &unpriced, &priced]) {
            call.with_call(|call| assert_eq!(*record, CallRecord::from_closed(call)));
        }
    }

    #[test]
    fn calls_that_cannot_be_read_back_are_counted() {
        let mut lane = Lane::default();
        for session in ["s-1", "s-2", "s-3"] {
            let mut call = sample_call();
            call.texts[6] = Some(Arc::from(session));
            call.with_call(|closed| lane.push(closed));
        }
        // The third call's session lost its last byte: two read back, one counted.
        lane.queued.texts.pop();
        let mut records = Vec::new();
        assert_eq!(lane.queued.drain_into(&mut records), 1);
        assert_eq!(records.len(), 2);
        assert_eq!((lane.len(), lane.queued.texts.len()), (0, 0));
    }

    #[test]
    fn a_queued_call_becomes_the_same_record() {
        let call = sample_call();
        // Twice in one lane: the second call follows the first in the buffer.
        round_trip(&[call.clone(), call]);
    }

    #[test]
    fn a_text_shared_with_the_previous_call_is_not_copied_again() {
        let session: Arc<str> = Arc::from("a-long-session-identifier-0123456789");
        // A call whose only text is its session.
        let call = |session: &Arc<str>| {
            let mut call = sample_call();
            call.texts = Default::default();
            call.texts[6] = Some(Arc::clone(session));
            call
        };
        let other: Arc<str> = Arc::from(&*session);
        let mut lane = Lane::default();
        let sizes: Vec<usize> = [
            call(&session),
            call(&session),
            // Equal text, another string: copied.
            call(&other),
        ]
        .iter()
        .map(|owned| {
            let before = lane.queued.texts.len();
            owned.with_call(|closed| lane.push(closed));
            lane.queued.texts.len() - before
        })
        .collect();
        assert_eq!(sizes[0] - sizes[1], 2 + session.len(), "{sizes:?}");
        assert_eq!(sizes[2], sizes[0], "{sizes:?}");
        // A new buffer (the writer took the last one) refers to no previous call.
        let mut records = Vec::new();
        lane.queued.drain_into(&mut records);
        let before = lane.queued.texts.len();
        call(&other).with_call(|closed| lane.push(closed));
        assert_eq!(lane.queued.texts.len() - before, sizes[0]);
        lane.queued.drain_into(&mut records);
        assert!(
            records
                .iter()
                .all(|r| r.session.as_deref() == Some(&*session))
        );
    }

    fn owned() -> impl Strategy<Value = Owned> {
        // Mostly short texts; now and then one around the two-byte length's limit.
        let text = prop::option::of(
            prop_oneof![
                20 => ".{0,40}",
                // Two-byte characters, and one ASCII byte for odd lengths (65 535 among them).
                1 => (65_530_usize..65_540).prop_map(|n| "a".repeat(n % 2) + &"é".repeat(n / 2)),
            ]
            .prop_map(|s: String| Arc::<str>::from(s)),
        );
        let big = prop_oneof![Just(0_i128), -1_000_i128..1_000, any::<i128>()];
        let count = prop_oneof![Just(0_u64), 0_u64..2_000_000, any::<u64>()];
        (
            (
                0_u64..1 << 45,
                any::<u64>(),
                1_u64..,
                prop::option::of(1_u64..),
            ),
            (0_u8..(2 * TIERS as u8), 0_u8..6),
            prop::array::uniform16(count),
            prop::array::uniform16(big.clone()),
            big,
            prop::array::uniform11(text),
        )
            .prop_map(
                |(
                    (at_ms, duration_us, span_id, parent_span_id),
                    (tier, status),
                    usage,
                    cost,
                    savings,
                    texts,
                )| {
                    Owned {
                        at_ms,
                        duration_us: duration_us / 1_000,
                        span_id,
                        parent_span_id,
                        tier,
                        status,
                        usage,
                        cost,
                        savings,
                        texts,
                    }
                },
            )
    }

    /// Calls whose texts are now and then the same strings as the previous call's or the one
    /// before it (shared, as calls in a row share their model and session; two back, a text
    /// the call between did not have).
    fn calls_in_a_row() -> impl Strategy<Value = Vec<Owned>> {
        prop::collection::vec((owned(), prop::array::uniform11(0_usize..3)), 1..8).prop_map(
            |calls| {
                let mut out: Vec<Owned> = Vec::with_capacity(calls.len());
                for (mut call, back) in calls {
                    for (i, back) in back.into_iter().enumerate() {
                        if back > 0
                            && let Some(earlier) = out.len().checked_sub(back).map(|j| &out[j])
                        {
                            call.texts[i].clone_from(&earlier.texts[i]);
                        }
                    }
                    out.push(call);
                }
                out
            },
        )
    }

    proptest! {
        /// Any calls, any values, texts shared with the previous call or not: every one reads
        /// back exactly as it was queued.
        #[test]
        fn queued_calls_read_back_exactly(
            calls in calls_in_a_row(),
            taken_after in prop::collection::vec(any::<bool>(), 8),
        ) {
            round_trip_taken_after(&calls, &taken_after);
        }
    }
}
