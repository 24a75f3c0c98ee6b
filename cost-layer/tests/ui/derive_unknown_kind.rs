#[derive(cost_layer::TokenUsage)]
struct Reply {
    #[usage(inptu)]
    input: u32,
    #[usage(output)]
    output: u32,
    #[usage(output)]
    output_again: u32,
}

fn main() {}
