//! What one model charges: per-token prices, context tiers, service tiers, and the rules that
//! fill in absent prices.
//!
//! # Rules
//!
//! They match LiteLLM's, the reference table of the field:
//!
//! - **Context tiers.** A tier "above N" applies to the *whole* request when its input tokens
//!   (inclusive: cache reads and writes count) are strictly greater than N. The highest crossed
//!   tier wins. Inside a tier, a component without a tiered price uses its base price.
//! - **Absent prices.** An absent cache-read or cache-write (5-minute) price bills those tokens
//!   at the input price that applies (the tier's, inside a tier). An absent 1-hour write price
//!   uses the 5-minute write price. An absent reasoning price uses the output price. An absent
//!   audio input price bills uncached audio prompt tokens at the input price, an absent audio
//!   output price audio completion tokens at the output price (models that price audio as
//!   text declare none), an absent cached-audio price cached audio tokens at the cache-read
//!   price. An absent *image output* price makes a call with image output tokens
//!   [`CostError::MissingPrice`]: images cost many times text where they are generated, so
//!   they are never billed as text. An absent *web search* price makes a call that ran
//!   searches [`CostError::MissingPrice`] too (a search is billed per request, at no token
//!   price). A service tier's variant or a context tier without a search price uses the
//!   standard one: providers discount tokens in batch, not searches. An explicit `0` stays `0`. An absent *output* price makes a call with output tokens
//!   [`CostError::MissingPrice`]: never billed as free.
//! - **Service tiers** (batch, flex, priority). A variant lists the prices that differ; for each
//!   component the order of lookup is: the variant's tiered price, the standard tiered price, the
//!   variant's base price, the standard base price, then the rules above. A model without the
//!   requested variant is priced at its standard prices, and the [`Quote`](crate::Quote) says
//!   which service tier was applied.
//! - **Fast mode** ([`ServiceTier::FastMode`]: Anthropic's fast mode, OpenAI's Ultrafast) is
//!   priced by a factor on the standard prices ([`ModelPrice::with_fast_mode`]) or by a
//!   variant of its own ([`ModelPrice::with_fast_mode_prices`]), and is a premium: a model
//!   without either leaves the call unpriced ([`CostError::NoFastModePrice`]) rather than at
//!   standard. The data-residency factor ([`ModelPrice::with_data_residency`]) scales every
//!   tier, fast mode's included.
//!
//! The rules are applied once, when a [`ModelPrice`] is built: pricing a call
//! ([`ModelPrice::cost`]) picks a precomputed [`Rates`] row and multiplies.

use serde::Serialize;
use thiserror::Error;

use crate::money::{Money, PriceMultiplier, TokenPrice};
use crate::usage::{TokenKind, Usage, UsageError};

/// Prices of one model (or one tier of it) per token kind; `None` where not declared.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ComponentPrices {
    /// Uncached prompt tokens.
    pub input: Option<TokenPrice>,
    /// Completion tokens (reasoning too, unless `reasoning` is set).
    pub output: Option<TokenPrice>,
    /// Prompt tokens read from the cache.
    pub cache_read: Option<TokenPrice>,
    /// Prompt tokens written to the cache, 5-minute lifetime.
    pub cache_write: Option<TokenPrice>,
    /// Prompt tokens written to the cache, 1-hour lifetime.
    pub cache_write_1h: Option<TokenPrice>,
    /// Reasoning tokens.
    pub reasoning: Option<TokenPrice>,
    /// Uncached audio prompt tokens.
    pub audio_input: Option<TokenPrice>,
    /// Audio completion tokens.
    pub audio_output: Option<TokenPrice>,
    /// Audio prompt tokens read from the cache.
    pub cache_read_audio: Option<TokenPrice>,
    /// Completion tokens of generated images.
    pub image_output: Option<TokenPrice>,
    /// One web search, USD per search (not per token).
    pub web_search_requests: Option<TokenPrice>,
    /// Uncached image prompt tokens.
    pub image_input: Option<TokenPrice>,
    /// Image prompt tokens read from the cache.
    pub cache_read_image: Option<TokenPrice>,
    /// One file search tool call, USD per call (not per token).
    pub file_search_calls: Option<TokenPrice>,
    /// One image made by the hosted image generation tool, USD per image (not per token).
    pub image_generation_calls: Option<TokenPrice>,
    /// One code interpreter session (container), USD per session (not per token).
    pub code_interpreter_sessions: Option<TokenPrice>,
}

impl ComponentPrices {
    /// The declared price of one token kind.
    pub const fn get(&self, kind: TokenKind) -> Option<TokenPrice> {
        match kind {
            TokenKind::Input => self.input,
            TokenKind::Output => self.output,
            TokenKind::CacheRead => self.cache_read,
            TokenKind::CacheWrite => self.cache_write,
            TokenKind::CacheWrite1h => self.cache_write_1h,
            TokenKind::Reasoning => self.reasoning,
            TokenKind::AudioInput => self.audio_input,
            TokenKind::AudioOutput => self.audio_output,
            TokenKind::CacheReadAudio => self.cache_read_audio,
            TokenKind::ImageOutput => self.image_output,
            TokenKind::WebSearchRequests => self.web_search_requests,
            TokenKind::ImageInput => self.image_input,
            TokenKind::CacheReadImage => self.cache_read_image,
            TokenKind::FileSearchCalls => self.file_search_calls,
            TokenKind::ImageGenerationCalls => self.image_generation_calls,
            TokenKind::CodeInterpreterSessions => self.code_interpreter_sessions,
        }
    }

    /// Declares the price of one token kind.
    pub fn set(&mut self, kind: TokenKind, price: TokenPrice) {
        let slot = match kind {
            TokenKind::Input => &mut self.input,
            TokenKind::Output => &mut self.output,
            TokenKind::CacheRead => &mut self.cache_read,
            TokenKind::CacheWrite => &mut self.cache_write,
            TokenKind::CacheWrite1h => &mut self.cache_write_1h,
            TokenKind::Reasoning => &mut self.reasoning,
            TokenKind::AudioInput => &mut self.audio_input,
            TokenKind::AudioOutput => &mut self.audio_output,
            TokenKind::CacheReadAudio => &mut self.cache_read_audio,
            TokenKind::ImageOutput => &mut self.image_output,
            TokenKind::WebSearchRequests => &mut self.web_search_requests,
            TokenKind::ImageInput => &mut self.image_input,
            TokenKind::CacheReadImage => &mut self.cache_read_image,
            TokenKind::FileSearchCalls => &mut self.file_search_calls,
            TokenKind::ImageGenerationCalls => &mut self.image_generation_calls,
            TokenKind::CodeInterpreterSessions => &mut self.code_interpreter_sessions,
        };
        *slot = Some(price);
    }

    /// `true` when no price is declared.
    pub fn is_empty(&self) -> bool {
        TokenKind::ALL.iter().all(|kind| self.get(*kind).is_none())
    }
}

/// Prices that apply to a whole request whose input tokens are strictly greater than
/// `above_input_tokens`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContextTier {
    /// The threshold N of "above N tokens".
    pub above_input_tokens: u64,
    /// The tier's declared prices; absent ones fall back as the module docs say.
    pub prices: ComponentPrices,
}

/// Base prices and context tiers of one service tier.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PriceSchedule {
    /// Prices below the first tier.
    pub base: ComponentPrices,
    /// Context tiers, any order (sorted when the [`ModelPrice`] is built).
    pub tiers: Vec<ContextTier>,
}

impl PriceSchedule {
    /// A schedule with base prices only.
    pub fn flat(base: ComponentPrices) -> Self {
        PriceSchedule {
            base,
            tiers: Vec::new(),
        }
    }

    /// The declared prices of the tier "above `threshold`", creating it if absent.
    pub fn tier_mut(&mut self, threshold: u64) -> &mut ComponentPrices {
        let at = match self
            .tiers
            .iter()
            .position(|t| t.above_input_tokens == threshold)
        {
            Some(at) => at,
            None => {
                self.tiers.push(ContextTier {
                    above_input_tokens: threshold,
                    prices: ComponentPrices::default(),
                });
                self.tiers.len() - 1
            }
        };
        &mut self.tiers[at].prices
    }

    fn tier(&self, threshold: u64) -> Option<&ComponentPrices> {
        self.tiers
            .iter()
            .find(|t| t.above_input_tokens == threshold)
            .map(|t| &t.prices)
    }

    fn is_empty(&self) -> bool {
        self.base.is_empty() && self.tiers.iter().all(|t| t.prices.is_empty())
    }
}

/// The service tier a request ran at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceTier {
    /// Standard (on-demand) pricing.
    #[default]
    Standard,
    /// Asynchronous batch APIs.
    Batch,
    /// Flex processing: slower, cheaper.
    Flex,
    /// Priority processing: faster, dearer (OpenAI calls it Fast mode, `fast`, since July 2026).
    Priority,
    /// A premium speed mode: Anthropic's fast mode (`speed: "fast"`, reported as `usage.speed`;
    /// 2× or 6× the standard prices depending on the model) and OpenAI's Ultrafast
    /// (`service_tier: "ultrafast"`, 6×), priced by the model's fast-mode factor
    /// ([`ModelPrice::with_fast_mode`]) or prices ([`ModelPrice::with_fast_mode_prices`]).
    /// Named `fast_mode`; unlike the other tiers, a model without a price for it leaves the call
    /// unpriced ([`CostError::NoFastModePrice`]) instead of falling back to standard.
    FastMode,
}

/// A service-tier name that is not one of `standard`, `default`, `auto`, `on_demand`,
/// `unspecified`, `standard_only`, `batch`, `batches`, `flex`, `priority`, `fast`,
/// `fast_mode`, `ultrafast` (Gemini's `SERVICE_TIER_` prefix allowed).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("unknown service tier `{0}`; expected {names}", names = ServiceTier::NAMES)]
pub struct UnknownServiceTier(pub String);

impl ServiceTier {
    /// The tiers' names, as [`ServiceTier::parse`] reads them, for messages.
    pub const NAMES: &'static str =
        "standard, batch, flex, priority (or fast) or fast_mode (or ultrafast)";

    /// Every service tier.
    pub const ALL: [ServiceTier; 5] = [
        ServiceTier::Standard,
        ServiceTier::Batch,
        ServiceTier::Flex,
        ServiceTier::Priority,
        ServiceTier::FastMode,
    ];

