use cost_layer::cost_core::Usage;
use cost_layer::llm_call;
use cost_layer::stream::Stream;
use std::pin::Pin;

// The stream is read after the function returned: returned as it is, the call would close
// before any chunk came. It must be wrapped with `track_stream`.
#[llm_call(model = "gpt-4o")]
fn chat_stream(chunks: Pin<Box<dyn Stream<Item = Usage>>>) -> Pin<Box<dyn Stream<Item = Usage>>> {
    chunks
}

fn main() {}
