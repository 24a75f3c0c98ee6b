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

    #[test]
    fn wrappers_delegate() {
        let usage = Usage::new(3, 4);
        let ok: Result<Reply, String> = Ok(Reply(usage, "m"));
        let err: Result<Reply, String> = Err("boom".into());
        assert_eq!(ok.token_usage(), Some(usage));
        assert_eq!(ok.response_model(), Some("m"));
        assert_eq!(ok.service_tier(), Some("flex"));
        assert_eq!(err.token_usage(), None);
        assert_eq!(err.service_tier(), None);
        assert_eq!(Some(Reply(usage, "m")).service_tier(), Some("flex"));
        let boxed = Box::new(Reply(usage, "b"));
        assert_eq!(
            <Box<Reply> as TokenUsage>::service_tier(&boxed),
            Some("flex")
        );
        assert_eq!(usage.service_tier(), None);
        assert_eq!(ok.search_context_size(), Some("high"));
        assert_eq!(err.search_context_size(), None);
        assert_eq!(Some(Reply(usage, "m")).search_context_size(), Some("high"));
        assert_eq!(
            <Box<Reply> as TokenUsage>::search_context_size(&boxed),
            Some("high")
        );
        assert_eq!(usage.search_context_size(), None);
        assert_eq!(ok.data_residency(), Some(true));
        assert_eq!(err.data_residency(), None);
        assert_eq!(None::<Reply>.data_residency(), None);
        assert_eq!(Arc::new(Reply(usage, "a")).data_residency(), Some(true));
        assert_eq!(usage.data_residency(), None);
        assert_eq!(Some(Reply(usage, "m")).token_usage(), Some(usage));
        assert_eq!(None::<Reply>.token_usage(), None);
        assert_eq!(
            <Box<Reply> as TokenUsage>::response_model(&boxed),
            Some("b")
        );
        assert_eq!(Arc::new(Reply(usage, "a")).token_usage(), Some(usage));
        let reply = Reply(usage, "r");
        assert_eq!(<&Reply as TokenUsage>::token_usage(&&reply), Some(usage));
        assert_eq!(().token_usage(), None);
        assert_eq!(ok.reported_cost(), Some(Money::from_usd(1)));
        assert_eq!(err.reported_cost(), None);
        assert_eq!(None::<Reply>.reported_cost(), None);
        assert_eq!(
            Rc::new(Reply(usage, "r")).reported_cost(),
            Some(Money::from_usd(1))
        );
        assert_eq!(usage.reported_cost(), None);
    }
}