    /// The lower-case name (`"batch"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            ServiceTier::Standard => "standard",
            ServiceTier::Batch => "batch",
            ServiceTier::Flex => "flex",
            ServiceTier::Priority => "priority",
            ServiceTier::FastMode => "fast_mode",
        }
    }

    /// Reads a service-tier name as providers spell it, case-insensitively: `standard`,
    /// `default` and `auto` are standard; `batch` and `batches` are batch; `fast` is priority
    /// (OpenAI's name for its priority processing since July 2026, which its API takes for
    /// `priority`); `fast_mode` (Anthropic's fast mode) and `ultrafast` (OpenAI's) are fast
    /// mode. Gemini's enum spelling (`SERVICE_TIER_PRIORITY`) reads as the name after its
    /// prefix.
    pub fn parse(name: &str) -> Result<Self, UnknownServiceTier> {
        let lower = name.trim().to_ascii_lowercase();
        match lower.strip_prefix("service_tier_").unwrap_or(&lower) {
            "" | "standard" | "default" | "auto" | "on_demand" | "unspecified"
            | "standard_only" => Ok(ServiceTier::Standard),
            "batch" | "batches" => Ok(ServiceTier::Batch),
            "flex" => Ok(ServiceTier::Flex),
            "priority" | "fast" => Ok(ServiceTier::Priority),
            "fast_mode" | "ultrafast" => Ok(ServiceTier::FastMode),
            _ => Err(UnknownServiceTier(name.to_owned())),
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for ServiceTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How much web content a search brings into the model's context, chosen by the request
/// (OpenAI's `search_context_size` of its web search tool and search models, medium by
/// default; Perplexity's `web_search_options.search_context_size`, reported in its usage, low by
/// default). Some providers price a search by it
/// ([`ModelPrice::with_web_search_by_context_size`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchContextSize {
    /// The least context: fastest, cheapest.
    Low,
    /// The middle size (OpenAI's default).
    Medium,
    /// The most context.
    High,
}

/// A search context size that is not `low`, `medium` or `high`.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("unknown search context size `{0}`; expected low, medium or high")]
pub struct UnknownSearchContextSize(pub String);

impl SearchContextSize {
    /// Every size, in the order of [`ModelPrice::web_search_by_context_size`].
    pub const ALL: [SearchContextSize; 3] = [
        SearchContextSize::Low,
        SearchContextSize::Medium,
        SearchContextSize::High,
    ];

    /// The lower-case name (`"low"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            SearchContextSize::Low => "low",
            SearchContextSize::Medium => "medium",
            SearchContextSize::High => "high",
        }
    }

    /// Reads a size as providers spell it, case-insensitively: `low`, `medium`, `high`
    /// (LiteLLM's `search_context_size_low` too).
    pub fn parse(name: &str) -> Result<Self, UnknownSearchContextSize> {
        let lower = name.trim().to_ascii_lowercase();
        match lower.strip_prefix("search_context_size_").unwrap_or(&lower) {
            "low" => Ok(SearchContextSize::Low),
            "medium" => Ok(SearchContextSize::Medium),
            "high" => Ok(SearchContextSize::High),
            _ => Err(UnknownSearchContextSize(name.to_owned())),
        }
    }

    /// Its place in [`SearchContextSize::ALL`].
    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for SearchContextSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a call's price depends on beyond its usage: the service tier it ran at, whether it
/// ran on an endpoint that keeps its data in one geography (Vertex AI's regional endpoints,
/// Bedrock's geographic and in-Region ones, Anthropic's US-only inference, OpenAI's data
/// residency), which some providers bill above the list price
/// ([`ModelPrice::data_residency`]), and the search context size its web searches used. A
/// [`ServiceTier`] converts into the terms of a call at that tier without data residency and
/// with no search context size stated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CallTerms {
    /// The service tier.
    pub service_tier: ServiceTier,
    /// The call ran on a data-residency endpoint.
    pub data_residency: bool,
    /// The search context size of the call's web searches; `None` when not stated (priced as
    /// medium, OpenAI's default).
    pub search_context_size: Option<SearchContextSize>,
}

impl From<ServiceTier> for CallTerms {
    fn from(service_tier: ServiceTier) -> Self {
        CallTerms {
            service_tier,
            ..CallTerms::default()
        }
    }
}

/// Effective per-token rates of one (service tier, context tier) pair, after the fallback rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Rates {
    /// Uncached input.
    pub input: TokenPrice,
    /// Non-reasoning output; `None` when the model declares no output price.
    pub output: Option<TokenPrice>,
    /// Cache reads.
    pub cache_read: TokenPrice,
    /// Cache writes, 5 minutes.
    pub cache_write: TokenPrice,
    /// Cache writes, 1 hour.
    pub cache_write_1h: TokenPrice,
    /// Reasoning output; `None` when neither reasoning nor output price is declared.
    pub reasoning: Option<TokenPrice>,
    /// Uncached audio input.
    pub audio_input: TokenPrice,
    /// Audio output; `None` when neither audio output nor output price is declared.
    pub audio_output: Option<TokenPrice>,
    /// Cache reads of audio.
    pub cache_read_audio: TokenPrice,
    /// Image output; `None` when not declared (never the text output price).
    pub image_output: Option<TokenPrice>,
    /// One web search; `None` when not declared.
    pub web_search_requests: Option<TokenPrice>,
    /// Uncached image input (the text input price when not declared, as most models bill an
    /// image prompt).
    pub image_input: TokenPrice,
    /// Cache reads of images (the cache-read price when not declared).
    pub cache_read_image: TokenPrice,
    /// One file search call; `None` when not declared.
    pub file_search_calls: Option<TokenPrice>,
    /// One image of the image generation tool; `None` when not declared.
    pub image_generation_calls: Option<TokenPrice>,
    /// One code interpreter session; `None` when not declared.
    pub code_interpreter_sessions: Option<TokenPrice>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct RateRow {
    /// `None` for the base row, `Some(N)` for the tier "above N".
    above_input_tokens: Option<u64>,
    rates: Rates,
}

/// A model's declared prices, and the effective rates derived from them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelPrice {
    standard: PriceSchedule,
    /// The declared schedules of the other tiers, in the order of [`ServiceTier::ALL`] after
    /// standard (fast mode's when it has prices of its own rather than a factor).
    variants: [Option<PriceSchedule>; ServiceTier::ALL.len() - 1],
    /// Rows per service tier (standard, batch, flex, priority, fast mode), ordered by
    /// threshold; fast mode's are empty when it has no price.
    rows: TierRows,
    /// The factor of fast mode on the standard prices, when it is priced so.
    fast_mode: Option<PriceMultiplier>,
    /// The prices at a data-residency endpoint; `None` when unknown.
    data_residency: Option<Box<ResidencyPrices>>,
    /// The price of one web search per search context size, in the order of
    /// [`SearchContextSize::ALL`]; a size without one is priced at the rates' search price.
    web_search_by_context_size: [Option<TokenPrice>; 3],
}

/// Rate rows per service tier, in the order of [`ServiceTier::ALL`].
type TierRows = [Vec<RateRow>; ServiceTier::ALL.len()];

/// A model's prices at a data-residency endpoint: its factor, and its rows scaled by it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ResidencyPrices {
    factor: PriceMultiplier,
    rows: TierRows,
}

/// A model price that cannot be built.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PriceError {
    /// Every model needs a standard input price.
    #[error("no input price: every model needs a standard input price per token")]
    MissingInput,
    /// Two context tiers with one threshold.
    #[error("two context tiers above {0} tokens")]
    DuplicateTier(u64),
    /// A data-residency factor that makes a price inexact (more than 24 decimals per token).
    #[error("the data-residency factor {0} makes a price inexact")]
    InexactMultiplier(PriceMultiplier),
}

/// A call that cannot be priced. Never billed as zero.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum CostError {
    /// The usage is inconsistent or absurd.
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// The call has tokens of a kind the model has no price for.
    #[error("the model has no {kind} price, and the call has {tokens} {} of that kind", kind.unit())]
    MissingPrice {
        /// The token kind.
        kind: TokenKind,
        /// How many tokens (or searches) of it the call has.
        tokens: u64,
    },
    /// The call ran on a data-residency endpoint, and the model's price there is not known.
    #[error("the call ran on a data-residency endpoint, and the model has no price there")]
    NoDataResidencyPrice,
    /// The call ran in fast mode, and the model's fast-mode price is not known.
    #[error("the call ran in fast mode, and the model has no fast-mode price")]
    NoFastModePrice,
    /// The cost leaves the representable range (±1.7 × 10¹⁴ USD).
    #[error("the cost is beyond the representable range")]
    Overflow,
}

/// The cost of one call, per component, exact.
///
/// The components add up to [`CostBreakdown::total`]; `cache_savings` is not part of the total:
/// it is what the cache reads would have cost at the uncached input price, minus what they cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct CostBreakdown {
    /// Uncached text input tokens × input price.
    pub uncached_input: Money,
    /// Cache-read tokens × cache-read price (cached audio and images at their own cache-read
    /// prices).
    pub cache_read: Money,
    /// 5-minute cache-write tokens × cache-write price.
    pub cache_write: Money,
    /// 1-hour cache-write tokens × 1-hour cache-write price.
    pub cache_write_1h: Money,
    /// Text output tokens other than reasoning × output price.
    pub output: Money,
    /// Reasoning tokens × reasoning price.
    pub reasoning: Money,
    /// Saved by cache reads against the uncached input price (audio's and images' against the
    /// audio and image input prices; not part of the total).
    pub cache_savings: Money,
    /// Uncached audio input tokens × audio input price.
    pub audio_input: Money,
    /// Audio output tokens × audio output price.
    pub audio_output: Money,
    /// Image output tokens × image output price.
    pub image_output: Money,
    /// Web searches × price per search.
    pub web_search: Money,
    /// Uncached image input tokens × image input price.
    pub image_input: Money,
    /// File search calls × price per call.
    pub file_search: Money,
    /// Images of the image generation tool × price per image.
    pub image_generation: Money,
    /// Code interpreter sessions × price per session.
    pub code_interpreter: Money,
    /// The cost the call's provider reported ([`TokenUsage::reported_cost`](crate::TokenUsage::reported_cost)),
    /// charged as it is for a call the price table has no price for, where the accounting was
    /// told to (cost-layer's `CostLayerBuilder::charge_reported_cost_when_unpriced`); the other
    /// components are then zero. Zero for a call priced by the table: a price table never
    /// sets it.
    pub provider_reported: Money,
}

