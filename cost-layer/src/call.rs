//! Recording usage on an LLM-call span: what `#[llm_call]` does on return, and the streaming
//! API for code that learns its usage piece by piece.

use std::fmt::Display;
use std::sync::OnceLock;

use cost_core::{TokenUsage, Usage};
use tracing::Span;
use tracing::field::{Field, FieldSet, Value};

use crate::fields::{CALL_FIELD_NAMES, ERROR_FIELD};

/// The usage fields of one `#[llm_call]` callsite, looked up once.
#[doc(hidden)]
pub struct CallFields {
    fields: OnceLock<Option<([Field; 7], Field)>>,
}

impl CallFields {
    /// Empty; filled on first use.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        CallFields {
            fields: OnceLock::new(),
        }
    }

    fn get(&self, fieldset: &FieldSet) -> Option<&([Field; 7], Field)> {
        self.fields
            .get_or_init(|| {
                let [a, b, c, d, e, f, g] = CALL_FIELD_NAMES.map(|name| fieldset.field(name));
                Some(([a?, b?, c?, d?, e?, f?, g?], fieldset.field(ERROR_FIELD)?))
            })
            .as_ref()
    }
}

/// Records the usage and response model `value` carries on `span`, in one record.
#[doc(hidden)]
pub fn record_return<T: TokenUsage + ?Sized>(span: &Span, fields: &CallFields, value: &T) {
    let Some(metadata) = span.metadata() else {
        return;
    };
    let Some((names, _)) = fields.get(metadata.fields()) else {
        return;
    };
    let usage = value.token_usage();
    let model = value.response_model();
    if usage.is_none() && model.is_none() {
        return;
    }
    let counts = usage.map(|u| {
        [
            u.input,
            u.cache_read,
            u.cache_write,
            u.cache_write_1h,
            u.output,
            u.reasoning,
        ]
    });
    let count = |i: usize| counts.as_ref().map(|c| &c[i] as &dyn Value);
    let values = [
        (&names[0], count(0)),
        (&names[1], count(1)),
        (&names[2], count(2)),
        (&names[3], count(3)),
        (&names[4], count(4)),
        (&names[5], count(5)),
        (&names[6], model.as_ref().map(|m| m as &dyn Value)),
    ];
    span.record_all(&metadata.fields().value_set(&values));
}

/// A return value whose error `#[llm_call(err)]` can record.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`#[llm_call(err)]` needs a function that returns `Result<_, E>` with `E: Display`, not `{Self}`",
    label = "`err` records the `Display` of the error this function returns"
)]
pub trait ErrorResult {
    /// The error, if the value is one.
    fn error(&self) -> Option<&dyn Display>;
}

impl<T, E: Display> ErrorResult for Result<T, E> {
    fn error(&self) -> Option<&dyn Display> {
        self.as_ref().err().map(|e| e as &dyn Display)
    }
}

/// Records the error of an `Err` on `span` (`#[llm_call(err)]`).
#[doc(hidden)]
pub fn record_error<R: ErrorResult>(span: &Span, fields: &CallFields, result: &R) {
    let (Some(error), Some(metadata)) = (result.error(), span.metadata()) else {
        return;
    };
    if let Some((_, field)) = fields.get(metadata.fields()) {
        let message = tracing::field::display(error);
        span.record_all(
            &metadata
                .fields()
                .value_set(&[(field, Some(&message as &dyn Value))]),
        );
    }
}

/// Records running usage on the current LLM-call span, from inside an `#[llm_call]` function
/// (or any span that declares the usage fields): for streaming clients that learn their usage
/// chunk by chunk or only in the last chunk. Later records overwrite earlier ones. Return `()`
/// (or any value without usage) from the function so its return does not overwrite it.
pub fn record_usage(usage: &Usage) {
    let span = Span::current();
    let names = CALL_FIELD_NAMES;
    span.record(names[0], usage.input);
    span.record(names[1], usage.cache_read);
    span.record(names[2], usage.cache_write);
    span.record(names[3], usage.cache_write_1h);
    span.record(names[4], usage.output);
    span.record(names[5], usage.reasoning);
}

/// Records the model that answered on the current LLM-call span (see [`record_usage`]).
pub fn record_response_model(model: &str) {
    Span::current().record(CALL_FIELD_NAMES[6], model);
}
