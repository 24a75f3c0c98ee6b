//! Closed calls on their way to the writer thread, queued by one producing thread.
//!
//! A lane holds its calls as bytes: numbers as they are (little-endian; money as its exact
//! `i128` units), absent token kinds, cost components and texts left out. A text that is the
//! same string (the same shared allocation) as the previous call's in the same buffer is a bit,
//! not a copy: calls in a row share their model, session, price table and provider, so a
//! typical call takes ~100 bytes, and the writer reads each repeated text back as one shared
//! string instead of allocating it again. What the instrumented thread pays is mostly the memory
//! that moves to the writer's core. Queuing allocates nothing once the buffers have grown (the
//! writer hands them back emptied), and the writer never touches the reference counts of the
//! strings the instrumented program shares.

use std::borrow::Cow;
use std::sync::Arc;

use cost_core::{CostBreakdown, Money, ServiceTier, TokenKind, Usage};
use cost_layer::ClosedCall;

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

/// Calls as bytes, in the order they were queued.
#[derive(Default)]
pub(crate) struct Queued {
    bytes: Vec<u8>,
    /// Each call's span name (a `&'static str`, kept as it is).
    names: Vec<&'static str>,
}

/// The texts of a call, in the order a lane keeps them: request model, response model, model,
/// price table, provider, operation; session, agent, user, org, feature.
const TEXTS: usize = 11;

/// Bits of a call's flags byte.
const HAS_PARENT: u8 = 1 << 4;
const HAS_SAVINGS: u8 = 1 << 5;

impl Lane {
    /// Calls queued.
    pub(crate) fn len(&self) -> usize {
        self.queued.names.len()
    }

    /// Queues a closed call. The fixed-size part (numbers and masks) is assembled on the stack
    /// and appended in one copy; then only the texts that differ from the previous call's.
    pub(crate) fn push(&mut self, call: &ClosedCall<'_>) {
        let totals = call.totals;
        // The first call of a buffer refers to no previous one, and no later call of it may
        // refer to a text last written in a buffer the writer has taken: forget them.
        if self.queued.names.is_empty() {
            self.previous = Default::default();
        }
        let mut fixed = Fixed::default();
        fixed.put(unix_ms(call.at).to_le_bytes());
        fixed.put(micros(call.duration).to_le_bytes());
        fixed.put(call.span_id.to_le_bytes());
        let savings = totals.cache_hit_savings.units();
        let flags = code(&CallStatus::ALL, status_of(totals))
            | (code(&ServiceTier::ALL, call.service_tier) << 2)
            | if call.parent_span_id.is_some() {
                HAS_PARENT
            } else {
                0
            }
            | if savings != 0 { HAS_SAVINGS } else { 0 };
        fixed.put([flags]);
        if let Some(parent) = call.parent_span_id {
            fixed.put(parent.to_le_bytes());
        }
        if savings != 0 {
            fixed.put(savings.to_le_bytes());
        }
        fixed.put_present(
            TokenKind::ALL.map(|kind| totals.usage.get(kind)),
            u64::to_le_bytes,
        );
        fixed.put_present(cost_parts(&totals.cost), i128::to_le_bytes);
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
        fixed.put(present.to_le_bytes());
        fixed.put(same.to_le_bytes());
        let out = &mut self.queued.bytes;
        out.extend_from_slice(fixed.filled());
        // Usually none: calls in a row share their texts.
        let mut new = present & !same;
        while new != 0 {
            let i = new.trailing_zeros() as usize;
            new &= new - 1;
            let (Some(Some(text)), Some(previous)) = (texts.get(i), self.previous.get_mut(i))
            else {
                continue;
            };
            // Two bytes of length, or a marker and eight for the rare long text.
            match u16::try_from(text.len()) {
                Ok(len) if len != u16::MAX => out.extend_from_slice(&len.to_le_bytes()),
                _ => {
                    out.extend_from_slice(&u16::MAX.to_le_bytes());
                    put_u64(out, text.len() as u64);
                }
            }
            out.extend_from_slice(text.as_bytes());
            *previous = Some(Arc::clone(text));
        }
        self.queued.names.push(call.name);
    }
}