impl CostBreakdown {
    /// Sum of the fifteen cost components (cache savings excluded).
    pub fn total(&self) -> Money {
        self.uncached_input
            + self.provider_reported
            + self.image_input
            + self.file_search
            + self.image_generation
            + self.code_interpreter
            + self.cache_read
            + self.cache_write
            + self.cache_write_1h
            + self.output
            + self.reasoning
            + self.audio_input
            + self.audio_output
            + self.image_output
            + self.web_search
    }

    /// Component-wise sum, for totals over many calls.
    pub fn saturating_add(self, other: CostBreakdown) -> CostBreakdown {
        CostBreakdown {
            uncached_input: self.uncached_input + other.uncached_input,
            cache_read: self.cache_read + other.cache_read,
            cache_write: self.cache_write + other.cache_write,
            cache_write_1h: self.cache_write_1h + other.cache_write_1h,
            output: self.output + other.output,
            reasoning: self.reasoning + other.reasoning,
            cache_savings: self.cache_savings + other.cache_savings,
            audio_input: self.audio_input + other.audio_input,
            audio_output: self.audio_output + other.audio_output,
            image_output: self.image_output + other.image_output,
            web_search: self.web_search + other.web_search,
            image_input: self.image_input + other.image_input,
            file_search: self.file_search + other.file_search,
            image_generation: self.image_generation + other.image_generation,
            code_interpreter: self.code_interpreter + other.code_interpreter,
            provider_reported: self.provider_reported + other.provider_reported,
        }
    }
}

/// The most one call may use, known before it runs: what [`ModelPrice::worst_case`] prices (and
/// a budget reserves).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallBound {
    /// The prompt tokens (an estimate, when the prompt is not counted yet).
    pub input: u64,
    /// The most completion tokens the request allows (its `max_tokens`).
    pub max_output: u64,
    /// The most web searches the request allows (Anthropic's `max_uses`); 0 for a request
    /// without a search tool.
    pub max_web_searches: u64,
}

impl CallBound {
    /// A call of `input` prompt tokens and at most `max_output` completion tokens, no searches.
    pub const fn tokens(input: u64, max_output: u64) -> Self {
        CallBound {
            input,
            max_output,
            max_web_searches: 0,
        }
    }
}

/// The outcome of [`ModelPrice::cost`]: the breakdown and which prices produced it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Priced {
    /// The cost per component.
    pub breakdown: CostBreakdown,
    /// The service tier whose prices were applied (standard when the model has no variant for
    /// the one requested; fast mode never falls back: without its price the call is unpriced).
    pub service_tier: ServiceTier,
    /// The context tier applied, as its threshold; `None` for base prices.
    pub context_tier: Option<u64>,
    /// The data-residency prices were applied.
    pub data_residency: bool,
}

impl Priced {
    /// Total cost of the call.
    pub fn total(&self) -> Money {
        self.breakdown.total()
    }
}

impl ModelPrice {
    /// A model with standard prices only, no tiers.
    pub fn flat(base: ComponentPrices) -> Result<Self, PriceError> {
        Self::new(PriceSchedule::flat(base), [None, None, None])
    }

    /// A model from its standard schedule and its batch, flex and priority variants (in that
    /// order; `None` where the model has none).
    pub fn new(
        standard: PriceSchedule,
        variants: [Option<PriceSchedule>; 3],
    ) -> Result<Self, PriceError> {
        let mut standard = standard;
        if standard.base.input.is_none() {
            return Err(PriceError::MissingInput);
        }
        let [batch, flex, priority] = variants.map(|v| v.filter(|s| !s.is_empty()));
        let mut variants = [batch, flex, priority, None];
        for schedule in std::iter::once(&mut standard).chain(variants.iter_mut().flatten()) {
            sort_tiers(schedule)?;
        }
        let rows = ServiceTier::ALL.map(|tier| match tier {
            ServiceTier::Standard => derive_rows(&standard, None),
            // Priced by a factor on the standard rows, when one is given.
            ServiceTier::FastMode => Vec::new(),
            other => derive_rows(&standard, variants[other.index() - 1].as_ref()),
        });
        Ok(ModelPrice {
            standard,
            variants,
            rows,
            fast_mode: None,
            data_residency: None,
            web_search_by_context_size: [None; 3],
        })
    }

    /// This price with the factor fast mode applies to the standard token prices (`6` on Claude
    /// Opus 4.6 and OpenAI's Ultrafast, `2` on later Opus models; cache reads and writes scale
    /// with the input price, context tiers with their own). Per-call fees (searches) are not
    /// scaled. Without fast-mode prices (this factor, or
    /// [`ModelPrice::with_fast_mode_prices`]), a call in fast mode is unpriced
    /// ([`CostError::NoFastModePrice`]), never charged the standard price. Replaces fast-mode
    /// prices given before.
    pub fn with_fast_mode(mut self, factor: PriceMultiplier) -> Result<Self, PriceError> {
        let fast = scaled_rows(&self.rows[ServiceTier::Standard.index()], factor)?;
        self.rows[ServiceTier::FastMode.index()] = fast;
        self.fast_mode = Some(factor);
        self.variants[ServiceTier::FastMode.index() - 1] = None;
        self.rescale_residency()
    }

    /// This price with fast-mode prices of their own (a variant like batch's: each component
    /// not given falls back to the standard one; LiteLLM's `*_ultrafast` keys). An empty
    /// schedule gives none. Replaces fast-mode prices given before.
    pub fn with_fast_mode_prices(mut self, schedule: PriceSchedule) -> Result<Self, PriceError> {
        let at = ServiceTier::FastMode.index();
        let mut schedule = Some(schedule).filter(|s| !s.is_empty());
        if let Some(schedule) = &mut schedule {
            sort_tiers(schedule)?;
        }
        self.rows[at] = match &schedule {
            Some(schedule) => derive_rows(&self.standard, Some(schedule)),
            None => Vec::new(),
        };
        self.variants[at - 1] = schedule;
        self.fast_mode = None;
        self.rescale_residency()
    }

    /// The data-residency prices again, after the rows they scale changed.
    fn rescale_residency(mut self) -> Result<Self, PriceError> {
        match self.data_residency.take() {
            Some(residency) => self.with_data_residency(residency.factor),
            None => Ok(self),
        }
    }

    /// The factor fast mode applies to the standard token prices; `None` when unknown or when
    /// fast mode has prices of its own ([`ModelPrice::schedule`] gives them).
    pub fn fast_mode(&self) -> Option<PriceMultiplier> {
        self.fast_mode
    }

    /// Fast mode has a price here, as a factor or as prices of its own.
    pub fn has_fast_mode_price(&self) -> bool {
        !self.rows[ServiceTier::FastMode.index()].is_empty()
    }

    /// This price with the factor a data-residency endpoint applies to its token prices (`1.1`
    /// for 10% more; `1` where such an endpoint costs the same). Per-call fees (web searches,
    /// file search calls) are not scaled. Without it, a data-residency call of the model is
    /// unpriced ([`CostError::NoDataResidencyPrice`]), never charged the list price.
    pub fn with_data_residency(mut self, factor: PriceMultiplier) -> Result<Self, PriceError> {
        let mut rows = TierRows::default();
        for (tier, out) in self.rows.iter().zip(rows.iter_mut()) {
            *out = scaled_rows(tier, factor)?;
        }
        self.data_residency = Some(Box::new(ResidencyPrices { factor, rows }));
        Ok(self)
    }

    /// The factor a data-residency endpoint applies to the token prices; `None` when unknown.
    pub fn data_residency(&self) -> Option<PriceMultiplier> {
        self.data_residency
            .as_ref()
            .map(|residency| residency.factor)
    }

    /// This price with the price of one web search at each search context size (low, medium,
    /// high; LiteLLM's `search_context_cost_per_query`, Perplexity's request fees): a call
    /// whose terms state a size is charged that size's price per search, at every service
    /// tier and unscaled by data residency, as searches are; a size given `None`, and a call
    /// that states no size, is priced as medium is, and medium without a price of its own at
    /// the search price of the schedule (`web_search_requests`). Replaces the sizes' prices
    /// given before.
    pub fn with_web_search_by_context_size(mut self, prices: [Option<TokenPrice>; 3]) -> Self {
        self.web_search_by_context_size = prices;
        self
    }

    /// The price of one web search per search context size, in the order of
    /// [`SearchContextSize::ALL`]; `None` where the size has no price of its own.
    pub fn web_search_by_context_size(&self) -> [Option<TokenPrice>; 3] {
        self.web_search_by_context_size
    }

    /// The price of one web search of a call on `terms`, whose rates are `rates`.
    fn web_search_price(&self, rates: &Rates, terms: CallTerms) -> Option<TokenPrice> {
        let size = terms
            .search_context_size
            .unwrap_or(SearchContextSize::Medium);
        self.web_search_by_context_size[size.index()].or(rates.web_search_requests)
    }

    /// The standard schedule as declared.
    pub fn standard(&self) -> &PriceSchedule {
        &self.standard
    }

    /// The declared schedule of a service tier, if the model has one.
    /// Fast mode's is there when it has prices of its own, not when it is a factor on the
    /// standard ones ([`ModelPrice::fast_mode`]).
    pub fn schedule(&self, tier: ServiceTier) -> Option<&PriceSchedule> {
        match tier {
            ServiceTier::Standard => Some(&self.standard),
            other => self.variants[other.index() - 1].as_ref(),
        }
    }

    /// The effective rates for a request with `input_tokens` at `service_tier`, with the
    /// service tier and context tier they belong to. Fast mode without a price gives the
    /// standard rates here (and says so); [`ModelPrice::rates_for`] refuses it.
    pub fn rates(
        &self,
        input_tokens: u64,
        service_tier: ServiceTier,
    ) -> (&Rates, ServiceTier, Option<u64>) {
        let applied = self
            .applied_tier(service_tier)
            .unwrap_or(ServiceTier::Standard);
        Self::rates_in(&self.rows, applied, input_tokens)
    }

