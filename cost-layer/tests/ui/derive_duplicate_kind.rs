use cost_layer::TokenUsage;

#[derive(TokenUsage)]
struct Reply {
    #[usage(input)]
    prompt_tokens: u64,
    #[usage(input)]
    input_tokens: u64,
}

fn main() {}