/// The fixed-size part of a call, assembled on the stack.
struct Fixed {
    bytes: [u8; Fixed::MAX],
    len: usize,
}

impl Default for Fixed {
    fn default() -> Self {
        Fixed {
            bytes: [0; Fixed::MAX],
            len: 0,
        }
    }
}

impl Fixed {
    /// Time, duration and span id (3 × 8), flags (1), parent (8), cache-hit savings (16), usage
    /// mask and counts (1 + 6 × 8), cost mask and parts (1 + 7 × 16), text masks (2 × 2).
    const MAX: usize = 3 * 8 + 1 + 8 + 16 + 1 + 6 * 8 + 1 + 7 * 16 + 2 * 2;

    #[inline]
    fn put<const N: usize>(&mut self, value: [u8; N]) {
        // Never short: `MAX` is the sum of every part `push` writes.
        if let Some(slot) = self.bytes.get_mut(self.len..self.len + N) {
            slot.copy_from_slice(&value);
            self.len += N;
        }
    }

    /// A mask byte of the non-zero parts, then those parts as `bytes` writes them.
    #[inline]
    fn put_present<T: Copy + Default + PartialEq, const N: usize, const W: usize>(
        &mut self,
        parts: [T; N],
        bytes: impl Fn(T) -> [u8; W],
    ) {
        let zero = T::default();
        let mask = parts.iter().enumerate().fold(0_u8, |mask, (i, part)| {
            mask | (u8::from(*part != zero) << i)
        });
        self.put([mask]);
        for part in parts {
            if part != zero {
                self.put(bytes(part));
            }
        }
    }