    /// The effective rates for a request with `input_tokens` on the given terms (see
    /// [`ModelPrice::rates`]); an error for a data-residency or fast-mode call of a model whose
    /// price there is not known.
    pub fn rates_for(
        &self,
        input_tokens: u64,
        terms: CallTerms,
    ) -> Result<(&Rates, ServiceTier, Option<u64>), CostError> {
        let applied = self
            .applied_tier(terms.service_tier)
            .ok_or(CostError::NoFastModePrice)?;
        if !terms.data_residency {
            return Ok(Self::rates_in(&self.rows, applied, input_tokens));
        }
        match &self.data_residency {
            Some(residency) => Ok(Self::rates_in(&residency.rows, applied, input_tokens)),
            None => Err(CostError::NoDataResidencyPrice),
        }
    }

    /// The service tier whose prices apply: the one asked, or standard when the model has no
    /// variant for it; `None` for fast mode without a price (a premium never falls back).
    fn applied_tier(&self, service_tier: ServiceTier) -> Option<ServiceTier> {
        match service_tier {
            ServiceTier::Standard => Some(ServiceTier::Standard),
            ServiceTier::FastMode => self.has_fast_mode_price().then_some(ServiceTier::FastMode),
            other if self.variants[other.index() - 1].is_some() => Some(other),
            _ => Some(ServiceTier::Standard),
        }
    }

    fn rates_in(
        rows: &TierRows,
        applied: ServiceTier,
        input_tokens: u64,
    ) -> (&Rates, ServiceTier, Option<u64>) {
        let rows = &rows[applied.index()];
        // Rows are ordered: base first, then ascending thresholds. The last crossed wins.
        let mut chosen = &rows[0];
        for row in &rows[1..] {
            match row.above_input_tokens {
                Some(n) if input_tokens > n => chosen = row,
                _ => break,
            }
        }
        (&chosen.rates, applied, chosen.above_input_tokens)
    }

    /// The most a call within `bound` can cost at `service_tier`, before its answer says what
    /// its tokens were: every prompt token at the dearest of the text, audio and image input prices,
    /// every completion token at the dearest of the output, reasoning, audio and image prices
    /// the model declares, and the searches at the search price (of the size the terms state;
    /// of the dearest size when they state none). Cache reads and writes are left
    /// out (whether a prompt writes the cache is the caller's choice), and so are file search
    /// calls (no bound on them is given); so are searches when the model declares no search
    /// price (they cannot be bounded: a call that runs them is unpriced).
    pub fn worst_case(
        &self,
        bound: &CallBound,
        terms: impl Into<CallTerms>,
    ) -> Result<Money, CostError> {
        let CallBound {
            input,
            max_output,
            max_web_searches,
        } = *bound;
        for (kind, value) in [
            (TokenKind::Input, input),
            (TokenKind::Output, max_output),
            (TokenKind::WebSearchRequests, max_web_searches),
        ] {
            if value > kind.max_per_call() {
                return Err(UsageError::Absurd { kind, value }.into());
            }
        }
        let terms = terms.into();
        let (rates, ..) = self.rates_for(input, terms)?;
        let input_price = rates.input.max(rates.audio_input).max(rates.image_input);
        let output_price = [
            rates.output,
            rates.reasoning,
            rates.audio_output,
            rates.image_output,
        ]
        .into_iter()
        .flatten()
        .max();
        let times = |price: TokenPrice, tokens: u64| price.times(tokens).ok_or(CostError::Overflow);
        let output = match output_price {
            Some(price) => times(price, max_output)?,
            None if max_output == 0 => Money::ZERO,
            None => {
                return Err(CostError::MissingPrice {
                    kind: TokenKind::Output,
                    tokens: max_output,
                });
            }
        };
        // A call that states no size may learn it from its answer: bound it at the dearest.
        let search_price = match terms.search_context_size {
            Some(_) => self.web_search_price(rates, terms),
            None => SearchContextSize::ALL
                .into_iter()
                .filter_map(|size| {
                    let stated = CallTerms {
                        search_context_size: Some(size),
                        ..terms
                    };
                    self.web_search_price(rates, stated)
                })
                .max(),
        };
        let searches = match search_price {
            Some(price) => times(price, max_web_searches)?,
            None => Money::ZERO,
        };
        [output, searches]
            .into_iter()
            .try_fold(times(input_price, input)?, |sum, part| {
                sum.checked_add(part)
            })
            .ok_or(CostError::Overflow)
    }

    /// Prices one call, exactly.
    pub fn cost(&self, usage: &Usage, terms: impl Into<CallTerms>) -> Result<Priced, CostError> {
        usage.validate()?;
        let terms = terms.into();
        let (rates, applied, context_tier) = self.rates_for(usage.input, terms)?;
        let times = |price: TokenPrice, tokens: u64| price.times(tokens).ok_or(CostError::Overflow);
        let need = |price: Option<TokenPrice>, kind: TokenKind, tokens: u64| match price {
            Some(price) => times(price, tokens),
            None if tokens == 0 => Ok(Money::ZERO),
            None => Err(CostError::MissingPrice { kind, tokens }),
        };
        let uncached = usage.uncached_input();
        let visible_output = usage.visible_output();
        let cached_text = usage
            .cache_read
            .saturating_sub(usage.cache_read_audio)
            .saturating_sub(usage.cache_read_image);
        let mut cache_read = times(rates.cache_read, cached_text)?;
        // What the cache reads would have cost uncached.
        let mut uncached_cache_reads = times(rates.input, cached_text)?;
        let (mut audio_input, mut audio_output, mut image_output, mut web_search) =
            (Money::ZERO, Money::ZERO, Money::ZERO, Money::ZERO);
        let (mut image_input, mut file_search) = (Money::ZERO, Money::ZERO);
        let (mut image_generation, mut code_interpreter) = (Money::ZERO, Money::ZERO);
        // Most calls have no audio, no images, no searches and no hosted tools: their products
        // are skipped.
        if usage.audio_input
            | usage.audio_output
            | usage.cache_read_audio
            | usage.image_output
            | usage.web_search_requests
            | usage.image_input
            | usage.cache_read_image
            | usage.file_search_calls
            | usage.image_generation_calls
            | usage.code_interpreter_sessions
            != 0
        {
            let add = |a: Money, b: Money| a.checked_add(b).ok_or(CostError::Overflow);
            for (cache_price, uncached_price, tokens) in [
                (
                    rates.cache_read_audio,
                    rates.audio_input,
                    usage.cache_read_audio,
                ),
                (
                    rates.cache_read_image,
                    rates.image_input,
                    usage.cache_read_image,
                ),
            ] {
                cache_read = add(cache_read, times(cache_price, tokens)?)?;
                uncached_cache_reads = add(uncached_cache_reads, times(uncached_price, tokens)?)?;
            }
            audio_input = times(rates.audio_input, usage.audio_input)?;
            image_input = times(rates.image_input, usage.image_input)?;
            audio_output = need(
                rates.audio_output,
                TokenKind::AudioOutput,
                usage.audio_output,
            )?;
            image_output = need(
                rates.image_output,
                TokenKind::ImageOutput,
                usage.image_output,
            )?;
            web_search = need(
                self.web_search_price(rates, terms),
                TokenKind::WebSearchRequests,
                usage.web_search_requests,
            )?;
            file_search = need(
                rates.file_search_calls,
                TokenKind::FileSearchCalls,
                usage.file_search_calls,
            )?;
            image_generation = need(
                rates.image_generation_calls,
                TokenKind::ImageGenerationCalls,
                usage.image_generation_calls,
            )?;
            code_interpreter = need(
                rates.code_interpreter_sessions,
                TokenKind::CodeInterpreterSessions,
                usage.code_interpreter_sessions,
            )?;
        }
        let breakdown = CostBreakdown {
            uncached_input: times(rates.input, uncached)?,
            cache_read,
            cache_write: times(rates.cache_write, usage.cache_write)?,
            cache_write_1h: times(rates.cache_write_1h, usage.cache_write_1h)?,
            output: need(rates.output, TokenKind::Output, visible_output)?,
            reasoning: need(rates.reasoning, TokenKind::Reasoning, usage.reasoning)?,
            cache_savings: uncached_cache_reads
                .checked_sub(cache_read)
                .ok_or(CostError::Overflow)?,
            audio_input,
            audio_output,
            image_output,
            web_search,
            image_input,
            file_search,
            image_generation,
            code_interpreter,
            provider_reported: Money::ZERO,
        };
        // The components are each at most 10⁹ × price; check their sum stays in range.
        [
            breakdown.image_input,
            breakdown.file_search,
            breakdown.image_generation,
            breakdown.code_interpreter,
            breakdown.cache_read,
            breakdown.cache_write,
            breakdown.cache_write_1h,
            breakdown.output,
            breakdown.reasoning,
            breakdown.audio_input,
            breakdown.audio_output,
            breakdown.image_output,
            breakdown.web_search,
        ]
        .iter()
        .try_fold(breakdown.uncached_input, |acc, m| acc.checked_add(*m))
        .ok_or(CostError::Overflow)?;
        Ok(Priced {
            breakdown,
            service_tier: applied,
            context_tier,
            data_residency: terms.data_residency,
        })
    }
}

/// Sorts a schedule's context tiers; an error for two with one threshold.
fn sort_tiers(schedule: &mut PriceSchedule) -> Result<(), PriceError> {
    schedule.tiers.sort_by_key(|t| t.above_input_tokens);
    match schedule
        .tiers
        .windows(2)
        .find(|w| w[0].above_input_tokens == w[1].above_input_tokens)
    {
        Some(pair) => Err(PriceError::DuplicateTier(pair[0].above_input_tokens)),
        None => Ok(()),
    }
}

/// `rows` with every token price times `factor` (per-call fees unscaled); an error when a
/// product is not exact.
fn scaled_rows(rows: &[RateRow], factor: PriceMultiplier) -> Result<Vec<RateRow>, PriceError> {
    let scale = |price: TokenPrice| {
        price
            .scaled(factor)
            .ok_or(PriceError::InexactMultiplier(factor))
    };
    let optional = |price: Option<TokenPrice>| price.map(scale).transpose();
    rows.iter()
        .map(|row| {
            let r = &row.rates;
            Ok(RateRow {
                above_input_tokens: row.above_input_tokens,
                rates: Rates {
                    input: scale(r.input)?,
                    output: optional(r.output)?,
                    cache_read: scale(r.cache_read)?,
                    cache_write: scale(r.cache_write)?,
                    cache_write_1h: scale(r.cache_write_1h)?,
                    reasoning: optional(r.reasoning)?,
                    audio_input: scale(r.audio_input)?,
                    audio_output: optional(r.audio_output)?,
                    cache_read_audio: scale(r.cache_read_audio)?,
                    image_output: optional(r.image_output)?,
                    web_search_requests: r.web_search_requests,
                    image_input: scale(r.image_input)?,
                    cache_read_image: scale(r.cache_read_image)?,
                    file_search_calls: r.file_search_calls,
                    image_generation_calls: r.image_generation_calls,
                    code_interpreter_sessions: r.code_interpreter_sessions,
                },
            })
        })
        .collect()
}

