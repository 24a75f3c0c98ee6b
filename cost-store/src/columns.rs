//! The columns of the `llm_calls` table, shared by the SQL stores: their order, how a record
//! becomes a row and a row a record. Money is written as exact decimal text (`NUMERIC` in
//! PostgreSQL, `TEXT` in SQLite); ids and counts as 64-bit integers.

use std::borrow::Cow;
use std::sync::Arc;

use cost_core::{CostBreakdown, Money, SearchContextSize, ServiceTier, Usage};

use crate::record::{CallRecord, CallStatus};
use crate::store::StoreError;

/// The table's columns after `id`, in the order of [`values`].
pub(crate) const COLUMNS: [&str; 57] = [
    "at_ms",
    "duration_us",
    "name",
    "span_id",
    "parent_span_id",
    "request_model",
    "response_model",
    "model",
    "status",
    "price_table",
    "provider",
    "operation",
    "session",
    "agent",
    "user_key",
    "org",
    "feature",
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cost",
    "cost_uncached_input",
    "cost_cache_read",
    "cost_cache_write",
    "cost_cache_write_1h",
    "cost_output",
    "cost_reasoning",
    "cache_savings",
    "cache_hit_savings",
    "previous_cost",
    "repriced_with",
    "service_tier",
    "audio_input_tokens",
    "audio_output_tokens",
    "cost_audio_input",
    "cost_audio_output",
    "cache_read_audio_tokens",
    "image_output_tokens",
    "cost_image_output",
    "web_search_requests",
    "cost_web_search",
    "image_input_tokens",
    "cache_read_image_tokens",
    "cost_image_input",
    "file_search_calls",
    "cost_file_search",
    "data_residency",
    "image_generation_calls",
    "cost_image_generation",
    "code_interpreter_sessions",
    "cost_code_interpreter",
    "search_context_size",
    "reported_cost",
    "cost_provider_reported",
];

/// Whether a column of [`COLUMNS`] holds money (decimal text), by its name: `cost` and its
/// components (`cost_…`), the savings (`…_savings`), `previous_cost` and `reported_cost`.
#[cfg(feature = "postgres")]
pub(crate) fn is_money(column: &str) -> bool {
    column.starts_with("cost")
        || column.ends_with("_savings")
        || column == "previous_cost"
        || column == "reported_cost"
}

/// One value of a row.
#[derive(Debug)]
pub(crate) enum Value<'a> {
    Integer(Option<i64>),
    Text(Option<Cow<'a, str>>),
}

fn text(s: &Option<Arc<str>>) -> Value<'_> {
    Value::Text(s.as_deref().map(Cow::Borrowed))
}

fn money(m: Money) -> Value<'static> {
    Value::Text(Some(Cow::Owned(m.to_string())))
}

/// The row of a record, in the order of [`COLUMNS`]. A count or duration above 2⁶³ − 1 fits no
/// 64-bit integer column: the record is refused (`location` names the store), never clamped.
/// The layer never makes one: a call's counts are at most 10⁹ each.
pub(crate) fn values<'r>(
    r: &'r CallRecord,
    location: &str,
) -> Result<[Value<'r>; COLUMNS.len()], StoreError> {
    let count = |n: u64, column: usize| {
        i64::try_from(n)
            .map(|n| Value::Integer(Some(n)))
            .map_err(|_| StoreError::Unstorable {
                location: location.to_owned(),
                message: format!("{} = {n} is above 2^63 - 1", COLUMNS[column]),
            })
    };
    let c = &r.cost;
    Ok([
        Value::Integer(Some(r.at_ms)),
        count(r.duration_us, 1)?,
        Value::Text(Some(Cow::Borrowed(&r.name))),
        // Span ids are opaque 64-bit values: stored bit for bit.
        Value::Integer(Some(r.span_id as i64)),
        Value::Integer(r.parent_span_id.map(|id| id as i64)),
        text(&r.request_model),
        text(&r.response_model),
        Value::Text(Some(Cow::Borrowed(&r.model))),
        Value::Text(Some(Cow::Borrowed(r.status.as_str()))),
        text(&r.price_table),
        text(&r.provider),
        text(&r.operation),
        text(&r.session),
        text(&r.agent),
        text(&r.user),
        text(&r.org),
        text(&r.feature),
        count(r.usage.input, 17)?,
        count(r.usage.cache_read, 18)?,
        count(r.usage.cache_write, 19)?,
        count(r.usage.cache_write_1h, 20)?,
        count(r.usage.output, 21)?,
        count(r.usage.reasoning, 22)?,
        money(r.total()),
        money(c.uncached_input),
        money(c.cache_read),
        money(c.cache_write),
        money(c.cache_write_1h),
        money(c.output),
        money(c.reasoning),
        money(c.cache_savings),
        money(r.cache_hit_savings),
        Value::Text(r.previous_cost.map(|m| Cow::Owned(m.to_string()))),
        text(&r.repriced_with),
        Value::Text(Some(Cow::Borrowed(r.service_tier.as_str()))),
        count(r.usage.audio_input, 35)?,
        count(r.usage.audio_output, 36)?,
        money(c.audio_input),
        money(c.audio_output),
        count(r.usage.cache_read_audio, 39)?,
        count(r.usage.image_output, 40)?,
        money(c.image_output),
        count(r.usage.web_search_requests, 42)?,
        money(c.web_search),
        count(r.usage.image_input, 44)?,
        count(r.usage.cache_read_image, 45)?,
        money(c.image_input),
        count(r.usage.file_search_calls, 47)?,
        money(c.file_search),
        Value::Integer(Some(i64::from(r.data_residency))),
        count(r.usage.image_generation_calls, 50)?,
        money(c.image_generation),
        count(r.usage.code_interpreter_sessions, 52)?,
        money(c.code_interpreter),
        Value::Text(r.search_context_size.map(|s| Cow::Borrowed(s.as_str()))),
        Value::Text(r.reported_cost.map(|m| Cow::Owned(m.to_string()))),
        money(c.provider_reported),
    ])
}