    fn filled(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}

impl Queued {
    /// The records of the queued calls, in order, built on the writer's thread; left empty,
    /// its buffers kept for reuse. Returns how many calls could not be read back (it decodes
    /// only what [`Lane::push`] encoded, so that would be a bug): from the first such call on,
    /// the buffer's calls are left out rather than misread, and the writer counts them.
    pub(crate) fn drain_into(&mut self, records: &mut Vec<CallRecord>) -> u64 {
        records.reserve(self.names.len());
        let mut reader = Reader {
            bytes: &self.bytes,
            at: 0,
            previous: Default::default(),
        };
        let queued = self.names.len();
        let mut read = 0;
        for name in self.names.drain(..) {
            match reader.call(name) {
                Some(record) => {
                    records.push(record);
                    read += 1;
                }
                None => break,
            }
        }
        self.bytes.clear();
        (queued - read) as u64
    }
}

/// Reads calls back from a lane's bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    /// The texts of the call read last (a repeated text is shared, not read again).
    previous: [Option<Arc<str>>; TEXTS],
}

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let byte = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(byte)
    }

    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let end = self.at.checked_add(N)?;
        let bytes = self.bytes.get(self.at..end)?.try_into().ok()?;
        self.at = end;
        Some(bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_le_bytes)
    }

    fn i64(&mut self) -> Option<i64> {
        self.take().map(i64::from_le_bytes)
    }

    fn i128(&mut self) -> Option<i128> {
        self.take().map(i128::from_le_bytes)
    }

    fn text(&mut self) -> Option<Arc<str>> {
        let len = match self.take().map(u16::from_le_bytes)? {
            u16::MAX => usize::try_from(self.u64()?).ok()?,
            len => usize::from(len),
        };
        let end = self.at.checked_add(len)?;
        let text = std::str::from_utf8(self.bytes.get(self.at..end)?).ok()?;
        self.at = end;
        Some(Arc::from(text))
    }

    /// The values of the parts a mask byte says are present (zero for the others).
    fn present<T: Default + Copy, const N: usize>(
        &mut self,
        mut read: impl FnMut(&mut Self) -> Option<T>,
    ) -> Option<[T; N]> {
        let mask = self.byte()?;
        let mut parts = [T::default(); N];
        for (i, part) in parts.iter_mut().enumerate() {
            if mask & (1 << i) != 0 {
                *part = read(self)?;
            }
        }
        Some(parts)
    }

    fn call(&mut self, name: &'static str) -> Option<CallRecord> {
        let at_ms = self.i64()?;
        let duration_us = self.u64()?;
        let span_id = self.u64()?;
        let flags = self.byte()?;
        let parent_span_id = match flags & HAS_PARENT {
            0 => None,
            _ => Some(self.u64()?),
        };
        let savings = match flags & HAS_SAVINGS {
            0 => 0,
            _ => self.i128()?,
        };
        let counts = self.present::<u64, 6>(Self::u64)?;
        let mut usage = Usage::default();
        for (kind, count) in TokenKind::ALL.into_iter().zip(counts) {
            usage.set(kind, count);
        }
        let [
            uncached_input,
            cost_cache_read,
            cost_cache_write,
            cost_cache_write_1h,
            cost_output,
            cost_reasoning,
            cache_savings,
        ] = self.present::<i128, 7>(Self::i128)?;
        let present = u16::from_le_bytes(self.take()?);
        let same = u16::from_le_bytes(self.take()?);
        let mut texts: [Option<Arc<str>>; TEXTS] = Default::default();
        for (i, text) in texts.iter_mut().enumerate() {
            if present & (1 << i) == 0 {
                continue;
            }
            let read = if same & (1 << i) != 0 {
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
            at_ms,
            duration_us,
            name: Cow::Borrowed(name),
            span_id,
            parent_span_id,
            request_model,
            response_model,
            model: model.unwrap_or_else(|| Arc::from("unknown")),
            status: CallStatus::ALL[usize::from(flags & 0b11)],
            price_table,
            provider,
            operation,
            service_tier: ServiceTier::ALL[usize::from((flags >> 2) & 0b11)],
            session,
            agent,
            user,
            org,
            feature,
            usage,
            cost: CostBreakdown {
                uncached_input: Money::from_units(uncached_input),
                cache_read: Money::from_units(cost_cache_read),
                cache_write: Money::from_units(cost_cache_write),
                cache_write_1h: Money::from_units(cost_cache_write_1h),
                output: Money::from_units(cost_output),
                reasoning: Money::from_units(cost_reasoning),
                cache_savings: Money::from_units(cache_savings),
            },
            cache_hit_savings: Money::from_units(savings),
            previous_cost: None,
            repriced_with: None,
        })
    }
}

fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
}

/// A call's cost components, in the order the lane keeps them.
fn cost_parts(cost: &CostBreakdown) -> [i128; 7] {
    [
        cost.uncached_input,
        cost.cache_read,
        cost.cache_write,
        cost.cache_write_1h,
        cost.output,
        cost.reasoning,
        cost.cache_savings,
    ]
    .map(Money::units)
}

