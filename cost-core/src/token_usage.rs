//! [`TokenUsage`]: how a value (a provider's response, a user's struct) tells its token usage.

use std::rc::Rc;
use std::sync::Arc;

use crate::money::Money;
use crate::usage::Usage;

/// A value that carries the token usage of one LLM call, in the inclusive convention (see
/// [`Usage`]), and optionally the model that answered, the service tier it was served at and
/// whether it ran on a data-residency endpoint.
///
/// `#[llm_call]` reads the return value of the function it instruments through this trait.
/// Implement it by hand, derive it (`#[derive(TokenUsage)]` in `cost-layer`), or use a provider
/// adapter of [`crate::adapters`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not carry token usage",
    label = "`#[llm_call]` reads the usage of the call from this value",
    note = "derive or implement `TokenUsage` for it, return a provider response type that has it (see `cost_core::adapters`), return a stream wrapped with `cost_layer::stream::track_stream`, or record usage with `cost_layer::record_usage` inside the function and return `()`"
)]
pub trait TokenUsage {
    /// The usage, or `None` when this value carries none (an error, an empty option).
    fn token_usage(&self) -> Option<Usage>;

    /// The model that answered, when the value says.
    fn response_model(&self) -> Option<&str> {
        None
    }

    /// The service tier the provider says it served the call at, as it spells it (`"flex"`,
    /// `"priority"`, `"default"`, …), when the value says: the price depends on it. Read by
    /// [`ServiceTier::parse`](crate::ServiceTier::parse).
    fn service_tier(&self) -> Option<&str> {
        None
    }

    /// Whether the provider says the call ran on a data-residency endpoint (inference kept in
    /// one geography, priced at the model's data-residency factor: see
    /// [`CallTerms`](crate::CallTerms)), when the value says: Anthropic's `usage.inference_geo`
    /// does. It replaces what the call site declared.
    fn data_residency(&self) -> Option<bool> {
        None
    }

    /// The search context size of the call's web searches, as the provider spells it
    /// (`"low"`, `"medium"`, `"high"`), when the value says: Perplexity's `usage` does, and an
    /// OpenAI Responses answer echoes its web search tool's. Some models price a search by it
    /// ([`SearchContextSize`](crate::SearchContextSize)); read by
    /// [`SearchContextSize::parse`](crate::SearchContextSize::parse).
    fn search_context_size(&self) -> Option<&str> {
        None
    }

    /// What the provider says the call cost, in US dollars, when the value says: OpenRouter's
    /// `usage.cost` (the upstream provider's `cost_details.upstream_inference_cost` for a
    /// call on the user's own key), Perplexity's `usage.cost.total_cost`. The call is still
    /// priced from the price table; the layer compares the two and counts a call whose figures
    /// disagree ([`Money::agrees_with_reported`]), the sign of a price table out of date.
    fn reported_cost(&self) -> Option<Money> {
        None
    }
}

impl TokenUsage for Usage {
    fn token_usage(&self) -> Option<Usage> {
        Some(*self)
    }
}

/// Carries no usage: for functions that record usage themselves (streaming).
impl TokenUsage for () {
    fn token_usage(&self) -> Option<Usage> {
        None
    }
}

impl<T: TokenUsage, E> TokenUsage for Result<T, E> {
    /// The `Ok` value's usage; an `Err` carries none.
    fn token_usage(&self) -> Option<Usage> {
        self.as_ref().ok().and_then(T::token_usage)
    }

    fn response_model(&self) -> Option<&str> {
        self.as_ref().ok().and_then(T::response_model)
    }

    fn service_tier(&self) -> Option<&str> {
        self.as_ref().ok().and_then(T::service_tier)
    }

    fn data_residency(&self) -> Option<bool> {
        self.as_ref().ok().and_then(T::data_residency)
    }

    fn search_context_size(&self) -> Option<&str> {
        self.as_ref().ok().and_then(T::search_context_size)
    }

    fn reported_cost(&self) -> Option<Money> {
        self.as_ref().ok().and_then(T::reported_cost)
    }
}

impl<T: TokenUsage> TokenUsage for Option<T> {
    fn token_usage(&self) -> Option<Usage> {
        self.as_ref().and_then(T::token_usage)
    }

