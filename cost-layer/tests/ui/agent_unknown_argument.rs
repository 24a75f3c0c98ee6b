use cost_layer::agent;

// `model` belongs to a call, not to an agent run; `id` to a session.
#[agent(name = "planner", model = "gpt-4o", id = "s-1")]
async fn plan() -> u32 {
    1
}

fn main() {
    let _ = plan();
}
