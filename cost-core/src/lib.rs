//! Exact pricing of LLM calls.
//!
//! - [`Money`] and [`TokenPrice`]: exact fixed-point amounts (10⁻²⁴ USD), parsed from decimal
//!   text, never through `f64`.
//! - [`Usage`]: token counts of one call in the inclusive OpenTelemetry GenAI convention (with
//!   its audio and image tokens apart, which some models price above text), and the web
//!   searches and file search tool calls the provider ran for it (billed each).
//! - [`ModelPrice`]: a model's per-token (and per-search) prices, context tiers and service
//!   tiers, and [`ModelPrice::cost`], which prices a call into a [`CostBreakdown`];
//!   [`ModelPrice::worst_case`], what a call within a [`CallBound`] can cost at most. Both take
//!   the call's [`CallTerms`]: its service tier (a [`ServiceTier`] converts into terms), and
//!   whether it ran on a data-residency endpoint, priced at the model's factor
//!   ([`ModelPrice::with_data_residency`], a [`PriceMultiplier`]) or not at all.
//! - [`PriceTable`]: many models, loaded from the embedded default ([`PriceTable::default`]), the
//!   native TOML format or LiteLLM's JSON ([`PriceTable::from_path`]), merged
//!   ([`PriceTable::merged`]) and shared live ([`SharedPriceTable`]); names resolve by the rules
//!   of [`resolve`]. An entry may list [`PriceChange`]s, prices that replace its own from a known
//!   day on: [`PriceTable::quote`] prices a call made now, [`PriceTable::quote_at`] one made then.
//!
//! ```
//! use cost_core::{PriceTable, ServiceTier, Usage};
//!
//! let table = PriceTable::default();
//! let usage = Usage { input: 12_000, cache_read: 8_000, output: 900, ..Usage::default() };
//! let quote = table.quote("gpt-4o-2024-08-06", &usage, ServiceTier::Standard)?;
//! assert_eq!(quote.entry.key, "gpt-4o");
//! assert_eq!(quote.total().to_string(), "0.029");  // 4000×2.5e-6 + 8000×1.25e-6 + 900×1e-5
//! # Ok::<(), cost_core::QuoteError>(())
//! ```

#![deny(missing_docs)]

pub mod adapters;
pub mod budget;
pub mod format;
pub mod money;
pub mod price;
pub mod resolve;
pub mod table;
pub mod token_usage;
pub mod usage;

pub use format::{PriceFileError, PriceFileErrorKind, PriceFormat};
pub use money::{BadMultiplier, DecimalError, Money, PriceMultiplier, TokenPrice};
pub use price::{
    CallBound, CallTerms, ComponentPrices, ContextTier, CostBreakdown, CostError, ModelPrice,
    PriceError, PriceSchedule, Priced, Rates, SearchContextSize, ServiceTier,
    UnknownSearchContextSize, UnknownServiceTier,
};
pub use resolve::{MatchRule, Unpriced};
pub use table::{
    DEFAULT_PRICE_AGE_LIMIT_DAYS, EntryId, LoadReport, ModelEntry, PriceChange, PriceTable,
    PriceTableBuilder, Provenance, Quote, QuoteError, Resolution, SharedPriceTable, StalePrice,
    TableError, TableInfo,
};
pub use token_usage::TokenUsage;
pub use usage::{MAX_TOKENS_PER_CALL, MAX_WEB_SEARCHES_PER_CALL, TokenKind, Usage, UsageError};

/// The text of the embedded default price table (`cost-core/prices/default.toml`).
pub const EMBEDDED_PRICES: &str = include_str!("../prices/default.toml");