    fn response_model(&self) -> Option<&str> {
        self.as_ref().and_then(T::response_model)
    }

    fn service_tier(&self) -> Option<&str> {
        self.as_ref().and_then(T::service_tier)
    }

    fn data_residency(&self) -> Option<bool> {
        self.as_ref().and_then(T::data_residency)
    }

    fn search_context_size(&self) -> Option<&str> {
        self.as_ref().and_then(T::search_context_size)
    }

    fn reported_cost(&self) -> Option<Money> {
        self.as_ref().and_then(T::reported_cost)
    }
}

macro_rules! delegate {
    ($($ty:ty),*) => {$(
        impl<T: TokenUsage + ?Sized> TokenUsage for $ty {
            fn token_usage(&self) -> Option<Usage> {
                T::token_usage(self)
            }

            fn response_model(&self) -> Option<&str> {
                T::response_model(self)
            }

            fn service_tier(&self) -> Option<&str> {
                T::service_tier(self)
            }

            fn data_residency(&self) -> Option<bool> {
                T::data_residency(self)
            }

            fn search_context_size(&self) -> Option<&str> {
                T::search_context_size(self)
            }

            fn reported_cost(&self) -> Option<Money> {
                T::reported_cost(self)
            }
        }
    )*};
}

delegate!(&T, &mut T, Box<T>, Arc<T>, Rc<T>);

#[cfg(test)]
mod tests {
    use super::*;

    struct Reply(Usage, &'static str);
    impl TokenUsage for Reply {
        fn token_usage(&self) -> Option<Usage> {
            Some(self.0)
        }
        fn response_model(&self) -> Option<&str> {
            Some(self.1)
        }
        fn service_tier(&self) -> Option<&str> {
            Some("flex")
        }
        fn data_residency(&self) -> Option<bool> {
            Some(true)
        }
        fn search_context_size(&self) -> Option<&str> {
            Some("high")
        }
        fn reported_cost(&self) -> Option<Money> {
            Some(Money::from_usd(1))
        }
    }

    /// Everything a value tells through the trait, owned.
    #[derive(Debug, PartialEq)]
    struct Told {
        usage: Option<Usage>,
        model: Option<String>,
        tier: Option<String>,
        residency: Option<bool>,
        search_context: Option<String>,
        reported: Option<Money>,
    }

    fn told<T: TokenUsage + ?Sized>(value: &T) -> Told {
        Told {
            usage: value.token_usage(),
            model: value.response_model().map(str::to_owned),
            tier: value.service_tier().map(str::to_owned),
            residency: value.data_residency(),
            search_context: value.search_context_size().map(str::to_owned),
            reported: value.reported_cost(),
        }
    }

    #[test]
    fn wrappers_tell_all_their_value_tells() {
        let usage = Usage::new(3, 4);
        let reply = told(&Reply(usage, "m"));
        assert_eq!(
            reply,
            Told {
                usage: Some(usage),
                model: Some("m".into()),
                tier: Some("flex".into()),
                residency: Some(true),
                search_context: Some("high".into()),
                reported: Some(Money::from_usd(1)),
            }
        );
        let mut inner = Reply(usage, "m");
        let wrapped = [
            told(&Ok::<_, String>(Reply(usage, "m"))),
            told(&Some(Reply(usage, "m"))),
            told(&&Reply(usage, "m")),
            told(&&mut inner),
            told(&Box::new(Reply(usage, "m"))),
            told(&Arc::new(Reply(usage, "m"))),
            told(&Rc::new(Reply(usage, "m"))),
        ];
        for (i, told) in wrapped.iter().enumerate() {
            assert_eq!(told, &reply, "wrapper {i}");
        }
    }

    #[test]
    fn empty_carriers_tell_nothing_and_a_usage_only_itself() {
        let nothing = Told {
            usage: None,
            model: None,
            tier: None,
            residency: None,
            search_context: None,
            reported: None,
        };
        assert_eq!(told(&Err::<Reply, _>("boom")), nothing);
        assert_eq!(told(&None::<Reply>), nothing);
        assert_eq!(told(&()), nothing);
        let usage = Usage::new(3, 4);
        assert_eq!(
            told(&usage),
            Told {
                usage: Some(usage),
                ..nothing
            }
        );
    }
}
