//! A layer that keeps the WARN events of chosen targets, for tests of what the layer warns
//! about (shared by the test files of `cost-layer` and `cost-store`).

use std::sync::{Arc, Mutex};

/// The WARN events of `targets`, each kept as its fields, `name=value` separated by spaces (the
/// message as `message=…`).
#[derive(Clone)]
pub(crate) struct Warnings {
    targets: &'static [&'static str],
    seen: Arc<Mutex<Vec<String>>>,
}

impl Warnings {
    /// Keeps the WARN events whose target is one of `targets`.
    pub(crate) fn of(targets: &'static [&'static str]) -> Self {
        Warnings {
            targets,
            seen: Arc::default(),
        }
    }

    /// A dispatcher of `layer` on a registry, beside a layer keeping the WARN events of
    /// `targets`.
    #[allow(dead_code)]
    pub(crate) fn beside(
        layer: cost_layer::CostLayer,
        targets: &'static [&'static str],
    ) -> (tracing::Dispatch, Warnings) {
        use tracing_subscriber::prelude::*;
        let warnings = Warnings::of(targets);
        let subscriber = tracing_subscriber::registry()
            .with(layer)
            .with(warnings.clone());
        (tracing::Dispatch::new(subscriber), warnings)
    }

    /// The events kept so far.
    pub(crate) fn seen(&self) -> Vec<String> {
        self.seen
            .lock()
            .map(|seen| seen.clone())
            .unwrap_or_default()
    }

    /// How many of them contain `text`.
    #[allow(dead_code)]
    pub(crate) fn containing(&self, text: &str) -> usize {
        self.seen()
            .iter()
            .filter(|event| event.contains(text))
            .count()
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Warnings {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Fields(String);
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if !self.0.is_empty() {
                    self.0.push(' ');
                }
                self.0.push_str(&format!("{}={value:?}", field.name()));
            }
        }
        let metadata = event.metadata();
        if *metadata.level() == tracing::Level::WARN && self.targets.contains(&metadata.target()) {
            let mut fields = Fields(String::new());
            event.record(&mut fields);
            if let Ok(mut seen) = self.seen.lock() {
                seen.push(fields.0);
            }
        }
    }
}