/// Reads the columns of one row: `id` at index 0, then [`COLUMNS`] from index 1.
pub(crate) trait Row {
    fn integer(&self, index: usize) -> Result<Option<i64>, String>;
    fn text(&self, index: usize) -> Result<Option<String>, String>;
}

/// The record of a row read with `SELECT id, <COLUMNS>`.
pub(crate) fn record(row: &dyn Row, location: &str) -> Result<CallRecord, StoreError> {
    let corrupt = |message: String| StoreError::Corrupt {
        location: location.to_owned(),
        message,
    };
    let int = |i: usize| -> Result<i64, StoreError> {
        row.integer(i)
            .map_err(corrupt)?
            .ok_or_else(|| corrupt(format!("{} is null", column_name(i))))
    };
    let count = |i: usize| -> Result<u64, StoreError> {
        u64::try_from(int(i)?).map_err(|_| corrupt(format!("{} is negative", column_name(i))))
    };
    let opt_text = |i: usize| -> Result<Option<Arc<str>>, StoreError> {
        Ok(row.text(i).map_err(corrupt)?.map(Arc::from))
    };
    let req_text = |i: usize| -> Result<Arc<str>, StoreError> {
        opt_text(i)?.ok_or_else(|| corrupt(format!("{} is null", column_name(i))))
    };
    let money = |i: usize| -> Result<Money, StoreError> {
        let text = req_text(i)?;
        Money::from_decimal(&text).map_err(|e| corrupt(format!("{}: {e}", column_name(i))))
    };
    let status_text = req_text(9)?;
    let status = CallStatus::parse(&status_text)
        .ok_or_else(|| corrupt(format!("unknown status `{status_text}`")))?;
    let opt_money = |i: usize| -> Result<Option<Money>, StoreError> {
        opt_text(i)?
            .map(|text| {
                Money::from_decimal(&text).map_err(|e| corrupt(format!("{}: {e}", column_name(i))))
            })
            .transpose()
    };
    let previous_cost = opt_money(33)?;
    Ok(CallRecord {
        id: row.integer(0).map_err(corrupt)?,
        at_ms: int(1)?,
        duration_us: count(2)?,
        name: Cow::Owned(req_text(3)?.to_string()),
        span_id: int(4)? as u64,
        parent_span_id: row.integer(5).map_err(corrupt)?.map(|id| id as u64),
        request_model: opt_text(6)?,
        response_model: opt_text(7)?,
        model: req_text(8)?,
        status,
        price_table: opt_text(10)?,
        provider: opt_text(11)?,
        operation: opt_text(12)?,
        session: opt_text(13)?,
        agent: opt_text(14)?,
        user: opt_text(15)?,
        org: opt_text(16)?,
        feature: opt_text(17)?,
        usage: Usage {
            input: count(18)?,
            cache_read: count(19)?,
            cache_write: count(20)?,
            cache_write_1h: count(21)?,
            output: count(22)?,
            reasoning: count(23)?,
            audio_input: count(36)?,
            audio_output: count(37)?,
            cache_read_audio: count(40)?,
            image_output: count(41)?,
            web_search_requests: count(43)?,
            image_input: count(45)?,
            cache_read_image: count(46)?,
            file_search_calls: count(48)?,
            image_generation_calls: count(51)?,
            code_interpreter_sessions: count(53)?,
        },
        cost: CostBreakdown {
            uncached_input: money(25)?,
            cache_read: money(26)?,
            cache_write: money(27)?,
            cache_write_1h: money(28)?,
            output: money(29)?,
            reasoning: money(30)?,
            cache_savings: money(31)?,
            audio_input: money(38)?,
            audio_output: money(39)?,
            image_output: money(42)?,
            web_search: money(44)?,
            image_input: money(47)?,
            file_search: money(49)?,
            image_generation: money(52)?,
            code_interpreter: money(54)?,
            provider_reported: money(57)?,
        },
        cache_hit_savings: money(32)?,
        previous_cost,
        repriced_with: opt_text(34)?,
        service_tier: {
            let text = req_text(35)?;
            ServiceTier::parse(&text).map_err(|e| corrupt(e.to_string()))?
        },
        data_residency: match int(50)? {
            0 => false,
            1 => true,
            other => return Err(corrupt(format!("data_residency is {other}, not 0 or 1"))),
        },
        search_context_size: match opt_text(55)? {
            Some(text) => {
                Some(SearchContextSize::parse(&text).map_err(|e| corrupt(e.to_string()))?)
            }
            None => None,
        },
        reported_cost: opt_money(56)?,
    })
}

fn column_name(index: usize) -> &'static str {
    match index {
        0 => "id",
        i => COLUMNS.get(i - 1).copied().unwrap_or("?"),
    }
}
