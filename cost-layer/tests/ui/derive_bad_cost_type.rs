use cost_layer::TokenUsage;

#[derive(TokenUsage)]
struct Reply {
    #[usage(input)]
    input: u64,
    #[usage(reported_cost)]
    cost: u64,
}

fn main() {}
