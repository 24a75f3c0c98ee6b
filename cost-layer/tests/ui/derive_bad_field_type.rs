#[derive(cost_layer::TokenUsage)]
struct Reply {
    #[usage(input)]
    input: String,
}

fn main() {}