/// The position of `value` in `all` (a two-bit code: `all` has at most four values).
fn code<T: PartialEq>(all: &[T], value: T) -> u8 {
    all.iter().position(|v| *v == value).unwrap_or(0) as u8
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use cost_layer::{Attribution, ClosedCall, Totals};
    use proptest::prelude::*;

    use super::*;

    /// Everything a closed call borrows, owned.
    #[derive(Clone, Debug)]
    struct Owned {
        at_ms: u64,
        duration_us: u64,
        span_id: u64,
        parent_span_id: Option<u64>,
        tier: u8,
        /// 0 priced, 1 unpriced, 2 rejected, 3 cache hit.
        status: u8,
        usage: [u64; 6],
        cost: [i128; 7],
        savings: i128,
        /// Request model, response model, model, price table, provider, operation; session,
        /// agent, user, org, feature.
        texts: [Option<Arc<str>>; 11],
    }

    impl Owned {
        fn with_call<R>(&self, f: impl FnOnce(&ClosedCall<'_>) -> R) -> R {
            let [u0, u1, u2, u3, u4, u5] = self.usage;
            let [c0, c1, c2, c3, c4, c5, c6] = self.cost.map(Money::from_units);
            let t = &self.texts;
            let totals = Totals {
                usage: Usage {
                    input: u0,
                    cache_read: u1,
                    cache_write: u2,
                    cache_write_1h: u3,
                    output: u4,
                    reasoning: u5,
                },
                cost: CostBreakdown {
                    uncached_input: c0,
                    cache_read: c1,
                    cache_write: c2,
                    cache_write_1h: c3,
                    output: c4,
                    reasoning: c5,
                    cache_savings: c6,
                },
                llm_calls: u64::from(self.status < 2),
                unpriced_calls: u64::from(self.status == 1),
                rejected_calls: u64::from(self.status == 2),
                cache_hits: u64::from(self.status == 3),
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
                at: SystemTime::UNIX_EPOCH + Duration::from_millis(self.at_ms),
                duration: Duration::from_micros(self.duration_us),
                name: "chat",
                span_id: self.span_id,
                parent_span_id: self.parent_span_id,
                request_model: t[0].as_ref(),
                response_model: t[1].as_ref(),
                model: t[2].as_ref().unwrap_or(&unknown),
                provider: t[4].as_ref(),
                operation: t[5].as_ref(),
                service_tier: ServiceTier::ALL[usize::from(self.tier)],
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
            tier: 1,
            status: 0,
            usage: [1_000, 0, 0, 0, 100, 0],
            cost: [0, 0, 0, 0, 7, 0, 0],
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
    fn a_call_with_every_part_fills_the_fixed_part_exactly_and_reads_back() {
        let mut call = sample_call();
        call.usage = [1, 2, 3, 4, 5, 6];
        call.cost = [-1, 2, -3, 4, -5, 6, i128::MAX];
        call.savings = i128::MIN;
        call.parent_span_id = Some(u64::MAX);
        call.texts = Default::default();
        call.texts[2] = Some(Arc::from("gpt-4o"));
        let mut lane = Lane::default();
        call.with_call(|closed| lane.push(closed));
        // The fixed part, then the model's length and bytes.
        assert_eq!(lane.queued.bytes.len(), Fixed::MAX + 2 + "gpt-4o".len());
        round_trip(&[call.clone(), call]);
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
        let call = sample_call();
        let mut lane = Lane::default();
        for _ in 0..3 {
            call.with_call(|closed| lane.push(closed));
        }
        // The third call's last byte lost: two read back, one counted.
        lane.queued.bytes.pop();
        let mut records = Vec::new();
        assert_eq!(lane.queued.drain_into(&mut records), 1);
        assert_eq!(records.len(), 2);
        assert_eq!((lane.len(), lane.queued.bytes.len()), (0, 0));
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
            let before = lane.queued.bytes.len();
            owned.with_call(|closed| lane.push(closed));
            lane.queued.bytes.len() - before
        })
        .collect();
        assert_eq!(sizes[0] - sizes[1], 2 + session.len(), "{sizes:?}");
        assert_eq!(sizes[2], sizes[0], "{sizes:?}");
        // A new buffer (the writer took the last one) refers to no previous call.
        let mut records = Vec::new();
        lane.queued.drain_into(&mut records);
        let before = lane.queued.bytes.len();
        call(&other).with_call(|closed| lane.push(closed));
        assert_eq!(lane.queued.bytes.len() - before, sizes[0]);
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
                1 => (65_530_usize..65_540).prop_map(|n| "é".repeat(n / 2)),
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
            (0_u8..4, 0_u8..4),
            prop::array::uniform6(count),
            prop::array::uniform7(big.clone()),
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
