use cost_layer::llm_call;

#[llm_call(skip(promt, client))]
fn call(client: &str, prompt: &str) -> cost_layer::cost_core::Usage {
    let _ = (client, prompt);
    cost_layer::cost_core::Usage::new(1, 1)
}

fn main() {
    let _ = call("c", "p");
}
