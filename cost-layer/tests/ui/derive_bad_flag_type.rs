#[derive(cost_layer::TokenUsage)]
struct Reply {
    #[usage(input)]
    input: Option<u32>,
    #[usage(data_residency)]
    inference_geo: String,
}

fn main() {}