/// Applies the fallback rules once, for every context tier of one service tier.
fn derive_rows(standard: &PriceSchedule, variant: Option<&PriceSchedule>) -> Vec<RateRow> {
    let mut thresholds: Vec<u64> = standard
        .tiers
        .iter()
        .chain(variant.iter().flat_map(|v| v.tiers.iter()))
        .map(|t| t.above_input_tokens)
        .collect();
    thresholds.sort_unstable();
    thresholds.dedup();
    std::iter::once(None)
        .chain(thresholds.into_iter().map(Some))
        .map(|above| RateRow {
            above_input_tokens: above,
            rates: derive_rates(standard, variant, above),
        })
        .collect()
}

fn derive_rates(
    standard: &PriceSchedule,
    variant: Option<&PriceSchedule>,
    above: Option<u64>,
) -> Rates {
    // Lookup order: variant tier, standard tier, variant base, standard base.
    let layers: [Option<&ComponentPrices>; 4] = [
        above.and_then(|n| variant.and_then(|v| v.tier(n))),
        above.and_then(|n| standard.tier(n)),
        variant.map(|v| &v.base),
        Some(&standard.base),
    ];
    let declared = |kind: TokenKind| layers.iter().flatten().find_map(|p| p.get(kind));
    // The standard base input price exists (checked in `ModelPrice::new`).
    let input = declared(TokenKind::Input).unwrap_or_default();
    let output = declared(TokenKind::Output);
    let cache_write = declared(TokenKind::CacheWrite).unwrap_or(input);
    let cache_read = declared(TokenKind::CacheRead).unwrap_or(input);
    Rates {
        input,
        output,
        cache_read,
        cache_write,
        cache_write_1h: declared(TokenKind::CacheWrite1h).unwrap_or(cache_write),
        reasoning: declared(TokenKind::Reasoning).or(output),
        audio_input: declared(TokenKind::AudioInput).unwrap_or(input),
        audio_output: declared(TokenKind::AudioOutput).or(output),
        cache_read_audio: declared(TokenKind::CacheReadAudio).unwrap_or(cache_read),
        image_output: declared(TokenKind::ImageOutput),
        web_search_requests: declared(TokenKind::WebSearchRequests),
        image_input: declared(TokenKind::ImageInput).unwrap_or(input),
        cache_read_image: declared(TokenKind::CacheReadImage).unwrap_or(cache_read),
        file_search_calls: declared(TokenKind::FileSearchCalls),
        image_generation_calls: declared(TokenKind::ImageGenerationCalls),
        code_interpreter_sessions: declared(TokenKind::CodeInterpreterSessions),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(per_million: &str) -> Option<TokenPrice> {
        TokenPrice::per_million(per_million).ok()
    }

    fn usd(text: &str) -> Money {
        Money::from_decimal(text).unwrap_or_default()
    }

    fn tiered() -> ModelPrice {
        let mut standard = PriceSchedule::flat(ComponentPrices {
            input: p("1.25"),
            output: p("10"),
            cache_read: p("0.125"),
            ..Default::default()
        });
        *standard.tier_mut(200_000) = ComponentPrices {
            input: p("2.5"),
            output: p("15"),
            ..Default::default()
        };
        ModelPrice::new(standard, [None, None, None]).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn tier_applies_strictly_above_its_threshold() {
        let model = tiered();
        let at = model.cost(&Usage::new(200_000, 0), ServiceTier::Standard);
        let above = model.cost(&Usage::new(200_001, 0), ServiceTier::Standard);
        assert_eq!(
            at.map(|q| (q.total(), q.context_tier)),
            Ok((usd("0.25"), None))
        );
        assert_eq!(
            above.map(|q| (q.total(), q.context_tier)),
            Ok((usd("0.5000025"), Some(200_000)))
        );
    }

    #[test]
    fn inside_a_tier_an_untiered_component_keeps_its_base_price() {
        // The tier declares no cache-read price: the base cache-read price applies.
        let usage = Usage {
            input: 300_000,
            cache_read: 100_000,
            ..Default::default()
        };
        let q = tiered()
            .cost(&usage, ServiceTier::Standard)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(q.breakdown.cache_read, usd("0.0125"));
        assert_eq!(q.breakdown.uncached_input, usd("0.5"));
        assert_eq!(q.breakdown.cache_savings, usd("0.2375"));
    }

    #[test]
    fn absent_cache_prices_use_the_input_price_of_the_tier() {
        let mut standard = PriceSchedule::flat(ComponentPrices {
            input: p("1"),
            output: p("2"),
            ..Default::default()
        });
        standard.tier_mut(1000).input = p("3");
        let model = ModelPrice::new(standard, [None, None, None]).unwrap_or_else(|e| panic!("{e}"));
        let (rates, _, _) = model.rates(1001, ServiceTier::Standard);
        assert_eq!(
            rates.cache_read,
            TokenPrice::per_million("3").unwrap_or_default()
        );
        assert_eq!(
            rates.cache_write,
            TokenPrice::per_million("3").unwrap_or_default()
        );
        assert_eq!(
            rates.cache_write_1h,
            TokenPrice::per_million("3").unwrap_or_default()
        );
        assert_eq!(rates.reasoning, p("2"));
    }

    #[test]
    fn explicit_zero_stays_zero_and_1h_falls_back_to_5m() {
        let model = ModelPrice::flat(ComponentPrices {
            input: p("3"),
            output: p("15"),
            cache_read: p("0"),
            cache_write: p("3.75"),
            reasoning: p("0"),
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let (rates, _, _) = model.rates(10, ServiceTier::Standard);
        assert_eq!(rates.cache_read, TokenPrice::ZERO);
        assert_eq!(rates.reasoning, Some(TokenPrice::ZERO));
        assert_eq!(
            rates.cache_write_1h,
            TokenPrice::per_million("3.75").unwrap_or_default()
        );
    }

    #[test]
    fn missing_output_price_is_an_error_not_zero() {
        let model = ModelPrice::flat(ComponentPrices {
            input: p("0.02"),
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            model
                .cost(&Usage::new(1000, 0), ServiceTier::Standard)
                .is_ok()
        );
        assert_eq!(
            model.cost(&Usage::new(1000, 5), ServiceTier::Standard),
            Err(CostError::MissingPrice {
                kind: TokenKind::Output,
                tokens: 5
            })
        );
    }

    #[test]
    fn service_tier_falls_back_per_component_then_to_standard() {
        let mut standard = PriceSchedule::flat(ComponentPrices {
            input: p("2"),
            output: p("8"),
            cache_read: p("0.5"),
            ..Default::default()
        });
        standard.tier_mut(100).input = p("4");
        let flex = PriceSchedule::flat(ComponentPrices {
            input: p("1"),
            ..Default::default()
        });
        let model =
            ModelPrice::new(standard, [None, Some(flex), None]).unwrap_or_else(|e| panic!("{e}"));
        let (rates, applied, _) = model.rates(50, ServiceTier::Flex);
        assert_eq!(applied, ServiceTier::Flex);
        assert_eq!(
            rates.input,
            TokenPrice::per_million("1").unwrap_or_default()
        );
        assert_eq!(rates.output, p("8"));
        assert_eq!(
            rates.cache_read,
            TokenPrice::per_million("0.5").unwrap_or_default()
        );
        // Above the standard tier, the standard tiered input beats the variant base.
        let (rates, _, tier) = model.rates(101, ServiceTier::Flex);
        assert_eq!(
            (rates.input, tier),
            (TokenPrice::per_million("4").unwrap_or_default(), Some(100))
        );
        // No batch variant: standard prices, and the outcome says so.
        let (_, applied, _) = model.rates(50, ServiceTier::Batch);
        assert_eq!(applied, ServiceTier::Standard);
    }

    #[test]
    fn audio_tokens_are_priced_apart_and_fall_back_to_text_prices() {
        let usage = Usage {
            input: 1_000_000,
            cache_read: 200_000,
            audio_input: 300_000,
            output: 100_000,
            audio_output: 40_000,
            ..Default::default()
        };
        // gpt-4o-audio-preview's shape: audio at 16 and 8 times text.
        let audio = ModelPrice::flat(ComponentPrices {
            input: p("2.5"),
            output: p("10"),
            cache_read: p("1.25"),
            audio_input: p("40"),
            audio_output: p("80"),
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let q = audio
            .cost(&usage, ServiceTier::Standard)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(q.breakdown.uncached_input, usd("1.25")); // 500 000 text tokens
        assert_eq!(q.breakdown.cache_read, usd("0.25"));
        assert_eq!(q.breakdown.audio_input, usd("12"));
        assert_eq!(q.breakdown.output, usd("0.6")); // 60 000 text tokens
        assert_eq!(q.breakdown.audio_output, usd("3.2"));
        assert_eq!(q.total(), usd("17.3"));
        // Without audio prices, audio tokens cost what text tokens do.
        let text = ModelPrice::flat(ComponentPrices {
            audio_input: None,
            audio_output: None,
            ..audio.standard().base
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let q = text
            .cost(&usage, ServiceTier::Standard)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (q.breakdown.audio_input, q.breakdown.audio_output),
            (usd("0.75"), usd("0.4"))
        );
        assert_eq!(q.total(), usd("3.25"));
        // Audio output with no output price at all is an error, never free.
        let input_only = ModelPrice::flat(ComponentPrices {
            input: p("1"),
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            input_only.cost(
                &Usage {
                    output: 5,
                    audio_output: 5,
                    ..Default::default()
                },
                ServiceTier::Standard
            ),
            Err(CostError::MissingPrice {
                kind: TokenKind::AudioOutput,
                tokens: 5
            })
        );
    }

    #[test]
    fn cached_audio_has_a_price_of_its_own_and_saves_against_the_audio_price() {
        // gpt-realtime-mini's shape: a cached audio token costs 5 times a cached text one.
        let model = ModelPrice::flat(ComponentPrices {
            input: p("0.60"),
            cache_read: p("0.06"),
            output: p("2.40"),
            audio_input: p("10"),
            audio_output: p("20"),
            cache_read_audio: p("0.30"),
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let usage = Usage {
            input: 10_000,
            cache_read: 8_000,
            cache_read_audio: 7_000,
            audio_input: 1_500,
            output: 500,
            audio_output: 400,
            ..Default::default()
        };
        let q = model
            .cost(&usage, ServiceTier::Standard)
            .unwrap_or_else(|e| panic!("{e}"));
        // 1 000 cached text tokens × 0.06e-6 + 7 000 cached audio tokens × 0.30e-6.
        assert_eq!(q.breakdown.cache_read, usd("0.00216"));
        // 500 × 0.6e-6 + 0.00216 + 1 500 × 10e-6 + 100 × 2.4e-6 + 400 × 20e-6.
        assert_eq!(q.total(), usd("0.0257"));
        // Against 0.6e-6 for the text, 10e-6 for the audio.
        assert_eq!(q.breakdown.cache_savings, usd("0.06844"));
        // Without a cached-audio price, cached audio is a cache read like any other.
        let plain = ModelPrice::flat(ComponentPrices {
            cache_read_audio: None,
            ..model.standard().base
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let q = plain
            .cost(&usage, ServiceTier::Standard)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(q.breakdown.cache_read, usd("0.00048"));
    }

    #[test]
    fn image_output_has_its_own_price_and_none_is_never_the_text_price() {
        // Gemini 2.5 Flash Image's shape: an image token at 12 times a text one.
        let images = ModelPrice::flat(ComponentPrices {
            input: p("0.30"),
            output: p("2.50"),
            image_output: p("30"),
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let usage = Usage {
            input: 100,
            output: 1_390,
            image_output: 1_290,
            ..Default::default()
        };
        let q = images
            .cost(&usage, ServiceTier::Standard)
            .unwrap_or_else(|e| panic!("{e}"));
        // 1 290 × 30e-6 for the image, 100 × 2.5e-6 for the text, 100 × 0.3e-6 for the prompt.
        assert_eq!(q.breakdown.image_output, usd("0.0387"));
        assert_eq!(q.breakdown.output, usd("0.00025"));
        assert_eq!(q.total(), usd("0.03898"));
        // A model without an image price: the call has no price, not the text one.
        let text_only = ModelPrice::flat(ComponentPrices {
            image_output: None,
            ..images.standard().base
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            text_only.cost(&usage, ServiceTier::Standard),
            Err(CostError::MissingPrice {
                kind: TokenKind::ImageOutput,
                tokens: 1_290
            })
        );
    }

    #[test]
    fn image_input_has_its_own_prices_and_none_is_the_text_price() {
        // gpt-image-2's shape: an image prompt token at 8/5 of a text one, a cached one at 2
        // where cached text is 1.25.
        let images = ModelPrice::flat(ComponentPrices {
            input: p("5"),
            cache_read: p("1.25"),
            image_input: p("8"),
            cache_read_image: p("2"),
            output: p("10"),
            image_output: p("30"),
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let usage = Usage {
            input: 2_000,
            cache_read: 1_000,
            cache_read_image: 600,
            image_input: 500,
            output: 1_000,
            image_output: 1_000,
            ..Default::default()
        };
        let q = images
            .cost(&usage, ServiceTier::Standard)
            .unwrap_or_else(|e| panic!("{e}"));
        // Text: 500 × 5e-6; images: 500 × 8e-6; cache: 400 × 1.25e-6 + 600 × 2e-6.
        assert_eq!(q.breakdown.uncached_input, usd("0.0025"));
        assert_eq!(q.breakdown.image_input, usd("0.004"));
        assert_eq!(q.breakdown.cache_read, usd("0.0017"));
        assert_eq!(q.breakdown.image_output, usd("0.03"));
        assert_eq!(q.total(), usd("0.0382"));
        // Saved: 400 × (5 − 1.25)e-6 + 600 × (8 − 2)e-6.
        assert_eq!(q.breakdown.cache_savings, usd("0.0051"));
        // Most models bill an image prompt as text: no image prices, the text ones.
        let as_text = ModelPrice::flat(ComponentPrices {
            image_input: None,
            cache_read_image: None,
            ..images.standard().base
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let q = as_text
            .cost(&usage, ServiceTier::Standard)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(q.breakdown.uncached_input, usd("0.0025"));
        assert_eq!(q.breakdown.image_input, usd("0.0025"));
        assert_eq!(q.breakdown.cache_read, usd("0.00125"));
        // The worst case prices every prompt token at the dearest input price.
        assert_eq!(
            images.worst_case(&CallBound::tokens(1_000, 0), ServiceTier::Standard),
            Ok(usd("0.008"))
        );
    }

    #[test]
    fn file_search_calls_are_priced_per_call_and_none_is_unpriced() {
        let model = ModelPrice::flat(ComponentPrices {
            input: p("0.40"),
            output: p("1.60"),
            file_search_calls: TokenPrice::per_token("0.0025").ok(),
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let usage = Usage {
            input: 12_000,
            output: 300,
            file_search_calls: 2,
            ..Default::default()
        };
        let q = model
            .cost(&usage, ServiceTier::Standard)
            .unwrap_or_else(|e| panic!("{e}"));
        // 12 000 × 0.4e-6 + 300 × 1.6e-6 + 2 × $0.0025: the calls are half the cost.
        assert_eq!(q.breakdown.file_search, usd("0.005"));
        assert_eq!(q.total(), usd("0.01028"));
        let without = ModelPrice::flat(ComponentPrices {
            file_search_calls: None,
            ..model.standard().base
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            without.cost(&usage, ServiceTier::Standard),
            Err(CostError::MissingPrice {
                kind: TokenKind::FileSearchCalls,
                tokens: 2
            })
        );
    }

    #[test]
    fn a_search_is_priced_at_the_context_size_the_call_states() {
        // Perplexity's Sonar: $5, $8 and $12 per 1 000 requests at low, medium and high.
        let sonar = ModelPrice::flat(ComponentPrices {
            input: p("1"),
            output: p("1"),
            web_search_requests: TokenPrice::per_token("0.008").ok(),
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("{e}"))
        .with_web_search_by_context_size([
            TokenPrice::per_token("0.005").ok(),
            TokenPrice::per_token("0.008").ok(),
            TokenPrice::per_token("0.012").ok(),
        ]);
        let usage = Usage {
            input: 500,
            output: 200,
            web_search_requests: 1,
            ..Default::default()
        };
        let at = |size| CallTerms {
            search_context_size: size,
            ..CallTerms::default()
        };
        let search = |size| {
            sonar
                .cost(&usage, at(size))
                .unwrap_or_else(|e| panic!("{e}"))
                .breakdown
        };
        assert_eq!(
            search(Some(SearchContextSize::Low)).web_search,
            usd("0.005")
        );
        assert_eq!(
            search(Some(SearchContextSize::High)).web_search,
            usd("0.012")
        );
        // Not stated: medium.
        assert_eq!(search(None).web_search, usd("0.008"));
        // Perplexity's own example: 500 in, 200 out, low: $0.0057.
        assert_eq!(search(Some(SearchContextSize::Low)).total(), usd("0.0057"));
        // Tokens are not priced by the size.
        assert_eq!(search(Some(SearchContextSize::High)).output, usd("0.0002"));
        // The dearest size bounds a call that states none; a stated one bounds at its price.
        let bound = CallBound {
            max_web_searches: 2,
            ..CallBound::tokens(0, 0)
        };
        assert_eq!(sonar.worst_case(&bound, at(None)), Ok(usd("0.024")));
        assert_eq!(
            sonar.worst_case(&bound, at(Some(SearchContextSize::Low))),
            Ok(usd("0.01"))
        );

        // A model giving one search price charges it at every size; sizes without a price of
        // their own fall back to it.
        let one_price = ModelPrice::flat(ComponentPrices {
            input: p("1"),
            output: p("1"),
            web_search_requests: TokenPrice::per_token("0.01").ok(),
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let partial = one_price.clone().with_web_search_by_context_size([
            None,
            None,
            TokenPrice::per_token("0.02").ok(),
        ]);
        for size in SearchContextSize::ALL {
            let q = one_price
                .cost(&usage, at(Some(size)))
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(q.breakdown.web_search, usd("0.01"), "{size}");
        }
        let price_at = |size| {
            partial
                .cost(&usage, at(Some(size)))
                .unwrap_or_else(|e| panic!("{e}"))
                .breakdown
                .web_search
        };
        assert_eq!(price_at(SearchContextSize::Low), usd("0.01"));
        assert_eq!(price_at(SearchContextSize::High), usd("0.02"));

        // Sizes priced, but neither medium nor a schedule price: a call stating no size is
        // unpriced, never charged nothing.
        let no_medium = ModelPrice::flat(ComponentPrices {
            input: p("1"),
            output: p("1"),
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("{e}"))
        .with_web_search_by_context_size([
            TokenPrice::per_token("0.005").ok(),
            None,
            None,
        ]);
        assert_eq!(
            no_medium.cost(&usage, at(None)),
            Err(CostError::MissingPrice {
                kind: TokenKind::WebSearchRequests,
                tokens: 1
            })
        );
    }

    #[test]
    fn search_context_sizes_as_providers_spell_them() {
        for (text, size) in [
            ("low", SearchContextSize::Low),
            ("Medium", SearchContextSize::Medium),
            (" HIGH ", SearchContextSize::High),
            ("search_context_size_low", SearchContextSize::Low),
        ] {
            assert_eq!(SearchContextSize::parse(text), Ok(size), "{text}");
        }
        for size in SearchContextSize::ALL {
            assert_eq!(SearchContextSize::parse(size.as_str()), Ok(size));
        }
        assert_eq!(
            SearchContextSize::parse("huge"),
            Err(UnknownSearchContextSize("huge".into()))
        );
    }

    #[test]
    fn data_residency_scales_the_token_prices_and_an_unknown_factor_leaves_the_call_unpriced() {
        let mut schedule = PriceSchedule::flat(ComponentPrices {
            input: p("3"),
            output: p("15"),
            cache_read: p("0.30"),
            web_search_requests: TokenPrice::per_token("0.01").ok(),
            ..Default::default()
        });
        *schedule.tier_mut(200_000) = ComponentPrices {
            input: p("6"),
            output: p("22.50"),
            ..Default::default()
        };
        let batch = PriceSchedule::flat(ComponentPrices {
            input: p("1.50"),
            output: p("7.50"),
            ..Default::default()
        });
        let list =
            ModelPrice::new(schedule, [Some(batch), None, None]).unwrap_or_else(|e| panic!("{e}"));
        let factor = PriceMultiplier::parse("1.1").unwrap_or_else(|e| panic!("{e}"));
        let regional = list
            .clone()
            .with_data_residency(factor)
            .unwrap_or_else(|e| panic!("{e}"));
        let residency = |tier| CallTerms {
            service_tier: tier,
            data_residency: true,
            search_context_size: None,
        };
        let usage = Usage {
            input: 10_000,
            cache_read: 4_000,
            output: 1_000,
            web_search_requests: 2,
            ..Default::default()
        };
        let at = |model: &ModelPrice, terms: CallTerms| {
            model.cost(&usage, terms).unwrap_or_else(|e| panic!("{e}"))
        };
        // 6 000 × 3.3e-6 + 4 000 × 0.33e-6 + 1 000 × 16.5e-6 + 2 × $0.01 (searches unscaled).
        let q = at(&regional, residency(ServiceTier::Standard));
        assert_eq!(q.total(), usd("0.05762"));
        assert_eq!(q.breakdown.web_search, usd("0.02"));
        assert!(q.data_residency);
        // The same call elsewhere: the list price.
        let q = at(&regional, ServiceTier::Standard.into());
        assert_eq!(q.total(), usd("0.0542"));
        assert!(!q.data_residency);
        // Batch and context tiers are scaled too: 10 000 × 1.65e-6 + 1 000 × 8.25e-6 at batch;
        // above 200 000 input tokens, 6.6e-6 and 24.75e-6.
        let plain = |input, output| Usage {
            input,
            output,
            ..Default::default()
        };
        let batch_q = regional
            .cost(&plain(10_000, 1_000), residency(ServiceTier::Batch))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(batch_q.total(), usd("0.02475"));
        let long = regional
            .cost(&plain(300_000, 1_000), residency(ServiceTier::Standard))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(long.total(), usd("2.00475"));
        assert_eq!(
            regional.worst_case(
                &CallBound::tokens(10_000, 1_000),
                residency(ServiceTier::Standard)
            ),
            Ok(usd("0.0495"))
        );
        // Without a known factor the call is unpriced, never charged the list price.
        assert_eq!(
            list.cost(&usage, residency(ServiceTier::Standard)),
            Err(CostError::NoDataResidencyPrice)
        );
        assert_eq!(
            list.worst_case(&CallBound::tokens(10, 10), residency(ServiceTier::Standard)),
            Err(CostError::NoDataResidencyPrice)
        );
        assert_eq!(list.data_residency(), None);
        assert_eq!(regional.data_residency(), Some(factor));
    }

    #[test]
    fn fast_mode_scales_the_standard_prices_and_an_unknown_factor_leaves_the_call_unpriced() {
        // Claude Opus 4.6's list prices, fast mode at 6×.
        let mut schedule = PriceSchedule::flat(ComponentPrices {
            input: p("5"),
            output: p("25"),
            cache_read: p("0.50"),
            cache_write: p("6.25"),
            web_search_requests: TokenPrice::per_token("0.01").ok(),
            ..Default::default()
        });
        *schedule.tier_mut(200_000) = ComponentPrices {
            input: p("10"),
            output: p("37.50"),
            ..Default::default()
        };
        let batch = PriceSchedule::flat(ComponentPrices {
            input: p("2.50"),
            output: p("12.50"),
            ..Default::default()
        });
        let list =
            ModelPrice::new(schedule, [Some(batch), None, None]).unwrap_or_else(|e| panic!("{e}"));
        let factor = |text| PriceMultiplier::parse(text).unwrap_or_else(|e| panic!("{e}"));
        let fast = list
            .clone()
            .with_fast_mode(factor("6"))
            .unwrap_or_else(|e| panic!("{e}"));
        let usage = Usage {
            input: 10_000,
            cache_read: 4_000,
            cache_write: 1_000,
            output: 1_000,
            web_search_requests: 2,
            ..Default::default()
        };
        let in_fast_mode = |data_residency| CallTerms {
            service_tier: ServiceTier::FastMode,
            data_residency,
            search_context_size: None,
        };
        // 5 000 × 30e-6 + 4 000 × 3e-6 + 1 000 × 37.5e-6 + 1 000 × 150e-6, and 2 × $0.01
        // (searches unscaled).
        let q = fast
            .cost(&usage, ServiceTier::FastMode)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(q.total(), usd("0.3695"));
        assert_eq!(q.breakdown.web_search, usd("0.02"));
        assert_eq!(q.service_tier, ServiceTier::FastMode);
        // Context tiers scale with their own prices: above 200 000, 60e-6 and 225e-6.
        let long = fast
            .cost(&Usage::new(300_000, 1_000), ServiceTier::FastMode)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(long.total(), usd("18.225"));
        assert_eq!(
            fast.worst_case(&CallBound::tokens(10_000, 1_000), ServiceTier::FastMode),
            Ok(usd("0.45"))
        );
        // With US-only inference too: both factors, whichever was given first.
        let both = fast
            .clone()
            .with_data_residency(factor("1.1"))
            .unwrap_or_else(|e| panic!("{e}"));
        let both_other_way = list
            .clone()
            .with_data_residency(factor("1.1"))
            .and_then(|price| price.with_fast_mode(factor("6")))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(both, both_other_way);
        let q = both
            .cost(&Usage::new(10_000, 1_000), in_fast_mode(true))
            .unwrap_or_else(|e| panic!("{e}"));
        // 10 000 × 33e-6 + 1 000 × 165e-6.
        assert_eq!(q.total(), usd("0.495"));
        assert!(q.data_residency);
        // A model without the factor: fast mode is unpriced, never charged the standard price
        // (the other tiers still fall back to standard); `rates` says standard applied.
        assert_eq!(
            list.cost(&usage, ServiceTier::FastMode),
            Err(CostError::NoFastModePrice)
        );
        assert_eq!(
            list.worst_case(&CallBound::tokens(10, 10), ServiceTier::FastMode),
            Err(CostError::NoFastModePrice)
        );
        assert_eq!(
            list.rates(10, ServiceTier::FastMode).1,
            ServiceTier::Standard
        );
        assert_eq!(
            list.cost(&usage, ServiceTier::Flex).map(|q| q.service_tier),
            Ok(ServiceTier::Standard)
        );
        // Fast mode without its residency price, residency without fast mode's: unpriced.
        let regional = list
            .clone()
            .with_data_residency(factor("1.1"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            regional.cost(&usage, in_fast_mode(true)),
            Err(CostError::NoFastModePrice)
        );
        assert_eq!(
            fast.cost(&usage, in_fast_mode(true)),
            Err(CostError::NoDataResidencyPrice)
        );
        assert_eq!(
            (list.fast_mode(), fast.fast_mode()),
            (None, Some(factor("6")))
        );
        assert_eq!(fast.schedule(ServiceTier::FastMode), None);
    }

    #[test]
    fn service_tier_names_as_providers_spell_them() {
        for (name, tier) in [
            ("default", ServiceTier::Standard),
            ("auto", ServiceTier::Standard),
            // Anthropic's request value for standard capacity only.
            ("standard_only", ServiceTier::Standard),
            ("", ServiceTier::Standard),
            ("Batches", ServiceTier::Batch),
            ("flex", ServiceTier::Flex),
            ("priority", ServiceTier::Priority),
            // OpenAI's priority processing, renamed.
            ("fast", ServiceTier::Priority),
            (" FAST ", ServiceTier::Priority),
            // Gemini's enum spelling.
            ("SERVICE_TIER_PRIORITY", ServiceTier::Priority),
            ("SERVICE_TIER_FLEX", ServiceTier::Flex),
            ("SERVICE_TIER_STANDARD", ServiceTier::Standard),
            ("SERVICE_TIER_UNSPECIFIED", ServiceTier::Standard),
            // Anthropic's fast mode, OpenAI's Ultrafast.
            ("fast_mode", ServiceTier::FastMode),
            ("ultrafast", ServiceTier::FastMode),
        ] {
            assert_eq!(ServiceTier::parse(name), Ok(tier), "{name}");
        }
        for unknown in ["scale", "turbo", "SERVICE_TIER_SCALE"] {
            assert_eq!(
                ServiceTier::parse(unknown),
                Err(UnknownServiceTier(unknown.to_owned()))
            );
        }
    }

    #[test]
    fn a_service_tier_is_shown_by_its_name_and_read_back_from_it() {
        let names = ServiceTier::ALL.map(|tier| tier.to_string());
        assert_eq!(
            names,
            ["standard", "batch", "flex", "priority", "fast_mode"].map(str::to_owned)
        );
        for (tier, name) in ServiceTier::ALL.into_iter().zip(&names) {
            assert_eq!(tier.as_str(), name);
            assert_eq!(ServiceTier::parse(name), Ok(tier), "{name}");
        }
    }

    /// A breakdown whose components are distinct powers of two (in money units), so that a sum
    /// that left one out, counted one twice or subtracted one shows in the total's bits.
    fn breakdown_of_powers_of_two(shift: u32) -> CostBreakdown {
        let unit = |bit: u32| Money::from_units(1 << (bit + shift));
        CostBreakdown {
            uncached_input: unit(0),
            cache_read: unit(1),
            cache_write: unit(2),
            cache_write_1h: unit(3),
            output: unit(4),
            reasoning: unit(5),
            audio_input: unit(6),
            audio_output: unit(7),
            image_output: unit(8),
            web_search: unit(9),
            image_input: unit(10),
            file_search: unit(11),
            image_generation: unit(12),
            code_interpreter: unit(13),
            provider_reported: unit(14),
            cache_savings: unit(15),
        }
    }

    #[test]
    fn a_breakdown_total_is_the_sum_of_its_fifteen_components_without_the_savings() {
        let breakdown = breakdown_of_powers_of_two(0);
        // Bits 0..=14 set, bit 15 (the savings) clear.
        assert_eq!(breakdown.total(), Money::from_units((1 << 15) - 1));
        assert_eq!(
            Priced {
                breakdown,
                service_tier: ServiceTier::Standard,
                context_tier: None,
                data_residency: false,
            }
            .total(),
            Money::from_units((1 << 15) - 1)
        );
    }

    #[test]
    fn breakdowns_add_component_by_component() {
        let sum = breakdown_of_powers_of_two(0).saturating_add(breakdown_of_powers_of_two(20));
        let expected = |bit: u32| Money::from_units((1 << bit) + (1 << (bit + 20)));
        assert_eq!(
            sum,
            CostBreakdown {
                uncached_input: expected(0),
                cache_read: expected(1),
                cache_write: expected(2),
                cache_write_1h: expected(3),
                output: expected(4),
                reasoning: expected(5),
                audio_input: expected(6),
                audio_output: expected(7),
                image_output: expected(8),
                web_search: expected(9),
                image_input: expected(10),
                file_search: expected(11),
                image_generation: expected(12),
                code_interpreter: expected(13),
                provider_reported: expected(14),
                cache_savings: expected(15),
            }
        );
        let most = CostBreakdown {
            output: Money::from_units(i128::MAX),
            ..Default::default()
        };
        assert_eq!(
            most.saturating_add(breakdown_of_powers_of_two(0)).output,
            Money::from_units(i128::MAX)
        );
    }

    #[test]
    fn a_call_with_several_of_the_rarer_kinds_at_once_is_charged_for_each() {
        // The rarer kinds (audio, images, searches, hosted tools) are priced only when one of
        // them is nonzero. Whichever two of them a call has, with equal counts, and all of them,
        // each adds what it adds alone: the call's cost is linear in its counts.
        let price = |text| TokenPrice::per_token(text).ok();
        let model = ModelPrice::flat(ComponentPrices {
            input: price("1"),
            output: price("2"),
            cache_read: price("0.5"),
            audio_input: price("3"),
            audio_output: price("4"),
            cache_read_audio: price("0.25"),
            image_output: price("5"),
            web_search_requests: price("7"),
            image_input: price("6"),
            cache_read_image: price("0.125"),
            file_search_calls: price("8"),
            image_generation_calls: price("9"),
            code_interpreter_sessions: price("10"),
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("{e}"));
        // Every kind but text's (a kind added later fails here until the model above prices it).
        let rarer: Vec<TokenKind> = TokenKind::ALL
            .into_iter()
            .filter(|kind| {
                !matches!(
                    kind,
                    TokenKind::Input
                        | TokenKind::CacheRead
                        | TokenKind::CacheWrite
                        | TokenKind::CacheWrite1h
                        | TokenKind::Output
                        | TokenKind::Reasoning
                )
            })
            .collect();
        let base = Usage {
            input: 100,
            cache_read: 10,
            output: 100,
            ..Default::default()
        };
        let units = |usage: &Usage| {
            model
                .cost(usage, ServiceTier::Standard)
                .map(|q| q.total().units())
                .unwrap_or_else(|e| panic!("{usage:?}: {e}"))
        };
        let with = |kinds: &[TokenKind]| {
            let mut usage = base;
            for &kind in kinds {
                usage.set(kind, 3);
            }
            usage
        };
        let alone: Vec<i128> = rarer
            .iter()
            .map(|&kind| units(&with(&[kind])) - units(&base))
            .collect();
        assert!(alone.iter().all(|&added| added != 0), "{alone:?}");
        for (i, &first) in rarer.iter().enumerate() {
            for (j, &second) in rarer.iter().enumerate().skip(i + 1) {
                assert_eq!(
                    units(&with(&[first, second])) - units(&base),
                    alone[i] + alone[j],
                    "{first:?} and {second:?}"
                );
            }
        }
        assert_eq!(
            units(&with(&rarer)) - units(&base),
            alone.iter().sum::<i128>()
        );
    }

    #[test]
    fn a_service_tier_schedule_without_prices_is_left_out() {
        let standard = PriceSchedule::flat(ComponentPrices {
            input: p("1"),
            output: p("2"),
            ..Default::default()
        });
        let mut empty_flex = PriceSchedule::flat(ComponentPrices::default());
        *empty_flex.tier_mut(100) = ComponentPrices::default();
        let model = ModelPrice::new(
            standard,
            [
                Some(PriceSchedule::flat(ComponentPrices::default())),
                Some(empty_flex),
                None,
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(model.schedule(ServiceTier::Batch), None);
        assert_eq!(model.schedule(ServiceTier::Flex), None);
        let priced = model.cost(&Usage::new(1_000_000, 0), ServiceTier::Batch);
        assert_eq!(
            priced.map(|q| (q.total(), q.service_tier)),
            Ok((usd("1"), ServiceTier::Standard))
        );
    }

    #[test]
    fn a_worst_case_takes_a_bound_at_each_limit_and_refuses_one_past_it() {
        let model = ModelPrice::flat(ComponentPrices {
            input: p("1"),
            output: p("2"),
            web_search_requests: TokenPrice::per_thousand("10").ok(),
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let at_limits = CallBound {
            input: TokenKind::Input.max_per_call(),
            max_output: TokenKind::Output.max_per_call(),
            max_web_searches: TokenKind::WebSearchRequests.max_per_call(),
        };
        assert!(
            model
                .worst_case(&at_limits, ServiceTier::Standard)
                .is_ok_and(|cost| !cost.is_zero())
        );
        for (kind, past) in [
            (
                TokenKind::Input,
                CallBound {
                    input: at_limits.input + 1,
                    ..at_limits
                },
            ),
            (
                TokenKind::Output,
                CallBound {
                    max_output: at_limits.max_output + 1,
                    ..at_limits
                },
            ),
            (
                TokenKind::WebSearchRequests,
                CallBound {
                    max_web_searches: at_limits.max_web_searches + 1,
                    ..at_limits
                },
            ),
        ] {
            assert_eq!(
                model.worst_case(&past, ServiceTier::Standard),
                Err(UsageError::Absurd {
                    kind,
                    value: kind.max_per_call() + 1
                }
                .into())
            );
        }
    }

    #[test]
    fn a_data_residency_factor_is_a_positive_exact_decimal() {
        let parse = PriceMultiplier::parse;
        assert_eq!(parse("1.1").map(|m| m.to_string()), Ok("1.1".to_owned()));
        assert_eq!(parse(" 1 ").map(|m| m.to_string()), Ok("1".to_owned()));
        assert!(parse("0").is_err());
        assert!(parse("-1.1").is_err());
        assert!(parse("1.0000001").is_err());
        assert!(parse("ten").is_err());
        // A price with all 24 decimals used cannot be scaled by 1.1 exactly.
        let finest = ModelPrice::flat(ComponentPrices {
            input: TokenPrice::from_units(1),
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let factor = parse("1.1").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            finest.with_data_residency(factor).err(),
            Some(PriceError::InexactMultiplier(factor))
        );
    }

    #[test]
    fn the_worst_case_prices_every_token_at_the_dearest_price_it_could_have() {
        let model = |prices: ComponentPrices| {
            ModelPrice::flat(ComponentPrices {
                input: p("1"),
                output: p("4"),
                ..prices
            })
            .unwrap_or_else(|e| panic!("{e}"))
        };
        let worst = |model: &ModelPrice| {
            model.worst_case(
                &CallBound::tokens(1_000_000, 100_000),
                ServiceTier::Standard,
            )
        };
        // Text only: $1 + $0.40.
        assert_eq!(worst(&model(ComponentPrices::default())), Ok(usd("1.4")));
        // Audio dearer on both sides: $10 + $2.
        let audio = model(ComponentPrices {
            audio_input: p("10"),
            audio_output: p("20"),
            ..Default::default()
        });
        assert_eq!(worst(&audio), Ok(usd("12")));
        // Reasoning or images dearer than the output: the dearest of them.
        let reasoning_and_images = model(ComponentPrices {
            reasoning: p("6"),
            image_output: p("30"),
            ..Default::default()
        });
        assert_eq!(worst(&reasoning_and_images), Ok(usd("4")));
        // Cheaper audio does not lower it; cache prices are not in it.
        let cheap_audio = model(ComponentPrices {
            audio_input: p("0.5"),
            cache_write_1h: p("2"),
            ..Default::default()
        });
        assert_eq!(worst(&cheap_audio), Ok(usd("1.4")));
        // No output price: unbounded, an error.
        let input_only = ModelPrice::flat(ComponentPrices {
            input: p("1"),
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            worst(&input_only),
            Err(CostError::MissingPrice { .. })
        ));
        assert_eq!(
            input_only.worst_case(&CallBound::tokens(1_000, 0), ServiceTier::Standard),
            Ok(usd("0.001"))
        );
        // Searches at the search price; left out where the model has none.
        let searching = CallBound {
            max_web_searches: 5,
            ..CallBound::tokens(1_000_000, 100_000)
        };
        let with_search_price = model(ComponentPrices {
            web_search_requests: TokenPrice::per_token("0.01").ok(),
            ..Default::default()
        });
        assert_eq!(
            with_search_price.worst_case(&searching, ServiceTier::Standard),
            Ok(usd("1.45"))
        );
        assert_eq!(
            model(ComponentPrices::default()).worst_case(&searching, ServiceTier::Standard),
            Ok(usd("1.4"))
        );
        let absurd = CallBound {
            max_web_searches: 10_001,
            ..searching
        };
        assert!(matches!(
            with_search_price.worst_case(&absurd, ServiceTier::Standard),
            Err(CostError::Usage(UsageError::Absurd { .. }))
        ));
    }

    #[test]
    fn duplicate_tiers_and_missing_input_are_rejected() {
        assert_eq!(
            ModelPrice::flat(ComponentPrices::default()),
            Err(PriceError::MissingInput)
        );
        let tier = ContextTier {
            above_input_tokens: 5,
            prices: ComponentPrices {
                input: p("1"),
                ..Default::default()
            },
        };
        let schedule = PriceSchedule {
            base: ComponentPrices {
                input: p("1"),
                ..Default::default()
            },
            tiers: vec![tier, tier],
        };
        assert_eq!(
            ModelPrice::new(schedule, [None, None, None]),
            Err(PriceError::DuplicateTier(5))
        );
    }
}
