#[derive(cost_layer::TokenUsage)]
struct Reply {
    #[usage(input)]
    input: Option<u32>,
    #[usage(model)]
    model: u32,
}

fn main() {}
