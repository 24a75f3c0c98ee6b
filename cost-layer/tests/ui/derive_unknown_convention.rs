#[derive(cost_layer::TokenUsage)]
#[usage(convention = "mistral")]
struct Reply {
    #[usage(input)]
    input: u32,
}

fn main() {}
