#[derive(cost_layer::TokenUsage)]
enum Reply {
    A,
}

fn main() {}
