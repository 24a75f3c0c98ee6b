use cost_layer::session;

#[session(user = "alice")]
fn handle() -> u32 {
    1
}

fn main() {
    // The function is still emitted: this call compiles, only the missing id is reported.
    let _ = handle();
}
